//! One test per shipped scenario file: build its lab, run its traffic, and hold it to its `[expect]`.
//! Needs root (network namespaces); without it every scenario is reported as ignored, with the reason.

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

use lvslab::report::human_report;
use lvslab::run::{self, RunOptions};
use lvslab::scenario;

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

fn run_scenario(path: &Path) -> Result<(), Failed> {
    let scenario = scenario::load(path).map_err(|r| r.render(&path.display().to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    let outcome = runtime
        .block_on(run::run(&scenario, &RunOptions::default()))
        .map_err(|e| format!("{}: {e}", scenario.name))?;
    if outcome.verdict.passed {
        Ok(())
    } else {
        Err(human_report(&outcome, true).into())
    }
}

fn main() {
    let args = Arguments::from_args();
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("scenario tests need root (they build network namespaces): every scenario is ignored");
    }
    let trials = scenario_files()
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Trial::test(name, move || run_scenario(&path)).with_ignored_flag(!root)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
