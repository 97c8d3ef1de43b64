//! The directors' VRRP as evidence: each node's instance as configured, who was MASTER at the
//! end, when each became MASTER and why, and the keepalived lines that say adverts did not
//! get through or were refused.

use crate::diagnose::evidence::{FailoverEvidence, VrrpEvidence, VrrpNodeEvidence};
use crate::run::VrrpOutcome;
use crate::scenario::Scenario;

/// Words of keepalived's lines about adverts that were not sent or were dropped on receipt
/// (vrrp.c `vrrp_send_pkt`, `vrrp_check_packet`).
const ADVERT_TROUBLE: &[&str] = &[
    "send advert error",
    "invalid passwd",
    "received an invalid",
    "advertisement interval mismatch",
    "not present in MASTER advert",
    "not present in advert",
    "wrong VRRP version",
    "Invalid VRRP",
    "invalid TTL",
    "Expected multicast packet",
    "not a unicast peer",
];

pub(super) fn evidence(scenario: &Scenario, outcome: &VrrpOutcome) -> Option<VrrpEvidence> {
    let vrrp = scenario.vrrp.as_ref()?;
    let nodes = vrrp
        .nodes
        .iter()
        .map(|n| {
            let cfg = &n.instance;
            VrrpNodeEvidence {
                director: n.director.clone(),
                instance: cfg.name.clone(),
                interface: cfg.interface.clone(),
                address: cfg.address,
                vrid: cfg.vrid,
                priority: cfg
                    .priority
                    .unwrap_or(if cfg.initial_master == Some(true) { 255 } else { 100 }),
                version: cfg.version.number(),
                advert_int_ms: cfg.advert_int.as_millis() as u64,
                auth: cfg.auth != crate::vrrp::Auth::None,
                unicast_peers: n.unicast_peers.clone(),
                strict: n.strict,
                no_accept: n.no_accept(),
            }
        })
        .collect();
    let mut advert_trouble: Vec<(String, String)> = Vec::new();
    for l in &outcome.log {
        if ADVERT_TROUBLE.iter().any(|w| l.line.contains(w))
            && !advert_trouble
                .iter()
                .any(|(d, line)| *d == l.director && *line == l.line)
        {
            advert_trouble.push((l.director.clone(), l.line.clone()));
        }
    }
    let firewall_lines = outcome
        .log
        .iter()
        .filter(|l| l.line.contains("setting firewall drop rule"))
        .map(|l| (l.director.clone(), l.line.clone()))
        .collect();
    let became_master = outcome
        .transitions
        .iter()
        .filter(|t| t.to == "MASTER")
        .map(|t| (t.director.clone(), t.at_ms, t.cause.clone().unwrap_or_default()))
        .collect();
    let failovers = outcome
        .failovers
        .iter()
        .map(|f| FailoverEvidence {
            event: f.event.clone(),
            action: scenario
                .events
                .iter()
                .find(|e| e.name == f.event)
                .map_or(String::new(), |e| e.action.label()),
            from: f.from.clone(),
            to: f.to.clone(),
            takeover_ms: f.takeover_ms,
            failover_ms: f.failover_ms,
            failed: f.failed_during,
        })
        .collect();
    Some(VrrpEvidence {
        implementation: outcome.implementation.word().to_string(),
        nodes,
        masters: outcome.masters.clone(),
        advert_trouble,
        became_master,
        failovers,
        firewall_lines,
        gateway: vrrp.gateway,
    })
}
