//! Causes 4 and 5: a configured server that cannot serve: missing from the IPVS table,
//! not listening where the traffic arrives, or never completing a handshake.

use std::collections::BTreeMap;

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: &str = "server-down";

/// SYN_RECV entries to one server at least this many, none further on: its handshakes fail.
const STUCK_HANDSHAKES: usize = 2;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let mut lines = Vec::new();
    let mut down: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let conns: Vec<_> = ev.ipvs.iter().flat_map(|i| &i.conns).collect();
    let anyone_established = conns.iter().any(|c| c.state == "ESTABLISHED");

    for rs in &ev.real_servers {
        let mut fixes = Vec::new();
        if has_director(ev) && ev.in_table(rs) == Some(false) {
            lines.push(format!(
                "{} ({}) is configured but absent from the IPVS table: removed by the health checker or never added",
                rs.name, rs.address
            ));
            let port = service_port_on(ev, rs).unwrap_or(svc.port);
            fixes.push(format!(
                "re-add it: ipvsadm -a {} -r {}:{port} {} -w {}; with keepalived, fix the check that removed it (log: `Removing service`)",
                ipvsadm_service(svc),
                rs.address,
                ipvsadm_forward(ev.mode),
                rs.weight.unwrap_or(1).max(1)
            ));
        }
        if let (Some(addr), Some(port)) = (service_address_on(ev, rs), service_port_on(ev, rs)) {
            if rs.host.listens_on(svc.proto, addr, port) == Some(false) {
                let now: Vec<String> = rs
                    .host
                    .listening
                    .iter()
                    .flatten()
                    .map(|l| l.addr.to_string())
                    .collect();
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
                fixes.push(format!(
                    "start the service on {} and bind it to 0.0.0.0:{port} (or {addr}:{port})",
                    rs.name
                ));
            }
        }
        let to_it: Vec<_> = conns.iter().filter(|c| c.dest == rs.address).collect();
        if anyone_established
            && to_it.len() >= STUCK_HANDSHAKES
            && to_it.iter().all(|c| c.state == "SYN_RECV")
        {
            lines.push(format!(
                "IPVS: all {} entries to {} stay in SYN_RECV (the handshake never completes) while others reach ESTABLISHED",
                to_it.len(),
                rs.name
            ));
            if fixes.is_empty() {
                fixes.push(format!(
                    "check {}: VIP on lo, listener, firewall, route back to the client",
                    rs.name
                ));
            }
        }
        if !fixes.is_empty() {
            down.insert(rs.name.clone(), fixes);
        }
    }
    if down.is_empty() {
        return None;
    }
    if spread.errors > 0 {
        let silent: Vec<&str> = down
            .keys()
            .filter(|n| spread.per_backend.get(*n).copied().unwrap_or(0) == 0)
            .map(|s| s.as_str())
            .collect();
        lines.push(format!(
            "{} of {} requests failed; none was answered by {}",
            spread.errors,
            spread.requests,
            if silent.is_empty() {
                "-".to_string()
            } else {
                silent.join(", ")
            }
        ));
    }
    let names: Vec<&str> = down.keys().map(|s| s.as_str()).collect();
    Some(
        Finding::new(
            ID,
            format!("Real server(s) not serving: {}", names.join(", ")),
            share_explains(down.len(), ev.real_servers.len()),
        )
        .evidence(capped(lines))
        .fix(down.into_values().flatten()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{ConnEvidence, Listener, Proto};
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
        assert_eq!(finding.title, "Real server(s) not serving: rs2, rs3");
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
            finding.fix.iter().any(|f| f
                .starts_with("re-add it: ipvsadm -a -t 192.0.2.100:80 -r 192.0.2.13:80 -g -w 1")),
            "{:?}",
            finding.fix
        );
    }

    #[test]
    fn fires_for_handshakes_stuck_in_syn_recv() {
        let mut ev = sample::healthy_dr();
        let conn = |dest: u8, port: u16, state: &str| ConnEvidence {
            proto: Proto::Tcp,
            client: sample::CLIENT,
            client_port: port,
            dest: sample::rip(dest),
            dest_port: 80,
            state: state.into(),
            expires_secs: None,
        };
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
    fn silent_when_all_serve() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
