//! The per-backend table with a bar per row, as `lvslab run` prints it.

use std::fmt::Write;

use super::Tally;

const BAR_WIDTH: usize = 30;

/// One row per backend (count, share, bar), then one per error kind.
pub fn render_spread(tally: &Tally) -> String {
    let name_width = tally
        .backends
        .keys()
        .chain(tally.errors.keys())
        .map(|n| n.len())
        .max()
        .unwrap_or(0)
        .max("backend".len());
    let mut out = String::new();
    let _ = writeln!(out, "{:<name_width$}  {:>6}  {:>6}", "backend", "count", "share");
    let total = f64::from(tally.requests.max(1));
    let rows = tally
        .backends
        .iter()
        .map(|(n, c)| (n.as_str(), *c, '#'))
        .chain(tally.errors.iter().map(|(n, c)| (n.as_str(), *c, 'x')));
    for (name, count, mark) in rows {
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
}
