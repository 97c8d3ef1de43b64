//! The run over time: answers per backend and errors per time slice, with the events marked
//! where they fired. Requests count in the slice they were sent in. About 20 to 40 slices,
//! the slice a round number of milliseconds (1, 2, 5 × 10ⁿ).

use std::time::Duration;

use serde::Serialize;

use crate::run::FiredEvent;
use crate::traffic::RequestRecord;

/// At most this many slices; a run long enough has at least half as many.
const MAX_SLICES: u64 = 40;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    pub slice_ms: u64,
    /// One per backend (scenario order), then `errors`.
    pub rows: Vec<TimelineRow>,
    pub events: Vec<TimelineEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRow {
    pub label: String,
    /// Requests per slice: answered by this backend, or (`errors`) failed.
    pub counts: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    #[serde(flatten)]
    pub fired: FiredEvent,
    /// The slice it took effect in.
    pub slice: usize,
}

/// Label of the row of failed requests.
pub const ERRORS: &str = "errors";

impl Timeline {
    /// `length`: how long the traffic ran (the slices cover it and every event).
    pub fn build(records: &[RequestRecord], backends: &[&str], events: &[FiredEvent], length: Duration) -> Timeline {
        let end = records
            .iter()
            .map(|r| r.sent_at)
            .chain(events.iter().map(|e| e.done_ms))
            .fold(length, Duration::max);
        let slice_ms = slice_width(end);
        let slices = (end.as_millis() as u64 / slice_ms + 1) as usize;
        let slice_of = |at: Duration| ((at.as_millis() as u64 / slice_ms) as usize).min(slices - 1);
        let mut rows: Vec<TimelineRow> = backends
            .iter()
            .map(|b| b.to_string())
            .chain([ERRORS.to_owned()])
            .map(|label| TimelineRow {
                label,
                counts: vec![0; slices],
            })
            .collect();
        let errors = rows.len() - 1;
        for r in records {
            let row = match (&r.error, &r.backend) {
                (None, Some(b)) => backends.iter().position(|x| x == b).unwrap_or(errors),
                _ => errors,
            };
            rows[row].counts[slice_of(r.sent_at)] += 1;
        }
        let events = events
            .iter()
            .map(|e| TimelineEvent {
                fired: e.clone(),
                slice: slice_of(e.done_ms),
            })
            .collect();
        Timeline { slice_ms, rows, events }
    }

    pub fn slices(&self) -> usize {
        self.rows.first().map_or(0, |r| r.counts.len())
    }

    /// The terminal chart: one row per backend and errors, one column per slice, each cell a
    /// block as high as its count against the largest cell; events numbered above their slice.
    pub fn render(&self) -> String {
        let slices = self.slices();
        let label_width = self.rows.iter().map(|r| r.label.len()).max().unwrap_or(0).max(6);
        let peak = self
            .rows
            .iter()
            .flat_map(|r| r.counts.iter().copied())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "timeline: {} ms per column, 0–{} ms\n",
            self.slice_ms,
            self.slice_ms * slices as u64
        );
        if !self.events.is_empty() {
            let mut marks = vec![' '; slices];
            for (i, e) in self.events.iter().enumerate() {
                marks[e.slice] = if marks[e.slice] == ' ' { marker(i) } else { '*' };
            }
            let marks: String = marks.into_iter().collect();
            out.push_str(&format!("{:label_width$}  {}\n", "", marks.trim_end()));
        }
        for row in &self.rows {
            let cells: String = row.counts.iter().map(|&c| cell(c, peak)).collect();
            let total: u32 = row.counts.iter().sum();
            out.push_str(&format!("{:label_width$}  {cells}  {total}\n", row.label));
        }
        out.push_str(&format!(
            "{:label_width$}  █ = {peak} requests in a column, · = none\n",
            ""
        ));
        for (i, e) in self.events.iter().enumerate() {
            let f = &e.fired;
            out.push_str(&format!(
                "{:label_width$}  {} at {} ms: {} {}",
                "",
                marker(i),
                f.done_ms.as_millis(),
                f.host,
                f.action
            ));
            if f.name != format!("{} {}", f.host, f.action) {
                out.push_str(&format!(" ({})", f.name));
            }
            if let Some(err) = &f.error {
                out.push_str(&format!(" — failed: {err}"));
            }
            out.push('\n');
        }
        out
    }
}

/// The smallest round width (1, 2, 5 × 10ⁿ ms) that covers `length` in at most [`MAX_SLICES`].
fn slice_width(length: Duration) -> u64 {
    let ms = length.as_millis() as u64;
    let mut scale = 1u64;
    loop {
        for step in [1, 2, 5] {
            let width = step * scale;
            if ms / width < MAX_SLICES {
                return width;
            }
        }
        scale *= 10;
    }
}

fn cell(count: u32, peak: u32) -> char {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if count == 0 || peak == 0 {
        return '·';
    }
    let level = (u64::from(count) * 8).div_ceil(u64::from(peak)) as usize;
    LEVELS[level.clamp(1, 8) - 1]
}

/// 1..9, then a..z, for the n-th event.
fn marker(n: usize) -> char {
    char::from_digit(n as u32 + 1, 36).unwrap_or('+')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::RequestError;

    fn record(seq: u32, sent_ms: u64, backend: Option<&str>) -> RequestRecord {
        RequestRecord {
            seq,
            client: "client".into(),
            target: "192.0.2.100:80".parse().unwrap(),
            backend: backend.map(str::to_owned),
            latency: Duration::from_millis(1),
            local: None,
            seen_as: None,
            connection: seq,
            sent_at: Duration::from_millis(sent_ms),
            error: backend.is_none().then_some(RequestError::Refused),
        }
    }

    fn fired(name: &str, host: &str, action: &str, at_ms: u64) -> FiredEvent {
        FiredEvent {
            name: name.into(),
            host: host.into(),
            action: action.into(),
            due_ms: Duration::from_millis(at_ms),
            done_ms: Duration::from_millis(at_ms),
            error: None,
        }
    }

    /// rr over three servers at 100/s for 3 s; rs2 refuses from 1 s to 2 s.
    fn server_dies() -> (Vec<RequestRecord>, Vec<FiredEvent>) {
        let records = (0..300)
            .map(|seq| {
                let at = u64::from(seq) * 10;
                let backend = ["rs1", "rs2", "rs3"][seq as usize % 3];
                let down = backend == "rs2" && (1000..2000).contains(&at);
                record(seq, at, (!down).then_some(backend))
            })
            .collect();
        let events = vec![
            fired("rs2-dies", "rs2", "stop", 1000),
            fired("rs2 start", "rs2", "start", 2000),
        ];
        (records, events)
    }

    #[test]
    fn slices_are_round_and_between_twenty_and_forty() {
        for (ms, width) in [
            (0, 1),
            (39, 1),
            (40, 2),
            (1000, 50),
            (3000, 100),
            (3999, 100),
            (4000, 200),
            (60_000, 2000),
        ] {
            let w = slice_width(Duration::from_millis(ms));
            assert_eq!(w, width, "for {ms} ms");
            assert!(ms / w < MAX_SLICES);
            if ms >= 40 {
                assert!(ms / w + 1 >= MAX_SLICES / 2, "{ms} ms in {w} ms slices is too few");
            }
        }
    }

    #[test]
    fn requests_count_in_the_slice_they_were_sent_in() {
        let (records, events) = server_dies();
        let t = Timeline::build(&records, &["rs1", "rs2", "rs3"], &events, Duration::from_millis(2995));
        assert_eq!(t.slice_ms, 100);
        assert_eq!(t.slices(), 30);
        let row = |label: &str| &t.rows.iter().find(|r| r.label == label).unwrap().counts;
        // 10 requests per 100 ms slice, 3 or 4 per backend.
        assert_eq!(row("rs2")[9..12], [3, 0, 0]);
        assert_eq!(row("rs2")[19..21], [0, 3]);
        assert_eq!(row(ERRORS)[9..12], [0, 4, 3]);
        assert_eq!(row(ERRORS).iter().sum::<u32>(), 34);
        assert_eq!(row(ERRORS)[20..].iter().sum::<u32>(), 0);
        let total: u32 = t.rows.iter().flat_map(|r| r.counts.iter()).sum();
        assert_eq!(total, 300);
        assert_eq!(t.events.iter().map(|e| e.slice).collect::<Vec<_>>(), vec![10, 20]);
    }

    #[test]
    fn chart_marks_the_events_over_their_columns() {
        let (records, events) = server_dies();
        let t = Timeline::build(&records, &["rs1", "rs2", "rs3"], &events, Duration::from_millis(2995));
        insta::assert_snapshot!("server_dies", t.render());
    }

    #[test]
    fn json_has_the_slice_width_rows_and_event_times() {
        let (records, events) = server_dies();
        let t = Timeline::build(
            &records[..20],
            &["rs1", "rs2", "rs3"],
            &events[..1],
            Duration::from_millis(1000),
        );
        insta::assert_json_snapshot!("timeline_json", t);
    }
}
