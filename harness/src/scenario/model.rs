//! The resolved scenario: every default applied, every reference checked.
//! This is what the rest of lvslab works from; nothing here is optional
//! because "absent" was already turned into the mode's default.

use std::net::Ipv4Addr;
use std::time::Duration;

use hyper::http::uri::PathAndQuery;
use ipnet::Ipv4Net;

use crate::ipvs;
use crate::wire::Mac;

pub use super::keywords::{
    Cause, CauseId, CheckersChoice, Comparison, ConnectionMode, DefaultedKey, EngineChoice, Mode, Protocol, SchedFlag,
    Scheduler, ServerState, VipOn, VrrpChoice, VrrpState,
};

/// A fully resolved scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name` from the file, else the file stem.
    pub name: String,
    pub description: Option<String>,
    pub engine: EngineChoice,
    /// `[service]` or `[[service]]`: one or more, each in its own mode, each on its own VIP or
    /// the first's (see [`Scenario::service_vip`]), each with its own checkers (`Service::health`).
    pub services: Vec<Service>,
    /// One or more; empty in `direct` mode only. The first serves `service().vip`.
    pub directors: Vec<Director>,
    /// In declaration order.
    pub real_servers: Vec<RealServer>,
    /// In declaration order.
    pub networks: Vec<Network>,
    /// Every host: clients, director, real servers, routers (in that order).
    pub hosts: Vec<Host>,
    pub traffic: Traffic,
    pub expect: Expect,
    /// `[[event]]`: faults scheduled while the traffic runs, in file order.
    pub events: Vec<Event>,
    /// The `[expect]` keys about events.
    pub expect_events: EventExpect,
    /// `[vrrp_instance]`: the directors share the service VIP over VRRP.
    pub vrrp: Option<Vrrp>,
    /// `checkers`: who runs the services' health checkers (`auto` when none has any).
    pub checkers: CheckersChoice,
}

/// The directors as one keepalived `vrrp_instance` holding the service VIP between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Vrrp {
    pub choice: VrrpChoice,
    /// One per director, in scenario order.
    pub nodes: Vec<VrrpNode>,
    /// `[[vrrp_script]]`, in file order.
    pub scripts: Vec<VrrpScriptConfig>,
    /// `[vrrp_gateway]`: the real servers' default gateway, floating with the master (NAT).
    pub gateway: Option<Ipv4Addr>,
    /// `[vrrp_sync_group]`: its name; it binds every instance of each director.
    pub sync_group: Option<String>,
    /// `[vrrp_sync_group]` `tracking_weight`: keepalived's `sync_group_tracking_weight`.
    pub sync_group_tracking_weight: bool,
}

impl Vrrp {
    pub fn node(&self, director: &str) -> Option<&VrrpNode> {
        self.nodes.iter().find(|n| n.director == director)
    }

    pub fn script(&self, name: &str) -> Option<&VrrpScriptConfig> {
        self.scripts.iter().find(|s| s.name == name)
    }
}

/// One director's `vrrp_instance`, as its keepalived.conf would state it.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpNode {
    pub director: String,
    /// `vrrp` on the director: who runs its VRRP, over [`Vrrp::choice`] (a mixed pair).
    pub choice: Option<VrrpChoice>,
    /// What `crate::vrrp::Instance` runs: interface and address on the VIP's network, the
    /// VRID, timers, auth and GARP settings (tracks are added by [`VrrpNode::instance_config`]).
    pub instance: crate::vrrp::InstanceConfig,
    /// `unicast = true`: every other director's address on the VIP network.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// `vrrp_strict`: keepalived's strict mode (only the real keepalived applies its firewall).
    pub strict: bool,
    /// `accept`; `None` = keepalived's default (accept unless strict).
    pub accept: Option<bool>,
    /// `track_interface`: the director's interface and its weight.
    pub track_interfaces: Vec<(String, i32)>,
    /// `track_script`: a `[[vrrp_script]]` by name and the weight that applies.
    pub track_scripts: Vec<(String, i32)>,
    /// `[vrrp_gateway]`'s instance on the real servers' network (its own VRID, the gateway as
    /// its one address, the same priority and state); it tracks its own interface and the
    /// group's weighted tracks ([`VrrpNode::group_tracks`]).
    pub gateway: Option<GatewayInstance>,
    /// In a `vrrp_sync_group` without `sync_group_tracking_weight`: the director's weighted
    /// tracks are the group's, on every member.
    pub weights_to_group: bool,
}

/// A director's second `vrrp_instance`: the real servers' gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayInstance {
    pub instance: crate::vrrp::InstanceConfig,
    /// `unicast = true`: every other director's address on the real servers' network.
    pub unicast_peers: Vec<Ipv4Addr>,
}

impl VrrpNode {
    /// keepalived's no_accept: traffic to and from the VIP dropped on the master. `accept`
    /// when stated, else strict mode's default, which accepts only for the address owner
    /// (priority 255; vrrp.c).
    pub fn no_accept(&self) -> bool {
        let owner = self.instance.base_priority() == 255;
        match self.accept {
            Some(accept) => !accept,
            None => self.strict && !owner,
        }
    }

    /// The instance with its tracks in keepalived's order: the primary interface (weight 0,
    /// as keepalived tracks it unless `dont_track_primary`), `track_interface` entries, then
    /// `track_script` entries. [`VrrpNode::track_names`] gives what each index is.
    pub fn instance_config(&self, scripts: &[VrrpScriptConfig]) -> crate::vrrp::InstanceConfig {
        let mut cfg = self.instance.clone();
        cfg.tracks = track_configs(self.track_names(), scripts);
        cfg
    }

    /// Every instance of the director, with its tracks: the VIP's first, then the gateway's.
    pub fn instance_configs(&self, scripts: &[VrrpScriptConfig]) -> Vec<crate::vrrp::InstanceConfig> {
        let mut out = vec![self.instance_config(scripts)];
        if let Some(gw) = &self.gateway {
            let mut cfg = gw.instance.clone();
            cfg.tracks = track_configs(self.gateway_tracks(gw), scripts);
            out.push(cfg);
        }
        out
    }

    /// What the tracks of each of [`VrrpNode::instance_configs`] follow, by index.
    pub fn member_tracks(&self) -> Vec<Vec<VrrpTrack>> {
        let mut out = vec![self.track_names()];
        if let Some(gw) = &self.gateway {
            out.push(self.gateway_tracks(gw));
        }
        out
    }

    /// The director's weighted tracks, which in a sync group are the group's
    /// (`vrrp_sync_group { track_script { ... weight W } }`): keepalived adds them to every
    /// member (`sync_group_tracking_init`), so they move the gateway's priority too. Unweighted
    /// ones stay the VIP instance's: down, it faults, and the group with it.
    pub fn group_tracks(&self) -> Vec<VrrpTrack> {
        if !self.weights_to_group {
            return Vec::new();
        }
        self.weighted_tracks()
    }

    /// The tracks that move the priority (weight 0 ones fault the instance instead).
    pub fn weighted_tracks(&self) -> Vec<VrrpTrack> {
        self.track_names()
            .into_iter()
            .filter(|t| matches!(t, VrrpTrack::Interface(_, w) | VrrpTrack::Script(_, w) if *w != 0))
            .collect()
    }

    /// The gateway instance's tracks: its own interface, then the group's weighted tracks.
    fn gateway_tracks(&self, gw: &GatewayInstance) -> Vec<VrrpTrack> {
        let mut out = vec![VrrpTrack::Interface(gw.instance.interface.clone(), 0)];
        out.extend(self.group_tracks());
        out
    }

    /// The unicast peers of each of [`VrrpNode::instance_configs`].
    pub fn member_peers(&self) -> Vec<Vec<Ipv4Addr>> {
        let mut out = vec![self.unicast_peers.clone()];
        if let Some(gw) = &self.gateway {
            out.push(gw.unicast_peers.clone());
        }
        out
    }

    /// What each of [`VrrpNode::instance_config`]'s tracks follows, by index.
    pub fn track_names(&self) -> Vec<VrrpTrack> {
        let primary = self.instance.interface.clone();
        let mut out = vec![VrrpTrack::Interface(primary.clone(), 0)];
        // keepalived ignores a track_interface on the own interface (resolution refuses it).
        out.extend(
            self.track_interfaces
                .iter()
                .filter(|(i, _)| *i != primary)
                .map(|(i, w)| VrrpTrack::Interface(i.clone(), *w)),
        );
        out.extend(self.track_scripts.iter().map(|(s, w)| VrrpTrack::Script(s.clone(), *w)));
        out
    }
}

/// The tracks of one instance as `crate::vrrp::Instance` runs them.
fn track_configs(tracks: Vec<VrrpTrack>, scripts: &[VrrpScriptConfig]) -> Vec<crate::vrrp::TrackConfig> {
    tracks
        .into_iter()
        .map(|track| match track {
            VrrpTrack::Interface(name, weight) => crate::vrrp::TrackConfig::new(&name, weight),
            VrrpTrack::Script(name, weight) => {
                let mut t = crate::vrrp::TrackConfig::new(&name, weight);
                let init_fail = scripts.iter().find(|s| s.name == name).is_some_and(|s| s.init_fail);
                // A script that has not run counts no weight (`initialise_track_script_state`):
                // "ok" adds nothing for a negative weight, "failed" nothing for a positive one.
                // `init_fail` starts it failed.
                t.ok_at_start = !init_fail && weight <= 0;
                t
            }
        })
        .collect()
}

/// What one track of a node follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrrpTrack {
    Interface(String, i32),
    Script(String, i32),
}

/// `[[vrrp_script]]`: keepalived's `vrrp_script`, run with `sh -c` in the director's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScriptConfig {
    pub name: String,
    /// As written; `{dir}` stands for the director's own run directory.
    pub script: String,
    pub interval: Duration,
    /// 0 = keepalived's default (the interval).
    pub timeout: Duration,
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

impl VrrpScriptConfig {
    /// The command for one director, `{dir}` replaced by its run directory.
    pub fn command_in(&self, dir: &std::path::Path) -> String {
        self.script.replace("{dir}", &dir.display().to_string())
    }
}

/// keepalived's health checkers on the service, resolved: what `crate::health::Monitor`
/// runs with (see `run::health`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// The virtual server's `delay_loop`: MISC_CHECK's timeout when `misc_timeout` is unset.
    pub delay_loop: Duration,
    pub quorum: u32,
    pub hysteresis: u32,
    pub omega: bool,
    /// Commands run in the director's namespace when quorum is gained / lost.
    pub quorum_up: Option<String>,
    pub quorum_down: Option<String>,
    pub sorry_server: Option<SorryServer>,
    pub sorry_server_inhibit: bool,
    /// Traffic starts once every checker has run once (the table as keepalived has it after
    /// its first checks); `false` sends at once, while the first checks are still due.
    pub traffic_waits_for_checks: bool,
    /// The pool: every real server but the sorry server, in declaration order.
    pub real_servers: Vec<RealServerCheck>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SorryServer {
    pub addr: std::net::SocketAddrV4,
    /// The `[[real_server]]` that serves as the sorry server (out of the pool), if one does.
    pub real_server: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RealServerCheck {
    pub name: String,
    pub inhibit_on_failure: bool,
    /// `None`: no checker, so keepalived never removes it.
    pub checker: Option<(crate::health::CheckerKind, crate::health::CheckerSettings)>,
}

impl HealthCheck {
    /// Whether `name` is the sorry server rather than a member of the pool.
    pub fn is_sorry(&self, name: &str) -> bool {
        self.sorry_server
            .as_ref()
            .is_some_and(|s| s.real_server.as_deref() == Some(name))
    }
}

/// A broadcast domain (one bridge in the lab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub subnet: Ipv4Net,
    /// `mtu`: every interface on it (and its bridge ports); `None` = the kernel's 1500.
    pub mtu: Option<u32>,
    /// `tso`: false = its hosts receive frames segmented to the MTU, as from a real wire
    /// (TSO off on the switch's ports), never a GSO super-frame.
    pub tso: bool,
}

/// The virtual service, as `ipvsadm -A` would state it.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `name`, else `<protocol>/<port>` (`tcp/80`).
    pub name: String,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub protocol: Protocol,
    pub mode: Mode,
    pub scheduler: Scheduler,
    pub flags: Vec<SchedFlag>,
    /// `ipvsadm -p`; `None` = no persistence.
    pub persistence: Option<Duration>,
    /// `ipvsadm -M` as a prefix length (32 = per client address, the default).
    pub persistence_prefix: u8,
    /// `ipvsadm -o`.
    pub one_packet: bool,
    /// The real servers in its table, by name, in scenario order.
    pub real_servers: Vec<String>,
    /// `real_port`: the real servers' port in a service after the first (the first uses
    /// each real server's own `port`); `None` = the service port.
    pub real_port: Option<u16>,
    /// `[service.expect]`: what this service's own requests must show.
    pub expect: Option<Expect>,
    /// `fwmark` with its `[service.mark]`: an `ipvsadm -f` service and the nft rule that marks
    /// its packets on the director. `port` is then the first marked port (or 80).
    pub fwmark: Option<crate::nft::mark::MarkRule>,
    /// `[service.origin]`: the imported file it came from, with the defaults applied.
    pub origin: Option<Origin>,
    /// `[service.check]` (for the first service also a real server's `check`): keepalived's
    /// checkers on this virtual_server, when any. A real server in two services is checked
    /// in each, separately.
    pub health: Option<HealthCheck>,
}

/// Where an imported service came from (`[service.origin]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub file: String,
    pub line: Option<u32>,
    pub defaults: Vec<OriginDefault>,
}

/// A default the import applied, as the source's own tool says it (`keepalived -t`).
#[derive(Debug, Clone, PartialEq)]
pub struct OriginDefault {
    /// The scenario key it set.
    pub sets: DefaultedKey,
    pub line: Option<u32>,
    pub said: String,
}

impl Service {
    /// Whether `name` is one of its real servers.
    pub fn has_real_server(&self, name: &str) -> bool {
        self.real_servers.iter().any(|n| n == name)
    }

    /// The service's address as a client reaches it on `vip`.
    pub fn key_on(&self, vip: Ipv4Addr) -> crate::lvs::ServiceKey {
        match &self.fwmark {
            Some(rule) => crate::lvs::ServiceKey::fwmark(rule.mark),
            None => crate::lvs::ServiceKey::new(self.protocol, vip, self.port),
        }
    }

    /// The ports its requests go to: a fwmark service's marked ports, else its port.
    pub fn ports(&self) -> Vec<u16> {
        match &self.fwmark {
            Some(rule) if !rule.ports.is_empty() => rule.ports.clone(),
            _ => vec![self.port],
        }
    }

    /// The persistence netmask as a dotted address (`ipvsadm -M`).
    pub fn persistence_netmask(&self) -> Ipv4Addr {
        Ipv4Net::new(Ipv4Addr::UNSPECIFIED, self.persistence_prefix)
            .map(|n| n.netmask())
            .unwrap_or(Ipv4Addr::BROADCAST)
    }
}

/// The director as the engine sees it. Its host (interfaces, routes) is in
/// `Scenario::hosts` under the same name.
#[derive(Debug, Clone, PartialEq)]
pub struct Director {
    pub name: String,
    /// The VIP this director answers for the first service (the first director's is `Service::vip`).
    pub vip: Ipv4Addr,
    /// FULLNAT: the director's address on the real-server network, used as
    /// the source of forwarded packets. `None` in other modes.
    pub local_address: Option<Ipv4Addr>,
    /// The `net.ipv4.vs.*` settings, as the engine takes them (the embedded engine emulates
    /// them, the kernel engine writes them); the kernel's defaults where the file says nothing.
    pub engine_sysctls: ipvs::Sysctls,
    /// `complete_checksums`: false forwards CHECKSUM_PARTIAL frames with their partial
    /// checksums, as a careless forwarder does (embedded engine: any mode; kernel: TUN, with the
    /// director's TX offload left on).
    pub complete_checksums: bool,
}

/// A real server as `ipvsadm -a` states it, plus how the lab makes it behave.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    pub name: String,
    pub address: Ipv4Addr,
    /// Port the server listens on (differs from the service port only in NAT/FULLNAT).
    pub port: u16,
    /// 0 = quiesced.
    pub weight: u32,
    pub state: ServerState,
    /// Reply delay; zero unless `state = "slow"`.
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Director,
    RealServer,
    Router,
}

/// One network namespace of the lab, with everything needed to set it up.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub name: String,
    pub role: Role,
    /// eth0, eth1, ... in declaration order.
    pub interfaces: Vec<Interface>,
    /// Addresses to put on `lo` (DR real servers: VIP/32).
    pub loopback_vips: Vec<Ipv4Net>,
    /// Addresses to put on `tunl0` (TUN real servers).
    pub tun_vips: Vec<Ipv4Net>,
    pub routes: Vec<Route>,
    /// Applied in order, inside the host's namespace. Keys are sysctl names
    /// with dots (`net.ipv4.conf.all.arp_ignore`); each was checked to exist for this host
    /// and values to have the shape the kernel takes (`scenario::sysctl`).
    pub sysctls: Vec<(String, String)>,
    /// `false` for a real server with `state = "down"`: its links stay down.
    pub link_up: bool,
    /// `nftables`: rules in nft syntax (placeholders replaced), loaded with `nft -f` into the
    /// host's namespace when the lab is built.
    pub nftables: Option<String>,
}

impl Host {
    /// The first interface's address (the host's "own" address).
    pub fn primary_address(&self) -> Option<Ipv4Addr> {
        self.interfaces.first().map(|i| i.address.addr())
    }

    /// The interface attached to `network`, if any.
    pub fn interface_on(&self, network: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.network == network)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// `eth0`, `eth1`, ...
    pub name: String,
    /// Name of the `Network` it is attached to.
    pub network: String,
    /// Address with the network's prefix length.
    pub address: Ipv4Net,
    /// Further addresses on this interface (extra client source addresses,
    /// a VIP with `vip_on = "eth0"`).
    pub secondary: Vec<Ipv4Net>,
    pub mac: Mac,
    /// The interface's `mtu`, else its network's; `None` = the kernel's default.
    pub mtu: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `0.0.0.0/0` for the default route.
    pub dst: Ipv4Net,
    /// `None` = on-link.
    pub via: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    pub requests: u32,
    pub connection: ConnectionMode,
    pub concurrency: u32,
    /// Clients that send, each with its source addresses (the first is the
    /// client's own address; the rest are secondaries on its interface).
    pub clients: Vec<TrafficClient>,
    pub source_port: Option<u16>,
    pub timeout: Duration,
    /// The HTTP request path (`/` by default), as the client sends it.
    pub path: PathAndQuery,
    /// `compare`, when the file states it; see [`Traffic::comparison`].
    pub compare: Option<Comparison>,
    /// `rate`: requests per second over all clients, paced by send time; `None` = back to back.
    pub rate: Option<f64>,
    /// `duration_ms`: no request is sent later than this after the traffic started.
    pub duration: Option<Duration>,
    /// `services`: the services the requests go to, round-robin, by index in
    /// `Scenario::services` (every one by default). They share one protocol.
    pub services: Vec<usize>,
    /// `destinations`: the addresses the requests cycle over instead of the VIP (fwmark
    /// services), with `hot_destination` repeated to take `hot_share` of them.
    pub destinations: Vec<Ipv4Addr>,
    /// `hot_destination` and `hot_share`.
    pub hot: Option<(Ipv4Addr, f64)>,
    /// `body_bytes`: each request is a POST with a body this long; 0 = a GET.
    pub body_bytes: u32,
}

impl Traffic {
    /// What the engines' runs must agree on: as the file says, else exact when one client
    /// sends one request at a time (the only shape where the order cannot race).
    pub fn comparison(&self) -> Comparison {
        self.compare
            .unwrap_or(if self.clients.len() <= 1 && self.concurrency == 1 {
                Comparison::Exact
            } else {
                Comparison::OrderFree
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrafficClient {
    pub name: String,
    pub sources: Vec<Ipv4Addr>,
}

/// What the run must show. `None`/empty = not checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Expect {
    /// Exactly these real servers answer (sorted by declaration order).
    pub backends: Option<Vec<String>>,
    /// Number of distinct real servers that answer.
    pub answering: Option<u32>,
    /// Expected share per real server, in declaration order.
    pub share: Option<Vec<(String, f64)>>,
    /// Tolerance on shares, as a fraction of each expected share (see `verdict`).
    pub tolerance: f64,
    /// Every up real server with weight > 0 gets its weighted share, within tolerance.
    pub even: bool,
    /// Exact prefix of the sequence of answering real servers.
    pub sequence: Option<Vec<String>>,
    /// Every client source address is always answered by the same real server.
    pub sticky: bool,
    /// Maximum failed requests.
    pub errors: u32,
    /// Causes the diagnosis must include.
    pub diagnosis: Vec<CauseId>,
    /// Real servers the health checker must have taken out (removed or inhibited) by the end.
    pub removed: Vec<String>,
    /// Each of `removed` was first taken out within this time of the checkers' start.
    pub removed_within: Option<Duration>,
    /// A checked server that an event takes down is out of the table within this time of it.
    pub removed_after_death: Option<Duration>,
    /// A checked server that an event brings back is in the table again within this time of it.
    pub restored_after_return: Option<Duration>,
    /// `destinations_sticky`: every destination address is answered by one real server only.
    pub destinations_sticky: bool,
    /// `hot_destination_servers_min`: `[traffic] hot_destination` is answered by at least this many.
    pub hot_destination_servers_min: Option<(Ipv4Addr, u32)>,
}

/// One fault, fired from the run while the traffic flows.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `name`, else `"<host> <action>"`: how reports and `[expect]` refer to it.
    pub name: String,
    pub at: EventAt,
    pub host: String,
    pub action: EventAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAt {
    /// Once this many requests have been sent (over every client).
    Request(u32),
    /// This long after the traffic started.
    Elapsed(Duration),
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventAction {
    /// A real server's service goes away: listener and open connections closed. A director
    /// stops gracefully: VRRP sends priority 0 and gives up the VIP (its table stays); without
    /// VRRP its engine stops.
    Stop,
    /// A real server's service listens again on its address and port, answering normally. A
    /// stopped or killed director comes back: links up, engine and VRRP started again.
    Start,
    /// A real server stops listening (new connections get RST) but serves what is open.
    Refuse,
    /// A real server answers after this delay.
    Slow(Duration),
    /// A real server answers with this HTTP status.
    Error(u16),
    /// Every interface of the host goes down (`false`) or up.
    Link(bool),
    /// A real server's weight in every director's table (`Engine::set_weight`).
    Weight(u32),
    /// Sysctls written in the host's namespace, in order.
    Sysctl(Vec<(String, String)>),
    /// A director's engine and VRRP stop at once, with no priority-0 advert, and its links go
    /// down (a power cut).
    Kill,
    /// A director's VRRP is frozen (SIGSTOP); its engine keeps forwarding.
    Freeze,
    /// A frozen director's VRRP goes on (SIGCONT).
    Thaw,
    /// VRRP adverts (IP protocol 112) dropped in and out of a director (`false`: let through).
    BlockAdverts(bool),
    /// A file created in the director's run directory (what a vrrp_script may test).
    Touch(String),
    /// A file removed from the director's run directory.
    Remove(String),
}

impl EventAction {
    /// The action as the file writes it, for reports.
    pub fn label(&self) -> String {
        match self {
            EventAction::Stop => "stop".into(),
            EventAction::Start => "start".into(),
            EventAction::Refuse => "refuse".into(),
            EventAction::Slow(d) => format!("slow {}ms", d.as_millis()),
            EventAction::Error(code) => format!("error {code}"),
            EventAction::Link(up) => format!("link {}", if *up { "up" } else { "down" }),
            EventAction::Weight(w) => format!("weight {w}"),
            EventAction::Sysctl(list) => {
                let set: Vec<String> = list.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("sysctl {}", set.join(" "))
            }
            EventAction::Kill => "kill".into(),
            EventAction::Freeze => "freeze".into(),
            EventAction::Thaw => "thaw".into(),
            EventAction::BlockAdverts(true) => "block adverts".into(),
            EventAction::BlockAdverts(false) => "allow adverts".into(),
            EventAction::Touch(f) => format!("touch {f}"),
            EventAction::Remove(f) => format!("remove {f}"),
        }
    }
}

/// What the run must show about its events. `None` = not checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventExpect {
    /// `errors_between = [a, b]`: every failed request was in flight between events a and b.
    pub errors_between: Option<(String, String)>,
    /// `answering_after = e`: every real server that answers in the run answers after event e.
    pub answering_after: Option<String>,
    /// `master = "lvs2"` (or a list, for a split brain): who is MASTER when the traffic ends.
    pub master: Option<Vec<String>>,
    /// `failover_ms`: at most this long from a director's event to the first request answered
    /// through the director that took over.
    pub failover_ms: Option<Duration>,
    /// `failed_during_failover`: at most this many requests failed in that window.
    pub failed_during_failover: Option<u32>,
}

impl Scenario {
    /// The first service: every scenario has one.
    /// Whether any service has health checkers.
    pub fn has_checkers(&self) -> bool {
        self.services.iter().any(|s| s.health.is_some())
    }

    /// The services with health checkers: (index, service, its checkers), in file order.
    pub fn checked_services(&self) -> impl Iterator<Item = (usize, &Service, &HealthCheck)> {
        self.services
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.health.as_ref().map(|h| (i, s, h)))
    }

    pub fn service(&self) -> &Service {
        &self.services[0]
    }

    /// Its services' modes, each once, the first service's first.
    pub fn modes(&self) -> Vec<Mode> {
        let mut modes = Vec::new();
        for svc in &self.services {
            if !modes.contains(&svc.mode) {
                modes.push(svc.mode);
            }
        }
        modes
    }

    /// `dr mode`, or `dr and nat modes` when its services differ.
    pub fn modes_phrase(&self) -> String {
        let words: Vec<&str> = self.modes().iter().map(|m| m.as_str()).collect();
        match words.as_slice() {
            [one] => format!("{one} mode"),
            [rest @ .., last] => format!("{} and {last} modes", rest.join(", ")),
            [] => String::new(),
        }
    }

    /// The VIP `director` serves `services[index]` on: the service's own, which the one director
    /// or the VRRP pair holds, else the director's (independent directors each serve every
    /// service on their own VIP, and then every service is on the first's).
    pub fn service_vip(&self, index: usize, director: &Director) -> Ipv4Addr {
        let svc = &self.services[index];
        if svc.vip != self.services[0].vip {
            svc.vip
        } else {
            director.vip
        }
    }

    /// The service a request sent to `target` is for: the one on its port whose VIP is its
    /// address on some director (by port alone without directors, in `direct` mode).
    pub fn service_index_of(&self, target: std::net::SocketAddr) -> Option<usize> {
        let std::net::IpAddr::V4(addr) = target.ip() else {
            return None;
        };
        // A fwmark service takes what its rule marks, whatever the address service on that port.
        if let Some(i) = (0..self.services.len()).find(|&i| {
            let svc = &self.services[i];
            svc.fwmark
                .as_ref()
                .is_some_and(|rule| rule.matches(svc.protocol, addr, target.port()))
        }) {
            return Some(i);
        }
        (0..self.services.len()).find(|&i| {
            self.services[i].port == target.port()
                && (self.directors.is_empty() || self.directors.iter().any(|d| self.service_vip(i, d) == addr))
        })
    }

    /// Every VIP `director` serves, the first service's first, each once.
    pub fn director_vips(&self, director: &Director) -> Vec<Ipv4Addr> {
        let mut vips: Vec<Ipv4Addr> = Vec::new();
        for index in 0..self.services.len() {
            let vip = self.service_vip(index, director);
            if !vips.contains(&vip) {
                vips.push(vip);
            }
        }
        vips
    }

    /// The port `rs` listens on in `services[service]`, which is its destination port there.
    pub fn real_port(&self, service: usize, rs: &RealServer) -> u16 {
        let svc = &self.services[service];
        match svc.real_port {
            Some(port) => port,
            None if service == 0 => rs.port,
            None => svc.port,
        }
    }

    /// `rs`'s port in `services[service]`'s IPVS table: 0 in a fwmark service (each packet keeps
    /// its own port; keepalived clears a DR real server's there), else its [`Scenario::real_port`].
    pub fn table_port(&self, service: usize, rs: &RealServer) -> u16 {
        match self.services[service].fwmark {
            Some(_) => 0,
            None => self.real_port(service, rs),
        }
    }

    /// The ports and protocols `rs` listens on: one per service it is in (two may share one).
    pub fn listeners(&self, rs: &RealServer) -> Vec<(u16, Protocol)> {
        let mut binds = Vec::new();
        for (index, svc) in self.services.iter().enumerate() {
            // A fwmark service keeps each packet's port: its servers listen on every marked one.
            let ports = match svc.fwmark {
                Some(_) => svc.ports(),
                None => vec![self.real_port(index, rs)],
            };
            for port in ports {
                let bind = (port, svc.protocol);
                if svc.has_real_server(&rs.name) && !binds.contains(&bind) {
                    binds.push(bind);
                }
            }
        }
        binds
    }

    /// The first director (`None` in direct mode), for callers that model one.
    pub fn director(&self) -> Option<&Director> {
        self.directors.first()
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    pub fn hosts_with_role(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.role == role)
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name == name)
    }

    pub fn real_server(&self, name: &str) -> Option<&RealServer> {
        self.real_servers.iter().find(|r| r.name == name)
    }

    /// Name of the host that owns `addr` (any interface, primary or secondary).
    pub fn host_by_address(&self, addr: Ipv4Addr) -> Option<&Host> {
        self.hosts.iter().find(|h| {
            h.interfaces
                .iter()
                .any(|i| i.address.addr() == addr || i.secondary.iter().any(|s| s.addr() == addr))
        })
    }
}
