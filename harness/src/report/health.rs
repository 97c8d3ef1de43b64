//! What keepalived's checkers did, as the run report shows it: their log lines in
//! keepalived's own wording, one a line, with the time since the traffic started (negative:
//! before it), and a summary instead of the middle when there are many.

use crate::run::{HealthOutcome, Outage};

/// Lines shown in full; past this the report keeps the first and last few.
const FULL_LINES: usize = 20;
/// Lines kept at each end of a long log.
const END_LINES: usize = 8;

pub fn render_health(health: &HealthOutcome) -> String {
    // lvslab's own checkers log in keepalived's words; the real one's lines are its own.
    let by = match health.implementation {
        crate::ha::Implementation::Embedded => "",
        crate::ha::Implementation::Keepalived => " by the real keepalived (-C)",
    };
    let on = match health.services.len() > 1 {
        true => format!(" of services {}", health.services.join(", ")),
        false => String::new(),
    };
    let mut out = format!(
        "health checks{on} on director {}{by} (keepalived's log; seconds from the traffic's start):\n",
        health.director
    );
    let line = |l: &crate::run::HealthLine| {
        // A hair before the traffic's start reads as 0, not "-0.000".
        let at = if l.at_ms.abs() < 0.5 { 0.0 } else { l.at_ms / 1000.0 };
        match &l.director {
            Some(d) => format!("  {at:>+9.3} s  [{d}] {}\n", l.line),
            None => format!("  {at:>+9.3} s  {}\n", l.line),
        }
    };
    let log = &health.log;
    if log.len() <= FULL_LINES {
        for l in log {
            out.push_str(&line(l));
        }
    } else {
        for l in &log[..END_LINES] {
            out.push_str(&line(l));
        }
        let middle = &log[END_LINES..log.len() - END_LINES];
        let removed = middle.iter().filter(|l| l.line.starts_with("Removing service")).count();
        let added = middle.iter().filter(|l| l.line.starts_with("Adding service")).count();
        out.push_str(&format!(
            "  ... {} more lines ({removed} removals, {added} additions; all in --json `health.log`)\n",
            middle.len()
        ));
        for l in &log[log.len() - END_LINES..] {
            out.push_str(&line(l));
        }
    }
    // With several checked services, each server out is named with the service it is out of.
    let several = health.services.len() > 1;
    let out_at_end: Vec<String> = health
        .servers
        .iter()
        .filter(|s| s.out_at_end)
        .map(|s| match several {
            true => format!("{} (service {})", s.name, s.service),
            false => s.name.clone(),
        })
        .collect();
    if !out_at_end.is_empty() {
        out.push_str(&format!("  out of the table at the end: {}\n", out_at_end.join(", ")));
    }
    for p in &health.problems {
        out.push_str(&format!("  ({p})\n"));
    }
    out
}

/// One line per outage: how long the checker took to take the server out after its death
/// event, what failed meanwhile, and how long it took to put it back after its return.
pub fn render_outages(outages: &[Outage]) -> String {
    let mut out = String::new();
    for o in outages {
        let removed = match o.removed_after_ms {
            Some(ms) => format!("out {ms:.0} ms after \"{}\"", o.down_event),
            None => format!("never taken out after \"{}\"", o.down_event),
        };
        let back = match (&o.up_event, o.restored_after_ms) {
            (Some(up), Some(ms)) => format!("; back {ms:.0} ms after \"{up}\""),
            (Some(up), None) => format!("; not back after \"{up}\""),
            (None, _) => String::new(),
        };
        out.push_str(&format!(
            "  {}: {removed} ({} failed meanwhile){back}\n",
            o.who(outages),
            o.failed_meanwhile
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{HealthLine, ServerHealth};

    fn outcome(lines: usize) -> HealthOutcome {
        HealthOutcome {
            director: "dir".into(),
            services: vec!["tcp/80".into()],
            started_ms: -2000.0,
            log: (0..lines)
                .map(|i| HealthLine {
                    at_ms: i as f64 * 500.0 - 2000.0,
                    line: if i % 2 == 0 {
                        "Removing service [10.0.0.3]:tcp:80 from VS [10.0.0.100]:tcp:80".into()
                    } else {
                        "Adding service [10.0.0.3]:tcp:80 to VS [10.0.0.100]:tcp:80".into()
                    },
                    director: None,
                })
                .collect(),
            notify: Vec::new(),
            table: Vec::new(),
            servers: vec![ServerHealth {
                name: "rs3".into(),
                service: "tcp/80".into(),
                out_after_start_ms: Some(1000.0),
                out_at_end: true,
            }],
            failures: Vec::new(),
            problems: Vec::new(),
            implementation: crate::ha::Implementation::Embedded,
        }
    }

    #[test]
    fn short_logs_show_every_line_with_signed_seconds() {
        let text = render_health(&outcome(3));
        assert_eq!(text.lines().count(), 1 + 3 + 1, "{text}");
        assert!(
            text.contains("   -2.000 s  Removing service [10.0.0.3]:tcp:80 from VS [10.0.0.100]:tcp:80\n"),
            "{text}"
        );
        assert!(text.contains("   -1.500 s  Adding service"), "{text}");
        assert!(text.ends_with("  out of the table at the end: rs3\n"), "{text}");
    }

    #[test]
    fn long_logs_keep_both_ends_and_count_the_middle() {
        let text = render_health(&outcome(30));
        assert_eq!(text.lines().count(), 1 + 8 + 1 + 8 + 1, "{text}");
        assert!(text.contains("... 14 more lines (7 removals, 7 additions;"), "{text}");
        assert!(
            text.contains("  +12.500 s  Adding service"),
            "the last line is kept: {text}"
        );
    }

    #[test]
    fn an_outage_reads_as_one_line() {
        let o = Outage {
            service: "tcp/80".into(),
            server: "rs2".into(),
            down_event: "rs2-dies".into(),
            down_at_ms: 1500.0,
            removed_after_ms: Some(503.4),
            failed_meanwhile: 17,
            up_event: Some("rs2-back".into()),
            restored_after_ms: None,
        };
        assert_eq!(
            render_outages(&[o]),
            "  rs2: out 503 ms after \"rs2-dies\" (17 failed meanwhile); not back after \"rs2-back\"\n"
        );
    }
}
