//! Each lab host's firewall as evidence: the rules that drop or reject, with their counters,
//! read with nft in the host's namespace. Only hosts the scenario gives `nftables` are read
//! (two nft runs each: a large lab of plain hosts pays nothing).

use crate::diagnose::evidence::{FirewallEvidence, HostRole};
use crate::lab::Lab;
use crate::nft;
use crate::scenario::{Role, Scenario};

/// The firewalls of the scenario's hosts with rules, and the hosts that could not be read.
pub async fn gather(scenario: &Scenario, lab: &Lab) -> (Vec<FirewallEvidence>, Vec<String>) {
    let reads = scenario
        .hosts()
        .filter(|h| h.nftables.is_some())
        .filter_map(|h| Some((h, lab.host(&h.name)?)))
        .map(|(h, host)| async move {
            let read = host.exec(nft::ruleset::read_drops).await.map_err(|e| e.to_string());
            (h.name.clone(), role(h.role), read.and_then(|r| r))
        });
    let mut firewalls = Vec::new();
    let mut problems = Vec::new();
    for (host, role, read) in futures::future::join_all(reads).await {
        match read {
            Ok(rules) if rules.is_empty() => {}
            Ok(rules) => firewalls.push(FirewallEvidence { host, role, rules }),
            Err(e) => problems.push(format!("could not read the firewall of {host}: {e}")),
        }
    }
    (firewalls, problems)
}

pub fn role(role: Role) -> HostRole {
    match role {
        Role::Client => HostRole::Client,
        Role::Director => HostRole::Director,
        Role::RealServer => HostRole::RealServer,
        Role::Router => HostRole::Router,
    }
}
