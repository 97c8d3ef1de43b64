//! Expectations of a scenario checked against what the run saw.

use serde::Serialize;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::report::Tally;
use crate::scenario::{Expect, RealServer, ServerState};
use crate::traffic::RequestRecord;

/// One expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub what: String,
    pub passed: bool,
    /// What was seen, when it differs from what was wanted.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl Verdict {
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// `records` are the requests in the order they were sent.
pub fn evaluate(expect: &Expect, servers: &[RealServer], tally: &Tally, records: &[RequestRecord]) -> Verdict {
    let sequence: Vec<Option<&str>> = records
        .iter()
        .map(|r| if r.error.is_none() { r.backend.as_deref() } else { None })
        .collect();
    let mut checks = Vec::new();
    let mut check = |what: String, passed: bool, detail: String| {
        checks.push(Check {
            what,
            passed,
            detail: (!passed).then_some(detail),
        });
    };

    let failed = tally.failed();
    check(
        format!("at most {} failed request(s)", expect.errors),
        failed <= expect.errors,
        format!("{failed} failed: {}{}", describe_errors(tally), client_advice(records)),
    );

    let answering: Vec<&str> = tally.answering().collect();
    if let Some(want) = &expect.backends {
        let mut want_sorted: Vec<&str> = want.iter().map(String::as_str).collect();
        want_sorted.sort_unstable();
        check(
            format!("exactly {} answer", want.join(", ")),
            want_sorted == answering,
            format!("answering: {}", list_or_none(&answering)),
        );
    }
    if let Some(n) = expect.answering {
        check(
            format!("{n} distinct backend(s) answer"),
            answering.len() == n as usize,
            format!("{} answered: {}", answering.len(), list_or_none(&answering)),
        );
    }
    if let Some(shares) = &expect.share {
        for (backend, want) in shares {
            let got = tally.share(backend);
            check(
                format!("{backend} gets {:.0}% ± {:.0}%", want * 100.0, expect.tolerance * 100.0),
                (got - want).abs() <= expect.tolerance,
                format!("{backend} got {:.1}%", got * 100.0),
            );
        }
    }
    if expect.even {
        for (backend, want) in weighted_shares(servers) {
            let got = tally.share(&backend);
            check(
                format!(
                    "{backend} gets its weighted share {:.0}% ± {:.0}%",
                    want * 100.0,
                    expect.tolerance * 100.0
                ),
                (got - want).abs() <= expect.tolerance,
                format!("{backend} got {:.1}%", got * 100.0),
            );
        }
    }
    if let Some(want) = &expect.sequence {
        let got: Vec<&str> = sequence
            .iter()
            .take(want.len())
            .map(|b| b.unwrap_or("(failed)"))
            .collect();
        check(
            format!("answers start {}", want.join(" ")),
            got.iter().zip(want).all(|(g, w)| *g == w) && got.len() == want.len(),
            format!("answers started {}", got.join(" ")),
        );
    }
    if expect.sticky {
        let split = split_sources(records);
        check(
            "every source address sticks to one backend".to_owned(),
            split.is_empty(),
            split.join("; "),
        );
    }
    let passed = checks.iter().all(|c| c.passed);
    Verdict { passed, checks }
}

/// Source addresses answered by more than one backend, as "addr: rs1, rs2".
fn split_sources(records: &[RequestRecord]) -> Vec<String> {
    let mut by_source: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
    for r in records {
        if let (Some(local), Some(backend), None) = (r.local, r.backend.as_deref(), &r.error) {
            let backends = by_source.entry(local.ip()).or_default();
            if !backends.contains(&backend) {
                backends.push(backend);
            }
        }
    }
    by_source
        .into_iter()
        .filter(|(_, b)| b.len() > 1)
        .map(|(source, b)| format!("{source}: {}", b.join(", ")))
        .collect()
}

/// Shares an unskewed scheduler would give: proportional to weight among servers that can answer.
fn weighted_shares(servers: &[RealServer]) -> Vec<(String, f64)> {
    let eligible = |s: &&RealServer| s.weight > 0 && matches!(s.state, ServerState::Up | ServerState::Slow);
    let total: u32 = servers.iter().filter(eligible).map(|s| s.weight).sum();
    servers
        .iter()
        .map(|s| {
            let share = if eligible(&s) && total > 0 {
                f64::from(s.weight) / f64::from(total)
            } else {
                0.0
            };
            (s.name.clone(), share)
        })
        .collect()
}

/// What to change when failures were the client's own limit (each said once), as "; …".
fn client_advice(records: &[RequestRecord]) -> String {
    let mut said: Vec<&str> = Vec::new();
    for advice in records.iter().filter_map(|r| r.error.as_ref()?.advice()) {
        if !said.contains(&advice) {
            said.push(advice);
        }
    }
    said.iter().map(|a| format!("; {a}")).collect()
}

fn describe_errors(tally: &Tally) -> String {
    let parts: Vec<String> = tally.errors.iter().map(|(k, n)| format!("{n} {k}")).collect();
    list_or_none(&parts)
}

fn list_or_none<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use super::*;

    fn server(name: &str, weight: u32, state: ServerState) -> RealServer {
        RealServer {
            name: name.into(),
            address: Ipv4Addr::LOCALHOST,
            port: 80,
            weight,
            state,
            delay: Duration::ZERO,
        }
    }

    fn expect() -> Expect {
        Expect {
            backends: None,
            answering: None,
            share: None,
            tolerance: 0.1,
            even: false,
            sequence: None,
            sticky: false,
            errors: 0,
            diagnosis: vec![],
        }
    }

    fn record(seq: u32, source: &str, answer: &str) -> RequestRecord {
        let failed = answer == "timeout";
        RequestRecord {
            seq,
            client: "client".into(),
            target: "192.0.2.100:80".parse().unwrap(),
            backend: (!failed).then(|| answer.to_owned()),
            latency: Duration::from_millis(1),
            local: Some(format!("{source}:40000").parse().unwrap()),
            seen_as: None,
            connection: seq,
            error: failed.then_some(crate::traffic::RequestError::Timeout),
        }
    }

    fn run(answers: &[&str]) -> (Tally, Vec<RequestRecord>) {
        let mut t = Tally::new(["rs1", "rs2", "rs3"]);
        let mut records = Vec::new();
        for (i, a) in answers.iter().enumerate() {
            if *a == "timeout" {
                t.add_error(a);
            } else {
                t.add_answer(a);
            }
            records.push(record(i as u32, "192.0.2.201", a));
        }
        (t, records)
    }

    #[test]
    fn sticky_fails_only_when_one_source_meets_two_backends() {
        let e = Expect {
            sticky: true,
            ..expect()
        };
        let t = Tally::new(["rs1", "rs2"]);
        let held = [
            record(0, "192.0.2.201", "rs1"),
            record(1, "192.0.2.202", "rs2"),
            record(2, "192.0.2.201", "rs1"),
        ];
        assert!(evaluate(&e, &[], &t, &held).passed);
        let split = [record(0, "192.0.2.201", "rs1"), record(1, "192.0.2.201", "rs2")];
        let v = evaluate(&e, &[], &t, &split);
        assert_eq!(
            v.failures().next().unwrap().detail.as_deref(),
            Some("192.0.2.201: rs1, rs2")
        );
    }

    #[test]
    fn even_spread_passes_and_skew_fails_with_detail() {
        let servers = [
            server("rs1", 1, ServerState::Up),
            server("rs2", 1, ServerState::Up),
            server("rs3", 0, ServerState::Up),
        ];
        let e = Expect { even: true, ..expect() };
        let (t, s) = run(&["rs1", "rs2", "rs1", "rs2"]);
        assert!(evaluate(&e, &servers, &t, &s).passed);
        let (t, s) = run(&["rs1", "rs1", "rs1", "rs2"]);
        let v = evaluate(&e, &servers, &t, &s);
        assert!(!v.passed);
        let fail: Vec<_> = v.failures().collect();
        assert_eq!(fail.len(), 2);
        assert_eq!(fail[0].detail.as_deref(), Some("rs1 got 75.0%"));
    }

    #[test]
    fn sequence_backends_answering_and_errors() {
        let servers = [server("rs1", 1, ServerState::Up), server("rs2", 1, ServerState::Up)];
        let e = Expect {
            sequence: Some(vec!["rs2".into(), "rs1".into()]),
            backends: Some(vec!["rs2".into(), "rs1".into()]),
            answering: Some(2),
            ..expect()
        };
        let (t, s) = run(&["rs2", "rs1", "rs2"]);
        assert!(evaluate(&e, &servers, &t, &s).passed);
        let (t, s) = run(&["rs1", "timeout", "rs1"]);
        let v = evaluate(&e, &servers, &t, &s);
        let what: Vec<_> = v.failures().map(|c| c.detail.clone().unwrap()).collect();
        assert_eq!(
            what,
            [
                "1 failed: 1 timeout",
                "answering: rs1",
                "1 answered: rs1",
                "answers started rs1 (failed)"
            ]
        );
    }

    #[test]
    fn running_out_of_source_ports_is_said_with_its_fix() {
        use crate::traffic::RequestError;
        let (mut t, mut s) = run(&["rs1", "rs2"]);
        for seq in 2..4 {
            let mut r = record(seq, "192.0.2.201", "timeout");
            r.error = Some(RequestError::SourcePortsExhausted);
            t.add_error(&RequestError::SourcePortsExhausted.to_string());
            s.push(r);
        }
        let v = evaluate(&expect(), &[], &t, &s);
        let detail = v.failures().next().unwrap().detail.clone().unwrap();
        assert!(
            detail.starts_with("2 failed: 2 source ports exhausted; the client ran out of source ports"),
            "{detail}"
        );
        assert!(detail.contains("`sources = N` in [traffic]"), "{detail}");
        assert!(detail.contains("keepalive"), "{detail}");
        // Other failures carry no advice.
        let (t, s) = run(&["rs1", "timeout"]);
        let v = evaluate(&expect(), &[], &t, &s);
        assert_eq!(
            v.failures().next().unwrap().detail.as_deref(),
            Some("1 failed: 1 timeout")
        );
    }

    #[test]
    fn share_within_tolerance() {
        let e = Expect {
            share: Some(vec![("rs1".into(), 0.5)]),
            tolerance: 0.05,
            ..expect()
        };
        let (t, s) = run(&["rs1", "rs2", "rs1", "rs3"]);
        assert!(evaluate(&e, &[], &t, &s).passed);
        let (t, s) = run(&["rs1", "rs2", "rs2", "rs3"]);
        assert!(!evaluate(&e, &[], &t, &s).passed);
    }
}
