//! Stage 11: what the run must show, every name checked against the real servers.

use super::context::Context;
use super::reference_hint;
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Cause, Expect, RealServer, ServerState, Service, Traffic};
use crate::scenario::raw::{RawExpect, RawScenario, S};
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>, real_servers: &[RealServer], traffic: &Traffic) -> Expect {
    let (r, p) = (cx.raw, &mut *cx.p);
    resolve_table(r, &r.expect, real_servers, traffic, p)
}

/// A service's `[service.expect]`: the spread of its own requests over its own real servers.
/// It takes the keys about the spread only: the run's errors, diagnosis and events stay in `[expect]`.
pub(super) fn resolve_for_service(
    cx: &mut Context<'_, '_, '_>,
    service: &Service,
    raw: &RawExpect,
    real_servers: &[RealServer],
    traffic: &Traffic,
) -> Expect {
    let (r, p) = (cx.raw, &mut *cx.p);
    let run_wide = [
        ("errors", raw.errors.as_ref().map(|x| x.span())),
        (
            "diagnosis",
            raw.diagnosis.as_ref().and_then(|d| d.first()).map(|x| x.span()),
        ),
        ("master", raw.master.as_ref().map(|x| x.span())),
        ("failover_ms", raw.failover_ms.as_ref().map(|x| x.span())),
        ("errors_between", raw.errors_between.as_ref().map(|x| x.span())),
        ("answering_after", raw.answering_after.as_ref().map(|x| x.span())),
        (
            "removed_after_death_ms",
            raw.removed_after_death_ms.as_ref().map(|x| x.span()),
        ),
        (
            "restored_after_return_ms",
            raw.restored_after_return_ms.as_ref().map(|x| x.span()),
        ),
        (
            "failed_during_failover",
            raw.failed_during_failover.as_ref().map(|x| x.span()),
        ),
    ];
    for (key, at) in run_wide {
        if let Some(at) = at {
            p.push(
                Some(at),
                format!("`{key}` in service \"{}\"'s expect is about the whole run", service.name),
                Some("a service's expect takes backends, answering, share, tolerance, even, sequence, sticky, removed and removed_within_ms; move it to [expect]".into()),
            );
        }
    }
    let members: Vec<RealServer> = real_servers
        .iter()
        .filter(|rs| service.has_real_server(&rs.name))
        .cloned()
        .collect();
    resolve_table(r, raw, &members, traffic, p)
}

fn resolve_table(
    r: &RawScenario,
    e: &RawExpect,
    real_servers: &[RealServer],
    traffic: &Traffic,
    p: &mut Problems<'_>,
) -> Expect {
    let rs_names: Vec<String> = real_servers.iter().map(|r| r.name.clone()).collect();
    let names = |list: Option<&Vec<S<String>>>, what: &str, p: &mut Problems<'_>| -> Option<Vec<String>> {
        let list = list?;
        let mut out = Vec::new();
        for n in list {
            if rs_names.contains(n.get_ref()) {
                out.push(n.get_ref().clone());
            } else if r.complete {
                p.push(
                    span(n),
                    format!("expect.{what}: \"{}\" is not a [[real_server]]", n.get_ref()),
                    reference_hint(n.get_ref(), &rs_names),
                );
            }
        }
        Some(out)
    };
    let mut backends = names(e.backends.as_ref(), "backends", p);
    if let Some(b) = backends.as_mut() {
        b.sort_by_key(|n| rs_names.iter().position(|x| x == n));
        b.dedup();
    }
    let sequence = names(e.sequence.as_ref(), "sequence", p);
    if let (Some(seq), true) = (e.sequence.as_ref(), traffic.concurrency > 1) {
        p.push(
            seq.first().and_then(span),
            format!("expect.sequence needs concurrency = 1 (it is {})", traffic.concurrency),
            Some("with parallel requests the order of answers is not defined".into()),
        );
    }
    let answering: Option<u32> = e
        .answering
        .as_ref()
        .map(|a| v::int_in(p, Some(a), "answering", 0, rs_names.len().max(1) as i64, 0));
    let tolerance: f64 = match e.tolerance.as_ref() {
        Some(t) if !(0.0..=1.0).contains(t.get_ref()) => {
            p.error(
                span(t),
                format!(
                    "`tolerance` = {} must be between 0 and 1 (a fraction of each expected share, not a percentage)",
                    t.get_ref()
                ),
            );
            0.1
        }
        Some(t) => *t.get_ref(),
        None => 0.1,
    };
    let share = e.share.as_ref().map(|map| {
        let mut out: Vec<(String, f64)> = Vec::new();
        let mut sum = 0.0;
        for (name, value) in map.get_ref() {
            let x = *value.get_ref();
            if !(0.0..=1.0).contains(&x) {
                p.error(
                    span(value),
                    format!("share of \"{name}\" = {x} must be between 0 and 1"),
                );
            }
            sum += x;
            if rs_names.contains(name) {
                out.push((name.clone(), x));
            } else if r.complete {
                p.push(
                    span(value),
                    format!("expect.share: \"{name}\" is not a [[real_server]]"),
                    reference_hint(name, &rs_names),
                );
            }
        }
        if (sum - 1.0).abs() > 0.01 && !map.get_ref().is_empty() {
            p.push(
                span(map),
                format!("expect.share sums to {sum:.3}, not 1"),
                Some("shares are fractions of all requests; servers left out are expected to get 0".into()),
            );
        }
        out.sort_by_key(|(n, _)| rs_names.iter().position(|x| x == n));
        out
    });
    let even = e.even.as_ref().is_some_and(|b| *b.get_ref());
    if let (Some(ev), true) = (
        e.even.as_ref(),
        even && real_servers.iter().all(|r| r.weight == 0 || r.state != ServerState::Up),
    ) {
        p.push(
            span(ev),
            "expect.even = true, but no real server is up with weight > 0",
            None,
        );
    }
    let errors: u32 = v::int_in(p, e.errors.as_ref(), "errors", 0, u32::MAX as i64, 0);
    let mut diagnosis = Vec::new();
    for d in e.diagnosis.iter().flatten() {
        let before = p.len();
        let cause = v::keyword(p, Some(d), Cause::Healthy);
        if p.len() == before {
            diagnosis.push(cause);
        }
    }
    Expect {
        backends,
        answering,
        share,
        tolerance,
        even,
        sequence,
        sticky: e.sticky.as_ref().is_some_and(|b| *b.get_ref()),
        errors,
        diagnosis,
        // Filled by the `health` stage, which knows the checkers.
        removed: Vec::new(),
        removed_within: None,
        removed_after_death: None,
        restored_after_return: None,
        destinations_sticky: super::fwmark::destinations_sticky(e, traffic, p),
        hot_destination_servers_min: super::fwmark::hot_destination_servers_min(e, traffic, real_servers, p),
    }
}
