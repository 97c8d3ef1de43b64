//! Expectations of a scenario checked against what the run saw.
//!
//! Shares (`share`, `even`) are held to a tolerance relative to the expected share: a backend
//! expected to get a fraction `p` of `n` requests passes when its count is within
//! `tolerance × p × n` requests of `p × n`, or within less than one request of it (a count is
//! a whole number, so that is as close as any scheduler can come).

use serde::Serialize;

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::scenario::{Expect, RealServer, ServerState};
use crate::tally::Tally;
use crate::traffic::RequestRecord;

/// One expectation and whether it held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub what: String,
    pub passed: bool,
    /// What was seen, when it differs from what was wanted.
    pub detail: Option<String>,
    /// The figures of a per-backend share check, so a report can summarise hundreds of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<ShareFigures>,
}

impl Check {
    /// A check without share figures.
    pub fn new(what: String, passed: bool, detail: Option<String>) -> Check {
        Check {
            what,
            passed,
            detail,
            share: None,
        }
    }

    /// "It happened within `bound_ms`": `value_ms` is when it did, `None` if never (`never` says so).
    pub fn within_ms(what: String, value_ms: Option<f64>, bound_ms: f64, never: &str) -> Check {
        let detail = match value_ms {
            Some(v) if v > bound_ms => Some(format!("after {v:.0} ms")),
            Some(_) => None,
            None => Some(never.to_owned()),
        };
        Check::new(what, value_ms.is_some_and(|v| v <= bound_ms), detail)
    }
}

/// Which expectation a share check comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareKind {
    /// `even = true`: the share its weight gives it among the servers that can answer.
    Weighted,
    /// `share = { … }`: the share the scenario states.
    Stated,
}

/// One backend's requests against the share it should get.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareFigures {
    pub backend: String,
    pub kind: ShareKind,
    /// Requests it answered, of `requests` sent (answered or not).
    pub count: u32,
    pub requests: u32,
    /// The share it should get, of all requests.
    pub expected: f64,
    /// The tolerance, as a fraction of `expected`.
    pub tolerance: f64,
}

impl ShareFigures {
    pub fn got(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            f64::from(self.count) / f64::from(self.requests)
        }
    }

    /// The share it may miss `expected` by, either side.
    pub fn allowed(&self) -> f64 {
        self.tolerance * self.expected
    }

    pub fn holds(&self) -> bool {
        let want = self.expected * f64::from(self.requests);
        let off = (f64::from(self.count) - want).abs();
        // The epsilon keeps 0.1 × 30 from missing 3 by a rounding error.
        off < 1.0 || off <= self.tolerance * want + 1e-9
    }

    /// The check these figures make, worded for the report.
    pub fn into_check(self) -> Check {
        let what = match self.kind {
            ShareKind::Weighted => format!(
                "{} gets its weighted share {} ± {}",
                self.backend,
                percent(self.expected),
                percent(self.allowed())
            ),
            ShareKind::Stated => format!(
                "{} gets {} ± {}",
                self.backend,
                percent(self.expected),
                percent(self.allowed())
            ),
        };
        let passed = self.holds();
        Check {
            what,
            passed,
            detail: (!passed).then(|| {
                format!(
                    "{} got {} ({} of {} requests)",
                    self.backend,
                    percent(self.got()),
                    self.count,
                    self.requests
                )
            }),
            share: Some(self),
        }
    }
}

/// A share as a percentage with two significant digits below 1% ("0.25%"), one decimal above
/// ("33.3%"), so that a thousand servers' 0.1% does not print as "0%".
pub fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct == 0.0 {
        return "0%".to_owned();
    }
    let decimals = if pct >= 1.0 {
        1
    } else {
        (1 - pct.log10().floor() as i32).clamp(1, 6) as usize
    };
    format!("{pct:.decimals$}%")
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
    let failed = tally.failed();
    let mut checks = vec![plain(
        format!("at most {} failed request(s)", expect.errors),
        failed <= expect.errors,
        format!("{failed} failed: {}{}", describe_errors(tally), client_advice(records)),
    )];
    checks.extend(spread_checks(expect, servers, tally, records));
    let passed = checks.iter().all(|c| c.passed);
    Verdict { passed, checks }
}

fn plain(what: String, passed: bool, detail: String) -> Check {
    Check {
        what,
        passed,
        detail: (!passed).then_some(detail),
        share: None,
    }
}

/// The checks about where the answers went: backends, answering, shares, sequence, stickiness.
pub fn spread_checks(expect: &Expect, servers: &[RealServer], tally: &Tally, records: &[RequestRecord]) -> Vec<Check> {
    let sequence: Vec<Option<&str>> = records
        .iter()
        .map(|r| if r.error.is_none() { r.backend.as_deref() } else { None })
        .collect();
    let mut checks = Vec::new();

    let answering: Vec<&str> = tally.answering().collect();
    if let Some(want) = &expect.backends {
        let mut want_sorted: Vec<&str> = want.iter().map(String::as_str).collect();
        want_sorted.sort_unstable();
        checks.push(plain(
            format!("exactly {} answer", want.join(", ")),
            want_sorted == answering,
            format!("answering: {}", list_or_none(&answering)),
        ));
    }
    if let Some(n) = expect.answering {
        checks.push(plain(
            format!("{n} distinct backend(s) answer"),
            answering.len() == n as usize,
            format!("{} answered: {}", answering.len(), list_or_none(&answering)),
        ));
    }
    let mut share_check = |backend: &str, kind: ShareKind, expected: f64| {
        let figures = ShareFigures {
            backend: backend.to_owned(),
            kind,
            count: tally.backends.get(backend).copied().unwrap_or(0),
            requests: tally.requests,
            expected,
            tolerance: expect.tolerance,
        };
        checks.push(figures.into_check());
    };
    for (backend, want) in expect.share.iter().flatten() {
        share_check(backend, ShareKind::Stated, *want);
    }
    if expect.even {
        for (backend, want) in weighted_shares(servers) {
            share_check(&backend, ShareKind::Weighted, want);
        }
    }
    if let Some(want) = &expect.sequence {
        let got: Vec<&str> = sequence
            .iter()
            .take(want.len())
            .map(|b| b.unwrap_or("(failed)"))
            .collect();
        checks.push(plain(
            format!("answers start {}", want.join(" ")),
            got.iter().zip(want).all(|(g, w)| *g == w) && got.len() == want.len(),
            format!("answers started {}", got.join(" ")),
        ));
    }
    if expect.sticky {
        let split = split_sources(records);
        checks.push(plain(
            "every source address sticks to one backend".to_owned(),
            split.is_empty(),
            split.join("; "),
        ));
    }
    checks.extend(crate::locality::checks(expect, records));
    checks
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
            removed: vec![],
            removed_within: None,
            removed_after_death: None,
            restored_after_return: None,
            destinations_sticky: false,
            hot_destination_servers_min: None,
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
            sent_at: Duration::ZERO,
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
        assert_eq!(fail[0].what, "rs1 gets its weighted share 50.0% ± 5.0%");
        assert_eq!(fail[0].detail.as_deref(), Some("rs1 got 75.0% (3 of 4 requests)"));
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

    fn servers(n: usize) -> Vec<RealServer> {
        (1..=n).map(|i| server(&format!("rs{i}"), 1, ServerState::Up)).collect()
    }

    /// A tally with these counts per server (rs1, rs2, …) and nothing failed.
    fn counts(per_server: &[u32]) -> Tally {
        let mut t = Tally::new(std::iter::empty());
        for (i, n) in per_server.iter().enumerate() {
            t.backends.insert(format!("rs{}", i + 1), *n);
            t.requests += n;
        }
        t
    }

    fn even(tolerance: f64) -> Expect {
        Expect {
            even: true,
            tolerance,
            ..expect()
        }
    }

    #[test]
    fn five_hundred_servers_fail_even_when_one_gets_nothing() {
        let five_hundred = servers(500);
        let spread = vec![10; 500];
        assert!(evaluate(&even(0.1), &five_hundred, &counts(&spread), &[]).passed);
        // 9 and 11 requests where 10 are expected: within 10% of the share.
        let wobbly: Vec<u32> = (0..500).map(|i| if i % 2 == 0 { 9 } else { 11 }).collect();
        assert!(evaluate(&even(0.1), &five_hundred, &counts(&wobbly), &[]).passed);

        let mut one_silent = spread.clone();
        one_silent[416] = 0;
        one_silent[0] += 10;
        let v = evaluate(&even(0.1), &five_hundred, &counts(&one_silent), &[]);
        assert!(!v.passed);
        let failed: Vec<&str> = v.failures().map(|c| c.what.as_str()).collect();
        assert_eq!(
            failed,
            [
                "rs1 gets its weighted share 0.20% ± 0.020%",
                "rs417 gets its weighted share 0.20% ± 0.020%"
            ]
        );
        let silent = v.failures().nth(1).unwrap();
        assert_eq!(silent.detail.as_deref(), Some("rs417 got 0% (0 of 5000 requests)"));
        assert_eq!(silent.share.as_ref().map(|f| (f.count, f.expected)), Some((0, 0.002)));
    }

    #[test]
    fn the_tolerance_is_a_fraction_of_the_expected_share() {
        let three = servers(3);
        // 100 expected each: 10% is 10 requests either side.
        assert!(evaluate(&even(0.1), &three, &counts(&[110, 100, 90]), &[]).passed);
        let v = evaluate(&even(0.1), &three, &counts(&[111, 100, 89]), &[]);
        assert_eq!(v.failures().count(), 2);
        // Stated shares likewise: 25% ± 10% of it is 22.5%..27.5%.
        let e = Expect {
            share: Some(vec![("rs1".into(), 0.25), ("rs2".into(), 0.75)]),
            tolerance: 0.1,
            ..expect()
        };
        assert!(evaluate(&e, &[], &counts(&[275, 725]), &[]).passed);
        let v = evaluate(&e, &[], &counts(&[280, 720]), &[]);
        assert_eq!(
            v.failures().map(|c| c.what.as_str()).collect::<Vec<_>>(),
            ["rs1 gets 25.0% ± 2.5%"]
        );
    }

    #[test]
    fn a_count_within_one_request_of_exact_always_passes() {
        // 100 over 3 cannot be split exactly: 34/33/33 is perfect round robin, even at tolerance 0.
        assert!(evaluate(&even(0.0), &servers(3), &counts(&[34, 33, 33]), &[]).passed);
        assert!(!evaluate(&even(0.0), &servers(3), &counts(&[35, 33, 32]), &[]).passed);
        // A quiesced server is expected to get nothing: one request is already too many.
        let mut with_idle = servers(2);
        with_idle[1].weight = 0;
        assert!(evaluate(&even(0.5), &with_idle, &counts(&[100, 0]), &[]).passed);
        assert!(!evaluate(&even(0.5), &with_idle, &counts(&[99, 1]), &[]).passed);
    }

    #[test]
    fn percentages_keep_two_significant_digits_below_one_percent() {
        assert_eq!(percent(1.0 / 3.0), "33.3%");
        assert_eq!(percent(0.02), "2.0%");
        assert_eq!(percent(0.002), "0.20%");
        assert_eq!(percent(0.00025), "0.025%");
        assert_eq!(percent(0.0), "0%");
    }

    #[test]
    fn json_keeps_every_share_check_with_its_figures() {
        let v = evaluate(&even(0.1), &servers(500), &counts(&[10; 500]), &[]);
        let json = serde_json::to_value(&v).unwrap();
        let checks = json["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 501, "the error check and one per server");
        assert!(checks[0].get("share").is_none(), "plain checks carry no figures");
        assert_eq!(checks[500]["share"]["backend"], "rs500");
        assert_eq!(checks[500]["share"]["kind"], "weighted");
        assert_eq!(checks[500]["share"]["count"], 10);
        assert_eq!(checks[500]["share"]["expected"], 0.002);
    }
}
