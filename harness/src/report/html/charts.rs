//! The report's charts as inline SVG: the spread (requests per backend, expected against
//! got) and the timeline (answers per backend and errors per time slice, events marked).

use std::collections::BTreeMap;

use maud::{html, Markup};

use crate::report::Timeline;
use crate::run::RunOutcome;
use crate::scenario::Scenario;
use crate::tally::Tally;

const LABEL_WIDTH: i32 = 120;
const BAR_WIDTH: i32 = 520;
const ROW: i32 = 22;
/// Beyond this many backends the chart shows the busiest and the idlest, and counts the rest.
const CHART_ROWS: usize = 40;

/// The run's spread, with what each backend should have answered: the share checks' figures
/// when the scenario states shares, else the weights of the first service's servers.
pub fn spread(scenario: &Scenario, outcome: &RunOutcome) -> Markup {
    let requests = f64::from(outcome.tally.requests);
    let stated: BTreeMap<String, f64> = outcome
        .verdict
        .checks
        .iter()
        .filter_map(|c| c.share.as_ref())
        .map(|s| (s.backend.clone(), s.expected * f64::from(s.requests)))
        .collect();
    if !stated.is_empty() {
        return tally_chart(&outcome.tally, &stated, "as the expectations state");
    }
    let service = scenario.services.first();
    let weights: Vec<(&str, u32)> = scenario
        .real_servers
        .iter()
        .filter(|r| service.is_none_or(|s| s.has_real_server(&r.name)))
        .map(|r| (r.name.as_str(), r.weight))
        .collect();
    let total: u32 = weights.iter().map(|w| w.1).sum();
    if total == 0 || scenario.services.len() > 1 {
        return tally_chart(&outcome.tally, &BTreeMap::new(), "");
    }
    let by_weight = weights
        .iter()
        .map(|(name, w)| (name.to_string(), requests * f64::from(*w) / f64::from(total)))
        .collect();
    tally_chart(&outcome.tally, &by_weight, "by weight")
}

/// One bar per backend (requests it answered) with a mark at `expected`, then one per error kind.
pub fn tally_chart(tally: &Tally, expected: &BTreeMap<String, f64>, expected_source: &str) -> Markup {
    let mut rows: Vec<(&str, u32, Option<f64>, bool)> = tally
        .backends
        .iter()
        .map(|(name, count)| (name.as_str(), *count, expected.get(name).copied(), false))
        .collect();
    let mut hidden = 0;
    if rows.len() > CHART_ROWS {
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        hidden = rows.len() - CHART_ROWS;
        rows.drain(CHART_ROWS / 2..rows.len() - CHART_ROWS / 2);
    }
    rows.extend(
        tally
            .errors
            .iter()
            .map(|(kind, count)| (kind.as_str(), *count, None, true)),
    );
    let peak = rows
        .iter()
        .map(|r| f64::from(r.1).max(r.2.unwrap_or(0.0)))
        .fold(1.0, f64::max);
    let scale = |v: f64| (v / peak * f64::from(BAR_WIDTH)).round() as i32;
    let height = ROW * (rows.len() as i32 + 1) + 8;
    let width = LABEL_WIDTH + BAR_WIDTH + 80;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="spread-chart" viewBox=(format!("0 0 {width} {height}"))
            width=(width) height=(height) font-family="Helvetica, Arial, sans-serif" font-size="12" {
            title { "requests per backend" }
            @for (n, (label, count, want, error)) in rows.iter().enumerate() {
                @let y = ROW * n as i32 + 4;
                g class=(if *error { "bar error" } else { "bar" }) {
                    text x=(LABEL_WIDTH - 6) y=(y + 15) text-anchor="end" { (label) }
                    rect x=(LABEL_WIDTH) y=(y + 3) width=(scale(f64::from(*count)).max(1)) height=(ROW - 6)
                        fill=(if *error { "#c62828" } else { "#3b5b8c" }) {
                        title { (label) ": " (count) " requests" }
                    }
                    text x=(LABEL_WIDTH + scale(f64::from(*count)) + 6) y=(y + 15) { (count) }
                    @if let Some(want) = want {
                        @let x = LABEL_WIDTH + scale(*want);
                        line class="expected" x1=(x) y1=(y) x2=(x) y2=(y + ROW) stroke="#e0a800" stroke-width="3" {
                            title { "expected " (format!("{want:.1}")) " (" (expected_source) ")" }
                        }
                    }
                }
            }
            @let y = ROW * rows.len() as i32 + 18;
            text x=(LABEL_WIDTH) y=(y) fill="#555" {
                "bars: requests answered (red: failed)"
                @if !expected.is_empty() { "; yellow mark: expected " (expected_source) }
                @if hidden > 0 { "; " (hidden) " more backends between the busiest and the idlest not drawn" }
            }
        }
    }
}

const CELL: i32 = 18;

/// A grid, one row per backend and errors, one column per slice, each cell as dark as its
/// count against the largest; the events as numbered lines over their slice.
pub fn timeline(t: &Timeline) -> Markup {
    let slices = t.slices() as i32;
    let peak = t
        .rows
        .iter()
        .flat_map(|r| r.counts.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let top = 22;
    let grid_height = CELL * t.rows.len() as i32;
    let width = LABEL_WIDTH + CELL * slices + 60;
    let height = top + grid_height + 24;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" viewBox=(format!("0 0 {width} {height}"))
            width=(width) height=(height) font-family="Helvetica, Arial, sans-serif" font-size="12" {
            title { "answers per backend over time" }
            @for (n, row) in t.rows.iter().enumerate() {
                @let y = top + CELL * n as i32;
                @let error = row.label == super::super::timeline::ERRORS;
                text x=(LABEL_WIDTH - 6) y=(y + 13) text-anchor="end" { (row.label) }
                @for (slice, count) in row.counts.iter().enumerate() {
                    rect x=(LABEL_WIDTH + CELL * slice as i32) y=(y) width=(CELL - 1) height=(CELL - 1)
                        fill=(if error { "#c62828" } else { "#3b5b8c" })
                        fill-opacity=(format!("{:.2}", if *count == 0 { 0.04 } else { 0.15 + 0.85 * f64::from(*count) / f64::from(peak) })) {
                        title { (row.label) ", " (slice as u64 * t.slice_ms) "–" ((slice as u64 + 1) * t.slice_ms) " ms: " (count) }
                    }
                }
                text x=(LABEL_WIDTH + CELL * slices + 6) y=(y + 13) { (row.counts.iter().sum::<u32>()) }
            }
            @for (n, e) in t.events.iter().enumerate() {
                @let x = LABEL_WIDTH + CELL * e.slice as i32 + CELL / 2;
                line x1=(x) y1=(top - 4) x2=(x) y2=(top + grid_height) stroke="#e0a800" stroke-width="2" {}
                text x=(x) y=(top - 8) text-anchor="middle" font-weight="bold" { (n + 1) }
            }
            text x=(LABEL_WIDTH) y=(top + grid_height + 16) fill="#555" {
                (t.slice_ms) " ms per column; darker = more requests (darkest " (peak) ")"
            }
        }
        @if !t.events.is_empty() {
            ol class="events" {
                @for e in &t.events {
                    @let f = &e.fired;
                    li {
                        "at " (f.done_ms.as_millis()) " ms: " (f.host) " " (f.action)
                        @if f.name != format!("{} {}", f.host, f.action) { " (" (f.name) ")" }
                        @if let Some(err) = &f.error { span class="fail" { " — failed: " (err) } }
                    }
                }
            }
        }
    }
}
