//! The checker scheduler on a virtual clock: when each check starts, and what
//! its result does to the pool. One [`Monitor`] per virtual server.
//!
//! Startup follows `register_checkers_thread` (check/check_api.c): each checker
//! is "Activated" and its first attempt waits BOOTSTRAP_DELAY (1 s) plus a
//! random share of warmup, which the caller picks (seeded, for reproducible runs).

use std::net::SocketAddr;
use std::time::Duration;

use super::checker::Checker;
use super::pool::{Pool, PoolServer, Server};
use super::service::{Trio, VsName};
use super::settings::{CheckerKind, CheckerSettings, Url};
use super::{CheckOutcome, HealthEvent, HealthRecord, BOOTSTRAP_DELAY};
use crate::ipvs::Proto;

/// One real server and its checkers (none: it is never removed, §2.3).
#[derive(Clone, Debug)]
pub struct RealServerConfig {
    pub addr: SocketAddr,
    pub weight: u32,
    pub inhibit_on_failure: bool,
    pub checkers: Vec<(CheckerKind, CheckerSettings)>,
}

#[derive(Clone, Debug)]
pub struct VirtualServerConfig {
    pub name: VsName,
    /// The protocol real servers are printed with (`vs->service_type`; `None` for fwmark).
    pub proto: Option<Proto>,
    /// The VS-level delay_loop: MISC_CHECK's timeout when misc_timeout is unset.
    pub delay_loop: Duration,
    pub quorum: u32,
    pub hysteresis: u32,
    /// `omega`: run the down notifiers on shutdown too.
    pub omega: bool,
    pub sorry_server: Option<SocketAddr>,
    /// `sorry_server_inhibit`: the sorry server stays in the table at weight 0.
    pub sorry_server_inhibit: bool,
    pub real_servers: Vec<RealServerConfig>,
}

impl VirtualServerConfig {
    /// keepalived's defaults: quorum 1, hysteresis 0, no sorry server (`alloc_vs`).
    pub fn new(name: VsName, proto: Proto, real_servers: Vec<RealServerConfig>) -> VirtualServerConfig {
        VirtualServerConfig {
            name,
            proto: Some(proto),
            delay_loop: super::settings::DEFAULT_DELAY_LOOP,
            quorum: 1,
            hysteresis: 0,
            omega: false,
            sorry_server: None,
            sorry_server_inhibit: false,
            real_servers,
        }
    }
}

/// Names one checker of one monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId(pub usize);

/// What the caller must probe now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckTarget {
    Tcp {
        connect: SocketAddr,
        timeout: Duration,
    },
    Http {
        connect: SocketAddr,
        path: String,
        timeout: Duration,
    },
    Misc {
        command: String,
        timeout: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueCheck {
    pub id: CheckerId,
    pub real_server: SocketAddr,
    pub target: CheckTarget,
}

struct Slot {
    checker: Checker,
    server: usize,
    next_at: Option<Duration>,
    started_at: Option<Duration>,
}

pub struct Monitor {
    pool: Pool,
    slots: Vec<Slot>,
    /// The VS delay_loop, MISC's default timeout.
    vs_delay_loop: Duration,
}

impl Monitor {
    /// Builds the pool; returns keepalived's config warnings (quorum fix-ups) with it.
    pub fn new(config: &VirtualServerConfig) -> (Monitor, Vec<String>) {
        let vs_name = config.name.to_string();
        let mut servers = Vec::new();
        let mut slots = Vec::new();
        for (index, rs) in config.real_servers.iter().enumerate() {
            let trio = Trio {
                addr: rs.addr,
                proto: config.proto,
            };
            let mut server = Server::new(trio, i64::from(rs.weight), rs.inhibit_on_failure, false);
            for (kind, settings) in &rs.checkers {
                let checker = Checker::new(kind.clone(), settings.clone(), trio.to_string(), vs_name.clone());
                if !checker.state.is_up {
                    server.num_failed_checkers += 1;
                }
                slots.push(Slot {
                    checker,
                    server: index,
                    next_at: None,
                    started_at: None,
                });
            }
            servers.push(server);
        }
        let sorry = config.sorry_server.map(|addr| {
            Server::new(
                Trio {
                    addr,
                    proto: config.proto,
                },
                1,
                config.sorry_server_inhibit,
                true,
            )
        });
        let mut pool = Pool {
            vs: config.name.clone(),
            quorum: config.quorum,
            hysteresis: config.hysteresis,
            omega: config.omega,
            quorum_state_up: true,
            servers,
            sorry,
        };
        let warnings = pool.normalise_quorum();
        (
            Monitor {
                pool,
                slots,
                vs_delay_loop: config.delay_loop,
            },
            warnings,
        )
    }

    /// Installs the pool and schedules every first check. `warmup_pick(w)` returns a
    /// random delay in `0..=w` (keepalived: `warmup * random() / RAND_MAX`).
    pub fn start(&mut self, now: Duration, mut warmup_pick: impl FnMut(Duration) -> Duration) -> Vec<HealthRecord> {
        let mut out = Vec::new();
        self.pool.init(&mut out);
        for slot in &mut self.slots {
            let rs = self.pool.servers[slot.server].trio;
            out.push(HealthEvent::Log(format!(
                "Activating healthchecker for service {rs} for VS {}",
                self.pool.vs
            )));
            let warmup = slot.checker.settings.warmup;
            let pick = if warmup.is_zero() {
                Duration::ZERO
            } else {
                warmup_pick(warmup).min(warmup)
            };
            slot.next_at = Some(now + BOOTSTRAP_DELAY + pick);
        }
        stamp(now, out)
    }

    /// The earliest time a check is due, if any is waiting.
    pub fn next_due(&self) -> Option<Duration> {
        self.slots.iter().filter_map(|s| s.next_at).min()
    }

    /// Takes every check due at `now`; each must be answered with [`Monitor::finish`].
    pub fn take_due(&mut self, now: Duration) -> Vec<DueCheck> {
        let mut due = Vec::new();
        for (index, slot) in self.slots.iter_mut().enumerate() {
            if slot.next_at.is_some_and(|at| at <= now) {
                slot.next_at = None;
                slot.started_at = Some(now);
                let rs = self.pool.server_addr(slot.server);
                let settings = &slot.checker.settings;
                let connect = settings.connect_to.unwrap_or(rs);
                let timeout = settings.connect_timeout;
                let target = match &slot.checker.kind {
                    CheckerKind::Tcp => CheckTarget::Tcp { connect, timeout },
                    CheckerKind::Http(http) => {
                        let path = http
                            .urls
                            .get(slot.checker.current_url())
                            .map_or("/", |u| u.path.as_str());
                        CheckTarget::Http {
                            connect,
                            path: path.to_string(),
                            timeout,
                        }
                    }
                    CheckerKind::Misc(misc) => CheckTarget::Misc {
                        command: misc.command.clone(),
                        timeout: misc.timeout.unwrap_or(self.vs_delay_loop),
                    },
                };
                due.push(DueCheck {
                    id: CheckerId(index),
                    real_server: rs,
                    target,
                });
            }
        }
        due
    }

    /// Reports the outcome of a check taken with [`Monitor::take_due`], ended at `now`.
    /// An id that is not running is ignored (no records).
    pub fn finish(&mut self, id: CheckerId, outcome: &CheckOutcome, now: Duration) -> Vec<HealthRecord> {
        let Some(slot) = self.slots.get_mut(id.0) else {
            return Vec::new();
        };
        let Some(started) = slot.started_at.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let server = slot.server;
        let mut host = PoolServer {
            pool: &mut self.pool,
            index: server,
        };
        let next = slot.checker.complete(outcome, started, now, &mut out, &mut host);
        slot.next_at = Some(next);
        stamp(now, out)
    }

    /// Stops checking and takes every server out, as keepalived does on SIGTERM.
    pub fn shutdown(&mut self, now: Duration) -> Vec<HealthRecord> {
        for slot in &mut self.slots {
            slot.next_at = None;
            slot.started_at = None;
        }
        let mut out = Vec::new();
        self.pool.shutdown(&mut out);
        stamp(now, out)
    }

    /// The URL an HTTP check taken with [`Monitor::take_due`] must judge its answer by.
    pub fn http_url(&self, id: CheckerId) -> Option<&Url> {
        let slot = self.slots.get(id.0)?;
        match &slot.checker.kind {
            CheckerKind::Http(http) => http.urls.get(slot.checker.current_url()),
            _ => None,
        }
    }

    /// How many checkers the monitor runs (ids are `0..checker_count()`).
    pub fn checker_count(&self) -> usize {
        self.slots.len()
    }

    /// Whether the checkers count this real server as alive.
    pub fn is_alive(&self, rs: SocketAddr) -> Option<bool> {
        self.pool.servers.iter().find(|s| s.trio.addr == rs).map(|s| s.alive)
    }

    pub fn quorum_up(&self) -> bool {
        self.pool.quorum_state_up
    }
}

fn stamp(at: Duration, events: Vec<HealthEvent>) -> Vec<HealthRecord> {
    events.into_iter().map(|event| HealthRecord { at, event }).collect()
}
