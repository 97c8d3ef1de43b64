//! Where the requests went, compared with where the configuration says they should go.

use std::collections::BTreeMap;

use serde::Serialize;

use super::evidence::Evidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpreadVerdict {
    /// No request was recorded: nothing to judge.
    NoTraffic,
    /// Requests spread over the servers in line with their weights.
    Even,
    /// Every answered request came from one server although more should serve.
    OneServer,
    /// Several servers answered, but far from their weights.
    Skewed,
    /// Some requests failed.
    Errors,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpreadSummary {
    pub requests: u32,
    pub errors: u32,
    /// Answered requests per server; every configured server appears, with 0 if idle.
    pub per_backend: BTreeMap<String, u32>,
    /// Servers that answered at least once.
    pub distinct: usize,
    /// Configured servers with a configured weight above 0.
    pub eligible: usize,
    /// Largest share one server took of the answered requests.
    pub top_share: f64,
    pub verdict: SpreadVerdict,
    pub healthy: bool,
}

/// Summarises the main run's records against the configured servers and weights.
pub fn summarise(ev: &Evidence) -> SpreadSummary {
    let mut per_backend: BTreeMap<String, u32> = ev.real_servers.iter().map(|r| (r.name.clone(), 0)).collect();
    let mut errors = 0;
    for record in &ev.records {
        match &record.backend {
            Some(name) if record.error.is_none() => *per_backend.entry(name.clone()).or_default() += 1,
            _ => errors += 1,
        }
    }
    let requests = ev.records.len() as u32;
    let answered: u32 = per_backend.values().sum();
    let distinct = per_backend.values().filter(|n| **n > 0).count();
    let top = per_backend.values().copied().max().unwrap_or(0);
    let top_share = if answered == 0 {
        0.0
    } else {
        f64::from(top) / f64::from(answered)
    };

    // Configured weights say what "even" means; without configuration, the answering set.
    let weights: Vec<u32> = if ev.real_servers.is_empty() {
        per_backend.values().map(|_| 1).collect()
    } else {
        ev.real_servers
            .iter()
            .map(|r| r.weight.unwrap_or(1))
            .filter(|w| *w > 0)
            .collect()
    };
    let eligible = weights.len();
    let weight_sum: u32 = weights.iter().sum();
    let fair_top = if weight_sum == 0 {
        1.0
    } else {
        f64::from(*weights.iter().max().unwrap_or(&0)) / f64::from(weight_sum)
    };
    // Halfway between the fair share and "everything": loose enough for small samples.
    let skew_limit = fair_top + (1.0 - fair_top) / 2.0;

    let verdict = if requests == 0 {
        SpreadVerdict::NoTraffic
    } else if errors > 0 {
        SpreadVerdict::Errors
    } else if eligible <= 1 || (distinct <= 1 && answered >= 2) {
        // One configured server is "one server" too: the question the user asks.
        SpreadVerdict::OneServer
    } else if (answered as usize >= eligible && distinct < eligible) || (answered >= 4 && top_share > skew_limit) {
        SpreadVerdict::Skewed
    } else {
        SpreadVerdict::Even
    };
    SpreadSummary {
        requests,
        errors,
        per_backend,
        distinct,
        eligible,
        top_share,
        verdict,
        healthy: verdict == SpreadVerdict::Even,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;

    fn with_backends(names: &[&str]) -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.records = names
            .iter()
            .enumerate()
            .map(|(n, b)| sample::record(n as u32, b))
            .collect();
        ev
    }

    #[test]
    fn even_rr_is_healthy_and_counts_idle_servers() {
        let s = summarise(&with_backends(&["rs1", "rs2", "rs3", "rs1", "rs2", "rs3"]));
        assert_eq!(s.verdict, SpreadVerdict::Even);
        assert!(s.healthy);
        let s = summarise(&with_backends(&["rs1", "rs1", "rs1"]));
        assert_eq!(s.verdict, SpreadVerdict::OneServer);
        assert_eq!(s.per_backend.get("rs3"), Some(&0));
    }

    #[test]
    fn lopsided_spread_is_skewed_but_weights_make_it_fair() {
        let names = ["rs1", "rs1", "rs1", "rs1", "rs1", "rs1", "rs1", "rs1", "rs2", "rs3"];
        let s = summarise(&with_backends(&names));
        assert_eq!(s.verdict, SpreadVerdict::Skewed);
        let mut ev = with_backends(&names);
        ev.real_servers[0].weight = Some(8);
        assert_eq!(summarise(&ev).verdict, SpreadVerdict::Even);
    }

    #[test]
    fn errors_and_single_server_are_not_healthy() {
        let mut ev = with_backends(&["rs1", "rs2", "rs3"]);
        ev.records[0].backend = None;
        ev.records[0].error = Some("timeout".into());
        assert_eq!(summarise(&ev).verdict, SpreadVerdict::Errors);
        let mut ev = with_backends(&["rs1", "rs1"]);
        ev.real_servers.truncate(1);
        assert_eq!(summarise(&ev).verdict, SpreadVerdict::OneServer);
    }
}
