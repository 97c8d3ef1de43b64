//! Human and machine reports of a run: per-backend tallies, tables with bars, JSON.

mod checks;
mod graph;
mod table;
mod tally;

pub use checks::render_checks;
pub use graph::mermaid;
pub use table::render_spread;
pub use tally::Tally;
