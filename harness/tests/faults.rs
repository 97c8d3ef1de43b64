//! Faults during a run, in a lab: a real server stopped and started while paced traffic
//! flows shows in the records' send times, the checks and the timeline.

use std::path::Path;
use std::time::Duration;

mod common;

use common::root;
use lvslab::report::human_report;
use lvslab::run::{self, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_and_started_during_paced_traffic_fails_only_in_between() {
    if !root() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dr-server-dies.toml");
    let scenario = lvslab::scenario::load(&path).expect("shipped scenario is valid");
    let outcome = run::run(&scenario, &RunOptions::default()).await.expect("lab runs");
    let report = human_report(&outcome, false);
    assert!(outcome.verdict.passed, "{report}");
    assert_eq!(outcome.records.len(), 300);

    // Paced at 100/s from the start: request n never goes before n × 10 ms.
    for r in &outcome.records {
        assert!(
            r.sent_at >= Duration::from_millis(10) * r.seq,
            "request {} early: {:?}",
            r.seq,
            r.sent_at
        );
    }
    let timeline = outcome
        .timeline
        .as_ref()
        .expect("a scenario with events has a timeline");
    let [dies, back] = &timeline.events[..] else {
        panic!("two events fire: {:?}", timeline.events)
    };
    assert_eq!(
        (dies.fired.name.as_str(), back.fired.name.as_str()),
        ("rs2-dies", "rs2-back")
    );
    assert!(dies.fired.error.is_none() && back.fired.error.is_none(), "{report}");
    // Fired by the count of requests sent: 100 requests at 100/s is about 1 s in.
    assert!(dies.fired.due_ms >= Duration::from_millis(990), "{:?}", dies.fired);
    assert!(back.fired.due_ms >= Duration::from_millis(1990), "{:?}", back.fired);

    let failed: Vec<_> = outcome.records.iter().filter(|r| !r.is_ok()).collect();
    assert!((25..=40).contains(&failed.len()), "{} failed\n{report}", failed.len());
    for r in &failed {
        assert!(
            r.sent_at + r.latency >= dies.fired.due_ms && r.sent_at <= back.fired.done_ms,
            "request {} failed outside the outage: {r:?}",
            r.seq
        );
    }
    // The timeline shows the same: rs2 silent and errors only in the slices between the events.
    let row = |label: &str| &timeline.rows.iter().find(|r| r.label == label).expect(label).counts;
    let inside = dies.slice + 1..back.slice;
    assert!(inside.len() >= 5, "{:?}", inside);
    assert!(row("rs2")[inside.clone()].iter().all(|&c| c == 0), "{report}");
    assert!(row("errors")[inside.clone()].iter().all(|&c| c > 0), "{report}");
    let errors = row("errors");
    assert!(
        errors[..dies.slice]
            .iter()
            .chain(&errors[back.slice + 1..])
            .all(|&c| c == 0),
        "{report}"
    );
    assert!(row("rs2")[back.slice + 1..].iter().sum::<u32>() > 0, "{report}");
    assert!(report.contains("timeline:"), "{report}");
}

const WEIGHT_ERROR_KILL: &str = r#"
[service]
mode = "dr"
scheduler = "rr"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"
[traffic]
rate = 200
duration_ms = 1500
concurrency = 40
timeout_ms = 300
[[event]]
at_ms = 300
host = "rs1"
weight = 0
[[event]]
at_ms = 600
host = "rs3"
error = 503
[[event]]
at_ms = 900
host = "director"
kill = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_error_and_a_killed_director_each_change_what_follows() {
    if !root() {
        return;
    }
    let scenario = lvslab::scenario::parse(WEIGHT_ERROR_KILL, "faults.toml").expect("valid");
    assert_eq!(scenario.traffic.requests, 300);
    let outcome = run::run(&scenario, &RunOptions::default()).await.expect("lab runs");
    let report = human_report(&outcome, false);
    let timeline = outcome.timeline.as_ref().expect("timeline");
    let done: Vec<Duration> = timeline.events.iter().map(|e| e.fired.done_ms).collect();
    assert_eq!(done.len(), 3, "{report}");
    assert!(timeline.events.iter().all(|e| e.fired.error.is_none()), "{report}");
    let sent_after = |t: Duration| outcome.records.iter().filter(move |r| r.sent_at > t);
    let before_kill = |r: &&lvslab::traffic::RequestRecord| r.sent_at + r.latency < done[2];
    // Weight 0: new connections go elsewhere.
    assert!(
        sent_after(done[0]).all(|r| r.backend.as_deref() != Some("rs1")),
        "{report}"
    );
    // rs3 answers, with 503.
    let rs3: Vec<_> = sent_after(done[1])
        .filter(before_kill)
        .filter(|r| r.backend.as_deref() == Some("rs3"))
        .collect();
    assert!(!rs3.is_empty(), "{report}");
    assert!(
        rs3.iter()
            .all(|r| r.error == Some(lvslab::traffic::RequestError::Http(503))),
        "{report}"
    );
    // The only director is gone: nothing is answered any more.
    let after_kill: Vec<_> = sent_after(done[2]).collect();
    assert!(after_kill.len() > 50, "{report}");
    assert!(after_kill.iter().all(|r| !r.is_ok()), "{report}");
    // Before the first event every server answered.
    for rs in ["rs1", "rs2", "rs3"] {
        assert!(
            outcome
                .records
                .iter()
                .any(|r| r.sent_at < done[0] && r.is_ok() && r.backend.as_deref() == Some(rs)),
            "{rs}\n{report}"
        );
    }
}
