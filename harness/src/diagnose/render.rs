//! The human report of a diagnosis: the spread, then each finding with its evidence
//! and fix, most likely first.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::finding::{Diagnosis, LATENT};
use super::spread::{SpreadSummary, SpreadVerdict};

pub fn render(d: &Diagnosis) -> String {
    let mut out = String::new();
    out.push_str(&spread_line(&d.spread));
    out.push('\n');
    if d.healthy {
        out.push_str(
            "Healthy: requests spread over the servers in line with their weights, and no known cause of skew holds.\n",
        );
        return out;
    }
    if d.findings.is_empty() {
        out.push_str(
            "No known cause matched the evidence; gather more (neighbour tables, IPVS table, probes) and look again.\n",
        );
        return out;
    }
    if d.spread.healthy {
        out.push_str("The spread is even now, but these risks hold:\n");
    } else {
        out.push_str("Causes, most likely first:\n");
    }
    for (rank, f) in d.findings.iter().enumerate() {
        let weight = if f.explains <= LATENT {
            "latent".to_string()
        } else {
            format!("explains ~{:.0}%", f.explains * 100.0)
        };
        let _ = writeln!(out, "\n{}. [{}] {} ({weight})", rank + 1, f.id, f.title);
        if let Some(service) = &f.service {
            let _ = writeln!(out, "   service: {service}");
        }
        if let Some(director) = &f.director {
            let _ = writeln!(out, "   director: {director}");
        }
        if !f.evidence.is_empty() {
            out.push_str("   evidence:\n");
            for line in &f.evidence {
                let _ = writeln!(out, "     - {line}");
            }
        }
        if !f.fix.is_empty() {
            out.push_str("   fix:\n");
            for line in &f.fix {
                let _ = writeln!(out, "     - {line}");
            }
        }
    }
    out
}

/// Beyond this many servers the spread line gives the range and the extremes, not every count.
const LISTED_BACKENDS: usize = 20;
/// How many of the busiest and of the idlest servers a summarised spread line names.
const EXTREMES: usize = 3;

fn spread_counts(per_backend: &BTreeMap<String, u32>) -> String {
    let listed = |group: &[(&String, &u32)]| -> String {
        group
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if per_backend.is_empty() {
        return "no server answered".to_string();
    }
    let mut by_count: Vec<(&String, &u32)> = per_backend.iter().collect();
    if by_count.len() <= LISTED_BACKENDS {
        return listed(&by_count);
    }
    // Busiest first; ties by name, so the line is the same on every run.
    by_count.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let most = listed(&by_count[..EXTREMES]);
    by_count.sort_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)));
    let fewest = listed(&by_count[..EXTREMES]);
    format!(
        "{} servers, {}–{} each (most: {most}; fewest: {fewest})",
        per_backend.len(),
        by_count[0].1,
        by_count[by_count.len() - 1].1
    )
}

/// The spread in one line: requests, answers per server, the verdict.
pub fn spread_line(s: &SpreadSummary) -> String {
    let counts = spread_counts(&s.per_backend);
    let verdict = match s.verdict {
        SpreadVerdict::NoTraffic => {
            return "Spread: no traffic recorded; the findings rest on configuration and state only.".to_string()
        }
        SpreadVerdict::Even => "even".to_string(),
        SpreadVerdict::OneServer => format!("ONE SERVER ({} of {} eligible answered)", s.distinct, s.eligible),
        SpreadVerdict::Skewed => format!("SKEWED (top server took {:.0}%)", s.top_share * 100.0),
        SpreadVerdict::Errors => format!("ERRORS ({} of {} requests failed)", s.errors, s.requests),
    };
    format!("Spread: {} requests -> {counts}: {verdict}", s.requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_over_many_servers_gives_the_range_and_the_extremes() {
        let per_backend: BTreeMap<String, u32> = (1..=1000)
            .map(|i| (format!("rs{i}"), 4 + u32::from(i % 7 == 0)))
            .collect();
        assert_eq!(
            spread_counts(&per_backend),
            "1000 servers, 4–5 each (most: rs105 5, rs112 5, rs119 5; fewest: rs1 4, rs10 4, rs100 4)"
        );
        let few: BTreeMap<String, u32> = [("rs1".to_string(), 3), ("rs2".to_string(), 0)].into();
        assert_eq!(spread_counts(&few), "rs1 3, rs2 0");
    }
    use crate::diagnose::{diagnose, sample};

    #[test]
    fn healthy_report() {
        insta::assert_snapshot!("healthy", render(&diagnose(&sample::healthy_dr())));
    }

    #[test]
    fn arp_flux_report() {
        insta::assert_snapshot!("arp_flux", render(&diagnose(&sample::arp_flux())));
    }

    #[test]
    fn persistence_report() {
        insta::assert_snapshot!("persistence", render(&diagnose(&sample::persistence())));
    }

    #[test]
    fn keepalive_report() {
        insta::assert_snapshot!("keepalive", render(&diagnose(&sample::keepalive())));
    }

    #[test]
    fn fault_reports() {
        insta::assert_snapshot!("server_fault", render(&diagnose(&sample::server_dies())));
        insta::assert_snapshot!("health_check", render(&diagnose(&sample::checker_takes_out())));
        insta::assert_snapshot!("sorry_server", render(&diagnose(&sample::sorry_server())));
    }

    #[test]
    fn no_traffic_says_so() {
        let mut ev = sample::healthy_dr();
        ev.records.clear();
        let text = render(&diagnose(&ev));
        assert!(text.starts_with("Spread: no traffic recorded"), "{text}");
    }
}
