//! Kept labs: namespaces published as /run/netns symlinks for `ip netns exec`, recorded in a
//! state file so that `clean` can remove exactly what a dead owner left, and nothing else.

use std::fs;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::LabError;
use super::plan::check_label;

pub const NETNS_DIR: &str = "/run/netns";
pub const STATE_DIR: &str = "/run/lvslab";
const LINK_PREFIX: &str = "lvslab-";

/// What /run/lvslab/<name>.json records.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeptState {
    pub name: String,
    pub run_id: String,
    pub pid: u32,
    /// Start time of the owner in clock ticks since boot (/proc/PID/stat field 22): tells a
    /// live owner from a new process that reuses its pid.
    pub start_ticks: u64,
    /// Unix seconds when the lab was kept.
    pub started: u64,
    /// Namespace names as known to the lab ("switch" included).
    pub hosts: Vec<String>,
    /// Every /run/netns entry this lab made.
    pub links: Vec<String>,
}

/// A kept lab as `list_kept` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptLab {
    pub name: String,
    pub run_id: String,
    pub pid: u32,
    pub started: u64,
    pub hosts: Vec<String>,
    pub alive: bool,
}

/// What `clean` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Kept labs whose owner was dead: their links and state files are gone now.
    pub removed_labs: Vec<String>,
    pub removed_links: Vec<String>,
    /// Kept labs whose owner is alive (name, pid): left alone.
    pub live: Vec<(String, u32)>,
    /// Entries that could not be read or removed; nothing else was touched for them.
    pub problems: Vec<String>,
}

pub fn link_path(lab: &str, host: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("{LINK_PREFIX}{lab}-{host}"))
}

fn state_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// Owner start time from /proc/PID/stat, None if no such process or only its zombie is left
/// (a killed owner whose parent has not reaped it yet holds no namespace any more).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may hold spaces and parentheses: fields start after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A live process's start time in clock ticks since boot (with its pid, it names the process
/// even after the pid is reused); None for no process or a zombie.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    start_ticks(pid)
}

pub(crate) fn own_start_ticks() -> u64 {
    start_ticks(std::process::id()).unwrap_or(0)
}

pub(crate) fn owner_alive(state: &KeptState) -> bool {
    start_ticks(state.pid) == Some(state.start_ticks)
}

fn read_state(path: &Path) -> Result<KeptState, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not a lvslab state file: {e}", path.display()))
}

/// Refuses a name that is already recorded (alive or not) before anything is created.
pub(crate) fn check_free(name: &str) -> Result<(), LabError> {
    check_label("kept lab name", name, 64)?;
    check_free_in(Path::new(STATE_DIR), name)
}

fn check_free_in(dir: &Path, name: &str) -> Result<(), LabError> {
    let path = state_path(dir, name);
    match read_state(&path) {
        Ok(state) if owner_alive(&state) => Err(LabError::kept(
            name,
            format!("already kept by live process {}", state.pid),
        )),
        Ok(state) => Err(LabError::kept(
            name,
            format!("left over by dead process {}; run `lvslab clean` first", state.pid),
        )),
        Err(_) if !path.exists() => Ok(()),
        Err(e) => Err(LabError::kept(name, e)),
    }
}

/// Writes the state file first (so every link is recorded), then the symlinks.
pub(crate) fn publish(name: &str, run_id: &str, namespaces: &[(String, RawFd)]) -> Result<KeptState, LabError> {
    check_free(name)?;
    let pid = std::process::id();
    let state = KeptState {
        name: name.to_string(),
        run_id: run_id.to_string(),
        pid,
        start_ticks: own_start_ticks(),
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        hosts: namespaces.iter().map(|(h, _)| h.clone()).collect(),
        links: namespaces
            .iter()
            .map(|(h, _)| link_path(name, h).display().to_string())
            .collect(),
    };
    let io_err = |what: &str, e: io::Error| LabError::kept(name, format!("{what}: {e}"));
    fs::create_dir_all(STATE_DIR).map_err(|e| io_err(STATE_DIR, e))?;
    fs::create_dir_all(NETNS_DIR).map_err(|e| io_err(NETNS_DIR, e))?;
    let path = state_path(Path::new(STATE_DIR), name);
    let tmp = path.with_extension(format!("json.{pid}.tmp"));
    let json = serde_json::to_string_pretty(&state).expect("state serialises");
    fs::write(&tmp, json).map_err(|e| io_err("write state", e))?;
    fs::rename(&tmp, &path).map_err(|e| io_err("write state", e))?;
    for ((_, fd), link) in namespaces.iter().zip(&state.links) {
        if let Err(e) = std::os::unix::fs::symlink(format!("/proc/{pid}/fd/{fd}"), link) {
            unpublish(&state);
            return Err(io_err(&format!("symlink {link}"), e));
        }
    }
    Ok(state)
}

/// Removes what `publish` made: only symlinks pointing into our own /proc entry.
pub(crate) fn unpublish(state: &KeptState) -> Vec<String> {
    let ours = format!("/proc/{}/", state.pid);
    let mut problems = Vec::new();
    for link in &state.links {
        match fs::read_link(link) {
            Ok(target) if target.to_string_lossy().starts_with(&ours) => {
                if let Err(e) = fs::remove_file(link) {
                    problems.push(format!("{link}: {e}"));
                }
            }
            Ok(_) => problems.push(format!("{link}: points elsewhere now, left alone")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(format!("{link}: {e}")),
        }
    }
    let path = state_path(Path::new(STATE_DIR), &state.name);
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != io::ErrorKind::NotFound {
            problems.push(format!("{}: {e}", path.display()));
        }
    }
    problems
}

fn state_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Removes state files and /run/netns links of kept labs whose owner is dead. Live owners are
/// reported, not touched; nothing that is not recorded in a state file is touched.
pub fn clean() -> Result<CleanReport, LabError> {
    clean_in(Path::new(STATE_DIR))
}

fn clean_in(dir: &Path) -> Result<CleanReport, LabError> {
    let mut report = CleanReport::default();
    for path in state_files(dir) {
        let state = match read_state(&path) {
            Ok(s) => s,
            Err(e) => {
                report.problems.push(e);
                continue;
            }
        };
        if owner_alive(&state) {
            report.live.push((state.name, state.pid));
            continue;
        }
        let mut failed = false;
        for link in &state.links {
            // Only a symlink we recorded, under /run/netns with our prefix, is removed.
            let recorded_ours = Path::new(link).parent() == Some(Path::new(NETNS_DIR))
                && Path::new(link)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(LINK_PREFIX));
            match fs::symlink_metadata(link) {
                Ok(meta) if meta.file_type().is_symlink() && recorded_ours => match fs::remove_file(link) {
                    Ok(()) => report.removed_links.push(link.clone()),
                    Err(e) => {
                        failed = true;
                        report.problems.push(format!("{link}: {e}"));
                    }
                },
                Ok(_) => report
                    .problems
                    .push(format!("{link}: not a lvslab symlink, left alone")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed = true;
                    report.problems.push(format!("{link}: {e}"));
                }
            }
        }
        if failed {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                remove_control_socket(dir, &state.run_id);
                report.removed_labs.push(state.name);
            }
            Err(e) => report.problems.push(format!("{}: {e}", path.display())),
        }
    }
    Ok(report)
}

/// A killed owner leaves its `lvslab ipvsadm` socket in the run directory: that file goes,
/// and the directory if nothing else is in it (a dead run's keepalived files are
/// `keepalived::clean_leftovers`' to handle, after its daemons are killed).
fn remove_control_socket(state_dir: &Path, run_id: &str) {
    if run_id.is_empty() || !run_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return;
    }
    let run = state_dir.join("runs").join(run_id);
    let _ = fs::remove_file(run.join(crate::ipvsadm::control::SOCKET_NAME));
    let _ = fs::remove_dir(&run);
}

/// Every kept lab recorded in /run/lvslab, with whether its owner still runs.
pub fn list_kept() -> Vec<KeptLab> {
    state_files(Path::new(STATE_DIR))
        .iter()
        .filter_map(|p| read_state(p).ok())
        .map(|s| KeptLab {
            alive: owner_alive(&s),
            name: s.name,
            run_id: s.run_id,
            pid: s.pid,
            started: s.started,
            hosts: s.hosts,
        })
        .collect()
}

/// Opens the namespace of `host` in kept lab `name` (for exec/shell: `setns` into it).
pub fn enter_kept(name: &str, host: &str) -> Result<OwnedFd, LabError> {
    check_label("kept lab name", name, 64)?;
    let state = read_state(&state_path(Path::new(STATE_DIR), name)).map_err(|e| LabError::kept(name, e))?;
    if !owner_alive(&state) {
        return Err(LabError::kept(
            name,
            format!("its owner (pid {}) is gone; run `lvslab clean`", state.pid),
        ));
    }
    let Some(pos) = state.hosts.iter().position(|h| h == host) else {
        return Err(LabError::kept(
            name,
            format!("no host {host:?} (hosts: {})", state.hosts.join(", ")),
        ));
    };
    let link = &state.links[pos];
    let file = fs::File::open(link).map_err(|e| LabError::kept(name, format!("open {link}: {e}")))?;
    Ok(file.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_state(name: &str) -> KeptState {
        KeptState {
            name: name.into(),
            run_id: "lvslab-1-0-0000".into(),
            // pid_max is at most 2^22: this pid cannot exist.
            pid: 4_194_304 + 17,
            start_ticks: 1,
            started: 0,
            hosts: vec!["a".into()],
            links: vec![],
        }
    }

    #[test]
    fn own_process_is_alive_and_bogus_pid_is_dead() {
        let mut s = dead_state("x");
        assert!(!owner_alive(&s));
        s.pid = std::process::id();
        s.start_ticks = own_start_ticks();
        assert!(owner_alive(&s));
        s.start_ticks += 1; // same pid, different process start: reused pid
        assert!(!owner_alive(&s));
    }

    #[test]
    fn clean_in_removes_a_dead_labs_control_socket_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_state("dead");
        fs::write(state_path(dir.path(), "dead"), serde_json::to_string(&dead).unwrap()).unwrap();
        let run = dir.path().join("runs").join(&dead.run_id);
        fs::create_dir_all(&run).unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(run.join(crate::ipvsadm::control::SOCKET_NAME)).unwrap();
        let other = dir.path().join("runs").join("lvslab-2-0-0000");
        fs::create_dir_all(&other).unwrap();
        fs::write(other.join("ipvsadm.sock"), "").unwrap();
        clean_in(dir.path()).unwrap();
        assert!(!run.exists(), "the dead lab's run directory held only its socket");
        assert!(other.join("ipvsadm.sock").exists(), "another run's files are not ours");
    }

    #[test]
    fn clean_in_removes_dead_keeps_live_and_reports_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dead_state("dead");
        fs::write(state_path(dir.path(), "dead"), serde_json::to_string(&dead).unwrap()).unwrap();
        let mut live = dead_state("live");
        live.pid = std::process::id();
        live.start_ticks = own_start_ticks();
        fs::write(state_path(dir.path(), "live"), serde_json::to_string(&live).unwrap()).unwrap();
        fs::write(state_path(dir.path(), "junk"), "{not json").unwrap();

        let report = clean_in(dir.path()).unwrap();
        assert_eq!(report.removed_labs, vec!["dead".to_string()]);
        assert_eq!(report.live, vec![("live".to_string(), std::process::id())]);
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert!(!state_path(dir.path(), "dead").exists());
        assert!(state_path(dir.path(), "live").exists());
        assert!(state_path(dir.path(), "junk").exists());
        assert!(check_free_in(dir.path(), "live")
            .unwrap_err()
            .to_string()
            .contains("live process"));
        check_free_in(dir.path(), "dead").unwrap();
    }
}
