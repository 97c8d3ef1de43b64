//! The firewall-mark evidence of a run: the first director's mark rules (what lvslab loaded
//! into its `lvslab_fwmark` table, the rules the embedded engine also applies), its table's
//! FWM and address services, and where the requests went.

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};

use super::evidence::RunFacts;
use crate::diagnose::evidence::{AddressServiceEvidence, FwmServiceEvidence, FwmarkEvidence, TargetEvidence};
use crate::ipvs::view::ServiceSnapshot;
use crate::scenario::Scenario;

/// `None` when the scenario has no fwmark service and the table no FWM service.
pub fn evidence(scenario: &Scenario, facts: RunFacts<'_>) -> Option<FwmarkEvidence> {
    let rules: Vec<_> = scenario.services.iter().filter_map(|s| s.fwmark.clone()).collect();
    let table = facts.ipvs;
    let services: Vec<FwmServiceEvidence> = table
        .map(|t| {
            t.services
                .iter()
                .filter(|s| s.fwmark != 0)
                .map(|s| FwmServiceEvidence {
                    mark: s.fwmark,
                    scheduler: s.scheduler.clone(),
                    persistence_secs: s.persistent,
                    dests: s.dests.len(),
                    rips: rips(s),
                })
                .collect()
        })
        .unwrap_or_default();
    if rules.is_empty() && services.is_empty() {
        return None;
    }
    let address_services = table
        .map(|t| {
            t.services
                .iter()
                .filter(|s| s.fwmark == 0)
                .map(|s| AddressServiceEvidence {
                    key: s.key(),
                    scheduler: s.scheduler.clone(),
                    persistence_secs: s.persistent,
                    rips: rips(s),
                })
                .collect()
        })
        .unwrap_or_default();
    let proto = scenario.services[scenario.traffic.services.first().copied().unwrap_or(0)].protocol;
    let mut targets: BTreeMap<SocketAddrV4, (u32, BTreeMap<String, u32>)> = BTreeMap::new();
    for r in facts.records {
        let SocketAddr::V4(target) = r.target else { continue };
        let entry = targets.entry(target).or_default();
        entry.0 += 1;
        if let (Some(b), None) = (&r.backend, &r.error) {
            *entry.1.entry(b.clone()).or_default() += 1;
        }
    }
    Some(FwmarkEvidence {
        rules,
        services,
        address_services,
        targets: targets
            .into_iter()
            .map(|(target, (requests, backends))| TargetEvidence {
                proto,
                target,
                requests,
                backends,
            })
            .collect(),
    })
}

/// A service's real-server addresses, sorted and each once.
fn rips(s: &ServiceSnapshot) -> Vec<std::net::Ipv4Addr> {
    let mut v: Vec<_> = s.dests.iter().map(|d| d.addr).collect();
    v.sort_unstable();
    v.dedup();
    v
}
