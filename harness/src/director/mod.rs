//! Director engines: the `Engine` trait both engines implement, their shared
//! configuration and counters, and engine auto-selection.
//!
//! * `embedded` — userspace IPVS: AF_PACKET in the director's namespace,
//!   `crate::ipvs` for the decisions, rewriting DR/NAT/TUN/FULLNAT frames.
//! * `kernel` (later) — real IPVS configured over generic netlink.

pub mod embedded;
mod genl_probe;
pub mod kernel;

use crate::ipvs;
use crate::lab::LabError;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedEngine;

/// Why a director engine could not start or obey.
#[derive(Debug, thiserror::Error)]
pub enum DirectorError {
    #[error("invalid director configuration: {0}")]
    Config(String),
    #[error("the director has no interface {0:?}")]
    NoInterface(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The embedded engine's IPVS (`crate::ipvs`) refused a service, real server or edit.
    #[error("ipvs refused {what}: {source}")]
    Refused {
        what: String,
        #[source]
        source: ipvs::IpvsError,
    },
    /// Kernel IPVS (or the director's namespace) refused, in the kernel's words.
    #[error("ipvs refused {what}: {why}")]
    Ipvs { what: String, why: String },
    /// The director's lab host could not run the engine's setup.
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error("no virtual service {0}")]
    NoService(String),
    #[error("{dest} is not a real server of {service}")]
    NoDest { service: String, dest: SocketAddrV4 },
    #[error("director packet thread: {0}")]
    Thread(String),
}

impl DirectorError {
    pub fn refused(what: impl Into<String>, source: ipvs::IpvsError) -> Self {
        DirectorError::Refused {
            what: what.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DirectorError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = DirectorError> = std::result::Result<T, E>;

/// Which engine runs the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Userspace IPVS (this crate's `ipvs` module) over AF_PACKET.
    Embedded,
    /// The kernel's IPVS, configured over generic netlink.
    Kernel,
}

/// Everything an engine needs to run a director.
#[derive(Clone, Debug)]
pub struct DirectorConfig {
    pub services: Vec<(ipvs::ServiceConfig, Vec<ipvs::DestConfig>)>,
    pub sysctls: ipvs::Sysctls,
    /// Interface facing the clients (where VIP traffic arrives).
    pub client_iface: String,
    /// Interface facing the real servers; the same as `client_iface` in DR/TUN.
    pub server_iface: String,
    /// FULLNAT source addresses. Must not be kernel-local on the director:
    /// the engine answers ARP for them itself.
    pub fullnat_local_addrs: Vec<Ipv4Addr>,
    /// `Some` when VRRP decides when this director holds its VIPs: the kernel engine then
    /// leaves the VIP addresses to VRRP, and the embedded engine serves a VIP (and answers
    /// ARP for it) only while the gate holds it. `None`: the director always holds them.
    pub vip_gate: Option<VipGate>,
    /// The fwmark services' marking rules (nft in the director's namespace; the embedded
    /// engine applies them itself, as it reads frames before netfilter).
    pub marks: Vec<crate::nft::mark::MarkRule>,
    /// The embedded engine completes the partial checksums of offloaded frames before sending
    /// them on (true, the default); false forwards them as they came. Kernel IPVS hands them
    /// on with their offload state: the kernel engine takes false in TUN only, leaving the
    /// director's TX offload on for the real servers' userspace decapsulator to see them.
    pub complete_checksums: bool,
}

/// The VIPs a director holds now, as its VRRP instance decides: shared by the VRRP node,
/// which opens and closes it, and the embedded engine, which reads it for every frame.
#[derive(Clone, Debug, Default)]
pub struct VipGate {
    held: std::sync::Arc<std::sync::RwLock<std::collections::BTreeSet<Ipv4Addr>>>,
    /// keepalived's no_accept: a held VIP is answered in ARP, but its traffic is dropped.
    no_accept: bool,
    /// A NAT pair's floating gateway (`[vrrp_gateway]`): replies are rewritten only while it
    /// is held, as the kernel routes them only while it is a local address.
    gateway: Option<Ipv4Addr>,
}

impl VipGate {
    /// A gate whose held VIPs take no traffic (`vrrp_strict` without `accept`).
    pub fn no_accept() -> VipGate {
        VipGate {
            no_accept: true,
            ..VipGate::default()
        }
    }

    pub fn with_gateway(self, gateway: Option<Ipv4Addr>) -> VipGate {
        VipGate { gateway, ..self }
    }

    /// The floating gateway, when the pair has one.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway
    }

    /// Whether this director rewrites real servers' replies now: unless the gateway floats
    /// and another director holds it.
    pub fn serves_replies(&self) -> bool {
        self.gateway.is_none_or(|g| self.holds(g))
    }

    pub fn set(&self, vip: Ipv4Addr, held: bool) {
        let mut set = self.held.write().unwrap_or_else(|p| p.into_inner());
        if held {
            set.insert(vip);
        } else {
            set.remove(&vip);
        }
    }

    pub fn holds(&self, vip: Ipv4Addr) -> bool {
        self.held.read().unwrap_or_else(|p| p.into_inner()).contains(&vip)
    }

    /// Whether traffic to a held VIP is taken: keepalived's no_accept firewall drops it.
    pub fn accepts(&self) -> bool {
        !self.no_accept
    }
}

/// Identifies a virtual service the way `ipvsadm -t/-u VIP:PORT` does.
pub use crate::lvs::ServiceKey;

/// Counters an engine keeps about the frames it handled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EngineStats {
    /// Frames read from the engine's sockets (outgoing and foreign ones excluded).
    pub frames_seen: u64,
    /// Client → real server frames sent on.
    pub forwarded_in: u64,
    /// Real server → client frames (NAT/FULLNAT replies) sent on.
    pub forwarded_out: u64,
    /// Frames for a service that were dropped, by reason (`ipvs:<reason>` for
    /// ipvs verdicts, otherwise the engine's own: `fragment`, `ttl_exceeded`,
    /// `neighbour_failed` (the next hop never answered ARP), `neighbour_queue_full`
    /// (pushed out of a next hop's queue while it resolved), `gso_tunnel`,
    /// `tunnel_too_big` (DF set: the client was sent frag-needed), `send_failed`, ...).
    pub dropped: BTreeMap<embedded::DropReason, u64>,
    /// ICMP errors that belong to a connection, relayed, by `route:kind`
    /// (`client_to_real_server`, `real_server_to_client`, `tunnel_to_client`;
    /// `port_unreachable`, `frag_needed`, ...).
    pub icmp_relayed: BTreeMap<String, u64>,
    /// ICMP messages not relayed, by reason (`no_connection`, `not_an_error`, ...).
    pub icmp_not_relayed: BTreeMap<String, u64>,
    /// ICMP errors the director originated for a client's packet, by kind, as
    /// kernel IPVS does: `port_unreachable` when no real server could be
    /// scheduled, `frag_needed` when a DF packet does not fit the tunnel.
    pub icmp_sent: BTreeMap<String, u64>,
    /// Frames that failed to parse, by reason.
    pub malformed: BTreeMap<String, u64>,
    /// ARP requests for VIPs / FULLNAT local addresses answered with our MAC.
    pub arp_answered: u64,
    /// ARP requests the engine sent to resolve real servers and clients.
    pub arp_requests_sent: u64,
    /// TCP resets for VIP segments IPVS left to the director's stack (no entry
    /// and not a SYN, or no service on the port), as the kernel's TCP sends them.
    pub resets_sent: u64,
}

impl EngineStats {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
    pub fn malformed_total(&self) -> u64 {
        self.malformed.values().sum()
    }
}

/// A running director. Sync and object-safe so the CLI can hold a
/// `Box<dyn Engine>` whichever engine was selected.
pub trait Engine: Send {
    fn kind(&self) -> EngineKind;
    /// `ipvsadm -Ln`/`-Lnc`/`--stats`-like view of the engine's state.
    fn snapshot(&self) -> Result<ipvs::IpvsSnapshot>;
    /// `ipvsadm -e -t VIP:PORT -r RIP:PORT -w WEIGHT`.
    fn set_weight(&mut self, service: ServiceKey, dest: SocketAddrV4, weight: u32) -> Result<()>;
    /// `ipvsadm -a -t VIP:PORT -r RIP:PORT -w WEIGHT` with the dest's forwarding method: a
    /// health checker's ADD_DEST (a real server back, or the sorry server).
    fn add_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()>;
    /// `ipvsadm -d -t VIP:PORT -r RIP:PORT`: a health checker's DEL_DEST. Connections to it
    /// stay in the table; their packets are dropped, or with `expire_nodest_conn` the entry
    /// is expired and the packet scheduled anew (the kernel's `ip_vs_in`).
    fn remove_dest(&mut self, service: ServiceKey, dest: SocketAddrV4) -> Result<()>;
    /// `ipvsadm -e -t VIP:PORT -r RIP:PORT …`: the whole real server as given (ipvsadm sends
    /// its defaults, weight 1 and `-g`, for what the command line leaves out).
    fn edit_dest(&mut self, service: ServiceKey, dest: ipvs::DestConfig) -> Result<()>;
    fn stats(&self) -> EngineStats;
    /// Returns once the counters in `snapshot` are exact for everything forwarded so far.
    /// Kernel IPVS folds its per-CPU counters into the exported ones only in its 2 s
    /// estimator run; the embedded engine's are always exact.
    fn settle_stats(&self) {}
    /// Stops the engine and releases what it holds (threads, sockets, kernel state).
    fn shutdown(self: Box<Self>) -> Result<()>;
}

/// True when the current thread's network namespace has kernel IPVS: the
/// generic netlink family "IPVS" resolves, or `/proc/thread-self/net/ip_vs`
/// exists (the module is loaded but netlink is unavailable for some reason).
pub fn kernel_has_ipvs() -> bool {
    genl_probe::family_exists("IPVS").unwrap_or(false) || std::path::Path::new("/proc/thread-self/net/ip_vs").exists()
}

/// The engine to use when the scenario does not say: the kernel's if present.
pub fn default_engine_kind() -> EngineKind {
    if kernel_has_ipvs() {
        EngineKind::Kernel
    } else {
        EngineKind::Embedded
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_refusal_keeps_the_ipvs_error_as_its_source() {
        let e = DirectorError::refused("service TCP 192.0.2.100:80", ipvs::IpvsError::BadPersistence);
        assert_eq!(
            e.to_string(),
            "ipvs refused service TCP 192.0.2.100:80: persistence timeout must be at least one second"
        );
        let source = e.source().and_then(|s| s.downcast_ref::<ipvs::IpvsError>());
        assert_eq!(source, Some(&ipvs::IpvsError::BadPersistence));
    }
}
