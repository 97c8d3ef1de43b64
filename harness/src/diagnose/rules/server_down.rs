//! Causes 4 and 5: a configured server that cannot serve: missing from the IPVS table,
//! not listening where the traffic arrives, or never completing a handshake.

use crate::lvs::CauseId;
use std::collections::BTreeMap;

use super::common::*;
use crate::diagnose::evidence::{Evidence, HostEvidence, LinkEvidence, Mode, RealServerEvidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::ServerDown;

/// A request's error when the client had no free source port (`RequestError`'s text): it
/// never left the client, so it says nothing about the director or the servers.
pub const SOURCE_PORTS_EXHAUSTED: &str = "source ports exhausted";

/// SYN_RECV entries to one server at least this many, none further on: its handshakes fail.
const STUCK_HANDSHAKES: usize = 2;

const HANDSHAKES_FAIL: &str = "handshakes fail";

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let mut lines = Vec::new();
    // name -> (short reasons for the title, fixes)
    let mut down: BTreeMap<String, (Vec<&str>, Vec<String>)> = BTreeMap::new();
    let conns: Vec<_> = ev.ipvs.iter().flat_map(|i| &i.conns).collect();

    for rs in &ev.real_servers {
        let mut reasons = Vec::new();
        let mut fixes = Vec::new();
        if has_director(ev) && ev.in_table(rs) == Some(false) && !kept_out_by_keepalived(ev, &rs.name) {
            lines.push(format!(
                "{} ({}) is configured but absent from the IPVS table: removed by the health checker or never added",
                rs.name, rs.address
            ));
            reasons.push("not in the table");
            let port = service_port_on(ev, rs).unwrap_or(svc.port);
            fixes.push(format!(
                "re-add it: ipvsadm -a {} -r {}:{port} {} -w {}; with keepalived, fix the check that removed it (log: `Removing service`)",
                ipvsadm_service(svc),
                rs.address,
                ipvsadm_forward(ev.mode),
                rs.weight.unwrap_or(1).max(1)
            ));
        }
        let unreachable = unreachable_lines(ev, rs);
        let dead = !unreachable.is_empty();
        if dead {
            lines.extend(unreachable);
            reasons.push("unreachable");
            fixes.push(format!(
                "bring {} back (link up, host powered and cabled), or take it out until it is: ipvsadm -d {} -r {}; a health checker (keepalived) does this by itself",
                rs.name,
                ipvsadm_service(svc),
                rs.address
            ));
        }
        if let (Some(addr), Some(port)) = (service_address_on(ev, rs), service_port_on(ev, rs)) {
            // A dead host's sockets are beside the point: nothing reaches them.
            if !dead && rs.host.listens_on(svc.proto, addr, port) == Some(false) {
                let now: Vec<String> = rs.host.listening.iter().flatten().map(|l| l.addr.to_string()).collect();
                let now = if now.is_empty() {
                    "nothing".to_string()
                } else {
                    now.join(", ")
                };
                let why = if matches!(ev.mode, Mode::Dr | Mode::Tun) {
                    " (DR/TUN traffic arrives addressed to the VIP)"
                } else {
                    ""
                };
                lines.push(format!(
                    "{} has no listener on {addr}:{port}{why}; listening: {now}",
                    rs.name
                ));
                reasons.push("no listener");
                fixes.push(format!(
                    "start the service on {} and bind it to 0.0.0.0:{port} (or {addr}:{port})",
                    rs.name
                ));
            }
        }
        let to_it: Vec<_> = conns.iter().filter(|c| c.dest == rs.address).collect();
        // Another server's entries got past SYN_RECV: handshakes through the director work.
        let others_progress = conns
            .iter()
            .any(|c| c.dest != rs.address && c.state != "SYN_RECV" && c.state != "NONE");
        if others_progress && to_it.len() >= STUCK_HANDSHAKES && to_it.iter().all(|c| c.state == "SYN_RECV") {
            lines.push(format!(
                "IPVS: all {} entries to {} stay in SYN_RECV (the handshake never completes) while others get further",
                to_it.len(),
                rs.name
            ));
            if reasons.is_empty() {
                reasons.push(HANDSHAKES_FAIL);
                fixes.push(format!(
                    "check {}: VIP on lo, listener, firewall, route back to the client",
                    rs.name
                ));
            }
        }
        if !reasons.is_empty() {
            down.insert(rs.name.clone(), (reasons, fixes));
        }
    }
    if down.is_empty() {
        return None;
    }
    let client_limited = ev
        .records
        .iter()
        .filter(|r| r.error.as_deref() == Some(SOURCE_PORTS_EXHAUSTED))
        .count() as u32;
    let failed_on_the_way = spread.errors.saturating_sub(client_limited);
    if failed_on_the_way > 0 {
        let silent: Vec<&str> = down
            .keys()
            .filter(|n| spread.per_backend.get(*n).copied().unwrap_or(0) == 0)
            .map(|s| s.as_str())
            .collect();
        lines.push(format!(
            "{} of {} requests failed; none was answered by {}",
            failed_on_the_way,
            spread.requests,
            if silent.is_empty() {
                "-".to_string()
            } else {
                silent.join(", ")
            }
        ));
    }
    let names: Vec<String> = down
        .iter()
        .map(|(name, (reasons, _))| format!("{name} ({})", reasons.join(", ")))
        .collect();
    let bad = down.len();
    // Handshakes stuck in SYN_RECV are a symptom whose cause (VIP, rp_filter, return
    // route, decapsulation...) other rules name: rank below them when that is all we saw.
    let symptom_only = down.values().all(|(reasons, _)| reasons == &[HANDSHAKES_FAIL]);
    let explains = share_explains(bad, ev.real_servers.len());
    Some(
        Finding::new(
            ID,
            format!("Real server(s) not serving: {}", names.join("; ")),
            if symptom_only { explains / 2.0 } else { explains },
        )
        .evidence(capped(lines))
        .fix(down.into_values().flat_map(|(_, fixes)| fixes)),
    )
}

/// Whether keepalived keeps `name` out of the table on purpose: its checker took it out (the
/// `health-check` finding says why), or it is the sorry server, in only while quorum is lost.
fn kept_out_by_keepalived(ev: &Evidence, name: &str) -> bool {
    ev.health.as_ref().is_some_and(|h| {
        super::health_check::is_sorry(h, name)
            || (h.out_at_end.iter().any(|s| s == name)
                && h.changes
                    .iter()
                    .any(|c| !c.sorry && c.takes_out() && c.server.as_deref() == Some(name)))
    })
}

/// Why `rs` cannot be reached at all: its LAN link (or every link but loopback) is down,
/// or a neighbour entry for its address on another host FAILED (nobody answers ARP).
fn unreachable_lines(ev: &Evidence, rs: &RealServerEvidence) -> Vec<String> {
    let mut lines = Vec::new();
    let lan = lan_iface(rs);
    let outward: Vec<&LinkEvidence> = rs
        .host
        .links
        .iter()
        .filter(|l| l.kind.as_deref() != Some("loopback") && l.name != "lo")
        .collect();
    let down: Vec<&str> = outward.iter().filter(|l| !l.up).map(|l| l.name.as_str()).collect();
    let lan_down = rs.host.link(&lan).is_some_and(|l| !l.up);
    if lan_down || (!outward.is_empty() && down.len() == outward.len()) {
        lines.push(format!(
            "{} is unreachable: link {} is down (host dead or unplugged), so nothing it runs can answer",
            rs.name,
            down.join(", ")
        ));
    }
    for host in ev.hosts().filter(|h| h.name != rs.host.name) {
        if let Some(n) = host.neighbour(rs.address) {
            if matches!(n.state.as_str(), "FAILED" | "INCOMPLETE") {
                lines.push(format!(
                    "{}'s neighbour entry for {} ({}) on {} is {}: nobody answers ARP for it",
                    neighbour_owner(ev, host),
                    rs.address,
                    rs.name,
                    n.iface,
                    n.state
                ));
            }
        }
    }
    lines
}

/// `director`, `the director d1` or a plain host name.
fn neighbour_owner(ev: &Evidence, host: &HostEvidence) -> String {
    if ev.director.as_ref().is_some_and(|d| d.name == host.name) {
        the_director(&host.name)
    } else {
        host.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{ConnEvidence, Listener, NeighbourEvidence, Proto};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_for_removed_and_rip_bound_servers() {
        let mut ev = sample::healthy_dr();
        ev.ipvs.as_mut().unwrap().dests.remove(2);
        ev.real_servers[1].host.listening = Some(vec![Listener {
            proto: Proto::Tcp,
            addr: "192.0.2.12:80".parse().unwrap(),
        }]);
        for (i, r) in ev.records.iter_mut().enumerate() {
            if i % 3 != 0 {
                r.backend = None;
                r.error = Some("connection refused".into());
            }
        }
        let finding = check(&ev, &summarise(&ev)).expect("server-down must fire");
        assert_eq!(
            finding.title,
            "Real server(s) not serving: rs2 (no listener); rs3 (not in the table)"
        );
        assert_eq!(finding.explains, 0.85);
        let text = finding.evidence.join("\n");
        assert!(text.contains("rs2 has no listener on 192.0.2.100:80 (DR/TUN traffic arrives addressed to the VIP); listening: 192.0.2.12:80"), "{text}");
        assert!(
            text.contains("rs3 (192.0.2.13) is configured but absent from the IPVS table"),
            "{text}"
        );
        assert!(
            text.contains("20 of 30 requests failed; none was answered by rs2, rs3"),
            "{text}"
        );
        assert!(
            finding
                .fix
                .iter()
                .any(|f| f.starts_with("re-add it: ipvsadm -a -t 192.0.2.100:80 -r 192.0.2.13:80 -g -w 1")),
            "{:?}",
            finding.fix
        );
    }

    /// A connection entry from the sample client to real server `dest`.
    fn conn(dest: u8, port: u16, state: &str) -> ConnEvidence {
        ConnEvidence {
            proto: Proto::Tcp,
            client: sample::CLIENT,
            client_port: port,
            dest: sample::rip(dest),
            dest_port: 80,
            state: state.into(),
            expires_secs: None,
        }
    }

    #[test]
    fn fires_for_handshakes_stuck_in_syn_recv() {
        let mut ev = sample::healthy_dr();
        ev.ipvs.as_mut().unwrap().conns = vec![
            conn(1, 1, "ESTABLISHED"),
            conn(2, 2, "SYN_RECV"),
            conn(2, 3, "SYN_RECV"),
        ];
        let finding = check(&ev, &summarise(&ev)).expect("SYN_RECV");
        assert!(
            finding.evidence[0].starts_with("IPVS: all 2 entries to rs2 stay in SYN_RECV"),
            "{:?}",
            finding.evidence
        );
    }

    #[test]
    fn a_server_with_its_link_down_is_unreachable_not_just_without_listener() {
        let mut ev = sample::healthy_dr();
        let rs3 = &mut ev.real_servers[2].host;
        rs3.links[1].up = false;
        rs3.listening = Some(vec![]);
        for (i, r) in ev.records.iter_mut().enumerate() {
            if i % 3 == 2 {
                r.backend = None;
                r.error = Some("timeout".into());
            }
        }
        let finding = check(&ev, &summarise(&ev)).expect("server-down must fire");
        assert_eq!(finding.title, "Real server(s) not serving: rs3 (unreachable)");
        assert_eq!(
            finding.evidence[0],
            "rs3 is unreachable: link eth0 is down (host dead or unplugged), so nothing it runs can answer"
        );
        assert!(
            !finding.evidence.iter().any(|l| l.contains("no listener")),
            "{:?}",
            finding.evidence
        );
        assert!(finding.fix[0].starts_with("bring rs3 back"), "{:?}", finding.fix);
        assert!(finding.fix[0].contains("ipvsadm -d -t 192.0.2.100:80 -r 192.0.2.13"));
    }

    #[test]
    fn a_failed_neighbour_entry_says_nobody_answers_arp() {
        let mut ev = sample::healthy_dr();
        let director = ev.director.as_mut().unwrap();
        director.name = "director".into();
        director.neighbours.push(NeighbourEvidence {
            ip: sample::rip(2),
            mac: None,
            state: "FAILED".into(),
            iface: "eth0".into(),
        });
        let finding = check(&ev, &summarise(&ev)).expect("server-down must fire");
        assert_eq!(finding.title, "Real server(s) not serving: rs2 (unreachable)");
        assert_eq!(
            finding.evidence,
            vec!["director's neighbour entry for 192.0.2.12 (rs2) on eth0 is FAILED: nobody answers ARP for it"]
        );
        // A reachable neighbour says nothing.
        ev.director.as_mut().unwrap().neighbours[0].state = "STALE".into();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn syn_recv_counts_against_entries_that_got_further_in_dr() {
        // DR: the director sees the client's FIN, so working servers' entries sit in FIN_WAIT.
        let mut ev = sample::healthy_dr();
        ev.ipvs.as_mut().unwrap().conns = vec![conn(1, 1, "FIN_WAIT"), conn(3, 2, "SYN_RECV"), conn(3, 3, "SYN_RECV")];
        let finding = check(&ev, &summarise(&ev)).expect("SYN_RECV");
        assert_eq!(finding.title, "Real server(s) not serving: rs3 (handshakes fail)");
        // Nobody got further: no contrast, no finding.
        ev.ipvs.as_mut().unwrap().conns.remove(0);
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    /// The last third of the sample's requests failed with no free source port, after the
    /// director had scheduled the others over every server.
    fn out_of_source_ports() -> Evidence {
        let mut ev = sample::healthy_dr();
        let answered = ev.records.len() * 2 / 3;
        for r in &mut ev.records[answered..] {
            r.backend = None;
            r.error = Some(SOURCE_PORTS_EXHAUSTED.into());
        }
        ev.ipvs.as_mut().unwrap().conns = (1..=3).map(|d| conn(d, u16::from(d), "FIN_WAIT")).collect();
        ev
    }

    #[test]
    fn a_client_out_of_source_ports_is_not_a_server_down() {
        let ev = out_of_source_ports();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let d = crate::diagnose::diagnose(&ev);
        // The one cause is the client's own: it ran out of ports.
        assert_eq!(d.ids(), vec!["source-ports"]);
        // With a server really gone, only the failures on the way to the servers count against it.
        let mut ev = out_of_source_ports();
        ev.ipvs.as_mut().unwrap().dests.remove(2);
        for r in ev.records.iter_mut().filter(|r| r.backend.as_deref() == Some("rs3")) {
            r.backend = None;
            r.error = Some("timeout".into());
        }
        let finding = check(&ev, &summarise(&ev)).expect("rs3 is not in the table");
        let timeouts = ev
            .records
            .iter()
            .filter(|r| r.error.as_deref() == Some("timeout"))
            .count();
        let line = format!("{timeouts} of 30 requests failed; none was answered by rs3");
        assert!(finding.evidence.contains(&line), "{:?}", finding.evidence);
    }

    #[test]
    fn a_server_keepalived_keeps_out_is_not_called_missing() {
        // The checker took rs2 out and it stayed out: the health-check finding says why.
        let mut ev = sample::checker_takes_out();
        ev.ipvs.as_mut().unwrap().dests.retain(|d| d.addr != sample::rip(2));
        ev.health.as_mut().unwrap().out_at_end = vec!["rs2".into()];
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // Without the checker's word, it is missing.
        ev.health = None;
        let finding = check(&ev, &summarise(&ev)).expect("rs2 is not in the table");
        assert_eq!(finding.title, "Real server(s) not serving: rs2 (not in the table)");
        // The sorry server is in the table only while quorum is lost.
        let mut ev = sample::healthy_dr();
        ev.ipvs.as_mut().unwrap().dests.retain(|d| d.addr != sample::rip(3));
        ev.health = Some(crate::diagnose::evidence::HealthEvidence {
            sorry_server: Some(crate::diagnose::evidence::SorryServerEvidence {
                addr: std::net::SocketAddrV4::new(sample::rip(3), 80),
                name: Some("rs3".into()),
            }),
            ..Default::default()
        });
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn silent_when_all_serve() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
