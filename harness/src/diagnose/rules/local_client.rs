//! Cause 3: the test client runs on the director or a real server. From a real server
//! the VIP is local (DR/TUN): it answers itself; from the director IPVS misbehaves.

use crate::lvs::CauseId;
use std::collections::BTreeSet;
use std::net::IpAddr;

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::LocalClient;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let vip = ev.vip().map(IpAddr::V4);
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    let mut local_requests = 0u32;
    for r in &ev.records {
        let ip = r.source.ip();
        let line = if ip.is_loopback() {
            Some(format!(
                "{} sends from {ip}: it runs on the director or a real server",
                r.client
            ))
        } else if Some(ip) == vip {
            Some(format!(
                "{} sends from the VIP {ip} itself: it runs on a host that holds the VIP",
                r.client
            ))
        } else {
            owner_of_ip(ev, ip).map(|(is_real_server, host, iface)| {
                let consequence = if is_real_server {
                    ": it holds the VIP and answers its own requests"
                } else {
                    ""
                };
                format!(
                    "{}'s source {ip} is an address of {host} ({iface}){consequence}",
                    r.client
                )
            })
        };
        if let Some(line) = line {
            local_requests += 1;
            if seen.insert((r.client.clone(), ip)) {
                lines.push(line);
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    let share = f64::from(local_requests) / f64::from(spread.requests.max(1));
    Some(
        Finding::new(ID, "The test client runs on the director or a real server", 0.9 * share)
            .evidence(capped(lines))
            .fix(["test from a separate client host, outside the director and the real servers".to_string()]),
    )
}

/// (whether a real server, host named with its role, iface) of the director or real
/// server that holds `ip`.
/// The director or real server that has `ip` (is-real-server, who, interface).
pub fn owner_of_ip(ev: &Evidence, ip: IpAddr) -> Option<(bool, String, String)> {
    let IpAddr::V4(ip) = ip else { return None };
    if let Some(d) = &ev.director {
        if let Some(a) = d.address_of(ip) {
            return Some((false, the_director(&d.name), a.iface.clone()));
        }
    }
    ev.real_servers.iter().find_map(|rs| {
        rs.host
            .address_of(ip)
            .map(|a| (true, role_and_name("real server", &rs.name), a.iface.clone()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::RecordEvidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_when_the_client_is_a_real_server() {
        let mut ev = sample::healthy_dr();
        let source = "192.0.2.11:40000".parse().unwrap();
        ev.records = (0..10)
            .map(|n| RecordEvidence {
                source,
                ..sample::record(n, "rs1")
            })
            .collect();
        let finding = check(&ev, &summarise(&ev)).expect("local-client must fire");
        assert_eq!(finding.evidence, vec!["c1's source 192.0.2.11 is an address of real server rs1 (eth0): it holds the VIP and answers its own requests"]);
        assert!((finding.explains - 0.9).abs() < 1e-9);
    }

    #[test]
    fn names_a_director_called_director_once() {
        let mut ev = sample::healthy_dr();
        ev.director.as_mut().unwrap().name = "director".into();
        let source = "192.0.2.2:40000".parse().unwrap();
        ev.records = (0..4)
            .map(|n| RecordEvidence {
                source,
                ..sample::record(n, "rs1")
            })
            .collect();
        let finding = check(&ev, &summarise(&ev)).expect("local-client must fire");
        assert_eq!(
            finding.evidence,
            vec!["c1's source 192.0.2.2 is an address of director (eth0)"]
        );
    }

    #[test]
    fn silent_for_an_outside_client() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
