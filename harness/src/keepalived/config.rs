//! keepalived.conf for one director, written from the resolved scenario. Only what the scenario
//! changes from keepalived's defaults is written (plus what keepalived requires and what lvslab
//! needs: the notify FIFO and script security), so the file reads like a hand-written one.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use super::{fifo_path, KeepalivedError, Mode};
use crate::health::{CheckerKind, CheckerSettings, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DELAY_LOOP};
use crate::lvs::Forward;
use crate::scenario::{HealthCheck, Scenario, VrrpNode, VrrpScriptConfig, VrrpTrack};
use crate::vrrp::{Auth, Version};

/// keepalived's `vrrp_script` defaults (`alloc_vrrp_script`).
const SCRIPT_INTERVAL: Duration = Duration::from_secs(1);

/// The keepalived.conf text of `director`, whose run directory is `dir` (the notify FIFO and
/// the `{dir}` of `vrrp_script` commands). `Mode::Full` adds the `virtual_server` of the
/// scenario's service with its real servers and their checkers.
pub fn config(scenario: &Scenario, director: &str, dir: &Path, mode: Mode) -> Result<String, KeepalivedError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# keepalived.conf of director {director}, written by lvslab from scenario {:?}.",
        scenario.name
    );
    if !mode.vrrp() {
        global_defs(&mut out, director, dir, false);
        virtual_servers(&mut out, director, scenario)?;
        return Ok(out);
    }
    let vrrp = scenario
        .vrrp
        .as_ref()
        .ok_or_else(|| KeepalivedError::config(director, "the scenario has no [vrrp_instance]"))?;
    let node = vrrp
        .node(director)
        .ok_or_else(|| KeepalivedError::config(director, "no such director in the VRRP instance"))?;
    global_defs(&mut out, director, dir, node.strict);
    for (name, _) in &node.track_scripts {
        let script = vrrp
            .script(name)
            .ok_or_else(|| KeepalivedError::config(director, format!("no [[vrrp_script]] named {name:?}")))?;
        vrrp_script(&mut out, director, dir, script)?;
    }
    if let Some(group) = &vrrp.sync_group {
        sync_group(&mut out, group, node, vrrp.sync_group_tracking_weight);
    }
    vrrp_instance(&mut out, director, node, vrrp)?;
    if let Some(gw) = &node.gateway {
        // The real servers' gateway: the same node's keys, its own VRID, no tracks of its own
        // (the group's weighted ones apply to it).
        let _ = writeln!(out, "\nvrrp_instance {} {{", gw.instance.name);
        instance_keys(&mut out, director, &gw.instance, &gw.unicast_peers, node.accept)?;
        out.push_str("}\n");
    }
    if mode.checks() {
        virtual_servers(&mut out, director, scenario)?;
    }
    Ok(out)
}

fn global_defs(out: &mut String, director: &str, dir: &Path, strict: bool) {
    out.push_str("\nglobal_defs {\n");
    let _ = writeln!(out, "    router_id {director}");
    let _ = writeln!(out, "    notify_fifo {}", fifo_path(dir).display());
    // Scripts run as root from lvslab's own directory; without this keepalived refuses them.
    out.push_str("    enable_script_security\n    script_user root\n");
    if strict {
        out.push_str("    vrrp_strict\n");
    }
    out.push_str("}\n");
}

fn vrrp_script(out: &mut String, director: &str, dir: &Path, s: &VrrpScriptConfig) -> Result<(), KeepalivedError> {
    let command = s.command_in(dir);
    // keepalived splits a script into words itself (no shell) and groups words in single
    // quotes: `sh -c '<command>'` keeps the scenario's shell semantics.
    if command.contains('\'') {
        return Err(KeepalivedError::config(
            director,
            format!(
                "vrrp_script {:?}: keepalived cannot pass a command holding a single quote to sh -c: {command}",
                s.name
            ),
        ));
    }
    // keepalived 2.2.7 reads interval and timeout as whole seconds ("invalid number '0.5'").
    let whole = |what: &str, d: Duration| -> Result<u64, KeepalivedError> {
        if d.subsec_nanos() != 0 {
            return Err(KeepalivedError::config(
                director,
                format!(
                    "vrrp_script {:?}: keepalived 2.2.7 takes a whole number of seconds for {what}, not {}",
                    s.name,
                    seconds(d)
                ),
            ));
        }
        Ok(d.as_secs())
    };
    let interval = whole("interval", s.interval)?;
    let timeout = whole("timeout", s.timeout)?;
    let _ = writeln!(out, "\nvrrp_script {} {{", s.name);
    let escaped = command.replace('\\', "\\\\").replace('"', "\\\"");
    let _ = writeln!(out, "    script \"/bin/sh -c '{escaped}'\"");
    if s.interval != SCRIPT_INTERVAL {
        let _ = writeln!(out, "    interval {interval}");
    }
    if timeout != 0 {
        let _ = writeln!(out, "    timeout {timeout}");
    }
    if s.weight != 0 {
        let _ = writeln!(out, "    weight {}", s.weight);
    }
    if s.rise != 1 {
        let _ = writeln!(out, "    rise {}", s.rise);
    }
    if s.fall != 1 {
        let _ = writeln!(out, "    fall {}", s.fall);
    }
    if s.init_fail {
        out.push_str("    init_fail\n");
    }
    out.push_str("}\n");
    Ok(())
}

/// `vrrp_sync_group`: the director's instances move together (keepalived's vrrp_sync.c), and
/// its weighted tracks are the group's, which keepalived adds to every member (a weighted track
/// of a member instance it drops: "ignoring tracked script ... due to SYNC group").
fn sync_group(out: &mut String, name: &str, node: &VrrpNode, tracking_weight: bool) {
    let _ = writeln!(out, "\nvrrp_sync_group {name} {{\n    group {{");
    let _ = writeln!(out, "        {}", node.instance.name);
    if let Some(gw) = &node.gateway {
        let _ = writeln!(out, "        {}", gw.instance.name);
    }
    out.push_str("    }\n");
    if tracking_weight {
        // The members keep their own weighted tracks (the VIP instance's).
        out.push_str("    sync_group_tracking_weight\n");
    }
    let tracks = node.group_tracks();
    for (block, of_scripts) in [("track_interface", false), ("track_script", true)] {
        let entries: Vec<_> = tracks
            .iter()
            .filter_map(|t| match t {
                VrrpTrack::Script(name, w) if of_scripts => Some((name, w)),
                VrrpTrack::Interface(name, w) if !of_scripts => Some((name, w)),
                _ => None,
            })
            .collect();
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "    {block} {{");
        for (name, weight) in entries {
            let _ = writeln!(out, "        {name} weight {weight}");
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
}

fn vrrp_instance(
    out: &mut String,
    director: &str,
    node: &VrrpNode,
    vrrp: &crate::scenario::Vrrp,
) -> Result<(), KeepalivedError> {
    let i = &node.instance;
    let _ = writeln!(out, "\nvrrp_instance {} {{", i.name);
    instance_keys(out, director, i, &node.unicast_peers, node.accept)?;
    vrrp_tracks(out, director, node, vrrp)?;
    out.push_str("}\n");
    Ok(())
}

/// An instance's keys, but its tracks.
fn instance_keys(
    out: &mut String,
    director: &str,
    i: &crate::vrrp::InstanceConfig,
    unicast_peers: &[Ipv4Addr],
    accept: Option<bool>,
) -> Result<(), KeepalivedError> {
    if let Some(master) = i.initial_master {
        let _ = writeln!(out, "    state {}", if master { "MASTER" } else { "BACKUP" });
    }
    let _ = writeln!(out, "    interface {}", i.interface);
    let _ = writeln!(out, "    virtual_router_id {}", i.vrid);
    if let Some(priority) = i.priority {
        let _ = writeln!(out, "    priority {priority}");
    }
    if i.version == Version::V3 {
        out.push_str("    version 3\n");
    }
    if i.advert_int != Duration::from_secs(1) {
        let _ = writeln!(out, "    advert_int {}", seconds(i.advert_int));
    }
    if let Auth::Pass(bytes) = &i.auth {
        let pass: String = bytes.iter().take_while(|b| **b != 0).map(|b| char::from(*b)).collect();
        if pass.is_empty()
            || pass
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | '#' | '!'))
        {
            return Err(KeepalivedError::config(
                director,
                format!("auth_pass {pass:?}: keepalived reads one word without quotes or comment characters"),
            ));
        }
        let _ = writeln!(
            out,
            "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
        );
    }
    if !unicast_peers.is_empty() {
        let _ = writeln!(out, "    unicast_src_ip {}", i.address);
        out.push_str("    unicast_peer {\n");
        for peer in unicast_peers {
            let _ = writeln!(out, "        {peer}");
        }
        out.push_str("    }\n");
    }
    out.push_str("    virtual_ipaddress {\n");
    for vip in &i.vips {
        let _ = writeln!(out, "        {vip}/32 dev {}", i.interface);
    }
    out.push_str("    }\n");
    if i.nopreempt {
        out.push_str("    nopreempt\n");
    }
    if !i.preempt_delay.is_zero() {
        let _ = writeln!(out, "    preempt_delay {}", seconds(i.preempt_delay));
    }
    if i.garp_master_delay != Duration::from_secs(5) {
        let _ = writeln!(out, "    garp_master_delay {}", seconds(i.garp_master_delay));
    }
    if i.garp_master_repeat != 5 {
        let _ = writeln!(out, "    garp_master_repeat {}", i.garp_master_repeat);
    }
    if !i.garp_master_refresh.is_zero() {
        let _ = writeln!(out, "    garp_master_refresh {}", seconds(i.garp_master_refresh));
    }
    if i.garp_master_refresh_repeat != 1 {
        let _ = writeln!(out, "    garp_master_refresh_repeat {}", i.garp_master_refresh_repeat);
    }
    if i.down_timer_adverts != 3 {
        let _ = writeln!(out, "    down_timer_adverts {}", i.down_timer_adverts);
    }
    match accept {
        Some(true) => out.push_str("    accept\n"),
        Some(false) => out.push_str("    no_accept\n"),
        None => {}
    }
    Ok(())
}

/// The VIP instance's `track_interface` and `track_script` blocks.
fn vrrp_tracks(
    out: &mut String,
    director: &str,
    node: &VrrpNode,
    vrrp: &crate::scenario::Vrrp,
) -> Result<(), KeepalivedError> {
    let i = &node.instance;
    if node.track_interfaces.iter().any(|(iface, _)| *iface == i.interface) {
        // keepalived 2.2.7 tracks its own interface anyway (down = FAULT) and ignores the entry
        // with a warning: "(VI_1) Ignoring track_interface eth0 since own interface".
        return Err(KeepalivedError::config(
            director,
            format!(
                "track_interface {}: keepalived ignores a track_interface on the instance's own interface \
                 (it is tracked already: down = FAULT); track another interface or a vrrp_script",
                i.interface
            ),
        ));
    }
    // In a sync group the weighted tracks are the group's (`sync_group`).
    let own = |weight: i32| !node.weights_to_group || weight == 0;
    let interfaces: Vec<_> = node.track_interfaces.iter().filter(|(_, w)| own(*w)).collect();
    let scripts: Vec<_> = node.track_scripts.iter().filter(|(_, w)| own(*w)).collect();
    if !interfaces.is_empty() {
        out.push_str("    track_interface {\n");
        for (iface, weight) in interfaces {
            match weight {
                0 => {
                    let _ = writeln!(out, "        {iface}");
                }
                w => {
                    let _ = writeln!(out, "        {iface} weight {w}");
                }
            }
        }
        out.push_str("    }\n");
    }
    if !scripts.is_empty() {
        out.push_str("    track_script {\n");
        for (name, weight) in scripts {
            // The script's own weight applies unless the track states another.
            let own = vrrp.script(name).map_or(0, |s| s.weight);
            if *weight == own {
                let _ = writeln!(out, "        {name}");
            } else {
                let _ = writeln!(out, "        {name} weight {weight}");
            }
        }
        out.push_str("    }\n");
    }
    Ok(())
}

/// Every service with checkers as its own `virtual_server` (the first service when none has
/// any): keepalived owns those in IPVS, lvslab's engine the rest.
fn virtual_servers(out: &mut String, director: &str, scenario: &Scenario) -> Result<(), KeepalivedError> {
    let checked: Vec<usize> = scenario.checked_services().map(|(i, _, _)| i).collect();
    for index in if checked.is_empty() { vec![0] } else { checked } {
        virtual_server(out, director, scenario, index)?;
    }
    Ok(())
}

/// Service `index`, on its VIP on `director`, as keepalived's `virtual_server`, its checkers
/// from its `[service.check]`. Each checker logs every failed attempt (`log_all_failures`):
/// that line is the only place keepalived says why a check failed, and lvslab reads it
/// (`keepalived::checker_log`).
fn virtual_server(out: &mut String, director: &str, scenario: &Scenario, index: usize) -> Result<(), KeepalivedError> {
    let service = &scenario.services[index];
    let vip = scenario
        .directors
        .iter()
        .find(|d| d.name == director)
        .map_or(service.vip, |d| scenario.service_vip(index, d));
    let lb_kind = match service.mode.forward() {
        Some(Forward::Dr) => "DR",
        Some(Forward::Nat) => "NAT",
        Some(Forward::Tun) => "TUN",
        Some(Forward::FullNat) | None => {
            return Err(KeepalivedError::config(
                director,
                format!("keepalived has no forwarding method for mode = \"{}\"", service.mode),
            ))
        }
    };
    let health = service.health.as_ref();
    match &service.fwmark {
        // Marked by lvslab's own nft rule on the director (`[service.mark]`), as the kernel
        // engine's `ipvsadm -A -f` service is.
        Some(rule) => {
            let _ = writeln!(out, "\nvirtual_server fwmark {} {{", rule.mark);
        }
        None => {
            let _ = writeln!(out, "\nvirtual_server {vip} {} {{", service.port);
        }
    }
    let delay_loop = health.map_or(DEFAULT_DELAY_LOOP, |h| h.delay_loop);
    if delay_loop != DEFAULT_DELAY_LOOP {
        let _ = writeln!(out, "    delay_loop {}", seconds(delay_loop));
    }
    // Always stated: keepalived's own defaults (wlc, NAT, UDP) surprise readers.
    let _ = writeln!(out, "    lb_algo {}", service.scheduler);
    for flag in &service.flags {
        let _ = writeln!(out, "    {flag}");
    }
    let _ = writeln!(out, "    lb_kind {lb_kind}");
    // keepalived ignores a fwmark service's protocol, with a warning.
    if service.fwmark.is_none() {
        let _ = writeln!(out, "    protocol {}", service.protocol.name());
    }
    if service.one_packet {
        out.push_str("    ops\n");
    }
    if let Some(timeout) = service.persistence {
        let _ = writeln!(out, "    persistence_timeout {}", timeout.as_secs());
        if service.persistence_prefix != 32 {
            let _ = writeln!(out, "    persistence_granularity {}", service.persistence_netmask());
        }
    }
    if let Some(h) = health {
        quorum(out, scenario, index, h);
    }
    for rs in scenario
        .real_servers
        .iter()
        .filter(|rs| service.has_real_server(&rs.name))
    {
        if health.is_some_and(|h| h.is_sorry(&rs.name)) {
            continue;
        }
        let (dest, check_at) = super::names::checked_dest(scenario, index, rs);
        // Port 0 (a fwmark service's): none written, as keepalived would clear it ("has port
        // specified - clearing").
        match dest.port() {
            0 => {
                let _ = writeln!(out, "    real_server {} {{", rs.address);
            }
            port => {
                let _ = writeln!(out, "    real_server {} {port} {{", rs.address);
            }
        }
        if rs.weight != 1 {
            let _ = writeln!(out, "        weight {}", rs.weight);
        }
        let check = health.and_then(|h| h.real_servers.iter().find(|c| c.name == rs.name));
        if let Some(check) = check {
            if check.inhibit_on_failure {
                out.push_str("        inhibit_on_failure\n");
            }
            if let Some((kind, settings)) = &check.checker {
                checker(out, director, kind, settings, delay_loop, dest, check_at)?;
            }
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
    Ok(())
}

fn quorum(out: &mut String, scenario: &Scenario, index: usize, h: &HealthCheck) {
    if h.quorum != 1 {
        let _ = writeln!(out, "    quorum {}", h.quorum);
    }
    if h.hysteresis != 0 {
        let _ = writeln!(out, "    hysteresis {}", h.hysteresis);
    }
    if h.omega {
        out.push_str("    omega\n");
    }
    if let Some(cmd) = &h.quorum_up {
        let _ = writeln!(out, "    quorum_up {}", quoted(cmd));
    }
    if let Some(cmd) = &h.quorum_down {
        let _ = writeln!(out, "    quorum_down {}", quoted(cmd));
    }
    if let Some(sorry) = &h.sorry_server {
        match super::names::sorry_dest(scenario, index, sorry).port() {
            0 => {
                let _ = writeln!(out, "    sorry_server {}", sorry.addr.ip());
            }
            port => {
                let _ = writeln!(out, "    sorry_server {} {port}", sorry.addr.ip());
            }
        }
        if h.sorry_server_inhibit {
            out.push_str("    sorry_server_inhibit\n");
        }
    }
}

fn checker(
    out: &mut String,
    director: &str,
    kind: &CheckerKind,
    s: &CheckerSettings,
    vs_delay_loop: Duration,
    dest: std::net::SocketAddr,
    check_at: std::net::SocketAddr,
) -> Result<(), KeepalivedError> {
    let _ = writeln!(out, "        {} {{", kind.keyword());
    let defaults = CheckerSettings::defaults(kind);
    let pad = "            ";
    if s.delay_loop != vs_delay_loop {
        let _ = writeln!(out, "{pad}delay_loop {}", seconds(s.delay_loop));
    }
    // MISC_CHECK has misc_timeout instead ("Unknown keyword 'connect_timeout'").
    if s.connect_timeout != DEFAULT_CONNECT_TIMEOUT && !matches!(kind, CheckerKind::Misc(_)) {
        let _ = writeln!(out, "{pad}connect_timeout {}", seconds(s.connect_timeout));
    }
    if s.retry != defaults.retry {
        let _ = writeln!(out, "{pad}retry {}", s.retry);
    }
    if s.delay_before_retry != defaults.delay_before_retry {
        let _ = writeln!(out, "{pad}delay_before_retry {}", seconds(s.delay_before_retry));
    }
    if s.warmup != s.delay_loop {
        let _ = writeln!(out, "{pad}warmup {}", seconds(s.warmup));
    }
    if s.alpha {
        let _ = writeln!(out, "{pad}alpha");
    }
    // Always: keepalived says why an attempt failed only with it (see `virtual_server`).
    let _ = writeln!(out, "{pad}log_all_failures");
    // keepalived's checker connects to the real server as written: its address and port (0
    // in a fwmark service, hence `connect_port` there).
    let to = s.connect_to.unwrap_or(check_at);
    if to.ip() != dest.ip() {
        let _ = writeln!(out, "{pad}connect_ip {}", to.ip());
    }
    if to.port() != dest.port() {
        let _ = writeln!(out, "{pad}connect_port {}", to.port());
    }
    match kind {
        CheckerKind::Tcp => {}
        CheckerKind::Http(http) => {
            if http.fast_recovery {
                let _ = writeln!(out, "{pad}fast_recovery");
            }
            for url in &http.urls {
                let _ = writeln!(out, "{pad}url {{");
                let _ = writeln!(out, "{pad}    path {}", url.path);
                if let Some(digest) = &url.digest {
                    let _ = writeln!(out, "{pad}    digest {digest}");
                }
                if !url.status_codes.is_empty() {
                    let codes: Vec<String> = url
                        .status_codes
                        .iter()
                        .map(|r| match (r.start(), r.end()) {
                            (a, b) if a == b => a.to_string(),
                            (a, b) => format!("{a}-{b}"),
                        })
                        .collect();
                    let _ = writeln!(out, "{pad}    status_code {}", codes.join(" "));
                }
                let _ = writeln!(out, "{pad}}}");
            }
        }
        CheckerKind::Misc(misc) => {
            if misc.command.contains('\'') {
                return Err(KeepalivedError::config(
                    director,
                    format!(
                        "MISC_CHECK: keepalived cannot pass a command holding a single quote to sh -c: {}",
                        misc.command
                    ),
                ));
            }
            let _ = writeln!(
                out,
                "{pad}misc_path {}",
                quoted(&format!("/bin/sh -c '{}'", misc.command))
            );
            if let Some(t) = misc.timeout {
                let _ = writeln!(out, "{pad}misc_timeout {}", seconds(t));
            }
            if misc.dynamic {
                let _ = writeln!(out, "{pad}misc_dynamic");
            }
        }
    }
    out.push_str("        }\n");
    Ok(())
}

/// A keepalived quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Seconds as keepalived reads them: `1`, `0.1`, `2.5`.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let text = format!("{:.6}", d.as_secs_f64());
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::parse;

    const RUN: &str = "/run/lvslab/runs/lvslab-1-0-abcd";
    const DIR: &str = "/run/lvslab/runs/lvslab-1-0-abcd/lvs1";

    fn conf(text: &str, director: &str, mode: Mode) -> String {
        let s = parse(text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        config(&s, director, &Path::new(RUN).join(director), mode).unwrap()
    }

    const PAIR: &str = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[vrrp_instance]
[[director]]
name = "lvs1"
state = "MASTER"
priority = 150
[[director]]
name = "lvs2"
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn a_plain_pair_writes_only_what_differs_from_keepalived() {
        insta::assert_snapshot!("plain_master", conf(PAIR, "lvs1", Mode::VrrpOnly));
        insta::assert_snapshot!("plain_backup", conf(PAIR, "lvs2", Mode::VrrpOnly));
    }

    const EVERYTHING: &str = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[[network]]
name = "lan"
subnet = "192.0.2.0/24"
[[network]]
name = "sync"
subnet = "203.0.113.0/24"
[vrrp_instance]
name = "VI_LB"
virtual_router_id = 7
advert_int = 2
auth_pass = "secret"
unicast = true
garp_master_delay = 1
garp_master_repeat = 2
garp_master_refresh = 30
garp_master_refresh_repeat = 3
down_timer_adverts = 4
accept = false
[[director]]
name = "lvs1"
interfaces = [{ network = "lan" }, { network = "sync" }]
state = "BACKUP"
priority = 120
nopreempt = true
track_interface = [{ interface = "eth1", weight = -50 }]
track_script = [{ script = "chk_maint", weight = -60 }, { script = "chk_up" }]
[[director]]
name = "lvs2"
interfaces = [{ network = "lan" }, { network = "sync" }]
preempt_delay = 2.5
vrrp_strict = true
[[vrrp_script]]
name = "chk_maint"
script = "test ! -e {dir}/maintenance"
interval = 2
timeout = 1
rise = 2
fall = 3
[[vrrp_script]]
name = "chk_up"
script = "grep -q \"up\" {dir}/state || exit 1"
weight = 10
init_fail = true
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn every_vrrp_key_the_scenario_states_is_written() {
        insta::assert_snapshot!("everything_lvs1", conf(EVERYTHING, "lvs1", Mode::VrrpOnly));
        insta::assert_snapshot!("everything_lvs2", conf(EVERYTHING, "lvs2", Mode::VrrpOnly));
    }

    #[test]
    fn version_3_with_a_fast_advert() {
        let text = PAIR.replace("[vrrp_instance]", "[vrrp_instance]\nversion = 3\nadvert_int = 0.1");
        let out = conf(&text, "lvs2", Mode::VrrpOnly);
        assert!(out.contains("    version 3\n    advert_int 0.1\n"), "{out}");
    }

    /// A checked service, VRRP pair and two real servers (also run through `keepalived -t`).
    pub(in crate::keepalived) const CHECKED: &str = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
scheduler = "wrr"
persistence = 300
persistence_netmask = "255.255.255.0"
[service.check]
kind = "http"
path = "/health"
delay_loop = 6
connect_timeout = 2
retry = 3
[vrrp_instance]
[[director]]
name = "lvs1"
priority = 150
[[director]]
name = "lvs2"
[[real_server]]
name = "rs1"
weight = 3
[[real_server]]
name = "rs2"
check = { kind = "tcp", connect_timeout = 1 }
"#;

    #[test]
    fn full_mode_adds_the_virtual_server_with_its_checkers() {
        insta::assert_snapshot!("full_http", conf(CHECKED, "lvs1", Mode::Full));
        let vrrp_only = conf(CHECKED, "lvs1", Mode::VrrpOnly);
        assert!(!vrrp_only.contains("virtual_server"), "{vrrp_only}");
    }

    /// No VRRP: a checkers-only (`-C`) config, quorum, sorry server, inhibit and MISC_CHECK.
    const CHECKERS_ONLY: &str = r#"
[service]
mode = "nat"
scheduler = "rr"
[service.check]
kind = "tcp"
delay_loop = 1
connect_timeout = 1
retry = 0
warmup = 0
quorum = 2
sorry_server = "sorry"
[[real_server]]
name = "rs1"
weight = 2
inhibit_on_failure = true
[[real_server]]
name = "rs2"
check = { kind = "misc", command = "test -e /tmp/up" }
[[real_server]]
name = "rs3"
check = { kind = "http", path = "/health", status_code = 200, delay_before_retry = 0.5 }
[[real_server]]
name = "sorry"
"#;

    #[test]
    fn checkers_only_writes_global_defs_and_the_virtual_server_alone() {
        let director = {
            let s = parse(CHECKERS_ONLY, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
            s.directors[0].name.clone()
        };
        let out = conf(CHECKERS_ONLY, &director, Mode::CheckersOnly);
        assert!(!out.contains("vrrp_instance"), "{out}");
        insta::assert_snapshot!("checkers_only", out);
    }

    #[test]
    fn every_checked_service_is_a_virtual_server_with_its_own_checkers() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/dr-health-two-services.toml"
        ))
        .unwrap();
        let s = parse(&text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let director = s.directors[0].name.clone();
        let out = conf(&text, &director, Mode::CheckersOnly);
        let blocks: Vec<&str> = out.split("\nvirtual_server ").skip(1).collect();
        assert_eq!(blocks.len(), 2, "{out}");
        assert!(blocks[0].starts_with("192.0.2.100 80 {"), "{out}");
        assert!(blocks[1].starts_with("192.0.2.100 443 {"), "{out}");
        // 80: HTTP_GET, rs2 with its own digest; 443: TCP_CHECK on every real server's port 443.
        assert_eq!(blocks[0].matches("HTTP_GET {").count(), 3, "{out}");
        assert_eq!(blocks[0].matches("digest 9e107d9d372bb6826bd81d3542a419d6").count(), 1);
        assert_eq!(blocks[1].matches("TCP_CHECK {").count(), 3, "{out}");
        assert_eq!(
            blocks[1].matches(" 443 {").count(),
            4,
            "the VS and its three real servers: {out}"
        );
    }

    /// Three checked services, each in its own mode, on VIPs of their own.
    const MIXED_MODES: &str = r#"
[[service]]
name = "web"
mode = "dr"
real_servers = ["rs1"]
[service.check]
kind = "tcp"
[[service]]
name = "api"
mode = "nat"
vip = "192.0.2.101"
real_servers = ["rs2"]
[service.check]
kind = "tcp"
[[service]]
name = "far"
mode = "tun"
vip = "192.0.2.102"
real_servers = ["rs3"]
[service.check]
kind = "tcp"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"
"#;

    #[test]
    fn each_virtual_server_has_the_lb_kind_of_its_own_service() {
        let s = parse(MIXED_MODES, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let out = conf(MIXED_MODES, &s.directors[0].name, Mode::CheckersOnly);
        let blocks: Vec<&str> = out.split("\nvirtual_server ").skip(1).collect();
        assert_eq!(blocks.len(), 3, "{out}");
        for (block, (vip, kind)) in
            blocks
                .iter()
                .zip([("192.0.2.100", "DR"), ("192.0.2.101", "NAT"), ("192.0.2.102", "TUN")])
        {
            assert!(block.starts_with(&format!("{vip} 80 {{")), "{out}");
            assert_eq!(block.matches("lb_kind ").count(), 1, "{out}");
            assert!(block.contains(&format!("    lb_kind {kind}\n")), "{out}");
        }
    }

    /// A checked fwmark service, no VRRP (also run through `keepalived -t`).
    pub(in crate::keepalived) const FWMARK_CHECKED: &str = r#"
[service]
mode = "dr"
scheduler = "rr"
persistence = 300
fwmark = 3
[service.mark]
ports = [80, 443]
[service.check]
kind = "tcp"
delay_loop = 1
connect_timeout = 1
sorry_server = "sorry"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
check = { kind = "http", path = "/health" }
[[real_server]]
name = "rs3"
inhibit_on_failure = true
[[real_server]]
name = "sorry"
"#;

    #[test]
    fn a_fwmark_service_is_a_fwmark_virtual_server_checked_on_each_servers_port() {
        let s = parse(FWMARK_CHECKED, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
        let out = conf(FWMARK_CHECKED, &s.directors[0].name, Mode::CheckersOnly);
        let vs = &out[out.find("\nvirtual_server").expect("a virtual_server")..];
        let addr = |name: &str| s.real_server(name).unwrap().address;
        assert_eq!(
            vs,
            format!(
                "
virtual_server fwmark 3 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    persistence_timeout 300
    sorry_server {}
    real_server {} {{
        TCP_CHECK {{
            connect_timeout 1
            log_all_failures
            connect_port 80
        }}
    }}
    real_server {} {{
        HTTP_GET {{
            connect_timeout 1
            log_all_failures
            connect_port 80
            url {{
                path /health
            }}
        }}
    }}
    real_server {} {{
        inhibit_on_failure
        TCP_CHECK {{
            connect_timeout 1
            log_all_failures
            connect_port 80
        }}
    }}
}}
",
                addr("sorry"),
                addr("rs1"),
                addr("rs2"),
                addr("rs3")
            )
        );
    }

    #[test]
    fn what_keepalived_cannot_take_is_an_error_naming_the_director() {
        let fractional = EVERYTHING.replace("interval = 2", "interval = 0.5");
        let s = parse(&fractional, "t.toml").unwrap();
        let err = config(&s, "lvs1", Path::new(DIR), Mode::VrrpOnly)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("lvs1: ") && err.contains("whole number of seconds for interval, not 0.5"),
            "{err}"
        );

        let quote = EVERYTHING.replace("test ! -e {dir}/maintenance", "test ! -e '{dir}/m'");
        let s = parse(&quote, "t.toml").unwrap();
        let err = config(&s, "lvs1", Path::new(DIR), Mode::VrrpOnly)
            .unwrap_err()
            .to_string();
        assert!(err.contains("single quote"), "{err}");

        // keepalived ignores a track_interface on the own interface: the scenario check refuses it first.
        let own = EVERYTHING.replace("interface = \"eth1\"", "interface = \"eth0\"");
        let report = parse(&own, "t.toml").unwrap_err().render("t.toml");
        assert!(
            report.contains("is the instance's own interface: keepalived ignores it"),
            "{report}"
        );

        let s = parse(&PAIR.replace("\"dr\"", "\"fullnat\""), "t.toml").unwrap();
        let err = config(&s, "lvs1", Path::new(DIR), Mode::Full).unwrap_err().to_string();
        assert!(err.contains("no forwarding method for mode = \"fullnat\""), "{err}");

        let s = parse(PAIR, "t.toml").unwrap();
        let err = config(&s, "lvs9", Path::new(DIR), Mode::VrrpOnly)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "lvs9: cannot write keepalived.conf: no such director in the VRRP instance"
        );
    }

    #[test]
    fn seconds_read_like_keepalived_wants_them() {
        assert_eq!(seconds(Duration::from_secs(3)), "3");
        assert_eq!(seconds(Duration::from_millis(100)), "0.1");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5");
    }

    pub(crate) const NAT_PAIR: &str = r#"
[service]
vip = "192.0.2.100"
mode = "nat"
[vrrp_instance]
virtual_router_id = 51
unicast = true
[vrrp_gateway]
virtual_router_id = 52
address = "198.51.100.254"
[vrrp_sync_group]
name = "VG_NAT"
[[director]]
name = "lvs1"
state = "MASTER"
priority = 150
[[director]]
name = "lvs2"
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn a_nat_pair_writes_the_sync_group_and_the_gateway_instance() {
        let out = conf(NAT_PAIR, "lvs1", Mode::VrrpOnly);
        let tail = &out[out.find("vrrp_sync_group").expect("a sync group")..];
        assert_eq!(
            tail,
            "vrrp_sync_group VG_NAT {
    group {
        VI_1
        VI_GW
    }
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.2
    }
    virtual_ipaddress {
        192.0.2.100/32 dev eth0
    }
}

vrrp_instance VI_GW {
    state MASTER
    interface eth1
    virtual_router_id 52
    priority 150
    unicast_src_ip 198.51.100.1
    unicast_peer {
        198.51.100.2
    }
    virtual_ipaddress {
        198.51.100.254/32 dev eth1
    }
}
"
        );
    }

    #[test]
    fn a_sync_groups_weighted_tracks_are_written_in_the_group_and_the_rest_in_the_vip_instance() {
        let text = NAT_PAIR.replace(
            "priority = 150\n",
            "priority = 150\ntrack_script = [{ script = \"maint\", weight = -60 }, { script = \"up\" }]\n",
        ) + "[[vrrp_script]]\nname = \"maint\"\nscript = \"true\"\n[[vrrp_script]]\nname = \"up\"\nscript = \"true\"\n";
        let out = conf(&text, "lvs1", Mode::VrrpOnly);
        let group = &out[out.find("vrrp_sync_group").unwrap()..out.find("vrrp_instance VI_1").unwrap()];
        assert_eq!(
            group,
            "vrrp_sync_group VG_NAT {
    group {
        VI_1
        VI_GW
    }
    track_script {
        maint weight -60
    }
}

"
        );
        let vip = &out[out.find("vrrp_instance VI_1").unwrap()..out.find("vrrp_instance VI_GW").unwrap()];
        assert!(vip.contains("    track_script {\n        up\n    }\n"), "{vip}");
        assert!(!vip.contains("maint"), "{vip}");
        // Both scripts are defined.
        assert!(
            out.contains("vrrp_script maint {") && out.contains("vrrp_script up {"),
            "{out}"
        );
        // lvs2 tracks nothing: its group has no tracks.
        let other = conf(&text, "lvs2", Mode::VrrpOnly);
        assert!(!other.contains("track_script"), "{other}");

        // sync_group_tracking_weight: the members keep their own, so the track is VI_1's.
        let text = text.replace("name = \"VG_NAT\"\n", "name = \"VG_NAT\"\ntracking_weight = true\n");
        let out = conf(&text, "lvs1", Mode::VrrpOnly);
        let group = &out[out.find("vrrp_sync_group").unwrap()..out.find("vrrp_instance VI_1").unwrap()];
        assert!(group.contains("    }\n    sync_group_tracking_weight\n}\n"), "{group}");
        assert!(!group.contains("track_script"), "{group}");
        let vip = &out[out.find("vrrp_instance VI_1").unwrap()..out.find("vrrp_instance VI_GW").unwrap()];
        assert!(vip.contains("        maint weight -60\n"), "{vip}");
    }
}
