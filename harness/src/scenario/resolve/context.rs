//! What the stages share: the raw file, the problems found so far, the networks with their
//! address plans, the addresses handed out, and one draft per host.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use super::address_plan::{Demand, Plan};
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Mode, Network, Role, VipOn};
use crate::scenario::raw::{RawClient, RawDirector, RawRealServer, RawRouter, RawScenario, RawSysctls, S};
use crate::wire::Mac;

pub(super) type Span = Option<Range<usize>>;

/// The clients' network: the first one, in every mode.
pub(super) const FRONT: usize = 0;

pub(super) struct Context<'r, 'p, 't> {
    pub raw: &'r RawScenario,
    pub p: &'p mut Problems<'t>,
    /// The topology's mode: nat when any service is, else fullnat when any is, else the
    /// first service's (which [`Context::modes`] refines per service and real server).
    pub mode: Mode,
    /// Each service's own mode, in file order.
    pub modes: Vec<Mode>,
    pub networks: Vec<Network>,
    /// The `subnet` span of each declared network; empty when the mode's defaults stand in.
    pub network_spans: Vec<Span>,
    /// The real servers' network: the second in nat and fullnat (when there is one), else [`FRONT`].
    pub server_net: usize,
    /// Clients, directors, real servers, routers: the order of `Scenario::hosts`.
    pub hosts: Vec<HostDraft<'r>>,
    /// One per network, once the hosts are known (a default network may have grown).
    pub plans: Vec<Plan>,
    /// What each network must hold, beside `plans`.
    pub demands: Vec<Demand>,
    /// Every address handed out so far, with its owner, so that no default lands on one taken.
    pub used: HashMap<Ipv4Addr, (String, Span)>,
    /// Every director's VIP and every service VIP (the service VIPs alone in `direct` mode); a
    /// real server holds those of its own dr/tun services (`hosts::finish`), in this order.
    pub vips: Vec<Ipv4Addr>,
    /// The directors share the service VIP over VRRP (`[vrrp_instance]`).
    pub vrrp: bool,
}

impl<'r, 'p, 't> Context<'r, 'p, 't> {
    pub fn new(raw: &'r RawScenario, p: &'p mut Problems<'t>, modes: Vec<Mode>) -> Self {
        let any = |m: Mode| modes.contains(&m);
        let mode = if any(Mode::Nat) {
            Mode::Nat
        } else if any(Mode::FullNat) {
            Mode::FullNat
        } else {
            modes.first().copied().unwrap_or(Mode::Dr)
        };
        Context {
            raw,
            p,
            mode,
            modes,
            networks: Vec::new(),
            network_spans: Vec::new(),
            server_net: FRONT,
            hosts: Vec::new(),
            plans: Vec::new(),
            demands: Vec::new(),
            used: HashMap::new(),
            vips: Vec::new(),
            vrrp: raw.has_vrrp(),
        }
    }

    /// Whether any service is in `mode`.
    pub fn any_mode(&self, mode: Mode) -> bool {
        self.modes.contains(&mode)
    }

    /// Whether service `index` (0 = `[service]`) lists the real server `name` (every one
    /// without `real_servers`); unknown names are `service::finish`'s to report.
    pub fn lists(&self, index: usize, name: &str) -> bool {
        let raw = match index {
            0 => Some(&self.raw.service),
            i => self.raw.more_services.get(i - 1),
        };
        raw.is_some_and(|s| {
            s.real_servers
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n.get_ref() == name))
        })
    }

    /// The modes of the services that list the real server `name`, each once, in file order.
    pub fn rs_modes(&self, name: &str) -> Vec<Mode> {
        let mut out = Vec::new();
        for (i, m) in self.modes.iter().enumerate() {
            if self.lists(i, name) && !out.contains(m) {
                out.push(*m);
            }
        }
        out
    }

    /// Whether the file declares its networks (else the mode's defaults, which may grow).
    pub fn declared_networks(&self) -> bool {
        !self.network_spans.is_empty()
    }

    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &HostDraft<'r>> {
        self.hosts.iter().filter(move |h| h.role() == role)
    }
}

/// A host as the file gives it, filled in stage by stage.
pub(super) struct HostDraft<'r> {
    pub name: String,
    pub name_span: Span,
    pub source: Source<'r>,
    pub ifaces: Vec<IfaceDraft>,
    pub gateway: Option<(Ipv4Addr, Span)>,
    /// Directors: the VIP it answers for (`vips` stage).
    pub vip: Option<(Ipv4Addr, Span)>,
    /// FULLNAT directors: the engine's source address on the real servers' network (`addresses` stage).
    pub local_address: Option<Ipv4Addr>,
    /// Real servers: how the host holds the VIP and answers ARP (`real_servers` stage).
    pub real_server: Option<RealServerHost>,
}

impl<'r> HostDraft<'r> {
    pub fn role(&self) -> Role {
        match self.source {
            Source::Client(_) => Role::Client,
            Source::Director(_) => Role::Director,
            Source::RealServer(_) => Role::RealServer,
            Source::Router(_) => Role::Router,
        }
    }

    /// The host's `sysctl` table in the file.
    pub fn sysctls(&self) -> Option<&RawSysctls> {
        match self.source {
            Source::Client(c) => c.and_then(|c| c.sysctl.as_ref()),
            Source::Director(d) => d.and_then(|d| d.sysctl.as_ref()),
            Source::RealServer(rs) => rs.sysctl.as_ref(),
            Source::Router(r) => r.sysctl.as_ref(),
        }
    }

    /// The host's `nftables` rules in the file.
    pub fn nftables(&self) -> Option<&'r S<String>> {
        match self.source {
            Source::Client(c) => c.and_then(|c| c.nftables.as_ref()),
            Source::Director(d) => d.and_then(|d| d.nftables.as_ref()),
            Source::RealServer(rs) => rs.nftables.as_ref(),
            Source::Router(r) => r.nftables.as_ref(),
        }
    }
}

/// The file's table a host comes from; `None` for a host that is there by default
/// (the client when there is no [[client]], the director when there is no [director]).
#[derive(Clone, Copy)]
pub(super) enum Source<'r> {
    Client(Option<&'r RawClient>),
    Director(Option<&'r RawDirector>),
    RealServer(&'r RawRealServer),
    Router(&'r RawRouter),
}

/// An interface: the file's address until the `addresses` stage fills the rest from the plan.
pub(super) struct IfaceDraft {
    pub network: usize,
    pub address: Option<Ipv4Addr>,
    pub address_span: Span,
    pub mac: Option<Mac>,
    /// The interface's own `mtu`.
    pub mtu: Option<u32>,
}

impl IfaceDraft {
    pub fn on(network: usize) -> Self {
        IfaceDraft {
            network,
            address: None,
            address_span: None,
            mac: None,
            mtu: None,
        }
    }
}

/// What a real server's host needs beyond its interfaces.
pub(super) struct RealServerHost {
    /// `vip_on` as stated; `None`: each VIP where its service's mode puts it (dr: lo, tun: tunl0).
    pub vip_on: Option<VipOn>,
    pub vip_prefix: u8,
    pub arp_ignore: Option<u8>,
    pub arp_announce: Option<u8>,
    pub rp_filter: Option<u8>,
    /// `state = "down"`: its links stay down.
    pub down: bool,
}
