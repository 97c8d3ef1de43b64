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
pub mod no_accept;

use std::time::{Duration, Instant};

pub use embedded::{EmbeddedNode, MemberSpec, NodeSpec, ScriptSpec, VipHold};
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
    crate::keepalived::installed()
}

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("director {director}: {why}")]
    Node { director: String, why: String },
    #[error("vrrp = \"keepalived\" but keepalived is not installed (apt-get install keepalived), or use vrrp = \"embedded\"")]
    NoKeepalived,
}

/// One director's VRRP: lvslab's own node, or the real keepalived.
enum Node {
    Embedded(EmbeddedNode),
    Keepalived(Box<crate::keepalived::Daemon>),
}

impl Node {
    fn state(&self) -> Option<State> {
        match self {
            Node::Embedded(n) => Some(n.state()),
            // The VIP instance's: the first to report (keepalived notifies in config order).
            Node::Keepalived(d) => d.first_instance_state(),
        }
    }
}

/// A director's node and what it needs to start again.
struct Slot {
    director: String,
    /// How each instance's addresses are held: the VIP's, then the gateway's.
    holds: Vec<VipHold>,
    implementation: Implementation,
    node: Option<Node>,
    /// keepalived's log lines already copied into the journal.
    copied: usize,
}

/// The run's VRRP nodes.
pub struct Ha {
    implementation: Implementation,
    journal: Journal,
    slots: Vec<Slot>,
}

impl Ha {
    /// Starts one node per director of the scenario's instance; `holds` gives, per director,
    /// how each instance's addresses are held (from the engine it runs).
    pub async fn start(
        scenario: &Scenario,
        lab: &Lab,
        holds: Vec<(String, Vec<VipHold>)>,
        implementation: Implementation,
    ) -> Result<Ha, HaError> {
        let own_choice = |director: &str| {
            scenario
                .vrrp
                .as_ref()
                .and_then(|v| v.node(director))
                .and_then(|n| n.choice)
                .map(Implementation::choose)
        };
        let slots: Vec<Slot> = holds
            .into_iter()
            .map(|(director, holds)| Slot {
                implementation: own_choice(&director).unwrap_or(implementation),
                director,
                holds,
                node: None,
                copied: 0,
            })
            .collect();
        if slots.iter().any(|s| s.implementation == Implementation::Keepalived) && !keepalived_installed() {
            return Err(HaError::NoKeepalived);
        }
        let mut ha = Ha {
            implementation,
            journal: Journal::default(),
            slots,
        };
        let directors: Vec<String> = ha.slots.iter().map(|s| s.director.clone()).collect();
        for director in directors {
            ha.start_node(scenario, lab, &director).await?;
        }
        Ok(ha)
    }

    /// The run's implementation: `keepalived` or `embedded` (a director may say otherwise:
    /// [`Ha::implementations`]).
    pub fn implementation(&self) -> Implementation {
        self.implementation
    }

    /// Each director's implementation, in scenario order.
    pub fn implementations(&self) -> Vec<(String, Implementation)> {
        self.slots
            .iter()
            .map(|s| (s.director.clone(), s.implementation))
            .collect()
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
        let dir = lab.host_dir(director).map_err(|e| fail(e.to_string()))?;
        let member_tracks = node_cfg.member_tracks();
        let scripts = node_cfg
            .track_names()
            .iter()
            .filter_map(|t| match t {
                VrrpTrack::Script(name, _) => vrrp.script(name).map(|s| ScriptSpec {
                    tracks: following(&member_tracks, name),
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
        if slot.implementation == Implementation::Keepalived {
            let daemon = start_keepalived(scenario, host, &dir, slot, &self.journal)
                .await
                .map_err(fail)?;
            slot.node = Some(Node::Keepalived(Box::new(daemon)));
            return Ok(());
        }
        let mut members = Vec::new();
        let peers = node_cfg.member_peers();
        for (k, instance) in node_cfg.instance_configs(&vrrp.scripts).into_iter().enumerate() {
            let iface = host
                .iface(&instance.interface)
                .ok_or_else(|| fail(format!("no interface {}", instance.interface)))?;
            let hold = slot
                .holds
                .get(k)
                .cloned()
                .ok_or_else(|| fail(format!("no address hold for {}", instance.name)))?;
            members.push(MemberSpec {
                ifindex: iface.index,
                mac: iface.mac,
                unicast_peers: peers.get(k).cloned().unwrap_or_default(),
                hold,
                instance,
            });
        }
        let spec = NodeSpec {
            director: director.to_string(),
            members,
            sync_group: vrrp.sync_group.clone(),
            scripts,
            no_accept: node_cfg.no_accept(),
        };
        let node = EmbeddedNode::start(host.runtime(), spec, self.journal.clone())
            .await
            .map_err(fail)?;
        slot.node = Some(Node::Embedded(node));
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
            .filter(|s| s.node.as_ref().is_some_and(|n| n.state() == Some(State::Master)))
            .map(|s| s.director.clone())
            .collect()
    }

    fn slot(&mut self, director: &str) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.director == director)
    }

    /// Power cut: the node stops sending at once.
    pub async fn kill(&mut self, director: &str) {
        let journal = self.journal.clone();
        let Some(slot) = self.slot(director) else { return };
        match slot.node.take() {
            Some(Node::Embedded(mut n)) => n.kill().await,
            Some(Node::Keepalived(mut d)) => {
                d.kill();
                slot.copy_log(&d, &journal);
            }
            None => {}
        }
    }

    /// Graceful stop: priority 0, VIP removed.
    pub async fn stop(&mut self, director: &str) {
        let journal = self.journal.clone();
        let Some(slot) = self.slot(director) else { return };
        match slot.node.take() {
            Some(Node::Embedded(mut n)) => n.stop().await,
            Some(Node::Keepalived(mut d)) => {
                if let Err(e) = d.stop().await {
                    journal.add(director, What::Log(format!("lvslab: keepalived stop: {e}")));
                }
                slot.copy_log(&d, &journal);
            }
            None => {}
        }
    }

    pub fn freeze(&mut self, director: &str) -> Result<(), String> {
        match self.slot(director).and_then(|s| s.node.as_ref()) {
            Some(Node::Embedded(n)) => {
                n.freeze();
                Ok(())
            }
            Some(Node::Keepalived(d)) => d.freeze().map_err(|e| e.to_string()),
            None => Err(format!("{director} runs no VRRP node (killed or stopped)")),
        }
    }

    pub fn thaw(&mut self, director: &str) -> Result<(), String> {
        match self.slot(director).and_then(|s| s.node.as_ref()) {
            Some(Node::Embedded(n)) => {
                n.thaw();
                Ok(())
            }
            Some(Node::Keepalived(d)) => d.thaw().map_err(|e| e.to_string()),
            None => Err(format!("{director} runs no VRRP node (killed or stopped)")),
        }
    }

    /// Copies the running daemons' new log lines into the journal (lvslab's own nodes write
    /// there directly).
    pub fn collect_logs(&mut self) {
        let journal = self.journal.clone();
        for slot in &mut self.slots {
            if let Some(Node::Keepalived(d)) = &slot.node {
                copy_log(&slot.director, &mut slot.copied, d, &journal);
            }
        }
    }

    /// A director's interface went up or down: the tracks that follow it hear so.
    pub fn link(&mut self, scenario: &Scenario, director: &str, iface: &str, up: bool) {
        let Some(node_cfg) = scenario.vrrp.as_ref().and_then(|v| v.node(director)) else {
            return;
        };
        let members = node_cfg.member_tracks();
        // keepalived watches its interfaces over netlink itself.
        if let Some(Node::Embedded(node)) = self.slot(director).and_then(|s| s.node.as_ref()) {
            for (member, tracks) in members.iter().enumerate() {
                for (index, track) in tracks.iter().enumerate() {
                    if matches!(track, VrrpTrack::Interface(name, _) if name == iface) {
                        node.track(member, index, up);
                    }
                }
            }
        }
    }

    /// Every node stops as keepalived does on SIGTERM.
    pub async fn shutdown(mut self) {
        let directors: Vec<String> = self.slots.iter().map(|s| s.director.clone()).collect();
        for director in directors {
            self.stop(&director).await;
        }
    }
}

/// Every (member, index) of a track of script `name`.
fn following(member_tracks: &[Vec<VrrpTrack>], name: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (member, tracks) in member_tracks.iter().enumerate() {
        for (index, track) in tracks.iter().enumerate() {
            if matches!(track, VrrpTrack::Script(n, _) if n == name) {
                out.push((member, index));
            }
        }
    }
    out
}

impl Slot {
    fn copy_log(&mut self, daemon: &crate::keepalived::Daemon, journal: &Journal) {
        copy_log(&self.director, &mut self.copied, daemon, journal);
    }
}

/// keepalived's log lines past the `copied` first, into the journal.
fn copy_log(director: &str, copied: &mut usize, daemon: &crate::keepalived::Daemon, journal: &Journal) {
    let log = daemon.log();
    for (at, line) in log.iter().skip(*copied) {
        journal.add_at(*at, director, What::Log(line.clone()));
    }
    *copied = log.len();
}

/// The real keepalived for `slot`'s director: its config written from the scenario, checked,
/// started VRRP-only in the director's namespace; its FIFO's transitions go to the journal,
/// and with the embedded engine they open and close the engine's VIP gate.
async fn start_keepalived(
    scenario: &Scenario,
    host: &crate::lab::Host,
    dir: &std::path::Path,
    slot: &mut Slot,
    journal: &Journal,
) -> Result<crate::keepalived::Daemon, String> {
    use crate::keepalived::{self, Daemon, Mode, Transition};
    // Each instance's name and addresses: the VIP's first (its state is the director's).
    let instances: Vec<(String, Vec<std::net::Ipv4Addr>)> = scenario
        .vrrp
        .as_ref()
        .and_then(|v| v.node(&slot.director))
        .map(|n| {
            let mut out = vec![(n.instance.name.clone(), n.instance.vips.clone())];
            if let Some(gw) = &n.gateway {
                out.push((gw.instance.name.clone(), gw.instance.vips.clone()));
            }
            out
        })
        .unwrap_or_default();
    let vip_instance = instances.first().map(|(name, _)| name.clone()).unwrap_or_default();
    let all: Vec<std::net::Ipv4Addr> = instances.iter().flat_map(|(_, a)| a.clone()).collect();
    if let Some(VipHold::Gate(_)) = slot.holds.first() {
        // keepalived makes the VIP and the gateway local addresses; the embedded engine stands
        // where kernel IPVS would take its packets, so the director's own stack must not
        // answer them.
        let rules = vip_drop_rules(&all);
        host.exec(move || adverts::nft(&rules))
            .await
            .map_err(|e| e.to_string())??;
    }
    let conf = keepalived::config(scenario, &slot.director, dir, Mode::VrrpOnly).map_err(|e| e.to_string())?;
    let director = slot.director.clone();
    let journal = journal.clone();
    let gate = match slot.holds.first() {
        Some(VipHold::Gate(g)) => Some(g.clone()),
        _ => None,
    };
    let last = std::sync::Mutex::new(State::Init);
    let on_transition = std::sync::Arc::new(move |t: &Transition| {
        let addresses = instances.iter().find(|(name, _)| *name == t.instance).map(|(_, a)| a);
        if let (Some(gate), Some(addresses)) = (&gate, addresses) {
            for a in addresses {
                gate.set(*a, t.state == State::Master);
            }
        }
        if t.instance != vip_instance {
            let line = format!(
                "notify_fifo: INSTANCE \"{}\" {} {}",
                t.instance,
                t.state.word(),
                t.priority
            );
            journal.add_at(t.at, &director, What::Log(line));
            return;
        }
        let from = std::mem::replace(&mut *last.lock().unwrap_or_else(|p| p.into_inner()), t.state);
        journal.add_at(
            t.at,
            &director,
            What::Transition {
                from,
                to: t.state,
                priority: t.priority,
            },
        );
    });
    slot.copied = 0;
    Daemon::start(host, dir, &conf, Mode::VrrpOnly, on_transition)
        .await
        .map_err(|e| e.to_string())
}

/// nftables rules that drop, in the director's own stack, what is addressed to `vips`.
fn vip_drop_rules(vips: &[std::net::Ipv4Addr]) -> String {
    let set: Vec<String> = vips.iter().map(|v| v.to_string()).collect();
    format!(
        "table ip lvslab_engine_vip {{}}\n\
         delete table ip lvslab_engine_vip\n\
         table ip lvslab_engine_vip {{\n\
         \x20 chain input {{ type filter hook input priority filter - 5; policy accept; ip daddr {{ {} }} drop; }}\n\
         }}\n",
        set.join(", ")
    )
}

/// How often the start waits look at the nodes' states.
const MASTER_POLL: Duration = Duration::from_millis(5);
/// Beyond the slowest down timer: the first advert and the VIP setup.
const ELECTION_MARGIN: Duration = Duration::from_secs(2);
