//! Cause 1: a persistent service pins every connection from one client address (masked
//! by the netmask) to the server its first connection went to.

use crate::lvs::CauseId;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;

use super::common::*;
use crate::diagnose::evidence::{Evidence, ProbeKind};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub const ID: CauseId = CauseId::Persistence;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let secs = svc.persistence_secs?;
    let prefix = svc.persistence_prefix.unwrap_or(32);
    // What one template stands for: an address, or every address in a masked network.
    let unit = if prefix < 32 {
        format!("client /{prefix} network")
    } else {
        "client address".to_string()
    };
    let mut lines = vec![format!(
        "service {} -s {} persistent {secs} (netmask /{prefix}): every connection from one {unit} goes where its first went, until {secs} s after the last",
        service_label(svc),
        svc.scheduler
    )];
    let groups = template_groups(ev, prefix);
    let mut templates = Vec::new();
    for t in ev.ipvs.iter().flat_map(|i| &i.templates) {
        let dest = ev
            .real_server_at(t.dest)
            .map_or(t.dest.to_string(), |r| format!("{} ({})", r.name, t.dest));
        let expires = t.expires_secs.map_or(String::new(), |s| format!(", expires in {s} s"));
        let covers = match groups.iter().find(|g| g.net.addr() == t.client) {
            Some(g) if prefix < 32 => format!(
                ", keyed by {} (covers {} of the run's client addresses)",
                g.net,
                g.sources.len()
            ),
            _ => String::new(),
        };
        templates.push(format!(
            "template {} -> {dest} (client port 0){expires}{covers}",
            t.client
        ));
    }
    lines.extend(capped(templates));
    let pinned = if prefix < 32 {
        shared_template_lines(&groups)
    } else {
        pinned_source_lines(ev)
    };
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

    // One template per masked client address: that is how many choices the scheduler made.
    let template_keys = if prefix < 32 {
        groups.len()
    } else {
        source_addresses(ev).len()
    };
    let explains = if pinned_count > 0 && template_keys < spread.eligible {
        0.9
    } else if pinned_count > 0 {
        0.6
    } else {
        0.4
    };
    let keepalived = format!("keepalived: delete `persistence_timeout` from virtual_server {} {} and restart keepalived (a reload may not apply it)", svc.vip, svc.port);
    Some(
        Finding::new(
            ID,
            format!("Persistence ({secs} s) pins each {unit} to one real server"),
            explains,
        )
        .evidence(lines)
        .fix([
            format!(
                "ipvsadm -E {} -s {} (without -p) unless the application needs affinity",
                ipvsadm_service(svc),
                svc.scheduler
            ),
            keepalived,
            "if affinity is needed: keep a short timeout, and test from many client addresses".to_string(),
            "sysctl -w net.ipv4.vs.expire_quiescent_template=1 so templates to a weight-0 server stop pinning"
                .to_string(),
        ]),
    )
}

/// The run's client addresses that share one persistence template (same masked address).
struct TemplateGroup {
    net: Ipv4Net,
    sources: BTreeSet<Ipv4Addr>,
    /// Answered requests per backend.
    backends: BTreeMap<String, u32>,
}

/// Groups the run's answered requests by their source masked to `prefix`.
fn template_groups(ev: &Evidence, prefix: u8) -> Vec<TemplateGroup> {
    let mut groups: BTreeMap<Ipv4Net, TemplateGroup> = BTreeMap::new();
    for (source, backends) in backends_by_source(ev) {
        let IpAddr::V4(ip) = source else { continue };
        let Ok(net) = Ipv4Net::new(ip, prefix.min(32)) else {
            continue;
        };
        let net = net.trunc();
        let g = groups.entry(net).or_insert_with(|| TemplateGroup {
            net,
            sources: BTreeSet::new(),
            backends: BTreeMap::new(),
        });
        g.sources.insert(ip);
        for (backend, n) in backends {
            *g.backends.entry(backend).or_default() += n;
        }
    }
    groups.into_values().collect()
}

/// "16 client addresses (192.0.2.136 .. 192.0.2.151) share template 192.0.2.0/24: 32 requests, all answered by rs3".
fn shared_template_lines(groups: &[TemplateGroup]) -> Vec<String> {
    groups
        .iter()
        .filter(|g| g.backends.len() == 1 && g.backends.values().sum::<u32>() >= 2)
        .map(|g| {
            let (backend, n) = g.backends.iter().next().expect("one backend");
            let first = g.sources.first().expect("a source");
            let last = g.sources.last().expect("a source");
            let who = if g.sources.len() == 1 {
                format!("client address {first}")
            } else {
                format!("{} client addresses ({first} .. {last})", g.sources.len())
            };
            format!(
                "{who} share template {}: {n} requests, all answered by {backend}",
                g.net
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::diagnose::evidence::{RecordEvidence, TemplateEvidence};
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
            text.contains("template 192.0.2.10 -> rs1 (192.0.2.11) (client port 0), expires in 355 s"),
            "{text}"
        );
        assert!(
            text.contains("source 192.0.2.10: 30 requests, all answered by rs1"),
            "{text}"
        );
        assert!(
            text.contains("probe many-sources: 4 source addresses reached 3 servers (rs1 6, rs2 3, rs3 3)"),
            "{text}"
        );
        assert_eq!(
            finding.fix[0],
            "ipvsadm -E -t 192.0.2.100:80 -s rr (without -p) unless the application needs affinity"
        );
    }

    #[test]
    fn a_netmask_template_shared_by_many_sources_explains_the_skew() {
        // -M 255.255.255.0: 16 client addresses, 2 requests each, one /24 template to rs3.
        let mut ev = sample::persistence();
        ev.service.as_mut().unwrap().persistence_prefix = Some(24);
        ev.ipvs.as_mut().unwrap().templates[0] = TemplateEvidence {
            client: "192.0.2.0".parse().unwrap(),
            dest: sample::rip(3),
            expires_secs: Some(299),
        };
        ev.records = (0..32)
            .map(|n| RecordEvidence {
                source: SocketAddr::new(Ipv4Addr::new(192, 0, 2, 136 + (n / 2) as u8).into(), 40000),
                ..sample::record(n, "rs3")
            })
            .collect();
        ev.probes.clear();
        let finding = run(&ev).expect("persistence must fire");
        assert_eq!(finding.explains, 0.9, "one template for 3 servers explains it all");
        assert_eq!(
            finding.evidence[1],
            "template 192.0.2.0 -> rs3 (192.0.2.13) (client port 0), expires in 299 s, keyed by 192.0.2.0/24 (covers 16 of the run's client addresses)"
        );
        assert_eq!(
            finding.evidence[2],
            "16 client addresses (192.0.2.136 .. 192.0.2.151) share template 192.0.2.0/24: 32 requests, all answered by rs3"
        );
        assert_eq!(finding.evidence.len(), 3, "{:?}", finding.evidence);

        // Per-address persistence with the same 16 sources: 16 templates, 3 servers.
        ev.service.as_mut().unwrap().persistence_prefix = Some(32);
        assert_eq!(run(&ev).unwrap().explains, 0.6);
    }

    #[test]
    fn silent_without_persistence() {
        let mut ev = sample::persistence();
        ev.service.as_mut().unwrap().persistence_secs = None;
        assert_eq!(run(&ev), None);
        assert_eq!(run(&sample::healthy_dr()), None);
    }
}
