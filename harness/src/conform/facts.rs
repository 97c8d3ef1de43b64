//! What two runs of one scenario must agree on, taken from a run's outcome with what
//! legitimately moves (expiry seconds, ephemeral client ports, lagging rates) left out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ipvs::IpvsSnapshot;
use crate::run::RunOutcome;
use crate::scenario::{Comparison, Scenario};

/// One run's comparable facts, each a short text so a difference reads as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// `(name, value)` in a fixed order; see [`Facts::of`].
    pub facts: Vec<(&'static str, String)>,
}

impl Facts {
    /// The facts of `outcome`. With [`Comparison::OrderFree`] only what does not depend on
    /// which of several racing first packets won: no per-backend counts, no sequence.
    pub fn of(scenario: &Scenario, outcome: &RunOutcome) -> Facts {
        let order_free = scenario.traffic.comparison() == Comparison::OrderFree;
        let mut facts = vec![("verdict", verdict(outcome))];
        if order_free {
            let answering: Vec<&str> = outcome.tally.answering().collect();
            facts.push(("answering", answering.join(" ")));
            facts.push(("answered", outcome.tally.answered().to_string()));
        } else {
            facts.push(("tally", counts(&outcome.tally.backends)));
        }
        facts.push(("errors", counts(&outcome.tally.errors)));
        if !order_free {
            facts.push(("sequence", sequence(outcome)));
        }
        let several = outcome.directors.len() > 1;
        for d in &outcome.directors {
            facts.push(("table", table(&d.ipvs, order_free, several.then_some(d.name.as_str()))));
            facts.push((
                "connections",
                connections(&d.ipvs, order_free, several.then_some(d.name.as_str())),
            ));
        }
        facts.push(("diagnosis", diagnosis(outcome)));
        Facts { facts }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.facts.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

fn verdict(outcome: &RunOutcome) -> String {
    if outcome.verdict.passed {
        return "PASS".into();
    }
    let failed: Vec<&str> = outcome.verdict.failures().map(|c| c.what.as_str()).collect();
    format!("FAIL ({})", failed.join("; "))
}

fn counts(map: &BTreeMap<String, u32>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answers in the order the requests were sent (deterministic scenarios only).
fn sequence(outcome: &RunOutcome) -> String {
    outcome
        .records
        .iter()
        .map(|r| match (&r.backend, &r.error) {
            (Some(b), None) => b.clone(),
            (_, Some(e)) => format!("<{e}>"),
            (None, None) => "<no backend>".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ipvsadm -Ln` as lvslab prints it: services, flags, real servers, weights and (unless
/// order-free) ActiveConn/InActConn.
fn table(ipvs: &IpvsSnapshot, order_free: bool, director: Option<&str>) -> String {
    let text = ipvs.list_text();
    let lines = text.lines().filter(|l| !l.starts_with("IP Virtual Server")).map(|l| {
        if order_free && l.trim_start().starts_with("->") && !l.contains("RemoteAddress") {
            // Keep address, forwarding method and weight; drop the connection counts.
            l.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
        } else {
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    });
    prefixed(director, lines.collect::<Vec<_>>().join(" | "))
}

/// `ipvsadm -Lnc` rows counted by protocol, state and real server (templates apart, with
/// their client address), without expiry and client ports. Order-free: by state only.
fn connections(ipvs: &IpvsSnapshot, order_free: bool, director: Option<&str>) -> String {
    let mut rows: BTreeMap<String, u32> = BTreeMap::new();
    for c in &ipvs.conns {
        let key = match (c.template, order_free) {
            (true, false) => format!("template {} {} -> {} -> {}", c.proto.name(), c.from.ip(), c.to, c.dest),
            (true, true) => format!("template {}", c.proto.name()),
            (false, false) => format!("{} {} -> {}", c.proto.name(), c.state, c.dest),
            (false, true) => format!("{} {}", c.proto.name(), c.state),
        };
        *rows.entry(key).or_default() += 1;
    }
    let text = if rows.is_empty() {
        "none".into()
    } else {
        rows.iter()
            .map(|(k, n)| format!("{n}× {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    prefixed(director, text)
}

fn prefixed(director: Option<&str>, text: String) -> String {
    match director {
        Some(name) => format!("{name}: {text}"),
        None => text,
    }
}

fn diagnosis(outcome: &RunOutcome) -> String {
    match &outcome.diagnosis {
        None => "not made".into(),
        Some(d) if d.healthy => "healthy".into(),
        Some(d) => d.ids().join(", "),
    }
}
