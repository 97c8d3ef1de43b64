//! One scenario, end to end: lab up → servers → director engine → traffic → verdict → teardown.
//!
//! The lab is torn down whatever happens in between: on success and error here, and by
//! `Lab`'s Drop on panic or when the future is dropped (Ctrl-C).

mod events;
mod failover;
mod health;
mod outages;
mod outcome;
mod plan;
mod progress;
mod services;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

pub use events::FiredEvent;
pub use failover::{Failover, VrrpLogLine, VrrpOutcome, VrrpTransition};
pub use health::{HealthFailure, HealthLine, HealthOutcome, HealthTableChange, ServerHealth};
pub use outages::Outage;
pub use outcome::RunOutcome;
pub use plan::{lab_plan, TUN_DEVICE};
pub use services::ServiceSpread;

use crate::director::{self, DirectorConfig, EmbeddedEngine, Engine, VipGate};
use crate::ha::{Ha, Implementation, VipHold};
use crate::investigate;
use crate::ipvs;
use crate::lab::{Lab, LabError, LabOptions};
use crate::observe;
use crate::realserver::{self, Behaviour, Decap, RunningServer, ServerSpec};
use crate::report::Timeline;
use crate::scenario::{
    CheckersChoice, ConnectionMode, Director, EngineChoice, Mode, Protocol, Scenario, ServerState, VrrpChoice,
};
use crate::tally::Tally;
use crate::traffic::{self, RequestError, RequestRecord, TrafficSpec};
use crate::verdict;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the scenario's `engine`.
    pub engine: Option<EngineChoice>,
    /// Draw a progress bar on stderr (only after the run has lasted a second).
    pub progress: bool,
    /// When to gather evidence and diagnose before the lab goes down.
    pub diagnose: DiagnoseWhen,
    /// Wait, after the traffic, until the director's counters are exact before taking its
    /// table (kernel IPVS folds them every 2 s): for views that show them (`--show-ipvs`).
    pub settle_stats: bool,
    /// On the kernel engine, also capture the real `ipvsadm`'s views of the table at the
    /// moment lvslab's own snapshot is taken (`lvslab conform`).
    pub witness: bool,
    /// Overrides the scenario's `vrrp`.
    pub vrrp: Option<VrrpChoice>,
    /// Overrides the scenario's `checkers`.
    pub checkers: Option<CheckersChoice>,
}

/// When a run investigates why the spread is what it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiagnoseWhen {
    /// When an expectation fails or the scenario expects a diagnosis (quick settings).
    #[default]
    Auto,
    /// Always, thoroughly (`lvslab diagnose`).
    Always,
    Never,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("lab: {0}")]
    Lab(#[from] LabError),
    #[error("real server: {0}")]
    Server(#[from] realserver::ServerError),
    #[error("director: {0}")]
    Director(#[from] director::DirectorError),
    /// `engine = "kernel"` where the director's namespace has no IPVS.
    #[error("engine = \"kernel\" but this kernel has no IPVS (no genetlink family IPVS in the director's namespace); use engine = \"auto\" or \"embedded\"")]
    NoKernelIpvs,
    /// A director's configuration asked of a `direct` scenario, which has none.
    #[error("direct mode has no director")]
    NoDirector,
    /// A host of the scenario that the lab does not have (a lab built from another plan).
    #[error("host {0} is in the scenario but not in the lab")]
    MissingHost(String),
    #[error("vrrp: {0}")]
    Ha(crate::ha::HaError),
    /// keepalived's checkers asked for where they cannot run, or failing to start.
    #[error("checkers: {0}")]
    Checkers(String),
    /// `--capture`: a socket, a file or the capture's index.
    #[error("capture: {0}")]
    Capture(String),
}

/// Builds the lab, runs the traffic and always tears the lab down.
pub async fn run(scenario: &Scenario, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    run_capturing(scenario, opts, None).await
}

/// As [`run`], with every interface and segment captured into `<capture>/<scenario>/`
/// (`--capture`) from before the servers start until the traffic is over; the outcome then
/// carries the capture's files and the paths of the report's requests.
pub async fn run_capturing(
    scenario: &Scenario,
    opts: &RunOptions,
    capture: Option<&std::path::Path>,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let keep = LabOptions::default();
    let plan = lab_plan(scenario);
    let lab = Lab::build(&plan, keep).await?;
    let bring_up = started.elapsed();
    // On error the lab's Drop tears it down.
    let mut capture_timings = outcome::CaptureTimings::default();
    let capturing = match capture {
        Some(dir) => {
            let t = Instant::now();
            let c = crate::capture::Capture::start(&lab, &plan, &dir.join(&scenario.name))
                .await
                .map_err(|e| RunError::Capture(e.to_string()))?;
            capture_timings.start_ms = ms(t.elapsed());
            Some(c)
        }
        None => None,
    };
    let result = run_in_lab(scenario, opts, &lab).await;
    let stop_started = Instant::now();
    let captured = capturing.map(crate::capture::Capture::stop);
    capture_timings.stop_ms = ms(stop_started.elapsed());
    let teardown_started = Instant::now();
    let torn = lab.teardown().await;
    let teardown = teardown_started.elapsed();
    let mut outcome = result?;
    torn?;
    if let Some(summary) = captured {
        let summary = summary.map_err(|e| RunError::Capture(e.to_string()))?;
        let t = Instant::now();
        let report =
            crate::trace::CaptureReport::write(&scenario.name, scenario.service().protocol, summary, &outcome.records)
                .map_err(RunError::Capture)?;
        capture_timings.report_ms = ms(t.elapsed());
        outcome.capture = Some(report);
        outcome.timings.capture = Some(capture_timings);
    }
    outcome.timings.bring_up_ms = ms(bring_up);
    outcome.timings.teardown_ms = ms(teardown);
    outcome.timings.total_ms = ms(started.elapsed());
    Ok(outcome)
}

/// Everything between bring-up and teardown. Servers and engine stop before returning.
pub async fn run_in_lab(scenario: &Scenario, opts: &RunOptions, lab: &Lab) -> Result<RunOutcome, RunError> {
    let engine = opts.engine.unwrap_or(scenario.engine);
    let checkers = opts.checkers.unwrap_or(scenario.checkers);
    let mut held = Held::start_with_choices(scenario, lab, engine, opts.vrrp, checkers).await?;
    let result = traffic_and_verdict(scenario, opts, lab, &mut held).await;
    let mut shutdown = Ok(());
    for (_, e) in std::mem::take(&mut held.engines) {
        shutdown = shutdown.and(e.shutdown());
    }
    held.stop().await;
    shutdown?;
    result
}

/// Traffic, verdict and (when wanted) the investigation, with servers and engine running.
async fn traffic_and_verdict(
    scenario: &Scenario,
    opts: &RunOptions,
    lab: &Lab,
    held: &mut Held,
) -> Result<RunOutcome, RunError> {
    // Counters before the traffic, so the evidence shows what the run changed.
    let baseline = match opts.diagnose {
        DiagnoseWhen::Never => None,
        _ => Some(investigate::Baseline::take(scenario, lab).await),
    };
    let counters = match baseline {
        Some(_) => vip_counters(scenario, lab).await,
        None => None,
    };
    // keepalived's checkers: from startup, through the traffic, stopped before the tables are read.
    let mut checkers = health::Checkers::start(
        scenario,
        lab,
        &mut held.engines,
        &held.checker_daemons,
        held.killed.clone(),
    );
    if let Some(session) = checkers.as_mut() {
        if scenario.checked_services().any(|(_, _, h)| h.traffic_waits_for_checks) {
            session
                .first_checks(&mut held.engines, health::Session::first_checks_bound(scenario))
                .await;
        }
    }
    // VRRP directors: the traffic starts once a master holds the VIP, as a client would find it.
    let elected = match &held.ha {
        Some(ha) => ha.wait_for_master(crate::ha::Ha::election_bound(scenario)).await,
        None => false,
    };
    // Taken before the traffic: an event may kill the engine.
    let engine_kind = held.engines.first().map(|(_, e)| e.kind());
    let traffic_started = Instant::now();
    // Events fire beside the traffic, following its count of requests sent and its clock; the
    // checkers keep checking meanwhile. Both change what `held` holds, one at a time.
    let (sent_tx, sent_rx) = tokio::sync::watch::channel(0u64);
    let (finished_tx, finished_rx) = tokio::sync::oneshot::channel();
    let shared = std::cell::RefCell::new(&mut *held);
    let traffic = async {
        let records = fire_traffic(scenario, lab, opts.progress, traffic_started, sent_tx).await;
        let _ = finished_tx.send(());
        records
    };
    let checked_traffic = async {
        match checkers.as_mut() {
            Some(session) => session.during(&shared, traffic).await,
            None => traffic.await,
        }
    };
    let progress = events::Progress {
        start: traffic_started,
        sent: sent_rx,
        finished: finished_rx,
    };
    let (records, fired) = futures::join!(checked_traffic, events::drive(scenario, lab, &shared, progress));
    let traffic_elapsed = traffic_started.elapsed();
    let health = match checkers {
        Some(c) => Some(c.stop(traffic_started).await),
        None => None,
    };
    let vrrp = held.ha.as_mut().map(|ha| {
        ha.collect_logs();
        failover::outcome(scenario, ha, traffic_started, elected, &fired, &records)
    });
    connections_closed(scenario, lab).await;
    let director_seen_packets = counters.and_then(|c| {
        c.iter()
            .map(|c| c.read().ok())
            .sum::<Option<u64>>()
            .filter(|_| !c.is_empty())
    });

    let mut directors = Vec::new();
    // By name: a director killed during the run has no engine left.
    for (name, engine) in held.engines.iter() {
        let Some(d) = scenario.directors.iter().find(|d| d.name == *name) else {
            continue;
        };
        if opts.settle_stats || opts.witness {
            engine.settle_stats();
        }
        let mut ipvs = engine.snapshot()?;
        let mut witness = None;
        let mut mark_rules = None;
        if let (true, director::EngineKind::Kernel) = (opts.witness, engine.kind()) {
            let host = lab.host(&d.name).ok_or_else(|| missing_host(&d.name))?;
            if scenario.services.iter().any(|s| s.fwmark.is_some()) {
                mark_rules = Some(host.exec(observe::mark_rules).await?);
            }
            // The same moment: a table that moved while ipvsadm ran (a neighbour giving up
            // seconds after the traffic, say) is read again, a few times at most.
            for attempt in 1..=WITNESS_ATTEMPTS {
                let views = host.exec(observe::ipvsadm_views).await?;
                let after = engine.snapshot()?;
                let still = table_counts(&after) == table_counts(&ipvs);
                ipvs = after;
                witness = Some(views);
                if still || attempt == WITNESS_ATTEMPTS {
                    break;
                }
                engine.settle_stats();
                ipvs = engine.snapshot()?;
            }
        }
        directors.push(outcome::DirectorOutcome {
            name: name.clone(),
            vip: d.vip,
            ipvs,
            engine_stats: engine.stats(),
            witness,
            mark_rules,
        });
    }
    // The first director stands for the service in `ipvs`/`engine_stats` and in the evidence.
    let ipvs_snapshot = directors.first().map(|d| d.ipvs.clone());
    let engine_stats = directors.first().map(|d| d.engine_stats.clone());

    let tally = tally(scenario.real_servers.iter().map(|r| r.name.as_str()), &records);
    let mut verdict = verdict::evaluate(&scenario.expect, &scenario.real_servers, &tally, &records);
    verdict.checks.extend(services::checks(scenario, &records));
    let services = services::spreads(scenario, &records);
    verdict.checks.extend(health::checks(scenario, health.as_ref()));
    let outages = health
        .as_ref()
        .map(|h| outages::outages(scenario, &fired, h, &records))
        .unwrap_or_default();
    verdict.checks.extend(outages::checks(scenario, &outages));
    verdict.checks.extend(events::checks(
        &scenario.expect_events,
        &scenario.events,
        &fired,
        &records,
    ));
    verdict
        .checks
        .extend(failover::checks(&scenario.expect_events, vrrp.as_ref()));
    verdict.passed = verdict.checks.iter().all(|c| c.passed);
    let timeline = (!scenario.events.is_empty() || scenario.traffic.rate.is_some()).then(|| {
        let backends: Vec<&str> = scenario.real_servers.iter().map(|r| r.name.as_str()).collect();
        let mut marks = fired.clone();
        marks.extend(vrrp.iter().flat_map(failover::marks));
        marks.sort_by_key(|m| m.done_ms);
        Timeline::build(&records, &backends, &marks, traffic_elapsed)
    });

    let settings = match opts.diagnose {
        DiagnoseWhen::Always => Some(investigate::Settings::THOROUGH),
        DiagnoseWhen::Auto if !verdict.passed || !scenario.expect.diagnosis.is_empty() => {
            Some(investigate::Settings::QUICK)
        }
        _ => None,
    };
    let investigate_started = Instant::now();
    let investigation = match settings {
        Some(settings) => {
            let tables: Vec<(String, Ipv4Addr, &crate::ipvs::IpvsSnapshot)> =
                directors.iter().map(|d| (d.name.clone(), d.vip, &d.ipvs)).collect();
            let facts = investigate::RunFacts {
                directors: &tables,
                records: &records,
                health: health.as_ref(),
                fired: &fired,
                outages: &outages,
                vrrp: vrrp.as_ref(),
                ipvs: ipvs_snapshot.as_ref(),
                director_seen_packets,
                settings: scenario
                    .director()
                    .filter(|_| !held.engines.is_empty())
                    .map(|d| d.engine_sysctls),
            };
            let found = investigate::investigate(scenario, lab, baseline.as_ref(), facts, settings).await;
            verdict.checks.extend(investigate::diagnosis_checks(
                &scenario.expect.diagnosis,
                &found.diagnosis,
            ));
            verdict.passed = verdict.checks.iter().all(|c| c.passed);
            Some(found)
        }
        None => None,
    };
    let investigate_ms = investigation.as_ref().map(|_| ms(investigate_started.elapsed()));
    let (diagnosis, evidence, problems) = match investigation {
        Some(i) => (Some(i.diagnosis), Some(i.evidence), i.problems),
        None => (None, None, Vec::new()),
    };
    let destinations =
        (!scenario.traffic.destinations.is_empty()).then(|| crate::locality::DestinationTally::of(&records));
    Ok(RunOutcome {
        destinations,
        scenario: scenario.name.clone(),
        mode: scenario.service().mode,
        engine: engine_kind,
        tally,
        services,
        records,
        verdict,
        ipvs: ipvs_snapshot,
        engine_stats,
        directors,
        diagnosis,
        evidence,
        investigation_problems: problems,
        health,
        timeline,
        outages,
        vrrp,
        timings: outcome::Timings {
            traffic_ms: ms(traffic_elapsed),
            investigate_ms,
            ..Default::default()
        },
        capture: None,
    })
}

/// Waits (bounded) until the clients' TCP connections to the service have closed far enough
/// that their last packets passed the director: a request is answered before its
/// connection's FIN has crossed, and the director's table is read right after the traffic.
async fn connections_closed(scenario: &Scenario, lab: &Lab) {
    if scenario.service().protocol != Protocol::Tcp {
        return;
    }
    let mut peers: Vec<std::net::IpAddr> = scenario.directors.iter().map(|d| d.vip.into()).collect();
    peers.extend(scenario.real_servers.iter().map(|r| std::net::IpAddr::from(r.address)));
    let deadline = Instant::now() + CLOSE_WAIT_BOUND;
    for client in &scenario.traffic.clients {
        let Some(host) = lab.host(&client.name) else { continue };
        loop {
            let name = client.name.clone();
            let peers = peers.clone();
            match host.exec(move || observe::tcp_in_flight(&name, &peers)).await {
                Ok(Ok(0) | Err(_)) | Err(_) => break,
                Ok(Ok(_)) if Instant::now() >= deadline => break,
                Ok(Ok(_)) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }
}

/// What must not move while the real ipvsadm reads the table: every counter and connection
/// count. Rates are left out: they decay at every estimator run, and ipvsadm's are masked.
fn table_counts(ipvs: &ipvs::IpvsSnapshot) -> Vec<(ipvs::Counters, u32, u32, u32)> {
    ipvs.services
        .iter()
        .flat_map(|s| {
            std::iter::once((s.stats, 0, 0, 0)).chain(
                s.dests
                    .iter()
                    .map(|d| (d.stats, d.weight, d.active_conns, d.inact_conns)),
            )
        })
        .collect()
}

/// Reads of the real ipvsadm beside lvslab's snapshot before taking what it got.
const WITNESS_ATTEMPTS: usize = 3;

/// A connection whose server died keeps retransmitting its FIN for minutes: the run does not
/// wait for those.
const CLOSE_WAIT_BOUND: Duration = Duration::from_secs(2);

/// The director's interface on `addr`'s network (its first interface otherwise).
fn iface_towards(host: &crate::scenario::Host, addr: Ipv4Addr) -> String {
    host.interfaces
        .iter()
        .find(|i| i.address.contains(&addr))
        .or(host.interfaces.first())
        .map(|i| i.name.clone())
        .unwrap_or_else(|| "eth0".into())
}

/// One harness-side counter of frames for its VIP per director, on its client-facing
/// interface, opened before the traffic. The count is evidence only: without it the run
/// goes on, and says why it has none.
async fn vip_counters(scenario: &Scenario, lab: &Lab) -> Option<Vec<observe::VipCounter>> {
    let mut out = Vec::new();
    for d in &scenario.directors {
        let (Some(host), Some(director_host)) = (lab.host(&d.name), scenario.host(&d.name)) else {
            return no_frame_count(d, &missing_host(&d.name));
        };
        let iface = iface_towards(director_host, d.vip);
        let vip = d.vip;
        match host.exec(move || observe::VipCounter::open(&iface, vip)).await {
            Ok(Ok(counter)) => out.push(counter),
            Ok(Err(e)) => return no_frame_count(d, &e),
            Err(e) => return no_frame_count(d, &e),
        }
    }
    Some(out)
}

fn no_frame_count<T>(director: &Director, why: &dyn std::fmt::Display) -> Option<T> {
    eprintln!(
        "lvslab: cannot count frames for {} on {} (the diagnosis goes without): {why}",
        director.vip, director.name
    );
    None
}

/// The lab's services running: real servers listening, the directors' engines forwarding and,
/// with a `[vrrp_instance]`, their VRRP nodes holding the VIP.
pub struct Held {
    servers: Vec<RunningServer>,
    decaps: Vec<Decap>,
    /// One engine per director, with the director's name, in scenario order.
    engines: Vec<(String, Box<dyn Engine>)>,
    /// The engine choice the engines were started with (a director started again takes it too).
    engine_choice: EngineChoice,
    /// With VRRP: each director's VIP gate, shared by its engine and its VRRP node.
    gates: Vec<(String, VipGate)>,
    ha: Option<Ha>,
    /// Who runs the checkers (`checkers`, resolved against the engines that run).
    checkers_choice: CheckersChoice,
    /// With keepalived's checkers: each checked director's `keepalived -C`, which owns the
    /// first service in its kernel IPVS.
    checker_daemons: Vec<(String, crate::keepalived::Daemon)>,
    /// Directors an event killed, until one starts them again: their checkers are dead.
    killed: health::Killed,
    /// A stopped embedded director's VIPs, put on its kernel until it starts again: what a
    /// kernel director keeps once its IPVS services are gone, so both refuse alike.
    standing_vips: Vec<(String, String, ipnet::Ipv4Net)>,
    /// How many times an event started each director's engine again (the checkers follow).
    restarts: std::collections::HashMap<String, u32>,
}

impl Held {
    /// With the scenario's own engine choice (`lvslab up`).
    pub async fn start(scenario: &Scenario, lab: &Lab) -> Result<Held, RunError> {
        Held::start_with(scenario, lab, scenario.engine).await
    }

    pub async fn start_with(scenario: &Scenario, lab: &Lab, engine: EngineChoice) -> Result<Held, RunError> {
        Held::start_with_vrrp(scenario, lab, engine, None).await
    }

    /// `vrrp` overrides the scenario's `vrrp` choice.
    pub async fn start_with_vrrp(
        scenario: &Scenario,
        lab: &Lab,
        engine: EngineChoice,
        vrrp: Option<VrrpChoice>,
    ) -> Result<Held, RunError> {
        Held::start_with_choices(scenario, lab, engine, vrrp, scenario.checkers).await
    }

    /// With keepalived's checkers (`checkers` resolving to keepalived), each checked
    /// director's engine attaches to the service its `keepalived -C` creates.
    pub async fn start_with_choices(
        scenario: &Scenario,
        lab: &Lab,
        engine: EngineChoice,
        vrrp: Option<VrrpChoice>,
        checkers: CheckersChoice,
    ) -> Result<Held, RunError> {
        let (servers, decaps) = start_servers(scenario, lab).await?;
        let gates = match &scenario.vrrp {
            Some(v) => scenario
                .directors
                .iter()
                .map(|d| {
                    let no_accept = v.node(&d.name).is_some_and(|n| n.no_accept());
                    let gate = if no_accept {
                        VipGate::no_accept()
                    } else {
                        VipGate::default()
                    };
                    // NAT pair: replies are rewritten only while the gateway is held here.
                    (d.name.clone(), gate.with_gateway(v.gateway))
                })
                .collect(),
            None => Vec::new(),
        };
        let mut held = Held {
            servers,
            decaps,
            engines: Vec::new(),
            engine_choice: engine,
            gates,
            ha: None,
            checkers_choice: checkers,
            checker_daemons: Vec::new(),
            killed: health::Killed::default(),
            standing_vips: Vec::new(),
            restarts: std::collections::HashMap::new(),
        };
        for director in &scenario.directors {
            match held.start_engine(scenario, director, lab).await {
                Ok(()) => {}
                Err(e) => {
                    held.stop().await;
                    return Err(e);
                }
            }
        }
        for director in health::checked_directors(scenario) {
            if held.checks_with_keepalived(scenario, &director, lab).await? != Implementation::Keepalived {
                continue;
            }
            match health::start_keepalived(scenario, lab, &director, None).await {
                Ok(daemon) => held.checker_daemons.push((director, daemon)),
                Err(e) => {
                    held.stop().await;
                    return Err(RunError::Checkers(e));
                }
            }
        }
        if let Some(v) = &scenario.vrrp {
            let implementation = Implementation::choose(vrrp.unwrap_or(v.choice));
            let started = match held.vip_holds(scenario, lab) {
                Ok(holds) => Ha::start(scenario, lab, holds, implementation)
                    .await
                    .map_err(RunError::Ha),
                Err(e) => Err(e),
            };
            match started {
                Ok(ha) => held.ha = Some(ha),
                Err(e) => {
                    held.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(held)
    }

    /// Who runs `director`'s checkers; an error where `checkers = "keepalived"` cannot be.
    async fn checks_with_keepalived(
        &self,
        scenario: &Scenario,
        director: &str,
        lab: &Lab,
    ) -> Result<Implementation, RunError> {
        if !health::checked_directors(scenario).iter().any(|d| d == director) {
            return Ok(Implementation::Embedded);
        }
        let kernel = match self.engines.iter().find(|(d, _)| d == director) {
            Some((_, e)) => e.kind() == director::EngineKind::Kernel,
            None => {
                let host = lab.host(director).ok_or_else(|| missing_host(director))?;
                use_kernel(
                    scenario,
                    self.engine_choice,
                    host.exec(director::kernel_has_ipvs).await?,
                )?
            }
        };
        health::implementation(scenario, self.checkers_choice, kernel).map_err(RunError::Checkers)
    }

    /// Starts `director`'s engine (again, after a kill or stop) with its VIP gate; attached to
    /// keepalived's service when keepalived runs its checkers.
    async fn start_engine(&mut self, scenario: &Scenario, director: &Director, lab: &Lab) -> Result<(), RunError> {
        let gate = self.gate(&director.name);
        let attach = self.checks_with_keepalived(scenario, &director.name, lab).await? == Implementation::Keepalived;
        let engine = start_engine(scenario, director, lab, self.engine_choice, gate, attach).await?;
        self.engines.retain(|(name, _)| *name != director.name);
        self.engines.push((director.name.clone(), engine));
        Ok(())
    }

    fn gate(&self, director: &str) -> Option<VipGate> {
        self.gates.iter().find(|(d, _)| d == director).map(|(_, g)| g.clone())
    }

    /// How each VRRP director holds the VIP: the embedded engine's gate, or kernel IPVS's
    /// local address on the instance's interface.
    /// One hold per instance of the director (the VIP's, then the gateway's).
    fn vip_holds(&self, scenario: &Scenario, lab: &Lab) -> Result<Vec<(String, Vec<VipHold>)>, RunError> {
        let Some(vrrp) = &scenario.vrrp else {
            return Ok(Vec::new());
        };
        let mut holds = Vec::new();
        for node in &vrrp.nodes {
            let kind = self
                .engines
                .iter()
                .find(|(d, _)| *d == node.director)
                .map(|(_, e)| e.kind());
            let mut interfaces = vec![node.instance.interface.clone()];
            interfaces.extend(node.gateway.iter().map(|g| g.instance.interface.clone()));
            let mut per_instance = Vec::new();
            for interface in interfaces {
                let hold = match (kind, self.gate(&node.director)) {
                    (Some(director::EngineKind::Embedded), Some(gate)) => VipHold::Gate(gate),
                    _ => {
                        let host = lab.host(&node.director).ok_or_else(|| missing_host(&node.director))?;
                        VipHold::Address(host.addresses_of(&interface)?)
                    }
                };
                per_instance.push(hold);
            }
            holds.push((node.director.clone(), per_instance));
        }
        Ok(holds)
    }

    /// Each director's running engine, by name (`lvslab ipvsadm` on a kept lab).
    pub fn engines_mut(&mut self) -> &mut [(String, Box<dyn Engine>)] {
        &mut self.engines
    }

    pub async fn stop(mut self) {
        if let Some(ha) = self.ha.take() {
            ha.shutdown().await;
        }
        // keepalived deletes the services it made (lvslab's attached engines do not).
        for (name, mut daemon) in std::mem::take(&mut self.checker_daemons) {
            if let Err(e) = daemon.stop().await {
                eprintln!("lvslab: director {name} keepalived checkers stop: {e}");
            }
        }
        for (name, e) in std::mem::take(&mut self.engines) {
            if let Err(err) = e.shutdown() {
                eprintln!("lvslab: director {name} engine shutdown: {err}");
            }
        }
        for server in self.servers {
            server.stop().await;
        }
        for decap in self.decaps {
            decap.stop().await;
        }
    }
}

/// Every real server's listener (and TUN decapsulator) started at once: one at a time, each
/// waits for a wake-up of its namespace's thread, which at 1000 servers cost over a second.
async fn start_servers(scenario: &Scenario, lab: &Lab) -> Result<(Vec<RunningServer>, Vec<Decap>), RunError> {
    let starting = scenario.real_servers.iter().map(|rs| async move {
        let host = lab.host(&rs.name).ok_or_else(|| missing_host(&rs.name))?;
        // A decapsulator for a server of any tun service.
        let in_tun = scenario
            .services
            .iter()
            .any(|s| s.mode == Mode::Tun && s.has_real_server(&rs.name));
        let tun = in_tun.then(|| host.take_tun(TUN_DEVICE)).flatten();
        let decap = match tun {
            Some(tun) => Some(realserver::start_decap(host.runtime(), tun).await?),
            None => None,
        };
        let behaviour = match rs.state {
            ServerState::Up => Behaviour::Up,
            ServerState::Slow => Behaviour::Slow(rs.delay),
            ServerState::Error => Behaviour::Error,
            ServerState::Refuse => Behaviour::Refuse,
            ServerState::Down => return Ok::<_, RunError>((Vec::new(), decap)),
        };
        let mut listeners = Vec::new();
        for (port, proto) in scenario.listeners(rs) {
            let spec = ServerSpec {
                name: rs.name.clone(),
                bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                proto,
                behaviour,
            };
            listeners.push(realserver::start(host.runtime(), spec).await?);
        }
        Ok((listeners, decap))
    });
    let (started, decaps): (Vec<_>, Vec<_>) = futures::future::try_join_all(starting).await?.into_iter().unzip();
    Ok((
        started.into_iter().flatten().collect(),
        decaps.into_iter().flatten().collect(),
    ))
}

async fn start_engine(
    scenario: &Scenario,
    director: &Director,
    lab: &Lab,
    choice: EngineChoice,
    gate: Option<VipGate>,
    attach: bool,
) -> Result<Box<dyn Engine>, RunError> {
    let host = lab.host(&director.name).ok_or_else(|| missing_host(&director.name))?;
    let kernel_has_ipvs = host.exec(director::kernel_has_ipvs).await?;
    let use_kernel = use_kernel(scenario, choice, kernel_has_ipvs)?;
    let mut config = director_config(scenario, director)?;
    config.vip_gate = gate;
    // Both engines: the kernel's IPVS reads the marks, the embedded engine applies the same
    // rules itself, and the diagnosis reads them back from nft either way.
    if !config.marks.is_empty() {
        let script = crate::nft::mark::script(&config.marks);
        host.exec(move || crate::nft::load(&script)).await?.map_err(|e| {
            RunError::Director(director::DirectorError::Config(format!(
                "fwmark rules on {}: {e}",
                director.name
            )))
        })?;
    }
    if use_kernel {
        // keepalived's checkers own every checked service: created by its virtual_servers.
        let attached: Vec<director::ServiceKey> = match attach {
            true => scenario
                .checked_services()
                .map(|(i, svc, _)| svc.key_on(scenario.service_vip(i, director)))
                .collect(),
            false => Vec::new(),
        };
        let engine = director::kernel::KernelEngine::start_attached(host, &config, &attached).await?;
        return Ok(Box::new(engine));
    }
    let engine = EmbeddedEngine::start(host, config)?;
    Ok(Box::new(engine))
}

/// Whether the director runs kernel IPVS under `choice`, where the kernel has it or not.
fn use_kernel(scenario: &Scenario, choice: EngineChoice, kernel_has_ipvs: bool) -> Result<bool, RunError> {
    let fullnat = scenario.services.iter().any(|s| s.mode == Mode::FullNat);
    // Kernel IPVS leaves checksums unfinished for the real servers to see only through a tunnel.
    let partial_checksums = scenario.services.iter().any(|s| s.mode != Mode::Tun)
        && scenario.directors.iter().any(|d| !d.complete_checksums);
    Ok(match choice {
        EngineChoice::Kernel if !kernel_has_ipvs => return Err(RunError::NoKernelIpvs),
        EngineChoice::Kernel => true,
        // FULLNAT is not in mainline IPVS, nor is forwarding partial checksums in DR or NAT:
        // only the embedded engine has them.
        EngineChoice::Auto => kernel_has_ipvs && !fullnat && !partial_checksums,
        EngineChoice::Embedded => false,
    })
}

/// The services as `director`'s engine takes them (what `ipvsadm -A` / `-a` would say), on its own VIP.
pub fn director_config(scenario: &Scenario, director: &Director) -> Result<DirectorConfig, RunError> {
    let host = scenario
        .host(&director.name)
        .ok_or_else(|| missing_host(&director.name))?;
    if scenario.service().mode.forward().is_none() {
        return Err(RunError::NoDirector);
    }
    let services = scenario
        .services
        .iter()
        .enumerate()
        .map(|(index, svc)| {
            // Each destination forwards by its own service's method (`ipvsadm -a -g/-m/-i`).
            let forward = svc.mode.forward().ok_or(RunError::NoDirector)?;
            let service = ipvs::ServiceConfig {
                vip: scenario.service_vip(index, director),
                port: if svc.fwmark.is_some() { 0 } else { svc.port },
                proto: svc.protocol,
                scheduler: svc.scheduler,
                flags: svc.flags.iter().copied().collect(),
                persistence: svc.persistence,
                persistence_netmask: svc.persistence_netmask(),
                one_packet: svc.one_packet,
                fwmark: svc.fwmark.as_ref().map_or(0, |m| m.mark),
            };
            let dests = scenario
                .real_servers
                .iter()
                .filter(|rs| svc.has_real_server(&rs.name))
                // A sorry server joins the table only when the checkers lose quorum.
                .filter(|rs| !svc.health.as_ref().is_some_and(|h| h.is_sorry(&rs.name)))
                .map(|rs| ipvs::DestConfig {
                    addr: rs.address,
                    // fwmark real servers have port 0: each packet keeps its own.
                    port: if svc.fwmark.is_some() {
                        0
                    } else {
                        scenario.real_port(index, rs)
                    },
                    weight: rs.weight,
                    forward,
                    upper_threshold: 0,
                    lower_threshold: 0,
                })
                .collect();
            Ok((service, dests))
        })
        .collect::<Result<_, RunError>>()?;
    let client_iface = iface_towards(host, director.vip);
    // The real servers' side: a nat/fullnat server's network where there is one (dr/tun
    // servers may share the clients'); the engines send each packet on the server's own link.
    let behind = |rs: &&crate::scenario::RealServer| {
        scenario
            .services
            .iter()
            .any(|s| s.mode.forward().is_some_and(|f| f.sees_replies()) && s.has_real_server(&rs.name))
    };
    let server_iface = scenario
        .real_servers
        .iter()
        .find(behind)
        .or(scenario.real_servers.first())
        .map(|rs| iface_towards(host, rs.address))
        .unwrap_or(client_iface.clone());
    Ok(DirectorConfig {
        services,
        sysctls: director.engine_sysctls,
        client_iface,
        server_iface,
        fullnat_local_addrs: director.local_address.into_iter().collect(),
        vip_gate: None,
        marks: scenario.services.iter().filter_map(|s| s.fwmark.clone()).collect(),
        complete_checksums: director.complete_checksums,
    })
}

async fn fire_traffic(
    scenario: &Scenario,
    lab: &Lab,
    progress: bool,
    start: Instant,
    sent: tokio::sync::watch::Sender<u64>,
) -> Vec<RequestRecord> {
    let t = &scenario.traffic;
    // Several services, several directors, destinations: the client round-robins over them.
    let targets: Vec<SocketAddr> = crate::locality::targets(scenario);
    let proto = scenario.services[t.services.first().copied().unwrap_or(0)].protocol;
    let total = t.requests as u64 * t.clients.len() as u64;
    let bar = progress.then(|| progress::Bar::start(total));
    let mut runs = Vec::new();
    let senders = t.clients.len() as u32;
    // One buffer for every request: cloning `Bytes` shares it.
    let body = bytes::Bytes::from(vec![b'x'; t.body_bytes as usize]);
    for (index, client) in t.clients.iter().enumerate() {
        let Some(host) = lab.host(&client.name) else { continue };
        let schedule = traffic::Schedule {
            start,
            pacing: t
                .rate
                .map(|rate| traffic::Pacing::share_of(rate, senders, index as u32)),
            stop_after: t.duration,
            sent: Some(sent.clone()),
        };
        let spec = TrafficSpec {
            targets: targets.clone(),
            proto,
            requests: t.requests,
            mode: match t.connection {
                ConnectionMode::New => traffic::ConnectionMode::New,
                ConnectionMode::Keepalive => traffic::ConnectionMode::KeepAlive,
            },
            concurrency: t.concurrency,
            sources: client.sources.clone(),
            source_port: t.source_port,
            timeout: t.timeout,
            path: t.path.to_string(),
            client: client.name.clone(),
            body: body.clone(),
        };
        let rt = host.runtime().clone();
        let tick = bar.as_ref().map(|b| b.sender());
        runs.push(async move { traffic::fire_scheduled(&rt, spec, schedule, tick).await });
    }
    // Only the clients' schedules hold the count now: it closes when they are done.
    drop(sent);
    let per_client = futures::future::join_all(runs).await;
    if let Some(bar) = bar {
        bar.finish();
    }
    interleave(per_client)
}

/// Request i of every client, then request i+1: the order in which they were (roughly) sent.
fn interleave(per_client: Vec<Vec<RequestRecord>>) -> Vec<RequestRecord> {
    let longest = per_client.iter().map(Vec::len).max().unwrap_or(0);
    let mut iters: Vec<_> = per_client.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    for _ in 0..longest {
        for it in &mut iters {
            out.extend(it.next());
        }
    }
    out
}

/// A short label to count errors by: "other" errors carry free text that would make a row each.
/// Answers per backend (every one of `known` shown, even with none) and errors per kind.
fn tally<'a, 'r>(
    known: impl IntoIterator<Item = &'a str>,
    records: impl IntoIterator<Item = &'r RequestRecord>,
) -> Tally {
    let mut tally = Tally::new(known);
    for record in records {
        match (&record.backend, &record.error) {
            (Some(b), None) => tally.add_answer(b),
            (_, Some(e)) => tally.add_error(&error_kind(e)),
            (None, None) => tally.add_error("no backend named"),
        }
    }
    tally
}

fn error_kind(e: &RequestError) -> String {
    match e {
        RequestError::Other(_) => "other error".to_owned(),
        e => e.to_string(),
    }
}

fn missing_host(name: &str) -> RunError {
    RunError::MissingHost(name.to_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod engine_choice_tests {
    use super::*;

    fn scenario(mode: &str) -> Scenario {
        let text = format!(
            "[service]\nmode = \"{mode}\"\n[director]\ncomplete_checksums = false\n[[real_server]]\nname = \"rs1\"\n"
        );
        crate::scenario::parse(&text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")))
    }

    #[test]
    fn auto_runs_unfinished_checksums_on_the_kernel_through_a_tunnel_only() {
        assert!(use_kernel(&scenario("tun"), EngineChoice::Auto, true).unwrap());
        assert!(!use_kernel(&scenario("dr"), EngineChoice::Auto, true).unwrap());
        assert!(!use_kernel(&scenario("nat"), EngineChoice::Auto, true).unwrap());
        assert!(!use_kernel(&scenario("tun"), EngineChoice::Auto, false).unwrap());
    }
}
