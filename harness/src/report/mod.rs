//! Human and machine reports of a run: per-backend tallies, tables with bars, the run and
//! diagnosis reports, JSON, the topology as text graphs and SVG, the HTML report.

mod capture;
mod checks;
mod graph;
mod health;
mod html;
mod outcome;
mod svg;
mod table;
mod timeline;
mod vrrp;

/// Counted below `run`, rendered here; the path predates the `tally` module.
pub use crate::tally::Tally;
pub use capture::render_capture;
pub use checks::render_checks;
pub use graph::{dot, mermaid};
pub use health::{render_health, render_outages};
pub use html::{html_path_from_trace, html_report, PathHop, ReportSection, RequestPath};
pub use outcome::{diagnosis_report, human_report};
pub use svg::topology_svg;
pub use table::render_spread;
pub use timeline::{Timeline, TimelineEvent, TimelineRow};
pub use vrrp::render_vrrp;
