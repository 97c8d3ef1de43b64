//! Investigation against real labs: the live real-server check run inside lab namespaces
//! set up right and wrong, diagnoses carried by `run` (verdict, JSON, report), and
//! snapshots of `lvslab diagnose` reports for shipped scenarios. Needs root.

use std::path::Path;

use lvslab::investigate::live;
use lvslab::lab::{Lab, LabOptions};
use lvslab::report::{diagnosis_report, human_report};
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

async fn run_with(scenario: &Scenario, diagnose: DiagnoseWhen) -> RunOutcome {
    let opts = RunOptions {
        engine: None,
        progress: false,
        diagnose,
        ..RunOptions::default()
    };
    run::run(scenario, &opts)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", scenario.name))
}

/// Lines that differ between runs for reasons unrelated to the diagnosis: timers, and how
/// many of a connection's frames reached the director before the client's ARP entry moved.
fn redact(report: &str) -> String {
    report
        .lines()
        .map(|line| mask_number_after(&mask_number_after(line, "expires in ", "[secs]"), "saw ", "[n]"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn mask_number_after(line: &str, marker: &str, mask: &str) -> String {
    let Some(at) = line.find(marker) else {
        return line.to_owned();
    };
    let rest = &line[at + marker.len()..];
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 {
        return line.to_owned();
    }
    format!("{}{marker}{mask}{}", &line[..at], &rest[digits..])
}

const LIVE_LAB: &str = r#"
[service]
mode = "dr"
scheduler = "rr"

[[real_server]]
name = "good"
[[real_server]]
name = "flux"
arp_ignore = 0
arp_announce = 0
[[real_server]]
name = "novip"
vip_on = "none"
[[real_server]]
name = "wide"
vip_prefix = 24
[[real_server]]
name = "closed"
state = "refuse"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_real_server_check_inside_lab_namespaces() {
    if !root() {
        return;
    }
    let scenario = scenario::parse(LIVE_LAB, "live.toml").unwrap_or_else(|r| panic!("{}", r.render("live.toml")));
    let vip = scenario.service().vip;
    let lab = Lab::build(&run::lab_plan(&scenario), LabOptions::default())
        .await
        .unwrap();
    let held = run::Held::start(&scenario, &lab).await.unwrap();
    let mut seen = Vec::new();
    for (name, want) in [
        ("good", vec![]),
        ("flux", vec!["arp-flux"]),
        ("novip", vec!["vip-not-local"]),
        ("wide", vec!["vip-prefix"]),
        ("closed", vec!["server-down"]),
    ] {
        let host = lab.host(name).unwrap();
        let report = host
            .exec(move || live::check_real_server(vip, 80))
            .await
            .expect("worker")
            .unwrap();
        seen.push((name, report.causes(), want, report.render()));
    }
    held.stop().await;
    lab.teardown().await.unwrap();
    for (name, causes, want, text) in &seen {
        assert_eq!(causes, want, "{name}:\n{text}");
    }
    let flux = &seen[1].3;
    assert!(flux.contains("FAIL arp_ignore on eth0 = max(all 0, eth0 0) = 0 (needs >= 1): this host answers ARP for the VIP on eth0 [arp-flux]"), "{flux}");
    let good = &seen[0].3;
    assert!(
        good.contains("ok   192.0.2.100/32 on lo") && good.ends_with("no problem found\n"),
        "{good}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_expectations_carry_a_diagnosis_into_verdict_json_and_report() {
    if !root() {
        return;
    }
    // ARP flux, but the file claims an even spread: the run must say why it is not.
    let mut scenario = shipped("why-arp-flux");
    scenario.expect.answering = None;
    scenario.expect.backends = None;
    scenario.expect.diagnosis.clear();
    scenario.expect.even = true;
    let outcome = run_with(&scenario, DiagnoseWhen::Auto).await;
    assert!(!outcome.verdict.passed);
    let diagnosis = outcome.diagnosis.as_ref().expect("a failed run diagnoses");
    assert_eq!(diagnosis.ids().first(), Some(&"arp-flux"));
    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["diagnosis"]["findings"][0]["id"], "arp-flux");
    // rs2's first connection passed the director; the 28 after it went straight to rs2.
    let seen = json["evidence"]["director_seen_packets"].as_u64().expect("counted");
    assert!(seen > 0 && seen < 10, "director saw {seen} frames");
    let text = human_report(&outcome, false);
    assert!(
        text.contains("Why (diagnosis):") && text.contains("1. [arp-flux]"),
        "{text}"
    );

    // The same lab told nothing to expect and passing: no investigation at all.
    let mut quiet = shipped("dr-rr");
    quiet.expect.diagnosis.clear();
    let outcome = run_with(&quiet, DiagnoseWhen::Auto).await;
    assert!(outcome.verdict.passed && outcome.diagnosis.is_none() && outcome.timings.investigate_ms.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_expected_diagnosis_fails_the_verdict() {
    if !root() {
        return;
    }
    let mut scenario = shipped("why-keepalive");
    scenario.expect.diagnosis = vec![scenario::Cause::Persistence];
    let outcome = run_with(&scenario, DiagnoseWhen::Auto).await;
    assert!(!outcome.verdict.passed);
    let check = outcome.verdict.failures().next().expect("one failed check");
    assert_eq!(check.what, "diagnosis finds persistence");
    assert!(
        check.detail.as_deref().unwrap_or("").starts_with("found: keepalive"),
        "{check:?}"
    );
}

/// Two DR services on VIPs of their own; only api's real server answers ARP for its VIP.
const FLUX_ON_SECOND_VIP: &str = r#"
[[service]]
name = "www"
vip = "192.0.2.100"
mode = "dr"
scheduler = "rr"
real_servers = ["rs1"]

[[service]]
name = "api"
vip = "192.0.2.101"
scheduler = "rr"
real_servers = ["flux"]

[[real_server]]
name = "rs1"
[[real_server]]
name = "flux"
arp_ignore = 0

[traffic]
requests = 20
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arp_probe_asks_for_every_services_vip() {
    if !root() {
        return;
    }
    let scenario = scenario::parse(FLUX_ON_SECOND_VIP, "two-vips.toml")
        .unwrap_or_else(|r| panic!("{}", r.render("two-vips.toml")));
    let outcome = diagnosed_in_full(&scenario).await;
    let diagnosis = outcome.diagnosis.as_ref().expect("diagnosed");
    let flux: Vec<_> = diagnosis
        .findings
        .iter()
        .filter(|f| f.id.as_str() == "arp-flux")
        .collect();
    // api's alone: www's VIP is answered by the director only, and rs1 is set up right.
    assert_eq!(flux.len(), 1, "{:#?}", diagnosis.findings);
    assert_eq!(flux[0].service.as_deref(), Some("TCP 192.0.2.101:80"), "{:#?}", flux[0]);
    assert!(
        flux[0]
            .evidence
            .iter()
            .any(|l| l.starts_with("ARP probe for 192.0.2.101 from ") && l.contains(": 2 replies: ")),
        "{:#?}",
        flux[0].evidence
    );
}

/// Run and always diagnosed, with every piece of evidence gathered.
async fn diagnosed_in_full(scenario: &Scenario) -> RunOutcome {
    let outcome = run_with(scenario, DiagnoseWhen::Always).await;
    assert!(
        outcome.investigation_problems.is_empty(),
        "{:?}",
        outcome.investigation_problems
    );
    outcome
}

async fn diagnose_snapshot(name: &str) -> String {
    redact(&diagnosis_report(&diagnosed_in_full(&shipped(name)).await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_arp_flux() {
    if root() {
        insta::assert_snapshot!("why-arp-flux", diagnose_snapshot("why-arp-flux").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_persistence() {
    if root() {
        insta::assert_snapshot!("dr-persistence", diagnose_snapshot("dr-persistence").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_keepalive() {
    if root() {
        insta::assert_snapshot!("why-keepalive", diagnose_snapshot("why-keepalive").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_healthy_twin() {
    if root() {
        insta::assert_snapshot!("dr-arp-healthy", diagnose_snapshot("dr-arp-healthy").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn director_check_reads_the_labs_own_ipvsadm_views() {
    if !root() {
        return;
    }
    // The embedded engine prints `ipvsadm -Ln` and `-Lnc` exactly: the live director
    // check must find in that text what the lab diagnosis found.
    for (name, cause) in [
        ("dr-persistence", "persistence"),
        ("why-weight-zero", "weight-zero"),
        ("why-destination-hash", "destination-hash"),
    ] {
        let outcome = run_with(&shipped(name), DiagnoseWhen::Never).await;
        let snapshot = outcome.ipvs.expect("a director table");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ipvsadm.txt");
        std::fs::write(&file, format!("{}{}", snapshot.list_text(), snapshot.conns_text())).unwrap();
        let report = live::check_director(Some(&file), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            report.diagnosis.ids().first(),
            Some(&cause),
            "{name}:\n{}",
            report.render()
        );
    }
}
