//! Cause 6: IPVS keys UDP on the 5-tuple; datagrams from one ip:port are one
//! connection for the UDP timeout, unless one-packet scheduling (ops) is on.

use crate::lvs::CauseId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, Proto};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::UdpFlow;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    if svc.proto != Proto::Udp || svc.one_packet || !has_director(ev) {
        return None;
    }
    let mut per_client: BTreeMap<&str, (BTreeSet<SocketAddr>, BTreeSet<&str>, u32)> = BTreeMap::new();
    for r in ev.records.iter().filter(|r| r.error.is_none()) {
        let e = per_client.entry(r.client.as_str()).or_default();
        e.0.insert(r.source);
        e.1.extend(r.backend.as_deref());
        e.2 += 1;
    }
    let mut lines = vec![format!(
        "{} has no one-packet scheduling (ops): datagrams from one ip:port form one IPVS connection for the UDP timeout (300 s by default)",
        service_label(svc)
    )];
    let mut few_ports = false;
    for (client, (sources, backends, n)) in &per_client {
        if sources.len() < spread.eligible.max(2) && *n > sources.len() as u32 {
            few_ports = true;
            let shown: Vec<String> = sources.iter().take(3).map(|s| s.to_string()).collect();
            let to: Vec<&str> = backends.iter().copied().collect();
            lines.push(format!(
                "{client} sent {n} datagrams from {} source port(s) ({}), answered by {}",
                sources.len(),
                shown.join(", "),
                to.join(", ")
            ));
        }
    }
    let explains = if few_ports && !spread.healthy {
        0.9
    } else if few_ports {
        0.5
    } else {
        0.3
    };
    Some(
        Finding::new(ID, "UDP flows stick to one server (no one-packet scheduling)", explains)
            .evidence(capped(lines))
            .fix([
                format!(
                    "ipvsadm -E {} -s {} -o (keepalived: `ops`) for stateless datagram services",
                    ipvsadm_service(svc),
                    svc.scheduler
                ),
                "or let clients vary their source port; shorten the UDP timeout: ipvsadm --set 0 0 N".to_string(),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::RecordEvidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn udp_one_port() -> Evidence {
        let mut ev = sample::healthy_dr();
        let svc = ev.service.as_mut().unwrap();
        svc.proto = Proto::Udp;
        svc.port = 53;
        let source: SocketAddr = "192.0.2.10:5353".parse().unwrap();
        ev.records = (0..30)
            .map(|n| RecordEvidence {
                source,
                connection: 0,
                ..sample::record(n, "rs2")
            })
            .collect();
        ev
    }

    #[test]
    fn fires_for_one_source_port_without_ops() {
        let ev = udp_one_port();
        let finding = check(&ev, &summarise(&ev)).expect("udp-flow must fire");
        assert_eq!(finding.explains, 0.9);
        assert_eq!(
            finding.evidence[1],
            "c1 sent 30 datagrams from 1 source port(s) (192.0.2.10:5353), answered by rs2"
        );
        assert!(finding.fix[0].starts_with("ipvsadm -E -u 192.0.2.100:53 -s rr -o"));
    }

    #[test]
    fn silent_with_ops_or_tcp() {
        let mut ev = udp_one_port();
        ev.service.as_mut().unwrap().one_packet = true;
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
