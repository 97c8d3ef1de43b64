//! Small helpers the rules share: naming hosts and services, grouping records.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use crate::diagnose::evidence::{Evidence, HostEvidence, Mac, Mode, RealServerEvidence, ServiceEvidence};

/// How many items a list of evidence lines shows before "... and N more".
pub const MAX_LINES: usize = 6;

/// `TCP 192.0.2.100:80`.
pub fn service_label(svc: &ServiceEvidence) -> String {
    format!("{} {}:{}", svc.proto.name(), svc.vip, svc.port)
}

/// ipvsadm's service argument: `-t 192.0.2.100:80`.
pub fn ipvsadm_service(svc: &ServiceEvidence) -> String {
    format!("{} {}:{}", svc.proto.switch(), svc.vip, svc.port)
}

/// ipvsadm's forwarding flag for the mode.
pub fn ipvsadm_forward(mode: Mode) -> &'static str {
    match mode {
        Mode::Nat | Mode::FullNat => "-m",
        Mode::Tun => "-i",
        Mode::Dr | Mode::Direct => "-g",
    }
}

/// The interface a real server's RIP sits on (its LAN side), `eth0` if unknown.
pub fn lan_iface(rs: &RealServerEvidence) -> String {
    rs.host
        .address_of(rs.address)
        .map(|a| a.iface.clone())
        .unwrap_or_else(|| "eth0".to_string())
}

/// `rs2's eth0`, `the director d1's eth0`, `director's eth0` or `no host gathered here`.
pub fn describe_mac(ev: &Evidence, mac: Mac) -> String {
    match ev.owner_of_mac(mac) {
        Some((host, iface)) if ev.directors().any(|d| d.name == host) => {
            format!("{}'s {iface}", the_director(&host))
        }
        Some((host, iface)) => format!("{host}'s {iface}"),
        None => "no host gathered here".to_string(),
    }
}

/// A host named with its role, without saying the role twice: `real server rs1`, but
/// `realserver1` (not `real server realserver1`); `client c1`, but `client`.
pub fn role_and_name(role: &str, name: &str) -> String {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let role_squashed = squash(role);
    if !role_squashed.is_empty() && squash(name).contains(&role_squashed) {
        name.to_string()
    } else {
        format!("{role} {name}")
    }
}

/// `the director d1`, but `director` or `lvs-director` when the name already says it.
pub fn the_director(name: &str) -> String {
    match role_and_name("director", name) {
        named if named == name => named,
        named => format!("the {named}"),
    }
}

/// The director's MACs, for messages.
pub fn director_macs(ev: &Evidence) -> String {
    let macs: Vec<String> = ev
        .directors()
        .flat_map(|d| d.links.iter().filter_map(|l| l.mac))
        .map(|m| m.to_string())
        .collect();
    if macs.is_empty() {
        "unknown".to_string()
    } else {
        macs.join(", ")
    }
}

/// The real server that owns `mac`.
pub fn real_server_with_mac(ev: &Evidence, mac: Mac) -> Option<&RealServerEvidence> {
    ev.real_servers.iter().find(|r| r.host.link_with_mac(mac).is_some())
}

/// `max(all 0, eth0 1) = 1` for a conf sysctl, or `unknown`.
pub fn conf_explained(host: &HostEvidence, name: &str, iface: &str) -> String {
    let show = |v: Option<i64>| v.map_or("?".to_string(), |v| v.to_string());
    let all = host.sysctl(&format!("net.ipv4.conf.all.{name}"));
    let dev = host.sysctl(&format!("net.ipv4.conf.{iface}.{name}"));
    format!(
        "max(all {}, {iface} {}) = {}",
        show(all),
        show(dev),
        show(host.effective_conf(name, iface))
    )
}

/// Answered requests per backend, per source address.
pub fn backends_by_source(ev: &Evidence) -> BTreeMap<IpAddr, BTreeMap<String, u32>> {
    let mut out: BTreeMap<IpAddr, BTreeMap<String, u32>> = BTreeMap::new();
    for record in ev.records.iter().filter(|r| r.error.is_none()) {
        if let Some(backend) = &record.backend {
            *out.entry(record.source.ip())
                .or_default()
                .entry(backend.clone())
                .or_default() += 1;
        }
    }
    out
}

/// Distinct source addresses the main run used.
pub fn source_addresses(ev: &Evidence) -> BTreeSet<IpAddr> {
    ev.records.iter().map(|r| r.source.ip()).collect()
}

/// `rs1` or `rs1 20, rs2 3`.
pub fn backend_list(counts: &BTreeMap<String, u32>) -> String {
    counts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lines for "source X: N requests, all answered by rsK" where a source stuck to one server.
pub fn pinned_source_lines(ev: &Evidence) -> Vec<String> {
    backends_by_source(ev)
        .iter()
        .filter(|(_, counts)| counts.len() == 1 && counts.values().sum::<u32>() >= 2)
        .map(|(source, counts)| {
            let (backend, n) = counts.iter().next().expect("one backend");
            format!("source {source}: {n} requests, all answered by {backend}")
        })
        .collect()
}

/// Keeps at most [`MAX_LINES`] lines, summarising the rest.
pub fn capped(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_LINES {
        let more = lines.len() - (MAX_LINES - 1);
        lines.truncate(MAX_LINES - 1);
        lines.push(format!("... and {more} more like these"));
    }
    lines
}

/// How much a cause that hits `bad` of `total` servers explains of a one-server skew:
/// all but one server hit explains nearly all of it.
pub fn share_explains(bad: usize, total: usize) -> f64 {
    if bad == 0 {
        0.0
    } else if total <= 1 || bad + 1 >= total {
        0.85
    } else {
        0.3 + 0.5 * bad as f64 / total as f64
    }
}

/// The address real-server traffic is sent to in this mode: VIP for DR/TUN, RIP otherwise.
pub fn service_address_on(ev: &Evidence, rs: &RealServerEvidence) -> Option<Ipv4Addr> {
    match ev.mode {
        Mode::Dr | Mode::Tun => ev.vip(),
        Mode::Nat | Mode::FullNat | Mode::Direct => Some(rs.address),
    }
}

/// The port a real server is expected to serve on.
pub fn service_port_on(ev: &Evidence, rs: &RealServerEvidence) -> Option<u16> {
    match ev.mode {
        // ipvsadm forces the service port for DR/TUN.
        Mode::Dr | Mode::Tun => ev.service.as_ref().map(|s| s.port),
        _ => rs.port.or(ev.service.as_ref().map(|s| s.port)),
    }
}

/// `at 1500 ms` into the traffic, or `800 ms before the traffic` (the checkers start first).
pub fn moment(at_ms: f64) -> String {
    let at = at_ms.round();
    if at < 0.0 {
        format!("{:.0} ms before the traffic", -at)
    } else {
        // `abs`: a moment rounded up from just before the traffic is -0.
        format!("at {:.0} ms", at.abs())
    }
}

/// The text with its first letter in upper case, to start a line with a moment.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Whether the director forwards (no director in Direct mode).
pub fn has_director(ev: &Evidence) -> bool {
    ev.mode != Mode::Direct
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;

    #[test]
    fn hosts_are_named_with_their_role_once() {
        assert_eq!(the_director("d1"), "the director d1");
        assert_eq!(the_director("director"), "director");
        assert_eq!(the_director("LVS-Director2"), "LVS-Director2");
        assert_eq!(role_and_name("real server", "rs2"), "real server rs2");
        assert_eq!(role_and_name("real server", "real-server-2"), "real-server-2");
        assert_eq!(role_and_name("client", "client"), "client");
        assert_eq!(role_and_name("client", "c1"), "client c1");
    }

    #[test]
    fn a_director_named_director_owns_its_mac_once() {
        let mut ev = sample::healthy_dr();
        assert_eq!(describe_mac(&ev, sample::mac(2)), "the director d1's eth0");
        ev.director.as_mut().unwrap().name = "director".into();
        assert_eq!(describe_mac(&ev, sample::mac(2)), "director's eth0");
        assert_eq!(describe_mac(&ev, sample::mac(0x12)), "rs2's eth0");
        assert_eq!(describe_mac(&ev, sample::mac(0x77)), "no host gathered here");
    }
}
