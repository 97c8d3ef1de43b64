//! One director's keepalived, run inside its lab namespace and tied to lvslab's life.
//!
//! A keeper thread that has entered the namespace spawns `keepalived -n -l -G -D` with
//! PR_SET_PDEATHSIG and then waits for it: PDEATHSIG fires when the *thread* that spawned a
//! process ends, so that thread lives exactly as long as keepalived, and lvslab dying (even
//! by SIGKILL) takes keepalived with it. keepalived gets its own process group so that a power
//! cut kills the parent and its children at once, before the VRRP child could send priority 0.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::{
    binary, checker_pid_path, conf_path, config_test, fifo_path, owner_path, pid_path, vrrp_pid_path, KeepalivedError,
    Mode,
};
use crate::lab::Host;
use crate::vrrp::State;

/// From spawning to the first state on the FIFO (keepalived enters BACKUP at once, §4.7).
const STARTUP_DEADLINE: Duration = Duration::from_secs(10);
/// From spawning to the checker child's first "Activating healthchecker": under software
/// emulation (the kernel-IPVS VM) keepalived once took over 10 s to fork it.
const CHECKERS_STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// From SIGTERM to exit: keepalived sends priority 0, removes its VIPs and stops its child.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Log lines an error carries.
const ERROR_LOG_LINES: usize = 25;
/// Written to the FIFO by lvslab itself to end its reader.
const FIFO_STOP: &str = "lvslab: stop reading";

/// A state change keepalived reported on its notify FIFO (`INSTANCE "VI_1" MASTER 150`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// When lvslab read the line.
    pub at: Instant,
    pub instance: String,
    pub state: State,
    /// The effective priority keepalived reported with it.
    pub priority: u8,
}

type OnTransition = Arc<dyn Fn(&Transition) + Send + Sync>;

/// A daemon's log (console lines and unparsed notify FIFO lines, `notify_fifo: ` first), read
/// while the [`Daemon`] is held elsewhere.
#[derive(Clone)]
pub struct LogTap {
    record: Arc<Record>,
    changed: watch::Receiver<u64>,
}

impl LogTap {
    /// The lines from the `from`-th on, each with when it was read.
    pub fn lines_from(&self, from: usize) -> Vec<(Instant, String)> {
        let shared = self.record.lock();
        shared.log.iter().skip(from).cloned().collect()
    }

    /// Waits until something new is recorded (a line, a state, the exit); returns at once
    /// when something was recorded since the last call.
    pub async fn changed(&mut self) {
        if self.changed.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// How keepalived ended, once it has (its latest run).
    pub fn exit(&self) -> Option<String> {
        self.record.lock().exit.clone()
    }

    /// Where each later run's lines begin (a keepalived started again with
    /// [`Daemon::start_again`]), numbered as [`LogTap::lines_from`] numbers them.
    pub fn restarts(&self) -> Vec<usize> {
        self.record.lock().restarts.clone()
    }
}

#[derive(Default)]
struct Shared {
    transitions: Vec<Transition>,
    log: Vec<(Instant, String)>,
    /// How the parent ended, once it has (the latest run's).
    exit: Option<String>,
    /// Where each later run's lines begin in `log`.
    restarts: Vec<usize>,
}

/// What the threads share with the [`Daemon`]; each change bumps `changed`.
struct Record {
    shared: Mutex<Shared>,
    changed: watch::Sender<u64>,
}

impl Record {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Shared)) {
        f(&mut self.lock());
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn log_tail(&self) -> Vec<String> {
        let shared = self.lock();
        let skip = shared.log.len().saturating_sub(ERROR_LOG_LINES);
        shared.log[skip..].iter().map(|(_, l)| l.clone()).collect()
    }
}

/// keepalived running in one director's namespace. Dropping it kills keepalived (process group
/// SIGKILL) and reaps it.
pub struct Daemon {
    host: String,
    dir: PathBuf,
    pid: i32,
    record: Arc<Record>,
    changed: watch::Receiver<u64>,
    keeper: Option<JoinHandle<()>>,
    fifo_reader: Option<JoinHandle<()>>,
    /// A write end of the FIFO, to wake its reader for the end.
    fifo_waker: Option<File>,
    frozen: std::sync::atomic::AtomicBool,
}

impl Daemon {
    /// Writes `conf_text` to `dir`/keepalived.conf, checks it with `keepalived -t` in `host`'s
    /// namespace, starts keepalived there and waits (bounded) for its first state on the
    /// notify FIFO, which `conf_text` must name (`notify_fifo` [`super::fifo_path`]`(dir)`;
    /// [`super::config`] writes it). `on_transition` runs on the FIFO's reader thread right
    /// after each state line.
    pub async fn start(
        host: &Host,
        dir: &Path,
        conf_text: &str,
        mode: Mode,
        on_transition: OnTransition,
    ) -> Result<Daemon, KeepalivedError> {
        Daemon::run(host, dir, conf_text, mode, on_transition, None).await
    }

    /// As [`Daemon::start`], once `previous` (the same director's, stopped or killed) has
    /// ended: the new keepalived's lines and states go on in `previous`'s record, so that every
    /// [`LogTap`] taken from it follows the new one too ([`LogTap::restarts`] says where).
    pub async fn start_again(
        previous: &Daemon,
        host: &Host,
        dir: &Path,
        conf_text: &str,
        mode: Mode,
        on_transition: OnTransition,
    ) -> Result<Daemon, KeepalivedError> {
        if previous.exit().is_none() {
            return Err(KeepalivedError::Daemon {
                host: previous.host.clone(),
                what: "still runs: it cannot be started again".into(),
                log: previous.record.log_tail(),
            });
        }
        let record = Arc::clone(&previous.record);
        Daemon::run(host, dir, conf_text, mode, on_transition, Some(record)).await
    }

    async fn run(
        host: &Host,
        dir: &Path,
        conf_text: &str,
        mode: Mode,
        on_transition: OnTransition,
        previous: Option<Arc<Record>>,
    ) -> Result<Daemon, KeepalivedError> {
        let binary = binary().ok_or(KeepalivedError::NotInstalled)?;
        let name = host.name().to_string();
        let fifo = fifo_path(dir);
        if !conf_text
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["notify_fifo", &fifo.display().to_string()])
        {
            return Err(KeepalivedError::config(
                &name,
                format!(
                    "the config must name notify_fifo {} (lvslab reads the states there)",
                    fifo.display()
                ),
            ));
        }
        let os = |step: &str| {
            let name = name.clone();
            let step = step.to_string();
            move |e| KeepalivedError::os(&name, step, e)
        };
        fs::create_dir_all(dir).map_err(os("create the run directory"))?;
        let conf = conf_path(dir);
        // Started again with the config the run before passed `keepalived -t` with: not tested
        // twice (under software emulation a test costs seconds of the director's downtime).
        let tested = previous.is_some() && fs::read_to_string(&conf).is_ok_and(|c| c == conf_text);
        fs::write(&conf, conf_text).map_err(os("write keepalived.conf"))?;
        for stale in [pid_path(dir), vrrp_pid_path(dir), checker_pid_path(dir)] {
            remove_if_there(&stale).map_err(os("remove an old pid file"))?;
        }
        make_fifo(&fifo).map_err(os("make the notify FIFO"))?;
        if !tested {
            config_test(host, &conf).await?;
        }
        fs::write(owner_path(dir), owner_line()).map_err(os("write keepalived.owner"))?;

        // Read and write: opening never blocks, and the reader sees no end when keepalived's
        // VRRP child closes its end between lines.
        let fifo_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(os("open the notify FIFO"))?;
        let fifo_waker = fifo_file.try_clone().map_err(os("open the notify FIFO"))?;
        let record = match previous {
            Some(record) => {
                record.update(|s| {
                    s.exit = None;
                    let at = s.log.len();
                    s.restarts.push(at);
                });
                record
            }
            None => Arc::new(Record {
                shared: Mutex::new(Shared::default()),
                changed: watch::channel(0u64).0,
            }),
        };
        let changed = record.changed.subscribe();
        // This run's own lines and states: the run before it said its own.
        let (from_log, from_states) = {
            let s = record.lock();
            (s.log.len(), s.transitions.len())
        };

        let mut cmd = Command::new(binary);
        // The console is lvslab's pipe; no syslog, which lands on the host's journal (or, with
        // no syslog daemon, on /dev/console).
        cmd.args(["-n", "-l", "-G", "-D"]);
        match mode {
            Mode::VrrpOnly => {
                cmd.arg("-P");
            }
            Mode::CheckersOnly => {
                cmd.arg("-C");
            }
            Mode::Full => {}
        }
        cmd.arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(pid_path(dir))
            .arg("-r")
            .arg(vrrp_pid_path(dir));
        if mode.checks() {
            cmd.arg("-c").arg(checker_pid_path(dir));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        crate::sys::process::die_with_parent_in_child(&mut cmd);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let keeper_record = Arc::clone(&record);
        let keeper = host
            .spawn_thread(&format!("keepalived-{name}"), move || {
                keep(cmd, started_tx, &keeper_record)
            })
            .map_err(os("start a thread in the namespace"))?;
        let spawned = started_rx
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the keeper thread ended")));
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = keeper.join();
                // A run that never began has ended, for whoever follows the record.
                let why = format!("not started: {e}");
                record.update(|s| s.exit = Some(why));
                return Err(KeepalivedError::os(&name, "spawn keepalived", e));
            }
        };
        let pid = child.pid;
        let pipes: [Option<Box<dyn Read + Send>>; 2] = [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let record = Arc::clone(&record);
            // Detached: it ends when the last keepalived process closes the pipe.
            let _ = std::thread::Builder::new()
                .name(format!("keepalived-log-{name}"))
                .spawn(move || read_log(pipe, &record));
        }
        let fifo_record = Arc::clone(&record);
        let fifo_reader = std::thread::Builder::new()
            .name(format!("keepalived-fifo-{name}"))
            .spawn(move || read_fifo(fifo_file, &fifo_record, &on_transition));
        let mut daemon = Daemon {
            host: name.clone(),
            dir: dir.to_path_buf(),
            pid,
            record,
            changed,
            keeper: Some(keeper),
            fifo_reader: None,
            fifo_waker: Some(fifo_waker),
            frozen: std::sync::atomic::AtomicBool::new(false),
        };
        daemon.fifo_reader = Some(fifo_reader.map_err(os("start the FIFO reader"))?);
        daemon.check_namespace(host)?;
        if mode.vrrp() {
            daemon
                .wait(STARTUP_DEADLINE, "reported no state on its notify FIFO", |s| {
                    (s.transitions.len() > from_states).then_some(())
                })
                .await?;
        }
        if mode.checks() {
            // init_services has put the virtual server in IPVS by then (check_daemon.c).
            daemon
                .wait(
                    CHECKERS_STARTUP_DEADLINE,
                    "started no health checker within 30 s",
                    |s| {
                        s.log[from_log..]
                            .iter()
                            .any(|(_, l)| is_checker_activation(l))
                            .then_some(())
                    },
                )
                .await?;
        }
        Ok(daemon)
    }

    /// A reader of the log that can outlive a borrow of the daemon.
    pub fn tap(&self) -> LogTap {
        LogTap {
            record: Arc::clone(&self.record),
            changed: self.changed.clone(),
        }
    }

    /// Every state change so far, in order.
    pub fn transitions(&self) -> Vec<Transition> {
        self.record.lock().transitions.clone()
    }

    /// keepalived's console log (stdout and stderr), each line as read, without keepalived's
    /// own date prefix.
    pub fn log(&self) -> Vec<(Instant, String)> {
        self.record.lock().log.clone()
    }

    /// The latest state from the FIFO.
    pub fn state(&self) -> Option<State> {
        self.record.lock().transitions.last().map(|t| t.state)
    }

    /// The latest state of the first instance the FIFO named: with several instances (a
    /// sync group), the first of the config, which keepalived notifies first.
    pub fn first_instance_state(&self) -> Option<State> {
        let shared = self.record.lock();
        let first = &shared.transitions.first()?.instance;
        shared
            .transitions
            .iter()
            .rev()
            .find(|t| t.instance == *first)
            .map(|t| t.state)
    }

    /// The keepalived parent's pid (also its process group).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The VRRP child's pid, from the `-r` pid file.
    pub fn vrrp_pid(&self) -> Option<i32> {
        read_pid(&vrrp_pid_path(&self.dir))
    }

    /// How the keepalived parent ended, once it has (`exit status: 0`, `signal: 9 (SIGKILL)`).
    pub fn exit(&self) -> Option<String> {
        self.record.lock().exit.clone()
    }

    /// Waits (bounded) until the latest state is `state`; the transition that made it so.
    pub async fn wait_for_state(&self, state: State, within: Duration) -> Result<Transition, KeepalivedError> {
        self.wait(
            within,
            &format!("did not enter {} within {within:?}", state.word()),
            |s| s.transitions.last().filter(|t| t.state == state).cloned(),
        )
        .await
    }

    /// Graceful stop: SIGTERM, then waits (bounded) for the exit; keepalived sends priority 0
    /// and removes its VIPs first. A frozen VRRP child is thawed first (it could not act on
    /// the stop otherwise). Past the deadline keepalived is killed and this is an error.
    pub async fn stop(&mut self) -> Result<(), KeepalivedError> {
        if self.exit().is_none() {
            if self.frozen.load(std::sync::atomic::Ordering::Relaxed) {
                self.thaw()?;
            }
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGTERM);
            let stopped = self
                .wait(STOP_DEADLINE, "did not stop within 10 s of SIGTERM; killed it", |s| {
                    s.exit.clone()
                })
                .await;
            if let Err(e) = stopped {
                self.kill();
                return Err(e);
            }
        }
        self.reap();
        Ok(())
    }

    /// Power cut: SIGKILL to the whole process group (parent and children at once, so no
    /// priority-0 advert and the VIPs stay where they are), then reaps the parent.
    pub fn kill(&mut self) {
        if self.keeper.is_some() {
            // The group outlives the parent while a child is still alive.
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        self.reap();
    }

    /// SIGSTOP to the VRRP child: it sends nothing and keeps its VIPs (EXP-5).
    pub fn freeze(&self) -> Result<(), KeepalivedError> {
        self.signal_vrrp(Signal::SIGSTOP)?;
        self.frozen.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// SIGCONT to the VRRP child.
    pub fn thaw(&self) -> Result<(), KeepalivedError> {
        self.signal_vrrp(Signal::SIGCONT)?;
        self.frozen.store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn signal_vrrp(&self, signal: Signal) -> Result<(), KeepalivedError> {
        let path = vrrp_pid_path(&self.dir);
        let pid = self.vrrp_pid().ok_or_else(|| KeepalivedError::NoVrrpChild {
            host: self.host.clone(),
            path: path.display().to_string(),
        })?;
        kill(Pid::from_raw(pid), signal)
            .map_err(|e| KeepalivedError::os(&self.host, format!("{signal} pid {pid}"), e.into()))
    }

    /// keepalived must run in the director's namespace; anything else is refused and killed.
    fn check_namespace(&mut self, host: &Host) -> Result<(), KeepalivedError> {
        let expected = host
            .netns_fd()
            .try_clone_to_owned()
            .map(File::from)
            .and_then(|f| f.metadata())
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| KeepalivedError::os(&self.host, "stat the lab namespace", e))?;
        let found = fs::metadata(format!("/proc/{}/ns/net", self.pid)).map(|m| (m.dev(), m.ino()));
        match found {
            Ok(found) if found == expected => Ok(()),
            other => {
                self.kill();
                Err(KeepalivedError::WrongNamespace {
                    host: self.host.clone(),
                    pid: self.pid,
                    expected: format!("net:[{}]", expected.1),
                    found: match other {
                        Ok((_, ino)) => format!("net:[{ino}]"),
                        Err(e) => format!("unknown ({e})"),
                    },
                })
            }
        }
    }

    async fn wait<T>(
        &self,
        within: Duration,
        what: &str,
        mut check: impl FnMut(&Shared) -> Option<T>,
    ) -> Result<T, KeepalivedError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            let exited = {
                let shared = self.record.lock();
                if let Some(found) = check(&shared) {
                    return Ok(found);
                }
                shared.exit.clone()
            };
            let failed = |what: String| KeepalivedError::Daemon {
                host: self.host.clone(),
                what,
                log: self.record.log_tail(),
            };
            if let Some(exit) = exited {
                return Err(failed(format!("ended ({exit}) and {what}")));
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(failed(what.to_string())),
            }
        }
    }

    /// Joins the keeper (it returns once the parent is reaped) and ends the FIFO reader.
    fn reap(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.join();
        }
        if let Some(mut waker) = self.fifo_waker.take() {
            let _ = writeln!(waker, "{FIFO_STOP}");
        }
        if let Some(reader) = self.fifo_reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Spawned {
    pid: i32,
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
}

/// The keeper thread: spawns keepalived, hands its pid and pipes over, then waits for it.
fn keep(mut cmd: Command, started: tokio::sync::oneshot::Sender<std::io::Result<Spawned>>, record: &Record) {
    let mut child: Child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let spawned = Spawned {
        pid: i32::try_from(child.id()).unwrap_or(i32::MAX),
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
    };
    if started.send(Ok(spawned)).is_err() {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    }
    let exit = match child.wait() {
        Ok(status) => status.to_string(),
        Err(e) => format!("wait failed: {e}"),
    };
    record.update(|s| s.exit = Some(exit));
}

fn read_log(pipe: impl Read, record: &Record) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let at = Instant::now();
                let text = String::from_utf8_lossy(&line);
                let text = without_date(text.trim_end()).to_string();
                record.update(|s| s.log.push((at, text)));
            }
        }
    }
}

fn read_fifo(fifo: File, record: &Record, on_transition: &OnTransition) {
    let mut reader = BufReader::new(fifo);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        // An instance name is any bytes keepalived accepted: read lossily, never stop early.
        match reader.read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let at = Instant::now();
        let line = String::from_utf8_lossy(&bytes);
        let line = line.trim_end_matches('\n');
        if line == FIFO_STOP {
            return;
        }
        match parse_fifo_line(line, at) {
            Some(t) => {
                record.update(|s| s.transitions.push(t.clone()));
                on_transition(&t);
            }
            // Checker lines (`RS ... UP`) and anything new: kept with the log.
            None => record.update(|s| s.log.push((at, format!("notify_fifo: {line}")))),
        }
    }
}

/// `Activating healthchecker for service [..] for VS [..]` (check_api.c
/// `register_checkers_thread`), `Deactivating` under ha_suspend.
pub fn is_checker_activation(line: &str) -> bool {
    line.starts_with("Activating healthchecker for service ")
        || line.starts_with("Deactivating healthchecker for service ")
}

/// `INSTANCE "VI_1" MASTER 150` (vrrp/vrrp_notify.c); DELETED (on reload) counts as STOP.
fn parse_fifo_line(line: &str, at: Instant) -> Option<Transition> {
    let rest = line.strip_prefix("INSTANCE \"")?;
    let (instance, rest) = rest.split_once('"')?;
    let mut words = rest.split_whitespace();
    let state = match words.next()? {
        "MASTER" => State::Master,
        "BACKUP" => State::Backup,
        "FAULT" => State::Fault,
        "STOP" | "DELETED" => State::Stop,
        _ => return None,
    };
    let priority = words.next()?.parse().ok()?;
    Some(Transition {
        at,
        instance: instance.to_string(),
        state,
        priority,
    })
}

/// keepalived's console lines start `Tue Dec  1 06:55:47 2026: `.
fn without_date(line: &str) -> &str {
    let b = line.as_bytes();
    let dated = b.len() >= 26
        && b[3] == b' '
        && b[7] == b' '
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && &b[24..26] == b": ";
    if dated {
        &line[26..]
    } else {
        line
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok().filter(|p| *p > 0)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A FIFO at `path`, readable by root only; anything else there is replaced.
fn make_fifo(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => return Ok(()),
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR).map_err(Into::into)
}

/// `<pid> <start ticks>` of this process, for `lvslab clean`.
fn owner_line() -> String {
    let pid = std::process::id();
    format!("{pid} {}\n", crate::lab::process_start_ticks(pid).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_lines_become_transitions() {
        let at = Instant::now();
        let t = parse_fifo_line("INSTANCE \"VI_1\" MASTER 150", at).unwrap();
        assert_eq!((t.instance.as_str(), t.state, t.priority), ("VI_1", State::Master, 150));
        assert_eq!(
            parse_fifo_line("INSTANCE \"VI 2\" FAULT 90", at).unwrap().instance,
            "VI 2"
        );
        assert_eq!(
            parse_fifo_line("INSTANCE \"x\" DELETED 100", at).unwrap().state,
            State::Stop
        );
        assert!(parse_fifo_line("RS [10.0.0.2]:tcp:80 [10.0.0.1]:tcp:80 UP", at).is_none());
        assert!(parse_fifo_line("INSTANCE \"VI_1\" MASTER", at).is_none());
        assert!(parse_fifo_line("GROUP \"G\" MASTER 100", at).is_none());
    }

    #[test]
    fn a_daemon_can_move_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Daemon>();
    }

    #[test]
    fn the_console_date_is_dropped() {
        assert_eq!(
            without_date("Tue Dec  1 06:55:47 2026: (VI_1) Entering MASTER STATE"),
            "(VI_1) Entering MASTER STATE"
        );
        assert_eq!(without_date("              '/tmp/v.pid'"), "              '/tmp/v.pid'");
    }
}
