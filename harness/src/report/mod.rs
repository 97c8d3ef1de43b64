//! Human and machine reports of a run: per-backend tallies, tables with bars, the run and
//! diagnosis reports, JSON.

mod capture;
mod checks;
mod graph;
mod health;
mod outcome;
mod table;
mod timeline;
mod vrrp;

/// Counted below `run`, rendered here; the path predates the `tally` module.
pub use crate::tally::Tally;
pub use capture::render_capture;
pub use checks::render_checks;
pub use graph::mermaid;
pub use health::{render_health, render_outages};
pub use outcome::{diagnosis_report, human_report};
pub use table::render_spread;
pub use timeline::{Timeline, TimelineEvent, TimelineRow};
pub use vrrp::render_vrrp;
