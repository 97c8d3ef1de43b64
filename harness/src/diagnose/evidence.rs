//! What the diagnosis reads: plain data gathered by `observe` (from a lab or live hosts)
//! or written by hand in tests. Nothing here depends on other lvslab modules but the
//! shared vocabulary in `lvs`.
//!
//! Conventions:
//! * Every collection may be empty and every `Option` may be `None`: that means "not
//!   gathered", and rules that need it stay silent rather than guess.
//! * Host sysctls are stored raw, under their dotted names
//!   (`net.ipv4.conf.all.arp_ignore`, `net.ipv4.conf.eth0.arp_ignore`,
//!   `net.ipv4.ip_forward`); [`HostEvidence::effective_conf`] computes what the kernel
//!   uses (max of `all` and the interface for arp_ignore, arp_announce, rp_filter).
//! * Counters are the increase over the traffic run (after minus before) where the
//!   gatherer can take two readings, else the absolute value.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use super::mac::Mac;

/// The service's mode (`Direct` = no director: clients hit servers) and protocol.
pub use crate::lvs::{Mode, Proto};

/// Everything known about one virtual service and the hosts around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub mode: Mode,
    /// The virtual service as configured (scenario, keepalived.conf or the live table).
    pub service: Option<ServiceEvidence>,
    /// The director host (absent in `Direct` mode or when not reachable).
    pub director: Option<HostEvidence>,
    /// Real servers as configured (scenario / keepalived), whether or not they are in
    /// the live IPVS table. Their names match [`RecordEvidence::backend`].
    #[serde(default)]
    pub real_servers: Vec<RealServerEvidence>,
    #[serde(default)]
    pub clients: Vec<ClientEvidence>,
    /// The director's IPVS state after the run (`ipvsadm -Ln --stats`, `-Lnc`).
    pub ipvs: Option<IpvsEvidence>,
    /// Frames for the VIP that reached the director during the run, counted by the harness on
    /// the director's client-facing interface (exact under either engine).
    pub director_seen_packets: Option<u64>,
    /// MACs that answered an ARP request for the VIP sent from a client's segment.
    pub arp_probe: Option<ArpProbe>,
    /// One record per request of the main traffic run.
    #[serde(default)]
    pub records: Vec<RecordEvidence>,
    /// Side runs of the same traffic shaped differently (new connections vs
    /// keep-alive, one source vs several), for contrast.
    #[serde(default)]
    pub probes: Vec<ProbeResult>,
    /// What keepalived's health checkers did during the run on this service (each service's
    /// evidence has its own); `None`: no checker ran on it.
    #[serde(default)]
    pub health: Option<HealthEvidence>,
    /// The faults (`[[event]]`s) that fired during the main run, in order.
    #[serde(default)]
    pub events: Vec<EventEvidence>,
    /// Directors beside the first: a VRRP instance's other nodes, or directors with VIPs of
    /// their own. Their MACs are directors' MACs too.
    #[serde(default)]
    pub other_directors: Vec<HostEvidence>,
    /// The directors' VRRP during the run; `None`: no `vrrp_instance`.
    #[serde(default)]
    pub vrrp: Option<VrrpEvidence>,
    /// Every host's nftables rules that drop or reject (`nft -j list ruleset`), routers
    /// included; a host without such rules is left out.
    #[serde(default)]
    pub firewalls: Vec<FirewallEvidence>,
    /// With several directors, each one's table for the service on its own VIP, the first's
    /// included, in scenario order; empty with one director.
    #[serde(default)]
    pub director_tables: Vec<DirectorTableEvidence>,
    /// The first director's firewall-mark classification: its mark rules, its FWM services and
    /// where the requests went; `None` when the scenario has neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fwmark: Option<FwmarkEvidence>,
    /// The body of each request of the main run (`[traffic] body_bytes`; 0 = bodyless GETs).
    /// The probes are bodyless: against large requests they are the small ones.
    #[serde(default)]
    pub request_body_bytes: u32,
}

/// Firewall-mark classification on the director (`ipvsadm -f` services and what marks for them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FwmarkEvidence {
    /// The director's marking rules (nft, table `lvslab_fwmark`), in order.
    pub rules: Vec<crate::nft::mark::MarkRule>,
    /// Its FWM services (`FWM  1 rr persistent 300` in `ipvsadm -Ln`).
    pub services: Vec<FwmServiceEvidence>,
    /// Its address services (`TCP  VIP:PORT`).
    pub address_services: Vec<AddressServiceEvidence>,
    /// Where the requests were sent, each address:port once.
    pub targets: Vec<TargetEvidence>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FwmServiceEvidence {
    pub mark: u32,
    pub scheduler: String,
    pub persistence_secs: Option<u64>,
    /// Real servers in it.
    pub dests: usize,
    /// Their addresses, sorted.
    #[serde(default)]
    pub rips: Vec<Ipv4Addr>,
}

/// An address service beside the FWM services: whether it is the fwmark service's own farm
/// on a port the mark left out, or a service of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddressServiceEvidence {
    pub key: crate::lvs::ServiceKey,
    pub scheduler: String,
    pub persistence_secs: Option<u64>,
    /// Its real servers' addresses, sorted.
    pub rips: Vec<Ipv4Addr>,
}

/// The requests to one destination address and port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEvidence {
    pub proto: Proto,
    pub target: std::net::SocketAddrV4,
    pub requests: u32,
    /// Answers by real server name.
    pub backends: BTreeMap<String, u32>,
}

/// One director's IPVS table for the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectorTableEvidence {
    pub director: String,
    pub vip: Ipv4Addr,
    pub ipvs: IpvsEvidence,
}

/// One `vrrp_instance` over the directors, as it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpEvidence {
    /// `keepalived` or `embedded`.
    pub implementation: String,
    pub nodes: Vec<VrrpNodeEvidence>,
    /// Directors MASTER when the traffic ended.
    pub masters: Vec<String>,
    /// keepalived's lines that tell why adverts did not get through or were refused
    /// (send errors, wrong password, interval or VRID mismatches), with their director.
    pub advert_trouble: Vec<(String, String)>,
    /// When each director last became MASTER (ms since the traffic started) and the line
    /// that made it.
    pub became_master: Vec<(String, f64, String)>,
    /// Each takeover after a director event: a failover from a master taken away, or a
    /// return that preempts (both break the connections in flight through the old master).
    #[serde(default)]
    pub failovers: Vec<FailoverEvidence>,
    /// keepalived's "setting firewall drop rule" lines (its no_accept firewall), with their
    /// director.
    #[serde(default)]
    pub firewall_lines: Vec<(String, String)>,
    /// `[vrrp_gateway]`: the NAT pair's floating gateway, held by the master.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
}

/// A takeover and what it cost, as the run measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverEvidence {
    pub event: String,
    /// The event's action (`kill`, `stop`, ...).
    pub action: String,
    pub from: Vec<String>,
    pub to: String,
    pub takeover_ms: f64,
    pub failover_ms: Option<f64>,
    pub failed: u32,
}

/// One director's instance as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VrrpNodeEvidence {
    pub director: String,
    pub instance: String,
    pub interface: String,
    pub address: Ipv4Addr,
    pub vrid: u8,
    pub priority: u8,
    pub version: u8,
    pub advert_int_ms: u64,
    pub auth: bool,
    pub unicast_peers: Vec<Ipv4Addr>,
    /// `vrrp_strict` as configured.
    #[serde(default)]
    pub strict: bool,
    /// keepalived's no_accept (`vrrp_strict` without `accept`, or `no_accept`): while MASTER
    /// the director drops traffic to and from the VIP.
    #[serde(default)]
    pub no_accept: bool,
}

/// The virtual service (`ipvsadm -A` line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceEvidence {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    /// Scheduler name as ipvsadm spells it: rr, wrr, lc, wlc, sh, dh, mh, lblc, ...
    pub scheduler: String,
    /// Scheduler flags (`-b`): sh-port, sh-fallback, mh-port, mh-fallback.
    #[serde(default)]
    pub sched_flags: Vec<String>,
    /// `-p N` / `persistence_timeout N`; `None` when not persistent.
    pub persistence_secs: Option<u32>,
    /// `-M` netmask as a prefix length (32 = per address).
    pub persistence_prefix: Option<u8>,
    /// `-o` / `ops`: one-packet scheduling (UDP).
    #[serde(default)]
    pub one_packet: bool,
    /// What an import filled in for settings its file left out (`[service.origin]`).
    #[serde(default)]
    pub imported_defaults: Vec<ImportedDefault>,
}

/// A setting the source file left out and its tool's default filled in, as an import recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedDefault {
    /// The scenario key it set: `mode`, `protocol`, `persistence`, `scheduler`, `port`, `real_port`.
    pub sets: String,
    pub file: String,
    pub line: Option<u32>,
    /// In the tool's own words (`keepalived -t`).
    pub said: String,
}

/// One network namespace / machine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostEvidence {
    pub name: String,
    /// Raw sysctl values by dotted name; see the module docs.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// Interfaces (`ip -d link`): empty = not gathered.
    #[serde(default)]
    pub links: Vec<LinkEvidence>,
    /// IPv4 addresses (`ip -4 addr`).
    #[serde(default)]
    pub addresses: Vec<IfaceAddr>,
    /// Main routing table (`ip route`): empty = not gathered.
    #[serde(default)]
    pub routes: Vec<RouteEvidence>,
    /// Neighbour table (`ip neigh`).
    #[serde(default)]
    pub neighbours: Vec<NeighbourEvidence>,
    /// SNMP / netstat counters by their nstat-less names: `InAddrErrors`,
    /// `TcpInCsumErrors`, `UdpInCsumErrors`, `IPReversePathFilter`, `ListenDrops`.
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Listening sockets (`ss -ltnu`); `None` = not gathered.
    pub listening: Option<Vec<Listener>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkEvidence {
    pub name: String,
    /// Link kind: veth, ipip, tun, loopback, bridge, ...
    pub kind: Option<String>,
    pub mac: Option<Mac>,
    pub up: bool,
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceAddr {
    pub iface: String,
    pub net: Ipv4Net,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteEvidence {
    pub dst: Ipv4Net,
    /// Gateway; `None` for an on-link (connected) route.
    pub via: Option<Ipv4Addr>,
    pub dev: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeighbourEvidence {
    pub ip: Ipv4Addr,
    /// `None` for INCOMPLETE / FAILED entries.
    pub mac: Option<Mac>,
    /// REACHABLE, STALE, DELAY, PROBE, PERMANENT, FAILED, INCOMPLETE.
    pub state: String,
    pub iface: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listener {
    pub proto: Proto,
    /// Local address; 0.0.0.0 means every address.
    pub addr: SocketAddr,
}

/// A real server as configured, with what was seen on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerEvidence {
    /// Name the server answers with; records refer to it.
    pub name: String,
    /// RIP: the address the director forwards to.
    pub address: Ipv4Addr,
    /// Port configured for it (NAT may remap); `None` = the service port.
    pub port: Option<u16>,
    /// Weight as configured; the live weight is in [`DestEvidence`].
    pub weight: Option<u32>,
    pub host: HostEvidence,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientEvidence {
    pub name: String,
    pub host: HostEvidence,
}

/// The director's IPVS tables for this service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IpvsEvidence {
    /// Destinations in the live table (a configured server missing here was removed).
    #[serde(default)]
    pub dests: Vec<DestEvidence>,
    /// Connection entries (`ipvsadm -Lnc`), templates excluded.
    #[serde(default)]
    pub conns: Vec<ConnEvidence>,
    /// Persistence templates (client port 0 rows).
    #[serde(default)]
    pub templates: Vec<TemplateEvidence>,
    /// IPVS settings by sysctl leaf name (`conn_reuse_mode`, `expire_nodest_conn`,
    /// `expire_quiescent_template`), from /proc/sys/net/ipv4/vs or the embedded engine.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestEvidence {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    /// ActiveConn / InActConn / PersistConn columns.
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    /// `--stats` Conns: connections scheduled to it since it was added.
    pub conns_total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnEvidence {
    pub proto: Proto,
    pub client: Ipv4Addr,
    pub client_port: u16,
    pub dest: Ipv4Addr,
    pub dest_port: u16,
    /// IPVS state name: ESTABLISHED, SYN_RECV, FIN_WAIT, TIME_WAIT, CLOSE, UDP, ...
    pub state: String,
    pub expires_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateEvidence {
    /// Client address (masked by the persistence netmask).
    pub client: Ipv4Addr,
    pub dest: Ipv4Addr,
    pub expires_secs: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArpProbe {
    /// The client that asked.
    pub from: String,
    /// Every sender MAC that answered for the VIP, in arrival order.
    pub replies: Vec<Mac>,
}

/// One request of the main run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordEvidence {
    /// Client name.
    pub client: String,
    /// Local address and port the request left from.
    pub source: SocketAddr,
    /// Name of the server that answered; `None` on error.
    pub backend: Option<String>,
    /// Ordinal of the connection within this client: requests with the same value
    /// shared one TCP connection (or one UDP socket).
    pub connection: u32,
    pub error: Option<String>,
    /// When it was sent, in ms since the traffic started (`None`: not recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ms: Option<f64>,
    /// The client's address and port as the real server saw them (its answer says), when it
    /// answered: differs from `source` behind a NAT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_as: Option<SocketAddr>,
    /// The address and port it was sent to (`None`: not recorded, as in a pasted listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<SocketAddr>,
}

/// keepalived's checkers on the director during the run. Times are ms since the traffic
/// started (negative: before it, while the first checks ran).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthEvidence {
    /// The director whose checkers these are.
    pub director: String,
    /// The service (keepalived's virtual_server) they check.
    #[serde(default)]
    pub service: String,
    /// One per real server of the pool; a server without a checker is never taken out.
    #[serde(default)]
    pub checkers: Vec<CheckerEvidence>,
    /// keepalived's log lines, in order.
    #[serde(default)]
    pub log: Vec<HealthLogLine>,
    /// The table changes the checkers made, in order.
    #[serde(default)]
    pub changes: Vec<HealthChange>,
    /// The failed checks that took a server out, with keepalived's reason.
    #[serde(default)]
    pub failures: Vec<CheckFailure>,
    /// Each death of a checked server (an event) and how long the checker took to notice.
    #[serde(default)]
    pub outages: Vec<OutageEvidence>,
    /// The virtual server's quorum and hysteresis (keepalived defaults 1 and 0).
    pub quorum: u32,
    pub hysteresis: u32,
    pub sorry_server: Option<SorryServerEvidence>,
    /// Servers of the pool out of the table (or at weight 0) when the traffic ended.
    #[serde(default)]
    pub out_at_end: Vec<String>,
}

/// One real server's checker as configured (keepalived's resolved settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckerEvidence {
    pub server: String,
    /// TCP_CHECK, HTTP_GET or MISC_CHECK; `None`: the server has no checker.
    pub kind: Option<String>,
    /// Where TCP_CHECK / HTTP_GET connect: the real server's own address and port.
    pub connect: SocketAddrV4,
    /// HTTP_GET's first url path.
    pub path: Option<String>,
    /// MISC_CHECK's command.
    pub command: Option<String>,
    pub delay_loop_secs: f64,
    pub connect_timeout_secs: f64,
    pub retry: u32,
    pub delay_before_retry_secs: f64,
    pub inhibit_on_failure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthLogLine {
    pub at_ms: f64,
    pub line: String,
    /// The real server the line is about, when it names one.
    pub server: Option<String>,
}

/// One table change by the checkers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthChange {
    pub at_ms: f64,
    pub dest: SocketAddr,
    /// The real server's name, when the address is one of them.
    pub server: Option<String>,
    pub sorry: bool,
    /// `add`, `remove` or `set_weight`.
    pub op: String,
    pub weight: Option<u32>,
}

impl HealthChange {
    /// Removed, or left in at weight 0 (inhibit_on_failure).
    pub fn takes_out(&self) -> bool {
        self.op == "remove" || self.weight == Some(0)
    }
}

/// A failed check that took its server out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFailure {
    pub at_ms: f64,
    pub server: String,
    pub reason: CheckFailReason,
}

/// Why a check attempt failed, in keepalived's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckFailReason {
    /// No answer to the connect within connect_timeout.
    ConnectTimeout,
    /// Refused (RST) or unreachable (ICMP).
    ConnectRefused,
    ConnectError,
    /// HTTP: the connection closed before any data.
    NoData,
    /// HTTP: a status outside the accepted ones.
    HttpStatus(u16),
    /// HTTP: the body's MD5 differs from the digest.
    Digest,
    /// HTTP: the answer did not complete within connect_timeout.
    ReadTimeout,
    MiscExit(u8),
    MiscTimeout,
    MiscSignal(i32),
}

/// A checked server's death during the run and the checker's answer to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageEvidence {
    pub server: String,
    pub down_event: String,
    pub down_at_ms: f64,
    /// From the death to the checker's removal; `None`: never taken out.
    pub removed_after_ms: Option<f64>,
    /// Requests sent between the death and the removal (or the end) that failed.
    pub failed_meanwhile: u32,
    pub up_event: Option<String>,
    pub restored_after_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SorryServerEvidence {
    pub addr: SocketAddrV4,
    /// The real server that serves as the sorry server, if one does.
    pub name: Option<String>,
}

/// One `[[event]]` as it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEvidence {
    pub name: String,
    pub host: String,
    /// The action as the file writes it: `stop`, `error 500`, `link down`, ...
    pub action: String,
    pub effect: FaultEffect,
    /// When its moment came and when the action had taken effect.
    pub due_ms: f64,
    pub done_ms: f64,
    /// Why the action failed, if it did.
    pub error: Option<String>,
}

/// What an event does to the host's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultEffect {
    /// It stops serving: stop, refuse, link down.
    Down,
    /// It answers badly: HTTP errors, slowly.
    Degraded,
    /// It serves again: start, link up.
    Back,
    /// Anything else (weights, sysctls, directors).
    Other,
}

/// How a probe run shaped its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeKind {
    /// A new connection per request.
    NewConn,
    /// All requests over one (or a few) kept-alive connections.
    Keepalive,
    /// New connections from several source addresses.
    ManySources,
}

/// Summary of one probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub kind: ProbeKind,
    pub requests: u32,
    /// Distinct source addresses used.
    pub sources: u32,
    /// Distinct TCP connections (UDP sockets) used.
    pub connections: u32,
    /// Requests per answering backend.
    pub per_backend: BTreeMap<String, u32>,
    pub errors: u32,
}

impl ProbeResult {
    pub fn distinct_backends(&self) -> usize {
        self.per_backend.values().filter(|n| **n > 0).count()
    }
}

impl HostEvidence {
    /// Integer value of a raw sysctl, if gathered and numeric.
    pub fn sysctl(&self, key: &str) -> Option<i64> {
        self.sysctls.get(key)?.trim().parse().ok()
    }

    /// The value the kernel acts on for `net.ipv4.conf.*.<name>` on `iface`:
    /// max(all, iface) (true for arp_ignore, arp_announce and rp_filter).
    pub fn effective_conf(&self, name: &str, iface: &str) -> Option<i64> {
        let all = self.sysctl(&format!("net.ipv4.conf.all.{name}"));
        let dev = self.sysctl(&format!("net.ipv4.conf.{iface}.{name}"));
        match (all, dev) {
            (Some(a), Some(d)) => Some(a.max(d)),
            (one, other) => one.or(other),
        }
    }

    /// The interface address holding `ip`, if it is local here.
    pub fn address_of(&self, ip: Ipv4Addr) -> Option<&IfaceAddr> {
        self.addresses.iter().find(|a| a.net.addr() == ip)
    }

    pub fn link(&self, name: &str) -> Option<&LinkEvidence> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The interface that owns `mac`.
    pub fn link_with_mac(&self, mac: Mac) -> Option<&LinkEvidence> {
        self.links.iter().find(|l| l.mac == Some(mac))
    }

    pub fn neighbour(&self, ip: Ipv4Addr) -> Option<&NeighbourEvidence> {
        self.neighbours.iter().find(|n| n.ip == ip)
    }

    /// Longest-prefix route for `dst` in the gathered table.
    pub fn route_to(&self, dst: Ipv4Addr) -> Option<&RouteEvidence> {
        self.routes
            .iter()
            .filter(|r| r.dst.contains(&dst))
            .max_by_key(|r| r.dst.prefix_len())
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Whether something listens for `proto` on `addr:port` (wildcard included).
    /// `None` when listeners were not gathered.
    pub fn listens_on(&self, proto: Proto, addr: Ipv4Addr, port: u16) -> Option<bool> {
        let listening = self.listening.as_ref()?;
        Some(listening.iter().any(|l| {
            l.proto == proto
                && l.addr.port() == port
                && (l.addr.ip().is_unspecified() || l.addr.ip() == std::net::IpAddr::V4(addr))
        }))
    }
}

impl Evidence {
    /// An evidence set with nothing gathered yet.
    pub fn empty(mode: Mode) -> Self {
        Evidence {
            mode,
            service: None,
            director: None,
            real_servers: Vec::new(),
            clients: Vec::new(),
            ipvs: None,
            director_seen_packets: None,
            arp_probe: None,
            records: Vec::new(),
            probes: Vec::new(),
            health: None,
            events: Vec::new(),
            other_directors: Vec::new(),
            vrrp: None,
            firewalls: Vec::new(),
            director_tables: Vec::new(),
            fwmark: None,
            request_body_bytes: 0,
        }
    }

    pub fn vip(&self) -> Option<Ipv4Addr> {
        self.service.as_ref().map(|s| s.vip)
    }

    pub fn real_server(&self, name: &str) -> Option<&RealServerEvidence> {
        self.real_servers.iter().find(|r| r.name == name)
    }

    /// The real server whose RIP is `addr`.
    pub fn real_server_at(&self, addr: Ipv4Addr) -> Option<&RealServerEvidence> {
        self.real_servers.iter().find(|r| r.address == addr)
    }

    /// Name of the host (and its interface) that owns `mac`, among every host gathered.
    pub fn owner_of_mac(&self, mac: Mac) -> Option<(String, String)> {
        self.hosts()
            .find_map(|h| h.link_with_mac(mac).map(|l| (h.name.clone(), l.name.clone())))
    }

    /// Whether `mac` is one of the director's.
    pub fn is_director_mac(&self, mac: Mac) -> bool {
        self.directors().any(|d| d.link_with_mac(mac).is_some())
    }

    /// Every director: the first, then the others.
    pub fn directors(&self) -> impl Iterator<Item = &HostEvidence> {
        self.director.iter().chain(&self.other_directors)
    }

    /// Every host: directors, real servers, clients.
    pub fn hosts(&self) -> impl Iterator<Item = &HostEvidence> {
        self.directors()
            .chain(self.real_servers.iter().map(|r| &r.host))
            .chain(self.clients.iter().map(|c| &c.host))
    }

    /// IPVS setting as an integer, if gathered.
    pub fn ipvs_setting(&self, name: &str) -> Option<i64> {
        self.ipvs.as_ref()?.settings.get(name)?.trim().parse().ok()
    }

    /// Whether the live table holds the server at all (`None`: table not gathered).
    pub fn in_table(&self, rs: &RealServerEvidence) -> Option<bool> {
        Some(self.ipvs.as_ref()?.dests.iter().any(|d| d.addr == rs.address))
    }

    /// The live weight of a server, else its configured weight (default 1).
    pub fn weight_of(&self, rs: &RealServerEvidence) -> u32 {
        if let Some(ipvs) = &self.ipvs {
            if let Some(dest) = ipvs.dests.iter().find(|d| d.addr == rs.address) {
                return dest.weight;
            }
            if !ipvs.dests.is_empty() {
                return 0;
            }
        }
        rs.weight.unwrap_or(1)
    }
}

/// One host's nftables rules that drop or reject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirewallEvidence {
    pub host: String,
    pub role: HostRole,
    pub rules: Vec<FirewallRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostRole {
    Client,
    Director,
    RealServer,
    Router,
}

/// One rule with a `drop` or `reject` verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirewallRule {
    /// Family and name: `inet filter`.
    pub table: String,
    pub chain: String,
    /// The base chain's hook (`input`, `forward`, `prerouting`, ...); `None`: a chain jumped to.
    pub hook: Option<String>,
    /// As `nft list ruleset` prints it, without the counter's values.
    pub text: String,
    /// `drop` or `reject`.
    pub verdict: String,
    /// Packets its `counter` counted; `None`: the rule has no counter.
    pub packets: Option<u64>,
    /// What it matches on, as far as addresses and ports go; other matches (interfaces,
    /// conntrack state, ...) are not listed and not judged.
    pub matches: Vec<RuleMatch>,
}

/// `ip daddr 192.0.2.100`, `tcp dport { 80, 443 }`, `fib saddr . iif oif missing`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// `ip daddr`, `ip saddr`, `tcp dport`, `udp dport`, `th dport`, `fib saddr . iif oif`.
    pub field: String,
    /// `false` for `!=`.
    pub equal: bool,
    pub values: Vec<MatchValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatchValue {
    /// An address or prefix.
    Net(Ipv4Net),
    AddrRange(Ipv4Addr, Ipv4Addr),
    Ports(u16, u16),
    /// `missing` for a fib check, or a value not understood.
    Word(String),
}

impl MatchValue {
    fn holds_addr(&self, ip: Ipv4Addr) -> bool {
        match self {
            MatchValue::Net(net) => net.contains(&ip),
            MatchValue::AddrRange(lo, hi) => (*lo..=*hi).contains(&ip),
            _ => false,
        }
    }

    fn holds_port(&self, port: u16) -> bool {
        matches!(self, MatchValue::Ports(lo, hi) if (*lo..=*hi).contains(&port))
    }
}

impl RuleMatch {
    /// Whether an address satisfies this match.
    pub fn admits_addr(&self, ip: Ipv4Addr) -> bool {
        self.values.iter().any(|v| v.holds_addr(ip)) == self.equal
    }

    pub fn admits_port(&self, port: u16) -> bool {
        self.values.iter().any(|v| v.holds_port(port)) == self.equal
    }
}

impl FirewallRule {
    /// The matches on `field` (`ip daddr`), if the rule has any.
    pub fn matches_on<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a RuleMatch> + 'a {
        self.matches.iter().filter(move |m| m.field == field)
    }

    /// Whether a packet with this destination address passes the rule's `ip daddr` matches
    /// (a rule without one matches every destination); `saddr` likewise.
    pub fn admits(&self, field: &str, ip: Ipv4Addr) -> bool {
        self.matches_on(field).all(|m| m.admits_addr(ip))
    }

    /// Whether a `proto` packet to `port` passes its destination-port matches: `tcp dport`
    /// only holds TCP, `udp dport` UDP, `th dport` either.
    pub fn admits_dport(&self, proto: Proto, port: u16) -> bool {
        let own = format!("{} dport", proto.name().to_ascii_lowercase());
        self.matches.iter().all(|m| match m.field.as_str() {
            "th dport" => m.admits_port(port),
            f if f.ends_with(" dport") => f == own && m.admits_port(port),
            _ => true,
        })
    }

    /// Whether it drops on a reverse-path check (`fib saddr . iif oif missing`).
    pub fn is_reverse_path_check(&self) -> bool {
        self.matches.iter().any(|m| {
            m.field.starts_with("fib saddr") && m.values.iter().any(|v| *v == MatchValue::Word("missing".into()))
        })
    }

    /// `dropped` or `rejected`.
    pub fn verdict_past(&self) -> &'static str {
        if self.verdict == "reject" {
            "rejected"
        } else {
            "dropped"
        }
    }

    /// `drops` or `rejects`.
    pub fn verdict_verb(&self) -> &'static str {
        if self.verdict == "reject" {
            "rejects"
        } else {
            "drops"
        }
    }

    /// ``inet filter input: `ip daddr 192.0.2.100 counter drop` (42 packets dropped)``.
    pub fn cited(&self) -> String {
        let count = match self.packets {
            Some(n) => format!("{n} packets {}", self.verdict_past()),
            None => "no counter".to_string(),
        };
        format!("{} {}: `{}` ({count})", self.table, self.chain, self.text)
    }
}

impl Evidence {
    /// The firewall of host `name`, if it has rules that drop.
    pub fn firewall_of(&self, name: &str) -> Option<&FirewallEvidence> {
        self.firewalls.iter().find(|f| f.host == name)
    }
}
