//! How keepalived names services in its log lines: `[ip]:proto:port`.
//!
//! `inet_sockaddrtotrio_r` (lib/utils.c) prints a real server, and `format_vs`
//! (check/check_data.c) a virtual server: the same trio for an address service,
//! `FWM n` for a fwmark one, `[group]:port` for a group.

use std::fmt;
use std::net::SocketAddr;

use crate::ipvs::Proto;

/// One address, port and protocol, printed as keepalived prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trio {
    pub addr: SocketAddr,
    /// `None`: a fwmark virtual server's, whose `service_type` keepalived clears ("none").
    pub proto: Option<Proto>,
}

impl Trio {
    pub fn new(addr: SocketAddr, proto: Proto) -> Trio {
        Trio {
            addr,
            proto: Some(proto),
        }
    }

    /// A real server of a fwmark virtual server: `[192.0.2.11]:none:0`.
    pub fn without_protocol(addr: SocketAddr) -> Trio {
        Trio { addr, proto: None }
    }
}

impl fmt::Display for Trio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Some(Proto::Tcp) => "tcp",
            Some(Proto::Udp) => "udp",
            None => "none",
        };
        // inet_sockaddrtos2 prints IPv6 without brackets; the trio adds them for both families.
        write!(f, "[{}]:{}:{}", self.addr.ip(), proto, self.addr.port())
    }
}

/// A virtual server as `format_vs` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VsName {
    Address(Trio),
    Fwmark(u32),
    Group { name: String, port: u16 },
}

impl fmt::Display for VsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VsName::Address(trio) => trio.fmt(f),
            VsName::Fwmark(mark) => write!(f, "FWM {mark}"),
            VsName::Group { name, port } => write!(f, "[{name}]:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trio_matches_keepalived_log_format() {
        let rs = Trio::new("192.0.2.11:80".parse().unwrap(), Proto::Tcp);
        assert_eq!(rs.to_string(), "[192.0.2.11]:tcp:80");
        let v6 = Trio::new("[2001:db8::1]:53".parse().unwrap(), Proto::Udp);
        assert_eq!(v6.to_string(), "[2001:db8::1]:udp:53");
        let fwm = Trio::without_protocol("192.0.2.11:0".parse().unwrap());
        assert_eq!(fwm.to_string(), "[192.0.2.11]:none:0");
    }

    #[test]
    fn virtual_server_names() {
        assert_eq!(VsName::Fwmark(7).to_string(), "FWM 7");
        assert_eq!(
            VsName::Group {
                name: "web".into(),
                port: 443
            }
            .to_string(),
            "[web]:443"
        );
    }
}
