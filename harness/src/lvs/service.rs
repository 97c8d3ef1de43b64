//! Which virtual service: the kernel's lookup key (`ip_vs_service_find`).

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::Proto;

/// A virtual service as ipvsadm names it: `-t/-u VIP:PORT` (protocol, address and port), or
/// `-f MARK` when `fwmark` is not 0. A firewall-mark service is keyed by its mark alone
/// (`__ip_vs_svc_fwm_find`); like the kernel's `ip_vs_service_user`, its protocol is then TCP,
/// its address 0.0.0.0 and its port 0, and it takes TCP and UDP alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
    /// `ipvsadm -f`: 0 for an address service.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

fn is_zero(mark: &u32) -> bool {
    *mark == 0
}

impl ServiceKey {
    pub fn new(proto: Proto, vip: Ipv4Addr, port: u16) -> Self {
        ServiceKey {
            proto,
            vip,
            port,
            fwmark: 0,
        }
    }

    /// `ipvsadm -f MARK`.
    pub fn fwmark(mark: u32) -> Self {
        ServiceKey {
            proto: Proto::Tcp,
            vip: Ipv4Addr::UNSPECIFIED,
            port: 0,
            fwmark: mark,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }
}

/// `TCP 10.0.0.1:80` or `FWM 1`, as ipvsadm prints a service.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_fwmark() {
            return write!(f, "FWM {}", self.fwmark);
        }
        write!(f, "{} {}:{}", self.proto.name(), self.vip, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fwmark_service_is_named_by_its_mark_alone() {
        assert_eq!(ServiceKey::fwmark(7).to_string(), "FWM 7");
        assert_eq!(
            ServiceKey::new(Proto::Udp, Ipv4Addr::new(10, 0, 0, 1), 53).to_string(),
            "UDP 10.0.0.1:53"
        );
        assert_ne!(ServiceKey::fwmark(1), ServiceKey::fwmark(2));
        assert_ne!(
            ServiceKey::fwmark(1),
            ServiceKey::new(Proto::Tcp, Ipv4Addr::UNSPECIFIED, 0)
        );
    }
}
