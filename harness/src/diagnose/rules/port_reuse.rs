//! Cause 9: a client that reuses its source port hits the old IPVS entry for that
//! 5-tuple and follows it to the same server (conn_reuse_mode decides when not).

use crate::lvs::CauseId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode, Proto};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::PortReuse;

/// How one client source ip:port was used across the run.
#[derive(Default)]
struct PortUse<'a> {
    connections: BTreeSet<u32>,
    backends: BTreeSet<&'a str>,
    requests: u32,
}

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    if svc.proto != Proto::Tcp || !has_director(ev) {
        return None; // UDP flows are udp-flow's business
    }
    // Keyed by destination too: one source port towards several addresses (a cache cluster's
    // destinations) is several 5-tuples, each with its own entry.
    let mut by_port: BTreeMap<(&str, SocketAddr, Option<SocketAddr>), PortUse> = BTreeMap::new();
    for r in ev.records.iter().filter(|r| r.error.is_none()) {
        let e = by_port.entry((r.client.as_str(), r.source, r.target)).or_default();
        e.connections.insert(r.connection);
        e.backends.extend(r.backend.as_deref());
        e.requests += 1;
    }
    let mut lines = Vec::new();
    let mut sticky_requests = 0;
    for ((client, source, _), used) in &by_port {
        // Two connections from one port meeting the same server is what chance gives when
        // the kernel picks ports at random over a long run (one in N servers); three or more
        // all on one server is the old entry being followed.
        if used.connections.len() > 2 && used.backends.len() == 1 {
            sticky_requests += used.requests;
            let backend = used.backends.iter().next().expect("one backend");
            lines.push(format!(
                "{client} reused source port {source} for {} connections, all answered by {backend}",
                used.connections.len()
            ));
        }
    }
    let reused: BTreeSet<SocketAddr> = by_port
        .iter()
        .filter(|(_, used)| used.connections.len() > 1)
        .map(|((_, s, _), _)| *s)
        .collect();
    let mut entries = Vec::new();
    for c in ev.ipvs.iter().flat_map(|i| &i.conns) {
        let source = SocketAddr::new(c.client.into(), c.client_port);
        if !reused.contains(&source) {
            continue;
        }
        let dest = ev.real_server_at(c.dest).map_or(c.dest.to_string(), |r| r.name.clone());
        // A closing entry is what a new SYN finds; an open one (the last connection, read
        // before its close reached the director) is still the one entry they all shared.
        let closing = matches!(c.state.as_str(), "FIN_WAIT" | "TIME_WAIT" | "CLOSE" | "CLOSE_WAIT");
        entries.push(if closing {
            format!(
                "IPVS entry {source} -> {dest} in {}: a new SYN from that port matches it",
                c.state
            )
        } else {
            format!(
                "IPVS entry {source} -> {dest} ({}): the connections from that port share this one entry",
                c.state
            )
        });
    }
    lines.extend(capped(entries));
    // Each scheduling decision counts one in the dests' Conns; reused entries add none.
    let connections: BTreeSet<(&str, u32)> = ev
        .records
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| (r.client.as_str(), r.connection))
        .collect();
    if let Some(ipvs) = ev.ipvs.as_ref().filter(|i| !i.dests.is_empty()) {
        let scheduled: u64 = ipvs.dests.iter().map(|d| d.conns_total).sum();
        if sticky_requests > 0 && scheduled < connections.len() as u64 {
            lines.push(format!(
                "IPVS scheduled {scheduled} connection(s) (Conns) for {} client connections: the others followed an existing entry",
                connections.len()
            ));
        }
    }
    let lines = capped(lines);

    let reuse_mode = ev.ipvs_setting("conn_reuse_mode");
    let dr_like = matches!(ev.mode, Mode::Dr | Mode::Tun);
    let mut mode_lines = Vec::new();
    match reuse_mode {
        Some(0) => mode_lines.push("net.ipv4.vs.conn_reuse_mode = 0: a SYN matching an old entry always follows it to the same server".to_string()),
        Some(m) if dr_like && m & 2 == 0 && sticky_requests > 0 => mode_lines.push(format!(
            "net.ipv4.vs.conn_reuse_mode = {m}: reschedules only TIME_WAIT/CLOSE entries, which a DR/TUN director never reaches (it sees FIN_WAIT last)"
        )),
        _ => {}
    }

    let total = ev.records.len().max(1) as f64;
    // As much of the skew as the requests that followed an old entry: one such request in a
    // long run is a latent risk, not the explanation.
    let explains = if sticky_requests > 0 {
        0.85 * (f64::from(sticky_requests) / total)
    } else if reuse_mode == Some(0) {
        0.2
    } else {
        return None;
    };
    let wanted = if dr_like { 2 } else { 1 };
    Some(
        Finding::new(ID, "Reused client source ports follow their old IPVS entry to the same server", explains)
            .evidence(lines)
            .evidence(mode_lines)
            .fix([
                "clients: let the kernel choose source ports (no bind to a fixed port), widen net.ipv4.ip_local_port_range".to_string(),
                format!("director: sysctl -w net.ipv4.vs.conn_reuse_mode={wanted} (2 for DR/TUN, 1 for NAT); 0 only if pinning is wanted"),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{ConnEvidence, RecordEvidence};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn fixed_port() -> Evidence {
        let mut ev = sample::healthy_dr();
        let source: SocketAddr = "192.0.2.10:5000".parse().unwrap();
        ev.records = (0..30)
            .map(|n| RecordEvidence {
                source,
                ..sample::record(n, "rs1")
            })
            .collect();
        ev.ipvs.as_mut().unwrap().conns = vec![ConnEvidence {
            proto: Proto::Tcp,
            client: sample::CLIENT,
            client_port: 5000,
            dest: sample::rip(1),
            dest_port: 80,
            state: "FIN_WAIT".into(),
            expires_secs: Some(110),
        }];
        ev
    }

    #[test]
    fn fires_when_a_fixed_source_port_sticks() {
        let ev = fixed_port();
        let finding = check(&ev, &summarise(&ev)).expect("port-reuse must fire");
        assert_eq!(
            finding.evidence[0],
            "c1 reused source port 192.0.2.10:5000 for 30 connections, all answered by rs1"
        );
        assert_eq!(
            finding.evidence[1],
            "IPVS entry 192.0.2.10:5000 -> rs1 in FIN_WAIT: a new SYN from that port matches it"
        );
        assert!(finding.evidence[2].starts_with("net.ipv4.vs.conn_reuse_mode = 1: reschedules only TIME_WAIT/CLOSE"));
        assert!(finding.fix[1].contains("conn_reuse_mode=2"));
        assert!((finding.explains - 0.85).abs() < 1e-9);
    }

    #[test]
    fn one_reused_port_in_a_long_run_explains_as_little_as_it_affects() {
        let mut ev = fixed_port();
        // Three requests from the reused port, among 600 from ports of their own.
        for (n, r) in ev.records.iter_mut().enumerate().skip(3) {
            r.source.set_port(40000 + n as u16);
        }
        let stuck = ev.records[0].clone();
        ev.records.extend((30..600).map(|n| RecordEvidence {
            source: SocketAddr::new(stuck.source.ip(), 40000 + n as u16),
            ..sample::record(n, ["rs1", "rs2", "rs3"][n as usize % 3])
        }));
        let finding = check(&ev, &summarise(&ev)).expect("still named");
        assert!(
            finding.explains < crate::diagnose::finding::LATENT,
            "{}",
            finding.explains
        );
    }

    #[test]
    fn two_connections_meeting_one_server_by_chance_are_no_evidence() {
        let mut ev = fixed_port();
        // A random port picked twice in a long run, both times scheduled to rs1: one in three.
        for (n, r) in ev.records.iter_mut().enumerate().skip(2) {
            r.source.set_port(40000 + n as u16);
        }
        assert!(check(&ev, &summarise(&ev)).is_none());
    }

    #[test]
    fn one_port_towards_several_destinations_is_no_reuse() {
        let mut ev = fixed_port();
        // Every request from one port, each to a destination of its own (lblc's cache cluster).
        for (n, r) in ev.records.iter_mut().enumerate() {
            r.target = Some(SocketAddr::from(([203, 0, 113, n as u8], 80)));
        }
        assert!(check(&ev, &summarise(&ev)).is_none());
    }

    #[test]
    fn conn_reuse_mode_zero_one_entry_and_one_scheduling_decision() {
        // As the lab records it: 30 connections from one port, the table read before the
        // last RST reached the director, Conns counted once.
        let mut ev = fixed_port();
        let ipvs = ev.ipvs.as_mut().unwrap();
        ipvs.conns[0].state = "ESTABLISHED".into();
        ipvs.dests = vec![sample::dest(1, 0, 1), sample::dest(2, 0, 0), sample::dest(3, 0, 0)];
        ipvs.settings.insert("conn_reuse_mode".into(), "0".into());
        let finding = check(&ev, &summarise(&ev)).expect("port-reuse must fire");
        assert_eq!(
            finding.evidence,
            vec![
                "c1 reused source port 192.0.2.10:5000 for 30 connections, all answered by rs1",
                "IPVS entry 192.0.2.10:5000 -> rs1 (ESTABLISHED): the connections from that port share this one entry",
                "IPVS scheduled 1 connection(s) (Conns) for 30 client connections: the others followed an existing entry",
                "net.ipv4.vs.conn_reuse_mode = 0: a SYN matching an old entry always follows it to the same server",
            ]
        );
        assert!((finding.explains - 0.85).abs() < 1e-9);
    }

    #[test]
    fn latent_when_conn_reuse_mode_is_zero() {
        let mut ev = sample::healthy_dr();
        ev.ipvs
            .as_mut()
            .unwrap()
            .settings
            .insert("conn_reuse_mode".into(), "0".into());
        let finding = check(&ev, &summarise(&ev)).expect("latent port-reuse");
        assert_eq!(finding.explains, 0.2);
    }

    #[test]
    fn silent_with_fresh_ports() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
