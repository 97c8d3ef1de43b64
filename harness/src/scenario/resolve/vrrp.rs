//! Stage 13: the directors as one keepalived `vrrp_instance` (`[vrrp_instance]`, the VRRP keys
//! of each `[[director]]`, `[[vrrp_script]]`, and the top-level `vrrp` choice).
//!
//! Keywords, units and defaults are keepalived.conf's. Values keepalived would only adjust with
//! a warning (nopreempt with state MASTER, a fractional VRRPv2 advert_int, ...) are passed on as
//! written: `crate::vrrp::Instance` and the real keepalived apply the same fix-ups, and a
//! scenario may want to show one; `contradictions` warns about them. Values keepalived refuses
//! are errors here.

mod contradictions;
mod gateway;

use std::net::Ipv4Addr;
use std::time::Duration;

use super::context::{Context, Source, Span};
use super::health::seconds;
use super::reference_hint;
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Host, Mode, Service, Vrrp, VrrpChoice, VrrpNode, VrrpScriptConfig, VrrpState};
use crate::scenario::raw::{RawDirector, RawVrrpInstance, RawVrrpScript, S};
use crate::scenario::validate::{self as v, span};
use crate::vrrp::{Auth, InstanceConfig, Version};

/// keepalived's default instance name in its samples and in lvslab's generated configs.
const DEFAULT_INSTANCE: &str = "VI_1";
const DEFAULT_VRID: u8 = 51;

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>, services: &[Service], hosts: &[Host]) -> Option<Vrrp> {
    let raw = cx.raw;
    let service = &services[0];
    // keepalived's virtual_ipaddress: every service's VIP, once, the first service's first.
    let mut vips: Vec<Ipv4Addr> = Vec::new();
    for s in services {
        if !vips.contains(&s.vip) {
            vips.push(s.vip);
        }
    }
    let choice_text = raw.top.vrrp.as_ref();
    if !raw.has_vrrp() {
        if let Some(text) = choice_text {
            cx.p.push(
                span(text),
                format!("`vrrp = \"{}\"` but no director runs VRRP", text.get_ref()),
                Some("add a [vrrp_instance] table, or give the directors a `priority`".into()),
            );
        }
        return None;
    }
    let choice = v::keyword(cx.p, choice_text, VrrpChoice::Auto);
    if cx.mode == Mode::Direct {
        cx.p.push(
            raw.vrrp_instance_span.clone(),
            "VRRP moves the VIP between directors, and mode = \"direct\" has none",
            Some("use mode = \"dr\", \"nat\", \"tun\" or \"fullnat\"".into()),
        );
        return None;
    }
    let empty = RawVrrpInstance::default();
    let shared = raw.vrrp_instance.as_ref().unwrap_or(&empty);
    let name = shared
        .name
        .as_ref()
        .map_or(DEFAULT_INSTANCE.to_string(), |n| n.get_ref().clone());
    if name.is_empty() || name.contains(char::is_whitespace) {
        cx.p.push(
            shared.name.as_ref().and_then(span),
            format!("instance name {name:?} must be one word"),
            Some("keepalived reads `vrrp_instance NAME {`".into()),
        );
    }
    let scripts = scripts(cx.p, &raw.vrrp_scripts, &raw.vrrp_script_spans);
    let script_names: Vec<String> = scripts.iter().map(|s| s.name.clone()).collect();

    // Each director's interface and address on the VIP's network.
    let mut placed: Vec<(String, Option<&RawDirector>, String, Ipv4Addr)> = Vec::new();
    for draft in &cx.hosts {
        let Source::Director(d) = draft.source else { continue };
        let Some(host) = hosts.iter().find(|h| h.name == draft.name) else {
            continue;
        };
        match host.interfaces.iter().find(|i| i.address.contains(&service.vip)) {
            Some(iface) => placed.push((draft.name.clone(), d, iface.name.clone(), iface.address.addr())),
            None => cx.p.push(
                draft.name_span.clone(),
                format!(
                    "director \"{}\" has no interface on the VIP {}'s network",
                    draft.name, service.vip
                ),
                Some("VRRP moves the VIP between directors on one network: attach each to it".into()),
            ),
        }
    }
    let addresses: Vec<Ipv4Addr> = placed.iter().map(|(_, _, _, a)| *a).collect();
    let mut nodes = Vec::new();
    for (director, d, interface, address) in &placed {
        let overrides = d.map(RawDirector::instance_overrides).unwrap_or_default();
        let key = Keys {
            shared,
            own: &overrides,
        };
        let node = node(
            cx.p,
            NodeInput {
                director,
                raw: *d,
                keys: &key,
                instance: &name,
                interface,
                address: *address,
                vips: vips.clone(),
                peers: addresses.iter().copied().filter(|a| a != address).collect(),
                interfaces: hosts
                    .iter()
                    .find(|h| h.name == *director)
                    .map(|h| h.interfaces.iter().map(|i| i.name.clone()).collect())
                    .unwrap_or_default(),
                scripts: &scripts,
                script_names: &script_names,
            },
        );
        nodes.push(node);
    }
    let gateway = gateway::resolve(cx, hosts, &vips, &mut nodes);
    let (sync_group, tracking_weight) = match gateway::sync_group(cx, &name, &mut nodes) {
        Some((group, tracking_weight)) => (Some(group), tracking_weight),
        None => (None, false),
    };
    contradictions::warn(cx, shared, &nodes);
    Some(Vrrp {
        choice,
        nodes,
        scripts,
        gateway,
        sync_group,
        sync_group_tracking_weight: tracking_weight,
    })
}

/// A `[vrrp_instance]` key as a director sees it: its own value, else the shared one.
struct Keys<'a> {
    shared: &'a RawVrrpInstance,
    own: &'a RawVrrpInstance,
}

impl<'a> Keys<'a> {
    fn get<T>(&self, pick: impl Fn(&'a RawVrrpInstance) -> Option<&'a S<T>>) -> Option<&'a S<T>> {
        pick(self.own).or_else(|| pick(self.shared))
    }
}

struct NodeInput<'a> {
    director: &'a str,
    raw: Option<&'a RawDirector>,
    keys: &'a Keys<'a>,
    instance: &'a str,
    interface: &'a str,
    address: Ipv4Addr,
    vips: Vec<Ipv4Addr>,
    peers: Vec<Ipv4Addr>,
    interfaces: Vec<String>,
    scripts: &'a [VrrpScriptConfig],
    script_names: &'a [String],
}

fn node(p: &mut Problems<'_>, n: NodeInput<'_>) -> VrrpNode {
    let k = n.keys;
    let vrid = v::int_in(
        p,
        k.get(|r| r.virtual_router_id.as_ref()),
        "virtual_router_id",
        1,
        255,
        DEFAULT_VRID,
    );
    let version = match k.get(|r| r.version.as_ref()) {
        None => Version::V2,
        Some(s) if *s.get_ref() == 2 => Version::V2,
        Some(s) if *s.get_ref() == 3 => Version::V3,
        Some(s) => {
            p.push(
                span(s),
                format!("`version` = {}: VRRP is version 2 or 3", s.get_ref()),
                None,
            );
            Version::V2
        }
    };
    let mut cfg = InstanceConfig::new(n.instance, n.interface, n.address, vrid, n.vips);
    cfg.version = version;
    // VRRPv2 carries whole seconds below 256, VRRPv3 centiseconds below 40.96 s.
    let max_advert = match version {
        Version::V2 => 255.0,
        Version::V3 => 40.95,
    };
    if let Some(advert) = k.get(|r| r.advert_int.as_ref()) {
        if let Some(d) = seconds(p, Some(advert), "advert_int", true) {
            if d.as_secs_f64() > max_advert {
                p.error(
                    span(advert),
                    format!(
                        "`advert_int` = {} is too long for VRRPv{}: at most {max_advert} s",
                        d.as_secs_f64(),
                        version.number()
                    ),
                );
            } else {
                cfg.advert_int = d;
            }
        }
    }
    if let Some(pass) = k.get(|r| r.auth_pass.as_ref()) {
        let text = pass.get_ref();
        if text.is_empty() || text.len() > 8 || !text.is_ascii() {
            p.push(
                span(pass),
                format!("`auth_pass` {text:?} must be 1 to 8 ASCII characters"),
                Some("keepalived truncates a longer one to 8 characters, so both ends must agree on those".into()),
            );
        } else {
            cfg.auth = Auth::pass(text);
        }
    }
    let unicast = k.get(|r| r.unicast.as_ref()).is_some_and(|b| *b.get_ref());
    cfg.unicast = unicast;
    if let Some(d) = seconds(p, k.get(|r| r.garp_master_delay.as_ref()), "garp_master_delay", false) {
        cfg.garp_master_delay = d;
        cfg.garp_lower_prio_delay = d;
    }
    cfg.garp_master_repeat = v::int_in(
        p,
        k.get(|r| r.garp_master_repeat.as_ref()),
        "garp_master_repeat",
        0,
        1000,
        5,
    );
    cfg.garp_lower_prio_repeat = cfg.garp_master_repeat;
    if let Some(d) = seconds(
        p,
        k.get(|r| r.garp_master_refresh.as_ref()),
        "garp_master_refresh",
        false,
    ) {
        cfg.garp_master_refresh = d;
    }
    cfg.garp_master_refresh_repeat = v::int_in(
        p,
        k.get(|r| r.garp_master_refresh_repeat.as_ref()),
        "garp_master_refresh_repeat",
        1,
        1000,
        1,
    );
    cfg.down_timer_adverts = v::int_in(
        p,
        k.get(|r| r.down_timer_adverts.as_ref()),
        "down_timer_adverts",
        1,
        100,
        3,
    );
    let strict = k.get(|r| r.vrrp_strict.as_ref()).is_some_and(|b| *b.get_ref());
    let accept = k.get(|r| r.accept.as_ref()).map(|b| *b.get_ref());

    let raw = n.raw;
    if let Some(s) = raw.and_then(|d| d.state.as_ref()) {
        let state = v::keyword(p, Some(s), VrrpState::Backup);
        cfg.initial_master = Some(state == VrrpState::Master);
    }
    cfg.priority = raw
        .and_then(|d| d.priority.as_ref())
        .map(|s| v::int_in(p, Some(s), "priority", 1, 255, 100u8));
    cfg.nopreempt = raw.and_then(|d| d.nopreempt.as_ref()).is_some_and(|b| *b.get_ref());
    if let Some(d) = seconds(p, raw.and_then(|d| d.preempt_delay.as_ref()), "preempt_delay", false) {
        if d > Duration::from_secs(1000) {
            p.error(
                raw.and_then(|d| d.preempt_delay.as_ref()).and_then(span),
                "`preempt_delay` is at most 1000 seconds in keepalived",
            );
        } else {
            cfg.preempt_delay = d;
        }
    }
    let mut track_interfaces = Vec::new();
    if let Some(list) = raw.and_then(|d| d.track_interface.as_ref()) {
        for entry in list.get_ref() {
            let e = entry.get_ref();
            let Some(iface) = e.interface.as_ref() else {
                p.push(
                    span(entry),
                    "a `track_interface` entry needs an `interface`",
                    Some(format!("one of {}", n.interfaces.join(", "))),
                );
                continue;
            };
            if !n.interfaces.contains(iface.get_ref()) {
                p.push(
                    span(iface),
                    format!("director \"{}\" has no interface {:?}", n.director, iface.get_ref()),
                    reference_hint(iface.get_ref(), &n.interfaces),
                );
                continue;
            }
            if iface.get_ref() == n.interface {
                // keepalived 2.2.7: "(VI_1) Ignoring track_interface eth0 since own interface".
                p.push(
                    span(iface),
                    format!(
                        "`track_interface` {:?} is the instance's own interface: keepalived ignores it, weight and all",
                        iface.get_ref()
                    ),
                    Some(
                        "the own interface is always tracked with weight 0 (FAULT while it is down); track another one, or use a track_script"
                            .into(),
                    ),
                );
                continue;
            }
            let weight = v::int_in(p, e.weight.as_ref(), "weight", -253, 253, 0i32);
            track_interfaces.push((iface.get_ref().clone(), weight));
        }
    }
    let mut track_scripts = Vec::new();
    if let Some(list) = raw.and_then(|d| d.track_script.as_ref()) {
        for entry in list.get_ref() {
            let e = entry.get_ref();
            let Some(name) = e.script.as_ref() else {
                p.push(
                    span(entry),
                    "a `track_script` entry needs a `script`: the name of a [[vrrp_script]]",
                    None,
                );
                continue;
            };
            let Some(script) = n.scripts.iter().find(|s| s.name == *name.get_ref()) else {
                p.push(
                    span(name),
                    format!("no [[vrrp_script]] is named {:?}", name.get_ref()),
                    reference_hint(name.get_ref(), n.script_names),
                );
                continue;
            };
            let weight = match e.weight.as_ref() {
                Some(w) => v::int_in(p, Some(w), "weight", -253, 253, 0i32),
                None => script.weight,
            };
            track_scripts.push((name.get_ref().clone(), weight));
        }
    }
    let choice = raw
        .and_then(|d| d.vrrp.as_ref())
        .map(|c| v::keyword(p, Some(c), VrrpChoice::Auto));
    VrrpNode {
        director: n.director.to_string(),
        choice,
        instance: cfg,
        unicast_peers: if unicast { n.peers } else { Vec::new() },
        strict,
        accept,
        track_interfaces,
        track_scripts,
        gateway: None,
        weights_to_group: false,
    }
}

fn scripts(p: &mut Problems<'_>, raw: &[RawVrrpScript], spans: &[Span]) -> Vec<VrrpScriptConfig> {
    let mut out: Vec<VrrpScriptConfig> = Vec::new();
    for (s, header) in raw.iter().zip(spans) {
        let Some(name) = s.name.as_ref() else {
            p.push(
                header.clone(),
                "a [[vrrp_script]] needs a `name`",
                Some("track_script entries refer to it by name".into()),
            );
            continue;
        };
        if out.iter().any(|o| o.name == *name.get_ref()) {
            p.push(
                span(name),
                format!("two [[vrrp_script]]s are named {:?}", name.get_ref()),
                None,
            );
            continue;
        }
        let Some(script) = s.script.as_ref() else {
            p.push(
                header.clone(),
                format!("[[vrrp_script]] {:?} needs a `script`", name.get_ref()),
                Some("a command run with `sh -c` in the director's namespace; exit 0 = ok".into()),
            );
            continue;
        };
        let interval = seconds(p, s.interval.as_ref(), "interval", true).unwrap_or(Duration::from_secs(1));
        let timeout = seconds(p, s.timeout.as_ref(), "timeout", false).unwrap_or(Duration::ZERO);
        out.push(VrrpScriptConfig {
            name: name.get_ref().clone(),
            script: script.get_ref().clone(),
            interval,
            timeout,
            weight: v::int_in(p, s.weight.as_ref(), "weight", -253, 253, 0i32),
            rise: v::int_in(p, s.rise.as_ref(), "rise", 1, 1000, 1u32),
            fall: v::int_in(p, s.fall.as_ref(), "fall", 1, 1000, 1u32),
            init_fail: s.init_fail.as_ref().is_some_and(|b| *b.get_ref()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use crate::scenario::{parse, VrrpChoice, VrrpTrack};
    use crate::vrrp::{Auth, Version};

    const PAIR: &str = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[vrrp_instance]
virtual_router_id = 7
advert_int = 0.5
version = 3
unicast = true
[[director]]
name = "lvs1"
state = "MASTER"
priority = 150
track_script = [{ script = "maint" }]
[[director]]
name = "lvs2"
virtual_router_id = 8
auth_pass = "pw"
[[vrrp_script]]
name = "maint"
script = "test ! -e {dir}/maintenance"
weight = -20
fall = 2
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn directors_share_the_vip_and_take_the_instance_keys_with_their_overrides() {
        let s = parse(PAIR, "t.toml").unwrap();
        let vrrp = s.vrrp.as_ref().unwrap();
        assert_eq!(vrrp.choice, VrrpChoice::Auto);
        assert!(s.directors.iter().all(|d| d.vip == Ipv4Addr::new(192, 0, 2, 100)));
        let (a, b) = (&vrrp.nodes[0], &vrrp.nodes[1]);
        assert_eq!((a.instance.vrid, b.instance.vrid), (7, 8));
        assert_eq!(a.instance.version, Version::V3);
        assert_eq!(a.instance.advert_int, Duration::from_millis(500));
        assert_eq!(a.instance.priority, Some(150));
        assert_eq!(a.instance.initial_master, Some(true));
        assert_eq!((b.instance.priority, b.instance.initial_master), (None, None));
        assert_eq!(b.instance.auth, Auth::pass("pw"));
        assert_eq!(a.instance.auth, Auth::None);
        assert_eq!(a.instance.interface, "eth0");
        assert_eq!(a.unicast_peers, vec![b.instance.address]);
        assert_eq!(b.unicast_peers, vec![a.instance.address]);
        // The script's own weight applies when the track does not give one.
        assert_eq!(a.track_scripts, vec![("maint".to_string(), -20)]);
        assert_eq!(
            a.track_names(),
            vec![
                VrrpTrack::Interface("eth0".into(), 0),
                VrrpTrack::Script("maint".into(), -20)
            ]
        );
        let cfg = a.instance_config(&vrrp.scripts);
        assert_eq!(cfg.tracks.len(), 2);
        assert!(
            cfg.tracks[1].ok_at_start,
            "a negative-weight script takes nothing off before it runs"
        );
        assert_eq!(
            vrrp.scripts[0].command_in(std::path::Path::new("/run/x/lvs1")),
            "test ! -e /run/x/lvs1/maintenance"
        );
    }

    #[test]
    fn without_vrrp_two_directors_still_need_two_vips() {
        let text = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[[director]]
name = "lvs1"
[[director]]
name = "lvs2"
vip = "192.0.2.100"
[[real_server]]
name = "rs1"
"#;
        let report = parse(text, "t.toml").unwrap_err().render("t.toml");
        assert!(report.contains("both have the VIP"), "{report}");
        let with_vrrp = text.replace("[[real_server]]", "[vrrp_instance]\n[[real_server]]");
        let s = parse(&with_vrrp, "t.toml").unwrap();
        assert_eq!(s.vrrp.unwrap().nodes.len(), 2);
    }

    #[test]
    fn vrrp_mistakes_are_named_where_they_are() {
        let text = r#"
vrrp = "keepalive"
[service]
mode = "dr"
[vrrp_instance]
virtual_router_id = 300
version = 4
auth_pass = "much-too-long"
[[director]]
name = "lvs1"
state = "master"
track_interface = [{ interface = "eth3" }, { interface = "eth0", weight = -50 }]
track_script = [{ script = "chek" }]
[[director]]
name = "lvs2"
vip = "192.0.2.77"
[[vrrp_script]]
name = "chk"
script = "true"
[[real_server]]
name = "rs1"
[traffic]
requests = 10
[[event]]
at_request = 5
host = "rs1"
freeze = true
[expect]
master = "lvs3"
"#;
        insta::assert_snapshot!(parse(text, "t.toml").unwrap_err().render("t.toml"));
    }

    #[test]
    fn a_vrrp_choice_without_vrrp_directors_is_an_error() {
        let text = "vrrp = \"embedded\"\n[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n";
        let report = parse(text, "t.toml").unwrap_err().render("t.toml");
        assert!(report.contains("no director runs VRRP"), "{report}");
    }

    const NAT_PAIR: &str = r#"
[service]
vip = "192.0.2.100"
mode = "nat"
[vrrp_instance]
virtual_router_id = 51
[vrrp_gateway]
virtual_router_id = 52
address = "198.51.100.254"
[vrrp_sync_group]
group = ["VI_1", "VI_GW"]
[[director]]
name = "lvs1"
priority = 150
[[director]]
name = "lvs2"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
"#;

    #[test]
    fn a_nat_pair_floats_the_real_servers_gateway_in_a_sync_group() {
        let s = parse(NAT_PAIR, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let vrrp = s.vrrp.as_ref().unwrap();
        let gw = Ipv4Addr::new(198, 51, 100, 254);
        assert_eq!(vrrp.gateway, Some(gw));
        assert_eq!(vrrp.sync_group.as_deref(), Some("VG_1"));
        for node in &vrrp.nodes {
            let g = node.gateway.as_ref().unwrap();
            assert_eq!((g.instance.name.as_str(), g.instance.vrid), ("VI_GW", 52));
            assert_eq!(g.instance.interface, "eth1");
            assert_eq!(g.instance.vips, vec![gw]);
            assert_eq!(g.instance.priority, node.instance.priority);
            let configs = node.instance_configs(&vrrp.scripts);
            assert_eq!(configs.len(), 2);
            assert_eq!(configs[1].tracks.len(), 1, "the gateway's own interface");
            assert_eq!(node.member_tracks()[1], vec![VrrpTrack::Interface("eth1".into(), 0)]);
        }
        for rs in s.hosts.iter().filter(|h| h.role == crate::scenario::Role::RealServer) {
            assert_eq!(
                rs.routes[0].via,
                Some(gw),
                "{} routes through the floating gateway",
                rs.name
            );
        }
    }

    #[test]
    fn a_weighted_track_in_a_sync_group_is_the_groups_and_moves_every_member() {
        let text = NAT_PAIR.replace(
            "priority = 150\n",
            "priority = 150\ntrack_script = [{ script = \"maint\", weight = -60 }, { script = \"up\" }]\n",
        ) + "[[vrrp_script]]\nname = \"maint\"\nscript = \"true\"\n[[vrrp_script]]\nname = \"up\"\nscript = \"true\"\n";
        let s = parse(&text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let vrrp = s.vrrp.as_ref().unwrap();
        let node = vrrp.node("lvs1").unwrap();
        let maint = VrrpTrack::Script("maint".into(), -60);
        assert_eq!(node.group_tracks(), vec![maint.clone()]);
        // The VIP's instance follows both; the gateway's its own interface and the weighted one.
        assert!(node.member_tracks()[0].contains(&maint));
        assert!(node.member_tracks()[0].contains(&VrrpTrack::Script("up".into(), 0)));
        assert_eq!(
            node.member_tracks()[1],
            vec![VrrpTrack::Interface("eth1".into(), 0), maint]
        );
        let configs = node.instance_configs(&vrrp.scripts);
        assert_eq!(configs[1].tracks.len(), 2);
        assert_eq!(configs[1].tracks[1].weight, -60);
        assert!(vrrp.node("lvs2").unwrap().group_tracks().is_empty());

        // sync_group_tracking_weight: the track stays the VIP instance's, with a warning.
        let text = text.replace(
            "group = [\"VI_1\", \"VI_GW\"]\n",
            "group = [\"VI_1\", \"VI_GW\"]\ntracking_weight = true\n",
        );
        let (s, report) =
            crate::scenario::parse_checked(&text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let report = report.render("t.toml");
        assert!(
            report.contains(
                "warning: with tracking_weight director \"lvs1\"'s weighted tracks move its VIP instance alone"
            ),
            "{report}"
        );
        let vrrp = s.vrrp.as_ref().unwrap();
        assert!(vrrp.sync_group_tracking_weight);
        let node = vrrp.node("lvs1").unwrap();
        assert!(node.group_tracks().is_empty());
        assert_eq!(node.member_tracks()[1], vec![VrrpTrack::Interface("eth1".into(), 0)]);
        assert!(node.member_tracks()[0].contains(&VrrpTrack::Script("maint".into(), -60)));
    }

    fn errors(text: &str) -> String {
        parse(text, "t.toml").unwrap_err().render("t.toml")
    }

    #[test]
    fn nat_pair_contradictions_are_named_where_they_are() {
        // Two NAT directors without a floating gateway: the old refusal, with the way out.
        let report = errors(&NAT_PAIR.replace(
            "[vrrp_gateway]\nvirtual_router_id = 52\naddress = \"198.51.100.254\"\n",
            "",
        ));
        assert!(
            report.contains("nat mode takes one director") && report.contains("[vrrp_gateway]"),
            "{report}"
        );
        // The gateway is a host's address.
        let report = errors(&NAT_PAIR.replace("198.51.100.254", "198.51.100.11"));
        assert!(
            report.contains("t.toml:9:11: error: the gateway 198.51.100.11 is already rs1's address (eth0)"),
            "{report}"
        );
        // The gateway is the VIP, or off the real servers' network.
        let report = errors(&NAT_PAIR.replace("198.51.100.254", "192.0.2.100"));
        assert!(report.contains("the gateway 192.0.2.100 is also a VIP"), "{report}");
        let report = errors(&NAT_PAIR.replace("198.51.100.254", "203.0.113.1"));
        assert!(
            report.contains("has no interface on the gateway 203.0.113.1's network"),
            "{report}"
        );
        // Missing keys.
        let report = errors(&NAT_PAIR.replace("virtual_router_id = 52\n", ""));
        assert!(
            report.contains("t.toml:7:1: error: [vrrp_gateway] needs its own `virtual_router_id`"),
            "{report}"
        );
        let report = errors(&NAT_PAIR.replace("address = \"198.51.100.254\"\n", ""));
        assert!(
            report.contains("needs the `address` the real servers route through"),
            "{report}"
        );
        // The sync group names an unknown instance, or leaves one out.
        let report = errors(&NAT_PAIR.replace("[\"VI_1\", \"VI_GW\"]", "[\"VI_1\", \"VI_GWW\"]"));
        assert!(
            report.contains("t.toml:11:18: error: no vrrp_instance is named \"VI_GWW\""),
            "{report}"
        );
        assert!(report.contains("did you mean"), "{report}");
        let report = errors(&NAT_PAIR.replace("[\"VI_1\", \"VI_GW\"]", "[\"VI_1\"]"));
        assert!(report.contains("the group leaves out \"VI_GW\""), "{report}");
        // A weighted track beside an address owner: keepalived clears its weight.
        let report = errors(&NAT_PAIR.replace(
            "priority = 150\n",
            "priority = 255\ntrack_interface = [{ interface = \"eth1\", weight = -60 }]\n",
        ));
        assert!(
            report.contains(
                "has priority 255 (the address owner) and tracks \"eth1\" with weight -60 in a vrrp_sync_group"
            ),
            "{report}"
        );
        // Not in DR.
        let report = errors(&NAT_PAIR.replace("\"nat\"", "\"dr\""));
        assert!(
            report.contains("[vrrp_gateway] floats the real servers' default gateway, which only mode = \"nat\" needs"),
            "{report}"
        );
        // One interface for both instances with one VRID (a one-network NAT).
        let one_net = NAT_PAIR
            .replace("virtual_router_id = 52", "virtual_router_id = 51")
            .replace("198.51.100.254", "192.0.2.254")
            .replace(
                "[[real_server]]\nname = \"rs1\"",
                "[[real_server]]\nname = \"rs1\"\nnetwork = \"public\"",
            )
            .replace(
                "[[real_server]]\nname = \"rs2\"",
                "[[real_server]]\nname = \"rs2\"\nnetwork = \"public\"",
            );
        let report = errors(&one_net);
        assert!(report.contains("VI_1 and VI_GW both use VRID 51"), "{report}");
    }

    #[test]
    fn a_gateway_without_a_sync_group_is_warned_about() {
        let text = NAT_PAIR.replace("[vrrp_sync_group]\ngroup = [\"VI_1\", \"VI_GW\"]\n", "");
        let (s, warnings) =
            crate::scenario::parse_checked(&text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        assert!(s.vrrp.as_ref().unwrap().sync_group.is_none());
        let rendered = warnings.render("t.toml");
        assert!(
            rendered.contains("warning: without a [vrrp_sync_group] the VIP and the gateway fail over on their own"),
            "{rendered}"
        );
    }
}
