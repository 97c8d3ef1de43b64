//! A virtual server's pool as keepalived's checker process keeps it: which real
//! servers are alive and in the table, the quorum state and the sorry server
//! (check/ipwrapper.c), and the IPVS command each change turns into
//! (`ipvs_cmd`, check/ipvswrapper.c).

use std::net::SocketAddr;

use super::checker::{CheckerState, ServerHost};
use super::service::{Trio, VsName};
use super::{HealthEvent, TableAction, TableOp};

/// keepalived's `IPVS_WEIGHT_LIMIT`: weights are clamped to 0..=INT32_MAX (`real_weight`).
const WEIGHT_LIMIT: i64 = i32::MAX as i64;

fn real_weight(weight: i64) -> u32 {
    weight.clamp(0, WEIGHT_LIMIT) as u32
}

/// A real (or sorry) server's `real_server_t` state.
#[derive(Clone, Debug)]
pub(crate) struct Server {
    pub trio: Trio,
    /// `rs->effective_weight`.
    pub weight: i64,
    /// `rs->iweight`: the configured weight.
    pub initial_weight: i64,
    /// `inhibit_on_failure` (for the sorry server: `sorry_server_inhibit`).
    pub inhibit: bool,
    /// In service as far as the checkers know (`rs->alive`).
    pub alive: bool,
    /// Present in the IPVS table (`rs->set`).
    pub set: bool,
    pub num_failed_checkers: u32,
    sorry: bool,
}

impl Server {
    pub fn new(trio: Trio, weight: i64, inhibit: bool, sorry: bool) -> Server {
        Server {
            trio,
            weight,
            initial_weight: weight,
            inhibit,
            alive: false,
            set: false,
            num_failed_checkers: 0,
            sorry,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    AddDest,
    DelDest,
}

pub(crate) struct Pool {
    pub vs: VsName,
    pub quorum: u32,
    pub hysteresis: u32,
    pub omega: bool,
    pub quorum_state_up: bool,
    pub servers: Vec<Server>,
    pub sorry: Option<Server>,
}

/// One real server of a pool, as its checkers see it.
pub(crate) struct PoolServer<'a> {
    pub pool: &'a mut Pool,
    pub index: usize,
}

impl ServerHost for PoolServer<'_> {
    fn update_state(&mut self, state: &mut CheckerState, alive: bool, out: &mut Vec<HealthEvent>) {
        self.pool.update_checker_state(self.index, state, alive, out);
    }

    fn initial_weight(&self) -> i64 {
        self.pool.servers[self.index].initial_weight
    }

    fn effective_weight(&self) -> i64 {
        self.pool.servers[self.index].weight
    }

    fn change_weight(&mut self, weight: i64, out: &mut Vec<HealthEvent>) {
        self.pool.change_weight(self.index, weight, out);
    }

    fn store_weight(&mut self, weight: i64) {
        self.pool.servers[self.index].weight = weight;
    }
}

impl Pool {
    /// `validate_check_config`'s quorum fix-ups, with keepalived's warnings.
    pub fn normalise_quorum(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        let total: i64 = self.servers.iter().map(|s| i64::from(real_weight(s.weight))).sum();
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        if self.quorum > total {
            warnings.push(format!(
                "Warning - quorum {} for {} exceeds total weight of real servers {total}, reducing quorum to {total}",
                self.quorum, self.vs
            ));
            self.quorum = total;
        }
        if self.hysteresis >= self.quorum {
            let fixed = self.quorum.saturating_sub(1);
            warnings.push(format!(
                "Virtual server {}: hysteresis {} >= quorum {}; setting hysteresis to {fixed}",
                self.vs, self.hysteresis, self.quorum
            ));
            self.hysteresis = fixed;
        }
        warnings
    }

    fn live_weight(&self) -> i64 {
        self.servers
            .iter()
            .filter(|s| s.alive)
            .map(|s| i64::from(real_weight(s.weight)))
            .sum()
    }

    /// `ipvs_cmd`: inhibited servers are edited to weight 0 instead of removed.
    fn ipvs_cmd(server: &mut Server, cmd: Cmd, out: &mut Vec<HealthEvent>) {
        let op = match cmd {
            Cmd::DelDest if server.inhibit => Some(TableOp::SetWeight { weight: 0 }),
            Cmd::AddDest if server.inhibit && server.set => Some(TableOp::SetWeight {
                weight: real_weight(server.weight),
            }),
            Cmd::AddDest if !server.set => {
                server.set = true;
                let failed = server.inhibit && server.num_failed_checkers > 0;
                Some(TableOp::Add {
                    weight: if failed { 0 } else { real_weight(server.weight) },
                })
            }
            Cmd::DelDest if server.set => {
                server.set = false;
                Some(TableOp::Remove)
            }
            // Already in (or already out of) the table: the kernel would refuse it.
            Cmd::AddDest | Cmd::DelDest => None,
        };
        if let Some(op) = op {
            out.push(HealthEvent::Table(TableAction {
                dest: server.trio.addr,
                sorry: server.sorry,
                op,
            }));
        }
    }

    fn rs_notify(&self, index: usize, out: &mut Vec<HealthEvent>) {
        let server = &self.servers[index];
        let state = if server.alive { "UP" } else { "DOWN" };
        let fifo = format!("RS {} {} {state}", server.trio, self.vs);
        out.push(HealthEvent::RealServer {
            rs: server.trio.addr,
            up: server.alive,
            fifo,
        });
    }

    fn vs_notify(&self, out: &mut Vec<HealthEvent>) {
        let state = if self.quorum_state_up { "UP" } else { "DOWN" };
        out.push(HealthEvent::Quorum {
            up: self.quorum_state_up,
            fifo: format!("VS {} {state}", self.vs),
        });
    }

    /// `set_quorum_states` then `init_service_vs` at startup. Checkers have already
    /// counted their alpha failures into `num_failed_checkers`.
    pub fn init(&mut self, out: &mut Vec<HealthEvent>) {
        // set_quorum_states runs before any server is alive, so a live pool "gains" quorum at start.
        self.quorum_state_up = self.live_weight() >= i64::from(self.quorum + self.hysteresis);
        for server in &mut self.servers {
            // init_service_rs: alpha keeps a server out unless inhibit_on_failure adds it at weight 0.
            if (server.num_failed_checkers == 0 && !server.alive) || (server.inhibit && !server.set) {
                Self::ipvs_cmd(server, Cmd::AddDest, out);
                if server.num_failed_checkers == 0 {
                    server.alive = true;
                }
            }
        }
        self.update_quorum_state(true, out);
        if let Some(sorry) = self.sorry.as_mut() {
            if sorry.inhibit && !sorry.set {
                // "Make sure the sorry server is configured with weight 0".
                sorry.num_failed_checkers = 1;
                Self::ipvs_cmd(sorry, Cmd::AddDest, out);
                sorry.num_failed_checkers = 0;
            }
        }
    }

    /// `update_svr_checker_state`: a checker of server `index` goes up or down.
    pub fn update_checker_state(
        &mut self,
        index: usize,
        checker: &mut CheckerState,
        alive: bool,
        out: &mut Vec<HealthEvent>,
    ) {
        if checker.is_up == alive {
            if !checker.has_run {
                // First result agrees with the initial state: only the notify (alpha or a failure).
                if !alive {
                    self.rs_notify(index, out);
                }
                checker.has_run = true;
            }
            return;
        }
        checker.has_run = true;
        let failed = self.servers[index].num_failed_checkers;
        if (alive && failed <= 1) || (!alive && failed == 0) {
            self.perform_svr_state(index, alive, out);
        }
        // set_checker_state
        checker.is_up = alive;
        let server = &mut self.servers[index];
        if !alive {
            server.num_failed_checkers += 1;
        } else {
            server.num_failed_checkers = server.num_failed_checkers.saturating_sub(1);
        }
    }

    /// `perform_svr_state`: logs the change, updates the table unless the sorry server
    /// holds the pool, then re-evaluates quorum.
    fn perform_svr_state(&mut self, index: usize, alive: bool, out: &mut Vec<HealthEvent>) {
        let vs = self.vs.to_string();
        let server = &self.servers[index];
        if server.alive == alive {
            return;
        }
        let line = match (alive, server.inhibit) {
            (true, false) => format!("Adding service {} to VS {vs}", server.trio),
            (true, true) => format!("Enabling service {} of VS {vs}", server.trio),
            (false, false) => format!("Removing service {} from VS {vs}", server.trio),
            (false, true) => format!("Disabling service {} of VS {vs}", server.trio),
        };
        out.push(HealthEvent::Log(line));
        // Change the table only with quorum or without a sorry server in place.
        let sorry_in_place = self.sorry.as_ref().is_some_and(|s| s.alive);
        if self.quorum_state_up || !sorry_in_place {
            let cmd = if alive { Cmd::AddDest } else { Cmd::DelDest };
            Self::ipvs_cmd(&mut self.servers[index], cmd, out);
        }
        self.servers[index].alive = alive;
        self.rs_notify(index, out);
        self.update_quorum_state(false, out);
    }

    /// `update_svr_wgt(.., true)`: a new effective weight, edited into the table only while the
    /// server is in it and serving.
    pub fn change_weight(&mut self, index: usize, weight: i64, out: &mut Vec<HealthEvent>) {
        let vs = self.vs.to_string();
        let sorry_in_place = self.sorry.as_ref().is_some_and(|s| s.alive);
        let quorum_up = self.quorum_state_up;
        let server = &mut self.servers[index];
        let (old, new) = (real_weight(server.weight), real_weight(weight));
        server.weight = weight;
        if old == new {
            return;
        }
        let inactive = if server.alive { "" } else { "in" };
        out.push(HealthEvent::Log(format!(
            "Changing weight from {old} to {new} for {inactive}active service {} of VS {vs}",
            server.trio
        )));
        if server.set && server.alive && (quorum_up || !sorry_in_place) {
            let dest = server.trio.addr;
            out.push(HealthEvent::Table(TableAction {
                dest,
                sorry: false,
                op: TableOp::SetWeight { weight: new },
            }));
        }
        self.update_quorum_state(false, out);
    }

    /// `perform_quorum_state`: puts every alive server back, or takes them all out.
    fn perform_quorum_state(&mut self, add: bool, out: &mut Vec<HealthEvent>) {
        let verb = if add {
            "Adding alive servers to"
        } else {
            "Removing alive servers from"
        };
        out.push(HealthEvent::Log(format!("{verb} the pool for VS {}", self.vs)));
        for server in self.servers.iter_mut().filter(|s| s.alive) {
            Self::ipvs_cmd(server, if add { Cmd::AddDest } else { Cmd::DelDest }, out);
        }
    }

    /// `update_quorum_state`, with its log wording: the threshold is quorum ∓ hysteresis
    /// depending on the current state, and the "lost" line prints `-` even at start.
    fn update_quorum_state(&mut self, init: bool, out: &mut Vec<HealthEvent>) {
        let weight_sum = self.live_weight();
        let (q, h) = (i64::from(self.quorum), i64::from(self.hysteresis));
        let threshold = if self.quorum_state_up { q - h } else { q + h };
        let sorry_alive = self.sorry.as_ref().map(|s| s.alive);
        if !self.quorum_state_up && weight_sum >= threshold {
            self.quorum_state_up = true;
            out.push(HealthEvent::Log(format!(
                "Gained quorum {}+{}={threshold} <= {weight_sum} for VS {}",
                self.quorum, self.hysteresis, self.vs
            )));
            if sorry_alive == Some(true) {
                let vs = self.vs.to_string();
                let sorry = self.sorry.as_mut().expect("checked above");
                let verb = if sorry.inhibit { "Disabling" } else { "Removing" };
                out.push(HealthEvent::Log(format!(
                    "{verb} sorry server {} from VS {vs}",
                    sorry.trio
                )));
                Self::ipvs_cmd(sorry, Cmd::DelDest, out);
                sorry.alive = false;
                self.perform_quorum_state(true, out);
            }
            self.vs_notify(out);
        } else if (self.quorum_state_up && (weight_sum == 0 || weight_sum < threshold))
            || (init && !self.quorum_state_up && sorry_alive == Some(false))
        {
            self.quorum_state_up = false;
            let what = if init {
                "Starting with quorum down"
            } else {
                "Lost quorum"
            };
            out.push(HealthEvent::Log(format!(
                "{what} {}-{}={threshold} > {weight_sum} for VS {}",
                self.quorum, self.hysteresis, self.vs
            )));
            if sorry_alive == Some(false) {
                let vs = self.vs.to_string();
                let sorry = self.sorry.as_ref().expect("checked above");
                let verb = if sorry.inhibit { "Enabling" } else { "Adding" };
                out.push(HealthEvent::Log(format!(
                    "{verb} sorry server {} to VS {vs}",
                    sorry.trio
                )));
                self.perform_quorum_state(false, out);
                let sorry = self.sorry.as_mut().expect("checked above");
                Self::ipvs_cmd(sorry, Cmd::AddDest, out);
                sorry.alive = true;
            }
            self.vs_notify(out);
        }
    }

    /// `clear_services` on stop (default `lvs_flush_on_stop` off): every server is shut down.
    pub fn shutdown(&mut self, out: &mut Vec<HealthEvent>) {
        let vs = self.vs.to_string();
        if let Some(sorry) = self.sorry.as_mut() {
            if sorry.set {
                sorry.inhibit = false;
                Self::ipvs_cmd(sorry, Cmd::DelDest, out);
            }
            sorry.alive = false;
        }
        for index in 0..self.servers.len() {
            let server = &mut self.servers[index];
            let inhibited = if server.inhibit && !server.alive {
                "(inhibited) "
            } else {
                ""
            };
            out.push(HealthEvent::Log(format!(
                "Shutting down {inhibited}service {} from VS {vs}",
                server.trio
            )));
            if !server.set {
                continue;
            }
            // Forced removal even with inhibit_on_failure.
            let inhibit = std::mem::replace(&mut server.inhibit, false);
            Self::ipvs_cmd(server, Cmd::DelDest, out);
            server.inhibit = inhibit;
            if !server.alive {
                continue;
            }
            server.alive = false;
            // Only omega runs the down notifiers on the way out.
            if self.omega {
                self.rs_notify(index, out);
            }
        }
        // update_vs_notifies(stopping): quorum goes down, notified only with omega.
        self.quorum_state_up = false;
        if self.omega {
            self.vs_notify(out);
        }
    }

    pub fn server_addr(&self, index: usize) -> SocketAddr {
        self.servers[index].trio.addr
    }
}
