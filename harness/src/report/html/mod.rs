//! `--html FILE`: one self-contained HTML file per command, one section per scenario, with
//! the topology, the spread chart, the timeline, the checks and verdict, the diagnosis, the
//! director's ipvsadm views and the request paths.
//!
//! Written with maud: every interpolated value is escaped unless wrapped in `PreEscaped`,
//! which only our own SVG markup is. The page fetches nothing and runs no script; its
//! Content-Security-Policy says so, so a browser would refuse (and log) any fetch.

mod charts;
mod paths;

use maud::{html, Markup, PreEscaped, DOCTYPE};

pub use paths::{from_trace as html_path_from_trace, PathHop, RequestPath};

use super::svg;
use crate::diagnose::finding::LATENT;
use crate::diagnose::{Diagnosis, Finding};
use crate::director::EngineKind;
use crate::run::RunOutcome;
use crate::scenario::Scenario;
use crate::verdict::Verdict;

/// One scenario's part of the report.
pub struct ReportSection<'a> {
    pub scenario: &'a Scenario,
    pub outcome: &'a RunOutcome,
    /// The hops of each request, built from captures; `None` when the run captured nothing.
    pub paths: Option<&'a [RequestPath]>,
}

/// Nothing may be fetched; inline styles and SVG only.
const POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = "
body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #3b5b8c; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-bottom: .3em; }
section.scenario { margin-bottom: 3em; }
.figure { overflow-x: auto; border: 1px solid #ddd; padding: .5em; background: #fff; }
.figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; } td, th { padding: .2em .6em; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #c62828; font-weight: bold; }
.verdict { font-size: 1.3em; }
.finding { border-left: 4px solid #c62828; padding-left: .8em; margin: 1em 0; }
.finding.latent { border-left-color: #e0a800; }
.cause { font-family: monospace; background: #f2f2f2; padding: 0 .3em; }
code.mac { background: #fff3c4; padding: 0 .2em; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; font-size: .9em; }
nav ul { columns: 3; }
";

/// The whole document: `title` heads it, each section follows.
pub fn html_report(title: &str, sections: &[ReportSection]) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(POLICY);
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) }
                @if sections.len() > 1 {
                    nav id="contents" {
                        ul {
                            @for (n, s) in sections.iter().enumerate() {
                                li {
                                    a href=(format!("#s{}", n + 1)) { (s.scenario.name) }
                                    " " (verdict_word(s.outcome.verdict.passed))
                                }
                            }
                        }
                    }
                }
                @for (n, s) in sections.iter().enumerate() {
                    (section(&format!("s{}", n + 1), s))
                }
            }
        }
    };
    page.into_string()
}

fn verdict_word(passed: bool) -> Markup {
    html! {
        @if passed { span class="pass" { "PASS" } } @else { span class="fail" { "FAIL" } }
    }
}

/// Element ids are `{prefix}-topology`, `{prefix}-spread`, … so that several scenarios share a file.
fn section(prefix: &str, s: &ReportSection) -> Markup {
    let outcome = s.outcome;
    let engine = match outcome.engine {
        Some(EngineKind::Embedded) => "embedded",
        Some(EngineKind::Kernel) => "kernel",
        None => "none (direct)",
    };
    html! {
        section class="scenario" id=(prefix) {
            h2 { (outcome.scenario) }
            p {
                (super::outcome::modes_phrase(outcome)) ", engine " (engine) ", "
                (outcome.tally.requests) " requests in " (format!("{:.0}", outcome.timings.traffic_ms)) " ms. "
                @if let Some(d) = &s.scenario.description { (d) }
            }
            h3 { "Topology" }
            div class="figure" id=(format!("{prefix}-topology")) { (svg::topology(s.scenario)) }
            h3 { "Spread" }
            div class="figure" id=(format!("{prefix}-spread")) { (charts::spread(s.scenario, outcome)) }
            @for svc in &outcome.services {
                h3 { "Service " (svc.name) " (" (svc.service) ", " (svc.scheduler) ")" }
                div class="figure" { (charts::tally_chart(&svc.tally, &Default::default(), "")) }
            }
            @if let Some(timeline) = &outcome.timeline {
                h3 { "Timeline of faults and failovers" }
                div class="figure" id=(format!("{prefix}-timeline")) { (charts::timeline(timeline)) }
            }
            @if let Some(health) = &outcome.health {
                h3 { "Health checkers" }
                pre id=(format!("{prefix}-health")) {
                    (super::render_health(health)) (super::render_outages(&outcome.outages))
                }
            }
            @if let Some(vrrp) = &outcome.vrrp {
                h3 { "VRRP" }
                pre id=(format!("{prefix}-vrrp")) { (super::render_vrrp(vrrp)) }
            }
            h3 { "Checks" }
            div id=(format!("{prefix}-checks")) { (checks(&outcome.verdict)) }
            h3 { "Diagnosis" }
            div id=(format!("{prefix}-diagnosis")) {
                (diagnosis(s.scenario, outcome.diagnosis.as_ref(), &outcome.investigation_problems))
            }
            @if !outcome.directors.is_empty() {
                h3 { "Director state (ipvsadm)" }
                div id=(format!("{prefix}-ipvsadm")) { (ipvsadm(outcome)) }
            }
            @if let Some(paths) = s.paths {
                h3 { "Request paths" }
                div id=(format!("{prefix}-paths")) { (paths::render(paths)) }
            }
        }
    }
}

fn checks(verdict: &Verdict) -> Markup {
    html! {
        table {
            tr { th { "" } th { "expectation" } th { "seen" } }
            @for check in &verdict.checks {
                tr {
                    td { @if check.passed { span class="pass" { "ok" } } @else { span class="fail" { "FAIL" } } }
                    td { (check.what) }
                    td { @if let Some(detail) = &check.detail { (detail) } }
                }
            }
        }
        p class="verdict" { "verdict: " (verdict_word(verdict.passed)) }
    }
}

fn diagnosis(scenario: &Scenario, diagnosis: Option<&Diagnosis>, problems: &[String]) -> Markup {
    let Some(d) = diagnosis else {
        return html! {
            p { "No diagnosis was made: every expectation held. `lvslab diagnose` investigates anyway." }
            @for problem in problems { p { "(not gathered: " (problem) ")" } }
        };
    };
    html! {
        p { (crate::diagnose::render::spread_line(&d.spread)) }
        @if d.healthy {
            p class="pass" { "Healthy: requests spread over the servers in line with their weights, and no known cause of skew holds." }
        } @else if d.findings.is_empty() {
            p { "No known cause matched the evidence." }
        }
        @for (rank, f) in d.findings.iter().enumerate() {
            (finding(scenario, d, rank + 1, f))
        }
        @for problem in problems {
            p { "(not gathered: " (problem) ")" }
        }
    }
}

fn finding(scenario: &Scenario, d: &Diagnosis, rank: usize, f: &Finding) -> Markup {
    let latent = f.explains <= LATENT;
    let weight = if latent || d.spread.healthy {
        "latent".to_owned()
    } else {
        format!("explains ~{:.0}%", f.explains * 100.0)
    };
    html! {
        div class=(if latent { "finding latent" } else { "finding" }) id=(format!("cause-{}", f.id)) {
            h4 { (rank) ". " span class="cause" { (f.id.as_str()) } " " (f.title) " (" (weight) ")" }
            @if let Some(service) = &f.service { p { "service: " (service) } }
            @if !f.evidence.is_empty() {
                p { "Evidence:" }
                ul class="evidence" { @for line in &f.evidence { li { (with_macs_named(scenario, line)) } } }
            }
            @if !f.fix.is_empty() {
                p { "Fix:" }
                ul class="fix" { @for line in &f.fix { li { code { (line) } } } }
            }
        }
    }
}

/// The line with each MAC address marked and named after the host interface that owns it,
/// so that "the client's frames went to rs2's MAC" reads off the page.
fn with_macs_named(scenario: &Scenario, line: &str) -> Markup {
    let mut parts = Vec::new();
    let mut rest = line;
    while let Some((start, mac)) = find_mac(rest) {
        parts.push((&rest[..start], None));
        parts.push((&rest[start..start + mac.len()], Some(owner_of(scenario, mac))));
        rest = &rest[start + mac.len()..];
    }
    html! {
        @for (text, owner) in parts {
            @match owner {
                Some(Some(owner)) => { code class="mac" title=(owner) { (text) " [" (owner) "]" } }
                Some(None) => { code class="mac" { (text) } }
                None => { (text) }
            }
        }
        (rest)
    }
}

/// The first `xx:xx:xx:xx:xx:xx` in `text`: its byte offset and itself.
fn find_mac(text: &str) -> Option<(usize, &str)> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(16)).find_map(|start| {
        let candidate = text.get(start..start + 17)?;
        let is_mac = candidate
            .bytes()
            .enumerate()
            .all(|(i, b)| if i % 3 == 2 { b == b':' } else { b.is_ascii_hexdigit() });
        let apart = |b: u8| !b.is_ascii_hexdigit() && b != b':';
        let bounded = (start == 0 || apart(bytes[start - 1])) && bytes.get(start + 17).is_none_or(|b| apart(*b));
        (is_mac && bounded).then_some((start, candidate))
    })
}

/// The host and interface with this MAC (`rs2 eth0`), if it is the lab's.
fn owner_of(scenario: &Scenario, mac: &str) -> Option<String> {
    scenario.hosts().find_map(|h| {
        h.interfaces
            .iter()
            .find(|i| i.mac.to_string().eq_ignore_ascii_case(mac))
            .map(|i| format!("{} {}", h.name, i.name))
    })
}

fn ipvsadm(outcome: &RunOutcome) -> Markup {
    html! {
        @for d in &outcome.directors {
            details open {
                summary { "director " (d.name) " (VIP " (d.vip.to_string()) ")" }
                @for (command, text) in [
                    ("ipvsadm -Ln", d.ipvs.list_text()),
                    ("ipvsadm -Ln --stats", d.ipvs.stats_text()),
                    ("ipvsadm -Ln --rate", d.ipvs.rate_text()),
                    ("ipvsadm -Ln --persistent-conn", d.ipvs.persistent_conn_text()),
                    ("ipvsadm -Lnc", d.ipvs.conns_text()),
                    ("ipvsadm -S -n", d.ipvs.save_text()),
                ] {
                    pre { "$ " (command) "\n" (text) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
