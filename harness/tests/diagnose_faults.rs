//! Faults explained from a real run: the checkers' transitions and the fired events reach the
//! evidence, and the fault rules say what happened with the run's own figures. Needs root.

use std::path::Path;

use lvslab::diagnose::{evidence::CheckFailReason, CauseId, Finding};
use lvslab::run::{self, DiagnoseWhen, RunOptions, RunOutcome};
use lvslab::scenario::{self, Scenario};

mod common;
use common::root;

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    scenario::load(&path).unwrap_or_else(|r| panic!("{}", r.render(&path.display().to_string())))
}

/// Run as `lvslab run` does: a scenario that expects a diagnosis is diagnosed.
async fn diagnosed(name: &str) -> RunOutcome {
    let opts = RunOptions {
        diagnose: DiagnoseWhen::Auto,
        ..RunOptions::default()
    };
    let scenario = shipped(name);
    assert!(!scenario.expect.diagnosis.is_empty(), "{name} expects a diagnosis");
    run::run(&scenario, &opts)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn finding(outcome: &RunOutcome, id: CauseId) -> &Finding {
    let d = outcome.diagnosis.as_ref().expect("diagnosed");
    d.finding(id).unwrap_or_else(|| panic!("no {id} in {:?}", d.ids()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_without_a_checker_is_a_server_fault_with_its_window() {
    if !root() {
        return;
    }
    let outcome = diagnosed("dr-server-dies").await;
    let f = finding(&outcome, CauseId::ServerFault);
    let failed = outcome.records.iter().filter(|r| r.error.is_some()).count();
    let first = &f.evidence[0];
    assert!(
        first.starts_with("\"rs2-dies\" (stop on rs2) took effect at ")
            && first.contains("until \"rs2-back\" (start) at ")
            && first.contains(&format!(", {failed} request(s) failed (connection refused {failed})")),
        "{:?}",
        f.evidence
    );
    assert!(
        f.evidence[1].starts_with("meanwhile rs2 answered none"),
        "{:?}",
        f.evidence
    );
    assert!(f.fix[0].contains("TCP_CHECK"), "{:?}", f.fix);
    assert_eq!(outcome.diagnosis.as_ref().unwrap().findings[0].id, CauseId::ServerFault);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checker_that_took_a_dying_server_out_is_a_health_check_with_its_reason_and_outage() {
    if !root() {
        return;
    }
    let outcome = diagnosed("dr-health-check-returns").await;
    let health = outcome.health.as_ref().expect("checkers ran");
    assert!(
        health.failures.iter().any(|f| f.real_server.as_deref() == Some("rs2")),
        "{:?}",
        health.failures
    );
    let evidence = outcome.evidence.as_ref().expect("gathered");
    let reasons: Vec<CheckFailReason> = evidence
        .health
        .as_ref()
        .unwrap()
        .failures
        .iter()
        .map(|f| f.reason)
        .collect();
    assert_eq!(
        reasons,
        [CheckFailReason::ConnectRefused],
        "rs2 refused while it was down"
    );
    let f = finding(&outcome, CauseId::HealthCheck);
    let text = f.evidence.join("\n");
    assert!(
        text.contains("TCP_CHECK of rs2 on director removed it at ")
            && text.contains("connection refused on 192.0.2.12:80")
            && text.contains("keepalived: \"Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80\"")
            && text.contains("keepalived: \"Adding service [192.0.2.12]:tcp:80 to VS [192.0.2.100]:tcp:80\""),
        "{text}"
    );
    let outage = &outcome.outages[0];
    assert!(
        text.contains(&format!(
            "and {} request(s) sent meanwhile failed",
            outage.failed_meanwhile
        )),
        "{text}"
    );
    assert!(f.fix[0].contains("nc -zv -w 1 192.0.2.12 80"), "{:?}", f.fix);
    let diagnosis = outcome.diagnosis.as_ref().unwrap();
    assert!(
        diagnosis.finding(CauseId::ServerFault).is_none(),
        "{:?}",
        diagnosis.ids()
    );
}

/// rs1 and rs2 never listen: their TCP_CHECKs take both out at the first check, the pool's
/// live weight falls below quorum 1 and the sorry server answers everything. Not a shipped
/// scenario: the import round trip cannot express a sorry server (it is not in the table).
const SORRY: &str = r#"
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
requests = 20
[expect]
backends = ["sorry"]
diagnosis = ["sorry-server", "health-check"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_quorum_is_a_sorry_server_with_keepalived_lines_and_its_share() {
    if !root() {
        return;
    }
    let scenario = scenario::parse(SORRY, "sorry.toml").unwrap_or_else(|r| panic!("{}", r.render("sorry.toml")));
    let outcome = run::run(&scenario, &RunOptions::default()).await.expect("the lab runs");
    assert!(outcome.verdict.passed, "{:?}", outcome.verdict.checks);
    let diagnosis = outcome.diagnosis.as_ref().expect("diagnosed");
    assert_eq!(diagnosis.findings[0].id, CauseId::SorryServer, "{:?}", diagnosis.ids());
    let f = finding(&outcome, CauseId::SorryServer);
    let text = f.evidence.join("\n");
    assert!(
        text.contains("keepalived on director: \"Lost quorum 1-0=1 > 0 for VS [192.0.2.100]:tcp:80\"")
            && text.contains("\"Adding sorry server [192.0.2.13]:tcp:80 to VS [192.0.2.100]:tcp:80\"")
            && text.contains("the sorry server, sorry at 192.0.2.13:80, answered 20 of 20 answered requests (100%)"),
        "{text}"
    );
    assert!(
        f.fix.last().is_some_and(|l| l.starts_with("quorum 1, hysteresis 0")),
        "{:?}",
        f.fix
    );
}
