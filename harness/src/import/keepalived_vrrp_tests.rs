//! keepalived's VRRP defaults and fix-ups as the importer applies them: each test sets one
//! up and checks both the value that results and the warning (keepalived's words, its line).

use std::net::IpAddr;
use std::time::Duration;

use super::error::Warning;
use super::keepalived::{self, KeepalivedConfig};
use super::keepalived_vrrp::VrrpInstance;
use crate::vrrp::Version;

fn parse(text: &str) -> KeepalivedConfig {
    keepalived::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// Instance VI with `body` from line 5 on (when `globals` is one line).
fn instance(globals: &str, body: &str) -> (VrrpInstance, Vec<Warning>) {
    let text = format!(
        "global_defs {{\n{globals}\n}}\nvrrp_instance VI {{\n{body}\n    interface eth0\n    virtual_router_id 5\n    virtual_ipaddress {{\n        10.0.0.10\n    }}\n}}\n"
    );
    let config = parse(&text);
    let instance = config
        .vrrp
        .instances
        .first()
        .unwrap_or_else(|| panic!("instance dropped: {:?}", config.warnings))
        .clone();
    (instance, config.warnings)
}

fn said(warnings: &[Warning]) -> Vec<String> {
    warnings.iter().map(Warning::to_string).collect()
}

#[test]
fn an_instance_with_nothing_set_takes_keepalived_defaults() {
    let (vi, warnings) = instance("", "");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((vi.priority, vi.priority_given, vi.master), (100, false, false));
    assert_eq!((vi.version, vi.advert_int), (Version::V2, Duration::from_secs(1)));
    assert!(!vi.nopreempt && vi.preempt_delay.is_zero() && vi.auth_pass.is_none());
    assert_eq!(
        (
            vi.garp_master_delay,
            vi.garp_master_repeat,
            vi.garp_master_refresh,
            vi.garp_master_refresh_repeat
        ),
        (5, 5, 0, 1)
    );
    assert_eq!(vi.down_timer_adverts, 3);
    assert!(!vi.strict && vi.accept);
    assert_eq!(vi.vrid, 5);
    assert_eq!(vi.interface.as_deref(), Some("eth0"));
}

#[test]
fn state_and_priority_derive_each_other() {
    let (vi, _) = instance("", "    state MASTER");
    assert_eq!(
        (vi.priority, vi.master),
        (255, true),
        "MASTER without priority is the owner"
    );
    let (vi, _) = instance("", "    priority 255");
    assert!(vi.master, "priority 255 without state starts as MASTER");
    let (vi, _) = instance("", "    state MASTER\n    priority 150");
    assert_eq!((vi.priority, vi.master), (150, true));
    let (vi, w) = instance("", "    state STANDBY");
    assert!(!vi.master);
    assert_eq!(said(&w), ["line 5: (VI) unknown state 'STANDBY', defaulting to BACKUP"]);
    let (vi, w) = instance("", "    state MASTER\n    state BACKUP\n    priority 150");
    assert!(vi.master);
    assert_eq!(
        said(&w),
        ["line 6: (VI) state previously set as MASTER - ignoring BACKUP"]
    );
    let (vi, w) = instance("", "    priority 300");
    assert_eq!(vi.priority, 100);
    assert_eq!(
        said(&w),
        [
            "line 5: number '300' outside range [1, 255]",
            "line 5: (VI) Priority not valid! must be between 1 & 255. Using default 100"
        ]
    );
}

#[test]
fn nopreempt_is_cleared_by_state_master_and_by_priority_255() {
    let (vi, w) = instance("", "    priority 120\n    nopreempt");
    assert!(vi.nopreempt && w.is_empty());
    let (vi, w) = instance("", "    state MASTER\n    priority 120\n    nopreempt");
    assert!(!vi.nopreempt);
    assert_eq!(
        said(&w),
        ["line 7: (VI) Warning - nopreempt will not work with initial state MASTER - clearing"]
    );
    let (vi, w) = instance("", "    priority 255\n    nopreempt");
    assert!(!vi.nopreempt);
    assert_eq!(
        said(&w),
        ["line 6: (VI) nopreempt is incompatible with priority 255. resetting nopreempt"]
    );
    let (vi, _) = instance("", "    nopreempt\n    preempt");
    assert!(!vi.nopreempt, "a later `preempt` wins");
}

#[test]
fn preempt_delay_is_cleared_by_master_strict_and_nopreempt() {
    let (vi, w) = instance("", "    preempt_delay 2.5");
    assert_eq!(vi.preempt_delay, Duration::from_millis(2500));
    assert!(w.is_empty());
    let (vi, w) = instance("", "    state MASTER\n    priority 120\n    preempt_delay 3");
    assert!(vi.preempt_delay.is_zero());
    assert_eq!(
        said(&w),
        ["line 7: (VI) Warning - preempt delay will not work with initial state MASTER - clearing"]
    );
    let (vi, w) = instance("", "    nopreempt\n    preempt_delay 3");
    assert!(vi.preempt_delay.is_zero() && vi.nopreempt);
    assert_eq!(
        said(&w),
        ["line 6: (VI) preempt_delay is incompatible with nopreempt mode - resetting"]
    );
    let (vi, w) = instance("    vrrp_strict", "    preempt_delay 3");
    assert!(vi.preempt_delay.is_zero());
    assert!(
        said(&w).contains(&"line 5: (VI) preempt_delay is incompatible with strict mode - resetting".to_string()),
        "{w:?}"
    );
}

#[test]
fn vrrpv2_rounds_advert_int_to_seconds_and_v3_to_centiseconds() {
    let (vi, w) = instance("", "    advert_int 0.5");
    assert_eq!(vi.advert_int, Duration::from_secs(1));
    assert_eq!(
        said(&w),
        ["line 5: (VI) VRRPv2 advertisement interval 0.500000s must be an integer. rounding"]
    );
    let (vi, _) = instance("", "    advert_int 2.4");
    assert_eq!(vi.advert_int, Duration::from_secs(2));
    let (vi, w) = instance("", "    version 3\n    advert_int 0.015");
    assert_eq!(vi.advert_int, Duration::from_millis(20));
    assert_eq!(
        said(&w),
        ["line 6: (VI) VRRPv3 advertisement interval 0.015000s must be in units of 10ms - rounding"]
    );
    let (vi, w) = instance("", "    version 3\n    advert_int 0.1");
    assert_eq!((vi.advert_int, w.len()), (Duration::from_millis(100), 0));
}

#[test]
fn auth_pass_is_cut_to_8_and_dropped_in_v3_and_strict_mode() {
    let auth = |pass: &str| format!("    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}");
    let (vi, w) = instance("", &auth("verylongpassword"));
    assert_eq!(vi.auth_pass.as_deref(), Some("verylong"));
    assert_eq!(said(&w), ["line 7: Truncating auth_pass to 8 characters"]);
    let (vi, w) = instance("", &format!("    version 3\n{}", auth("secret")));
    assert_eq!(vi.auth_pass, None);
    assert_eq!(
        said(&w),
        ["line 7: (VI) VRRP version 3 does not support authentication. Ignoring."]
    );
    let (vi, w) = instance("    vrrp_strict", &auth("secret"));
    assert_eq!(vi.auth_pass, None);
    assert!(
        said(&w).contains(&"line 6: (VI) Strict mode does not support authentication. Ignoring.".to_string()),
        "{w:?}"
    );
    let (vi, w) = instance("", "    authentication {\n        auth_type PASS\n    }");
    assert_eq!(vi.auth_pass, None);
    assert_eq!(
        said(&w),
        ["line 6: (VI) Authentication specified but no password given. Ignoring"]
    );
}

#[test]
fn strict_mode_forces_state_accept_and_down_timer() {
    let (vi, w) = instance(
        "    vrrp_strict",
        "    state MASTER\n    priority 150\n    down_timer_adverts 5",
    );
    assert!(vi.strict);
    assert!(!vi.master, "strict: MASTER only for the address owner");
    assert!(!vi.accept, "strict: no accept below priority 255");
    assert_eq!(vi.down_timer_adverts, 3);
    assert_eq!(
        said(&w),
        [
            "line 5: (VI) State MASTER must match being address owner",
            "line 7: (VI) down_timer_adverts is incompatible with strict mode - resetting"
        ]
    );
    let (vi, _) = instance("    vrrp_strict", "    state MASTER");
    assert!(vi.master && vi.accept, "the owner keeps accept in strict mode");
    let (vi, w) = instance("    vrrp_strict", "    accept");
    assert!(!vi.accept, "strict VRRPv2 resets accept");
    assert_eq!(
        said(&w),
        ["line 5: (VI) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"]
    );
    let (vi, w) = instance("    vrrp_strict", "    version 3\n    accept");
    assert!(vi.accept && w.is_empty(), "{w:?}");
    let (vi, _) = instance("", "    strict_mode");
    assert!(vi.strict && !vi.accept, "strict_mode on the instance alone");
    let (vi, _) = instance("    vrrp_strict", "    strict_mode off");
    assert!(!vi.strict && vi.accept);
    let (vi, _) = instance("", "    no_accept");
    assert!(!vi.accept);
}

#[test]
fn global_defaults_apply_to_instances_that_follow_them() {
    let (vi, _) = instance(
        "    vrrp_version 3\n    vrrp_garp_master_delay 1\n    vrrp_garp_master_repeat 2\n    vrrp_garp_master_refresh 30\n    vrrp_garp_master_refresh_repeat 4",
        "",
    );
    assert_eq!(vi.version, Version::V3);
    assert_eq!(
        (
            vi.garp_master_delay,
            vi.garp_master_repeat,
            vi.garp_master_refresh,
            vi.garp_master_refresh_repeat
        ),
        (1, 2, 30, 4)
    );
    let (vi, _) = instance("    vrrp_garp_master_repeat 2", "    garp_master_repeat 7");
    assert_eq!(vi.garp_master_repeat, 7, "the instance's own value wins");
    let (_, w) = instance("    vrrp_garp_master_repeat 0", "");
    assert_eq!(
        said(&w),
        ["line 2: vrrp_garp_master_repeat must be greater than 0, setting to 1"]
    );
    // keepalived copies the globals when it allocates the instance: a later global_defs is too late.
    let config = parse(
        "vrrp_instance VI {\n virtual_router_id 5\n virtual_ipaddress {\n 10.0.0.1\n }\n}\nglobal_defs {\n vrrp_garp_master_repeat 9\n}\n",
    );
    assert_eq!(config.vrrp.instances[0].garp_master_repeat, 5);
}

#[test]
fn tracks_take_the_scripts_weight_unless_they_give_their_own() {
    let text = "vrrp_script chk {\n    script \"/bin/check --quiet\"\n    weight -40\n    fall 3\n}\n\
                vrrp_script other {\n    script /bin/true\n}\n\
                vrrp_instance VI {\n    interface eth0\n    virtual_router_id 5\n    track_script {\n        chk\n        other weight 10\n        missing\n    }\n    track_interface {\n        eth1 weight -254\n        eth0\n    }\n    virtual_ipaddress {\n        10.0.0.10\n    }\n}\n";
    let config = parse(text);
    let vi = &config.vrrp.instances[0];
    let scripts: Vec<(&str, i32)> = vi.track_scripts.iter().map(|t| (t.name.as_str(), t.weight)).collect();
    assert_eq!(scripts, [("chk", -40), ("other", 10)]);
    let interfaces: Vec<(&str, i32)> = vi
        .track_interfaces
        .iter()
        .map(|t| (t.name.as_str(), t.weight))
        .collect();
    assert_eq!(interfaces, [("eth1", -253)], "own interface dropped, -254 becomes -253");
    let script = &config.vrrp.scripts[0];
    assert_eq!(script.script.as_deref(), Some("/bin/check --quiet"));
    assert_eq!(
        (script.interval, script.timeout, script.rise, script.fall),
        (1, 0, 1, 3)
    );
    let all = said(&config.warnings);
    for expected in [
        "line 15: (VI) track script missing not found, ignoring...",
        "line 18: (VI) weight for eth1 cannot be +/-254. Setting to +/-253",
        "line 19: (VI) Ignoring track_interface eth0 since own interface",
    ] {
        assert!(all.contains(&expected.to_string()), "missing {expected:?} in {all:#?}");
    }
    // A vrrp_script defined after the instance is not found (keepalived reads in order).
    let late = parse(
        "vrrp_instance VI {\n virtual_router_id 5\n track_script {\n chk\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\nvrrp_script chk {\n script /bin/true\n}\n",
    );
    assert!(late.vrrp.instances[0].track_scripts.is_empty());
}

#[test]
fn addresses_peers_and_notify_scripts_are_read() {
    let (vi, w) = instance(
        "",
        "    unicast_src_ip 10.0.0.2\n    unicast_peer {\n        10.0.0.3\n        10.0.0.4\n    }\n    notify_master /x.sh\n    notify /y.sh",
    );
    let peers: Vec<IpAddr> = vi.unicast_peers.iter().map(|p| p.addr).collect();
    assert_eq!(
        peers,
        ["10.0.0.3".parse::<IpAddr>().unwrap(), "10.0.0.4".parse().unwrap()]
    );
    assert_eq!(vi.unicast_src_ip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(
        said(&w),
        [
            "line 10: (VI) notify_master is not run: lvslab does not run notify scripts (the run reports the transitions)",
            "line 11: (VI) notify is not run: lvslab does not run notify scripts (the run reports the transitions)"
        ]
    );
    let config =
        parse("vrrp_instance VI {\n virtual_router_id 5\n virtual_ipaddress {\n 10.0.0.9/24 dev eth0 label eth0:v\n fe80::1\n }\n}\n");
    let vip = &config.vrrp.instances[0].vips[0];
    assert_eq!(
        (vip.addr, vip.prefix, vip.dev.as_deref(), vip.label.as_deref()),
        ("10.0.0.9".parse().unwrap(), Some(24), Some("eth0"), Some("eth0:v"))
    );
    assert_eq!(config.vrrp.instances[0].vips.len(), 1, "IPv6 VIP left out");
}

#[test]
fn instances_keepalived_refuses_are_dropped_with_its_reason() {
    let config = parse("vrrp_instance A {\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n");
    assert!(config.vrrp.instances.is_empty());
    assert_eq!(
        said(&config.warnings),
        ["line 1: (A) the virtual router id must be set"]
    );
    let config = parse("vrrp_instance B {\n virtual_router_id 5\n version 3\n}\n");
    assert!(config.vrrp.instances.is_empty());
    assert_eq!(
        said(&config.warnings),
        ["line 1: (B) No VIP specified; at least one is required"]
    );
    let config = parse("vrrp_instance C {\n virtual_router_id 5\n}\nvrrp_instance C {\n virtual_router_id 6\n}\n");
    assert_eq!(config.vrrp.instances.len(), 1);
    assert_eq!(
        said(&config.warnings),
        [
            "line 1: (C) No VIP specified; at least one is sensible",
            "line 4: vrrp instance C already defined"
        ]
    );
    let config = parse("vrrp_instance {\n}\n");
    assert_eq!(said(&config.warnings), ["line 1: vrrp_instance must have a name"]);
}

#[test]
fn a_sync_groups_tracks_weighted_or_not_become_every_members() {
    let config = parse(
        "vrrp_script chk {\n  script \"/bin/true\"\n  weight 0\n}\nvrrp_script heavy {\n  script \"/bin/true\"\n  weight -60\n}\n\
         vrrp_sync_group VG {\n  group {\n    VI_A\n    VI_B\n  }\n  track_script {\n    chk\n    heavy\n  }\n  \
         track_interface {\n    eth1\n  }\n  notify_master \"/bin/m.sh\"\n}\n\
         vrrp_instance VI_A {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n\
         vrrp_instance VI_B {\n  interface eth0\n  virtual_router_id 2\n  virtual_ipaddress {\n    10.0.1.1\n  }\n}\n",
    );
    for instance in &config.vrrp.instances {
        let scripts: Vec<(&str, i32)> = instance
            .track_scripts
            .iter()
            .map(|t| (t.name.as_str(), t.weight))
            .collect();
        assert_eq!(scripts, [("chk", 0), ("heavy", -60)], "{}", instance.name);
        let ifs: Vec<&str> = instance.track_interfaces.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(ifs, ["eth1"], "{}", instance.name);
    }
    let said = said(&config.warnings);
    assert!(!said.iter().any(|w| w.contains("heavy")), "{said:?}");
    assert!(
        said.iter()
            .any(|w| w.starts_with("line 21: (VG) notify_master is not run")),
        "{said:?}"
    );
}
