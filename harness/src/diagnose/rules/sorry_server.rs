//! keepalived lost quorum (the live weight of the pool fell below quorum − hysteresis) and
//! put its sorry server in the table: the traffic went there instead of to the pool.

use super::common::*;
use super::health_check::{by_hand, short_reason};
use crate::diagnose::evidence::{Evidence, HealthLogLine};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::SorryServer;

/// How keepalived begins the lines saying the pool has no quorum.
const QUORUM_LOST: [&str; 2] = ["Lost quorum", "Starting with quorum down"];

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let health = ev.health.as_ref()?;
    let sorry = health.sorry_server.as_ref()?;
    let lost: Vec<&HealthLogLine> = health
        .log
        .iter()
        .filter(|l| QUORUM_LOST.iter().any(|p| l.line.starts_with(p)))
        .collect();
    let put_in = health.changes.iter().find(|c| c.sorry && !c.takes_out())?;
    if lost.is_empty() {
        return None;
    }
    let name = sorry.name.clone().unwrap_or_else(|| sorry.addr.to_string());
    let by_sorry = spread.per_backend.get(&name).copied().unwrap_or(0);
    let answered: u32 = spread.per_backend.values().sum();
    if by_sorry == 0 {
        return None;
    }
    let director = the_director(&health.director);
    // From the first loss on (keepalived "gains" quorum as it starts), in the log's order.
    let since = lost[0].at_ms;
    let mut lines: Vec<String> = health
        .log
        .iter()
        .filter(|l| l.at_ms >= since)
        .filter(|l| {
            QUORUM_LOST.iter().any(|p| l.line.starts_with(p))
                || l.line.starts_with("Gained quorum")
                || l.line.contains("sorry server")
        })
        .map(|l| {
            format!(
                "{}, keepalived on {director}: \"{}\"",
                capitalised(&moment(l.at_ms)),
                l.line
            )
        })
        .collect();
    lines.push(format!(
        "the sorry server, {name} at {}, answered {by_sorry} of {answered} answered requests ({:.0}%); keepalived added it {}",
        sorry.addr,
        100.0 * f64::from(by_sorry) / f64::from(answered.max(1)),
        moment(put_in.at_ms)
    ));
    if !health.out_at_end.is_empty() {
        lines.push(format!(
            "out of the pool when the traffic ended: {}",
            health.out_at_end.join(", ")
        ));
    }
    let mut fix: Vec<String> = health
        .failures
        .iter()
        .filter_map(|f| {
            let checker = health.checkers.iter().find(|c| c.server == f.server)?;
            Some(format!(
                "{}'s {} failed ({}): check by hand from {director}: {}; once enough servers pass again keepalived regains quorum and removes the sorry server",
                f.server,
                checker.kind.as_deref().unwrap_or("checker"),
                short_reason(f.reason),
                by_hand(checker)
            ))
        })
        .collect();
    fix.dedup();
    let (q, h) = (health.quorum, health.hysteresis);
    fix.push(format!(
        "quorum {q}, hysteresis {h}: quorum is lost when the live weight of the pool falls below quorum − hysteresis = {} and regained at quorum + hysteresis = {}; lower quorum if fewer servers can carry the load, raise hysteresis if it flaps",
        i64::from(q) - i64::from(h),
        q + h
    ));
    let share = f64::from(by_sorry) / f64::from(answered.max(1));
    Some(
        Finding::new(
            ID,
            format!("keepalived lost quorum and its sorry server ({name}) took the traffic"),
            0.95 * share,
        )
        .evidence(lines)
        .fix(fix),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_when_quorum_is_lost_and_the_sorry_server_answers() {
        let ev = sample::sorry_server();
        let finding = check(&ev, &summarise(&ev)).expect("sorry-server must fire");
        assert_eq!(
            finding.title,
            "keepalived lost quorum and its sorry server (rs3) took the traffic"
        );
        assert!((finding.explains - 0.95).abs() < 1e-9);
        assert_eq!(
            finding.evidence,
            [
                "1000 ms before the traffic, keepalived on the director d1: \"Lost quorum 1-0=1 > 0 for VS [192.0.2.100]:tcp:80\"",
                "1000 ms before the traffic, keepalived on the director d1: \"Adding sorry server [192.0.2.13]:tcp:80 to VS [192.0.2.100]:tcp:80\"",
                "the sorry server, rs3 at 192.0.2.13:80, answered 30 of 30 answered requests (100%); keepalived added it 1000 ms before the traffic",
                "out of the pool when the traffic ended: rs1, rs2",
            ]
        );
        assert!(
            finding.fix[0].starts_with("rs1's TCP_CHECK failed (connection refused): check by hand"),
            "{:?}",
            finding.fix
        );
        assert!(
            finding.fix[0].contains("nc -zv -w 1 192.0.2.11 80"),
            "{:?}",
            finding.fix
        );
        assert!(
            finding.fix[2].starts_with("quorum 1, hysteresis 0: quorum is lost when the live weight of the pool falls below quorum − hysteresis = 1 and regained at quorum + hysteresis = 1"),
            "{:?}",
            finding.fix
        );
    }

    #[test]
    fn quorum_lines_start_at_its_loss() {
        let mut ev = sample::sorry_server();
        let health = ev.health.as_mut().unwrap();
        // keepalived "gains" quorum as it starts, before any check.
        health.log.insert(
            0,
            sample::log_line(-3000.0, "Gained quorum 1+0=1 <= 3 for VS [192.0.2.100]:tcp:80", None),
        );
        health.sorry_server.as_mut().unwrap().name = Some("sorry".into());
        ev.real_servers[2].name = "sorry".into();
        for r in &mut ev.records {
            r.backend = Some("sorry".into());
        }
        let finding = check(&ev, &summarise(&ev)).expect("sorry-server must fire");
        assert_eq!(
            finding.title,
            "keepalived lost quorum and its sorry server (sorry) took the traffic"
        );
        assert!(
            finding.evidence.iter().all(|l| !l.contains("Gained quorum")),
            "{:?}",
            finding.evidence
        );
        assert!(
            finding.evidence[2].starts_with("the sorry server, sorry at 192.0.2.13:80, answered 30 of 30"),
            "{:?}",
            finding.evidence
        );
    }

    #[test]
    fn silent_without_a_lost_quorum_or_when_the_sorry_server_answered_nothing() {
        let mut ev = sample::sorry_server();
        ev.health
            .as_mut()
            .unwrap()
            .log
            .retain(|l| !l.line.starts_with("Lost quorum"));
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = sample::sorry_server();
        for r in &mut ev.records {
            r.backend = None;
            r.error = Some("timeout".into());
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = sample::sorry_server();
        ev.health.as_mut().unwrap().sorry_server = None;
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let ev = sample::checker_takes_out();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
