//! A run's outcome as people read it: `lvslab run`'s report (spread, optional IPVS state,
//! checks, verdict, diagnosis when something failed) and `lvslab diagnose`'s (spread, then
//! the causes ranked, with evidence and fixes).

use super::{render_checks, render_spread};
use crate::diagnose;
use crate::director::EngineKind;
use crate::run::RunOutcome;

/// `lvslab run`'s report; `show_ipvs` adds each director's state as the `ipvsadm` views print it.
pub fn human_report(outcome: &RunOutcome, show_ipvs: bool) -> String {
    let mut out = String::new();
    let engine = engine_name(outcome);
    out.push_str(&format!(
        "{} — {}, engine {engine}, {} requests in {:.0} ms (lab up in {:.1} ms)\n\n",
        outcome.scenario,
        modes_phrase(outcome),
        outcome.tally.requests,
        outcome.timings.traffic_ms,
        outcome.timings.bring_up_ms
    ));
    out.push_str(&render_spread(&outcome.tally));
    for svc in &outcome.services {
        out.push_str(&format!(
            "\nservice {} ({}, {}, {}):\n",
            svc.name, svc.service, svc.mode, svc.scheduler
        ));
        out.push_str(&render_spread(&svc.tally));
    }
    if let Some(timeline) = &outcome.timeline {
        out.push('\n');
        out.push_str(&timeline.render());
    }
    if show_ipvs {
        // One director: as before; several: each under its name and VIP.
        let several = outcome.directors.len() > 1;
        for d in &outcome.directors {
            if several {
                out.push_str(&format!("\n== director {} (VIP {}) ==\n", d.name, d.vip));
            }
            out.push_str("\n$ ipvsadm -Ln\n");
            out.push_str(&d.ipvs.list_text());
            out.push_str("\n$ ipvsadm -Ln --stats\n");
            out.push_str(&d.ipvs.stats_text());
            out.push_str("\n$ ipvsadm -Ln --rate\n");
            out.push_str(&d.ipvs.rate_text());
            out.push_str("\n$ ipvsadm -Ln --persistent-conn\n");
            out.push_str(&d.ipvs.persistent_conn_text());
            out.push_str("\n$ ipvsadm -Lnc\n");
            out.push_str(&d.ipvs.conns_text());
            out.push_str("\n$ ipvsadm -S -n\n");
            out.push_str(&d.ipvs.save_text());
        }
    }
    if let Some(health) = &outcome.health {
        out.push('\n');
        out.push_str(&super::render_health(health));
        out.push_str(&super::render_outages(&outcome.outages));
    }
    if let Some(vrrp) = &outcome.vrrp {
        out.push('\n');
        out.push_str(&super::render_vrrp(vrrp));
    }
    if let Some(capture) = &outcome.capture {
        out.push('\n');
        out.push_str(&super::render_capture(capture));
    }
    out.push('\n');
    out.push_str(&render_checks(&outcome.verdict.checks));
    let verdict = if outcome.verdict.passed { "PASS" } else { "FAIL" };
    out.push_str(&format!("verdict: {verdict}\n"));
    if let Some(diagnosis) = &outcome.diagnosis {
        if outcome.verdict.passed {
            let ids = if diagnosis.healthy {
                "healthy".to_owned()
            } else {
                diagnosis.ids().join(", ")
            };
            out.push_str(&format!(
                "diagnosis: {ids} (`lvslab diagnose` shows the evidence and fixes)\n"
            ));
        } else {
            out.push_str("\nWhy (diagnosis):\n");
            out.push_str(&diagnose::render(diagnosis));
            out.push_str(&problems_text(&outcome.investigation_problems));
        }
    }
    out
}

fn problems_text(problems: &[String]) -> String {
    problems.iter().map(|p| format!("(not gathered: {p})\n")).collect()
}

/// Which engine ran the director, as the reports' first line says it.
fn engine_name(outcome: &RunOutcome) -> &'static str {
    match outcome.engine {
        Some(EngineKind::Embedded) => "embedded",
        Some(EngineKind::Kernel) => "kernel",
        None => "none (direct)",
    }
}

/// `dr mode`, or `dr and nat modes` when its services differ.
pub(super) fn modes_phrase(outcome: &RunOutcome) -> String {
    let mut modes: Vec<String> = vec![outcome.mode.to_string()];
    for svc in &outcome.services {
        if !modes.contains(&svc.mode) {
            modes.push(svc.mode.clone());
        }
    }
    match modes.as_slice() {
        [one] => format!("{one} mode"),
        [rest @ .., last] => format!("{} and {last} modes", rest.join(", ")),
        [] => String::new(),
    }
}

/// `lvslab diagnose`: the spread, then the causes ranked, with evidence and fixes.
pub fn diagnosis_report(outcome: &RunOutcome) -> String {
    let mut out = format!(
        "{} — {}, engine {}, {} requests\n\n",
        outcome.scenario,
        modes_phrase(outcome),
        engine_name(outcome),
        outcome.tally.requests
    );
    out.push_str(&render_spread(&outcome.tally));
    out.push('\n');
    match &outcome.diagnosis {
        Some(d) => out.push_str(&diagnose::render(d)),
        None => out.push_str("no diagnosis was made\n"),
    }
    out.push_str(&problems_text(&outcome.investigation_problems));
    if let Some(capture) = &outcome.capture {
        out.push('\n');
        out.push_str(&super::render_capture(capture));
    }
    out
}
