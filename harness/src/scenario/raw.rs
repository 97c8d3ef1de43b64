//! The scenario file as written: every field optional and spanned, so that
//! defaults and validation can point back at the text. Words from closed
//! lists stay strings here; `validate` turns them into `keywords` enums.

use std::collections::BTreeMap;

use serde::Deserialize;

mod spanned;
pub use spanned::S;

/// Top-level scalar keys (`name`, `description`, `engine`).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawTop {
    pub name: Option<S<String>>,
    pub description: Option<S<String>>,
    pub engine: Option<S<String>>,
    /// Who runs VRRP on the directors: `keepalived`, `embedded` or `auto`.
    pub vrrp: Option<S<String>>,
    /// Who runs the health checkers: `keepalived`, `embedded` or `auto`.
    pub checkers: Option<S<String>>,
}

/// `[vrrp_instance]`, or the same keys on one `[[director]]` overriding it: keepalived's
/// `vrrp_instance` keywords (seconds, fractions allowed) that the directors share.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawVrrpInstance {
    pub name: Option<S<String>>,
    pub virtual_router_id: Option<S<i64>>,
    pub advert_int: Option<S<f64>>,
    pub version: Option<S<i64>>,
    pub auth_pass: Option<S<String>>,
    pub unicast: Option<S<bool>>,
    pub garp_master_delay: Option<S<f64>>,
    pub garp_master_repeat: Option<S<i64>>,
    pub garp_master_refresh: Option<S<f64>>,
    pub garp_master_refresh_repeat: Option<S<i64>>,
    pub down_timer_adverts: Option<S<i64>>,
    pub vrrp_strict: Option<S<bool>>,
    pub accept: Option<S<bool>>,
}

/// `[vrrp_gateway]`: a second `vrrp_instance` per director on the real servers' network,
/// holding their default gateway (LVS-NAT). Its timers and auth are `[vrrp_instance]`'s.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawVrrpGateway {
    /// The instance's name (default `VI_GW`).
    pub name: Option<S<String>>,
    /// Its own VRID (required).
    pub virtual_router_id: Option<S<i64>>,
    /// The floating gateway address on the real servers' network (required).
    pub address: Option<S<String>>,
}

/// `[vrrp_sync_group]`: keepalived's `vrrp_sync_group NAME { group { ... } }`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawVrrpSyncGroup {
    /// Default `VG_1`.
    pub name: Option<S<String>>,
    /// The instances that move together, by name (default: every instance).
    pub group: Option<S<Vec<S<String>>>>,
    /// keepalived's `sync_group_tracking_weight`: each member keeps its own weighted tracks
    /// (the directors' stay on the VIP's instance alone) instead of the group taking them.
    pub tracking_weight: Option<S<bool>>,
}

/// One `track_interface` entry of a director.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawTrackInterface {
    pub interface: Option<S<String>>,
    pub weight: Option<S<i64>>,
}

/// One `track_script` entry of a director: a `[[vrrp_script]]` by name.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawTrackScript {
    pub script: Option<S<String>>,
    pub weight: Option<S<i64>>,
}

/// `[[vrrp_script]]`: keepalived's `vrrp_script` block.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawVrrpScript {
    pub name: Option<S<String>>,
    pub script: Option<S<String>>,
    pub interval: Option<S<f64>>,
    pub timeout: Option<S<f64>>,
    pub weight: Option<S<i64>>,
    pub rise: Option<S<i64>>,
    pub fall: Option<S<i64>>,
    pub init_fail: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawService {
    /// Names a service among several (`[[service]]`).
    pub name: Option<S<String>>,
    pub vip: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub protocol: Option<S<String>>,
    /// This service's forwarding mode (its destinations'); a later service without it takes the first's.
    pub mode: Option<S<String>>,
    pub scheduler: Option<S<String>>,
    pub flags: Option<Vec<S<String>>>,
    pub persistence: Option<S<i64>>,
    pub persistence_netmask: Option<S<String>>,
    pub one_packet: Option<S<bool>>,
    /// `[service.check]`: keepalived's health checker for every real server.
    pub check: Option<RawCheck>,
    /// The real servers in this service's table (default: every one).
    pub real_servers: Option<Vec<S<String>>>,
    /// The real servers' port in this service, for a service after the first.
    pub real_port: Option<S<i64>>,
    /// `[service.expect]`: the spread of this service's own requests.
    pub expect: Option<RawExpect>,
    /// `ipvsadm -f`: a firewall-mark service, classified by `[service.mark]`.
    pub fwmark: Option<S<i64>>,
    /// `[service.mark]`: which packets the director marks for the fwmark service.
    pub mark: Option<RawMark>,
    /// `[service.origin]`: the file an import made it from, and the defaults it applied.
    pub origin: Option<RawOrigin>,
}

/// `[service.mark]`: destination addresses (`a.b.c.d`, `a.b.c.d/n`, `a.b.c.d-e.f.g.h`) and ports.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawMark {
    pub addresses: Option<Vec<S<String>>>,
    pub ports: Option<Vec<S<i64>>>,
}

/// `[service.origin]`, written by `lvslab import`: the file and line of the service, and each
/// keepalived default the import applied, in keepalived's words, with the key it set.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawOrigin {
    pub file: Option<S<String>>,
    pub line: Option<S<i64>>,
    pub defaults: Option<Vec<RawOriginDefault>>,
}

/// One `[service.origin] defaults` entry: `{ sets = "persistence", line = 3, said = "…" }`.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawOriginDefault {
    pub sets: Option<S<String>>,
    pub line: Option<S<i64>>,
    pub said: Option<S<String>>,
}

/// `[service.check]`, or a `[[real_server]]`'s `check = { ... }` overriding it. Names and
/// units are keepalived.conf's (seconds, fractions allowed).
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
pub struct RawCheck {
    pub kind: Option<S<String>>,
    pub delay_loop: Option<S<f64>>,
    pub connect_timeout: Option<S<f64>>,
    pub retry: Option<S<i64>>,
    pub delay_before_retry: Option<S<f64>>,
    pub warmup: Option<S<f64>>,
    pub alpha: Option<S<bool>>,
    pub omega: Option<S<bool>>,
    pub inhibit_on_failure: Option<S<bool>>,
    pub log_all_failures: Option<S<bool>>,
    pub quorum: Option<S<i64>>,
    pub hysteresis: Option<S<i64>>,
    pub quorum_up: Option<S<String>>,
    pub quorum_down: Option<S<String>>,
    pub sorry_server: Option<S<String>>,
    pub sorry_server_inhibit: Option<S<bool>>,
    pub path: Option<S<String>>,
    pub status_code: Option<S<RawStatusCodes>>,
    pub digest: Option<S<String>>,
    pub command: Option<S<String>>,
    pub misc_timeout: Option<S<f64>>,
    pub misc_dynamic: Option<S<bool>>,
    pub traffic_waits_for_checks: Option<S<bool>>,
}

/// `status_code = 200`, `"200-299"` or a list of either.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawStatusCodes {
    One(RawStatusCode),
    List(Vec<RawStatusCode>),
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawStatusCode {
    Code(i64),
    Range(String),
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawInterface {
    pub network: Option<S<String>>,
    pub address: Option<S<String>>,
    pub mac: Option<S<String>>,
    /// This interface's MTU, over its network's.
    pub mtu: Option<S<i64>>,
}

/// `sysctl = { "net.ipv4..." = "0" }`: values may be written as strings or numbers.
/// Applied after the mode's defaults, in name order.
pub type RawSysctls = BTreeMap<String, S<SysctlValue>>;

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SysctlValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl SysctlValue {
    pub fn to_sysctl_string(&self) -> String {
        match self {
            SysctlValue::Text(s) => s.clone(),
            SysctlValue::Int(i) => i.to_string(),
            SysctlValue::Bool(b) => u8::from(*b).to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawDirector {
    pub name: Option<S<String>>,
    /// This director's own VIP (several directors: one VIP each).
    pub vip: Option<S<String>>,
    pub address: Option<S<String>>,
    pub network: Option<S<String>>,
    pub gateway: Option<S<String>>,
    pub sysctl: Option<RawSysctls>,
    pub interfaces: Option<S<Vec<S<RawInterface>>>>,
    /// Who runs this director's VRRP, over the top-level `vrrp` (a mixed pair).
    pub vrrp: Option<S<String>>,
    /// keepalived's per-node `vrrp_instance` keys.
    pub state: Option<S<String>>,
    pub priority: Option<S<i64>>,
    pub nopreempt: Option<S<bool>>,
    pub preempt_delay: Option<S<f64>>,
    pub track_interface: Option<S<Vec<S<RawTrackInterface>>>>,
    pub track_script: Option<S<Vec<S<RawTrackScript>>>>,
    // `[vrrp_instance]` keys overridden on this director.
    pub virtual_router_id: Option<S<i64>>,
    pub advert_int: Option<S<f64>>,
    pub version: Option<S<i64>>,
    pub auth_pass: Option<S<String>>,
    pub unicast: Option<S<bool>>,
    pub garp_master_delay: Option<S<f64>>,
    pub garp_master_repeat: Option<S<i64>>,
    pub garp_master_refresh: Option<S<f64>>,
    pub garp_master_refresh_repeat: Option<S<i64>>,
    pub down_timer_adverts: Option<S<i64>>,
    pub vrrp_strict: Option<S<bool>>,
    pub accept: Option<S<bool>>,
    /// nftables rules in nft syntax, applied with `nft -f` in this host's namespace;
    /// `{vip}` stands for the service VIP.
    pub nftables: Option<S<String>>,
    /// `false` forwards partial (offloaded) checksums as they came: any mode on the embedded
    /// engine, `tun` only on the kernel engine (TX offload left on).
    pub complete_checksums: Option<S<bool>>,
}

impl RawDirector {
    /// The `[vrrp_instance]` keys this director overrides.
    pub fn instance_overrides(&self) -> RawVrrpInstance {
        RawVrrpInstance {
            name: None,
            virtual_router_id: self.virtual_router_id.clone(),
            advert_int: self.advert_int.clone(),
            version: self.version.clone(),
            auth_pass: self.auth_pass.clone(),
            unicast: self.unicast.clone(),
            garp_master_delay: self.garp_master_delay.clone(),
            garp_master_repeat: self.garp_master_repeat.clone(),
            garp_master_refresh: self.garp_master_refresh.clone(),
            garp_master_refresh_repeat: self.garp_master_refresh_repeat.clone(),
            down_timer_adverts: self.down_timer_adverts.clone(),
            vrrp_strict: self.vrrp_strict.clone(),
            accept: self.accept.clone(),
        }
    }

    /// Whether this director states anything of VRRP's.
    pub fn states_vrrp(&self) -> bool {
        self.state.is_some()
            || self.vrrp.is_some()
            || self.priority.is_some()
            || self.nopreempt.is_some()
            || self.preempt_delay.is_some()
            || self.track_interface.is_some()
            || self.track_script.is_some()
            || self.instance_overrides().states_anything()
    }
}

impl RawVrrpInstance {
    fn states_anything(&self) -> bool {
        self.virtual_router_id.is_some()
            || self.advert_int.is_some()
            || self.version.is_some()
            || self.auth_pass.is_some()
            || self.unicast.is_some()
            || self.garp_master_delay.is_some()
            || self.garp_master_repeat.is_some()
            || self.garp_master_refresh.is_some()
            || self.garp_master_refresh_repeat.is_some()
            || self.down_timer_adverts.is_some()
            || self.vrrp_strict.is_some()
            || self.accept.is_some()
    }
}

impl RawScenario {
    /// Whether the directors run VRRP: a `[vrrp_instance]`, or a director stating VRRP keys.
    pub fn has_vrrp(&self) -> bool {
        self.vrrp_instance.is_some()
            || self.vrrp_gateway.is_some()
            || self.directors.iter().any(RawDirector::states_vrrp)
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawRealServer {
    pub name: Option<S<String>>,
    pub address: Option<S<String>>,
    pub network: Option<S<String>>,
    pub weight: Option<S<i64>>,
    pub port: Option<S<i64>>,
    pub state: Option<S<String>>,
    pub delay_ms: Option<S<i64>>,
    pub vip_on: Option<S<String>>,
    pub vip_prefix: Option<S<i64>>,
    pub arp_ignore: Option<S<i64>>,
    pub arp_announce: Option<S<i64>>,
    pub rp_filter: Option<S<i64>>,
    pub gateway: Option<S<String>>,
    pub mac: Option<S<String>>,
    pub sysctl: Option<RawSysctls>,
    /// Overrides of `[service.check]` for this server.
    pub check: Option<RawCheck>,
    /// keepalived's per-real-server `inhibit_on_failure`.
    pub inhibit_on_failure: Option<S<bool>>,
    /// nftables rules in nft syntax, applied with `nft -f` in this host's namespace;
    /// `{vip}` stands for the service VIP.
    pub nftables: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawClient {
    pub name: Option<S<String>>,
    pub address: Option<S<String>>,
    pub network: Option<S<String>>,
    pub gateway: Option<S<String>>,
    pub mac: Option<S<String>>,
    pub sysctl: Option<RawSysctls>,
    /// nftables rules in nft syntax, applied with `nft -f` in this host's namespace;
    /// `{vip}` stands for the service VIP.
    pub nftables: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawNetwork {
    pub name: Option<S<String>>,
    pub subnet: Option<S<String>>,
    /// MTU of every interface on the network (and its bridge ports).
    pub mtu: Option<S<i64>>,
    /// `false`: frames reach the hosts segmented to the MTU, as from a real wire.
    pub tso: Option<S<bool>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawRouter {
    pub name: Option<S<String>>,
    pub interfaces: Option<S<Vec<S<RawInterface>>>>,
    pub sysctl: Option<RawSysctls>,
    /// nftables rules in nft syntax, applied with `nft -f` in this host's namespace;
    /// `{vip}` stands for the service VIP.
    pub nftables: Option<S<String>>,
}

/// `sources = 3` or `sources = ["192.0.2.201", "192.0.2.150"]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawSources {
    Count(i64),
    List(Vec<String>),
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawTraffic {
    pub requests: Option<S<i64>>,
    pub connection: Option<S<String>>,
    pub concurrency: Option<S<i64>>,
    pub sources: Option<S<RawSources>>,
    pub source_port: Option<S<i64>>,
    pub timeout_ms: Option<S<i64>>,
    pub clients: Option<Vec<S<String>>>,
    pub path: Option<S<String>>,
    pub compare: Option<S<String>>,
    pub rate: Option<S<f64>>,
    pub duration_ms: Option<S<i64>>,
    pub services: Option<Vec<S<String>>>,
    /// Destination addresses the requests cycle over (fwmark services): addresses and ranges.
    pub destinations: Option<Vec<S<String>>>,
    /// One of `destinations` that gets `hot_share` of the requests.
    pub hot_destination: Option<S<String>>,
    pub hot_share: Option<S<f64>>,
    /// Each request is a POST with a body of this many bytes.
    pub body_bytes: Option<S<i64>>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawExpect {
    pub backends: Option<Vec<S<String>>>,
    pub answering: Option<S<i64>>,
    pub share: Option<S<BTreeMap<String, S<f64>>>>,
    pub tolerance: Option<S<f64>>,
    pub even: Option<S<bool>>,
    pub sequence: Option<Vec<S<String>>>,
    pub sticky: Option<S<bool>>,
    pub errors: Option<S<i64>>,
    pub diagnosis: Option<Vec<S<String>>>,
    /// Real servers the health checker must have taken out by the end of the run.
    pub removed: Option<Vec<S<String>>>,
    /// Each of `removed` was out within this many ms of the checkers' start.
    pub removed_within_ms: Option<S<i64>>,
    /// Each outage a checked server's down event starts ends in its removal within this many ms.
    pub removed_after_death_ms: Option<S<i64>>,
    /// Each checked server an up event brings back is restored within this many ms.
    pub restored_after_return_ms: Option<S<i64>>,
    pub errors_between: Option<S<Vec<S<String>>>>,
    pub answering_after: Option<S<String>>,
    /// `master = "lvs2"` or a list of directors (split brain).
    pub master: Option<S<RawNames>>,
    pub failover_ms: Option<S<i64>>,
    pub failed_during_failover: Option<S<i64>>,
    /// Every destination address is answered by one real server only.
    pub destinations_sticky: Option<S<bool>>,
    /// The hot destination is answered by at least this many real servers.
    pub hot_destination_servers_min: Option<S<i64>>,
}

/// One name or a list of names.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum RawNames {
    One(String),
    List(Vec<String>),
}

/// `[[event]]`: when (`at_request` or `at_ms`), on which host, and one action key.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct RawEvent {
    pub name: Option<S<String>>,
    pub at_request: Option<S<i64>>,
    pub at_ms: Option<S<i64>>,
    pub host: Option<S<String>>,
    pub stop: Option<S<bool>>,
    pub start: Option<S<bool>>,
    pub refuse: Option<S<bool>>,
    /// `"300ms"`, `"2s"`.
    pub slow: Option<S<String>>,
    pub error: Option<S<i64>>,
    /// `"down"` or `"up"`.
    pub link: Option<S<String>>,
    pub weight: Option<S<i64>>,
    pub sysctl: Option<S<RawSysctls>>,
    pub kill: Option<S<bool>>,
    pub freeze: Option<S<bool>>,
    pub thaw: Option<S<bool>>,
    pub block_adverts: Option<S<bool>>,
    /// A file created / removed in the director's run directory (`{dir}` of a vrrp_script).
    pub touch: Option<S<String>>,
    pub remove: Option<S<String>>,
}

/// The whole file, section by section. An entry that failed to deserialize
/// is left out (its problem is already reported) and `complete` is false.
#[derive(Debug, Default)]
pub struct RawScenario {
    pub top: RawTop,
    /// `[service]`, or the first `[[service]]`.
    pub service: RawService,
    /// The `[[service]]` entries after the first.
    pub more_services: Vec<RawService>,
    /// Header span of each service, the first included.
    pub service_spans: Vec<Option<std::ops::Range<usize>>>,
    /// One `[director]` table or several `[[director]]` entries; empty when absent.
    pub directors: Vec<RawDirector>,
    /// Span of the `director` key or header (for "no director in direct mode").
    pub director_span: Option<std::ops::Range<usize>>,
    /// Header span of each director, parallel to `directors`.
    pub director_spans: Vec<Option<std::ops::Range<usize>>>,
    pub real_servers: Vec<RawRealServer>,
    pub clients: Vec<RawClient>,
    pub networks: Vec<RawNetwork>,
    pub routers: Vec<RawRouter>,
    pub traffic: RawTraffic,
    pub expect: RawExpect,
    pub events: Vec<RawEvent>,
    /// `[vrrp_instance]`, and the span of its header.
    pub vrrp_instance: Option<RawVrrpInstance>,
    pub vrrp_instance_span: Option<std::ops::Range<usize>>,
    pub vrrp_gateway: Option<RawVrrpGateway>,
    pub vrrp_gateway_span: Option<std::ops::Range<usize>>,
    pub vrrp_sync_group: Option<RawVrrpSyncGroup>,
    pub vrrp_sync_group_span: Option<std::ops::Range<usize>>,
    pub vrrp_scripts: Vec<RawVrrpScript>,
    pub vrrp_script_spans: Vec<Option<std::ops::Range<usize>>>,
    pub event_spans: Vec<Option<std::ops::Range<usize>>>,
    /// Spans of each `[[real_server]]` etc. header, parallel to the vectors.
    pub real_server_spans: Vec<Option<std::ops::Range<usize>>>,
    pub client_spans: Vec<Option<std::ops::Range<usize>>>,
    pub network_spans: Vec<Option<std::ops::Range<usize>>>,
    pub router_spans: Vec<Option<std::ops::Range<usize>>>,
    /// False when some section had a type error: references to names may
    /// then point at an entry that was dropped, so they are not checked.
    pub complete: bool,
}

/// The keys of `[vrrp_instance]` (also valid on a director, overriding it).
const VRRP_INSTANCE_KEYS: &[&str] = &[
    "name",
    "virtual_router_id",
    "advert_int",
    "version",
    "auth_pass",
    "unicast",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "down_timer_adverts",
    "vrrp_strict",
    "accept",
];

/// Known keys per section, for "did you mean" on unknown keys.
pub fn known_keys(section: &str) -> &'static [&'static str] {
    match section {
        "" => &[
            "name",
            "description",
            "engine",
            "service",
            "director",
            "real_server",
            "client",
            "network",
            "router",
            "traffic",
            "expect",
            "event",
            "vrrp",
            "vrrp_instance",
            "vrrp_gateway",
            "vrrp_sync_group",
            "vrrp_script",
            "checkers",
        ],
        "vrrp_instance" => VRRP_INSTANCE_KEYS,
        "vrrp_gateway" => &["name", "virtual_router_id", "address"],
        "vrrp_sync_group" => &["name", "group", "tracking_weight"],
        "vrrp_script" => &[
            "name",
            "script",
            "interval",
            "timeout",
            "weight",
            "rise",
            "fall",
            "init_fail",
        ],
        "track_interface" => &["interface", "weight"],
        "track_script" => &["script", "weight"],
        "service" => &[
            "name",
            "vip",
            "port",
            "protocol",
            "mode",
            "scheduler",
            "flags",
            "persistence",
            "persistence_netmask",
            "one_packet",
            "check",
            "real_servers",
            "real_port",
            "expect",
            "origin",
            "fwmark",
            "mark",
        ],
        "origin" => &["file", "line", "defaults"],
        "origin_default" => &["sets", "line", "said"],
        "check" => &[
            "kind",
            "delay_loop",
            "connect_timeout",
            "retry",
            "delay_before_retry",
            "warmup",
            "alpha",
            "omega",
            "inhibit_on_failure",
            "log_all_failures",
            "quorum",
            "hysteresis",
            "quorum_up",
            "quorum_down",
            "sorry_server",
            "sorry_server_inhibit",
            "path",
            "status_code",
            "digest",
            "command",
            "misc_timeout",
            "misc_dynamic",
            "traffic_waits_for_checks",
        ],
        "director" => &[
            "name",
            "vip",
            "address",
            "network",
            "gateway",
            "sysctl",
            "interfaces",
            "vrrp",
            "state",
            "priority",
            "nopreempt",
            "preempt_delay",
            "track_interface",
            "track_script",
            "virtual_router_id",
            "advert_int",
            "version",
            "auth_pass",
            "unicast",
            "garp_master_delay",
            "garp_master_repeat",
            "garp_master_refresh",
            "garp_master_refresh_repeat",
            "down_timer_adverts",
            "vrrp_strict",
            "accept",
            "nftables",
            "complete_checksums",
        ],
        "interface" => &["network", "address", "mac", "mtu"],
        "real_server" => &[
            "name",
            "address",
            "network",
            "weight",
            "port",
            "state",
            "delay_ms",
            "vip_on",
            "vip_prefix",
            "arp_ignore",
            "arp_announce",
            "rp_filter",
            "gateway",
            "mac",
            "sysctl",
            "check",
            "inhibit_on_failure",
            "nftables",
        ],
        "client" => &["name", "address", "network", "gateway", "mac", "sysctl", "nftables"],
        "network" => &["name", "subnet", "mtu", "tso"],
        "router" => &["name", "interfaces", "sysctl", "nftables"],
        "traffic" => &[
            "requests",
            "connection",
            "concurrency",
            "sources",
            "source_port",
            "timeout_ms",
            "clients",
            "path",
            "compare",
            "rate",
            "duration_ms",
            "services",
            "body_bytes",
            "destinations",
            "hot_destination",
            "hot_share",
        ],
        "expect" => &[
            "backends",
            "answering",
            "share",
            "tolerance",
            "even",
            "sequence",
            "sticky",
            "errors",
            "diagnosis",
            "removed",
            "removed_within_ms",
            "removed_after_death_ms",
            "restored_after_return_ms",
            "errors_between",
            "answering_after",
            "master",
            "failover_ms",
            "failed_during_failover",
            "destinations_sticky",
            "hot_destination_servers_min",
        ],
        "event" => &[
            "name",
            "at_request",
            "at_ms",
            "host",
            "stop",
            "start",
            "refuse",
            "slow",
            "error",
            "link",
            "weight",
            "sysctl",
            "kill",
            "freeze",
            "thaw",
            "block_adverts",
            "touch",
            "remove",
        ],
        _ => &[],
    }
}
