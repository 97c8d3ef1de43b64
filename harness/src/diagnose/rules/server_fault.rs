//! A real server failed during the run (an `[[event]]` stopped it, made it refuse, took its
//! link down, made it answer errors or slowly) and nothing took it out of the table
//! meanwhile: IPVS kept scheduling it its share, and that share failed.
//!
//! `server-down` reads the state after the run (table, listeners, links); this reads the
//! run's timeline: a fault that is over by the end leaves no other trace.

use std::collections::BTreeMap;
use std::ops::Range;

use super::common::*;
use super::health_check::lb_kind;
use super::server_down::SOURCE_PORTS_EXHAUSTED;
use crate::diagnose::evidence::{EventEvidence, Evidence, FaultEffect, Proto, RecordEvidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::ServerFault;

/// One fault's cost: the requests that failed while it lasted, and which of them it explains.
struct Fault<'e> {
    event: &'e EventEvidence,
    /// The event that ended it, if one did before the traffic ended.
    ended_by: Option<&'e EventEvidence>,
    failed: BTreeMap<String, u32>,
    /// HTTP errors and failures with no server named that fall to this server.
    attributed: u32,
    /// Answers per server among the requests sent between its first and last failure.
    answered: BTreeMap<String, u32>,
}

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let faults: Vec<Fault> = ev
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| fault(ev, i, e))
        .collect();
    if faults.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut fix = Vec::new();
    for f in &faults {
        let host = f.event.host.as_str();
        let until = match f.ended_by {
            Some(end) => format!("until \"{}\" ({}) {}", end.name, end.action, moment(end.done_ms)),
            None => "until the traffic ended".to_string(),
        };
        let failed_total: u32 = f.failed.values().sum();
        lines.push(format!(
            "\"{}\" ({} on {host}) took effect {}; {until}, {failed_total} request(s) failed ({})",
            f.event.name,
            f.event.action,
            moment(f.event.done_ms),
            backend_list(&f.failed)
        ));
        let by_it = f.answered.get(host).copied().unwrap_or(0);
        let others: BTreeMap<String, u32> = f
            .answered
            .iter()
            .filter(|(n, _)| n.as_str() != host)
            .map(|(n, c)| (n.clone(), *c))
            .collect();
        if f.event.effect == FaultEffect::Degraded {
            lines.push(format!(
                "meanwhile {host} answered {by_it} request(s) well and {} failed on it",
                f.attributed
            ));
        } else if by_it == 0 && !others.is_empty() {
            lines.push(format!(
                "meanwhile {host} answered none of the requests sent, the others did ({}): IPVS kept scheduling {host}",
                backend_list(&others)
            ));
        }
        if let Some(rs) = ev.real_server(host) {
            if let Some(dest) = ev.ipvs.iter().flat_map(|i| &i.dests).find(|d| d.addr == rs.address) {
                let served = spread.per_backend.get(host).copied().unwrap_or(0);
                if dest.conns_total > u64::from(served) {
                    lines.push(format!(
                        "IPVS scheduled {} connections to {host} over the run (--stats Conns) and {served} were answered well",
                        dest.conns_total
                    ));
                }
            }
        }
        lines.push(watcher_line(ev, host, f.event.effect));
        if let Some(rs) = ev.real_server(host) {
            let port = service_port_on(ev, rs).unwrap_or(svc.port);
            fix.push(checker_fix(ev, host, rs.address, port, f.event.effect));
            fix.push(format!(
                "by hand while {host} is down: ipvsadm -e {} -r {}:{port} {} -w 0 (drain), then ipvsadm -d {} -r {}:{port}",
                ipvsadm_service(svc),
                rs.address,
                ipvsadm_forward(ev.mode),
                ipvsadm_service(svc),
                rs.address
            ));
        }
    }
    // Several faults of one server say the same of it once.
    let mut seen = std::collections::HashSet::new();
    lines.retain(|l| seen.insert(l.clone()));
    fix.retain(|f| seen.insert(f.clone()));
    let explained: u32 = faults.iter().map(|f| f.attributed).sum();
    let client_limited = ev
        .records
        .iter()
        .filter(|r| r.error.as_deref() == Some(SOURCE_PORTS_EXHAUSTED))
        .count() as u32;
    let failures = spread.errors.saturating_sub(client_limited).max(1);
    let hosts: std::collections::BTreeSet<&str> = faults.iter().map(|f| f.event.host.as_str()).collect();
    let whose = if hosts.len() == 1 { "its" } else { "their" };
    Some(
        Finding::new(
            ID,
            format!(
                "{} failed during the run and stayed in the table: {whose} share of the requests failed",
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            ),
            0.9 * f64::from(explained.min(failures)) / f64::from(failures),
        )
        .evidence(capped(lines))
        .fix(fix),
    )
}

/// The fault started by event `i`, when it made requests fail and no checker took its
/// server out while it lasted.
fn fault<'e>(ev: &'e Evidence, i: usize, event: &'e EventEvidence) -> Option<Fault<'e>> {
    if event.error.is_some() || !matches!(event.effect, FaultEffect::Down | FaultEffect::Degraded) {
        return None;
    }
    let host = event.host.as_str();
    ev.real_server(host)?;
    // It lasts until the next event on the same host changes it again.
    let ended_by = ev.events[i + 1..].iter().find(|e| e.host == host && e.error.is_none());
    let window: Range<f64> = event.due_ms..ended_by.map_or(f64::INFINITY, |e| e.done_ms);
    if taken_out_by_checker(ev, host, &window) {
        return None;
    }
    let sent_in = |range: &Range<f64>| -> Vec<&'e RecordEvidence> {
        ev.records
            .iter()
            .filter(|r| r.sent_ms.is_some_and(|t| range.contains(&t)))
            .collect()
    };
    let mut failed: BTreeMap<String, u32> = BTreeMap::new();
    let (mut by_it, mut unnamed) = (0, 0);
    let mut failing = f64::INFINITY..f64::NEG_INFINITY;
    for r in sent_in(&window) {
        match (&r.error, &r.backend, r.sent_ms) {
            (Some(e), _, _) if e == SOURCE_PORTS_EXHAUSTED => {}
            (Some(e), backend, Some(t)) => {
                *failed.entry(e.clone()).or_default() += 1;
                failing = failing.start.min(t)..failing.end.max(t);
                match backend {
                    Some(b) if b == host => by_it += 1,
                    Some(_) => {}
                    None => unnamed += 1,
                }
            }
            _ => {}
        }
    }
    // Between its first and its last failure: what the server answered then says whether the
    // failures that name no server are its (a request sent as the next event acts may already
    // reach it back, so the window's edges say nothing).
    let failing = failing.start..failing.end + f64::EPSILON;
    let mut answered: BTreeMap<String, u32> = BTreeMap::new();
    for r in sent_in(&failing) {
        if let (None, Some(b)) = (&r.error, &r.backend) {
            *answered.entry(b.clone()).or_default() += 1;
        }
    }
    let silent = answered.get(host).copied().unwrap_or(0) == 0;
    let attributed = by_it + if silent { unnamed } else { 0 };
    (attributed > 0).then_some(Fault {
        event,
        ended_by,
        failed,
        attributed,
        answered,
    })
}

/// Whether keepalived took `host` out (removed, or weight 0) while the fault lasted: then the
/// failures before it noticed are the `health-check` finding's.
fn taken_out_by_checker(ev: &Evidence, host: &str, window: &Range<f64>) -> bool {
    ev.health.as_ref().is_some_and(|h| {
        h.changes
            .iter()
            .any(|c| !c.sorry && c.takes_out() && c.server.as_deref() == Some(host) && window.contains(&c.at_ms))
    })
}

/// Why nothing took the server out.
fn watcher_line(ev: &Evidence, host: &str, effect: FaultEffect) -> String {
    let Some(health) = &ev.health else {
        return format!("no health checker ran: nothing could take {host} out of the table while it failed");
    };
    match health
        .checkers
        .iter()
        .find(|c| c.server == host)
        .and_then(|c| c.kind.as_deref())
    {
        None => format!("{host} has no checker in the virtual server: keepalived never takes it out"),
        Some("TCP_CHECK") if effect == FaultEffect::Degraded => {
            format!("{host}'s TCP_CHECK kept passing: a connect succeeds while the answers are errors or late")
        }
        Some(kind) => format!("{host}'s {kind} did not take it out while the fault lasted"),
    }
}

/// A checker that would have taken the server out, in keepalived.conf terms.
fn checker_fix(ev: &Evidence, host: &str, rip: std::net::Ipv4Addr, port: u16, effect: FaultEffect) -> String {
    let svc = ev.service.as_ref();
    let vip = svc.map_or("VIP".to_string(), |s| s.vip.to_string());
    let vport = svc.map_or(port, |s| s.port);
    let lb_algo = svc.map_or("rr", |s| s.scheduler.as_str());
    let protocol = svc.map_or("TCP", |s| s.proto.name());
    let udp = svc.is_some_and(|s| s.proto == Proto::Udp);
    let checker = match (udp, effect) {
        // A TCP connect says nothing of a UDP service.
        (true, _) => "UDP_CHECK { connect_timeout 1 retry 1 delay_before_retry 1 }",
        (false, FaultEffect::Degraded) => {
            "HTTP_GET { url { path / status_code 200 } connect_timeout 1 retry 1 delay_before_retry 1 }"
        }
        (false, _) => "TCP_CHECK { connect_timeout 1 retry 1 delay_before_retry 1 }",
    };
    let watched = match &ev.health {
        Some(h) if h.checkers.iter().any(|c| c.server == host && c.kind.is_some()) => {
            "give it a checker that sees this fault"
        }
        _ => "add a health checker, so keepalived takes it out while it fails and back when it answers",
    };
    format!(
        "{host}: {watched}: virtual_server {vip} {vport} {{ delay_loop 2 lb_algo {lb_algo} lb_kind {} protocol {protocol} real_server {rip} {port} {{ weight 1 {checker} }} }}",
        lb_kind(ev.mode)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_when_a_stopped_server_stays_in_the_table() {
        let ev = sample::server_dies();
        let finding = check(&ev, &summarise(&ev)).expect("server-fault must fire");
        assert_eq!(
            finding.title,
            "rs2 failed during the run and stayed in the table: its share of the requests failed"
        );
        assert!((finding.explains - 0.9).abs() < 1e-9, "{}", finding.explains);
        assert_eq!(
            finding.evidence,
            [
                "\"rs2-dies\" (stop on rs2) took effect at 1002 ms; until \"rs2-back\" (start) at 2003 ms, 34 request(s) failed (connection refused 34)",
                "meanwhile rs2 answered none of the requests sent, the others did (rs1 33, rs3 33): IPVS kept scheduling rs2",
                "IPVS scheduled 100 connections to rs2 over the run (--stats Conns) and 66 were answered well",
                "no health checker ran: nothing could take rs2 out of the table while it failed",
            ]
        );
        assert!(
            finding.fix[0].starts_with("rs2: add a health checker, so keepalived takes it out while it fails and back when it answers: virtual_server 192.0.2.100 80 { delay_loop 2 lb_algo rr lb_kind DR protocol TCP real_server 192.0.2.12 80 { weight 1 TCP_CHECK { connect_timeout 1"),
            "{:?}",
            finding.fix
        );
        // An answer from rs2 to a request sent as "rs2-back" acted is its return, not a sign
        // that the failures meanwhile were another server's.
        let mut edge = ev.clone();
        edge.records[200].backend = Some("rs2".into());
        assert_eq!(
            check(&edge, &summarise(&edge)).map(|f| f.explains),
            Some(finding.explains)
        );
        assert_eq!(
            finding.fix[1],
            "by hand while rs2 is down: ipvsadm -e -t 192.0.2.100:80 -r 192.0.2.12:80 -g -w 0 (drain), then ipvsadm -d -t 192.0.2.100:80 -r 192.0.2.12:80"
        );
    }

    #[test]
    fn http_errors_count_against_their_server_and_ask_for_http_get() {
        let mut ev = sample::server_dies();
        ev.events[0].action = "error 500".into();
        ev.events[0].effect = FaultEffect::Degraded;
        for r in ev.records.iter_mut().filter(|r| r.error.is_some()) {
            r.backend = Some("rs2".into());
            r.error = Some("HTTP 500".into());
        }
        let finding = check(&ev, &summarise(&ev)).expect("server-fault must fire");
        assert!(
            finding.evidence[0].ends_with("34 request(s) failed (HTTP 500 34)"),
            "{:?}",
            finding.evidence
        );
        assert_eq!(
            finding.evidence[1],
            "meanwhile rs2 answered 0 request(s) well and 34 failed on it"
        );
        assert!(
            finding.fix[0].contains("HTTP_GET { url { path / status_code 200 }"),
            "{:?}",
            finding.fix
        );
        // A UDP service is checked over UDP.
        ev.service.as_mut().unwrap().proto = Proto::Udp;
        let finding = check(&ev, &summarise(&ev)).expect("server-fault must fire");
        assert!(
            finding.fix[0].contains("protocol UDP real_server 192.0.2.12 80 { weight 1 UDP_CHECK {"),
            "{:?}",
            finding.fix
        );
    }

    #[test]
    fn a_server_that_fails_twice_is_described_once_per_fault() {
        let mut ev = sample::server_dies();
        // rs2 also refuses from 2500 ms to the end: its slots fail again.
        ev.events.push(sample::event(
            "rs2-refuses",
            "rs2",
            "refuse",
            FaultEffect::Down,
            2500.0,
            2501.0,
        ));
        for r in ev
            .records
            .iter_mut()
            .filter(|r| r.connection >= 251 && r.connection % 3 == 1)
        {
            r.backend = None;
            r.error = Some("connection refused".into());
        }
        let finding = check(&ev, &summarise(&ev)).expect("server-fault must fire");
        assert_eq!(
            finding.title,
            "rs2 failed during the run and stayed in the table: its share of the requests failed"
        );
        assert!(
            finding.evidence[4].starts_with(
                "\"rs2-refuses\" (refuse on rs2) took effect at 2501 ms; until the traffic ended, 16 request(s) failed"
            ),
            "{:?}",
            finding.evidence
        );
        let watcher = "no health checker ran: nothing could take rs2 out of the table while it failed";
        assert_eq!(
            finding.evidence.iter().filter(|l| *l == watcher).count(),
            1,
            "{:?}",
            finding.evidence
        );
        assert_eq!(finding.fix.len(), 2, "{:?}", finding.fix);
        assert!((finding.explains - 0.9).abs() < 1e-9);
    }

    #[test]
    fn silent_when_the_checker_took_it_out_or_nothing_failed() {
        // The checker noticed: its finding (health-check) covers the failures before it did.
        let ev = sample::checker_takes_out();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // No failures in the fault's window.
        let mut ev = sample::server_dies();
        for r in ev.records.iter_mut().filter(|r| r.error.is_some()) {
            r.error = None;
            r.backend = Some("rs2".into());
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // Another server's failures, while rs2 answered: not rs2's.
        let mut ev = sample::server_dies();
        ev.events[0].host = "rs1".into();
        ev.events[1].host = "rs1".into();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // A fault on a host that is not a real server, or that failed to fire.
        let mut ev = sample::server_dies();
        ev.events[0].error = Some("no such server".into());
        assert_eq!(check(&ev, &summarise(&ev)), None);
        assert_eq!(check(&sample::healthy_dr(), &summarise(&sample::healthy_dr())), None);
    }
}
