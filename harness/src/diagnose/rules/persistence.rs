//! Cause 1: a persistent service pins every connection from one client address (masked
//! by the netmask) to the server its first connection went to.

use super::common::*;
use crate::diagnose::evidence::{Evidence, ProbeKind};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: &str = "persistence";

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let secs = svc.persistence_secs?;
    let prefix = svc.persistence_prefix.unwrap_or(32);
    let mut lines = vec![format!(
        "service {} -s {} persistent {secs} (netmask /{prefix}): every connection from one client address goes where its first went, until {secs} s after the last",
        service_label(svc),
        svc.scheduler
    )];
    let mut templates = Vec::new();
    for t in ev.ipvs.iter().flat_map(|i| &i.templates) {
        let dest = ev
            .real_server_at(t.dest)
            .map_or(t.dest.to_string(), |r| format!("{} ({})", r.name, t.dest));
        let expires = t
            .expires_secs
            .map_or(String::new(), |s| format!(", expires in {s} s"));
        templates.push(format!(
            "template {} -> {dest} (client port 0){expires}",
            t.client
        ));
    }
    lines.extend(capped(templates));
    let pinned = pinned_source_lines(ev);
    let pinned_count = pinned.len();
    lines.extend(capped(pinned));
    for probe in ev
        .probes
        .iter()
        .filter(|p| p.kind == ProbeKind::ManySources && p.distinct_backends() > 1)
    {
        lines.push(format!(
            "probe many-sources: {} source addresses reached {} servers ({})",
            probe.sources,
            probe.distinct_backends(),
            backend_list(&probe.per_backend)
        ));
    }

    let sources = source_addresses(ev).len();
    let explains = if pinned_count > 0 && sources < spread.eligible {
        0.9
    } else if pinned_count > 0 {
        0.6
    } else {
        0.4
    };
    let keepalived = format!("keepalived: delete `persistence_timeout` from virtual_server {} {} and restart keepalived (a reload may not apply it)", svc.vip, svc.port);
    Some(
        Finding::new(ID, format!("Persistence ({secs} s) pins each client address to one real server"), explains)
            .evidence(lines)
            .fix([
                format!("ipvsadm -E {} -s {} (without -p) unless the application needs affinity", ipvsadm_service(svc), svc.scheduler),
                keepalived,
                "if affinity is needed: keep a short timeout, and test from many client addresses".to_string(),
                "sysctl -w net.ipv4.vs.expire_quiescent_template=1 so templates to a weight-0 server stop pinning".to_string(),
            ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn run(ev: &Evidence) -> Option<Finding> {
        check(ev, &summarise(ev))
    }

    #[test]
    fn fires_with_service_template_and_pinned_source() {
        let finding = run(&sample::persistence()).expect("persistence must fire");
        assert_eq!(finding.explains, 0.9);
        let text = finding.evidence.join("\n");
        assert!(
            text.contains("service TCP 192.0.2.100:80 -s rr persistent 360 (netmask /32)"),
            "{text}"
        );
        assert!(
            text.contains(
                "template 192.0.2.10 -> rs1 (192.0.2.11) (client port 0), expires in 355 s"
            ),
            "{text}"
        );
        assert!(
            text.contains("source 192.0.2.10: 30 requests, all answered by rs1"),
            "{text}"
        );
        assert!(
            text.contains(
                "probe many-sources: 4 source addresses reached 3 servers (rs1 6, rs2 3, rs3 3)"
            ),
            "{text}"
        );
        assert_eq!(
            finding.fix[0],
            "ipvsadm -E -t 192.0.2.100:80 -s rr (without -p) unless the application needs affinity"
        );
    }

    #[test]
    fn silent_without_persistence() {
        let mut ev = sample::persistence();
        ev.service.as_mut().unwrap().persistence_secs = None;
        assert_eq!(run(&ev), None);
        assert_eq!(run(&sample::healthy_dr()), None);
    }
}
