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
//! One session per checked service (keepalived's virtual_server: a real server in two services
//! is checked in each, separately), checking for the first director. The directors of a VRRP
//! instance share its VIP and, as keepalived runs its checkers on every node, each one's table
//! follows the same changes: the session applies them to every engine serving that VIP.
//! Directors with VIPs of their own are not checked.

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
    TableAction, TableOp, Url, VirtualServerConfig,
};
use crate::ipvs::{self, Forward};
use crate::lab::{Host, Lab};
use crate::scenario::{HealthCheck, Scenario};
use crate::verdict::Check;

use super::Held;
use crate::ha::Implementation;
use crate::health::CheckerKind;
use crate::keepalived::checker_log::{Ask, CheckerLog, Pool, PoolServer};
use crate::keepalived::{names, Daemon, LogTap};
use crate::scenario::CheckersChoice;

/// The run's engines, with their directors' names.
type Engines = [(String, Box<dyn Engine>)];

/// What the checkers did during a run, for the report and `--json` (`health`).
#[derive(Debug, Clone, Serialize)]
pub struct HealthOutcome {
    /// The director whose checkers these are (the first checked one).
    pub director: String,
    /// The services with checkers, by name, in file order.
    pub services: Vec<String>,
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
    /// Another director's keepalived logged it (not [`HealthOutcome::director`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub director: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HealthTableChange {
    pub at_ms: f64,
    /// The service whose table changed.
    pub service: String,
    /// The director whose checkers made the change.
    pub director: String,
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
    /// The service whose checker failed.
    pub service: String,
    pub director: String,
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
    /// The service whose checkers watch it (a server in two services has one entry in each).
    pub service: String,
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
    /// The checked service's name, and its key in the engines.
    service_name: String,
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
    /// Checks that fell due (or lost their director) while every checked director was down,
    /// tried again a delay_loop later: a director started again checks anew.
    parked: Vec<(CheckerId, CheckTarget)>,
    parked_retry: Option<Duration>,
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
    /// `traffic_waits_for_checks`: the traffic waits for this service's first checks.
    waits: bool,
    /// What a checker started afresh starts from: the virtual server, the table a new engine
    /// holds, the warmup picks.
    config: VirtualServerConfig,
    initial_table: BTreeMap<SocketAddrV4, u32>,
    seed: Seed,
    /// How many times each mirror's engine had been started again when last looked at
    /// (`Held::restarts`).
    restarts_seen: HashMap<String, u32>,
}

impl<'l> Session<'l> {
    /// Starts the checkers of service `index` on the first director, whose engine holds every
    /// real server of the pool; `None` when the service has no health check or there is no director.
    pub fn start(
        scenario: &Scenario,
        index: usize,
        lab: &'l Lab,
        engines: &mut Engines,
        killed: Killed,
    ) -> Option<Session<'l>> {
        let svc = scenario.services.get(index)?;
        let check = svc.health.as_ref()?;
        let director = scenario.director()?;
        let mirrors: Vec<String> = checked_directors(scenario);
        let checkers: Vec<(String, &'l Host)> = mirrors
            .iter()
            .filter_map(|name| lab.host(name).map(|h| (name.clone(), h)))
            .collect();
        checkers.first()?;
        let forward = svc.mode.forward()?;
        let vip = scenario.service_vip(index, director);
        let config = virtual_server(scenario, index, vip, check);
        let (mut monitor, warnings) = Monitor::new(&config);
        let service: ServiceKey = svc.key_on(vip);
        let members = || scenario.real_servers.iter().filter(|r| svc.has_real_server(&r.name));
        let table: BTreeMap<SocketAddrV4, u32> = members()
            .filter(|r| !check.is_sorry(&r.name))
            .map(|r| (SocketAddrV4::new(r.address, scenario.table_port(index, r)), r.weight))
            .collect();
        let names = server_names(scenario, index, check);
        // The first service's seed is the scenario's, as before services had checkers of their own.
        let mut seed = match index {
            0 => Seed::from_name(&scenario.name),
            _ => Seed::from_name(&format!("{}/{}", scenario.name, svc.name)),
        };
        let start_records = monitor.start(Duration::ZERO, |w| seed.pick(w));
        let mut session = Session {
            monitor,
            checkers,
            killed,
            director: director.name.clone(),
            mirrors,
            service_name: svc.name.clone(),
            service,
            forward,
            vs_delay_loop: check.delay_loop,
            quorum_up: check.quorum_up.clone(),
            quorum_down: check.quorum_down.clone(),
            started: Instant::now(),
            names,
            sorry: check
                .sorry_server
                .as_ref()
                .map(|s| SocketAddr::V4(names::sorry_dest(scenario, index, s))),
            running: FuturesUnordered::new(),
            probing: HashMap::new(),
            parked: Vec::new(),
            parked_retry: None,
            stop: Arc::new(AtomicBool::new(false)),
            initial_table: table.clone(),
            table,
            history: Vec::new(),
            failures: Vec::new(),
            pending: Vec::new(),
            ran_once: HashSet::new(),
            out_from_start: HashSet::new(),
            problems: warnings,
            waits: check.traffic_waits_for_checks,
            config,
            seed,
            restarts_seen: HashMap::new(),
        };
        session.install(engines, start_records);
        Some(session)
    }

    /// Runs every session's checks until each checker of a service whose traffic waits for
    /// them (`traffic_waits_for_checks`) has had one result, or `bound` passed.
    pub async fn first_checks_all(sessions: &mut [Session<'l>], engines: &mut Engines, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        while sessions
            .iter()
            .any(|s| s.waits && s.ran_once.len() < s.monitor.checker_count())
        {
            let Ok((i, records)) = tokio::time::timeout_at(deadline, Session::step_any(sessions)).await else {
                for s in sessions.iter_mut().filter(|s| s.waits) {
                    let total = s.monitor.checker_count();
                    if s.ran_once.len() < total {
                        s.problems.push(format!(
                            "{} of {total} checkers had not finished a first check after {bound:?}; traffic started anyway",
                            total - s.ran_once.len()
                        ));
                    }
                }
                return;
            };
            sessions[i].apply(engines, records);
        }
    }

    /// The next step of any session: its index and its records. Cancel-safe, as `step` is.
    async fn step_any(sessions: &mut [Session<'l>]) -> (usize, Vec<HealthRecord>) {
        if sessions.is_empty() {
            return std::future::pending().await;
        }
        let steps = sessions
            .iter_mut()
            .enumerate()
            .map(|(i, s)| Box::pin(async move { (i, s.step().await) }));
        futures::future::select_all(steps).await.0
    }

    /// Keeps every session checking while `until` runs (see [`Session::during`]).
    pub async fn during_all<F: Future>(sessions: &mut [Session<'l>], held: &RefCell<&mut Held>, until: F) -> F::Output {
        tokio::pin!(until);
        loop {
            tokio::select! {
                out = &mut until => {
                    for s in sessions.iter_mut() {
                        s.flush(held);
                    }
                    return out;
                }
                (i, records) = Session::step_any(sessions) => {
                    sessions[i].pending.extend(records);
                    for s in sessions.iter_mut() {
                        s.flush(held);
                    }
                }
            }
        }
    }

    /// The longest the first round of checks of any service may take (warmup, timeouts), plus
    /// a margin; zero without checkers.
    pub fn first_checks_bound(scenario: &Scenario) -> Duration {
        if !scenario.has_checkers() {
            return Duration::ZERO;
        }
        let longest = scenario
            .checked_services()
            .flat_map(|(_, _, check)| {
                check
                    .real_servers
                    .iter()
                    .filter_map(|r| r.checker.as_ref())
                    .map(|(kind, settings)| health::removed_at_start_within(kind, settings, check.delay_loop))
            })
            .max()
            .unwrap_or_default();
        longest + FIRST_CHECKS_MARGIN
    }

    /// The table changes go to the first director's engine in `held` when it can be borrowed
    /// (an event may hold it for a moment: they wait for the next step); once an event has
    /// killed that engine, checks go on and change nothing, as keepalived's checker dies with
    /// its director.
    fn flush(&mut self, held: &RefCell<&mut Held>) {
        let Ok(mut held) = held.try_borrow_mut() else { return };
        let held = &mut **held;
        for director in self.mirrors.clone() {
            let starts = held.restarts.get(&director).copied().unwrap_or(0);
            if self.restarts_seen.get(&director).copied().unwrap_or(0) != starts {
                self.restarts_seen.insert(director.clone(), starts);
                self.started_again(&mut held.engines, &director);
            }
        }
        if self.pending.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.pending);
        self.apply(&mut held.engines, records);
    }

    /// `director`'s engine was started again, from the scenario's table. Its keepalived -C
    /// starts afresh with it (a new pool, every server in, checks anew) unless another checked
    /// director's checkers kept running: the new engine then takes the pool they hold.
    fn started_again(&mut self, engines: &mut Engines, director: &str) {
        let others_alive = {
            let killed = self.killed.lock().unwrap_or_else(|p| p.into_inner());
            self.checkers
                .iter()
                .any(|(name, _)| name != director && !killed.contains(name))
        };
        if others_alive {
            let (service, forward) = (self.service, self.forward);
            let Some((_, engine)) = engines.iter_mut().find(|(name, _)| name == director) else {
                return;
            };
            for (dest, weight) in &self.initial_table {
                let result = match self.table.get(dest) {
                    None => engine.remove_dest(service, *dest),
                    Some(now) if now != weight => engine.set_weight(service, *dest, *now),
                    Some(_) => Ok(()),
                };
                if let Err(e) = result {
                    self.problems.push(format!("{director} started again: {dest}: {e}"));
                }
            }
            for (dest, weight) in self.table.iter().filter(|(d, _)| !self.initial_table.contains_key(d)) {
                let config = ipvs::DestConfig::new(*dest.ip(), dest.port(), *weight, forward);
                if let Err(e) = engine.add_dest(service, config) {
                    self.problems.push(format!("{director} started again: {dest}: {e}"));
                }
            }
            return;
        }
        // The checks in flight died with the old checker.
        self.running.clear();
        self.probing.clear();
        self.parked.clear();
        self.parked_retry = None;
        self.monitor = Monitor::new(&self.config).0;
        self.table = self.initial_table.clone();
        let now = self.started.elapsed();
        let seed = &mut self.seed;
        let records = self.monitor.start(now, |w| seed.pick(w));
        self.install(engines, records);
    }

    /// One thing happens: a check ends (its records are returned, to be applied) or checks fall
    /// due (they start). Cancel-safe: a check that ended stays queued until the next call.
    async fn step(&mut self) -> Vec<HealthRecord> {
        let due_at = self
            .monitor
            .next_due()
            .into_iter()
            .chain(self.parked_retry)
            .min()
            .map(|d| tokio::time::Instant::from_std(self.started + d));
        tokio::select! {
            Some(done) = self.running.next(), if !self.running.is_empty() => {
                match done {
                    Ok((id, _, _, from)) if self.is_killed(from) => {
                        // Its director died under it: the check runs again from one alive.
                        if let Some(target) = self.probing.get(&id).cloned() {
                            match self.alive() {
                                Some(at) => self.probe(id, target, at),
                                None => self.park(id, target),
                            }
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
            // Every checked director is dead: so are their checkers, until one starts again.
            for due in due {
                self.park(due.id, due.target);
            }
            if self.parked_retry.is_some_and(|retry| retry <= now) {
                self.parked_retry = Some(now + self.vs_delay_loop);
            }
            return;
        };
        self.parked_retry = None;
        for (id, target) in std::mem::take(&mut self.parked) {
            self.probe(id, target, at);
        }
        for due in due {
            self.probe(due.id, due.target, at);
        }
    }

    fn park(&mut self, id: CheckerId, target: CheckTarget) {
        self.probing.remove(&id);
        self.parked.push((id, target));
        if self.parked_retry.is_none() {
            self.parked_retry = Some(self.started.elapsed() + self.vs_delay_loop);
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
            service: self.service_name,
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
    service: String,
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
                    director: None,
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
                        service: self.service.clone(),
                        director: self.director.clone(),
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
                    director: None,
                }),
            }
        }
        let mut servers: Vec<ServerHealth> = self
            .names
            .iter()
            .filter(|(addr, _)| Some(**addr) != self.sorry)
            .map(|(addr, name)| ServerHealth {
                name: name.clone(),
                service: self.service.clone(),
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
                service: self.service.clone(),
                director: self.director.clone(),
                dest: *dest,
                real_server: self.names.get(dest).cloned(),
                reason: *reason,
            })
            .collect();
        HealthOutcome {
            services: vec![self.service],
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

/// `expect.removed` and `expect.removed_within_ms` against what the checkers did: `[expect]`'s
/// servers out of every service whose checkers watch them, each `[service.expect]`'s out of its
/// service.
pub fn checks(scenario: &Scenario, outcome: Option<&HealthOutcome>) -> Vec<Check> {
    let mut out = removed_checks(scenario, &scenario.expect, None, outcome);
    for svc in &scenario.services {
        if let Some(expect) = &svc.expect {
            out.extend(removed_checks(scenario, expect, Some(&svc.name), outcome));
        }
    }
    out
}

fn removed_checks(
    scenario: &Scenario,
    expect: &crate::scenario::Expect,
    only: Option<&str>,
    outcome: Option<&HealthOutcome>,
) -> Vec<Check> {
    let mut out = Vec::new();
    let several = scenario.checked_services().count() > 1;
    for name in &expect.removed {
        let watching: Vec<&str> = scenario
            .checked_services()
            .filter(|(_, s, _)| only.is_none_or(|o| o == s.name))
            .filter(|(_, _, h)| h.real_servers.iter().any(|r| &r.name == name && r.checker.is_some()))
            .map(|(_, s, _)| s.name.as_str())
            .collect();
        let entries: Vec<(&str, Option<&ServerHealth>)> = watching
            .iter()
            .map(|svc| {
                let entry = outcome.and_then(|o| o.servers.iter().find(|s| &s.name == name && s.service == *svc));
                (*svc, entry)
            })
            .collect();
        let still: Vec<&str> = entries
            .iter()
            .filter(|(_, s)| !s.is_some_and(|s| s.out_at_end))
            .map(|(svc, _)| *svc)
            .collect();
        let ran = entries.iter().any(|(_, s)| s.is_some());
        let passed = ran && still.is_empty();
        let of = match (several, watching.as_slice()) {
            (false, _) => "the table".to_string(),
            (true, [one]) => format!("service {one}'s table"),
            (true, many) => format!("the tables of services {}", many.join(", ")),
        };
        out.push(Check::new(
            format!("the health checker took {name} out of {of}"),
            passed,
            (!passed).then(|| match ran {
                false => "no health checker ran".to_string(),
                true if several => format!(
                    "{name} was still in service {}'s table when the traffic ended",
                    still.join(", ")
                ),
                true => format!("{name} was still in the table when the traffic ended"),
            }),
        ));
        if let Some(within) = expect.removed_within {
            let ms = within.as_secs_f64() * 1000.0;
            // Out of each of them within the bound: the latest counts.
            let latest = entries
                .iter()
                .map(|(_, s)| s.and_then(|s| s.out_after_start_ms))
                .collect::<Option<Vec<f64>>>()
                .and_then(|v| v.into_iter().max_by(|a, b| a.total_cmp(b)));
            let what = match only {
                Some(svc) if several => {
                    format!("{name} was out of service {svc} within {ms:.0} ms of the checkers' start")
                }
                _ => format!("{name} was out within {ms:.0} ms of the checkers' start"),
            };
            out.push(Check::within_ms(what, latest, ms, "never taken out"));
        }
    }
    out
}

/// Who runs the checkers of `scenario` on a director whose engine is kernel IPVS (`kernel`)
/// or not: `auto` takes the real keepalived when it is installed, the engine is the kernel's
/// and the scenario has checkers. `Err`: `checkers = "keepalived"` that cannot be.
pub fn implementation(scenario: &Scenario, choice: CheckersChoice, kernel: bool) -> Result<Implementation, String> {
    if !scenario.has_checkers() {
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
/// scenario's checked services (a virtual_server each) and checked (`keepalived -t`), started in the director's namespace
/// with its files in `<run dir>/<director>/checkers/`. keepalived then owns those services in the
/// kernel: the engine attached to it (`KernelEngine::start_attached`).
///
/// `previous`: the director's `keepalived -C` that a `stop` or `kill` ended, which the new one
/// follows in its log ([`Daemon::start_again`]): the run's checker readers read both.
pub async fn start_keepalived(
    scenario: &Scenario,
    lab: &Lab,
    director: &str,
    previous: Option<&Daemon>,
) -> Result<Daemon, String> {
    use crate::keepalived::{self, Mode};
    let host = lab
        .host(director)
        .ok_or_else(|| format!("{director}: not in the lab"))?;
    let dir = keepalived::checkers_dir(&lab.host_dir(director).map_err(|e| e.to_string())?);
    let conf = keepalived::config(scenario, director, &dir, Mode::CheckersOnly).map_err(|e| e.to_string())?;
    match previous {
        Some(previous) => Daemon::start_again(previous, host, &dir, &conf, Mode::CheckersOnly, Arc::new(|_| {})).await,
        None => Daemon::start(host, &dir, &conf, Mode::CheckersOnly, Arc::new(|_| {})).await,
    }
    .map_err(|e| e.to_string())
}

/// The real keepalived's checkers, read from every checked director's log: each director's
/// `keepalived -C` checks every checked service on its own kernel table.
pub struct KeepalivedSession<'l> {
    directors: Vec<DirectorLog<'l>>,
    /// Status fetches after [`Ask::HttpStatus`]: (director, service, server, what it got).
    fetches: FuturesUnordered<JoinHandle<(usize, usize, SocketAddr, CheckOutcome)>>,
}

/// One director's `keepalived -C` log, read for every checked service.
struct DirectorLog<'l> {
    host: &'l Host,
    director: String,
    tap: LogTap,
    read: usize,
    /// The first "Activating healthchecker" line: the checkers' start.
    started: Option<Instant>,
    services: Vec<ServiceLog>,
    /// Lines read before the checkers' start, read once it is known.
    lines_before_start: Vec<(Instant, String)>,
}

/// One virtual_server's checkers in one director's log.
struct ServiceLog {
    service: String,
    log: CheckerLog,
    names: HashMap<SocketAddr, String>,
    sorry: Option<SocketAddr>,
    /// HTTP_GET's address, path and timeout per server, to learn a refused status (keepalived
    /// does not say it).
    http: HashMap<SocketAddr, (SocketAddr, String, Duration)>,
}

impl ServiceLog {
    fn new(scenario: &Scenario, index: usize, vip: std::net::Ipv4Addr) -> Option<ServiceLog> {
        let svc = scenario.services.get(index)?;
        let check = svc.health.as_ref()?;
        let sorry = check
            .sorry_server
            .as_ref()
            .map(|s| SocketAddr::V4(names::sorry_dest(scenario, index, s)));
        let mut pool = Pool {
            vs: names::vs_name(scenario, index, vip).to_string(),
            servers: Vec::new(),
            sorry: sorry.map(|addr| (names::trio(scenario, index, addr).to_string(), addr, 1)),
            alpha: HashSet::new(),
        };
        let mut http = HashMap::new();
        for c in &check.real_servers {
            let Some(rs) = scenario.real_server(&c.name) else {
                continue;
            };
            let (addr, check_at) = names::checked_dest(scenario, index, rs);
            let settings = c.checker.as_ref().map(|(_, s)| s);
            if let Some((CheckerKind::Http(get), s)) = &c.checker {
                let path = get.urls.first().map_or("/".to_string(), |u| u.path.clone());
                http.insert(addr, (s.connect_to.unwrap_or(check_at), path, s.connect_timeout));
            }
            if settings.is_some_and(|s| s.alpha) {
                pool.alpha.insert(addr);
            }
            pool.servers.push(PoolServer {
                trio: names::trio(scenario, index, addr).to_string(),
                addr,
                weight: rs.weight,
                inhibit: c.inhibit_on_failure,
                checked: c.checker.is_some(),
                log_all_failures: settings.is_some_and(|s| s.log_all_failures),
            });
        }
        Some(ServiceLog {
            service: svc.name.clone(),
            log: CheckerLog::new(pool),
            names: server_names(scenario, index, check),
            sorry,
            http,
        })
    }

    fn ran_once(&self) -> bool {
        self.log.ran_once.len() >= self.log.checker_count()
    }
}

impl DirectorLog<'_> {
    /// Reads the lines keepalived logged since the last call, each for every service. Lines
    /// from before the checkers' start (IPVS set up, the quorum at start) count at their start.
    /// Where a keepalived started again begins, every service starts over from a full table
    /// (`CheckerLog::restarted`). Returns the HTTP statuses to fetch: (service, server).
    fn read_new(&mut self) -> Vec<(usize, SocketAddr)> {
        let lines = self.tap.lines_from(self.read);
        let restarts = self.tap.restarts();
        let first = self.read;
        self.read += lines.len();
        let mut asks = Vec::new();
        for (n, (at, line)) in lines.into_iter().enumerate() {
            if let (true, Some(started)) = (restarts.contains(&(first + n)), self.started) {
                for s in &mut self.services {
                    s.log.restarted(at.saturating_duration_since(started));
                }
            }
            if self.started.is_none() && crate::keepalived::is_checker_activation(&line) {
                self.started = Some(at);
                for (_, early) in std::mem::take(&mut self.lines_before_start) {
                    for s in &mut self.services {
                        s.log.read(Duration::ZERO, &early);
                    }
                }
            }
            let Some(started) = self.started else {
                self.lines_before_start.push((at, line));
                continue;
            };
            for (i, s) in self.services.iter_mut().enumerate() {
                if let Ask::HttpStatus(server) = s.log.read(at.saturating_duration_since(started), &line) {
                    asks.push((i, server));
                }
            }
        }
        asks
    }

    fn ran_once(&self) -> bool {
        self.services.iter().all(ServiceLog::ran_once)
    }

    fn checker_count(&self) -> (usize, usize) {
        self.services.iter().fold((0, 0), |(ran, all), s| {
            (ran + s.log.ran_once.len(), all + s.log.checker_count())
        })
    }

    fn problem(&mut self, text: String) {
        if let Some(s) = self.services.first_mut() {
            s.log.problems.push(text);
        }
    }
}

impl<'l> KeepalivedSession<'l> {
    /// `daemons`: each checked director's `keepalived -C`, the first director's first.
    fn start(scenario: &Scenario, lab: &'l Lab, daemons: &[(String, Daemon)]) -> Option<KeepalivedSession<'l>> {
        let mut directors = Vec::new();
        for (name, daemon) in daemons {
            let Some(director) = scenario.directors.iter().find(|d| &d.name == name) else {
                continue;
            };
            let Some(host) = lab.host(name) else { continue };
            let services: Vec<ServiceLog> = scenario
                .checked_services()
                .filter_map(|(i, _, _)| ServiceLog::new(scenario, i, scenario.service_vip(i, director)))
                .collect();
            if services.is_empty() {
                return None;
            }
            directors.push(DirectorLog {
                host,
                director: name.clone(),
                tap: daemon.tap(),
                read: 0,
                started: None,
                services,
                lines_before_start: Vec::new(),
            });
        }
        if directors.is_empty() {
            return None;
        }
        let mut session = KeepalivedSession {
            directors,
            fetches: FuturesUnordered::new(),
        };
        session.read_new();
        Some(session)
    }

    fn read_new(&mut self) {
        for d in 0..self.directors.len() {
            for (s, server) in self.directors[d].read_new() {
                self.fetch_status(d, s, server);
            }
        }
    }

    /// keepalived refused the status it got from `server` without saying which: lvslab asks
    /// the same URL at once, from the director's namespace, and takes the status it gets.
    fn fetch_status(&mut self, d: usize, s: usize, server: SocketAddr) {
        let dir = &self.directors[d];
        let Some((connect, path, timeout)) = dir.services[s].http.get(&server).cloned() else {
            return;
        };
        // Every status is "refused" by an empty set, so the judgement carries the code.
        let mut url = Url::new(&path);
        url.status_codes = vec![0..=0];
        self.fetches.push(
            dir.host
                .runtime()
                .spawn(async move { (d, s, server, http_check(connect, path, timeout, url).await) }),
        );
    }

    fn fetched(&mut self, done: Result<(usize, usize, SocketAddr, CheckOutcome), tokio::task::JoinError>) {
        if let Ok((d, s, server, CheckOutcome::Failure(FailReason::HttpStatus(code)))) = done {
            self.directors[d].services[s].log.http_status(server, code);
        }
    }

    /// Until something new is logged by any director's keepalived.
    async fn changed(directors: &mut [DirectorLog<'l>]) {
        let waits = directors.iter_mut().map(|d| Box::pin(d.tap.changed()));
        futures::future::select_all(waits).await;
    }

    async fn first_checks(&mut self, bound: Duration) {
        let deadline = tokio::time::Instant::now() + bound;
        let mut ended: HashSet<usize> = HashSet::new();
        loop {
            self.read_new();
            for (i, d) in self.directors.iter_mut().enumerate() {
                if d.tap.exit().is_some() && ended.insert(i) && !d.ran_once() {
                    d.problem("keepalived ended before every checker had run once".into());
                }
            }
            let waiting = self
                .directors
                .iter()
                .enumerate()
                .any(|(i, d)| !ended.contains(&i) && !d.ran_once());
            if !waiting {
                return;
            }
            if tokio::time::timeout_at(deadline, Self::changed(&mut self.directors))
                .await
                .is_err()
            {
                for (i, d) in self.directors.iter_mut().enumerate() {
                    let (ran, all) = d.checker_count();
                    if !ended.contains(&i) && ran < all {
                        d.problem(format!(
                            "{} of {all} checkers had not finished a first check after {bound:?}; traffic started anyway",
                            all - ran
                        ));
                    }
                }
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
                () = Self::changed(&mut self.directors) => self.read_new(),
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
        // A server is out at the end when it is out on every director whose keepalived still
        // runs (every director's, when none does).
        let running: Vec<String> = self
            .directors
            .iter()
            .filter(|d| d.tap.exit().is_none())
            .map(|d| d.director.clone())
            .collect();
        let mut parts = Vec::new();
        for d in self.directors {
            let started = d.started.unwrap_or(traffic_started);
            let out_from_start: HashSet<SocketAddr> = HashSet::new();
            for s in d.services {
                let table = s.log.table().clone();
                let report = Report {
                    director: d.director.clone(),
                    service: s.service,
                    started,
                    history: &s.log.records,
                    failures: &s.log.failures,
                    names: &s.names,
                    sorry: s.sorry,
                    table: &table,
                    out_from_start: &out_from_start,
                    problems: s.log.problems.clone(),
                    implementation: Implementation::Keepalived,
                };
                parts.push(report.outcome(traffic_started));
            }
        }
        HealthOutcome::merge(parts, &running).expect("a director's checkers")
    }
}

/// The run's checkers: lvslab's own (a session per checked service), or the real keepalived's.
pub enum Checkers<'l> {
    Embedded(Vec<Session<'l>>),
    Keepalived(KeepalivedSession<'l>),
}

impl<'l> Checkers<'l> {
    /// `None` when no service has a health check or there is no director; keepalived's when
    /// `daemons` (each checked director's `keepalived -C`) are given.
    pub fn start(
        scenario: &Scenario,
        lab: &'l Lab,
        engines: &mut Engines,
        daemons: &[(String, Daemon)],
        killed: Killed,
    ) -> Option<Checkers<'l>> {
        if !daemons.is_empty() {
            return KeepalivedSession::start(scenario, lab, daemons).map(Checkers::Keepalived);
        }
        let sessions: Vec<Session<'l>> = scenario
            .checked_services()
            .filter_map(|(i, _, _)| Session::start(scenario, i, lab, engines, killed.clone()))
            .collect();
        (!sessions.is_empty()).then_some(Checkers::Embedded(sessions))
    }

    /// Until every checker of the services whose traffic waits for them has run once.
    pub async fn first_checks(&mut self, engines: &mut Engines, bound: Duration) {
        match self {
            Checkers::Embedded(s) => Session::first_checks_all(s, engines, bound).await,
            Checkers::Keepalived(s) => s.first_checks(bound).await,
        }
    }

    pub async fn during<F: Future>(&mut self, held: &RefCell<&mut Held>, until: F) -> F::Output {
        match self {
            Checkers::Embedded(s) => Session::during_all(s, held, until).await,
            Checkers::Keepalived(s) => s.during(until).await,
        }
    }

    pub async fn stop(self, traffic_started: Instant) -> HealthOutcome {
        match self {
            Checkers::Embedded(sessions) => {
                let parts = sessions.into_iter().map(|s| s.stop(traffic_started)).collect();
                HealthOutcome::merge(parts, &[]).expect("a session")
            }
            Checkers::Keepalived(s) => s.stop(traffic_started).await,
        }
    }
}

impl HealthOutcome {
    /// One outcome from several (per service, per director), the first's director named: records
    /// in time order; each server once per service, out at the end when it is out on every
    /// director of `last_word` (every director when empty or none of them reports it).
    fn merge(parts: Vec<HealthOutcome>, last_word: &[String]) -> Option<HealthOutcome> {
        let mut parts = parts.into_iter();
        let mut out = parts.next()?;
        let main = out.director.clone();
        let counts = |d: &str| last_word.is_empty() || last_word.iter().any(|w| w == d);
        let mut servers: Vec<(String, ServerHealth)> = std::mem::take(&mut out.servers)
            .into_iter()
            .map(|s| (main.clone(), s))
            .collect();
        for mut part in parts {
            let other = part.director != main;
            for line in part.log.iter_mut().chain(part.notify.iter_mut()) {
                if other {
                    line.director = Some(part.director.clone());
                }
            }
            out.started_ms = out.started_ms.min(part.started_ms);
            for s in part.services {
                if !out.services.contains(&s) {
                    out.services.push(s);
                }
            }
            out.log.extend(part.log);
            out.notify.extend(part.notify);
            out.table.extend(part.table);
            out.failures.extend(part.failures);
            for p in part.problems {
                if !out.problems.contains(&p) {
                    out.problems.push(p);
                }
            }
            servers.extend(part.servers.into_iter().map(|s| (part.director.clone(), s)));
        }
        let by_time = |a: &f64, b: &f64| a.total_cmp(b);
        // A line naming a real server that two services share is read for both: once.
        let mut seen = HashSet::new();
        out.log
            .retain(|l| seen.insert((l.at_ms.to_bits(), l.line.clone(), l.director.clone())));
        let mut seen = HashSet::new();
        out.notify
            .retain(|l| seen.insert((l.at_ms.to_bits(), l.line.clone(), l.director.clone())));
        out.log.sort_by(|a, b| by_time(&a.at_ms, &b.at_ms));
        out.notify.sort_by(|a, b| by_time(&a.at_ms, &b.at_ms));
        out.table.sort_by(|a, b| by_time(&a.at_ms, &b.at_ms));
        out.failures.sort_by(|a, b| by_time(&a.at_ms, &b.at_ms));
        let mut merged: Vec<ServerHealth> = Vec::new();
        let mut keys: Vec<(String, String)> = servers
            .iter()
            .map(|(_, s)| (s.service.clone(), s.name.clone()))
            .collect();
        keys.dedup();
        let mut done = HashSet::new();
        for key in keys {
            if !done.insert(key.clone()) {
                continue;
            }
            let entries: Vec<&(String, ServerHealth)> = servers
                .iter()
                .filter(|(_, s)| s.service == key.0 && s.name == key.1)
                .collect();
            let judged: Vec<&ServerHealth> = match entries.iter().any(|(d, _)| counts(d)) {
                true => entries.iter().filter(|(d, _)| counts(d)).map(|(_, s)| s).collect(),
                false => entries.iter().map(|(_, s)| s).collect(),
            };
            merged.push(ServerHealth {
                name: key.1,
                service: key.0,
                out_after_start_ms: entries
                    .iter()
                    .filter_map(|(_, s)| s.out_after_start_ms)
                    .min_by(|a, b| a.total_cmp(b)),
                out_at_end: judged.iter().all(|s| s.out_at_end),
            });
        }
        out.servers = merged;
        Some(out)
    }
}

/// Extra time the run waits for the first round of checks beyond keepalived's own bound.
const FIRST_CHECKS_MARGIN: Duration = Duration::from_secs(1);
/// The most of an HTTP answer a check reads (keepalived reads the whole body to hash it).
const HTTP_READ_LIMIT: u64 = 1 << 20;
/// How often a MISC command's thread looks whether it ended, ran out of time or must stop.
const COMMAND_POLL: Duration = Duration::from_millis(5);

/// keepalived's virtual server for service `index`'s `check`, on `vip`.
pub fn virtual_server(
    scenario: &Scenario,
    index: usize,
    vip: std::net::Ipv4Addr,
    check: &HealthCheck,
) -> VirtualServerConfig {
    let svc = &scenario.services[index];
    let real_servers = check
        .real_servers
        .iter()
        .filter_map(|c| {
            let rs = scenario.real_server(&c.name)?;
            let (addr, check_at) = names::checked_dest(scenario, index, rs);
            // Each checker connects where keepalived's would (`connect_port` in a fwmark service).
            let checkers = c
                .checker
                .iter()
                .cloned()
                .map(|(kind, mut settings)| {
                    settings.connect_to = Some(settings.connect_to.unwrap_or(check_at));
                    (kind, settings)
                })
                .collect();
            Some(RealServerConfig {
                addr,
                weight: rs.weight,
                inhibit_on_failure: c.inhibit_on_failure,
                checkers,
            })
        })
        .collect();
    let mut config = VirtualServerConfig::new(names::vs_name(scenario, index, vip), svc.protocol, real_servers);
    if svc.fwmark.is_some() {
        config.proto = None;
    }
    config.delay_loop = check.delay_loop;
    config.quorum = check.quorum;
    config.hysteresis = check.hysteresis;
    config.omega = check.omega;
    config.sorry_server = check
        .sorry_server
        .as_ref()
        .map(|s| SocketAddr::V4(names::sorry_dest(scenario, index, s)));
    config.sorry_server_inhibit = check.sorry_server_inhibit;
    config
}

/// Service `index`'s servers by their destination in its table, the sorry server too.
fn server_names(scenario: &Scenario, index: usize, check: &HealthCheck) -> HashMap<SocketAddr, String> {
    let svc = &scenario.services[index];
    let mut names: HashMap<SocketAddr, String> = scenario
        .real_servers
        .iter()
        .filter(|r| svc.has_real_server(&r.name))
        .map(|r| (names::checked_dest(scenario, index, r).0, r.name.clone()))
        .collect();
    if let Some(s) = &check.sorry_server {
        names
            .entry(SocketAddr::V4(names::sorry_dest(scenario, index, s)))
            .or_insert_with(|| "sorry server".into());
    }
    names
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
