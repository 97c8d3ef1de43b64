//! Cause 15: the scheduler's own arithmetic picks one server. fo and ovf send every new
//! connection to the highest-weight available server by design; sed and nq count only
//! *active* connections, so with one request at a time every server looks idle and the
//! heaviest (sed) or the first idle one (nq) always wins; lc/wlc on an idle table tie
//! and take the first destination.

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode, ProbeKind};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::{SpreadSummary, SpreadVerdict};
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::SchedulerArithmetic;

/// Share of the answered requests the predicted server(s) must take for a full explanation.
const MOSTLY: f64 = 0.8;

/// A server the scheduler may pick: name, weight, and the IPVS counters if gathered.
struct Candidate {
    name: String,
    weight: u32,
    counters: Option<(u32, u32)>,
}

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    if !has_director(ev) || matches!(spread.verdict, SpreadVerdict::NoTraffic | SpreadVerdict::Even) {
        return None;
    }
    let scheduler = svc.scheduler.as_str();
    let candidates = candidates(ev);
    if candidates.len() < 2 {
        return None; // one server to choose from: single-server / weight-zero explain it
    }
    let counted = candidates.iter().all(|c| c.counters.is_some());
    // The table is read right after the run: the last connection may still be open.
    let active_total: u32 = candidates
        .iter()
        .filter_map(|c| c.counters.map(|(active, _)| active))
        .sum();
    let one_at_a_time = counted && active_total <= 1;
    let idle_table = counted && candidates.iter().all(|c| c.counters == Some((0, 0)));
    let top_weight = candidates.iter().map(|c| c.weight).max().unwrap_or(0);
    let heaviest: Vec<&Candidate> = candidates.iter().filter(|c| c.weight == top_weight).collect();
    let first = &candidates[0];
    let service = service_label(svc);

    // What the scheduler must pick while no connection is active, and why.
    let (predicted, why): (Vec<&Candidate>, String) = match scheduler {
        "fo" => (
            heaviest.clone(),
            format!("{service}: fo (weighted fail-over) sends every new connection to the available server with the highest weight ({}), by design", weight_label(&heaviest)),
        ),
        "ovf" => (
            heaviest.clone(),
            format!("{service}: ovf sends every new connection to the highest-weight server ({}) until its active connections exceed its weight", weight_label(&heaviest)),
        ),
        "sed" => (
            heaviest.clone(),
            format!("{service}: sed picks the least (active + 1) / weight and ignores inactive connections: with none active the heaviest server ({}) always wins", weight_label(&heaviest)),
        ),
        "nq" => (
            vec![first],
            format!("{service}: nq sends a new connection to the first server with no active connection ({}, first in the table's order); inactive connections do not count", first.name),
        ),
        "lc" | "wlc" if idle_table => (
            vec![first],
            format!("{service}: {scheduler} with every counter at 0: all servers tie and the first in the table's order ({}) wins each time", first.name),
        ),
        _ => return None,
    };
    let answered: u32 = spread.per_backend.values().sum();
    let predicted_requests: u32 = predicted
        .iter()
        .map(|c| spread.per_backend.get(&c.name).copied().unwrap_or(0))
        .sum();
    if answered == 0 || predicted_requests == 0 {
        return None;
    }
    let share = f64::from(predicted_requests) / f64::from(answered);
    // The arithmetic predicts the top server: it explains the skew in proportion.
    let top = spread.per_backend.values().copied().max().unwrap_or(0);
    if predicted
        .iter()
        .all(|c| spread.per_backend.get(&c.name).copied().unwrap_or(0) < top)
    {
        return None;
    }

    let mut lines = vec![why];
    lines.push(format!(
        "{} of {answered} answered requests went there ({})",
        predicted_requests,
        backend_list(&spread.per_backend)
    ));
    let waits_on_active = matches!(scheduler, "sed" | "nq" | "ovf");
    if counted {
        let table: Vec<String> = candidates
            .iter()
            .map(|c| {
                let (active, inactive) = c.counters.unwrap_or_default();
                format!("{} w{} {active}/{inactive}", c.name, c.weight)
            })
            .collect();
        lines.push(format!("IPVS ActiveConn/InActConn after the run: {}", table.join(", ")));
        if waits_on_active && one_at_a_time {
            let half = if matches!(ev.mode, Mode::Dr | Mode::Tun) {
                "; in DR/TUN the director sees only the client's packets, so a connection turns inactive as soon as the client's FIN passes"
            } else {
                ""
            };
            lines.push(format!(
                "at most one connection active at a time: each new one found no server with active connections{half}"
            ));
        }
    }
    for p in ev
        .probes
        .iter()
        .filter(|p| matches!(p.kind, ProbeKind::NewConn | ProbeKind::ManySources))
        .filter(|p| p.distinct_backends() > spread.distinct)
    {
        let label = match p.kind {
            ProbeKind::NewConn => "new-conn",
            _ => "many-sources",
        };
        lines.push(format!(
            "probe {label} (several connections at once): {} requests reached {} servers ({})",
            p.requests,
            p.distinct_backends(),
            backend_list(&p.per_backend)
        ));
    }

    let explains = if share >= MOSTLY { 0.9 } else { 0.6 * share + 0.2 };
    let svc_arg = ipvsadm_service(svc);
    let fix = match scheduler {
        "fo" | "ovf" => vec![
            format!("{scheduler} is for active/standby: the others take over only when the heaviest is quiesced (weight 0), removed or (ovf) overloaded"),
            format!("to spread the load: ipvsadm -E {svc_arg} -s wrr (or wlc); keepalived: lb_algo wrr"),
        ],
        "sed" | "nq" => vec![
            format!("{scheduler} spreads only when servers hold active connections: judge it under concurrent load, not one request at a time"),
            format!("for short sequential requests: ipvsadm -E {svc_arg} -s wrr, or wlc (it counts inactive connections too)"),
        ],
        _ => vec![
            "test with a burst of requests, not one request spaced beyond the entry timeouts (`ipvsadm -L --timeout`)".to_string(),
            format!("for an even spread of sparse requests: ipvsadm -E {svc_arg} -s rr (or wrr)"),
        ],
    };
    Some(
        Finding::new(
            ID,
            format!(
                "Scheduler {scheduler} picks {} by its own arithmetic",
                names(&predicted)
            ),
            explains,
        )
        .evidence(capped(lines))
        .fix(fix),
    )
}

/// Available servers (weight above 0) in the table's order when the table was read (the
/// order the scheduler walks), else in configured order.
fn candidates(ev: &Evidence) -> Vec<Candidate> {
    let name_at = |addr| {
        ev.real_server_at(addr)
            .map_or_else(|| addr.to_string(), |r| r.name.clone())
    };
    match ev.ipvs.as_ref().filter(|i| !i.dests.is_empty()) {
        Some(ipvs) => ipvs
            .dests
            .iter()
            .filter(|d| d.weight > 0)
            .map(|d| Candidate {
                name: name_at(d.addr),
                weight: d.weight,
                counters: Some((d.active, d.inactive)),
            })
            .collect(),
        None => ev
            .real_servers
            .iter()
            .map(|r| Candidate {
                name: r.name.clone(),
                weight: ev.weight_of(r),
                counters: None,
            })
            .filter(|c| c.weight > 0)
            .collect(),
    }
}

/// `rs2, weight 100` or `rs1, rs2, weight 5`.
fn weight_label(servers: &[&Candidate]) -> String {
    let weight = servers.first().map_or(0, |c| c.weight);
    format!("{}, weight {weight}", names(servers))
}

fn names(servers: &[&Candidate]) -> String {
    servers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::Evidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    /// `scheduler` over rs1..rs3 with weights 10/100/50 (table order rs1, rs2, rs3),
    /// every one of 20 sequential requests answered by `winner`.
    fn one_winner(scheduler: &str, winner: u8) -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.service.as_mut().unwrap().scheduler = scheduler.into();
        let weights = [10, 100, 50];
        for (rs, w) in ev.real_servers.iter_mut().zip(weights) {
            rs.weight = Some(w);
        }
        let ipvs = ev.ipvs.as_mut().unwrap();
        ipvs.dests = (1..=3u8)
            .map(|i| {
                let n = if i == winner { 20 } else { 0 };
                let mut d = sample::dest(i, n, u64::from(n));
                d.weight = weights[usize::from(i - 1)];
                d
            })
            .collect();
        ev.records = (0..20).map(|n| sample::record(n, &format!("rs{winner}"))).collect();
        ev
    }

    fn run(ev: &Evidence) -> Option<Finding> {
        check(ev, &summarise(ev))
    }

    #[test]
    fn fo_sends_everything_to_the_heaviest() {
        let finding = run(&one_winner("fo", 2)).expect("fo must fire");
        assert_eq!(finding.title, "Scheduler fo picks rs2 by its own arithmetic");
        assert_eq!(finding.explains, 0.9);
        assert!(finding.evidence[0].starts_with(
            "TCP 192.0.2.100:80: fo (weighted fail-over) sends every new connection to the available server with the highest weight (rs2, weight 100), by design"
        ), "{:?}", finding.evidence);
        assert_eq!(
            finding.evidence[1],
            "20 of 20 answered requests went there (rs1 0, rs2 20, rs3 0)"
        );
        assert_eq!(
            finding.evidence[2],
            "IPVS ActiveConn/InActConn after the run: rs1 w10 0/0, rs2 w100 0/20, rs3 w50 0/0"
        );
        assert!(finding.fix[1].contains("ipvsadm -E -t 192.0.2.100:80 -s wrr"));
    }

    #[test]
    fn sed_with_sequential_requests_explains_the_heaviest_in_dr() {
        let finding = run(&one_winner("sed", 2)).expect("sed must fire");
        let text = finding.evidence.join("\n");
        assert!(text.contains("at most one connection active at a time: each new one found no server with active connections; in DR/TUN the director sees only the client's packets"), "{text}");
        // Connections held open at once: not the one-at-a-time story.
        let mut ev = one_winner("sed", 2);
        ev.ipvs.as_mut().unwrap().dests[1].active = 3;
        let finding = run(&ev).expect("sed still picks the heaviest");
        assert!(!finding.evidence.iter().any(|l| l.starts_with("at most one")));
    }

    #[test]
    fn nq_predicts_the_first_idle_server_not_the_heaviest() {
        let finding = run(&one_winner("nq", 1)).expect("nq: first in the table");
        assert_eq!(finding.title, "Scheduler nq picks rs1 by its own arithmetic");
        assert_eq!(run(&one_winner("nq", 3)), None, "rs3 is neither first nor idle-first");
    }

    #[test]
    fn silent_when_the_winner_is_not_what_the_arithmetic_picks() {
        // fo would pick rs2; everything on rs3 is some other cause.
        assert_eq!(run(&one_winner("fo", 3)), None);
        assert_eq!(run(&one_winner("sed", 1)), None);
    }

    #[test]
    fn lc_and_wlc_only_on_an_idle_table() {
        // After the run rs1 holds 20 inactive entries: lc would have moved on, so no tie.
        assert_eq!(run(&one_winner("wlc", 1)), None);
        let mut ev = one_winner("wlc", 1);
        for d in &mut ev.ipvs.as_mut().unwrap().dests {
            d.inactive = 0;
        }
        let finding = run(&ev).expect("tie on an idle table");
        assert!(finding.evidence[0].contains("all servers tie and the first in the table's order (rs1)"));
    }

    #[test]
    fn silent_for_other_schedulers_even_spreads_and_without_a_director() {
        assert_eq!(run(&one_winner("rr", 2)), None);
        let mut ev = sample::healthy_dr();
        ev.service.as_mut().unwrap().scheduler = "sed".into();
        assert_eq!(run(&ev), None, "even spread");
        let mut ev = one_winner("fo", 2);
        ev.mode = crate::diagnose::evidence::Mode::Direct;
        assert_eq!(run(&ev), None);
    }

    #[test]
    fn uses_configured_weights_when_no_table_was_read() {
        let mut ev = one_winner("fo", 2);
        ev.ipvs = None;
        let finding = run(&ev).expect("fo from configured weights");
        assert!(!finding.evidence.iter().any(|l| l.starts_with("IPVS")));
    }
}
