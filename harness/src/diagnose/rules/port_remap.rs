//! Cause 24: DR and TUN cannot change the port. DR rewrites only the MAC and TUN wraps the
//! packet as it is, so a real server always receives VIP:vport, whatever port its
//! destination names (netlink takes any; ipvsadm and keepalived reset it to vport, so only
//! the configuration shows it). A server listening only on its "own" port answers RST; one
//! RIP listed on two ports gets the packets of both destinations on the one port.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode, RealServerEvidence};
use crate::diagnose::finding::{Finding, LATENT};
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::PortRemap;

/// One RIP on two ports: it takes two shares of the scheduler's choices.
const DOUBLED: f64 = 0.4;
/// A remapped destination whose server's listeners are unknown: likely refused, not shown.
const UNCONFIRMED: f64 = 0.3;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if !matches!(ev.mode, Mode::Dr | Mode::Tun) {
        return None;
    }
    let svc = ev.service.as_ref()?;
    // A port-0 service takes every port: the packet's port is the one it serves.
    if svc.port == 0 {
        return None;
    }
    let (mut lines, mut fixes, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    let vport = svc.port;
    let mut ports_of: BTreeMap<Ipv4Addr, Vec<u16>> = BTreeMap::new();
    for d in ev.ipvs.iter().flat_map(|i| &i.dests) {
        ports_of.entry(d.addr).or_default().push(d.port);
    }
    // The configured servers, then destinations no configuration names (a table read alone).
    let unnamed: Vec<RealServerEvidence> = ports_of
        .keys()
        .filter(|a| ev.real_server_at(**a).is_none())
        .map(|a| RealServerEvidence {
            name: a.to_string(),
            address: *a,
            port: None,
            weight: None,
            host: Default::default(),
        })
        .collect();
    let mut unknown = false;
    for rs in ev.real_servers.iter().chain(&unnamed) {
        let in_table: Vec<u16> = ports_of.get(&rs.address).cloned().unwrap_or_default();
        let configured = rs.port.filter(|p| *p != vport);
        // Port 0 is a fwmark service's DR destination: whatever port the packet has.
        let table_port = in_table.iter().copied().find(|p| *p != vport && *p != 0);
        let Some(port) = table_port.or(configured) else {
            continue;
        };
        let origin = if table_port.is_some() {
            format!("the table lists {}:{port}", rs.address)
        } else {
            format!(
                "{} is configured on port {port} (the table shows {vport}: ipvsadm and keepalived reset it)",
                rs.name
            )
        };
        lines.push(format!(
            "{origin} under {} {}: the packets still arrive at {}:{vport}, unchanged",
            svc.proto.name(),
            forward_name(ev.mode),
            svc.vip
        ));
        match listening(ev, rs, vport, port) {
            Some((false, on_port)) => {
                let also = if on_port {
                    format!(" (it listens on {port})")
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{} has no listener on {}:{vport}{also}: it answers those connections with RST",
                    rs.name, svc.vip
                ));
                refused.push(rs.name.clone());
            }
            Some((true, _)) => {}
            None => unknown = true,
        }
        fixes.push(format!(
            "on {}: serve on port {vport} (bind 0.0.0.0:{vport}), or redirect there: `nft add rule ip nat prerouting ip daddr {} tcp dport {vport} redirect to :{port}`; state the port as the service's: ipvsadm -e {} -r {}:{vport} {}",
            rs.name,
            svc.vip,
            ipvsadm_service(svc),
            rs.address,
            ipvsadm_forward(ev.mode)
        ));
    }
    let doubled: Vec<(Ipv4Addr, Vec<u16>)> = ports_of.into_iter().filter(|(_, ports)| ports.len() > 1).collect();
    for (addr, ports) in &doubled {
        let listed: Vec<String> = ports.iter().map(|p| format!("{addr}:{p}")).collect();
        let name = ev
            .real_server_at(*addr)
            .map_or_else(|| addr.to_string(), |r| r.name.clone());
        lines.push(format!(
            "{name} is listed {} times ({}): each destination sends to {}:{vport} on the same host, so it gets {} shares",
            ports.len(),
            listed.join(", "),
            svc.vip,
            ports.len()
        ));
        fixes.push(format!(
            "keep one destination per RIP under {} {}: ipvsadm -d {} -r {addr}:{}; use NAT (-m) to serve several ports of one host",
            forward_name(ev.mode),
            svc.vip,
            ipvsadm_service(svc),
            ports.iter().find(|p| **p != vport).unwrap_or(&ports[1])
        ));
    }
    if lines.is_empty() {
        return None;
    }
    let explains = if !refused.is_empty() {
        share_explains(refused.len(), ev.real_servers.len().max(1))
    } else if !doubled.is_empty() {
        DOUBLED
    } else if unknown {
        UNCONFIRMED
    } else {
        LATENT
    };
    let title = if refused.is_empty() && doubled.is_empty() && !unknown {
        format!(
            "A {} real server is configured on another port than {vport}, which it also serves",
            forward_name(ev.mode)
        )
    } else {
        format!(
            "{} cannot remap ports: real servers get {}:{vport} whatever port they are listed on",
            forward_name(ev.mode),
            svc.vip
        )
    };
    Some(Finding::new(ID, title, explains).evidence(capped(lines)).fix(fixes))
}

fn forward_name(mode: Mode) -> &'static str {
    if mode == Mode::Tun {
        "TUN"
    } else {
        "DR"
    }
}

/// Whether the server listens on VIP:vport and on its configured port; `None` when its
/// listeners were not gathered.
fn listening(ev: &Evidence, rs: &RealServerEvidence, vport: u16, port: u16) -> Option<(bool, bool)> {
    let svc = ev.service.as_ref()?;
    let on_vport = rs.host.listens_on(svc.proto, svc.vip, vport)?;
    let on_port = rs.host.listens_on(svc.proto, svc.vip, port)? || rs.host.listens_on(svc.proto, rs.address, port)?;
    Some((on_vport, on_port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::diagnose;
    use crate::diagnose::evidence::{Listener, Proto};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    /// rs2 is listed on 8080 and listens there only: every connection DR gives it is refused.
    fn rs2_on_8080() -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1].port = Some(8080);
        ev.real_servers[1].host.listening = Some(vec![Listener {
            proto: Proto::Tcp,
            addr: "0.0.0.0:8080".parse().unwrap(),
        }]);
        ev.ipvs.as_mut().unwrap().dests[1].port = 8080;
        for (n, r) in ev.records.iter_mut().enumerate() {
            if n % 3 == 1 {
                r.backend = None;
                r.error = Some("connection refused".into());
            }
        }
        ev
    }

    #[test]
    fn fires_for_a_dr_server_listed_and_listening_on_another_port() {
        let ev = rs2_on_8080();
        let finding = check(&ev, &summarise(&ev)).expect("port-remap must fire");
        assert_eq!(
            finding.evidence,
            [
                "the table lists 192.0.2.12:8080 under TCP DR: the packets still arrive at 192.0.2.100:80, unchanged",
                "rs2 has no listener on 192.0.2.100:80 (it listens on 8080): it answers those connections with RST",
            ]
        );
        assert!(
            finding.fix[0].starts_with("on rs2: serve on port 80 (bind 0.0.0.0:80)"),
            "{:?}",
            finding.fix
        );
        assert!(finding.fix[0].ends_with("ipvsadm -e -t 192.0.2.100:80 -r 192.0.2.12:80 -g"));
        let d = diagnose(&ev);
        assert_eq!(
            d.ids()[..2],
            ["port-remap", "server-down"],
            "the cause before its symptom"
        );
    }

    #[test]
    fn a_port_reset_by_ipvsadm_is_read_from_the_configuration() {
        let mut ev = rs2_on_8080();
        ev.ipvs.as_mut().unwrap().dests[1].port = 80;
        let finding = check(&ev, &summarise(&ev)).expect("port-remap must fire");
        assert!(finding.evidence[0].starts_with("rs2 is configured on port 8080 (the table shows 80"));
    }

    #[test]
    fn one_rip_on_two_ports_is_two_shares() {
        let mut ev = sample::healthy_dr();
        let mut twin = sample::dest(1, 10, 10);
        twin.port = 8000;
        ev.ipvs.as_mut().unwrap().dests.push(twin);
        let finding = check(&ev, &summarise(&ev)).expect("port-remap must fire");
        assert!(finding.evidence.iter().any(|l| l
            == "rs1 is listed 2 times (192.0.2.11:80, 192.0.2.11:8000): each destination sends to 192.0.2.100:80 on the same host, so it gets 2 shares"));
        // rs1 listens on 80: the remapped destination is served, on 80.
        assert_eq!(finding.explains, DOUBLED);
    }

    #[test]
    fn harmless_when_the_server_serves_the_service_port_too() {
        let mut ev = rs2_on_8080();
        ev.real_servers[1].host.listening.as_mut().unwrap().push(Listener {
            proto: Proto::Tcp,
            addr: "0.0.0.0:80".parse().unwrap(),
        });
        let finding = check(&ev, &summarise(&ev)).expect("still a wrong configuration");
        assert!(finding.explains <= LATENT);
    }

    #[test]
    fn silent_for_same_ports_for_nat_and_for_port_zero_services() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = rs2_on_8080();
        ev.mode = Mode::Nat;
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = rs2_on_8080();
        ev.service.as_mut().unwrap().port = 0;
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
