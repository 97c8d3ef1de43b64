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
