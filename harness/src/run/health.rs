//! keepalived's health checkers on the real clock: [`crate::health::Monitor`] decides, this
//! module probes and applies its table changes through the [`Engine`] trait.
//!
//! * Checks run inside the director's namespace (tasks on its lab runtime, MISC commands on
//!   a thread that entered it), to the real servers' own addresses and ports, never the VIP.
//! * TCP_CHECK: a connect within connect_timeout. HTTP_GET: `GET path HTTP/1.0` with
//!   keepalived's headers, the status and the body's MD5 judged by `health::Url`. MISC_CHECK:
//!   `sh -c command` with the timeout; on timeout its process group is killed, and it dies
//!   with lvslab (parent-death signal) and when the session stops.
//! * Startup is keepalived's: the pool as `init_services` leaves it (every real server in,
//!   without `alpha`), first checks at 1 s + a random share of `warmup` (seeded by the
//!   scenario's name, so runs repeat). The engine started with every real server; the
//!   monitor's start decides which stay.
//! * With `traffic_waits_for_checks` (the default) the traffic starts once every checker has
//!   run once, so a server dead from the start is out before the first request.
//! * The session stops when the traffic ends, before the tables are read and the lab goes
//!   down; keepalived's shutdown (every server removed) is not applied, so the table read
//!   after the traffic is the checkers' last word.
//!
//! One session checks for the first director. The directors of a VRRP instance share its VIP
//! and, as keepalived runs its checkers on every node, each one's table follows the same
//! changes: the session applies them to every engine serving that VIP. Directors with VIPs
//! of their own are not checked.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::director::{Engine, ServiceKey};
use crate::health::{
    self, CheckOutcome, CheckTarget, CheckerId, FailReason, HealthEvent, HealthRecord, Monitor, RealServerConfig,
    TableAction, TableOp, Trio, Url, VirtualServerConfig, VsName,
};
use crate::ipvs::{self, Forward};
use crate::lab::{Host, Lab};
use crate::scenario::{HealthCheck, Scenario};
use crate::verdict::Check;

use super::Held;
use crate::ha::Implementation;
use crate::health::CheckerKind;
use crate::keepalived::checker_log::{Ask, CheckerLog, Pool, PoolServer};
use crate::keepalived::{Daemon, LogTap};
use crate::scenario::CheckersChoice;

/// The run's engines, with their directors' names.
type Engines = [(String, Box<dyn Engine>)];

/// What the checkers did during a run, for the report and `--json` (`health`).
#[derive(Debug, Clone, Serialize)]
pub struct HealthOutcome {
    /// The director whose checkers these are.
    pub director: String,
    /// When the checkers started, before the traffic (ms; the traffic starts at 0).
    pub started_ms: f64,
    /// keepalived's log lines, in order, with their time since the traffic started.
    pub log: Vec<HealthLine>,
    /// keepalived's notify FIFO lines (`RS <rs> <vs> UP|DOWN`, `VS <vs> UP|DOWN`), in order.
    pub notify: Vec<HealthLine>,
    /// The table changes the checkers made (after keepalived's inhibit translation).
    pub table: Vec<HealthTableChange>,
    /// Per real server of the pool (by name): when the checkers first took it out, and
    /// whether it was out at the end.
    pub servers: Vec<ServerHealth>,
    /// The failed checks that took a server down, with why they failed.
    pub failures: Vec<HealthFailure>,
    /// keepalived's config fix-ups (quorum) and engine refusals, as they happened.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Who ran the checkers: lvslab's own (`embedded`) or the real keepalived's checker child.
    pub implementation: Implementation,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthLine {
    pub at_ms: f64,
    pub line: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthTableChange {
    pub at_ms: f64,
    pub dest: SocketAddr,
    /// The real server's name, when the address is one of the scenario's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_server: Option<String>,
    pub sorry: bool,
    /// `add`, `remove` or `set_weight`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthFailure {
    pub at_ms: f64,
    pub dest: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_server: Option<String>,
    #[serde(serialize_with = "fail_reason_words")]
    pub reason: FailReason,
}

fn fail_reason_words<S: serde::Serializer>(reason: &FailReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{reason:?}"))
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerHealth {
    pub name: String,
    /// First removal (or weight 0 when inhibited), ms after the checkers started.
    pub out_after_start_ms: Option<f64>,
    /// Out of the table (or at weight 0) when the session stopped.
    pub out_at_end: bool,
}

/// The directors killed during the run (a power cut): their checkers died with them.
pub type Killed = Arc<std::sync::Mutex<HashSet<String>>>;

/// One checker session on one director's engine.
pub struct Session<'l> {
    monitor: Monitor,
    /// Where the checks run: every checked director, each keepalived checking the same pool.
    /// The first alive one probes for all; a director killed mid-run takes its checks in flight
    /// with it, and they run again from the next.
    checkers: Vec<(String, &'l Host)>,
    killed: Killed,
    director: String,
    /// The directors whose tables the checkers change: the first and any sharing its VIP.
    mirrors: Vec<String>,
    service: ServiceKey,
    forward: Forward,
    vs_delay_loop: Duration,
    quorum_up: Option<String>,
    quorum_down: Option<String>,
    started: Instant,
    names: HashMap<SocketAddr, String>,
    /// Reported apart from the pool: it is out of the table whenever quorum holds.
    sorry: Option<SocketAddr>,
    running: FuturesUnordered<JoinHandle<(CheckerId, CheckOutcome, Instant, usize)>>,
    /// What each running check probes, to run it again from another director.
    probing: HashMap<CheckerId, CheckTarget>,
    /// Stops MISC commands (and quorum scripts) still running when the session ends.
    stop: Arc<AtomicBool>,
    /// What the engine holds now: dest → weight.
    table: BTreeMap<SocketAddrV4, u32>,
    history: Vec<HealthRecord>,
    /// Failed checks that took their server down: (when, server, why).
    failures: Vec<(Duration, SocketAddr, FailReason)>,
    /// Records from checks that ended while the table could not be borrowed.
    pending: Vec<HealthRecord>,
    ran_once: HashSet<CheckerId>,
    /// Servers the monitor's start left out of the pool (alpha): out from the start.
    out_from_start: HashSet<SocketAddr>,
    problems: Vec<String>,
}

impl<'l> Session<'l> {
    /// Starts the checkers of `scenario` on its first director, whose engine holds every real
    /// server of the pool; `None` when the scenario has no health check or no director.
    pub fn start(scenario: &Scenario, lab: &'l Lab, engines: &mut Engines, killed: Killed) -> Option<Session<'l>> {
        let check = scenario.health.as_ref()?;
        let director = scenario.director()?;
        let mirrors: Vec<String> = checked_directors(scenario);
        let checkers: Vec<(String, &'l Host)> = mirrors
            .iter()
            .filter_map(|name| lab.host(name).map(|h| (name.clone(), h)))
            .collect();
        checkers.first()?;
        let forward = scenario.service().mode.forward()?;
        let config = virtual_server(scenario, director.vip, check);
        let (mut monitor, warnings) = Monitor::new(&config);
        let service = ServiceKey {
            vip: director.vip,
            port: scenario.service().port,
            proto: scenario.service().protocol,
        };
        let table = scenario
            .real_servers
            .iter()
            .filter(|r| !check.is_sorry(&r.name))
            .map(|r| (SocketAddrV4::new(r.address, r.port), r.weight))
            .collect();
        let mut names: HashMap<SocketAddr, String> = scenario
            .real_servers
            .iter()
            .map(|r| (SocketAddr::from((r.address, r.port)), r.name.clone()))
            .collect();
        if let Some(s) = &check.sorry_server {
            names
                .entry(SocketAddr::V4(s.addr))
                .or_insert_with(|| "sorry server".into());
        }
        let mut seed = Seed::from_name(&scenario.name);
        let start_records = monitor.start(Duration::ZERO, |w| seed.pick(w));
        let mut session = Session {
            monitor,
            checkers,
            killed,
            director: director.name.clone(),
            mirrors,
            service,
            forward,
            vs_delay_loop: check.delay_loop,
            quorum_up: check.quorum_up.clone(),
            quorum_down: check.quorum_down.clone(),
            started: Instant::now(),
            names,
            sorry: check.sorry_server.as_ref().map(|s| SocketAddr::V4(s.addr)),
            running: FuturesUnordered::new(),
            probing: HashMap::new(),
            stop: Arc::new(AtomicBool::new(false)),
            table,
            history: Vec::new(),
            failures: Vec::new(),
            pending: Vec::new(),
            ran_once: HashSet::new(),
            out_from_start: HashSet::new(),
            problems: warnings,
        };
        session.install(engines, start_records);
        Some(session)
    }

    /// Runs checks until every checker has had one result, or `bound` passed.
    pub async fn first_checks(&mut self, engines: &mut Engines, bound: Duration) {
        let total = self.monitor.checker_count();
        let deadline = tokio::time::Instant::now() + bound;
        while self.ran_once.len() < total {
            let Ok(records) = tokio::time::timeout_at(deadline, self.step()).await else {
                self.problems.push(format!(
                    "{} of {total} checkers had not finished a first check after {bound:?}; traffic started anyway",
                    total - self.ran_once.len()
                ));
                return;
            };
            self.apply(engines, records);
        }
    }

    /// The longest the first round of checks may take (warmup, timeouts), plus a margin.
    pub fn first_checks_bound(scenario: &Scenario) -> Duration {
        let Some(check) = &scenario.health else {
            return Duration::ZERO;
        };
        let longest = check
            .real_servers
            .iter()
            .filter_map(|r| r.checker.as_ref())
            .map(|(kind, settings)| health::removed_at_start_within(kind, settings, check.delay_loop))
            .max()
            .unwrap_or_default();
        longest + FIRST_CHECKS_MARGIN
    }

    /// Keeps checking while `until` runs; returns its output. The table changes go to the first
    /// director's engine in `held` when it can be borrowed (an event may hold it for a moment:
    /// they wait for the next step); once an event has killed that engine, checks go on and
    /// change nothing, as keepalived's checker dies with its director.
    pub async fn during<F: Future>(&mut self, held: &RefCell<&mut Held>, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                out = &mut until => {
                    self.flush(held);
                    return out;
                }
                records = self.step() => {
                    self.pending.extend(records);
                    self.flush(held);
                }
            }
        }
    }

    fn flush(&mut self, held: &RefCell<&mut Held>) {
        if self.pending.is_empty() {
            return;
        }
        let Ok(mut held) = held.try_borrow_mut() else { return };
        let records = std::mem::take(&mut self.pending);
        self.apply(&mut held.engines, records);
    }

    /// One thing happens: a check ends (its records are returned, to be applied) or checks fall
    /// due (they start). Cancel-safe: a check that ended stays queued until the next call.
    async fn step(&mut self) -> Vec<HealthRecord> {
        let due_at = self
            .monitor
            .next_due()
            .map(|d| tokio::time::Instant::from_std(self.started + d));
        tokio::select! {
            Some(done) = self.running.next(), if !self.running.is_empty() => {
                match done {
                    Ok((id, _, _, from)) if self.is_killed(from) => {
                        // Its director died under it: the check runs again from one alive.
                        if let (Some(target), Some(at)) = (self.probing.get(&id).cloned(), self.alive()) {
                            self.probe(id, target, at);
                        }
                        Vec::new()
                    }
                    Ok((id, outcome, ended, _)) => {
                        self.probing.remove(&id);
                        let now = ended.saturating_duration_since(self.started);
                        self.ran_once.insert(id);
                        let records = self.monitor.finish(id, &outcome, now);
                        if let CheckOutcome::Failure(reason) = outcome {
                            // The server this failure took down is the one notified DOWN.
                            self.failures.extend(records.iter().filter_map(|r| match r.event {
                                HealthEvent::RealServer { rs, up: false, .. } => Some((r.at, rs, reason)),
                                _ => None,
                            }));
                        }
                        records
                    }
                    Err(_) => Vec::new(),
                }
            }
            () = sleep_until(due_at) => {
                self.launch();
                Vec::new()
            }
        }
    }

    /// Starts every check that is due, each as a task in the namespace of a director alive.
    fn launch(&mut self) {
        let now = self.started.elapsed();
        let due = self.monitor.take_due(now);
        let Some(at) = self.alive() else {
            // Every checked director is dead: so are their checkers.
            return;
        };
        for due in due {
            self.probe(due.id, due.target, at);
        }
    }

    /// Runs check `id` against `target` from `self.checkers[at]`.
    fn probe(&mut self, id: CheckerId, target: CheckTarget, at: usize) {
        let host = self.checkers[at].1;
        self.probing.insert(id, target.clone());
        let probe: std::pin::Pin<Box<dyn Future<Output = CheckOutcome> + Send>> = match target {
            CheckTarget::Tcp { connect, timeout } => Box::pin(tcp_check(connect, timeout)),
            CheckTarget::Http { connect, path, timeout } => {
                let url = self.monitor.http_url(id).cloned().unwrap_or_else(|| Url::new(&path));
                Box::pin(http_check(connect, path, timeout, url))
            }
            CheckTarget::Misc { command, timeout } => {
                Box::pin(run_command(host, command, timeout, Arc::clone(&self.stop)))
            }
        };
        self.running.push(host.runtime().spawn(async move {
            let outcome = probe.await;
            (id, outcome, Instant::now(), at)
        }));
    }

    fn is_killed(&self, at: usize) -> bool {
        let killed = self.killed.lock().unwrap_or_else(|p| p.into_inner());
        self.checkers.get(at).is_none_or(|(name, _)| killed.contains(name))
    }

    /// The first checked director not killed.
    fn alive(&self) -> Option<usize> {
        (0..self.checkers.len()).find(|&at| !self.is_killed(at))
    }

    /// The pool as the monitor's start leaves it: what it added stays (at its weight), the
    /// rest of what the engine started with goes.
    fn install(&mut self, engines: &mut Engines, records: Vec<HealthRecord>) {
        let wanted: HashSet<SocketAddr> = records
            .iter()
            .filter_map(|r| match &r.event {
                HealthEvent::Table(TableAction {
                    dest,
                    op: TableOp::Add { .. },
                    ..
                }) => Some(*dest),
                _ => None,
            })
            .collect();
        let unwanted: Vec<SocketAddrV4> = self
            .table
            .keys()
            .filter(|d| !wanted.contains(&SocketAddr::V4(**d)))
            .copied()
            .collect();
        for dest in unwanted {
            let service = self.service;
            if let Err(e) = self.each_engine(engines, |engine| engine.remove_dest(service, dest)) {
                self.problems.push(format!("start: removing {dest}: {e}"));
            }
            self.table.remove(&dest);
            self.out_from_start.insert(SocketAddr::V4(dest));
        }
        self.apply(engines, records);
    }

    /// `change` on the engine of every director this session checks for (those that still
    /// run: a killed director's checker died with it); the first error is the result.
    fn each_engine(
        &self,
        engines: &mut Engines,
        mut change: impl FnMut(&mut dyn Engine) -> crate::director::Result<()>,
    ) -> crate::director::Result<()> {
        let mut result = Ok(());
        for (name, engine) in engines.iter_mut().filter(|(name, _)| self.mirrors.contains(name)) {
            if let Err(e) = change(engine.as_mut()) {
                if result.is_ok() {
                    result = Err(crate::director::DirectorError::Config(format!("director {name}: {e}")));
                }
            }
        }
        result
    }

    fn apply(&mut self, engines: &mut Engines, records: Vec<HealthRecord>) {
        for record in &records {
            match &record.event {
                HealthEvent::Table(action) => self.change_table(engines, action),
                HealthEvent::Quorum { up, .. } => {
                    let script = if *up { &self.quorum_up } else { &self.quorum_down };
                    if let (Some(command), Some(at)) = (script.clone(), self.alive()) {
                        // keepalived does not wait for notify scripts; neither does the session.
                        let host = self.checkers[at].1;
                        let ran = run_command(host, command, self.vs_delay_loop, Arc::clone(&self.stop));
                        host.runtime().spawn(ran);
                    }
                }
                HealthEvent::Log(_) | HealthEvent::RealServer { .. } => {}
            }
        }
        self.history.extend(records);
    }

    fn change_table(&mut self, engines: &mut Engines, action: &TableAction) {
        let SocketAddr::V4(dest) = action.dest else {
            self.problems.push(format!("{}: IPv6 is not modelled", action.dest));
            return;
        };
        let present = self.table.get(&dest).copied();
        let (service, forward) = (self.service, self.forward);
        let result = match (action.op, present) {
            (TableOp::Add { weight } | TableOp::SetWeight { weight }, None) => {
                let config = ipvs::DestConfig::new(*dest.ip(), dest.port(), weight, forward);
                self.each_engine(engines, |e| e.add_dest(service, config.clone()))
                    .map(|()| Some(weight))
            }
            (TableOp::Add { weight } | TableOp::SetWeight { weight }, Some(now)) if now != weight => self
                .each_engine(engines, |e| e.set_weight(service, dest, weight))
                .map(|()| Some(weight)),
            (TableOp::Add { .. } | TableOp::SetWeight { .. }, Some(now)) => Ok(Some(now)),
            (TableOp::Remove, Some(_)) => self
                .each_engine(engines, |e| e.remove_dest(service, dest))
                .map(|()| None),
            (TableOp::Remove, None) => Ok(None),
        };
        match result {
            Ok(Some(weight)) => {
                self.table.insert(dest, weight);
            }
            Ok(None) => {
                self.table.remove(&dest);
            }
            Err(e) => self.problems.push(format!("{dest}: {e}")),
        }
    }

    /// Stops checking (running checks are abandoned, commands killed) and reports, with times
    /// since `traffic_started`.
    pub fn stop(self, traffic_started: Instant) -> HealthOutcome {
        self.stop.store(true, Ordering::Relaxed);
        for running in self.running.iter() {
            running.abort();
        }
        let table: BTreeMap<SocketAddr, u32> = self.table.iter().map(|(d, w)| (SocketAddr::V4(*d), *w)).collect();
        let report = Report {
            director: self.director,
            started: self.started,
            history: &self.history,
            failures: &self.failures,
            names: &self.names,
            sorry: self.sorry,
            table: &table,
            out_from_start: &self.out_from_start,
            problems: self.problems,
            implementation: Implementation::Embedded,
        };
        report.outcome(traffic_started)
    }
}

/// What either implementation's checkers did, to be reported.
struct Report<'a> {
    director: String,
    started: Instant,
    history: &'a [HealthRecord],
    failures: &'a [(Duration, SocketAddr, FailReason)],
    names: &'a HashMap<SocketAddr, String>,
    sorry: Option<SocketAddr>,
    /// The table at the end: dest → weight.
    table: &'a BTreeMap<SocketAddr, u32>,
    out_from_start: &'a HashSet<SocketAddr>,
    problems: Vec<String>,
    implementation: Implementation,
}

impl Report<'_> {
    /// With times since `traffic_started`.
    fn outcome(self, traffic_started: Instant) -> HealthOutcome {
        let offset = signed_ms(self.started, traffic_started);
        let at_ms = |at: Duration| at.as_secs_f64() * 1000.0 + offset;
        let mut log = Vec::new();
        let mut notify = Vec::new();
        let mut table = Vec::new();
        let mut first_out: HashMap<SocketAddr, f64> = HashMap::new();
        for r in self.history {
            match &r.event {
                HealthEvent::Log(line) => log.push(HealthLine {
                    at_ms: at_ms(r.at),
                    line: line.clone(),
                }),
                HealthEvent::Table(a) => {
                    let (op, weight) = match a.op {
                        TableOp::Add { weight } => ("add", Some(weight)),
                        TableOp::Remove => ("remove", None),
                        TableOp::SetWeight { weight } => ("set_weight", Some(weight)),
                    };
                    let out = matches!(
                        a.op,
                        TableOp::Remove | TableOp::SetWeight { weight: 0 } | TableOp::Add { weight: 0 }
                    );
                    if out && !a.sorry {
                        first_out.entry(a.dest).or_insert(r.at.as_secs_f64() * 1000.0);
                    }
                    table.push(HealthTableChange {
                        at_ms: at_ms(r.at),
                        dest: a.dest,
                        real_server: self.names.get(&a.dest).cloned(),
                        sorry: a.sorry,
                        op,
                        weight,
                    });
                }
                HealthEvent::RealServer { fifo, .. } | HealthEvent::Quorum { fifo, .. } => notify.push(HealthLine {
                    at_ms: at_ms(r.at),
                    line: fifo.clone(),
                }),
            }
        }
        let mut servers: Vec<ServerHealth> = self
            .names
            .iter()
            .filter(|(addr, _)| Some(**addr) != self.sorry)
            .map(|(addr, name)| ServerHealth {
                name: name.clone(),
                out_after_start_ms: first_out
                    .get(addr)
                    .copied()
                    .or(self.out_from_start.contains(addr).then_some(0.0)),
                out_at_end: self.table.get(addr).is_none_or(|w| *w == 0),
            })
            .collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        let failures = self
            .failures
            .iter()
            .map(|(at, dest, reason)| HealthFailure {
                at_ms: at_ms(*at),
                dest: *dest,
                real_server: self.names.get(dest).cloned(),
                reason: *reason,
            })
            .collect();
        HealthOutcome {
            director: self.director,
            started_ms: offset,
            log,
            notify,
            table,
            servers,
            failures,
            problems: self.problems,
            implementation: self.implementation,
        }
    }
}

/// `expect.removed` and `expect.removed_within_ms` against what the checkers did.
pub fn checks(expect: &crate::scenario::Expect, outcome: Option<&HealthOutcome>) -> Vec<Check> {
    let mut out = Vec::new();
    for name in &expect.removed {
        let server = outcome.and_then(|o| o.servers.iter().find(|s| &s.name == name));
        let out_at_end = server.is_some_and(|s| s.out_at_end);
        out.push(Check::new(
            format!("the health checker took {name} out of the table"),
            out_at_end,
            (!out_at_end).then(|| match server {
                Some(_) => format!("{name} was still in the table when the traffic ended"),
                None => "no health checker ran".to_string(),
            }),
        ));
        if let Some(within) = expect.removed_within {
            let ms = within.as_secs_f64() * 1000.0;
            out.push(Check::within_ms(
                format!("{name} was out within {ms:.0} ms of the checkers' start"),
                server.and_then(|s| s.out_after_start_ms),
                ms,
                "never taken out",
            ));
        }
    }
    out
}

/// Who runs the checkers of `scenario` on a director whose engine is kernel IPVS (`kernel`)
/// or not: `auto` takes the real keepalived when it is installed, the engine is the kernel's
/// and the scenario has checkers. `Err`: `checkers = "keepalived"` that cannot be.
pub fn implementation(scenario: &Scenario, choice: CheckersChoice, kernel: bool) -> Result<Implementation, String> {
    if scenario.health.is_none() {
        return Ok(Implementation::Embedded);
    }
    match choice {
        CheckersChoice::Embedded => Ok(Implementation::Embedded),
        CheckersChoice::Keepalived if !kernel => {
            Err("checkers = \"keepalived\": keepalived's checkers drive kernel IPVS; the embedded engine has no netlink IPVS (use engine = \"kernel\", or checkers = \"embedded\")".into())
        }
        CheckersChoice::Keepalived if !crate::keepalived::installed() => {
            Err("checkers = \"keepalived\" but keepalived is not installed (apt-get install --no-install-recommends keepalived), or use checkers = \"embedded\"".into())
        }
        CheckersChoice::Keepalived => Ok(Implementation::Keepalived),
        CheckersChoice::Auto if kernel && crate::keepalived::installed() => Ok(Implementation::Keepalived),
        CheckersChoice::Auto => Ok(Implementation::Embedded),
    }
}

/// The directors whose tables the checkers change: the first and any sharing its VIP.
pub fn checked_directors(scenario: &Scenario) -> Vec<String> {
    let Some(first) = scenario.director() else {
        return Vec::new();
    };
    scenario
        .directors
        .iter()
        .filter(|d| d.vip == first.vip)
        .map(|d| d.name.clone())
        .collect()
}

/// keepalived's checker child (`keepalived -C`) for `director`: its config written from the
/// scenario's first service and checked (`keepalived -t`), started in the director's namespace
/// with its files in `<run dir>/<director>/checkers/`. keepalived then owns that service in the
/// kernel: the engine attached to it (`KernelEngine::start_attached`).
pub async fn start_keepalived(scenario: &Scenario, lab: &Lab, director: &str) -> Result<Daemon, String> {
    use crate::keepalived::{self, Mode};
    let host = lab
        .host(director)
        .ok_or_else(|| format!("{director}: not in the lab"))?;
    let dir = keepalived::checkers_dir(&lab.host_dir(director).map_err(|e| e.to_string())?);
    let conf = keepalived::config(scenario, director, &dir, Mode::CheckersOnly).map_err(|e| e.to_string())?;
    Daemon::start(host, &dir, &conf, Mode::CheckersOnly, Arc::new(|_| {}))
        .await
        .map_err(|e| e.to_string())
}

/// The real keepalived's checkers, read from the first director's log.
pub struct KeepalivedSession<'l> {
    host: &'l Host,
    director: String,
    tap: LogTap,
    read: usize,
    /// The first "Activating healthchecker" line: the checkers' start.
    started: Option<Instant>,
    log: CheckerLog,
    names: HashMap<SocketAddr, String>,
    sorry: Option<SocketAddr>,
    /// HTTP_GET's path and timeout per server, to learn a refused status (keepalived does not say it).
    http: HashMap<SocketAddr, (String, Duration)>,
    fetches: FuturesUnordered<JoinHandle<(SocketAddr, CheckOutcome)>>,
    /// Lines read before the checkers' start, read once it is known.
    lines_before_start: Vec<(Instant, String)>,
}

impl<'l> KeepalivedSession<'l> {
    fn start(scenario: &Scenario, lab: &'l Lab, daemon: &Daemon) -> Option<KeepalivedSession<'l>> {
        let check = scenario.health.as_ref()?;
        let director = scenario.director()?;
        let host = lab.host(&director.name)?;
        let proto = scenario.service().protocol;
        let mut pool = Pool {
            vs: Trio::new(SocketAddr::from((director.vip, scenario.service().port)), proto).to_string(),
            servers: Vec::new(),
            sorry: check.sorry_server.as_ref().map(|s| {
                let addr = SocketAddr::V4(s.addr);
                (Trio::new(addr, proto).to_string(), addr, 1)
            }),
            alpha: HashSet::new(),
        };
        let mut http = HashMap::new();
        for c in &check.real_servers {
            let Some(rs) = scenario.real_server(&c.name) else {
                continue;
            };
            let addr = SocketAddr::from((rs.address, scenario.real_port(0, rs)));
            let settings = c.checker.as_ref().map(|(_, s)| s);
            if let Some((CheckerKind::Http(get), s)) = &c.checker {
                let path = get.urls.first().map_or("/".to_string(), |u| u.path.clone());
                http.insert(addr, (path, s.connect_timeout));
            }
            if settings.is_some_and(|s| s.alpha) {
                pool.alpha.insert(addr);
            }
            pool.servers.push(PoolServer {
                trio: Trio::new(addr, proto).to_string(),
                addr,
                weight: rs.weight,
                inhibit: c.inhibit_on_failure,
                checked: c.checker.is_some(),
                log_all_failures: settings.is_some_and(|s| s.log_all_failures),
            });
        }
        let mut names: HashMap<SocketAddr, String> = scenario
            .real_servers
            .iter()
            .filter(|r| scenario.service().has_real_server(&r.name))
            .map(|r| (SocketAddr::from((r.address, scenario.real_port(0, r))), r.name.clone()))
            .collect();
        if let Some(s) = &check.sorry_server {
            names
                .entry(SocketAddr::V4(s.addr))
                .or_insert_with(|| "sorry server".into());
        }
        let mut session = KeepalivedSession {
            host,
            director: director.name.clone(),
            tap: daemon.tap(),
            read: 0,
            started: None,
            log: CheckerLog::new(pool),
            names,
            sorry: check.sorry_server.as_ref().map(|s| SocketAddr::V4(s.addr)),
            http,
            fetches: FuturesUnordered::new(),
            lines_before_start: Vec::new(),
        };
        session.read_new();
        Some(session)
    }

    /// Reads the lines keepalived logged since the last call. Lines from before the checkers'
    /// start (IPVS set up, the quorum at start) count at their start.
    fn read_new(&mut self) {
        let lines = self.tap.lines_from(self.read);
        self.read += lines.len();
        for (at, line) in lines {
            if self.started.is_none() && crate::keepalived::is_checker_activation(&line) {
                self.started = Some(at);
                for (_, early) in std::mem::take(&mut self.lines_before_start) {
                    self.log.read(Duration::ZERO, &early);
                }
            }
            let Some(started) = self.started else {
                self.lines_before_start.push((at, line));
                continue;
            };
            if let Ask::HttpStatus(server) = self.log.read(at.saturating_duration_since(started), &line) {
                self.fetch_status(server);
            }
        }
    }

    /// keepalived refused the status it got from `server` without saying which: lvslab asks
    /// the same URL at once, from the director's namespace, and takes the status it gets.
    fn fetch_status(&mut self, server: SocketAddr) {
        let Some((path, timeout)) = self.http.get(&server).cloned() else {
            return;
        };
        // Every status is "refused" by an empty set, so the judgement carries the code.
        let mut url = Url::new(&path);
        url.status_codes = vec![0..=0];
        self.fetches.push(
            self.host
                .runtime()
                .spawn(async move { (server, http_check(server, path, timeout, url).await) }),
        );
    }

    fn fetched(&mut self, done: Result<(SocketAddr, CheckOutcome), tokio::task::JoinError>) {
        if let Ok((server, CheckOutcome::Failure(FailReason::HttpStatus(code)))) = done {
            self.log.http_status(server, code);
        }
    }

    async fn first_checks(&mut self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            self.read_new();
            if self.log.ran_once.len() >= self.log.checker_count() {
                return;
            }
            if self.tap.exit().is_some() {
                self.log
                    .problems
                    .push("keepalived ended before every checker had run once".into());
                return;
            }
            if tokio::time::timeout_at(deadline, self.tap.changed()).await.is_err() {
                let missing = self.log.checker_count() - self.log.ran_once.len();
                self.log.problems.push(format!(
                    "{missing} of {} checkers had not finished a first check after {bound:?}; traffic started anyway",
                    self.log.checker_count()
                ));
                return;
            }
        }
    }

    async fn during<F: Future>(&mut self, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                out = &mut until => {
                    self.read_new();
                    return out;
                }
                () = self.tap.changed() => self.read_new(),
                Some(done) = self.fetches.next(), if !self.fetches.is_empty() => self.fetched(done),
            }
        }
    }

    async fn stop(mut self, traffic_started: Instant) -> HealthOutcome {
        self.read_new();
        // The status fetches take at most their check's timeout.
        while let Some(done) = self.fetches.next().await {
            self.fetched(done);
        }
        let started = self.started.unwrap_or(traffic_started);
        let out_from_start: HashSet<SocketAddr> = HashSet::new();
        let table = self.log.table().clone();
        let log = self.log;
        let report = Report {
            director: self.director,
            started,
            history: &log.records,
            failures: &log.failures,
            names: &self.names,
            sorry: self.sorry,
            table: &table,
            out_from_start: &out_from_start,
            problems: log.problems.clone(),
            implementation: Implementation::Keepalived,
        };
        report.outcome(traffic_started)
    }
}

/// The run's checkers: lvslab's own, or the real keepalived's.
pub enum Checkers<'l> {
    Embedded(Session<'l>),
    Keepalived(KeepalivedSession<'l>),
}

impl<'l> Checkers<'l> {
    /// `None` when the scenario has no health check or no director; keepalived's when `daemon`
    /// (the first director's `keepalived -C`) is given.
    pub fn start(
        scenario: &Scenario,
        lab: &'l Lab,
        engines: &mut Engines,
        daemon: Option<&Daemon>,
        killed: Killed,
    ) -> Option<Checkers<'l>> {
        match daemon {
            Some(d) => KeepalivedSession::start(scenario, lab, d).map(Checkers::Keepalived),
            None => Session::start(scenario, lab, engines, killed).map(Checkers::Embedded),
        }
    }

    pub async fn first_checks(&mut self, engines: &mut Engines, bound: Duration) {
        match self {
            Checkers::Embedded(s) => s.first_checks(engines, bound).await,
            Checkers::Keepalived(s) => s.first_checks(bound).await,
        }
    }

    pub async fn during<F: Future>(&mut self, held: &RefCell<&mut Held>, until: F) -> F::Output {
        match self {
            Checkers::Embedded(s) => s.during(held, until).await,
            Checkers::Keepalived(s) => s.during(until).await,
        }
    }

    pub async fn stop(self, traffic_started: Instant) -> HealthOutcome {
        match self {
            Checkers::Embedded(s) => s.stop(traffic_started),
            Checkers::Keepalived(s) => s.stop(traffic_started).await,
        }
    }
}

/// Extra time the run waits for the first round of checks beyond keepalived's own bound.
const FIRST_CHECKS_MARGIN: Duration = Duration::from_secs(1);
/// The most of an HTTP answer a check reads (keepalived reads the whole body to hash it).
const HTTP_READ_LIMIT: u64 = 1 << 20;
/// How often a MISC command's thread looks whether it ended, ran out of time or must stop.
const COMMAND_POLL: Duration = Duration::from_millis(5);

/// keepalived's virtual server for `check` on the director whose VIP is `vip`.
pub fn virtual_server(scenario: &Scenario, vip: std::net::Ipv4Addr, check: &HealthCheck) -> VirtualServerConfig {
    let proto = scenario.service().protocol;
    let real_servers = check
        .real_servers
        .iter()
        .filter_map(|c| {
            let rs = scenario.real_server(&c.name)?;
            Some(RealServerConfig {
                addr: SocketAddr::from((rs.address, rs.port)),
                weight: rs.weight,
                inhibit_on_failure: c.inhibit_on_failure,
                checkers: c.checker.iter().cloned().collect(),
            })
        })
        .collect();
    let name = VsName::Address(Trio::new(SocketAddr::from((vip, scenario.service().port)), proto));
    let mut config = VirtualServerConfig::new(name, proto, real_servers);
    config.delay_loop = check.delay_loop;
    config.quorum = check.quorum;
    config.hysteresis = check.hysteresis;
    config.omega = check.omega;
    config.sorry_server = check.sorry_server.as_ref().map(|s| SocketAddr::V4(s.addr));
    config.sorry_server_inhibit = check.sorry_server_inhibit;
    config
}

/// The warmup pick: keepalived takes `random()`; the lab takes a seeded SplitMix64 so that a
/// scenario's first checks fall at the same times in every run.
struct Seed(u64);

impl Seed {
    fn from_name(name: &str) -> Seed {
        // FNV-1a of the name.
        Seed(name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }))
    }

    fn pick(&mut self, upto: Duration) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        upto.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64)
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn signed_ms(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => -(d.as_secs_f64() * 1000.0),
        None => from.duration_since(to).as_secs_f64() * 1000.0,
    }
}

/// keepalived's reading of a failed connect (`core/layer4.c`): refused and unreachable end
/// the attempt at once; anything else is an error.
fn connect_failure(e: &std::io::Error) -> FailReason {
    match (e.kind(), e.raw_os_error()) {
        (std::io::ErrorKind::ConnectionRefused, _) => FailReason::ConnectRefused,
        (_, Some(libc::EHOSTUNREACH | libc::ENETUNREACH)) => FailReason::ConnectRefused,
        _ => FailReason::ConnectError,
    }
}

/// TCP_CHECK.
async fn tcp_check(connect: SocketAddr, timeout: Duration) -> CheckOutcome {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(connect)).await {
        Err(_) => CheckOutcome::Failure(FailReason::ConnectTimeout),
        Ok(Err(e)) => CheckOutcome::Failure(connect_failure(&e)),
        Ok(Ok(_stream)) => CheckOutcome::Success,
    }
}

/// HTTP_GET: the request keepalived sends (`check_http.c`, HTTP/1.0), the answer read to its
/// end within the timeout, judged by status then digest.
async fn http_check(connect: SocketAddr, path: String, timeout: Duration, url: Url) -> CheckOutcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let stream = match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(connect)).await {
        Err(_) => return CheckOutcome::Failure(FailReason::ConnectTimeout),
        Ok(Err(e)) => return CheckOutcome::Failure(connect_failure(&e)),
        Ok(Ok(s)) => s,
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {}:{}\r\n\r\n",
        connect.ip(),
        connect.port()
    );
    let exchange = async move {
        let mut stream = stream;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.take(HTTP_READ_LIMIT).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => CheckOutcome::Failure(FailReason::ReadTimeout),
        Ok(Err(_)) => CheckOutcome::Failure(FailReason::NoData),
        Ok(Ok(answer)) => {
            let parsed = parse_http(&answer);
            url.judge(parsed.as_ref().map(|(status, md5)| (*status, md5.as_str())))
        }
    }
}

/// Status code and the body's MD5 (lower-case hex), or `None` when nothing usable came.
fn parse_http(answer: &[u8]) -> Option<(u16, String)> {
    use md5::{Digest, Md5};
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &answer[end + 4..];
    Some((status, format!("{:x}", Md5::digest(body))))
}

/// MISC_CHECK (and quorum scripts): `sh -c command` on a thread inside the director's
/// namespace, in its own process group, killed with it on timeout or when `stop` is set.
fn run_command(
    host: &Host,
    command: String,
    timeout: Duration,
    stop: Arc<AtomicBool>,
) -> impl Future<Output = CheckOutcome> + Send + 'static {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = host.spawn_thread("health-misc", move || {
        let _ = tx.send(run_command_here(&command, timeout, &stop));
    });
    async move {
        if spawned.is_err() {
            return CheckOutcome::Failure(FailReason::MiscSignal(libc::SIGKILL));
        }
        rx.await
            .unwrap_or(CheckOutcome::Failure(FailReason::MiscSignal(libc::SIGKILL)))
    }
}

fn run_command_here(command: &str, timeout: Duration, stop: &AtomicBool) -> CheckOutcome {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    crate::sys::process::die_with_parent_in_child(&mut cmd);
    let Ok(mut child) = cmd.spawn() else {
        // keepalived's child exits 127 when the shell cannot run it.
        return CheckOutcome::Failure(FailReason::MiscExit(127));
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match (status.code(), status.signal()) {
                    (Some(0), _) => CheckOutcome::Success,
                    (Some(code), _) => CheckOutcome::Failure(FailReason::MiscExit(code as u8)),
                    (None, Some(signal)) => CheckOutcome::Failure(FailReason::MiscSignal(signal)),
                    (None, None) => CheckOutcome::Failure(FailReason::MiscSignal(0)),
                };
            }
            Ok(None) if Instant::now() >= deadline || stop.load(Ordering::Relaxed) => {
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return CheckOutcome::Failure(FailReason::MiscTimeout);
            }
            Ok(None) => std::thread::sleep(COMMAND_POLL),
            Err(_) => return CheckOutcome::Failure(FailReason::MiscSignal(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_answers_give_status_and_body_md5() {
        let answer = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        // md5("hello")
        assert_eq!(
            parse_http(answer),
            Some((200, "5d41402abc4b2a76b9719d911017c592".to_string()))
        );
        assert_eq!(parse_http(b"HTTP/1.0 503 Busy\r\n\r\n").map(|a| a.0), Some(503));
        assert_eq!(parse_http(b"garbage"), None);
    }

    #[test]
    fn warmup_picks_repeat_per_scenario_and_stay_within_warmup() {
        let picks = |name| {
            let mut s = Seed::from_name(name);
            (0..50).map(|_| s.pick(Duration::from_secs(3))).collect::<Vec<_>>()
        };
        assert_eq!(picks("a"), picks("a"));
        assert_ne!(picks("a"), picks("b"));
        assert!(picks("a").iter().all(|d| *d <= Duration::from_secs(3)));
        assert!(picks("a").iter().any(|d| *d > Duration::from_millis(1500)));
    }

    #[test]
    fn commands_report_exit_status_and_are_killed_on_timeout() {
        let stop = AtomicBool::new(false);
        let long = Duration::from_secs(5);
        assert_eq!(run_command_here("exit 0", long, &stop), CheckOutcome::Success);
        assert_eq!(
            run_command_here("exit 3", long, &stop),
            CheckOutcome::Failure(FailReason::MiscExit(3))
        );
        let began = Instant::now();
        assert_eq!(
            run_command_here("sleep 30", Duration::from_millis(100), &stop),
            CheckOutcome::Failure(FailReason::MiscTimeout)
        );
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}
