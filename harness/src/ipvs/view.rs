//! Snapshots of the IPVS state (serde), the one shape both engines report.
//! Their text views, in ipvsadm 1.31's exact columns, are in [`ipvsadm`].
//!
//! Call [`super::Ipvs::expire`] before [`super::Ipvs::snapshot`] for exact
//! counters: a snapshot does not mutate, so entries past their expiry that
//! nobody swept yet are left out of the rows but still counted in the dests.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Counters, Forward, Ipvs, Proto, SchedFlags};

mod ipvsadm;
/// Also the fixture of the import round trips.
#[cfg(test)]
pub(crate) mod tests;

/// IP_VS_CONN_TAB_SIZE with the default conn_tab_bits 12.
pub const CONN_TAB_SIZE: u32 = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpvsSnapshot {
    pub conn_tab_size: u32,
    pub services: Vec<ServiceSnapshot>,
    /// Connections and templates (table order).
    pub conns: Vec<ConnSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    pub id: u32,
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub scheduler: String,
    pub flags: SchedFlags,
    /// Persistence timeout in seconds.
    pub persistent: Option<u64>,
    pub netmask: Ipv4Addr,
    pub one_packet: bool,
    pub stats: Counters,
    /// Estimated rates; zero from the embedded engine (it has no estimator).
    #[serde(default)]
    pub rates: Rates,
    /// Kernel list order (newest first), as netlink dumps them.
    pub dests: Vec<DestSnapshot>,
    /// `ipvsadm -f`: 0 for an address service. A fwmark service has no address (0.0.0.0),
    /// port 0 and protocol TCP, as the kernel reports it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

fn is_zero(mark: &u32) -> bool {
    *mark == 0
}

impl ServiceSnapshot {
    /// The key ipvsadm names it by.
    pub fn key(&self) -> super::ServiceKey {
        match self.fwmark {
            0 => super::ServiceKey::new(self.proto, self.vip, self.port),
            mark => super::ServiceKey::fwmark(mark),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestSnapshot {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    /// IP_VS_DEST_F_OVERLOAD (invisible in ipvsadm; shown for diagnosis).
    pub overloaded: bool,
    /// The kernel made this a LOCALNODE dest (its address is the director's
    /// own): ipvsadm lists it as `Local` and saves it as `-g`.
    #[serde(default)]
    pub local_node: bool,
    pub stats: Counters,
    #[serde(default)]
    pub rates: Rates,
}

/// What the kernel's rate estimator reports (`ipvsadm -Ln --rate`): per
/// second, as `ip_vs_read_estimator` rounds them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnSnapshot {
    pub proto: Proto,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub dest: SocketAddrV4,
    /// FULLNAT local address used towards the real server.
    pub local: Option<SocketAddrV4>,
    pub forward: Forward,
    /// NONE/ESTABLISHED/…/UDP, or NONE/ASSURED for templates.
    pub state: String,
    pub template: bool,
    /// Whole seconds until expiry (the /proc column).
    pub expires: u64,
}

pub(super) fn snapshot(ipvs: &Ipvs, now: Instant) -> IpvsSnapshot {
    let services = ipvs
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .map(|(i, s)| ServiceSnapshot {
            id: i as u32,
            // The kernel stores (and dumps) a fwmark service as TCP, 0.0.0.0, port 0.
            proto: if s.cfg.fwmark == 0 { s.cfg.proto } else { Proto::Tcp },
            vip: if s.cfg.fwmark == 0 {
                s.cfg.vip
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            port: s.cfg.port,
            scheduler: s.cfg.scheduler.to_string(),
            flags: s.cfg.flags,
            persistent: s.cfg.persistence.map(|d| d.as_secs()),
            netmask: s.cfg.persistence_netmask,
            one_packet: s.cfg.one_packet,
            stats: s.stats,
            rates: Rates::default(),
            dests: s
                .dests
                .iter()
                .map(|(_, d)| DestSnapshot {
                    addr: d.addr,
                    port: d.port,
                    forward: d.forward,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    active_conns: d.active,
                    inact_conns: d.inactive,
                    persist_conns: d.persist,
                    overloaded: d.overloaded,
                    local_node: false,
                    stats: d.stats,
                    rates: Rates::default(),
                })
                .collect(),
            fwmark: s.cfg.fwmark,
        })
        .collect();
    let conns = ipvs
        .conns
        .iter()
        .filter(|(_, c)| c.expires > now || (c.is_template() && c.n_control > 0))
        .map(|(_, c)| ConnSnapshot {
            proto: c.proto,
            from: SocketAddrV4::new(c.caddr, c.cport),
            to: SocketAddrV4::new(c.vaddr, c.vport),
            dest: SocketAddrV4::new(c.daddr, c.dport),
            local: (c.forward == Forward::FullNat && !c.is_template()).then(|| SocketAddrV4::new(c.laddr, c.lport)),
            forward: c.forward,
            state: c.state.name().to_string(),
            template: c.is_template(),
            expires: c.expires.saturating_duration_since(now).as_secs(),
        })
        .collect();
    IpvsSnapshot {
        conn_tab_size: CONN_TAB_SIZE,
        services,
        conns,
    }
}
