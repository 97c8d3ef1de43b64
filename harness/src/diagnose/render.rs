//! The human report of a diagnosis: the spread, then each finding with its evidence
//! and fix, most likely first.

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

fn spread_line(s: &SpreadSummary) -> String {
    let counts: Vec<String> = s.per_backend.iter().map(|(name, n)| format!("{name} {n}")).collect();
    let counts = if counts.is_empty() {
        "no server answered".to_string()
    } else {
        counts.join(", ")
    };
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
    fn no_traffic_says_so() {
        let mut ev = sample::healthy_dr();
        ev.records.clear();
        let text = render(&diagnose(&ev));
        assert!(text.starts_with("Spread: no traffic recorded"), "{text}");
    }
}
