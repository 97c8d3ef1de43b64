//! keepalived processes a dead lvslab left behind, for `lvslab clean`.
//!
//! None is known to survive: the parent dies with the keeper thread that spawned it
//! (PDEATHSIG), its children by their own PDEATHSIG, and a VRRP child frozen by SIGSTOP too,
//! because its orphaned process group gets SIGHUP and SIGCONT from the kernel (tested in
//! `keepalived::tests`). This is the net under that: only processes recorded in a run
//! directory whose owner (`keepalived.owner`) is dead are touched, and only if they are
//! keepalived started with that directory's pid files.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{checker_pid_path, owner_path, pid_path, vrrp_pid_path};

/// What [`clean_leftovers`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftoverReport {
    /// keepalived processes of dead runs, killed: (director run directory, pid).
    pub killed: Vec<(PathBuf, i32)>,
    /// Run directories of dead owners, removed.
    pub removed_dirs: Vec<PathBuf>,
    /// Director run directories whose owner is alive: left alone.
    pub live: Vec<PathBuf>,
    pub problems: Vec<String>,
}

/// Kills the keepalived processes of dead runs under /run/lvslab/runs and removes those runs'
/// directories.
pub fn clean_leftovers() -> LeftoverReport {
    clean_leftovers_in(&Path::new(crate::lab::STATE_DIR).join("runs"))
}

pub(crate) fn clean_leftovers_in(runs: &Path) -> LeftoverReport {
    let mut report = LeftoverReport::default();
    for run in sorted_dirs(runs) {
        let mut dead_owner = false;
        let mut live_owner = false;
        let mut failed = false;
        // A director's checker-only keepalived keeps its files in `<director>/checkers/`.
        let host_dirs: Vec<PathBuf> = sorted_dirs(&run)
            .into_iter()
            .flat_map(|d| {
                let checkers = super::checkers_dir(&d);
                std::iter::once(d).chain(checkers.is_dir().then_some(checkers))
            })
            .collect();
        for host_dir in host_dirs {
            let Some(alive) = owner_alive(&host_dir) else { continue };
            if alive {
                live_owner = true;
                report.live.push(host_dir);
                continue;
            }
            dead_owner = true;
            for pid_file in [
                pid_path(&host_dir),
                vrrp_pid_path(&host_dir),
                checker_pid_path(&host_dir),
            ] {
                let Some(pid) = fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                else {
                    continue;
                };
                if !is_keepalived_of(pid, &pid_file) {
                    continue;
                }
                // SIGKILL ends a stopped process too.
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) => report.killed.push((host_dir.clone(), pid)),
                    Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => {
                        failed = true;
                        report
                            .problems
                            .push(format!("kill keepalived pid {pid} ({}): {e}", host_dir.display()));
                    }
                }
            }
        }
        if dead_owner && !live_owner && !failed {
            match fs::remove_dir_all(&run) {
                Ok(()) => report.removed_dirs.push(run),
                Err(e) => report.problems.push(format!("{}: {e}", run.display())),
            }
        }
    }
    report
}

/// Some(alive) when `dir` holds a keepalived.owner lvslab wrote.
fn owner_alive(dir: &Path) -> Option<bool> {
    let text = fs::read_to_string(owner_path(dir)).ok()?;
    let mut words = text.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let ticks: u64 = words.next()?.parse().ok()?;
    Some(crate::lab::process_start_ticks(pid) == Some(ticks))
}

/// `pid` is keepalived and was started with `pid_file` on its command line (its children are
/// forks of it, so they carry the same command line): not a reused pid.
fn is_keepalived_of(pid: i32, pid_file: &Path) -> bool {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim_end() != "keepalived" {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = pid_file.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}
