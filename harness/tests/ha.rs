//! VRRP directors end to end, with the real keepalived as the reference for lvslab's own VRRP:
//! the same failover run by both must go through the same states and take over within one
//! advert interval of each other (plus a track script's interval when a file moves them), and
//! a mixed pair (one real keepalived, one lvslab node) must elect and fail over, since the
//! packets are the same. Needs root and keepalived (`ci/install.sh` installs it); without
//! keepalived the comparisons say so and pass.

use std::collections::BTreeMap;
use std::path::Path;

use lvslab::run::{self, DiagnoseWhen, RunOptions, RunOutcome, VrrpOutcome};
use lvslab::scenario::{self, Scenario, VrrpChoice};

mod common;
use common::root;

fn shipped(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    scenario::load(&path).unwrap_or_else(|r| panic!("{}", r.render(&path.display().to_string())))
}

fn keepalived_here() -> bool {
    if !lvslab::keepalived::installed() {
        eprintln!("keepalived is not installed: the comparison with the real one is skipped");
        return false;
    }
    true
}

/// One lab at a time: the comparisons are about timing, and labs side by side on two cores
/// would share them.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_with(scenario: &Scenario, vrrp: VrrpChoice) -> RunOutcome {
    let opts = RunOptions {
        vrrp: Some(vrrp),
        diagnose: DiagnoseWhen::Never,
        ..RunOptions::default()
    };
    run::run(scenario, &opts)
        .await
        .unwrap_or_else(|e| panic!("{} with vrrp {vrrp}: {e}", scenario.name))
}

/// Each director's states in order.
fn states(v: &VrrpOutcome) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &v.transitions {
        out.entry(t.director.clone()).or_default().push(t.to.clone());
    }
    out
}

/// One advert interval of the shipped HA scenarios (advert_int 1).
const ADVERT_INT_MS: f64 = 1000.0;

/// How far apart the two takeovers after `event` may be: one advert interval (the adverts'
/// phase against the event is each implementation's own), plus the slowest track script's
/// interval when the event touches or removes a file, since each implementation runs its
/// scripts on its own clock and sees the file up to one interval late.
fn tolerance_ms(scenario: &Scenario, event: &str) -> f64 {
    use lvslab::scenario::EventAction;
    let by_file = scenario
        .events
        .iter()
        .any(|e| e.name == event && matches!(e.action, EventAction::Touch(_) | EventAction::Remove(_)));
    let script_ms = scenario
        .vrrp
        .iter()
        .flat_map(|v| &v.scripts)
        .map(|s| s.interval.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    ADVERT_INT_MS + if by_file { script_ms } else { 0.0 }
}

async fn same_under_both(name: &str) {
    if !root() || !keepalived_here() {
        return;
    }
    same_for(&shipped(name)).await;
}

/// Runs `scenario` under both and compares them; gives lvslab's run.
async fn same_for(scenario: &Scenario) -> RunOutcome {
    let name = &scenario.name;
    let _alone = ONE_AT_A_TIME.lock().await;
    let ours = run_with(scenario, VrrpChoice::Embedded).await;
    let real = run_with(scenario, VrrpChoice::Keepalived).await;
    let (o, r) = (ours.vrrp.as_ref().unwrap(), real.vrrp.as_ref().unwrap());
    for (who, outcome) in [("lvslab's VRRP", &ours), ("keepalived", &real)] {
        assert!(
            outcome.verdict.passed,
            "{name} under {who}:\n{}",
            lvslab::report::human_report(outcome, false)
        );
    }
    assert_eq!(states(o), states(r), "{name}: the same states, director by director");
    assert_eq!(o.masters, r.masters, "{name}: the same masters at the end");
    assert_eq!(o.failovers.len(), r.failovers.len(), "{name}: as many takeovers");
    for (a, b) in o.failovers.iter().zip(&r.failovers) {
        assert_eq!((&a.event, &a.to), (&b.event, &b.to));
        let within = tolerance_ms(scenario, &a.event);
        let apart = (a.takeover_ms - b.takeover_ms).abs();
        assert!(
            apart <= within,
            "{name}: after {:?} lvslab took over in {:.0} ms, keepalived in {:.0} ms",
            a.event,
            a.takeover_ms,
            b.takeover_ms
        );
        if let (Some(x), Some(y)) = (a.failover_ms, b.failover_ms) {
            assert!((x - y).abs() <= within, "{name}: first answers {x:.0} / {y:.0} ms");
        }
    }
    ours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_fails_over_the_same_under_keepalived_and_lvslab() {
    same_under_both("dr-ha-failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_and_a_preemption_go_the_same_under_keepalived_and_lvslab() {
    same_under_both("dr-ha-preempt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_adverts_split_the_brain_the_same_under_keepalived_and_lvslab() {
    same_under_both("why-split-brain").await;
}

/// dr-ha-failover with each director's VRRP named: `master_by` runs the master.
fn mixed(master_by: &str, backup_by: &str) -> Scenario {
    mixed_in("dr-ha-failover", master_by, backup_by)
}

/// A shipped pair with each director's VRRP named.
fn mixed_in(name: &str, master_by: &str, backup_by: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replacen(
            "name = \"lvs1\"\n",
            &format!("name = \"lvs1\"\nvrrp = \"{master_by}\"\n"),
            1,
        )
        .replacen(
            "name = \"lvs2\"\n",
            &format!("name = \"lvs2\"\nvrrp = \"{backup_by}\"\n"),
            1,
        );
    scenario::parse(&text, "mixed.toml").unwrap_or_else(|r| panic!("{}", r.render("mixed.toml")))
}

async fn mixed_pair_fails_over(master_by: &str, backup_by: &str) {
    mixed_pair_of("dr-ha-failover", master_by, backup_by).await;
}

async fn mixed_pair_of(name: &str, master_by: &str, backup_by: &str) {
    if !root() || !keepalived_here() {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let scenario = if name == "dr-ha-failover" {
        mixed(master_by, backup_by)
    } else {
        mixed_in(name, master_by, backup_by)
    };
    let outcome = run_with(&scenario, VrrpChoice::Auto).await;
    let v = outcome.vrrp.as_ref().unwrap();
    let by: Vec<(String, &str)> = v.nodes.iter().map(|(d, i)| (d.clone(), i.word())).collect();
    assert_eq!(
        by,
        vec![("lvs1".to_string(), master_by), ("lvs2".to_string(), backup_by)]
    );
    assert!(v.elected_before_traffic);
    assert_eq!(states(v)["lvs1"], ["BACKUP", "MASTER"], "lvs1 (150) wins the election");
    assert_eq!(
        states(v)["lvs2"],
        ["BACKUP", "MASTER"],
        "lvs2 takes over after the power cut"
    );
    assert!(
        outcome.verdict.passed,
        "{}",
        lvslab::report::human_report(&outcome, false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_keepalived_master_and_an_lvslab_backup_elect_and_fail_over() {
    mixed_pair_fails_over("keepalived", "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lvslab_master_and_a_real_keepalived_backup_elect_and_fail_over() {
    mixed_pair_fails_over("embedded", "keepalived").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_script_hands_over_and_back_the_same_under_keepalived_and_lvslab() {
    same_under_both("dr-ha-maintenance").await;
}

/// A sync group's weighted track moves both instances of a NAT pair (keepalived: the group's
/// `track_script` block, added to every member).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_groups_weighted_track_hands_a_nat_pair_over_and_back_the_same_under_keepalived_and_lvslab() {
    same_under_both("nat-ha-maintenance").await;
}

/// With `sync_group_tracking_weight` the weighted track moves the VIP's instance alone: the
/// backup's gateway instance keeps accepting the master's adverts, and the group never moves,
/// under keepalived as under lvslab.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_group_tracking_weight_the_nat_pair_never_hands_over_under_keepalived_or_lvslab() {
    if !root() || !keepalived_here() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/nat-ha-maintenance.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen(
        "group = [\"VI_1\", \"VI_GW\"]\n",
        "group = [\"VI_1\", \"VI_GW\"]\ntracking_weight = true\n",
        1,
    );
    let text = format!(
        "name = \"nat-ha-tracking-weight\"\n{}[expect]\nbackends = [\"rs1\", \"rs2\"]\nmaster = \"lvs1\"\nerrors = 0\n",
        &text[..text.find("[expect]").unwrap()]
    );
    let scenario = scenario::parse(&text, "tw.toml").unwrap_or_else(|r| panic!("{}", r.render("tw.toml")));
    let ours = same_for(&scenario).await;
    let v = ours.vrrp.as_ref().unwrap();
    assert_eq!(states(v)["lvs1"], ["BACKUP", "MASTER"], "lvs1 stays MASTER");
    assert_eq!(states(v)["lvs2"], ["BACKUP"], "lvs2 never takes over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_is_replaced_and_reasserts_the_same_under_keepalived_and_lvslab() {
    same_under_both("dr-ha-freeze").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nat_pair_moves_the_vip_and_the_gateway_the_same_under_keepalived_and_lvslab() {
    same_under_both("nat-ha-failover").await;
}

/// The sync group across implementations: keepalived's two instances against lvslab's Group,
/// on both networks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_nat_pair_syncs_both_instances_across_implementations() {
    mixed_pair_of("nat-ha-failover", "keepalived", "embedded").await;
    mixed_pair_of("nat-ha-failover", "embedded", "keepalived").await;
}
