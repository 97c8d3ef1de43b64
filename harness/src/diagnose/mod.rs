//! diagnose: pure rules over gathered evidence that answer "why does every request go
//! to one real server?" with ranked findings (cause, evidence, fix).
//!
//! `observe` fills an [`Evidence`]; [`diagnose`] summarises the spread and runs every
//! rule in [`rules`]; [`render`] prints the result for people. No I/O, no root.

pub mod evidence;
pub mod finding;
mod mac;
pub mod render;
pub mod rules;
pub mod sample;
pub mod spread;

pub use evidence::Evidence;
pub use finding::{Diagnosis, Finding};
pub use render::render;
pub use rules::CAUSE_IDS;
pub use spread::{SpreadSummary, SpreadVerdict};

/// Runs every rule over the evidence and ranks what fires, most likely first.
pub fn diagnose(ev: &Evidence) -> Diagnosis {
    let spread = spread::summarise(ev);
    let mut findings: Vec<Finding> = rules::RULES.iter().filter_map(|rule| rule(ev, &spread)).collect();
    if spread.healthy {
        // Nothing is skewed now: what fired is a latent risk, not an explanation.
        for finding in &mut findings {
            finding.explains = finding.explains.min(finding::LATENT);
        }
    }
    let rank = |id: &str| CAUSE_IDS.iter().position(|c| *c == id).unwrap_or(usize::MAX);
    findings.sort_by(|a, b| b.explains.total_cmp(&a.explains).then_with(|| rank(a.id).cmp(&rank(b.id))));
    let healthy = spread.healthy && findings.is_empty();
    Diagnosis { findings, spread, healthy }
}
