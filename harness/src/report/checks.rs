//! The verdict's checks as `lvslab run` prints them: one line each, except that a run of more
//! than `SUMMARY_THRESHOLD` per-server share checks becomes one summary line plus the failing
//! ones, worst first and capped. `--json` keeps every check.

use std::fmt::Write;

use crate::verdict::{percent, Check, ShareFigures, ShareKind};

/// More per-server share checks than this are summarised.
pub const SUMMARY_THRESHOLD: usize = 20;
/// Failing checks listed under a summary.
const FAILURES_SHOWN: usize = 10;
const INDENT: &str = "  ";
const NESTED: &str = "       ";

pub fn render_checks(checks: &[Check]) -> String {
    let mut out = String::new();
    let mut rest = checks;
    while let Some(first) = rest.first() {
        let kind = first.share.as_ref().map(|f| f.kind);
        let run = match kind {
            Some(k) => rest
                .iter()
                .take_while(|c| c.share.as_ref().map(|f| f.kind) == Some(k))
                .count(),
            None => 1,
        };
        let (group, after) = rest.split_at(run);
        match kind {
            Some(k) if run > SUMMARY_THRESHOLD => summarise(&mut out, k, group),
            _ => group.iter().for_each(|c| line(&mut out, c, INDENT)),
        }
        rest = after;
    }
    out
}

fn line(out: &mut String, check: &Check, indent: &str) {
    let mark = if check.passed { "ok  " } else { "FAIL" };
    let _ = match &check.detail {
        Some(d) => writeln!(out, "{indent}{mark} {} — {d}", check.what),
        None => writeln!(out, "{indent}{mark} {}", check.what),
    };
}

fn summarise(out: &mut String, kind: ShareKind, group: &[Check]) {
    let what = match kind {
        ShareKind::Weighted => "weighted share",
        ShareKind::Stated => "stated share",
    };
    let n = group.len();
    let expected = expected_text(group.iter().filter_map(|c| c.share.as_ref()));
    let mut failed: Vec<&Check> = group.iter().filter(|c| !c.passed).collect();
    let held = range(group.iter().filter(|c| c.passed).filter_map(|c| c.share.as_ref()));
    if failed.is_empty() {
        let (lo, hi) = held.unwrap_or_default();
        let _ = writeln!(
            out,
            "{INDENT}ok   all {n} real servers get their {what} (min {lo}, max {hi}, {expected})"
        );
        return;
    }
    let others = match held {
        Some((lo, hi)) => format!("the other {} got {lo}–{hi}", n - failed.len()),
        None => "none held".to_owned(),
    };
    let _ = writeln!(
        out,
        "{INDENT}FAIL {} of {n} real servers miss their {what} ({expected}; {others})",
        failed.len()
    );
    // Worst first: the servers furthest outside what they were allowed.
    failed.sort_by(|a, b| miss(b).total_cmp(&miss(a)));
    for c in failed.iter().take(FAILURES_SHOWN) {
        line(out, c, NESTED);
    }
    if failed.len() > FAILURES_SHOWN {
        let _ = writeln!(
            out,
            "{NESTED}… and {} more failing (--json lists every check)",
            failed.len() - FAILURES_SHOWN
        );
    }
}

/// How far outside its allowance a share fell, in allowances (infinite when none was allowed).
fn miss(check: &Check) -> f64 {
    check.share.as_ref().map_or(0.0, |f| {
        let off = (f.got() - f.expected).abs();
        if f.allowed() > 0.0 {
            off / f.allowed()
        } else if off > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    })
}

/// "expected 2.0% ± 0.20%", or with unequal weights "expected 0.10%–0.40%, each ± 10% of it".
fn expected_text<'a>(figures: impl Iterator<Item = &'a ShareFigures>) -> String {
    let figures: Vec<&ShareFigures> = figures.collect();
    let (lo, hi) = figures
        .iter()
        .map(|f| f.expected)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), e| (lo.min(e), hi.max(e)));
    let Some(first) = figures.first() else {
        return "nothing expected".to_owned();
    };
    if hi - lo < 1e-12 {
        format!("expected {} ± {}", percent(first.expected), percent(first.allowed()))
    } else {
        format!(
            "expected {}–{}, each ± {} of it",
            percent(lo),
            percent(hi),
            percent(first.tolerance)
        )
    }
}

/// The lowest and highest share got, as text.
fn range<'a>(figures: impl Iterator<Item = &'a ShareFigures>) -> Option<(String, String)> {
    let got: Vec<f64> = figures.map(ShareFigures::got).collect();
    let lo = got.iter().copied().reduce(f64::min)?;
    let hi = got.iter().copied().reduce(f64::max)?;
    Some((percent(lo), percent(hi)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share_check(backend: &str, count: u32, requests: u32, expected: f64) -> Check {
        ShareFigures {
            backend: backend.to_owned(),
            kind: ShareKind::Weighted,
            count,
            requests,
            expected,
            tolerance: 0.1,
        }
        .into_check()
    }

    fn plain(what: &str, passed: bool) -> Check {
        Check {
            what: what.to_owned(),
            passed,
            detail: (!passed).then(|| "it did not".to_owned()),
            share: None,
        }
    }

    /// 500 servers expecting 10 requests each of 5000, with the given counts overriding.
    fn five_hundred(overrides: &[(usize, u32)]) -> Vec<Check> {
        let mut checks = vec![plain("at most 0 failed request(s)", true)];
        checks.extend((1..=500).map(|i| {
            let count = overrides
                .iter()
                .find(|(k, _)| *k == i)
                .map_or(10 - (i % 2) as u32, |(_, c)| *c);
            share_check(&format!("rs{i}"), count, 5000, 0.002)
        }));
        checks.push(plain("answers start rs3 rs2 rs1", true));
        checks
    }

    #[test]
    fn a_few_share_checks_print_one_line_each() {
        let checks: Vec<Check> = (1..=3)
            .map(|i| share_check(&format!("rs{i}"), 20, 60, 1.0 / 3.0))
            .collect();
        let text = render_checks(&checks);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.starts_with("  ok   rs1 gets its weighted share 33.3% ± 3.3%\n"),
            "{text}"
        );
    }

    #[test]
    fn five_hundred_passing_share_checks_are_one_line() {
        insta::assert_snapshot!("five_hundred_pass", render_checks(&five_hundred(&[])));
    }

    #[test]
    fn failing_servers_are_listed_worst_first_and_capped() {
        let mut overrides: Vec<(usize, u32)> = (100..112).map(|i| (i, 7)).collect();
        overrides.push((417, 0));
        let text = render_checks(&five_hundred(&overrides));
        insta::assert_snapshot!("five_hundred_thirteen_fail", text);
        let first_failure = text.lines().nth(2).unwrap();
        assert!(
            first_failure.contains("rs417"),
            "the silent server comes first:\n{text}"
        );
        assert!(text.contains("… and 3 more failing"), "{text}");
    }

    #[test]
    fn the_other_checks_keep_their_lines_around_a_summary() {
        let text = render_checks(&five_hundred(&[]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0], "  ok   at most 0 failed request(s)");
        assert_eq!(lines[2], "  ok   answers start rs3 rs2 rs1");
    }
}
