//! Cause 25: DR only works on one L2 segment. The director sends the unchanged CIP->VIP
//! packet to the real server's MAC (`ip_vs_dr_xmit` routes to the RIP as a known next hop):
//! a RIP behind a router gets the frame sent to the router instead, which hands it back to
//! whoever holds the VIP. And a real server whose route to the clients goes via the
//! director sends its replies (source = VIP) to a host that drops them: the VIP is the
//! director's own address (martian source), and its kernel does not forward them.

use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, HostEvidence, Mode, RealServerEvidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::DrTopology;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if ev.mode != Mode::Dr {
        return None;
    }
    let svc = ev.service.as_ref()?;
    let director = ev.director.as_ref()?;
    let clients = client_addresses(ev);
    let (mut lines, mut fixes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for rs in &ev.real_servers {
        let before = lines.len();
        if let Some(line) = not_adjacent(director, rs) {
            lines.push(line);
            fixes.push(format!(
                "put {} on a network {} is attached to (same VLAN; a second NIC on the director if need be), or forward to it with TUN: ipvsadm -e {} -r {} -i",
                rs.name,
                the_director(&director.name),
                ipvsadm_service(svc),
                rs.address
            ));
        }
        if let Some((client, gw, owner)) = reply_via_director(ev, rs, &clients) {
            lines.push(format!(
                "{}'s route to {client} goes via {gw}, {owner}'s address: its replies (source {}) reach the director, which drops them (the VIP is its own address; DR replies are not forwarded)",
                rs.name, svc.vip
            ));
            let router =
                other_gateway(ev, &clients).map_or_else(|| "a router of that network".to_string(), |g| g.to_string());
            fixes.push(format!(
                "on {}: `ip route replace default via {router}` (a router, never the director, in DR)",
                rs.name
            ));
        }
        if lines.len() > before {
            bad.push(rs.name.clone());
        }
    }
    if bad.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            ID,
            format!(
                "DR real server(s) off the director's segment or replying through it: {}",
                bad.join(", ")
            ),
            share_explains(bad.len(), ev.real_servers.len()),
        )
        .evidence(capped(lines))
        .fix(fixes),
    )
}

/// The director reaches the RIP through a router, or its ARP for the RIP fails on a link
/// the server is alive on (same subnet, another L2 segment).
fn not_adjacent(director: &HostEvidence, rs: &RealServerEvidence) -> Option<String> {
    let route = director.route_to(rs.address);
    if let Some(gw) = route.and_then(|r| r.via) {
        let route = route.expect("has a gateway");
        return Some(format!(
            "{} reaches {} ({}) via {gw} (route {} dev {}): DR sends the unchanged packet for the VIP to that router, not to {}",
            the_director(&director.name),
            rs.name,
            rs.address,
            route.dst,
            route.dev.as_deref().unwrap_or("?"),
            rs.name
        ));
    }
    let alive = rs
        .host
        .links
        .iter()
        .any(|l| l.up && l.kind.as_deref() != Some("loopback"));
    // A server holding a range that covers the director's address takes its ARP requests for
    // its own (martian source, with rp_filter on) and answers none: vip-prefix's finding.
    let own_range = rs.host.addresses.iter().any(|a| {
        a.iface == "lo"
            && a.net.prefix_len() < 32
            && director
                .addresses
                .iter()
                .any(|d| !d.net.addr().is_loopback() && a.net.trunc().contains(&d.net.addr()))
    });
    let entry = director.neighbour(rs.address)?;
    (alive && !own_range && route.is_some() && matches!(entry.state.as_str(), "FAILED" | "INCOMPLETE")).then(|| {
        format!(
            "{}'s ARP for {} ({}) on {} is {} although {} is up: it is in the subnet but not on the director's L2 segment",
            the_director(&director.name),
            rs.address,
            rs.name,
            entry.iface,
            entry.state,
            rs.name
        )
    })
}

/// A client address the server routes to through one of the directors' addresses, with
/// that gateway and its owner.
fn reply_via_director(
    ev: &Evidence,
    rs: &RealServerEvidence,
    clients: &[(String, Ipv4Addr)],
) -> Option<(String, Ipv4Addr, String)> {
    clients.iter().find_map(|(name, ip)| {
        let gw = rs.host.route_to(*ip)?.via?;
        let owner = ev.directors().find(|d| d.address_of(gw).is_some())?;
        Some((format!("{name} {ip}"), gw, the_director(&owner.name)))
    })
}

/// A gateway another real server uses to reach the clients that is not a director's.
fn other_gateway(ev: &Evidence, clients: &[(String, Ipv4Addr)]) -> Option<Ipv4Addr> {
    ev.real_servers.iter().find_map(|rs| {
        clients.iter().find_map(|(_, ip)| {
            let gw = rs.host.route_to(*ip)?.via?;
            (!ev.directors().any(|d| d.address_of(gw).is_some())).then_some(gw)
        })
    })
}

/// Every client address the run used or the clients hold, named: `client c1`.
fn client_addresses(ev: &Evidence) -> Vec<(String, Ipv4Addr)> {
    let mut out: Vec<(String, Ipv4Addr)> = Vec::new();
    for c in &ev.clients {
        for a in c.host.addresses.iter().filter(|a| !a.net.addr().is_loopback()) {
            out.push((role_and_name("client", &c.name), a.net.addr()));
        }
    }
    for r in &ev.records {
        if let std::net::IpAddr::V4(ip) = r.source.ip() {
            if !out.iter().any(|(_, known)| *known == ip) {
                out.push((role_and_name("client", &r.client), ip));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::diagnose;
    use crate::diagnose::evidence::{ConnEvidence, Proto, RouteEvidence};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn route(dst: &str, via: Option<&str>) -> RouteEvidence {
        RouteEvidence {
            dst: dst.parse().unwrap(),
            via: via.map(|v| v.parse().unwrap()),
            dev: Some("eth0".into()),
        }
    }

    /// rs2's requests time out; its entries stay in SYN_RECV while the others finish.
    fn rs2_fails(ev: &mut Evidence) {
        for (n, r) in ev.records.iter_mut().enumerate() {
            if n % 3 == 1 {
                r.backend = None;
                r.error = Some("timeout".into());
            }
        }
        let conn = |dest, state: &str| ConnEvidence {
            proto: Proto::Tcp,
            client: sample::CLIENT,
            client_port: 40000,
            dest,
            dest_port: 80,
            state: state.into(),
            expires_secs: Some(60),
        };
        ev.ipvs.as_mut().unwrap().conns = vec![
            conn(sample::rip(1), "FIN_WAIT"),
            conn(sample::rip(2), "SYN_RECV"),
            conn(sample::rip(2), "SYN_RECV"),
            conn(sample::rip(3), "FIN_WAIT"),
        ];
    }

    /// The client on 203.0.113.0/24 behind router 192.0.2.254; rs2's default route is the director.
    fn gateway_is_the_director() -> Evidence {
        let mut ev = sample::healthy_dr();
        let client = &mut ev.clients[0].host;
        client.addresses[1] = sample::addr("eth0", "203.0.113.10/24");
        for r in &mut ev.records {
            r.source.set_ip("203.0.113.10".parse().unwrap());
        }
        for (i, rs) in ev.real_servers.iter_mut().enumerate() {
            let gw = if i == 1 { "192.0.2.2" } else { "192.0.2.254" };
            rs.host.routes.push(route("0.0.0.0/0", Some(gw)));
        }
        rs2_fails(&mut ev);
        ev
    }

    #[test]
    fn fires_when_a_server_replies_through_the_director() {
        let ev = gateway_is_the_director();
        let finding = check(&ev, &summarise(&ev)).expect("dr-topology must fire");
        assert_eq!(
            finding.evidence,
            [
                "rs2's route to client c1 203.0.113.10 goes via 192.0.2.2, the director d1's address: its replies (source 192.0.2.100) reach the director, which drops them (the VIP is its own address; DR replies are not forwarded)",
            ]
        );
        assert_eq!(
            finding.fix,
            ["on rs2: `ip route replace default via 192.0.2.254` (a router, never the director, in DR)"]
        );
        let d = diagnose(&ev);
        assert_eq!(d.ids()[..2], ["dr-topology", "server-down"], "the symptom ranks below");
    }

    #[test]
    fn fires_for_a_server_behind_a_router() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1].address = "198.51.100.12".parse().unwrap();
        ev.director
            .as_mut()
            .unwrap()
            .routes
            .push(route("0.0.0.0/0", Some("192.0.2.254")));
        rs2_fails(&mut ev);
        for c in &mut ev.ipvs.as_mut().unwrap().conns {
            if c.dest == sample::rip(2) {
                c.dest = ev.real_servers[1].address;
            }
        }
        let finding = check(&ev, &summarise(&ev)).expect("dr-topology must fire");
        assert_eq!(
            finding.evidence,
            ["the director d1 reaches rs2 (198.51.100.12) via 192.0.2.254 (route 0.0.0.0/0 dev eth0): DR sends the unchanged packet for the VIP to that router, not to rs2"]
        );
        assert!(
            finding.fix[0].ends_with("ipvsadm -e -t 192.0.2.100:80 -r 198.51.100.12 -i"),
            "{:?}",
            finding.fix
        );
        assert_eq!(diagnose(&ev).ids().first(), Some(&"dr-topology"));
    }

    #[test]
    fn fires_when_arp_for_a_live_server_fails() {
        let mut ev = sample::healthy_dr();
        ev.director
            .as_mut()
            .unwrap()
            .neighbours
            .push(crate::diagnose::evidence::NeighbourEvidence {
                ip: sample::rip(3),
                mac: None,
                state: "FAILED".into(),
                iface: "eth0".into(),
            });
        let finding = check(&ev, &summarise(&ev)).expect("dr-topology must fire");
        assert!(
            finding.evidence[0].contains("is FAILED although rs3 is up"),
            "{:?}",
            finding.evidence
        );
        // A dead server's failed ARP is server-down's, not a topology problem; one that takes
        // the director's address for its own (a wide VIP prefix on lo) is vip-prefix's.
        let mut wide = ev.clone();
        for a in &mut wide.real_servers[2].host.addresses {
            if a.net.addr() == sample::VIP {
                a.net = "192.0.2.100/24".parse().unwrap();
            }
        }
        assert_eq!(check(&wide, &summarise(&wide)), None);
        ev.real_servers[2].host.links.iter_mut().for_each(|l| l.up = false);
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn silent_for_an_adjacent_server_with_a_router_as_gateway_or_outside_dr() {
        let mut ev = gateway_is_the_director();
        ev.real_servers[1].host.routes.retain(|r| r.via.is_none());
        ev.real_servers[1]
            .host
            .routes
            .push(route("0.0.0.0/0", Some("192.0.2.254")));
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // A client on the servers' own network is reached on-link, whatever the default route.
        let mut ev = sample::healthy_dr();
        ev.real_servers[0]
            .host
            .routes
            .push(route("0.0.0.0/0", Some("192.0.2.2")));
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = gateway_is_the_director();
        ev.mode = Mode::Nat;
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
