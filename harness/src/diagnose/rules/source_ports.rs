//! The client, not the director: it ran out of source ports, so requests never left it.
//! Each new connection from one address to one VIP:port needs a port of its own while the
//! previous ones sit in TIME_WAIT (or stay open); when every port of the local range is in
//! use, connect fails before any packet reaches the director.

use crate::lvs::CauseId;
use std::collections::BTreeMap;

use super::server_down::SOURCE_PORTS_EXHAUSTED;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::SourcePorts;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let mut per_client: BTreeMap<(&str, std::net::IpAddr), u32> = BTreeMap::new();
    for r in ev
        .records
        .iter()
        .filter(|r| r.error.as_deref() == Some(SOURCE_PORTS_EXHAUSTED))
    {
        *per_client.entry((r.client.as_str(), r.source.ip())).or_default() += 1;
    }
    let exhausted: u32 = per_client.values().sum();
    if exhausted == 0 {
        return None;
    }
    let mut evidence: Vec<String> = per_client
        .iter()
        .map(|((client, addr), n)| {
            format!("{client}: {n} request(s) from {addr} found every source port in use and never left the client")
        })
        .collect();
    evidence.push(format!(
        "{exhausted} of {} requests failed this way: not a fault of the director or the real servers",
        spread.requests
    ));
    Some(
        Finding::new(ID, "The client ran out of source ports", f64::from(exhausted) / f64::from(spread.requests.max(1)))
            .evidence(evidence)
            .fix([
                "in the scenario: more client addresses (`sources = N` in [traffic]) or `connection = \"keepalive\"`".to_owned(),
                "on a real client: reuse connections, spread over more source addresses, or widen net.ipv4.ip_local_port_range".to_owned(),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_on_exhausted_ports_and_names_the_client_address() {
        let mut ev = sample::healthy_dr();
        ev.records = (0..30)
            .map(|n| sample::record(n, ["rs1", "rs2", "rs3"][n as usize % 3]))
            .collect();
        for r in &mut ev.records[20..] {
            r.backend = None;
            r.error = Some(SOURCE_PORTS_EXHAUSTED.into());
        }
        let finding = check(&ev, &summarise(&ev)).expect("fires");
        assert_eq!(finding.id, ID);
        assert!(
            finding.evidence[0].starts_with("c1: 10 request(s) from 192.0.2.10 "),
            "{:?}",
            finding.evidence
        );
        assert!(
            finding.evidence[1].starts_with("10 of 30 requests"),
            "{:?}",
            finding.evidence
        );
        assert!(finding.fix[0].contains("sources = N"));
    }

    #[test]
    fn silent_without_exhausted_ports() {
        let mut ev = sample::healthy_dr();
        ev.records = (0..9).map(|n| sample::record(n, "rs1")).collect();
        ev.records[0].error = Some("timeout".into());
        assert!(check(&ev, &summarise(&ev)).is_none());
    }
}
