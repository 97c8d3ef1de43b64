//! investigate: "why does every request go to one real server?" answered on a live lab or
//! host. Gathers a `diagnose::Evidence` (hosts, director table, records, ARP probe),
//! runs contrasting probes, and hands the evidence to the pure `diagnose` rules.
//!
//! * [`evidence`] — evidence from a lab, the scenario and the run's results.
//! * [`faults`] — the run's health checks and events as evidence.
//! * [`probes`] — short side runs shaped to separate causes.
//! * [`expect`] — `[expect] diagnosis` as verdict checks.
//! * [`live`] — `lvslab diagnose --live`: checks on the host this runs on.

pub mod evidence;
pub mod expect;
pub mod faults;
pub mod firewall;
pub mod fwmark;
pub mod live;
pub mod probes;
mod vrrp;

use std::time::Duration;

use serde::Serialize;

use crate::diagnose::{self, Diagnosis, Evidence};
use crate::lab::Lab;
use crate::scenario::Scenario;

pub use evidence::{gather, Baseline, Gathered, RunFacts};
pub use expect::diagnosis_checks;
pub use probes::run_probes;

/// How thoroughly to investigate.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long the ARP probe listens for answers.
    pub arp_window: Duration,
    /// Run the contrasting probes.
    pub probes: bool,
}

impl Settings {
    /// `lvslab diagnose`: the full set.
    pub const THOROUGH: Settings = Settings {
        arp_window: Duration::from_millis(200),
        probes: true,
    };
    /// A scenario run checking its expectations: every answer arrives within a millisecond in
    /// a lab, so a short ARP window loses nothing and keeps the scenario suite fast.
    pub const QUICK: Settings = Settings {
        arp_window: Duration::from_millis(60),
        probes: true,
    };
}

/// What an investigation found, and what it could not look at.
#[derive(Debug, Clone, Serialize)]
pub struct Investigation {
    pub evidence: Evidence,
    pub diagnosis: Diagnosis,
    /// Evidence that could not be gathered (the diagnosis went on without it).
    pub problems: Vec<String>,
}

/// Gathers the evidence (while servers and engine still run), probes, diagnoses.
pub async fn investigate(
    scenario: &Scenario,
    lab: &Lab,
    baseline: Option<&Baseline>,
    facts: RunFacts<'_>,
    settings: Settings,
) -> Investigation {
    let Gathered {
        mut evidence,
        mut problems,
        arp_probes,
    } = gather(scenario, lab, baseline, facts, settings.arp_window).await;
    if settings.probes {
        let (probes, probe_problems) = run_probes(scenario, lab, facts.records).await;
        evidence.probes = probes;
        problems.extend(probe_problems);
    }
    // Every service diagnosed on its own; the first's evidence is the one reported.
    let mut services = vec![evidence];
    for index in 1..scenario.services.len() {
        services.push(evidence::for_service(scenario, &services[0], &arp_probes, facts, index));
    }
    // Services of several modes: the first's rules read its own real servers only, or a DR
    // rule would judge the NAT service's servers (they rightly hold no VIP).
    let mixed = scenario.services.iter().any(|s| s.mode != scenario.service().mode);
    let diagnosis = if mixed {
        let mut own = services.clone();
        own[0]
            .real_servers
            .retain(|rs| scenario.service().has_real_server(&rs.name));
        diagnose::diagnose_services(&own)
    } else {
        diagnose::diagnose_services(&services)
    };
    let evidence = services.swap_remove(0);
    Investigation {
        evidence,
        diagnosis,
        problems,
    }
}
