//! The VRRP side of keepalived.conf: `vrrp_instance`, `vrrp_script`, `vrrp_sync_group`
//! and the `vrrp_*` defaults of `global_defs`, read the way keepalived 2.2.7 reads them.
//! Values keepalived refuses or changes are changed the same way here, and each change
//! is a warning whose text is keepalived's own (`keepalived -t` prints the same line):
//! the parser's handlers (vrrp/vrrp_parser.c, core/global_parser.c, vrrp/vrrp_track.c)
//! while reading, then `vrrp_complete_instance` (vrrp/vrrp.c) in its order.

use std::net::IpAddr;
use std::time::Duration;

use crate::vrrp::{normalise_advert_int, Version};

use super::error::Warning;
use super::keepalived::Node;
use super::keepalived_numbers::LineReader;

const PRIO_OWNER: u8 = 255;
const PRIO_DEFAULT: u8 = 100;
const DOWN_TIMER_ADVERTS: u32 = 3;
/// `TIMER_MAX_SEC`: the largest preempt_delay.
const MAX_PREEMPT_DELAY_S: u32 = 1000;

/// One address of `virtual_ipaddress`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub line: usize,
    pub addr: IpAddr,
    pub prefix: Option<u8>,
    pub dev: Option<String>,
    pub label: Option<String>,
}

/// A `track_interface` or `track_script` entry, its weight resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub line: usize,
    pub name: String,
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub line: usize,
    pub addr: IpAddr,
}

/// A `vrrp_instance` after keepalived's defaults and fix-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    pub line: usize,
    pub name: String,
    pub interface: Option<String>,
    pub vrid: u8,
    pub priority: u8,
    /// False when keepalived derived it (255 for `state MASTER`, else 100).
    pub priority_given: bool,
    /// The initial wish: `state MASTER` (or derived from priority 255).
    pub master: bool,
    pub version: Version,
    pub advert_int: Duration,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    /// `auth_type PASS` password (at most 8 characters) when keepalived keeps it.
    pub auth_pass: Option<String>,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peers: Vec<Peer>,
    pub vips: Vec<Vip>,
    pub track_interfaces: Vec<Track>,
    pub track_scripts: Vec<Track>,
    pub garp_master_delay: u32,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: u32,
    pub garp_master_refresh_repeat: u32,
    pub down_timer_adverts: u32,
    pub strict: bool,
    pub accept: bool,
    /// `notify*` keywords with their lines: lvslab runs no notify script.
    pub notify: Vec<(usize, String)>,
}

impl VrrpInstance {
    pub fn carries(&self, addr: IpAddr) -> bool {
        self.vips.iter().any(|v| v.addr == addr)
    }
}

/// A `vrrp_script` block with keepalived's defaults (`alloc_vrrp_script`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpScript {
    pub line: usize,
    pub name: String,
    /// The command as written (quotes removed).
    pub script: Option<String>,
    pub interval: u32,
    pub timeout: u32,
    pub weight: i32,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VrrpConfig {
    pub instances: Vec<VrrpInstance>,
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_sync_group` names with their lines.
    pub sync_groups: Vec<(usize, String)>,
    /// Each sync group's members, parallel to `sync_groups`.
    pub sync_members: Vec<Vec<String>>,
    /// Each sync group's `sync_group_tracking_weight`, parallel to `sync_groups`.
    pub sync_tracking_weight: Vec<bool>,
}

/// `global_defs` values that instances allocated after them start from (`alloc_vrrp`).
#[derive(Debug, Clone)]
struct Globals {
    strict: bool,
    version: Version,
    garp_master_delay: u32,
    garp_master_repeat: u32,
    garp_master_refresh: u32,
    garp_master_refresh_repeat: u32,
}

impl Default for Globals {
    fn default() -> Self {
        Globals {
            strict: false,
            version: Version::V2,
            garp_master_delay: 5,
            garp_master_repeat: 5,
            garp_master_refresh: 0,
            garp_master_refresh_repeat: 1,
        }
    }
}

/// Reads every VRRP block of the top-level statements, in file order (as keepalived does:
/// a vrrp_script must come before the instance that tracks it, global_defs before the
/// instances that take its defaults).
pub(super) fn read(nodes: &[Node], warnings: &mut Vec<Warning>) -> VrrpConfig {
    let mut globals = Globals::default();
    let mut config = VrrpConfig::default();
    let mut group_tracks: Vec<(String, GroupTracks)> = Vec::new();
    for node in nodes {
        match node.keyword.as_str() {
            "global_defs" => read_globals(node, &mut globals, warnings),
            "vrrp_script" => {
                if let Some(script) = read_script(node, warnings) {
                    config.scripts.push(script);
                }
            }
            "vrrp_sync_group" => {
                let name = node.args.first().cloned().unwrap_or_default();
                config.sync_groups.push((node.line, name.clone()));
                let mut tracks = GroupTracks::default();
                let mut tracking_weight = false;
                // `group { A B }`, or (older files) the members on their own lines.
                let mut members = Vec::new();
                for child in node.children.iter().flatten() {
                    match child.keyword.as_str() {
                        "group" => members.extend(
                            child
                                .children
                                .iter()
                                .flatten()
                                .flat_map(|m| std::iter::once(m.keyword.clone()).chain(m.args.iter().cloned())),
                        ),
                        keyword if keyword.starts_with("notify_") || keyword == "notify" => {
                            warnings.push(Warning::new(
                                child.line,
                                format!("({name}) {keyword} is not run: lvslab does not run notify scripts (the run reports the transitions)"),
                            ))
                        }
                        "track_interface" => read_tracks(child, &name, None, &mut tracks.interfaces, warnings),
                        "track_script" => {
                            read_tracks(child, &name, Some(&config.scripts), &mut tracks.scripts, warnings)
                        }
                        // vrrp_parser.c: both keywords set sgroup_tracking_weight.
                        "sync_group_tracking_weight" => tracking_weight = true,
                        "global_tracking" => {
                            warnings.push(Warning::new(
                                child.line,
                                format!("({name}) global_tracking is deprecated. Use track_interface/script/file on the sync group"),
                            ));
                            tracking_weight = true;
                        }
                        "smtp_alert" | "track_file" | "track_process" | "track_bfd" => warnings.push(Warning::new(
                            child.line,
                            format!("({name}) {} is not modelled - ignored", child.keyword),
                        )),
                        other => members.extend(std::iter::once(other.to_string()).chain(child.args.iter().cloned())),
                    }
                }
                config.sync_members.push(members);
                config.sync_tracking_weight.push(tracking_weight);
                group_tracks.push((name, tracks));
            }
            "vrrp_instance" => {
                let Some(name) = node.args.first().filter(|_| node.args.len() == 1) else {
                    warnings.push(Warning::new(node.line, "vrrp_instance must have a name"));
                    continue;
                };
                if config.instances.iter().any(|i| &i.name == name) {
                    warnings.push(Warning::new(node.line, format!("vrrp instance {name} already defined")));
                    continue;
                }
                let raw = read_instance(node, name, &globals, &config.scripts, warnings);
                if let Some(instance) = complete(raw, warnings) {
                    config.instances.push(instance);
                }
            }
            _ => {}
        }
    }
    for (members, keeps) in config.sync_members.iter().zip(&config.sync_tracking_weight) {
        if !keeps {
            unweight_members(&mut config.instances, members, warnings);
        }
    }
    for (members, (_, tracks)) in config.sync_members.iter().zip(&group_tracks) {
        apply_group_tracks(&mut config.instances, members, tracks);
    }
    config
}

/// `vrrp_complete_instance` for a sync group's member: its weighted scripts are dropped and its
/// tracked interfaces lose their weight (down: FAULT), in keepalived's words. (With
/// `sync_group_tracking_weight` keepalived keeps them, and so does the import.)
fn unweight_members(instances: &mut [VrrpInstance], members: &[String], warnings: &mut Vec<Warning>) {
    for instance in instances.iter_mut().filter(|i| members.contains(&i.name)) {
        let name = instance.name.clone();
        for track in instance.track_interfaces.iter_mut().filter(|t| t.weight != 0) {
            warnings.push(Warning::new(
                track.line,
                format!(
                    "({name}) ignoring {} tracked interface weight due to SYNC group",
                    track.name
                ),
            ));
            track.weight = 0;
        }
        instance.track_scripts.retain(|track| {
            if track.weight != 0 {
                warnings.push(Warning::new(
                    track.line,
                    format!(
                        "({name}) ignoring tracked script {} with weights due to SYNC group",
                        track.name
                    ),
                ));
            }
            track.weight == 0
        });
    }
}

/// A sync group's own `track_script` / `track_interface` entries.
#[derive(Default)]
struct GroupTracks {
    scripts: Vec<Track>,
    interfaces: Vec<Track>,
}

/// keepalived adds a sync group's tracks to every member (`sync_group_tracking_init`), after
/// the members' own weighted tracks were dropped: an unweighted one puts the member in FAULT,
/// and the group with it; a weighted one moves every member's priority (the scenario writes a
/// director's weighted tracks in a sync group back as the group's).
fn apply_group_tracks(instances: &mut [VrrpInstance], members: &[String], tracks: &GroupTracks) {
    for instance in instances.iter_mut().filter(|i| members.contains(&i.name)) {
        for (own, entries) in [
            (&mut instance.track_scripts, &tracks.scripts),
            (&mut instance.track_interfaces, &tracks.interfaces),
        ] {
            for track in entries {
                if !own.iter().any(|t| t.name == track.name) {
                    own.push(track.clone());
                }
            }
        }
    }
}

fn first_arg(node: &Node) -> &str {
    node.args.first().map_or("", String::as_str)
}

/// `UINT_MAX / TIMER_HZ`: the largest whole-second timer keepalived reads.
const MAX_TIMER_S: u32 = u32::MAX / 1_000_000;
const US: u64 = 1_000_000;

fn read_globals(node: &Node, globals: &mut Globals, warnings: &mut Vec<Warning>) {
    for child in node.children.iter().flatten() {
        let value = first_arg(child);
        let mut r = LineReader {
            line: child.line,
            warnings,
        };
        match child.keyword.as_str() {
            "vrrp_strict" => globals.strict = true,
            "vrrp_version" => match r.int(value, 2, 3) {
                Some(2) => globals.version = Version::V2,
                Some(_) => globals.version = Version::V3,
                None => r.warn("VRRP Error: Version must be either 2 or 3"),
            },
            "vrrp_garp_master_delay" => match r.unsigned(value, 0, MAX_TIMER_S) {
                Some(v) => globals.garp_master_delay = v,
                None => r.warn(format!("vrrp_garp_master_delay '{value}' invalid - ignoring")),
            },
            "vrrp_garp_master_repeat" => match r.unsigned(value, 0, u32::MAX) {
                Some(0) => {
                    r.warn("vrrp_garp_master_repeat must be greater than 0, setting to 1");
                    globals.garp_master_repeat = 1;
                }
                Some(v) => globals.garp_master_repeat = v,
                None => r.warn(format!("vrrp_garp_master_repeat '{value}' invalid - ignoring")),
            },
            "vrrp_garp_master_refresh" => match r.unsigned(value, 0, u32::MAX) {
                Some(v) => globals.garp_master_refresh = v,
                None => {
                    r.warn(format!("Invalid vrrp_garp_master_refresh '{value}' - ignoring"));
                    globals.garp_master_refresh = 0;
                }
            },
            "vrrp_garp_master_refresh_repeat" => match r.unsigned(value, 0, u32::MAX) {
                Some(0) => {
                    r.warn("vrrp_garp_master_refresh_repeat must be greater than 0, setting to 1");
                    globals.garp_master_refresh_repeat = 1;
                }
                Some(v) => globals.garp_master_refresh_repeat = v,
                None => r.warn(format!("vrrp_garp_master_refresh_repeat '{value}' invalid - ignoring")),
            },
            _ => {}
        }
    }
}

/// Removes one pair of surrounding double quotes.
fn unquote(text: &str) -> &str {
    text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text)
}

fn read_script(node: &Node, warnings: &mut Vec<Warning>) -> Option<VrrpScript> {
    let name = node.args.first()?.clone();
    let mut script = VrrpScript {
        line: node.line,
        name: name.clone(),
        script: None,
        interval: 1,
        timeout: 0,
        weight: 0,
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    for child in node.children.iter().flatten() {
        let value = first_arg(child);
        let mut r = LineReader {
            line: child.line,
            warnings,
        };
        match child.keyword.as_str() {
            "script" => {
                let words: Vec<&str> = child.args.iter().map(|a| unquote(a)).collect();
                script.script = Some(words.join(" "));
            }
            "interval" => match r.unsigned(value, 0, MAX_TIMER_S) {
                Some(0) => {
                    r.warn(format!("({name}): vrrp script interval must be greater than 0, setting to 1"));
                    script.interval = 1;
                }
                Some(v) => script.interval = v,
                None => r.warn(format!(
                    "({name}): vrrp script interval '{value}' must be between 1 and {MAX_TIMER_S} - ignoring"
                )),
            },
            "timeout" => match r.unsigned(value, 0, MAX_TIMER_S) {
                Some(0) => {
                    r.warn(format!("({name}): vrrp script timeout must be greater than 0, setting to 1"));
                    script.timeout = 1;
                }
                Some(v) => script.timeout = v,
                None => r.warn(format!("({name}): vrrp script timeout '{value}' invalid - ignoring")),
            },
            "weight" => {
                match r.int(value, -253, 253) {
                    Some(w) => script.weight = w,
                    None => {
                        r.warn(format!("vrrp_script {name} weight {value} must be in [-253, 253]"));
                        // keepalived stores the number anyway; the scenario takes it at the bound.
                        script.weight = value.parse::<i32>().map_or(0, |w| w.clamp(-253, 253));
                    }
                }
                match child.args.get(1).map(String::as_str) {
                    None => {}
                    Some("reverse") => r.warn(format!(
                        "vrrp_script {name}: `weight ... reverse` is not modelled; the weight applies as without reverse"
                    )),
                    Some(other) => r.warn(format!("vrrp_script {name} unknown weight option {other}")),
                }
            }
            "rise" => match r.unsigned(value, 1, i32::MAX as u32) {
                Some(v) => script.rise = v,
                None => {
                    r.warn(format!("({name}): vrrp script rise value '{value}' invalid, defaulting to 1"));
                    script.rise = 1;
                }
            },
            "fall" => match r.unsigned(value, 1, i32::MAX as u32) {
                Some(v) => script.fall = v,
                None => {
                    r.warn(format!("({name}): vrrp script fall value '{value}' invalid, defaulting to 1"));
                    script.fall = 1;
                }
            },
            "init_fail" => script.init_fail = true,
            "user" => r.warn(format!(
                "vrrp_script {name}: `user {value}` is not modelled; the script runs as root in the director's namespace"
            )),
            _ => {}
        }
    }
    Some(script)
}

/// An instance as written, before `vrrp_complete_instance`; each value with its line.
struct RawInstance {
    line: usize,
    name: String,
    interface: Option<String>,
    vrid: Option<u8>,
    priority: Option<(usize, u8)>,
    state: Option<(usize, bool)>,
    version: Option<(usize, Version)>,
    advert_int: Option<(usize, Duration)>,
    nopreempt: Option<usize>,
    preempt_delay: Option<(usize, Duration)>,
    auth: Option<(usize, AuthType)>,
    auth_pass: Option<String>,
    unicast_configured: Option<usize>,
    unicast_src_ip: Option<IpAddr>,
    unicast_peers: Vec<Peer>,
    vips: Vec<Vip>,
    track_interfaces: Vec<Track>,
    track_scripts: Vec<Track>,
    garp_master_delay: u32,
    garp_master_repeat: u32,
    garp_master_refresh: u32,
    garp_master_refresh_repeat: u32,
    down_timer_adverts: Option<(usize, u32)>,
    strict: Option<bool>,
    global_strict: bool,
    global_version: Version,
    accept: Option<(usize, bool)>,
    notify: Vec<(usize, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthType {
    Pass,
    Ah,
}

fn read_instance(
    node: &Node,
    name: &str,
    globals: &Globals,
    scripts: &[VrrpScript],
    warnings: &mut Vec<Warning>,
) -> RawInstance {
    let mut raw = RawInstance {
        line: node.line,
        name: name.to_string(),
        interface: None,
        vrid: None,
        priority: None,
        state: None,
        version: None,
        advert_int: None,
        nopreempt: None,
        preempt_delay: None,
        auth: None,
        auth_pass: None,
        unicast_configured: None,
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        vips: Vec::new(),
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        garp_master_delay: globals.garp_master_delay,
        garp_master_repeat: globals.garp_master_repeat,
        garp_master_refresh: globals.garp_master_refresh,
        garp_master_refresh_repeat: globals.garp_master_refresh_repeat,
        down_timer_adverts: None,
        strict: None,
        global_strict: globals.strict,
        global_version: globals.version,
        accept: None,
        notify: Vec::new(),
    };
    for child in node.children.iter().flatten() {
        let (l, value) = (child.line, first_arg(child));
        let mut r = LineReader { line: l, warnings };
        match child.keyword.as_str() {
            "state" => match value {
                "MASTER" => raw.state = Some((l, true)),
                "BACKUP" if raw.state.is_some_and(|(_, m)| m) => {
                    r.warn(format!("({name}) state previously set as MASTER - ignoring BACKUP"))
                }
                "BACKUP" => raw.state = Some((l, false)),
                other => {
                    r.warn(format!("({name}) unknown state '{other}', defaulting to BACKUP"));
                    raw.state = Some((l, false));
                }
            },
            "interface" => raw.interface = Some(value.to_string()),
            "virtual_router_id" => match r.unsigned(value, 1, 255) {
                Some(v) => raw.vrid = u8::try_from(v).ok(),
                None => r.warn(format!("({name}): VRID '{value}' not valid - must be between 1 & 255")),
            },
            "priority" => match r.unsigned(value, 1, u32::from(PRIO_OWNER)) {
                Some(v) => raw.priority = u8::try_from(v).ok().map(|p| (l, p)),
                None => {
                    r.warn(format!(
                        "({name}) Priority not valid! must be between 1 & {PRIO_OWNER}. Using default {PRIO_DEFAULT}"
                    ));
                    raw.priority = Some((l, PRIO_DEFAULT));
                }
            },
            "advert_int" => match r.micros(value, US / 100, 255 * US) {
                Some(us) if us > 0 => raw.advert_int = Some((l, Duration::from_micros(us))),
                _ => r.warn(format!(
                    "({name}) Advert interval ({value}) not valid! Must be > 0 - ignoring"
                )),
            },
            "version" => match r.int(value, 2, 3) {
                Some(2) => raw.version = Some((l, Version::V2)),
                Some(_) => raw.version = Some((l, Version::V3)),
                None => r.warn(format!("({name}): Version must be either 2 or 3")),
            },
            "nopreempt" => raw.nopreempt = Some(l),
            "preempt" => raw.nopreempt = None,
            "preempt_delay" => match r.micros(value, 0, u64::from(MAX_PREEMPT_DELAY_S) * US) {
                Some(us) => raw.preempt_delay = Some((l, Duration::from_micros(us))),
                None => {
                    r.warn(format!(
                        "({name}) Preempt_delay not valid! must be between 0-{MAX_PREEMPT_DELAY_S}"
                    ));
                    raw.preempt_delay = None;
                }
            },
            "authentication" => {
                for a in child.children.iter().flatten() {
                    let av = first_arg(a);
                    let mut r = LineReader {
                        line: a.line,
                        warnings: r.warnings,
                    };
                    match a.keyword.as_str() {
                        "auth_type" => match av {
                            "PASS" => raw.auth = Some((a.line, AuthType::Pass)),
                            "AH" => raw.auth = Some((a.line, AuthType::Ah)),
                            other => r.warn(format!("({name}) unknown authentication type '{other}'")),
                        },
                        "auth_pass" => {
                            let pass = unquote(av);
                            if pass.len() > 8 {
                                r.warn("Truncating auth_pass to 8 characters");
                            }
                            // keepalived copies 8 bytes; keep whole characters.
                            let mut end = pass.len().min(8);
                            while !pass.is_char_boundary(end) {
                                end -= 1;
                            }
                            raw.auth_pass = Some(pass[..end].to_string());
                        }
                        _ => {}
                    }
                }
            }
            "unicast_src_ip" => {
                raw.unicast_configured.get_or_insert(l);
                match value.parse() {
                    Ok(addr) => raw.unicast_src_ip = Some(addr),
                    Err(_) => r.warn(format!("({name}) unicast_src_ip `{value}` is not an address - ignored")),
                }
            }
            "unicast_peer" => {
                raw.unicast_configured.get_or_insert(l);
                for peer in child.children.iter().flatten() {
                    match peer.keyword.parse() {
                        Ok(addr) => raw.unicast_peers.push(Peer { line: peer.line, addr }),
                        Err(_) => r.warnings.push(Warning::new(
                            peer.line,
                            format!("({name}) unicast_peer `{}` is not an address - ignored", peer.keyword),
                        )),
                    }
                }
            }
            "virtual_ipaddress" => {
                for vip in child.children.iter().flatten() {
                    if let Some(vip) = read_vip(vip, name, r.warnings) {
                        raw.vips.push(vip);
                    }
                }
            }
            "virtual_ipaddress_excluded" => r.warn(format!(
                "({name}) virtual_ipaddress_excluded is not modelled: those addresses are not moved"
            )),
            "track_interface" => read_tracks(child, name, None, &mut raw.track_interfaces, r.warnings),
            "track_script" => read_tracks(child, name, Some(scripts), &mut raw.track_scripts, r.warnings),
            "garp_master_delay" => match r.unsigned(value, 0, MAX_TIMER_S) {
                Some(v) => raw.garp_master_delay = v,
                None => r.warn(format!("({name}): garp_master_delay '{value}' invalid - ignoring")),
            },
            "garp_master_repeat" => match r.unsigned(value, 0, u32::MAX) {
                Some(0) => {
                    r.warn(format!(
                        "({name}): garp_master_repeat must be greater than 0, setting to 1"
                    ));
                    raw.garp_master_repeat = 1;
                }
                Some(v) => raw.garp_master_repeat = v,
                None => r.warn(format!("({name}): garp_master_repeat '{value}' invalid - ignoring")),
            },
            "garp_master_refresh" => match r.unsigned(value, 0, u32::MAX) {
                Some(v) => raw.garp_master_refresh = v,
                None => {
                    r.warn(format!("({name}): Invalid garp_master_refresh '{value}' - ignoring"));
                    raw.garp_master_refresh = 0;
                }
            },
            "garp_master_refresh_repeat" => match r.unsigned(value, 0, u32::MAX) {
                Some(0) => {
                    r.warn(format!(
                        "({name}): garp_master_refresh_repeat must be greater than 0, setting to 1"
                    ));
                    raw.garp_master_refresh_repeat = 1;
                }
                Some(v) => raw.garp_master_refresh_repeat = v,
                None => r.warn(format!(
                    "({name}): garp_master_refresh_repeat '{value}' invalid - ignoring"
                )),
            },
            "down_timer_adverts" => match r.unsigned(value, 1, 100) {
                Some(v) => raw.down_timer_adverts = Some((l, v)),
                None => r.warn(format!("({name}): Invalid down_timer_adverts [1:100] '{value}'")),
            },
            "strict_mode" => match value {
                "" | "on" | "true" | "yes" => raw.strict = Some(true),
                "off" | "false" | "no" => raw.strict = Some(false),
                other => r.warn(format!("({name}) invalid strict_mode {other} specified")),
            },
            "accept" => raw.accept = Some((l, true)),
            "no_accept" => raw.accept = Some((l, false)),
            keyword if keyword.starts_with("notify") => raw.notify.push((l, keyword.to_string())),
            "use_vmac" | "vmac_xmit_base" => r.warn(format!(
                "({name}) {} is not modelled: adverts and the VIP use the interface's own MAC",
                child.keyword
            )),
            "mcast_src_ip"
            | "mcast_dst_ip"
            | "dont_track_primary"
            | "track_file"
            | "track_process"
            | "track_bfd"
            | "lower_prio_no_advert"
            | "higher_prio_send_advert"
            | "garp_lower_prio_delay"
            | "garp_lower_prio_repeat"
            | "skip_check_adv_addr"
            | "unicast_ttl"
            | "virtual_routes"
            | "virtual_rules" => r.warn(format!("({name}) {} is not modelled - ignored", child.keyword)),
            _ => {}
        }
    }
    raw
}

fn read_vip(node: &Node, name: &str, warnings: &mut Vec<Warning>) -> Option<Vip> {
    let (text, prefix) = match node.keyword.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (node.keyword.as_str(), None),
    };
    let bad = |warnings: &mut Vec<Warning>| {
        warnings.push(Warning::new(
            node.line,
            format!(
                "({name}) virtual_ipaddress `{}` is not an address - ignored",
                node.keyword
            ),
        ));
        None
    };
    let Ok(addr) = text.parse::<IpAddr>() else {
        return bad(warnings);
    };
    let prefix = match prefix.map(str::parse::<u8>) {
        None => None,
        Some(Ok(p)) if p <= if addr.is_ipv4() { 32 } else { 128 } => Some(p),
        Some(_) => return bad(warnings),
    };
    let mut vip = Vip {
        line: node.line,
        addr,
        prefix,
        dev: None,
        label: None,
    };
    let mut args = node.args.iter();
    while let Some(word) = args.next() {
        match word.as_str() {
            "dev" => vip.dev = args.next().cloned(),
            "label" => vip.label = args.next().cloned(),
            // scope, brd, no_track ... change nothing lvslab models.
            _ => {}
        }
    }
    Some(vip)
}

/// A `track_interface { }` (`scripts` None) or `track_script { }` block of an instance or a
/// sync group (`name`), each entry added to `into`.
fn read_tracks(
    block: &Node,
    name: &str,
    scripts: Option<&[VrrpScript]>,
    into: &mut Vec<Track>,
    warnings: &mut Vec<Warning>,
) {
    for entry in block.children.iter().flatten() {
        let script_weight = match scripts {
            None => None,
            Some(scripts) => match scripts.iter().find(|s| s.name == entry.keyword) {
                Some(script) => Some(script.weight),
                None => {
                    warnings.push(Warning::new(
                        entry.line,
                        format!("({name}) track script {} not found, ignoring...", entry.keyword),
                    ));
                    continue;
                }
            },
        };
        if let Some(track) = read_track(entry, name, into, script_weight, warnings) {
            into.push(track);
        }
    }
}

/// `alloc_track_if` / `alloc_track_script`: `NAME [weight W [reverse]]`; `script_weight` is
/// the vrrp_script's own weight (`None` for an interface, whose default is 0).
fn read_track(
    entry: &Node,
    name: &str,
    existing: &[Track],
    script_weight: Option<i32>,
    warnings: &mut Vec<Warning>,
) -> Option<Track> {
    let tracked = &entry.keyword;
    let kind = if script_weight.is_some() {
        "track_script"
    } else {
        "track_interface"
    };
    let mut r = LineReader {
        line: entry.line,
        warnings,
    };
    if existing.iter().any(|t| &t.name == tracked) {
        r.warn(format!("({name}) duplicate {kind} {tracked} - ignoring"));
        return None;
    }
    let mut weight = script_weight.unwrap_or(0);
    if let Some(option) = entry.args.first() {
        if option != "weight" {
            r.warn(match script_weight {
                Some(_) => format!("({name}) unknown track script option {option} - ignoring"),
                None => format!("({name}) unknown track_interface {tracked} option {option} - ignoring"),
            });
            return None;
        }
        let Some(value) = entry.args.get(1) else {
            r.warn(match script_weight {
                Some(_) => format!("({name}) weight without value specified for track script {tracked} - ignoring"),
                None => format!("({name}) weight without value specified for track_interface {tracked} - ignoring"),
            });
            return None;
        };
        match (r.int(value, -254, 254), script_weight) {
            (Some(w), _) if w.abs() == 254 => {
                r.warn(format!(
                    "({name}) weight for {tracked} cannot be +/-254. Setting to +/-253"
                ));
                weight = w.signum() * 253;
            }
            (Some(w), _) => weight = w,
            (None, Some(own)) => {
                r.warn(format!(
                    "({name}) track script {tracked}: weight must be between [-253..253] inclusive, ignoring..."
                ));
                weight = own;
            }
            (None, None) => {
                r.warn(format!(
                    "({name}) weight {value} for {tracked} must be between [-253..253] inclusive. Ignoring..."
                ));
                weight = 0;
            }
        }
        match entry.args.get(2).map(String::as_str) {
            None => {}
            Some("reverse") => r.warn(format!(
                "({name}) {kind} {tracked}: `reverse` is not modelled; the weight applies as without reverse"
            )),
            Some("noreverse") if script_weight.is_some() => {}
            Some(other) => r.warn(match script_weight {
                Some(_) => format!("({name}) unknown track_script {tracked} weight option {other} - ignoring"),
                None => format!("({name}) unknown track_interace {tracked} weight option {other} - ignoring"),
            }),
        }
    }
    Some(Track {
        line: entry.line,
        name: tracked.clone(),
        weight,
    })
}

/// `vrrp_complete_instance`, in keepalived 2.2.7's order. `None` when keepalived drops the
/// instance.
fn complete(raw: RawInstance, warnings: &mut Vec<Warning>) -> Option<VrrpInstance> {
    let name = raw.name.clone();
    let at = |line: Option<usize>| line.unwrap_or(raw.line);
    let mut warn = |line: usize, text: String| warnings.push(Warning::new(line, text));
    let Some(vrid) = raw.vrid else {
        warn(raw.line, format!("({name}) the virtual router id must be set"));
        return None;
    };
    let strict = raw.strict.unwrap_or(raw.global_strict);
    let version = raw.version.map_or(raw.global_version, |(_, v)| v);
    let mut vips = Vec::new();
    for vip in raw.vips {
        if vip.addr.is_ipv6() {
            warn(
                vip.line,
                format!(
                    "({name}) IPv6 VIP {} is not modelled (the lab is IPv4) - ignored",
                    vip.addr
                ),
            );
        } else {
            vips.push(vip);
        }
    }
    if vips.is_empty() {
        if version == Version::V3 || strict {
            warn(raw.line, format!("({name}) No VIP specified; at least one is required"));
            return None;
        }
        warn(raw.line, format!("({name}) No VIP specified; at least one is sensible"));
    }
    let priority = raw.priority.map_or(
        if raw.state.is_some_and(|(_, m)| m) {
            PRIO_OWNER
        } else {
            PRIO_DEFAULT
        },
        |(_, p)| p,
    );
    let owner = priority == PRIO_OWNER;
    let mut master = match raw.state {
        None => owner,
        Some((line, wish)) if strict && wish != owner => {
            warn(line, format!("({name}) State MASTER must match being address owner"));
            owner
        }
        Some((_, wish)) => wish,
    };
    let mut auth_pass = None;
    if let Some((line, auth)) = raw.auth {
        if strict {
            warn(
                line,
                format!("({name}) Strict mode does not support authentication. Ignoring."),
            );
        } else if version == Version::V3 {
            warn(
                line,
                format!("({name}) VRRP version 3 does not support authentication. Ignoring."),
            );
        } else if raw.auth_pass.as_deref().unwrap_or("").is_empty() {
            warn(
                line,
                format!("({name}) Authentication specified but no password given. Ignoring"),
            );
        } else if auth == AuthType::Ah {
            if master && !owner {
                warn(
                    line,
                    format!("({name}) Initial state master is incompatible with AH authentication - clearing"),
                );
                master = false;
            }
            warn(
                line,
                format!("({name}) auth_type AH is not modelled: the instance runs without authentication"),
            );
        } else {
            auth_pass = raw.auth_pass.clone();
        }
    }
    let unicast = !raw.unicast_peers.is_empty();
    if let Some(line) = raw.unicast_configured {
        if strict && unicast {
            // keepalived checks this only once the interface is known (at start, not with -t).
            warn(line, format!("({name}) Unicast peers are not supported in strict mode"));
        } else if !unicast {
            warn(line, format!("({name}) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."));
        }
    }
    let mut nopreempt = raw.nopreempt.is_some();
    if owner && nopreempt {
        warn(
            at(raw.nopreempt),
            format!("({name}) nopreempt is incompatible with priority 255. resetting nopreempt"),
        );
        nopreempt = false;
    }
    let mut preempt_delay = raw.preempt_delay.map_or(Duration::ZERO, |(_, d)| d);
    let delay_line = at(raw.preempt_delay.map(|(l, _)| l));
    if master {
        if nopreempt {
            warn(
                at(raw.nopreempt),
                format!("({name}) Warning - nopreempt will not work with initial state MASTER - clearing"),
            );
            nopreempt = false;
        }
        if !preempt_delay.is_zero() {
            warn(
                delay_line,
                format!("({name}) Warning - preempt delay will not work with initial state MASTER - clearing"),
            );
            preempt_delay = Duration::ZERO;
        }
    }
    if !preempt_delay.is_zero() {
        if strict {
            warn(
                delay_line,
                format!("({name}) preempt_delay is incompatible with strict mode - resetting"),
            );
        }
        if nopreempt {
            warn(
                delay_line,
                format!("({name}) preempt_delay is incompatible with nopreempt mode - resetting"),
            );
        }
        if strict || nopreempt {
            preempt_delay = Duration::ZERO;
        }
    }
    let mut down_timer_adverts = raw.down_timer_adverts.map_or(DOWN_TIMER_ADVERTS, |(_, n)| n);
    if down_timer_adverts != DOWN_TIMER_ADVERTS && strict {
        warn(
            at(raw.down_timer_adverts.map(|(l, _)| l)),
            format!("({name}) down_timer_adverts is incompatible with strict mode - resetting"),
        );
        down_timer_adverts = DOWN_TIMER_ADVERTS;
    }
    let mut accept = raw.accept.map_or(owner || !strict, |(_, a)| a);
    if accept && !owner && strict && version == Version::V2 {
        warn(
            at(raw.accept.map(|(l, _)| l)),
            format!("({name}) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"),
        );
        accept = false;
    }
    let configured_int = raw.advert_int.map_or(Duration::ZERO, |(_, d)| d);
    let (advert_int, rounded) = normalise_advert_int(&name, version, configured_int);
    if let Some(text) = rounded {
        warn(at(raw.advert_int.map(|(l, _)| l)), text);
    }
    let mut track_interfaces = raw.track_interfaces;
    if let Some(own) = &raw.interface {
        for track in track_interfaces.iter().filter(|t| &t.name == own) {
            warn(
                track.line,
                format!("({name}) Ignoring track_interface {own} since own interface"),
            );
        }
        track_interfaces.retain(|t| &t.name != own);
    }
    for (line, keyword) in &raw.notify {
        warn(
            *line,
            format!(
                "({name}) {keyword} is not run: lvslab does not run notify scripts (the run reports the transitions)"
            ),
        );
    }
    Some(VrrpInstance {
        line: raw.line,
        name,
        interface: raw.interface,
        vrid,
        priority,
        priority_given: raw.priority.is_some(),
        master,
        version,
        advert_int,
        nopreempt,
        preempt_delay,
        auth_pass,
        unicast_src_ip: raw.unicast_src_ip,
        unicast_peers: raw.unicast_peers,
        vips,
        track_interfaces,
        track_scripts: raw.track_scripts,
        garp_master_delay: raw.garp_master_delay,
        garp_master_repeat: raw.garp_master_repeat,
        garp_master_refresh: raw.garp_master_refresh,
        garp_master_refresh_repeat: raw.garp_master_refresh_repeat,
        down_timer_adverts,
        strict,
        accept,
        notify: raw.notify,
    })
}
