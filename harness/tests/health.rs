//! keepalived's checkers in a lab: a dead real server leaves the table within the time
//! keepalived's arithmetic gives (reference §2.7, `health::removed_at_start_within`), and
//! the traffic afterwards reaches only the live servers. Needs root.

use std::time::Duration;

mod common;

use common::root;
use lvslab::health;
use lvslab::run::{self, RunOptions, RunOutcome};
use lvslab::scenario::{self, Scenario};

/// Scheduling, thread wake-ups and the lab's first ARP exchanges on a shared 2-core machine.
const TOLERANCE: Duration = Duration::from_millis(500);

fn scenario(check: &str, rs3: &str) -> Scenario {
    let text = format!(
        r#"
[service]
mode = "dr"
scheduler = "rr"
[service.check]
{check}
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"
{rs3}
[traffic]
requests = 30
timeout_ms = 1000
"#
    );
    scenario::parse(&text, "health-lab.toml").unwrap_or_else(|r| panic!("{}", r.render("health-lab.toml")))
}

async fn run(s: &Scenario) -> RunOutcome {
    let opts = RunOptions {
        diagnose: run::DiagnoseWhen::Never,
        ..Default::default()
    };
    run::run(s, &opts).await.expect("the lab runs")
}

/// When rs3 left the table, after the checkers started, and keepalived's bounds for it.
fn removal(s: &Scenario, outcome: &RunOutcome) -> (Duration, Duration) {
    let h = outcome.health.as_ref().expect("checkers ran");
    let rs3 = h.servers.iter().find(|r| r.name == "rs3").expect("rs3 reported");
    let at = Duration::from_secs_f64(rs3.out_after_start_ms.expect("rs3 was removed") / 1000.0);
    let check = s.service().health.as_ref().unwrap();
    let (kind, settings) = check.real_servers[2].checker.as_ref().unwrap();
    (at, health::removed_at_start_within(kind, settings, check.delay_loop))
}

fn only_live_servers_answered(outcome: &RunOutcome) {
    let failed: Vec<_> = outcome.records.iter().filter(|r| r.error.is_some()).collect();
    assert!(failed.is_empty(), "requests failed after the removal: {failed:?}");
    let count = |name: &str| outcome.tally.backends.get(name).copied().unwrap_or(0);
    assert_eq!(count("rs3"), 0);
    assert_eq!(count("rs1") + count("rs2"), 30);
}

fn logged(outcome: &RunOutcome, line: &str) -> bool {
    outcome.health.as_ref().unwrap().log.iter().any(|l| l.line == line)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_is_removed_at_its_first_check_and_gets_no_traffic() {
    if !root() {
        return;
    }
    let s = scenario(
        "kind = \"tcp\"\ndelay_loop = 1\nconnect_timeout = 1\nretry = 0\nwarmup = 0",
        "state = \"refuse\"",
    );
    let outcome = run(&s).await;
    let (at, bound) = removal(&s, &outcome);
    // Refused: the attempt ends at once, so the first check's start (1 s, no warmup) is the time.
    assert!(
        at >= health::BOOTSTRAP_DELAY,
        "removed at {at:?}, before the first check could run"
    );
    assert!(
        at <= bound + TOLERANCE,
        "removed at {at:?}; keepalived's bound {bound:?}"
    );
    assert!(logged(&outcome, "TCP_CHECK on service [192.0.2.13]:tcp:80 failed."));
    assert!(logged(
        &outcome,
        "Removing service [192.0.2.13]:tcp:80 from VS [192.0.2.100]:tcp:80"
    ));
    only_live_servers_answered(&outcome);
    let table = outcome.ipvs.as_ref().unwrap();
    assert_eq!(table.services[0].dests.len(), 2, "{}", table.list_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_waiting_the_traffic_meets_the_table_before_the_first_check() {
    if !root() {
        return;
    }
    // 30 back-to-back requests take milliseconds; the first check is 1 s away: rs3 is still in
    // the table for all of them, as it is in keepalived's first second.
    let s = scenario(
        "kind = \"tcp\"\ndelay_loop = 1\nretry = 0\nwarmup = 0\ntraffic_waits_for_checks = false",
        "state = \"refuse\"",
    );
    let outcome = run(&s).await;
    let h = outcome.health.as_ref().unwrap();
    assert!(
        h.started_ms <= 0.0 && h.started_ms > -1000.0,
        "started {} ms before the traffic",
        h.started_ms
    );
    assert_eq!(
        outcome.tally.failed(),
        10,
        "rs3's third of the round robin is refused: {:?}",
        outcome.tally
    );
    assert!(
        h.table.iter().all(|c| c.op == "add"),
        "nothing was removed yet: {:?}",
        h.table
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_is_removed_after_connect_timeout() {
    if !root() {
        return;
    }
    // Its link is down: the SYNs vanish and the attempt lasts the whole connect_timeout.
    let s = scenario(
        "kind = \"tcp\"\ndelay_loop = 1\nconnect_timeout = 1\nretry = 1\nwarmup = 0",
        "state = \"down\"",
    );
    let outcome = run(&s).await;
    let (at, bound) = removal(&s, &outcome);
    assert!(
        at >= health::BOOTSTRAP_DELAY + Duration::from_secs(1),
        "removed at {at:?}, before the timeout"
    );
    assert!(
        at <= bound + TOLERANCE,
        "removed at {at:?}; keepalived's bound {bound:?}"
    );
    only_live_servers_answered(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_get_judges_the_status_and_inhibit_keeps_the_server_at_weight_zero() {
    if !root() {
        return;
    }
    // rs3 answers HTTP 500: connected, but the status is outside 200-299.
    let s = scenario(
        "kind = \"http\"\npath = \"/\"\ndelay_loop = 1\nconnect_timeout = 1\nwarmup = 0\ninhibit_on_failure = true",
        "state = \"error\"",
    );
    let outcome = run(&s).await;
    assert!(logged(
        &outcome,
        "Disabling service [192.0.2.13]:tcp:80 of VS [192.0.2.100]:tcp:80"
    ));
    assert!(!logged(
        &outcome,
        "Disabling service [192.0.2.11]:tcp:80 of VS [192.0.2.100]:tcp:80"
    ));
    let table = outcome.ipvs.as_ref().unwrap();
    let weights: Vec<(String, u32)> = table.services[0]
        .dests
        .iter()
        .map(|d| (d.addr.to_string(), d.weight))
        .collect();
    assert!(weights.contains(&("192.0.2.13".into(), 0)), "{weights:?}");
    only_live_servers_answered(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misc_check_runs_its_command_in_the_directors_namespace() {
    if !root() {
        return;
    }
    // The service's command passes only where the director's own address is local: its
    // namespace, not the test's (/proc/net is the reading process's namespace's). rs3's own
    // command fails.
    let mut s = scenario(
        "kind = \"misc\"\ncommand = \"true\"\nmisc_timeout = 1\ndelay_loop = 1\nwarmup = 0",
        "state = \"refuse\"\ncheck = { command = \"exit 1\" }",
    );
    let director = s.host(&s.director().unwrap().name).unwrap().primary_address().unwrap();
    let command = format!("grep -qw {director} /proc/net/fib_trie");
    let here = std::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .unwrap();
    assert!(
        !here.success(),
        "{command} passes outside the lab too: the test would prove nothing"
    );
    for rs in &mut s.services[0].health.as_mut().unwrap().real_servers[..2] {
        let Some((health::CheckerKind::Misc(misc), _)) = rs.checker.as_mut() else {
            panic!("misc")
        };
        misc.command = command.clone();
    }
    let outcome = run(&s).await;
    assert!(
        outcome
            .health
            .as_ref()
            .unwrap()
            .log
            .iter()
            .any(|l| l.line.starts_with("Misc check for")
                && l.line.contains("[192.0.2.13]:tcp:80")
                && l.line.contains("failed")),
        "{:#?}",
        outcome.health
    );
    let (at, bound) = removal(&s, &outcome);
    assert!(
        at <= bound + TOLERANCE,
        "removed at {at:?}; keepalived's bound {bound:?}"
    );
    only_live_servers_answered(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_quorum_swaps_in_the_sorry_server() {
    if !root() {
        return;
    }
    let text = r#"
[service]
mode = "dr"
scheduler = "rr"
[service.check]
kind = "tcp"
delay_loop = 1
connect_timeout = 1
warmup = 0
sorry_server = "sorry"
[[real_server]]
name = "rs1"
state = "refuse"
[[real_server]]
name = "rs2"
state = "refuse"
[[real_server]]
name = "sorry"
[traffic]
requests = 10
"#;
    let s = scenario::parse(text, "sorry.toml").unwrap_or_else(|r| panic!("{}", r.render("sorry.toml")));
    let outcome = run(&s).await;
    assert!(logged(
        &outcome,
        "Adding sorry server [192.0.2.13]:tcp:80 to VS [192.0.2.100]:tcp:80"
    ));
    assert_eq!(outcome.tally.backends.get("sorry"), Some(&10), "{:?}", outcome.tally);
    let h = outcome.health.as_ref().unwrap();
    assert!(
        h.servers.iter().all(|r| r.name != "sorry"),
        "the sorry server is not in the pool"
    );
    assert!(h.servers.iter().all(|r| r.out_at_end), "{:?}", h.servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_alpha_a_dead_server_never_joins_and_live_ones_join_after_their_first_success() {
    if !root() {
        return;
    }
    let s = scenario(
        "kind = \"tcp\"\ndelay_loop = 1\nwarmup = 0\nalpha = true",
        "state = \"refuse\"",
    );
    let outcome = run(&s).await;
    let (at, _) = removal(&s, &outcome);
    assert_eq!(at, Duration::ZERO, "out of the table from the start");
    let h = outcome.health.as_ref().unwrap();
    let rs1_added: Vec<f64> = h
        .table
        .iter()
        .filter(|c| c.real_server.as_deref() == Some("rs1") && c.op == "add")
        .map(|c| c.at_ms - h.started_ms)
        .collect();
    assert_eq!(rs1_added.len(), 1, "{:?}", h.table);
    assert!(
        rs1_added[0] >= 1000.0,
        "added at {} ms, before its first check",
        rs1_added[0]
    );
    assert!(
        !h.table.iter().any(|c| c.real_server.as_deref() == Some("rs3")),
        "{:?}",
        h.table
    );
    only_live_servers_answered(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_get_removes_a_server_whose_body_does_not_match_the_digest() {
    if !root() {
        return;
    }
    // rs3 is up and answers 200, but its body's MD5 is not the one its check wants.
    let s = scenario(
        "kind = \"http\"\ndelay_loop = 1\nconnect_timeout = 1\nwarmup = 0",
        "check = { digest = \"00000000000000000000000000000000\" }",
    );
    let outcome = run(&s).await;
    assert!(
        logged(
            &outcome,
            "HTTP_CHECK on service [192.0.2.13]:tcp:80 failed after 1 retries."
        ),
        "{:#?}",
        outcome.health
    );
    assert!(logged(
        &outcome,
        "Remote Web server [192.0.2.11]:tcp:80 succeed on service."
    ));
    let (at, bound) = removal(&s, &outcome);
    assert!(
        at <= bound + TOLERANCE,
        "removed at {at:?}; keepalived's bound {bound:?}"
    );
    only_live_servers_answered(&outcome);
}
