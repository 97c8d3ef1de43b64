//! keepalived's VRRP side as scenario sections ([vrrp_instance], [[director]],
//! [[vrrp_script]]; the syntax of scenarios/README.md). A keepalived.conf describes one
//! node: it becomes director `lvs1`; its peers are not in the file, so lvslab invents
//! them (one per `unicast_peer`, else one) as BACKUPs 50 below the node, and says so.
//! Every key written is named in [`key`], so a rename in the syntax is one edit here.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::scenario::keywords::Mode;
use crate::vrrp::Version;

use super::error::Warning;
use super::keepalived_vrrp::{VrrpConfig, VrrpInstance, VrrpScript};
use super::vrrp_contradictions;

/// The scenario keys this module writes.
mod key {
    pub const VRRP_INSTANCE: &str = "vrrp_instance";
    pub const DIRECTOR: &str = "director";
    pub const VRRP_SCRIPT: &str = "vrrp_script";
    pub const NAME: &str = "name";
    pub const VIRTUAL_ROUTER_ID: &str = "virtual_router_id";
    pub const ADVERT_INT: &str = "advert_int";
    pub const VERSION: &str = "version";
    pub const AUTH_PASS: &str = "auth_pass";
    pub const UNICAST: &str = "unicast";
    pub const GARP_MASTER_DELAY: &str = "garp_master_delay";
    pub const GARP_MASTER_REPEAT: &str = "garp_master_repeat";
    pub const GARP_MASTER_REFRESH: &str = "garp_master_refresh";
    pub const GARP_MASTER_REFRESH_REPEAT: &str = "garp_master_refresh_repeat";
    pub const DOWN_TIMER_ADVERTS: &str = "down_timer_adverts";
    pub const VRRP_STRICT: &str = "vrrp_strict";
    pub const ACCEPT: &str = "accept";
    pub const STATE: &str = "state";
    pub const PRIORITY: &str = "priority";
    pub const NOPREEMPT: &str = "nopreempt";
    pub const PREEMPT_DELAY: &str = "preempt_delay";
    pub const TRACK_INTERFACE: &str = "track_interface";
    pub const TRACK_SCRIPT: &str = "track_script";
    pub const INTERFACE: &str = "interface";
    pub const SCRIPT: &str = "script";
    pub const WEIGHT: &str = "weight";
    pub const INTERVAL: &str = "interval";
    pub const TIMEOUT: &str = "timeout";
    pub const RISE: &str = "rise";
    pub const FALL: &str = "fall";
    pub const INIT_FAIL: &str = "init_fail";
    pub const MASTER: &str = "MASTER";
    pub const BACKUP: &str = "BACKUP";
}

/// How far below the imported node lvslab puts the peers it invents.
pub const PEER_PRIORITY_GAP: u8 = 50;
/// The imported node's director name; peers are lvs2, lvs3, ...
const NODE: &str = "lvs1";

/// The service the VRRP instance serves, as the importer chose it.
pub struct ServiceSide {
    /// The virtual_server address as written.
    pub vip: IpAddr,
    /// Where it lands in the lab.
    pub lab_vip: Ipv4Addr,
    pub mode: Mode,
    /// Every imported service's address as written (the first's included): an instance moves them all.
    pub service_vips: Vec<IpAddr>,
}

/// The VRRP sections of the scenario (to go after [service]) and what the mapping changed.
pub struct VrrpSections {
    pub toml: String,
    pub warnings: Vec<Warning>,
}

/// `None` when the file has no (usable) vrrp_instance.
pub fn sections(vrrp: &VrrpConfig, service: &ServiceSide) -> Option<VrrpSections> {
    sections_with_peers(vrrp, service, &[])
}

/// [`sections`] with the peers' own keepalived.conf files (`origin`, config): each becomes a
/// BACKUP or MASTER director as its file says instead of an invented one. Warnings about a
/// peer are said at the imported instance's line and name the peer's file.
pub fn sections_with_peers(
    vrrp: &VrrpConfig,
    service: &ServiceSide,
    peer_files: &[(&str, &VrrpConfig)],
) -> Option<VrrpSections> {
    let chosen = vrrp
        .instances
        .iter()
        .find(|i| i.carries(service.vip))
        .or(vrrp.instances.first())?;
    let mut warnings = Vec::new();
    let mut out = String::new();
    // LVS-NAT's pair: the chosen instance's sync group holds one more instance, the real
    // servers' gateway on their side; both are kept.
    let nat_group = (service.mode == Mode::Nat)
        .then(|| nat_sync_group(vrrp, chosen))
        .flatten();
    let gateway_instance = nat_group.map(|(_, gw)| gw);
    for other in vrrp
        .instances
        .iter()
        .filter(|i| !std::ptr::eq(*i, chosen) && !gateway_instance.is_some_and(|g| std::ptr::eq(*i, g)))
    {
        warnings.push(Warning::new(
            other.line,
            format!(
                "vrrp_instance {} skipped: lvslab models one VRRP instance per scenario (imported {})",
                other.name, chosen.name
            ),
        ));
    }
    for (k, (line, group)) in vrrp.sync_groups.iter().enumerate() {
        if nat_group.is_some_and(|(g, _)| g == k) {
            continue;
        }
        warnings.push(Warning::new(
            *line,
            format!("vrrp_sync_group {group} is not modelled: one instance is imported, nothing moves with it"),
        ));
    }
    let vip_note = vip_mapping(chosen, service, &mut warnings);
    let scripts: Vec<&VrrpScript> = chosen
        .track_scripts
        .iter()
        .filter_map(|t| vrrp.scripts.iter().find(|s| s.name == t.name))
        .collect();
    let peers: Vec<PeerBlock> = if peer_files.is_empty() {
        let invented = peers(chosen, &mut warnings);
        // In nat the peers are written commented out: lvs1 runs alone.
        let running: Vec<(String, u8)> = match service.mode {
            Mode::Nat => Vec::new(),
            _ => invented
                .iter()
                .enumerate()
                .map(|(n, p)| (format!("lvs{}", n + 2), p.priority))
                .collect(),
        };
        warnings.extend(vrrp_contradictions::imported_pair(chosen, NODE, &running));
        invented.into_iter().map(PeerBlock::invented).collect()
    } else {
        let script_names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
        let mut blocks = Vec::new();
        for (origin, config) in peer_files {
            match counterpart(config, chosen, service.vip) {
                Some(peer) => {
                    let name = format!("lvs{}", blocks.len() + 2);
                    blocks.push(PeerBlock::from_file(
                        &name,
                        origin,
                        peer,
                        chosen,
                        &script_names,
                        &mut warnings,
                    ));
                }
                None => warnings.push(Warning::new(
                    chosen.line,
                    format!("({}) {origin} has no vrrp_instance: it is not a peer", chosen.name),
                )),
            }
        }
        blocks
    };

    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# VRRP: vrrp_instance {} (line {}). A keepalived.conf describes one node: it is director {NODE}.",
        comment_safe(&chosen.name),
        chosen.line
    );
    let _ = writeln!(out, "# {vip_note}");
    let written: Vec<String> = chosen.vips.iter().map(describe_vip).collect();
    let _ = writeln!(
        out,
        "# original virtual_ipaddress: {}",
        comment_safe(&written.join("; "))
    );
    instance_table(&mut out, chosen, service, &mut warnings);
    if let Some((k, gw)) = nat_group {
        let (line, group) = &vrrp.sync_groups[k];
        let tracking_weight = vrrp.sync_tracking_weight.get(k).copied().unwrap_or(false);
        gateway_tables(
            &mut out,
            gw,
            (*line, group, tracking_weight),
            &chosen.name,
            &mut warnings,
        );
    }
    node_director(&mut out, chosen, &mut warnings);
    // lvslab's nat takes one director unless the gateway floats too: the peers are then
    // written commented out, for a switch to fullnat or dr.
    let peers_run = service.mode != Mode::Nat || nat_group.is_some();
    for (n, peer) in peers.iter().enumerate() {
        let mut block = String::new();
        let _ = writeln!(block, "[[{}]]", key::DIRECTOR);
        kv(&mut block, key::NAME, &quote(&format!("lvs{}", n + 2)), None);
        block.push_str(&peer.keys);
        let _ = writeln!(out);
        let _ = writeln!(out, "# {}", comment_safe(&peer.comment));
        match peers_run {
            true => out.push_str(&block),
            false => block.lines().for_each(|l| {
                let _ = writeln!(out, "# {l}");
            }),
        }
    }
    for script in scripts {
        script_table(&mut out, script, &mut warnings);
    }
    if !peers_run {
        warnings.push(Warning::new(
            chosen.line,
            format!(
                "({}) nat: the real servers answer through their gateway, and no instance here moves it with \
                 the VIP (a second vrrp_instance on the real servers' side, in one vrrp_sync_group with this \
                 one, becomes a [vrrp_gateway]), so after a failover their replies would still go to the old \
                 master: the peer director{} written commented out and {NODE} runs the instance alone; add the \
                 gateway instance, or use mode \"fullnat\" or \"dr\", to run the pair",
                chosen.name,
                if peers.len() > 1 { "s are" } else { " is" }
            ),
        ));
    }
    Some(VrrpSections { toml: out, warnings })
}

/// The sync group (index) holding `chosen` and exactly one other instance (the gateway's).
fn nat_sync_group<'a>(vrrp: &'a VrrpConfig, chosen: &VrrpInstance) -> Option<(usize, &'a VrrpInstance)> {
    vrrp.sync_members.iter().enumerate().find_map(|(k, members)| {
        if members.len() != 2 || !members.contains(&chosen.name) {
            return None;
        }
        let other = members.iter().find(|m| **m != chosen.name)?;
        let gw = vrrp.instances.iter().find(|i| i.name == *other)?;
        (!gw.vips.is_empty()).then_some((k, gw))
    })
}

/// The lab address of an imported gateway: the real servers' network's last host address, so
/// that no mapped real server (numbered from .11) lands on it.
const LAB_GATEWAY: &str = "198.51.100.254";

/// `[vrrp_gateway]` and `[vrrp_sync_group]` from the group's second instance.
fn gateway_tables(
    out: &mut String,
    gw: &VrrpInstance,
    (group_line, group, tracking_weight): (usize, &str, bool),
    vip_instance: &str,
    warnings: &mut Vec<Warning>,
) {
    let first = &gw.vips[0];
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# vrrp_instance {} (line {}): the real servers' gateway, moved with the VIP by vrrp_sync_group {} (line {group_line}).",
        comment_safe(&gw.name),
        gw.line,
        comment_safe(group)
    );
    let _ = writeln!(out, "[vrrp_gateway]");
    kv(out, "name", &quote(&gw.name), None);
    kv(out, "virtual_router_id", &gw.vrid.to_string(), None);
    kv(
        out,
        "address",
        &quote(LAB_GATEWAY),
        Some(&format!("original {}", first.addr)),
    );
    if gw.vips.len() > 1 {
        let rest: Vec<String> = gw.vips[1..].iter().map(|v| v.addr.to_string()).collect();
        warnings.push(Warning::new(
            gw.line,
            format!(
                "({}) virtual_ipaddress {} not modelled: the gateway instance holds one address, the real servers' gateway",
                gw.name,
                rest.join(", ")
            ),
        ));
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "[vrrp_sync_group]");
    kv(out, "name", &quote(group), None);
    kv(
        out,
        "group",
        &format!("[{}, {}]", quote(vip_instance), quote(&gw.name)),
        None,
    );
    if tracking_weight {
        kv(out, "tracking_weight", "true", Some("sync_group_tracking_weight"));
    }
}

/// Says where the instance's VIPs went; warns about the ones that are not the service VIP.
fn vip_mapping(instance: &VrrpInstance, service: &ServiceSide, warnings: &mut Vec<Warning>) -> String {
    let name = &instance.name;
    let others: Vec<String> = instance
        .vips
        .iter()
        .filter(|v| v.addr != service.vip)
        .map(|v| v.addr.to_string())
        .collect();
    let unmodelled: Vec<String> = instance
        .vips
        .iter()
        .filter(|v| v.addr != service.vip && !service.service_vips.contains(&v.addr))
        .map(|v| v.addr.to_string())
        .collect();
    if instance.carries(service.vip) {
        if !unmodelled.is_empty() {
            warnings.push(Warning::new(
                instance.line,
                format!(
                    "({name}) virtual_ipaddress {} not modelled: the scenario's instance moves the services' VIPs only",
                    unmodelled.join(", ")
                ),
            ));
        }
        return format!(
            "Its VIP {} (the virtual_server address) is the service VIP {}.",
            service.vip, service.lab_vip
        );
    }
    let listed = if others.is_empty() {
        "none".to_string()
    } else {
        others.join(", ")
    };
    warnings.push(Warning::new(
        instance.line,
        format!(
            "({name}) no virtual_ipaddress ({listed}) is the virtual_server address {}: in the scenario the \
             instance moves the service VIP {} instead",
            service.vip, service.lab_vip
        ),
    ));
    format!(
        "Its VIPs ({listed}) are not the virtual_server address {}; the instance moves the service VIP {} instead.",
        service.vip, service.lab_vip
    )
}

/// A peer director's keys after its name, and the comment above it.
struct PeerBlock {
    keys: String,
    comment: String,
}

impl PeerBlock {
    fn invented(peer: InventedPeer) -> PeerBlock {
        let mut keys = String::new();
        kv(&mut keys, key::STATE, &quote(key::BACKUP), None);
        kv(&mut keys, key::PRIORITY, &peer.priority.to_string(), None);
        PeerBlock {
            keys,
            comment: peer.comment,
        }
    }

    /// The peer as its own file states it; the instance keys it does not share with the
    /// imported node are written on it (that is how a mismatch, a split brain, is written).
    fn from_file(
        name: &str,
        origin: &str,
        peer: &VrrpInstance,
        chosen: &VrrpInstance,
        script_names: &[&str],
        warnings: &mut Vec<Warning>,
    ) -> PeerBlock {
        let mut keys = String::new();
        let state = if peer.master { key::MASTER } else { key::BACKUP };
        kv(&mut keys, key::STATE, &quote(state), None);
        kv(
            &mut keys,
            key::PRIORITY,
            &peer.priority.to_string(),
            (!peer.priority_given).then_some("keepalived's default"),
        );
        if peer.nopreempt {
            kv(&mut keys, key::NOPREEMPT, "true", None);
        }
        if !peer.preempt_delay.is_zero() {
            kv(&mut keys, key::PREEMPT_DELAY, &seconds(peer.preempt_delay), None);
        }
        let differs = Some("differs from lvs1's");
        if peer.vrid != chosen.vrid {
            kv(&mut keys, key::VIRTUAL_ROUTER_ID, &peer.vrid.to_string(), differs);
        }
        if peer.advert_int != chosen.advert_int {
            kv(&mut keys, key::ADVERT_INT, &seconds(peer.advert_int), differs);
        }
        if peer.version != chosen.version {
            kv(&mut keys, key::VERSION, &peer.version.number().to_string(), differs);
        }
        if peer.auth_pass != chosen.auth_pass {
            match &peer.auth_pass {
                Some(pass) if pass.is_ascii() => kv(&mut keys, key::AUTH_PASS, &quote(pass), differs),
                _ => warnings.push(Warning::new(
                    chosen.line,
                    format!(
                        "({}) {origin}'s authentication is not lvs1's, and a director cannot drop lvs1's auth_pass:                          {name} is written with lvs1's",
                        chosen.name
                    ),
                )),
            }
        }
        let (kept, dropped): (Vec<_>, Vec<_>) = peer
            .track_scripts
            .iter()
            .partition(|t| script_names.contains(&t.name.as_str()));
        if !kept.is_empty() {
            let entries: Vec<String> = kept
                .iter()
                .map(|t| {
                    format!(
                        "{{ {} = {}, {} = {} }}",
                        key::SCRIPT,
                        quote(&t.name),
                        key::WEIGHT,
                        t.weight
                    )
                })
                .collect();
            kv(&mut keys, key::TRACK_SCRIPT, &format!("[{}]", entries.join(", ")), None);
        }
        for t in dropped {
            warnings.push(Warning::new(
                chosen.line,
                format!(
                    "({}) {origin}'s track_script {} (weight {}) is not imported: the scenario's [[vrrp_script]]s                      are lvs1's",
                    chosen.name, t.name, t.weight
                ),
            ));
        }
        PeerBlock {
            keys,
            comment: format!("{name}: vrrp_instance {} of {origin} (line {})", peer.name, peer.line),
        }
    }
}

/// The instance of a peer's file that backs `chosen` up: same VRID and VIP, else the VIP, else
/// the VRID, else its first.
fn counterpart<'a>(config: &'a VrrpConfig, chosen: &VrrpInstance, vip: IpAddr) -> Option<&'a VrrpInstance> {
    let all = &config.instances;
    all.iter()
        .find(|i| i.vrid == chosen.vrid && i.carries(vip))
        .or_else(|| all.iter().find(|i| i.carries(vip)))
        .or_else(|| all.iter().find(|i| i.vrid == chosen.vrid))
        .or(all.first())
}

struct InventedPeer {
    priority: u8,
    comment: String,
}

/// One BACKUP per unicast_peer, else one; priority = node's - 50 (at least 1).
fn peers(instance: &VrrpInstance, warnings: &mut Vec<Warning>) -> Vec<InventedPeer> {
    let priority = instance.priority.saturating_sub(PEER_PRIORITY_GAP).max(1);
    let why = format!(
        "priority {priority} ({NODE}'s {} - {PEER_PRIORITY_GAP}{}), state BACKUP",
        instance.priority,
        if instance.priority <= PEER_PRIORITY_GAP {
            ", at least 1"
        } else {
            ""
        }
    );
    let name = &instance.name;
    if instance.unicast_peers.is_empty() {
        let text = format!("({name}) the peer is not in this file: lvslab adds director lvs2 with {why}");
        warnings.push(Warning::new(instance.line, text.clone()));
        return vec![InventedPeer {
            priority,
            comment: text,
        }];
    }
    instance
        .unicast_peers
        .iter()
        .enumerate()
        .map(|(n, peer)| {
            let text = format!(
                "({name}) unicast_peer {} becomes director lvs{}; its priority is not in this file: lvslab gives it {why}",
                peer.addr,
                n + 2
            );
            warnings.push(Warning::new(peer.line, text.clone()));
            InventedPeer {
                priority,
                comment: text,
            }
        })
        .collect()
}

fn instance_table(out: &mut String, instance: &VrrpInstance, service: &ServiceSide, warnings: &mut Vec<Warning>) {
    let _ = writeln!(out);
    let _ = writeln!(out, "[{}]", key::VRRP_INSTANCE);
    kv(out, key::NAME, &quote(&instance.name), None);
    kv(out, key::VIRTUAL_ROUTER_ID, &instance.vrid.to_string(), None);
    kv(out, key::ADVERT_INT, &seconds(instance.advert_int), None);
    let version = match instance.version {
        Version::V2 => 2,
        Version::V3 => 3,
    };
    kv(out, key::VERSION, &version.to_string(), None);
    match &instance.auth_pass {
        Some(pass) if pass.is_ascii() => kv(out, key::AUTH_PASS, &quote(pass), Some("auth_type PASS")),
        Some(_) => warnings.push(Warning::new(
            instance.line,
            format!(
                "({}) auth_pass with non-ASCII characters is not modelled: written without authentication",
                instance.name
            ),
        )),
        None => {}
    }
    let unicast = (!instance.unicast_peers.is_empty()).then(|| {
        let src = instance
            .unicast_src_ip
            .map(|a| format!("unicast_src_ip {a}, "))
            .unwrap_or_default();
        let peers: Vec<String> = instance.unicast_peers.iter().map(|p| p.addr.to_string()).collect();
        format!("original {src}unicast_peer {}", peers.join(" "))
    });
    kv(out, key::UNICAST, &unicast.is_some().to_string(), unicast.as_deref());
    kv(
        out,
        key::GARP_MASTER_DELAY,
        &instance.garp_master_delay.to_string(),
        None,
    );
    kv(
        out,
        key::GARP_MASTER_REPEAT,
        &instance.garp_master_repeat.to_string(),
        None,
    );
    kv(
        out,
        key::GARP_MASTER_REFRESH,
        &instance.garp_master_refresh.to_string(),
        None,
    );
    kv(
        out,
        key::GARP_MASTER_REFRESH_REPEAT,
        &instance.garp_master_refresh_repeat.to_string(),
        None,
    );
    kv(
        out,
        key::DOWN_TIMER_ADVERTS,
        &instance.down_timer_adverts.to_string(),
        None,
    );
    kv(out, key::VRRP_STRICT, &instance.strict.to_string(), None);
    let unreachable = !instance.accept && instance.carries(service.vip);
    kv(
        out,
        key::ACCEPT,
        &instance.accept.to_string(),
        unreachable.then_some("VIP UNREACHABLE: the master drops all traffic to the VIP (see the warning)"),
    );
    if unreachable {
        let fix = if instance.version == Version::V2 {
            "strict VRRPv2 keeps no `accept` below priority 255: use `version 3` with `accept`, or drop vrrp_strict"
        } else {
            "add `accept` to the vrrp_instance, or drop vrrp_strict"
        };
        warnings.push(Warning::new(
            instance.line,
            format!(
                "VIP UNREACHABLE: ({}) runs in strict mode without accept, so the MASTER installs an nftables drop of \
                 every packet to and from {} — the virtual_server address: clients resolve it by ARP but no request \
                 reaches the service (the classic \"VIP unreachable although MASTER\"); {fix}",
                instance.name, service.vip
            ),
        ));
    }
}

fn node_director(out: &mut String, instance: &VrrpInstance, warnings: &mut Vec<Warning>) {
    let _ = writeln!(out);
    let interface = instance.interface.as_deref().unwrap_or("(none)");
    let _ = writeln!(
        out,
        "# the imported node (original interface {}{})",
        comment_safe(interface),
        instance
            .unicast_src_ip
            .map(|a| format!(", unicast_src_ip {a}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "[[{}]]", key::DIRECTOR);
    kv(out, key::NAME, &quote(NODE), None);
    let state = if instance.master { key::MASTER } else { key::BACKUP };
    kv(out, key::STATE, &quote(state), None);
    kv(
        out,
        key::PRIORITY,
        &instance.priority.to_string(),
        (!instance.priority_given).then_some("keepalived's default"),
    );
    if instance.nopreempt {
        kv(out, key::NOPREEMPT, "true", None);
    }
    if !instance.preempt_delay.is_zero() {
        kv(out, key::PREEMPT_DELAY, &seconds(instance.preempt_delay), None);
    }
    // keepalived already dropped the instance's own interface (it is tracked anyway); the
    // others are the node's own hardware, which a lab director does not have.
    for track in &instance.track_interfaces {
        warnings.push(Warning::new(
            track.line,
            format!(
                "({}) track_interface {} (weight {}) dropped: a lab director has only its lab interfaces (eth0 on the \
                 VIP side), so nothing here would change with {}; add `{} = [{{ {} = \"eth0\", {} = ... }}]` to \
                 lvs1 to track one",
                instance.name,
                track.name,
                track.weight,
                track.name,
                key::TRACK_INTERFACE,
                key::INTERFACE,
                key::WEIGHT
            ),
        ));
    }
    if !instance.track_scripts.is_empty() {
        let entries: Vec<String> = instance
            .track_scripts
            .iter()
            .map(|t| {
                format!(
                    "{{ {} = {}, {} = {} }}",
                    key::SCRIPT,
                    quote(&t.name),
                    key::WEIGHT,
                    t.weight
                )
            })
            .collect();
        kv(out, key::TRACK_SCRIPT, &format!("[{}]", entries.join(", ")), None);
    }
}

fn script_table(out: &mut String, script: &VrrpScript, warnings: &mut Vec<Warning>) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "# vrrp_script {} (line {})",
        comment_safe(&script.name),
        script.line
    );
    let _ = writeln!(out, "[[{}]]", key::VRRP_SCRIPT);
    kv(out, key::NAME, &quote(&script.name), None);
    match &script.script {
        Some(command) => {
            kv(out, key::SCRIPT, &quote(command), None);
            warnings.push(Warning::new(
                script.line,
                format!(
                    "vrrp_script {}: `{command}` runs as written with `sh -c` in the director's namespace; replace it \
                     with a lab condition such as `test ! -e {{dir}}/maintenance` if it checks something the lab lacks",
                    script.name
                ),
            ));
        }
        None => {
            // keepalived refuses a script without a command; "false" keeps the track failing, as it would be.
            kv(
                out,
                key::SCRIPT,
                &quote("false"),
                Some("no `script` line in the original"),
            );
            warnings.push(Warning::new(
                script.line,
                format!("vrrp_script {} has no `script`: written as `false`", script.name),
            ));
        }
    }
    kv(out, key::INTERVAL, &script.interval.to_string(), None);
    kv(out, key::TIMEOUT, &script.timeout.to_string(), None);
    kv(out, key::WEIGHT, &script.weight.to_string(), None);
    kv(out, key::RISE, &script.rise.to_string(), None);
    kv(out, key::FALL, &script.fall.to_string(), None);
    if script.init_fail {
        kv(out, key::INIT_FAIL, "true", None);
    }
}

/// `198.18.40.10/24 dev bond0 label bond0:web`, as written.
fn describe_vip(vip: &super::keepalived_vrrp::Vip) -> String {
    let mut text = vip.addr.to_string();
    if let Some(prefix) = vip.prefix {
        let _ = write!(text, "/{prefix}");
    }
    if let Some(dev) = &vip.dev {
        let _ = write!(text, " dev {dev}");
    }
    if let Some(label) = &vip.label {
        let _ = write!(text, " label {label}");
    }
    text
}

fn kv(out: &mut String, key: &str, value: &str, comment: Option<&str>) {
    match comment {
        Some(c) => {
            let _ = writeln!(out, "{key} = {value}  # {}", comment_safe(c));
        }
        None => {
            let _ = writeln!(out, "{key} = {value}");
        }
    }
}

/// Whole seconds as an integer, else the shortest decimal.
fn seconds(d: Duration) -> String {
    if d.subsec_micros() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn comment_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use crate::import::to_scenario::{import_text, Imported};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    /// The keys of the scenario's VRRP syntax, written out independently of [`super::key`].
    const INSTANCE_KEYS: &[&str] = &[
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
    const DIRECTOR_KEYS: &[&str] = &[
        "name",
        "state",
        "priority",
        "nopreempt",
        "preempt_delay",
        "track_interface",
        "track_script",
    ];
    const SCRIPT_KEYS: &[&str] = &[
        "name",
        "script",
        "interval",
        "timeout",
        "weight",
        "rise",
        "fall",
        "init_fail",
    ];

    fn fixture(name: &str) -> Imported {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
        import_text(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn table(imported: &Imported) -> toml::Table {
        imported
            .toml
            .parse()
            .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml))
    }

    fn directors(t: &toml::Table) -> Vec<(String, String, i64)> {
        t["director"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["state"].as_str().unwrap().to_string(),
                    d["priority"].as_integer().unwrap(),
                )
            })
            .collect()
    }

    fn said(imported: &Imported) -> Vec<String> {
        imported.warnings.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn only_keys_of_the_vrrp_syntax_are_written() {
        for name in ["keepalived-vrrp-dr-unicast.conf", "keepalived-vrrp-strict.conf"] {
            let t = table(&fixture(name));
            let keys = |v: &toml::Value| -> Vec<String> { v.as_table().unwrap().keys().cloned().collect() };
            for k in keys(&t["vrrp_instance"]) {
                assert!(INSTANCE_KEYS.contains(&k.as_str()), "{name}: [vrrp_instance] {k}");
            }
            for d in t["director"].as_array().unwrap() {
                for k in keys(d) {
                    assert!(DIRECTOR_KEYS.contains(&k.as_str()), "{name}: [[director]] {k}");
                }
            }
            for s in t.get("vrrp_script").and_then(|s| s.as_array()).into_iter().flatten() {
                for k in keys(s) {
                    assert!(SCRIPT_KEYS.contains(&k.as_str()), "{name}: [[vrrp_script]] {k}");
                }
            }
            for d in t["director"].as_array().unwrap() {
                for track in d.get("track_script").and_then(|v| v.as_array()).into_iter().flatten() {
                    let mut k = keys(track);
                    k.sort();
                    assert_eq!(k, ["script", "weight"]);
                }
            }
        }
    }

    #[test]
    fn unicast_peers_become_backups_fifty_below_the_node() {
        let imported = fixture("keepalived-vrrp-dr-unicast.conf");
        let t = table(&imported);
        assert_eq!(
            directors(&t),
            [
                ("lvs1".to_string(), "MASTER".to_string(), 150),
                ("lvs2".to_string(), "BACKUP".to_string(), 100),
                ("lvs3".to_string(), "BACKUP".to_string(), 100)
            ]
        );
        let instance = &t["vrrp_instance"];
        assert_eq!(instance["name"].as_str(), Some("VI_WEB"));
        assert_eq!(instance["unicast"].as_bool(), Some(true));
        assert_eq!(instance["auth_pass"].as_str(), Some("topsecre"));
        assert_eq!(
            instance["garp_master_delay"].as_integer(),
            Some(2),
            "global default applied"
        );
        assert_eq!(t["director"][0].get("nopreempt"), None, "cleared by state MASTER");
        let all = said(&imported);
        for expected in [
            "line 29: (VI_WEB) unicast_peer 198.18.40.3 becomes director lvs2; its priority is not in this file: lvslab gives it priority 100 (lvs1's 150 - 50), state BACKUP",
            "line 30: (VI_WEB) unicast_peer 198.18.40.4 becomes director lvs3",
            "line 44: vrrp_instance VI_ADMIN skipped: lvslab models one VRRP instance per scenario (imported VI_WEB)",
            "line 22: (VI_WEB) Warning - nopreempt will not work with initial state MASTER - clearing",
            "line 41: (VI_WEB) notify_master is not run",
            "line 33: (VI_WEB) track_interface bond1 (weight -30) dropped",
        ] {
            assert!(all.iter().any(|w| w.starts_with(expected)), "missing {expected:?} in {all:#?}");
        }
    }

    #[test]
    fn the_instance_carrying_the_virtual_server_is_imported_and_the_others_named() {
        let text = "vrrp_instance VI_A {\n virtual_router_id 1\n priority 30\n virtual_ipaddress {\n 10.0.0.5\n }\n}\n\
                    vrrp_instance VI_B {\n virtual_router_id 2\n priority 30\n virtual_ipaddress {\n 10.0.0.1/32\n 10.0.0.6\n }\n}\n\
                    virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.1.1 80 {\n }\n}\n";
        let imported = import_text(text, "two.conf").unwrap();
        let t = table(&imported);
        assert_eq!(t["vrrp_instance"]["name"].as_str(), Some("VI_B"));
        assert_eq!(t["vrrp_instance"]["virtual_router_id"].as_integer(), Some(2));
        assert_eq!(
            directors(&t),
            [
                ("lvs1".to_string(), "BACKUP".to_string(), 30),
                ("lvs2".to_string(), "BACKUP".to_string(), 1)
            ],
            "a peer 50 below priority 30 stays at 1"
        );
        let all = said(&imported);
        assert!(
            all.contains(
                &"line 1: vrrp_instance VI_A skipped: lvslab models one VRRP instance per scenario (imported VI_B)"
                    .to_string()
            ),
            "{all:#?}"
        );
        assert!(
            all.iter()
                .any(|w| w.starts_with("line 8: (VI_B) virtual_ipaddress 10.0.0.6 not modelled")),
            "{all:#?}"
        );
        assert!(
            imported.toml.contains("priority 1 (lvs1's 30 - 50, at least 1)"),
            "{}",
            imported.toml
        );
    }

    #[test]
    fn strict_mode_without_accept_on_the_service_vip_is_called_unreachable() {
        let imported = fixture("keepalived-vrrp-strict.conf");
        let t = table(&imported);
        assert_eq!(t["vrrp_instance"]["accept"].as_bool(), Some(false));
        assert_eq!(t["vrrp_instance"]["vrrp_strict"].as_bool(), Some(true));
        assert_eq!(
            t["vrrp_instance"].get("auth_pass"),
            None,
            "strict mode drops authentication"
        );
        let unreachable: Vec<String> = said(&imported)
            .into_iter()
            .filter(|w| w.contains("VIP UNREACHABLE"))
            .collect();
        assert_eq!(unreachable.len(), 1, "{unreachable:?}");
        assert!(
            unreachable[0].starts_with("line 6: VIP UNREACHABLE: (VI_1)"),
            "{unreachable:?}"
        );
        assert!(unreachable[0].contains("192.0.2.120"), "{unreachable:?}");

        let text = std::fs::read_to_string(format!("{FIXTURES}/keepalived-vrrp-strict.conf")).unwrap();
        // VRRPv3 keeps `accept` in strict mode: reachable.
        let v3 = text.replace("    advert_int 1\n", "    advert_int 1\n    version 3\n    accept\n");
        let imported = import_text(&v3, "v3.conf").unwrap();
        assert_eq!(table(&imported)["vrrp_instance"]["accept"].as_bool(), Some(true));
        assert!(!said(&imported).iter().any(|w| w.contains("VIP UNREACHABLE")));
        // The drop hits the instance's own VIPs: when those are not the service's, no alarm.
        let other_vip = text.replacen("        192.0.2.120\n", "        192.0.2.130\n", 1);
        let imported = import_text(&other_vip, "other.conf").unwrap();
        assert!(!said(&imported).iter().any(|w| w.contains("VIP UNREACHABLE")));
    }

    #[test]
    fn the_loader_runs_what_the_node_said_and_the_invented_peers() {
        let imported = fixture("keepalived-vrrp-dr-unicast.conf");
        let scenario = crate::scenario::parse(&imported.toml, "imported.toml")
            .unwrap_or_else(|r| panic!("{}", r.render("imported.toml")));
        let vrrp = scenario.vrrp.expect("a VRRP scenario");
        let lvs1 = vrrp.node("lvs1").unwrap();
        assert_eq!(lvs1.instance.name, "VI_WEB");
        assert_eq!(lvs1.instance.vrid, 61);
        assert_eq!(lvs1.instance.priority, Some(150));
        assert_eq!(lvs1.instance.initial_master, Some(true));
        assert!(!lvs1.instance.nopreempt);
        assert_eq!(lvs1.instance.garp_master_delay, std::time::Duration::from_secs(2));
        assert_eq!(lvs1.track_scripts, [("chk_maint".to_string(), -60)]);
        assert_eq!(lvs1.unicast_peers.len(), 2, "unicast to lvs2 and lvs3");
        for peer in ["lvs2", "lvs3"] {
            let node = vrrp.node(peer).unwrap();
            assert_eq!(
                (node.instance.priority, node.instance.initial_master),
                (Some(100), Some(false))
            );
        }
        assert_eq!(vrrp.script("chk_maint").map(|s| (s.rise, s.fall)), Some((1, 2)));

        // nat runs one director: the node alone, its peer left in comments.
        let text = std::fs::read_to_string(format!("{FIXTURES}/keepalived-vrrp-strict.conf")).unwrap();
        let nat = import_text(&text.replace("lb_kind DR", "lb_kind NAT"), "nat.conf").unwrap();
        let scenario = crate::scenario::parse(&nat.toml, "nat.toml").unwrap();
        let nodes: Vec<&str> = scenario
            .vrrp
            .as_ref()
            .unwrap()
            .nodes
            .iter()
            .map(|n| n.director.as_str())
            .collect();
        assert_eq!(nodes, ["lvs1"]);
        assert!(nat.toml.contains("# [[director]]\n# name = \"lvs2\"\n"), "{}", nat.toml);
        assert!(
            said(&nat).iter().any(|w| w.starts_with(
                "line 6: (VI_1) nat: the real servers answer through their gateway, and no instance here moves it"
            )),
            "{:#?}",
            said(&nat)
        );
    }

    #[test]
    fn a_sync_groups_weighted_track_comes_back_as_the_groups() {
        let conf = "vrrp_script maint {\n    script \"test ! -e /run/maint\"\n    interval 1\n}\n\
            vrrp_sync_group VG {\n    group {\n        VI_1\n        VI_GW\n    }\n    track_script {\n        maint weight -60\n    }\n}\n\
            vrrp_instance VI_1 {\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 150\n    \
            virtual_ipaddress {\n        10.0.0.100\n    }\n}\n\
            vrrp_instance VI_GW {\n    state MASTER\n    interface eth1\n    virtual_router_id 52\n    priority 150\n    \
            virtual_ipaddress {\n        10.1.0.254\n    }\n}\n\
            virtual_server 10.0.0.100 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    \
            real_server 10.1.0.11 80 {\n    }\n    real_server 10.1.0.12 80 {\n    }\n}\n";
        let imported = import_text(conf, "nat-group.conf").unwrap();
        assert!(
            !said(&imported).iter().any(|w| w.contains("weight")),
            "{:#?}",
            said(&imported)
        );
        let scenario = crate::scenario::parse(&imported.toml, "imported.toml")
            .unwrap_or_else(|r| panic!("{}\n{}", r.render("imported.toml"), imported.toml));
        let vrrp = scenario.vrrp.as_ref().unwrap();
        let lvs1 = vrrp.node("lvs1").unwrap();
        assert_eq!(lvs1.track_scripts, [("maint".to_string(), -60)]);
        assert_eq!(
            lvs1.group_tracks(),
            [crate::scenario::VrrpTrack::Script("maint".into(), -60)]
        );
        let dir = std::path::Path::new("/run/lvslab/t/lvs1");
        let written = crate::keepalived::config(&scenario, "lvs1", dir, crate::keepalived::Mode::VrrpOnly).unwrap();
        assert!(
            written.contains("    track_script {\n        maint weight -60\n    }\n}\n"),
            "{written}"
        );

        // sync_group_tracking_weight: a member keeps its own weighted track, and so does the
        // scenario (on the VIP instance alone).
        let conf = conf
            .replace("    track_script {\n        maint weight -60\n    }\n}\n", "    sync_group_tracking_weight\n}\n")
            .replace(
                "    priority 150\n    virtual_ipaddress {\n        10.0.0.100",
                "    priority 150\n    track_script {\n        maint weight -60\n    }\n    virtual_ipaddress {\n        10.0.0.100",
            );
        let imported = import_text(&conf, "nat-group.conf").unwrap();
        assert!(imported.toml.contains("tracking_weight = true"), "{}", imported.toml);
        assert!(
            !said(&imported).iter().any(|w| w.contains("SYNC group")),
            "{:#?}",
            said(&imported)
        );
        let scenario = crate::scenario::parse(&imported.toml, "imported.toml")
            .unwrap_or_else(|r| panic!("{}\n{}", r.render("imported.toml"), imported.toml));
        let vrrp = scenario.vrrp.as_ref().unwrap();
        assert!(vrrp.sync_group_tracking_weight);
        assert_eq!(vrrp.node("lvs1").unwrap().track_scripts, [("maint".to_string(), -60)]);
        assert!(vrrp.node("lvs1").unwrap().group_tracks().is_empty());
    }
}
