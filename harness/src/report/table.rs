//! The per-backend table with a bar per row, as `lvslab run` prints it. Beyond
//! `SUMMARY_ROWS` backends it shows the busiest and the idlest few and counts the rest.

use std::fmt::Write;

use crate::tally::Tally;

const BAR_WIDTH: usize = 30;
/// More backends than this are summarised.
pub const SUMMARY_ROWS: usize = 20;
/// Rows shown at each end of a summarised table.
const EDGE_ROWS: usize = 5;

/// One row per backend (count, share, bar), then one per error kind.
pub fn render_spread(tally: &Tally) -> String {
    let backends: Vec<(&str, u32)> = tally.backends.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    if backends.len() <= SUMMARY_ROWS {
        return table(tally, &backends, None);
    }
    // Busiest first; ties in name order.
    let mut by_count = backends;
    by_count.sort_by_key(|b| std::cmp::Reverse(b.1));
    let middle = &by_count[EDGE_ROWS..by_count.len() - EDGE_ROWS];
    let shown: Vec<(&str, u32)> = by_count[..EDGE_ROWS]
        .iter()
        .chain(&by_count[by_count.len() - EDGE_ROWS..])
        .copied()
        .collect();
    let (hi, lo) = (middle[0].1, middle[middle.len() - 1].1);
    let each = if hi == lo {
        format!("{lo} requests each")
    } else {
        format!("{lo}–{hi} requests each")
    };
    let gap = format!("… {} more backends with {each}", middle.len());
    let mut out = table(tally, &shown, Some((EDGE_ROWS, gap)));
    let counts: Vec<u32> = by_count.iter().rev().map(|(_, c)| *c).collect();
    let silent = counts.iter().filter(|c| **c == 0).count();
    let _ = writeln!(
        out,
        "{} backends: {} answered, {silent} got nothing; requests per backend min {}, median {}, max {}",
        counts.len(),
        counts.len() - silent,
        counts[0],
        counts[counts.len() / 2],
        counts[counts.len() - 1]
    );
    out
}

/// The rows given, with `gap` as a line of its own after the first `.0` of them.
fn table(tally: &Tally, backends: &[(&str, u32)], gap: Option<(usize, String)>) -> String {
    let name_width = backends
        .iter()
        .map(|(n, _)| n.len())
        .chain(tally.errors.keys().map(|n| n.len()))
        .max()
        .unwrap_or(0)
        .max("backend".len());
    let mut out = String::new();
    let _ = writeln!(out, "{:<name_width$}  {:>6}  {:>6}", "backend", "count", "share");
    let total = f64::from(tally.requests.max(1));
    let rows = backends
        .iter()
        .map(|(n, c)| (*n, *c, '#'))
        .chain(tally.errors.iter().map(|(n, c)| (n.as_str(), *c, 'x')));
    for (i, (name, count, mark)) in rows.enumerate() {
        if let Some((at, text)) = &gap {
            if i == *at {
                let _ = writeln!(out, "{text}");
            }
        }
        let share = f64::from(count) / total;
        let bar_len = (share * BAR_WIDTH as f64).round() as usize;
        let bar: String = std::iter::repeat_n(mark, bar_len).collect();
        let _ = writeln!(out, "{name:<name_width$}  {count:>6}  {:>5.1}%  {bar}", share * 100.0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_row_per_backend_and_error_with_proportional_bars() {
        let mut t = Tally::new(["rs1", "rs2"]);
        for _ in 0..3 {
            t.add_answer("rs1");
        }
        t.add_error("timeout");
        let text = render_spread(&t);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[1].starts_with("rs1") && lines[1].contains("75.0%"));
        assert_eq!(lines[1].matches('#').count(), 23); // 0.75 * 30 rounded
        assert!(lines[2].starts_with("rs2") && lines[2].contains("0.0%"));
        assert!(lines[3].starts_with("timeout") && lines[3].contains('x'));
    }

    /// 500 backends answering 10 requests each but for a busy few and an idle few.
    fn five_hundred() -> Tally {
        let mut t = Tally::new(std::iter::empty());
        for i in 1..=500u32 {
            let count = match i {
                7 => 25,
                8 => 14,
                300..=302 => 0,
                _ => 10,
            };
            t.backends.insert(format!("rs{i}"), count);
            t.requests += count;
        }
        t.errors.insert("timeout".into(), 2);
        t.requests += 2;
        t
    }

    #[test]
    fn a_table_of_500_backends_shows_both_ends_and_counts_the_middle() {
        let text = render_spread(&five_hundred());
        insta::assert_snapshot!("spread_500", text);
        let lines: Vec<&str> = text.lines().collect();
        // header, 5 busiest, the gap, 5 idlest, the error row, the summary line
        assert_eq!(lines.len(), 14, "{text}");
        assert!(lines[1].starts_with("rs7 ") && lines[1].contains(" 25 "), "{text}");
        assert_eq!(lines[6], "… 490 more backends with 10 requests each");
        assert!(lines[11].starts_with("rs302") && lines[11].contains(" 0 "), "{text}");
        assert!(lines[12].starts_with("timeout"), "{text}");
        assert_eq!(
            lines[13],
            "500 backends: 497 answered, 3 got nothing; requests per backend min 0, median 10, max 25"
        );
    }

    #[test]
    fn twenty_backends_still_get_a_row_each() {
        let mut t = Tally::new(std::iter::empty());
        for i in 1..=SUMMARY_ROWS {
            t.backends.insert(format!("rs{i}"), 1);
            t.requests += 1;
        }
        assert_eq!(render_spread(&t).lines().count(), SUMMARY_ROWS + 1);
    }
}
