//! Human and machine reports of a run: per-backend tallies, tables with bars, the run and
//! diagnosis reports, JSON.

mod checks;
mod graph;
mod outcome;
mod table;
mod tally;
mod timeline;

pub use checks::render_checks;
pub use graph::mermaid;
pub use outcome::{diagnosis_report, human_report};
pub use table::render_spread;
pub use tally::Tally;
pub use timeline::{Timeline, TimelineEvent, TimelineRow};
