//! The scenario file: TOML model (`raw`), resolution in stages with the defaults of
//! each forwarding mode (`resolve`), validation with file:line:column (`validate`,
//! `diagnostic`) and the resolved model everyone else uses (`model`).

pub mod diagnostic;
mod document;
pub mod firewall;
pub mod keywords;
pub mod model;
pub mod raw;
mod resolve;
mod suggest;
mod sysctl;
mod validate;

use std::path::Path;

pub use diagnostic::{CheckReport, Problem, Severity};
pub use keywords::Keyword;
pub use model::*;

/// Reads, checks and resolves a scenario file. The scenario's default name
/// is the file stem.
pub fn load(path: &Path) -> Result<Scenario, CheckReport> {
    load_checked(path).map(|(scenario, _)| scenario)
}

/// [`load`], with the file's warnings (empty when there are none).
pub fn load_checked(path: &Path) -> Result<(Scenario, CheckReport), CheckReport> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CheckReport::single(format!("cannot read {}: {e}", path.display()), None))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario");
    parse_named(&text, stem)
}

/// Checks and resolves scenario text. `origin` names the text (a path or a
/// label); its file stem is the default scenario name.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, CheckReport> {
    parse_checked(text, origin).map(|(scenario, _)| scenario)
}

/// [`parse`], with the text's warnings (empty when there are none). A refused text's report
/// holds its warnings too.
pub fn parse_checked(text: &str, origin: &str) -> Result<(Scenario, CheckReport), CheckReport> {
    let stem = Path::new(origin).file_stem().and_then(|s| s.to_str()).unwrap_or(origin);
    parse_named(text, stem)
}

fn parse_named(text: &str, default_name: &str) -> Result<(Scenario, CheckReport), CheckReport> {
    let mut problems = diagnostic::Problems::new(text);
    let Some(raw) = document::read(text, &mut problems) else {
        return Err(problems.into_report());
    };
    let scenario = resolve::resolve(&raw, default_name, &mut problems);
    if problems.is_empty() {
        Ok((scenario, problems.into_report()))
    } else {
        Err(problems.into_report())
    }
}
#[cfg(test)]
mod mixed_modes_tests;
#[cfg(test)]
mod run_config_tests;
#[cfg(test)]
mod tests;
