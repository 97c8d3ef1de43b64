//! Which virtual service: the kernel's lookup key (`ip_vs_service_find`).

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::Proto;

/// A virtual service by protocol, address and port, as `ipvsadm -t/-u VIP:PORT` names
/// it. Firewall-mark services (`-f`) will be a second variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
}

impl ServiceKey {
    pub fn new(proto: Proto, vip: Ipv4Addr, port: u16) -> Self {
        ServiceKey { proto, vip, port }
    }
}

/// `TCP 10.0.0.1:80`, as ipvsadm prints a service.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.proto.name(), self.vip, self.port)
    }
}
