//! Cause 8: IPVS balances connections, not requests; requests that share a kept-alive
//! connection all go to the server that connection went to.

use crate::lvs::CauseId;
use std::collections::{BTreeMap, BTreeSet};

use super::common::*;
use crate::diagnose::evidence::{Evidence, ProbeKind, Proto};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::Keepalive;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    if ev.service.as_ref().is_some_and(|s| s.proto == Proto::Udp) {
        return None; // a reused UDP socket is one IPVS flow: udp-flow's business
    }
    // (client, connection) -> (requests, backends)
    let mut per_conn: BTreeMap<(&str, u32), (u32, BTreeSet<&str>)> = BTreeMap::new();
    for r in ev.records.iter().filter(|r| r.error.is_none()) {
        let entry = per_conn.entry((r.client.as_str(), r.connection)).or_default();
        entry.0 += 1;
        entry.1.extend(r.backend.as_deref());
    }
    let requests: u32 = per_conn.values().map(|(n, _)| n).sum();
    let connections = per_conn.len();
    let reused = connections > 0 && requests as usize > connections;
    if !reused {
        // Probes can contrast new connections with kept-alive ones, but if the main run
        // opened a connection per request, keep-alive is not what skewed it.
        return None;
    }

    let mut lines = Vec::new();
    let mut per_client: BTreeMap<&str, (u32, usize, BTreeSet<&str>)> = BTreeMap::new();
    for ((client, _), (n, backends)) in &per_conn {
        let e = per_client.entry(client).or_default();
        e.0 += n;
        e.1 += 1;
        e.2.extend(backends.iter().copied());
    }
    for (client, (n, conns, backends)) in per_client {
        let to: Vec<&str> = backends.into_iter().collect();
        lines.push(format!(
            "{client}: {n} requests over {conns} connection(s), answered by {}",
            to.join(", ")
        ));
    }
    let new_conn = ev
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::NewConn)
        .map(|p| p.distinct_backends())
        .max();
    let kept = ev
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::Keepalive)
        .map(|p| p.distinct_backends())
        .min();
    let contrast = matches!((new_conn, kept), (Some(n), Some(k)) if n > k);
    if contrast {
        for p in ev
            .probes
            .iter()
            .filter(|p| matches!(p.kind, ProbeKind::NewConn | ProbeKind::Keepalive))
        {
            let label = if p.kind == ProbeKind::NewConn {
                "new-conn"
            } else {
                "keepalive"
            };
            lines.push(format!(
                "probe {label}: {} requests over {} connection(s) reached {} server(s) ({})",
                p.requests,
                p.connections,
                p.distinct_backends(),
                backend_list(&p.per_backend)
            ));
        }
    }

    let explains = if contrast {
        0.9
    } else if connections < spread.eligible {
        0.8
    } else if !spread.healthy {
        0.5
    } else {
        return None;
    };
    Some(
        Finding::new(ID, "Requests share kept-alive connections; IPVS balances connections, not requests", explains)
            .evidence(capped(lines))
            .fix([
                "test with a new connection per request (curl per request, `Connection: close`, ab without -k)".to_string(),
                "for per-request spread, balance at L7 (HTTP proxy) or lower the servers' keepalive_timeout; HTTP/2/gRPC: send GOAWAY periodically".to_string(),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_on_shared_connection_and_probe_contrast() {
        let ev = sample::keepalive();
        let finding = check(&ev, &summarise(&ev)).expect("keepalive must fire");
        assert_eq!(finding.explains, 0.9);
        assert_eq!(
            finding.evidence[0],
            "c1: 30 requests over 1 connection(s), answered by rs1"
        );
        assert_eq!(
            finding.evidence[1],
            "probe new-conn: 30 requests over 30 connection(s) reached 3 server(s) (rs1 10, rs2 10, rs3 10)"
        );
        assert_eq!(
            finding.evidence[2],
            "probe keepalive: 30 requests over 1 connection(s) reached 1 server(s) (rs1 30)"
        );
    }

    #[test]
    fn fires_from_records_alone_when_too_few_connections() {
        let mut ev = sample::keepalive();
        ev.probes.clear();
        let finding = check(&ev, &summarise(&ev)).expect("keepalive from records");
        assert_eq!(finding.explains, 0.8);
    }

    #[test]
    fn probe_contrast_alone_is_not_enough() {
        // Main run: a new connection per request, all to rs1 (another cause); the probes
        // still show new connections spreading and a kept-alive one not.
        let mut ev = sample::keepalive();
        ev.records = (0..30).map(|n| sample::record(n, "rs1")).collect();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn silent_for_udp_services() {
        let mut ev = sample::keepalive();
        ev.service.as_mut().unwrap().proto = Proto::Udp;
        assert_eq!(check(&ev, &summarise(&ev)), None);
        ev.service.as_mut().unwrap().proto = Proto::Tcp;
        assert!(check(&ev, &summarise(&ev)).is_some());
    }

    #[test]
    fn silent_for_new_connections_and_for_reuse_that_still_spreads() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // 3 requests on each of 10 connections, rr over connections: spread is even.
        let mut ev = sample::healthy_dr();
        for (n, r) in ev.records.iter_mut().enumerate() {
            r.connection = n as u32 / 3;
            r.backend = Some(format!("rs{}", (n / 3) % 3 + 1));
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
