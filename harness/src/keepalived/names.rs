//! A checked service's real servers as keepalived holds them (check/check_data.c
//! `validate_check_config`, check/check_api.c `queue_checker`), for the config lvslab writes,
//! lvslab's own checkers and the readers of keepalived's log alike.
//!
//! An address service: each real server at its port, checked there, named `[ip]:tcp:port`
//! under `VS [vip]:tcp:port`. A fwmark service (`virtual_server fwmark N`): keepalived clears
//! its protocol and (but for NAT, where it sets none) its real servers' ports, so they are in
//! IPVS at port 0, as `ipvsadm -a -f N -r ip` puts them, and named `[ip]:none:0` under `VS FWM
//! N`. A checker connects to its real server's address as written, so without a port it would
//! connect to port 0: lvslab writes the port the server listens on as `connect_port`.

use std::net::{SocketAddr, SocketAddrV4};

use crate::health::{Trio, VsName};
use crate::scenario::{RealServer, Scenario, SorryServer};

/// `rs` in service `index`: its destination in the table and where its checks connect
/// (unless its checker says `connect_ip`/`connect_port` itself).
pub fn checked_dest(scenario: &Scenario, index: usize, rs: &RealServer) -> (SocketAddr, SocketAddr) {
    let dest = SocketAddr::from((rs.address, scenario.table_port(index, rs)));
    let check = SocketAddr::from((rs.address, scenario.real_port(index, rs)));
    (dest, check)
}

/// The sorry server's destination in service `index`'s table (port 0 in a fwmark service).
pub fn sorry_dest(scenario: &Scenario, index: usize, sorry: &SorryServer) -> SocketAddrV4 {
    match scenario.services[index].fwmark {
        Some(_) => SocketAddrV4::new(*sorry.addr.ip(), 0),
        None => sorry.addr,
    }
}

/// How keepalived names the real server (or sorry server) at `dest` of service `index`.
pub fn trio(scenario: &Scenario, index: usize, dest: SocketAddr) -> Trio {
    let svc = &scenario.services[index];
    match svc.fwmark {
        Some(_) => Trio::without_protocol(dest),
        None => Trio::new(dest, svc.protocol),
    }
}

/// How keepalived names service `index` on `vip` (`format_vs`).
pub fn vs_name(scenario: &Scenario, index: usize, vip: std::net::Ipv4Addr) -> VsName {
    let svc = &scenario.services[index];
    match &svc.fwmark {
        Some(rule) => VsName::Fwmark(rule.mark),
        None => VsName::Address(Trio::new(SocketAddr::from((vip, svc.port)), svc.protocol)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;

    const FWMARK: &str = r#"
[service]
mode = "dr"
scheduler = "rr"
persistence = 300
fwmark = 3
[service.mark]
ports = [80, 443]
[service.check]
kind = "tcp"
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn a_fwmark_service_has_its_servers_at_port_0_checked_on_their_own() {
        let s = parse(FWMARK, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let rs = &s.real_servers[0];
        let (dest, check) = checked_dest(&s, 0, rs);
        assert_eq!(dest.port(), 0);
        assert_eq!(check.port(), 80);
        assert_eq!(trio(&s, 0, dest).to_string(), format!("[{}]:none:0", rs.address));
        assert_eq!(vs_name(&s, 0, s.services[0].vip).to_string(), "FWM 3");

        let plain = FWMARK.replace("fwmark = 3\n[service.mark]\nports = [80, 443]\n", "");
        let s = parse(&plain, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let rs = &s.real_servers[0];
        let (dest, check) = checked_dest(&s, 0, rs);
        assert_eq!((dest, dest.port()), (check, 80));
        assert_eq!(trio(&s, 0, dest).to_string(), format!("[{}]:tcp:80", rs.address));
        assert_eq!(
            vs_name(&s, 0, s.services[0].vip).to_string(),
            format!("[{}]:tcp:80", s.services[0].vip)
        );
    }
}
