//! What the directors' VRRP did during a run, and what it cost the clients: every state
//! transition and keepalived log line, who was MASTER at the end, and for each director event
//! the takeover that followed (which director, how long after the event, the first request
//! answered after it, and the requests that failed meanwhile).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::events::FiredEvent;
use crate::ha::{Ha, Implementation, What};
use crate::scenario::{EventAction, EventExpect, Scenario};
use crate::traffic::RequestRecord;
use crate::verdict::Check;
use crate::vrrp::State;

#[derive(Debug, Clone, Serialize)]
pub struct VrrpOutcome {
    pub implementation: Implementation,
    /// Who ran each director's VRRP, in scenario order (they differ in a mixed pair).
    pub nodes: Vec<(String, Implementation)>,
    /// Whether a master was elected before the traffic started (it waits for one, bounded).
    pub elected_before_traffic: bool,
    pub transitions: Vec<VrrpTransition>,
    pub log: Vec<VrrpLogLine>,
    /// Directors MASTER when the traffic ended, in scenario order.
    pub masters: Vec<String>,
    pub failovers: Vec<Failover>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VrrpTransition {
    pub director: String,
    /// Since the traffic started; negative for the election before it.
    pub at_ms: f64,
    pub from: String,
    pub to: String,
    pub priority: u8,
    /// The keepalived line that caused it (a timeout, a priority-0 advert, a higher-priority
    /// master); none for a start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VrrpLogLine {
    pub director: String,
    pub at_ms: f64,
    pub line: String,
}

/// One takeover after a director event.
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    /// The event that started it.
    pub event: String,
    /// Who was MASTER when the event fired.
    pub from: Vec<String>,
    /// Who became MASTER.
    pub to: String,
    /// The event took the master away (kill, stop, freeze, blocked adverts, link down, a
    /// track file); `false` for a return that preempts it (start, thaw, ...), which costs
    /// nothing when all goes well.
    pub outage: bool,
    /// From the event to the new master's MASTER transition.
    pub takeover_ms: f64,
    /// From the event to the end of the first request answered after the takeover; `None`
    /// when none was.
    pub failover_ms: Option<f64>,
    /// Requests in flight between the event and that answer that failed.
    pub failed_during: u32,
}

pub(super) fn outcome(
    scenario: &Scenario,
    ha: &Ha,
    traffic_started: Instant,
    elected_before_traffic: bool,
    fired: &[FiredEvent],
    records: &[RequestRecord],
) -> VrrpOutcome {
    let since = |at: Instant| -> f64 {
        if at >= traffic_started {
            ms(at - traffic_started)
        } else {
            -ms(traffic_started - at)
        }
    };
    let mut transitions = Vec::new();
    let mut log = Vec::new();
    for e in ha.journal().entries() {
        match e.what {
            What::Transition { from, to, priority } => transitions.push(VrrpTransition {
                director: e.director.clone(),
                at_ms: since(e.at),
                from: from.word().to_string(),
                to: to.word().to_string(),
                priority,
                cause: None,
            }),
            What::Log(line) => log.push(VrrpLogLine {
                director: e.director.clone(),
                at_ms: since(e.at),
                line,
            }),
        }
    }
    for t in transitions.iter_mut().filter(|t| t.from != State::Init.word()) {
        // The first line of the burst that ends in the transition says why.
        t.cause = log
            .iter()
            .filter(|l| l.director == t.director && l.at_ms <= t.at_ms && t.at_ms - l.at_ms < EXPLAINS_WITHIN_MS)
            .find(|l| !l.line.contains("Entering "))
            .map(|l| l.line.clone());
    }
    let director_events = fired
        .iter()
        .filter(|f| scenario.directors.iter().any(|d| d.name == f.host));
    let failovers = director_events
        .filter_map(|event| {
            let outage = scenario
                .events
                .iter()
                .find(|e| e.name == event.name)
                .is_some_and(|e| takes_the_master_away(&e.action));
            failover(event, outage, &transitions, records)
        })
        .collect();
    VrrpOutcome {
        implementation: ha.implementation(),
        nodes: ha.implementations(),
        elected_before_traffic,
        masters: ha.masters(),
        transitions,
        log,
        failovers,
    }
}

fn takes_the_master_away(action: &EventAction) -> bool {
    match action {
        EventAction::Kill
        | EventAction::Stop
        | EventAction::Freeze
        | EventAction::Touch(_)
        | EventAction::Remove(_) => true,
        EventAction::BlockAdverts(blocked) => *blocked,
        EventAction::Link(up) => !up,
        _ => false,
    }
}

fn failover(
    event: &FiredEvent,
    outage: bool,
    transitions: &[VrrpTransition],
    records: &[RequestRecord],
) -> Option<Failover> {
    let due = ms(event.due_ms);
    // Who was MASTER at the event: each director's last state before it.
    let mut state: BTreeMap<&str, &str> = BTreeMap::new();
    for t in transitions.iter().filter(|t| t.at_ms <= due) {
        state.insert(&t.director, &t.to);
    }
    let from: Vec<String> = state
        .iter()
        .filter(|(_, s)| **s == State::Master.word())
        .map(|(d, _)| d.to_string())
        .collect();
    let takeover = transitions
        .iter()
        .find(|t| t.at_ms > due && t.to == State::Master.word() && !from.contains(&t.director))?;
    let ends = |r: &RequestRecord| ms(r.sent_at + r.latency);
    let first_answer = records
        .iter()
        .filter(|r| r.error.is_none() && r.backend.is_some())
        .map(ends)
        .filter(|end| *end >= takeover.at_ms && *end >= due)
        .reduce(f64::min);
    let window_end = first_answer.unwrap_or(f64::INFINITY);
    let failed_during = records
        .iter()
        .filter(|r| r.error.is_some() && ends(r) >= due && ms(r.sent_at) <= window_end)
        .count() as u32;
    Some(Failover {
        event: event.name.clone(),
        from,
        to: takeover.director.clone(),
        outage,
        takeover_ms: takeover.at_ms - due,
        failover_ms: first_answer.map(|a| a - due),
        failed_during,
    })
}

/// The `[expect]` checks about VRRP: who is master at the end, and each failover's bounds.
pub(super) fn checks(expect: &EventExpect, outcome: Option<&VrrpOutcome>) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(o) = outcome else { return checks };
    if let Some(want) = &expect.master {
        let mut want = want.clone();
        want.sort();
        let mut got = o.masters.clone();
        got.sort();
        let detail = if got.is_empty() {
            "no master".to_string()
        } else {
            got.join(", ")
        };
        checks.push(Check::new(
            format!("master at the end: {}", want.join(", ")),
            got == want,
            Some(detail),
        ));
    }
    if let Some(bound) = expect.failover_ms {
        let outages: Vec<&Failover> = o.failovers.iter().filter(|f| f.outage).collect();
        if outages.is_empty() {
            checks.push(Check::new(
                format!("failover within {} ms", bound.as_millis()),
                false,
                Some("no director took over after a director event".into()),
            ));
        }
        for f in outages {
            let passed = f.failover_ms.is_some_and(|ms| ms <= bound.as_secs_f64() * 1000.0);
            let detail = match f.failover_ms {
                Some(ms) => format!("{} answered {ms:.0} ms after \"{}\"", f.to, f.event),
                None => format!("{} took over, but no request was answered after it", f.to),
            };
            checks.push(Check::new(
                format!("failover after \"{}\" within {} ms", f.event, bound.as_millis()),
                passed,
                Some(detail),
            ));
        }
    }
    if let Some(most) = expect.failed_during_failover {
        for f in &o.failovers {
            checks.push(Check::new(
                format!("at most {most} failed during the failover after \"{}\"", f.event),
                f.failed_during <= most,
                Some(format!("{} failed", f.failed_during)),
            ));
        }
    }
    checks
}

/// The takeovers as timeline marks, beside the events.
pub(super) fn marks(outcome: &VrrpOutcome) -> Vec<FiredEvent> {
    outcome
        .transitions
        .iter()
        .filter(|t| t.at_ms >= 0.0 && t.to == State::Master.word())
        .map(|t| {
            let at = Duration::from_secs_f64(t.at_ms / 1000.0);
            FiredEvent {
                name: format!("{} MASTER", t.director),
                host: t.director.clone(),
                action: "MASTER".into(),
                due_ms: at,
                done_ms: at,
                error: None,
            }
        })
        .collect()
}

/// A log line this close before a transition is what caused it.
const EXPLAINS_WITHIN_MS: f64 = 50.0;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
