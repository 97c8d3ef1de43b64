//! The run's faults as the diagnosis reads them: what keepalived's checkers did (their log,
//! table changes, failed checks and the outages measured against the events) and the
//! `[[event]]`s that fired.

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4};

use crate::diagnose::evidence::{
    CheckFailReason, CheckFailure, CheckerEvidence, EventEvidence, FaultEffect, HealthChange, HealthEvidence,
    HealthLogLine, OutageEvidence, SorryServerEvidence,
};
use crate::health::{CheckerKind, FailReason};
use crate::keepalived::names;
use crate::run::{FiredEvent, HealthOutcome, Outage};
use crate::scenario::{EventAction, Scenario};

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Service `index`'s checkers' evidence: the outcome of the run joined with its checker settings.
pub fn health_evidence(
    scenario: &Scenario,
    index: usize,
    outcome: &HealthOutcome,
    outages: &[Outage],
) -> HealthEvidence {
    let svc = &scenario.services[index];
    // keepalived names a real server by its trio: `[192.0.2.12]:tcp:80` (`[..]:none:0` in fwmark).
    let by_trio: HashMap<String, &str> = scenario
        .real_servers
        .iter()
        .filter(|rs| svc.has_real_server(&rs.name))
        .map(|rs| {
            let trio = names::trio(scenario, index, names::checked_dest(scenario, index, rs).0);
            (trio.to_string(), rs.name.as_str())
        })
        .collect();
    let about = |line: &str| trios_in(line).find_map(|t| by_trio.get(t)).map(|n| (*n).to_owned());
    let several = scenario.checked_services().count() > 1;
    // With several checked services, the log lines of this one: those naming its servers or VS.
    let fwm = svc.fwmark.as_ref().map(|m| format!("VS FWM {}", m.mark));
    let ours = |line: &str| {
        !several
            || about(line).is_some()
            || match &fwm {
                Some(vs) => line.ends_with(vs.as_str()),
                None => line.contains(&format!(":{}", svc.port)),
            }
    };
    let check = svc.health.as_ref();
    let checkers = check
        .map(|c| c.real_servers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|rc| {
            let rs = scenario.real_server(&rc.name)?;
            let own = SocketAddrV4::new(rs.address, names::checked_dest(scenario, index, rs).1.port());
            let (kind, settings) = match &rc.checker {
                Some((kind, settings)) => (Some(kind), Some(settings)),
                None => (None, None),
            };
            let secs = |d: Option<std::time::Duration>| d.map_or(0.0, |d| d.as_secs_f64());
            Some(CheckerEvidence {
                server: rc.name.clone(),
                kind: kind.map(|k| k.keyword().to_owned()),
                connect: match settings.and_then(|s| s.connect_to) {
                    Some(SocketAddr::V4(v4)) => v4,
                    _ => own,
                },
                path: match kind {
                    Some(CheckerKind::Http(http)) => http.urls.first().map(|u| u.path.clone()),
                    _ => None,
                },
                command: match kind {
                    Some(CheckerKind::Misc(misc)) => Some(misc.command.clone()),
                    _ => None,
                },
                delay_loop_secs: secs(settings.map(|s| s.delay_loop)),
                connect_timeout_secs: secs(settings.map(|s| s.connect_timeout)),
                retry: settings.map_or(0, |s| s.retry),
                delay_before_retry_secs: secs(settings.map(|s| s.delay_before_retry)),
                inhibit_on_failure: rc.inhibit_on_failure,
            })
        })
        .collect();
    HealthEvidence {
        director: outcome.director.clone(),
        service: svc.name.clone(),
        checkers,
        log: outcome
            .log
            .iter()
            .filter(|l| l.director.is_none() && ours(&l.line))
            .map(|l| HealthLogLine {
                at_ms: l.at_ms,
                line: l.line.clone(),
                server: about(&l.line),
            })
            .collect(),
        changes: outcome
            .table
            .iter()
            .filter(|c| c.service == svc.name && c.director == outcome.director)
            .map(|c| HealthChange {
                at_ms: c.at_ms,
                dest: c.dest,
                server: c.real_server.clone(),
                sorry: c.sorry,
                op: c.op.to_owned(),
                weight: c.weight,
            })
            .collect(),
        failures: outcome
            .failures
            .iter()
            .filter(|f| f.service == svc.name && f.director == outcome.director)
            .filter_map(|f| {
                Some(CheckFailure {
                    at_ms: f.at_ms,
                    server: f.real_server.clone()?,
                    reason: fail_reason(f.reason),
                })
            })
            .collect(),
        outages: outages
            .iter()
            .filter(|o| o.service == svc.name)
            .map(|o| OutageEvidence {
                server: o.server.clone(),
                down_event: o.down_event.clone(),
                down_at_ms: o.down_at_ms,
                removed_after_ms: o.removed_after_ms,
                failed_meanwhile: o.failed_meanwhile,
                up_event: o.up_event.clone(),
                restored_after_ms: o.restored_after_ms,
            })
            .collect(),
        quorum: check.map_or(1, |c| c.quorum),
        hysteresis: check.map_or(0, |c| c.hysteresis),
        sorry_server: check
            .and_then(|c| c.sorry_server.as_ref())
            .map(|s| SorryServerEvidence {
                addr: s.addr,
                name: s.real_server.clone().or_else(|| {
                    scenario
                        .real_servers
                        .iter()
                        .find(|r| r.address == *s.addr.ip() && scenario.real_port(index, r) == s.addr.port())
                        .map(|r| r.name.clone())
                }),
            }),
        out_at_end: outcome
            .servers
            .iter()
            .filter(|s| s.out_at_end && s.service == svc.name)
            .map(|s| s.name.clone())
            .collect(),
    }
}

/// Every `[address]:proto:port` in a keepalived line, in order.
fn trios_in(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices('[').filter_map(move |(start, _)| {
        let rest = &line[start..];
        let close = rest.find(']')?;
        let tail = rest[close + 1..]
            .strip_prefix(":tcp:")
            .or(rest[close + 1..].strip_prefix(":udp:"))?;
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        (digits > 0).then(|| &rest[..rest.len() - tail.len() + digits])
    })
}

fn fail_reason(reason: FailReason) -> CheckFailReason {
    match reason {
        FailReason::ConnectTimeout => CheckFailReason::ConnectTimeout,
        FailReason::ConnectRefused => CheckFailReason::ConnectRefused,
        FailReason::ConnectError => CheckFailReason::ConnectError,
        FailReason::NoData => CheckFailReason::NoData,
        FailReason::HttpStatus(code) => CheckFailReason::HttpStatus(code),
        FailReason::Digest => CheckFailReason::Digest,
        FailReason::ReadTimeout => CheckFailReason::ReadTimeout,
        FailReason::MiscExit(code) => CheckFailReason::MiscExit(code),
        FailReason::MiscTimeout => CheckFailReason::MiscTimeout,
        FailReason::MiscSignal(signal) => CheckFailReason::MiscSignal(signal),
    }
}

/// What an action does to a real server's service.
fn effect(action: &EventAction) -> FaultEffect {
    match action {
        EventAction::Stop | EventAction::Refuse | EventAction::Link(false) => FaultEffect::Down,
        EventAction::Slow(_) | EventAction::Error(_) => FaultEffect::Degraded,
        EventAction::Start | EventAction::Link(true) => FaultEffect::Back,
        // Weights, sysctls and whatever acts on directors: not a real server's service.
        _ => FaultEffect::Other,
    }
}

/// The events that fired, with what each did to its host's service.
pub fn events_evidence(scenario: &Scenario, fired: &[FiredEvent]) -> Vec<EventEvidence> {
    fired
        .iter()
        .map(|f| EventEvidence {
            name: f.name.clone(),
            host: f.host.clone(),
            action: f.action.clone(),
            effect: scenario
                .events
                .iter()
                .find(|e| e.name == f.name)
                .map_or(FaultEffect::Other, |e| effect(&e.action)),
            due_ms: ms(f.due_ms),
            done_ms: ms(f.done_ms),
            error: f.error.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::run::{HealthFailure, HealthLine, HealthTableChange, ServerHealth};

    fn scenario() -> Scenario {
        let text = "[service]\nmode = \"dr\"\nscheduler = \"rr\"\n\
                    [service.check]\nkind = \"tcp\"\ndelay_loop = 2\nconnect_timeout = 1\nretry = 0\n\
                    [[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n\
                    [traffic]\nrequests = 300\nrate = 100\n\
                    [[event]]\nname = \"dies\"\nat_request = 100\nhost = \"rs2\"\nstop = true\n\
                    [[event]]\nname = \"slow\"\nat_request = 150\nhost = \"rs1\"\nslow = \"300ms\"\n";
        crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t")))
    }

    #[test]
    fn checker_lines_changes_and_failures_name_their_server() {
        let s = scenario();
        let rs2: SocketAddr = "192.0.2.12:80".parse().unwrap();
        let outcome = HealthOutcome {
            director: "director".into(),
            services: vec!["tcp/80".into()],
            started_ms: -1500.0,
            log: vec![
                HealthLine {
                    at_ms: 1200.0,
                    line: "TCP_CHECK on service [192.0.2.12]:tcp:80 failed.".into(),
                    director: None,
                },
                HealthLine {
                    at_ms: 1200.0,
                    line: "Lost quorum 1-0=1 > 0 for VS [192.0.2.100]:tcp:80".into(),
                    director: None,
                },
            ],
            notify: Vec::new(),
            table: vec![HealthTableChange {
                at_ms: 1200.0,
                service: "tcp/80".into(),
                director: "director".into(),
                dest: rs2,
                real_server: Some("rs2".into()),
                sorry: false,
                op: "remove",
                weight: None,
            }],
            servers: vec![ServerHealth {
                name: "rs2".into(),
                service: "tcp/80".into(),
                out_after_start_ms: Some(2700.0),
                out_at_end: true,
            }],
            failures: vec![HealthFailure {
                at_ms: 1200.0,
                service: "tcp/80".into(),
                director: "director".into(),
                dest: rs2,
                real_server: Some("rs2".into()),
                reason: FailReason::ConnectRefused,
            }],
            problems: Vec::new(),
            implementation: crate::ha::Implementation::Embedded,
        };
        let h = health_evidence(&s, 0, &outcome, &[]);
        assert_eq!(h.log[0].server.as_deref(), Some("rs2"));
        assert_eq!(h.log[1].server, None, "the VS line names no real server");
        assert!(h.changes[0].takes_out());
        assert_eq!(h.failures[0].reason, CheckFailReason::ConnectRefused);
        assert_eq!(h.out_at_end, ["rs2"]);
        let c = &h.checkers[1];
        assert_eq!((c.server.as_str(), c.kind.as_deref()), ("rs2", Some("TCP_CHECK")));
        assert_eq!(c.connect, "192.0.2.12:80".parse().unwrap());
        assert_eq!((c.delay_loop_secs, c.connect_timeout_secs, c.retry), (2.0, 1.0, 0));
        assert_eq!((h.quorum, h.hysteresis, h.sorry_server.is_none()), (1, 0, true));
    }

    #[test]
    fn trios_are_found_where_keepalived_prints_them() {
        let line = "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:udp:53";
        assert_eq!(
            trios_in(line).collect::<Vec<_>>(),
            ["[192.0.2.12]:tcp:80", "[192.0.2.100]:udp:53"]
        );
        assert_eq!(trios_in("[x] and [1.2.3.4]:tcp: and [y]:sctp:1").count(), 0);
    }

    #[test]
    fn events_say_what_they_did_to_the_service() {
        let s = scenario();
        let fired = |name: &str, host: &str, at: u64| FiredEvent {
            name: name.into(),
            host: host.into(),
            action: String::new(),
            due_ms: Duration::from_millis(at),
            done_ms: Duration::from_millis(at + 3),
            error: None,
        };
        let ev = events_evidence(&s, &[fired("dies", "rs2", 1000), fired("slow", "rs1", 1500)]);
        assert_eq!(
            ev.iter().map(|e| e.effect).collect::<Vec<_>>(),
            [FaultEffect::Down, FaultEffect::Degraded]
        );
        assert_eq!((ev[0].due_ms.round(), ev[0].done_ms.round()), (1000.0, 1003.0));
    }
}
