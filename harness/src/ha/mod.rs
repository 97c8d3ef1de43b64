//! The keepalived half of a run's directors: one VRRP node per director of a
//! `[vrrp_instance]`, either lvslab's own ([`embedded`]) or the real keepalived, holding the
//! VIP the way the director's engine needs (the embedded engine's gate, or a kernel address
//! for kernel IPVS), and the faults a scenario inflicts on them (kill, graceful stop, restart,
//! freeze, blocked adverts, link changes).
//!
//! Every node writes into one [`Journal`]: keepalived's log lines and the transitions its
//! notify FIFO reports, with their times, from which the run measures its failovers.

pub mod adverts;
pub mod embedded;
pub mod journal;

use std::time::{Duration, Instant};

pub use embedded::{EmbeddedNode, NodeSpec, ScriptSpec, VipHold};
pub use journal::{Entry, Journal, What};

use crate::lab::Lab;
use crate::scenario::{Scenario, VrrpChoice, VrrpTrack};
use crate::vrrp::{master_down_interval, State};

/// Which implementation runs the directors' VRRP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Implementation {
    Embedded,
    Keepalived,
}

impl Implementation {
    /// `auto`: the real keepalived when it is installed.
    pub fn choose(choice: VrrpChoice) -> Implementation {
        match choice {
            VrrpChoice::Embedded => Implementation::Embedded,
            VrrpChoice::Keepalived => Implementation::Keepalived,
            VrrpChoice::Auto if keepalived_installed() => Implementation::Keepalived,
            VrrpChoice::Auto => Implementation::Embedded,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Implementation::Embedded => "embedded",
            Implementation::Keepalived => "keepalived",
        }
    }
}

fn keepalived_installed() -> bool {
    // Until the keepalived runner lands, the embedded node stands in for it.
    false
}

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("director {director}: {why}")]
    Node { director: String, why: String },
    #[error("vrrp = \"keepalived\" but keepalived is not installed (apt-get install keepalived), or use vrrp = \"embedded\"")]
    NoKeepalived,
}

/// A director's node and what it needs to start again.
struct Slot {
    director: String,
    hold: VipHold,
    node: Option<EmbeddedNode>,
}

/// The run's VRRP nodes.
pub struct Ha {
    implementation: Implementation,
    journal: Journal,
    slots: Vec<Slot>,
}

impl Ha {
    /// Starts one node per director of the scenario's instance; `holds` gives, per director,
    /// how its VIP is held (from the engine it runs).
    pub async fn start(
        scenario: &Scenario,
        lab: &Lab,
        holds: Vec<(String, VipHold)>,
        implementation: Implementation,
    ) -> Result<Ha, HaError> {
        if implementation == Implementation::Keepalived && !keepalived_installed() {
            return Err(HaError::NoKeepalived);
        }
        let mut ha = Ha {
            implementation,
            journal: Journal::default(),
            slots: holds
                .into_iter()
                .map(|(director, hold)| Slot {
                    director,
                    hold,
                    node: None,
                })
                .collect(),
        };
        let directors: Vec<String> = ha.slots.iter().map(|s| s.director.clone()).collect();
        for director in directors {
            ha.start_node(scenario, lab, &director).await?;
        }
        Ok(ha)
    }

    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Starts (or starts again) the node of `director`.
    pub async fn start_node(&mut self, scenario: &Scenario, lab: &Lab, director: &str) -> Result<(), HaError> {
        let fail = |why: String| HaError::Node {
            director: director.to_string(),
            why,
        };
        let vrrp = scenario
            .vrrp
            .as_ref()
            .ok_or_else(|| fail("the scenario has no VRRP".into()))?;
        let node_cfg = vrrp.node(director).ok_or_else(|| fail("no VRRP node".into()))?;
        let host = lab.host(director).ok_or_else(|| fail("not in the lab".into()))?;
        let iface = host
            .iface(&node_cfg.instance.interface)
            .ok_or_else(|| fail(format!("no interface {}", node_cfg.instance.interface)))?;
        let dir = lab.host_dir(director).map_err(|e| fail(e.to_string()))?;
        let instance = node_cfg.instance_config(&vrrp.scripts);
        let scripts = node_cfg
            .track_names()
            .iter()
            .enumerate()
            .filter_map(|(track, t)| match t {
                VrrpTrack::Script(name, _) => vrrp.script(name).map(|s| ScriptSpec {
                    track,
                    name: s.name.clone(),
                    command: s.command_in(&dir),
                    interval: s.interval,
                    timeout: s.timeout,
                    rise: s.rise,
                    fall: s.fall,
                    init_fail: s.init_fail,
                }),
                VrrpTrack::Interface(..) => None,
            })
            .collect();
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.director == director)
            .ok_or_else(|| fail("not a VRRP director".into()))?;
        let spec = NodeSpec {
            director: director.to_string(),
            instance,
            unicast_peers: node_cfg.unicast_peers.clone(),
            ifindex: iface.index,
            mac: iface.mac,
            hold: slot.hold.clone(),
            scripts,
        };
        let node = EmbeddedNode::start(host.runtime(), spec, self.journal.clone())
            .await
            .map_err(fail)?;
        slot.node = Some(node);
        Ok(())
    }

    /// Waits until some director is MASTER, within `bound`; false if none became master.
    pub async fn wait_for_master(&self, bound: Duration) -> bool {
        let deadline = Instant::now() + bound;
        loop {
            if !self.masters().is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(MASTER_POLL).await;
        }
    }

    /// How long an election may take at start: the slowest node's down timer, plus a margin.
    pub fn election_bound(scenario: &Scenario) -> Duration {
        let slowest = scenario
            .vrrp
            .iter()
            .flat_map(|v| &v.nodes)
            .map(|n| {
                let priority = n.instance.priority.unwrap_or(100);
                master_down_interval(
                    n.instance.version,
                    priority,
                    n.instance.advert_int,
                    n.instance.down_timer_adverts,
                ) + n.instance.preempt_delay
            })
            .max()
            .unwrap_or_default();
        slowest + ELECTION_MARGIN
    }

    /// Directors whose node runs and is MASTER now.
    pub fn masters(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter(|s| s.node.as_ref().is_some_and(|n| n.state() == State::Master))
            .map(|s| s.director.clone())
            .collect()
    }

    fn slot(&mut self, director: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.director == director)
    }

    /// Power cut: the node stops sending at once.
    pub async fn kill(&mut self, director: &str) {
        if let Some(mut node) = self.slot(director).and_then(|s| s.node.take()) {
            node.kill().await;
        }
    }

    /// Graceful stop: priority 0, VIP removed.
    pub async fn stop(&mut self, director: &str) {
        if let Some(mut node) = self.slot(director).and_then(|s| s.node.take()) {
            node.stop().await;
        }
    }

    pub fn freeze(&mut self, director: &str) -> Result<(), String> {
        self.with_node(director, EmbeddedNode::freeze)
    }

    pub fn thaw(&mut self, director: &str) -> Result<(), String> {
        self.with_node(director, EmbeddedNode::thaw)
    }

    /// A director's interface went up or down: the tracks that follow it hear so.
    pub fn link(&mut self, scenario: &Scenario, director: &str, iface: &str, up: bool) {
        let Some(node_cfg) = scenario.vrrp.as_ref().and_then(|v| v.node(director)) else {
            return;
        };
        let tracks = node_cfg.track_names();
        if let Some(node) = self.slot(director).and_then(|s| s.node.as_ref()) {
            for (index, track) in tracks.iter().enumerate() {
                if matches!(track, VrrpTrack::Interface(name, _) if name == iface) {
                    node.track(index, up);
                }
            }
        }
    }

    fn with_node(&mut self, director: &str, f: impl Fn(&EmbeddedNode)) -> Result<(), String> {
        match self.slot(director).and_then(|s| s.node.as_ref()) {
            Some(node) => {
                f(node);
                Ok(())
            }
            None => Err(format!("{director} runs no VRRP node (killed or stopped)")),
        }
    }

    /// Every node stops as keepalived does on SIGTERM.
    pub async fn shutdown(mut self) {
        for slot in &mut self.slots {
            if let Some(mut node) = slot.node.take() {
                node.stop().await;
            }
        }
    }
}

/// How often the start waits look at the nodes' states.
const MASTER_POLL: Duration = Duration::from_millis(5);
/// Beyond the slowest down timer: the first advert and the VIP setup.
const ELECTION_MARGIN: Duration = Duration::from_secs(2);
