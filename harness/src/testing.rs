//! Scenario files as cargo tests: every `*.toml` in a directory is one test, named by its
//! file stem, that builds the lab, runs the traffic and holds the run to the file's `[expect]`.
//!
//! In your crate's `Cargo.toml`:
//!
//! ```toml
//! [dev-dependencies]
//! lvslab = { path = "../lvslab/harness" }
//!
//! [[test]]
//! name = "lvs_scenarios"
//! harness = false
//! ```
//!
//! and `tests/lvs_scenarios.rs`:
//!
//! ```no_run
//! fn main() {
//!     lvslab::testing::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).run();
//! }
//! ```
//!
//! The tests need root (network namespaces): without it each is listed as ignored and the
//! binary says why. The binary speaks libtest's command line (`--list`, `--exact`,
//! `--ignored`, filters), so `cargo nextest run` and `--partition count:K/N` work on it.

// The example is a `harness = false` test file: its `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

use crate::api;
use crate::report::human_report;
use crate::scenario::Scenario;

/// The scenario files of one directory, as tests.
#[derive(Debug, Clone)]
pub struct Suite {
    dir: PathBuf,
}

impl Suite {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Suite { dir: dir.into() }
    }

    /// One trial per scenario file, in name order, to run with your own trials through
    /// `libtest_mimic::run`. An unreadable directory is one failing trial that says so.
    pub fn trials(&self) -> Vec<Trial> {
        let root = nix::unistd::geteuid().is_root();
        let files = match scenario_files(&self.dir) {
            Ok(files) => files,
            Err(message) => return vec![Trial::test("scenario-directory", move || Err(message.into()))],
        };
        files
            .into_iter()
            .map(|path| {
                let name = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Trial::test(name, move || run_file(&path)).with_ignored_flag(!root)
            })
            .collect()
    }

    /// Parses the command line, runs the trials and exits with libtest's code.
    pub fn run(self) -> ! {
        let args = Arguments::from_args();
        if !nix::unistd::geteuid().is_root() && !args.list {
            eprintln!(
                "scenario tests need root (they build network namespaces): every scenario is ignored; \
                 see lvslab's README, \"Scenarios in your own crate's CI\", for a sudo runner"
            );
        }
        libtest_mimic::run(&args, self.trials()).exit()
    }
}

/// The `*.toml` files directly in `dir`, sorted.
fn scenario_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read scenario directory {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

fn run_file(path: &Path) -> Result<(), Failed> {
    let scenario = Scenario::load(path).map_err(|e| e.to_string())?;
    let outcome = api::run(&scenario).map_err(|e| e.to_string())?;
    if outcome.passed() {
        Ok(())
    } else {
        // With the director's ipvsadm views: what a failed scenario most needs explaining.
        Err(human_report(outcome.details(), true).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_toml_file_is_one_trial_named_by_its_stem() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.toml", "a.toml", "notes.md"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> = Suite::new(dir.path())
            .trials()
            .iter()
            .map(|t| t.name().to_owned())
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn a_missing_directory_is_one_failing_trial_that_names_it() {
        let trials = Suite::new("/nonexistent/scenarios").trials();
        assert_eq!(trials.len(), 1);
        assert_eq!(trials[0].name(), "scenario-directory");
        assert!(!trials[0].has_ignored_flag());
    }

    #[test]
    fn a_bad_file_fails_with_its_problems_at_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("typo.toml");
        std::fs::write(&file, "[service]\nmode = \"drr\"\n").unwrap();
        let message = run_file(&file).unwrap_err().message().unwrap_or_default().to_owned();
        assert!(message.contains("typo.toml:2:8"), "{message}");
        assert!(message.contains("dr"), "{message}");
    }
}
