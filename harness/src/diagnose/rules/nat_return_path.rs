//! Cause 10: in NAT the reply must pass the director to get VIP as its source; a real
//! server that routes the client some other way answers from its RIP and is ignored.

use crate::lvs::CauseId;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::NatReturnPath;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if ev.mode != Mode::Nat {
        return None;
    }
    let director = ev.director.as_ref()?;
    let mut director_ips: BTreeSet<Ipv4Addr> = director.addresses.iter().map(|a| a.net.addr()).collect();
    // A VRRP pair's floating gateway is the director's, whichever holds it.
    director_ips.extend(ev.vrrp.as_ref().and_then(|v| v.gateway));
    let mut clients: BTreeSet<Ipv4Addr> = ev
        .clients
        .iter()
        .flat_map(|c| &c.host.addresses)
        .map(|a| a.net.addr())
        .filter(|a| !a.is_loopback())
        .collect();
    clients.extend(ev.records.iter().filter_map(|r| match r.source.ip() {
        IpAddr::V4(a) if !a.is_loopback() => Some(a),
        _ => None,
    }));
    let mut lines = Vec::new();
    let mut bad = BTreeSet::new();
    let mut fixes = Vec::new();
    for rs in ev.real_servers.iter().filter(|r| !r.host.routes.is_empty()) {
        let gateway = director
            .addresses
            .iter()
            .find(|a| a.net.contains(&rs.address))
            .map(|a| a.net.addr());
        for cip in &clients {
            let line = match rs.host.route_to(*cip) {
                None => format!("{} has no route to client {cip}: its replies go nowhere", rs.name),
                Some(r) => match r.via {
                    Some(via) if director_ips.contains(&via) => continue,
                    Some(via) => format!(
                        "{} routes replies to {cip} via {via}, not via the director ({})",
                        rs.name,
                        show(gateway)
                    ),
                    None => format!(
                        "client {cip} is on {}'s own link ({}): it answers from its RIP, bypassing the director",
                        rs.name, r.dst
                    ),
                },
            };
            lines.push(line);
            if bad.insert(rs.name.clone()) {
                fixes.push(format!(
                    "on {}: ip route replace default via {}",
                    rs.name,
                    show(gateway)
                ));
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    fixes.push("test from a client outside the real servers' subnet".to_string());
    Some(
        Finding::new(
            ID,
            "NAT replies do not return through the director",
            share_explains(bad.len(), ev.real_servers.len()),
        )
        .evidence(capped(lines))
        .fix(fixes),
    )
}

fn show(gateway: Option<Ipv4Addr>) -> String {
    gateway.map_or("the director's address on that link".to_string(), |g| g.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::RouteEvidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    /// Clients on 192.0.2.0/24, servers on 10.0.1.0/24 behind the director's 10.0.1.1.
    fn nat() -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Nat;
        let d = ev.director.as_mut().unwrap();
        d.addresses.push(sample::addr("eth1", "10.0.1.1/24"));
        for (i, rs) in ev.real_servers.iter_mut().enumerate() {
            rs.address = Ipv4Addr::new(10, 0, 1, 11 + i as u8);
            rs.host.addresses = vec![sample::addr("eth0", &format!("{}/24", rs.address))];
            rs.host.routes = vec![
                RouteEvidence {
                    dst: "10.0.1.0/24".parse().unwrap(),
                    via: None,
                    dev: Some("eth0".into()),
                },
                RouteEvidence {
                    dst: "0.0.0.0/0".parse().unwrap(),
                    via: Some("10.0.1.1".parse().unwrap()),
                    dev: Some("eth0".into()),
                },
            ];
        }
        ev
    }

    #[test]
    fn fires_when_a_server_routes_around_the_director() {
        let mut ev = nat();
        ev.real_servers[2].host.routes[1].via = Some("10.0.1.254".parse().unwrap());
        let finding = check(&ev, &summarise(&ev)).expect("nat-return-path must fire");
        assert_eq!(
            finding.evidence,
            vec!["rs3 routes replies to 192.0.2.10 via 10.0.1.254, not via the director (10.0.1.1)"]
        );
        assert_eq!(finding.fix[0], "on rs3: ip route replace default via 10.0.1.1");
    }

    #[test]
    fn silent_when_replies_go_via_the_director() {
        let ev = nat();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
