//! The real keepalived as lvslab's VRRP (and, where the kernel has IPVS, health-checking)
//! implementation: the keepalived.conf of one director written from the resolved scenario
//! ([`config`]), checked with `keepalived -t` in the director's namespace ([`config_test`]),
//! and run there as a [`Daemon`] whose notify FIFO gives every state transition.
//!
//! Facts this module relies on (keepalived 2.2.7, measured here): shared/reference/keepalived.md
//! §1.8 (the FIFO lines) and §4 (command line, pid files, dying with the parent). How lvslab
//! uses it: docs/keepalived.md.

pub mod checker_log;
mod config;
mod daemon;
mod error;
mod leftovers;
pub mod names;
mod test_config;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use config::config;
pub use daemon::{is_checker_activation, Daemon, LogTap, Transition};
pub use error::KeepalivedError;
pub use leftovers::{clean_leftovers, LeftoverReport};
pub use test_config::config_test;

/// Where Debian installs it; `PATH` is searched too.
const SYSTEM_BINARY: &str = "/usr/sbin/keepalived";

/// Which of keepalived's children run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `-P`: the VRRP child only; works on any kernel. `virtual_server` blocks are not written.
    VrrpOnly,
    /// The VRRP and checker children: keepalived's checkers drive kernel IPVS, so this needs a
    /// kernel with IPVS (without it the checker child exits FATAL and takes the daemon down).
    Full,
    /// `-C`: the checker child only, for a scenario without VRRP (or beside a `-P` daemon).
    /// Needs kernel IPVS like `Full`. No `vrrp_instance` is written.
    CheckersOnly,
}

impl Mode {
    /// Whether keepalived's checkers run (and so a `virtual_server` is written).
    pub fn checks(self) -> bool {
        matches!(self, Mode::Full | Mode::CheckersOnly)
    }

    /// Whether the VRRP child runs.
    pub fn vrrp(self) -> bool {
        matches!(self, Mode::VrrpOnly | Mode::Full)
    }
}

/// The keepalived binary: /usr/sbin/keepalived, else the first on `PATH`.
pub fn binary() -> Option<PathBuf> {
    let system = Path::new(SYSTEM_BINARY);
    if is_executable(system) {
        return Some(system.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("keepalived"))
        .find(|p| is_executable(p))
}

/// Whether keepalived can be run here.
pub fn installed() -> bool {
    binary().is_some()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The files lvslab keeps for one director's keepalived, all in the director's run directory.
pub fn conf_path(dir: &Path) -> PathBuf {
    dir.join("keepalived.conf")
}

/// The notify FIFO keepalived writes `INSTANCE "VI_1" MASTER 150` lines to.
pub fn fifo_path(dir: &Path) -> PathBuf {
    dir.join("keepalived.fifo")
}

/// `-p`: the parent's pid.
pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join("keepalived.pid")
}

/// `-r`: the VRRP child's pid.
pub fn vrrp_pid_path(dir: &Path) -> PathBuf {
    dir.join("vrrp.pid")
}

/// `-c`: the checker child's pid (full mode).
pub fn checker_pid_path(dir: &Path) -> PathBuf {
    dir.join("checkers.pid")
}

/// Where a director's checker-only keepalived (`-C`, beside its VRRP one) keeps its files.
pub fn checkers_dir(dir: &Path) -> PathBuf {
    dir.join("checkers")
}

/// Who started the daemon (`<pid> <start ticks>`), so `lvslab clean` can tell a live run's
/// keepalived from one a dead run left behind.
pub fn owner_path(dir: &Path) -> PathBuf {
    dir.join("keepalived.owner")
}
