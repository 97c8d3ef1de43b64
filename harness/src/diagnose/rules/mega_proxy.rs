//! Cause 21: every client is behind one NAT or proxy (a "mega-proxy"). The director sees one
//! client address, so persistence or source hashing, which key on it, send everyone to one
//! real server. The clients' own addresses and the one the real servers saw tell it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::MegaProxy;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let keyed_on_client = svc.persistence_secs.is_some() || svc.scheduler == "sh";
    if !keyed_on_client {
        return None;
    }
    let sources: BTreeSet<IpAddr> = ev.records.iter().map(|r| r.source.ip()).collect();
    let mut seen: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for r in ev.records.iter().filter(|r| r.error.is_none()) {
        if let (Some(addr), Some(backend)) = (r.seen_as, &r.backend) {
            seen.entry(addr.ip()).or_default().insert(backend.clone());
        }
    }
    // Several client addresses, all seen as one that none of them has: a NAT in between.
    let [(nat, backends)] = seen.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    if sources.len() < 2 || sources.contains(nat) {
        return None;
    }
    let key = if svc.persistence_secs.is_some() {
        format!(
            "persistence ({} s) keys its templates",
            svc.persistence_secs.unwrap_or(0)
        )
    } else {
        "source hashing (sh) hashes".to_string()
    };
    let listed: Vec<String> = sources.iter().map(ToString::to_string).collect();
    let lines = vec![
        format!(
            "{} client addresses ({}) reached the real servers as one: {nat}",
            sources.len(),
            capped(listed).join(", ")
        ),
        format!(
            "{key} on that one address: every client went to {}",
            backends.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
    ];
    let explains = if spread.distinct <= 1 { 0.95 } else { 0.6 };
    let service = ipvsadm_service(svc);
    Some(
        Finding::new(
            ID,
            format!("All {} clients are behind one NAT address ({nat})", sources.len()),
            explains,
        )
        .evidence(lines)
        .fix([
            format!("drop client-address affinity for traffic from {nat}: ipvsadm -E {service} -s rr (no -p); a wider persistence netmask (-M) cannot split one address"),
            "or keep affinity above the NAT: a cookie or the X-Forwarded-For header at an L7 balancer, or `-s sh -b sh-port` to hash the source port too".to_string(),
            format!("or give the clients their own addresses: no masquerading ({nat}) between them and the director"),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;
    use std::net::SocketAddr;

    /// Persistent service; three clients, each seen by the servers as the router's address.
    fn behind_one_nat() -> Evidence {
        let mut ev = sample::persistence();
        for (i, r) in ev.records.iter_mut().enumerate() {
            r.source = SocketAddr::from(([203, 0, 113, 10 + (i % 3) as u8], 40000 + i as u16));
            r.seen_as = Some(SocketAddr::from(([192, 0, 2, 254], 50000 + i as u16)));
        }
        ev
    }

    #[test]
    fn clients_seen_as_one_address_under_persistence_are_named_with_the_nat() {
        let ev = behind_one_nat();
        let f = check(&ev, &summarise(&ev)).expect("fires");
        assert!(f.title.contains("behind one NAT address (192.0.2.254)"), "{}", f.title);
        assert!(
            f.evidence[0].starts_with("3 client addresses (203.0.113.10, 203.0.113.11, 203.0.113.12)"),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn silent_without_affinity_without_a_nat_or_for_one_client() {
        let mut rr = behind_one_nat();
        rr.service.as_mut().unwrap().persistence_secs = None;
        assert!(check(&rr, &summarise(&rr)).is_none());

        let mut direct = behind_one_nat();
        for r in &mut direct.records {
            r.seen_as = Some(r.source);
        }
        assert!(check(&direct, &summarise(&direct)).is_none());

        let mut one = behind_one_nat();
        for r in &mut one.records {
            r.source = SocketAddr::from(([203, 0, 113, 10], 40000));
        }
        assert!(check(&one, &summarise(&one)).is_none());
    }
}
