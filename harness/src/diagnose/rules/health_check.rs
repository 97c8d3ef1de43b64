//! keepalived's health checker took a real server out of the table (or to weight 0 with
//! inhibit_on_failure) during the run: its share went to the others, and the requests sent
//! to it between its death and the checker noticing failed.

use std::collections::BTreeMap;

use super::common::*;
use crate::diagnose::evidence::{CheckFailReason, CheckerEvidence, Evidence, HealthChange, HealthEvidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::HealthCheck;

/// Servers shown in detail; the rest are counted.
const DETAILED_SERVERS: usize = 3;
/// keepalived lines shown per server (its removal and return are two each).
const LINES_PER_SERVER: usize = 4;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let health = ev.health.as_ref()?;
    let mut taken: BTreeMap<&str, Vec<&HealthChange>> = BTreeMap::new();
    for change in health.changes.iter().filter(|c| !c.sorry && c.takes_out()) {
        if let Some(name) = change.server.as_deref() {
            taken.entry(name).or_default().push(change);
        }
    }
    if taken.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut fix = Vec::new();
    for (name, outs) in taken.iter().take(DETAILED_SERVERS) {
        let checker = health.checkers.iter().find(|c| c.server == *name);
        let kind = checker.and_then(|c| c.kind.as_deref()).unwrap_or("its checker");
        let failure = health.failures.iter().find(|f| f.server == *name);
        let how = if outs.iter().all(|c| c.op != "remove") {
            "set it to weight 0 (inhibit_on_failure)"
        } else {
            "removed it"
        };
        let why = match (failure, checker) {
            (Some(f), Some(c)) => format!(": {}", reason_words(f.reason, c)),
            _ => String::new(),
        };
        lines.push(format!(
            "{kind} of {name} on {} {how} {}{why}",
            the_director(&health.director),
            moment(outs[0].at_ms)
        ));
        lines.extend(
            health
                .log
                .iter()
                // From its first removal on: what came before is the checker starting.
                .filter(|l| l.server.as_deref() == Some(*name) && l.at_ms >= outs[0].at_ms)
                .take(LINES_PER_SERVER)
                .map(|l| format!("{}: keepalived: \"{}\"", capitalised(&moment(l.at_ms)), l.line)),
        );
        for o in health.outages.iter().filter(|o| o.server == *name) {
            let noticed = match o.removed_after_ms {
                Some(after) => format!("the checker took it out {after:.0} ms later"),
                None => "the checker never took it out".to_string(),
            };
            let back = match (&o.up_event, o.restored_after_ms) {
                (Some(up), Some(after)) => format!("; put back {after:.0} ms after \"{up}\""),
                (Some(up), None) => format!("; not put back after \"{up}\""),
                _ => String::new(),
            };
            lines.push(format!(
                "{name} died {} (\"{}\"); {noticed}, and {} request(s) sent meanwhile failed{back}",
                moment(o.down_at_ms),
                o.down_event,
                o.failed_meanwhile
            ));
        }
        let answered = spread.per_backend.get(*name).copied().unwrap_or(0);
        let others: BTreeMap<String, u32> = spread
            .per_backend
            .iter()
            .filter(|(n, _)| n.as_str() != *name)
            .map(|(n, c)| match is_sorry(health, n) {
                true => (sorry_label(n), *c),
                false => (n.clone(), *c),
            })
            .collect();
        let out_at_end = health.out_at_end.iter().any(|s| s == name);
        let still_out = if out_at_end {
            "; still out when the traffic ended"
        } else {
            ""
        };
        lines.push(format!(
            "{name} answered {answered} of {} requests ({}){still_out}: its share went to the others",
            spread.requests,
            backend_list(&others)
        ));
        if let (Some(f), Some(c)) = (failure, checker) {
            let then = if out_at_end {
                format!("; then fix {name}'s service, and keepalived adds it back at its next good check (\"Adding service\")")
            } else {
                String::new()
            };
            fix.push(format!(
                "{name}'s {kind} failed ({}): check by hand from {}: {}{then}",
                short_reason(f.reason),
                the_director(&health.director),
                by_hand(c)
            ));
        }
        if outs.iter().any(|c| c.op != "remove") {
            fix.push(format!(
                "inhibit_on_failure keeps {name} in the table at weight 0: open connections and persistence templates still reach it (sysctl -w net.ipv4.vs.expire_quiescent_template=1 lets the templates go)"
            ));
        }
        for o in health
            .outages
            .iter()
            .filter(|o| o.server == *name && o.failed_meanwhile > 0)
        {
            if let Some(c) = checker.filter(|c| c.kind.is_some()) {
                fix.push(slow_notice_fix(name, o.failed_meanwhile, o.removed_after_ms, c));
            }
        }
    }
    if taken.len() > DETAILED_SERVERS {
        lines.push(format!(
            "... and {} more real server(s) taken out",
            taken.len() - DETAILED_SERVERS
        ));
    }
    let pool = health.checkers.len().max(1);
    let names: Vec<&str> = taken.keys().copied().collect();
    Some(
        Finding::new(
            ID,
            format!(
                "The health checker took {} out of the table during the run",
                list_names(&names)
            ),
            share_explains(taken.len(), pool),
        )
        .evidence(lines)
        .fix(fix),
    )
}

/// Whether `name` is the virtual server's sorry server.
pub fn is_sorry(health: &HealthEvidence, name: &str) -> bool {
    health
        .sorry_server
        .as_ref()
        .is_some_and(|s| s.name.as_deref() == Some(name))
}

/// `sorry server rs3`, but `sorry` or `sorry-page` when the name says it already.
pub fn sorry_label(name: &str) -> String {
    if name.to_ascii_lowercase().contains("sorry") {
        name.to_string()
    } else {
        format!("sorry server {name}")
    }
}

/// `rs1`, `rs1 and rs2`, `rs1, rs2 and rs3`, `rs1, rs2 and 5 more`.
fn list_names(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [first @ .., last] if names.len() <= DETAILED_SERVERS => format!("{} and {last}", first.join(", ")),
        _ => format!(
            "{} and {} more",
            names[..DETAILED_SERVERS - 1].join(", "),
            names.len() - (DETAILED_SERVERS - 1)
        ),
    }
}

/// What the failed check saw, and what that usually means.
pub fn reason_words(reason: CheckFailReason, checker: &CheckerEvidence) -> String {
    let at = checker.connect;
    match reason {
        CheckFailReason::ConnectRefused => {
            format!("connection refused on {at}: nothing listens there (or a firewall rejects)")
        }
        CheckFailReason::ConnectTimeout => format!(
            "no answer to the connect on {at} within connect_timeout ({}s): host down, unplugged or dropping",
            checker.connect_timeout_secs
        ),
        CheckFailReason::ConnectError => format!("connect to {at} failed"),
        CheckFailReason::NoData => format!("{at} closed the connection before answering"),
        CheckFailReason::HttpStatus(code) => format!("{at} answered HTTP {code}, not an accepted status_code"),
        CheckFailReason::Digest => format!("the body from {at} does not match the url's digest"),
        CheckFailReason::ReadTimeout => format!(
            "{at} did not finish its answer within connect_timeout ({}s)",
            checker.connect_timeout_secs
        ),
        CheckFailReason::MiscExit(code) => format!("the command exited {code}"),
        CheckFailReason::MiscTimeout => "the command ran past misc_timeout".to_string(),
        CheckFailReason::MiscSignal(signal) => format!("the command died of signal {signal}"),
    }
}

/// The reason in a few words, for a fix line.
pub fn short_reason(reason: CheckFailReason) -> String {
    match reason {
        CheckFailReason::ConnectRefused => "connection refused".into(),
        CheckFailReason::ConnectTimeout => "connect timeout".into(),
        CheckFailReason::ConnectError => "connect error".into(),
        CheckFailReason::NoData => "no data".into(),
        CheckFailReason::HttpStatus(code) => format!("HTTP {code}"),
        CheckFailReason::Digest => "digest mismatch".into(),
        CheckFailReason::ReadTimeout => "read timeout".into(),
        CheckFailReason::MiscExit(code) => format!("exit {code}"),
        CheckFailReason::MiscTimeout => "timeout".into(),
        CheckFailReason::MiscSignal(signal) => format!("signal {signal}"),
    }
}

/// The check done by hand from the director, as the checker does it.
pub fn by_hand(checker: &CheckerEvidence) -> String {
    let (ip, port) = (checker.connect.ip(), checker.connect.port());
    let timeout = checker.connect_timeout_secs.max(1.0);
    match checker.kind.as_deref() {
        Some("HTTP_GET") => format!(
            "curl -sS -o /dev/null -w '%{{http_code}}\\n' --max-time {timeout} http://{ip}:{port}{}",
            checker.path.as_deref().unwrap_or("/")
        ),
        Some("MISC_CHECK") => format!(
            "sh -c '{}'; echo $?",
            checker.command.as_deref().unwrap_or("true").replace('\'', "'\\''")
        ),
        // TCP_CHECK connects over TCP whatever the service's protocol.
        _ => format!("nc -zv -w {timeout} {ip} {port}"),
    }
}

/// How long keepalived may take to notice a death, and the knobs that shorten it.
fn slow_notice_fix(name: &str, failed: u32, after_ms: Option<f64>, c: &CheckerEvidence) -> String {
    let worst = c.delay_loop_secs
        + f64::from(c.retry + 1) * c.connect_timeout_secs
        + f64::from(c.retry) * c.delay_before_retry_secs;
    let noticed = after_ms.map_or("never noticed its death".to_string(), |ms| {
        format!("noticed {name}'s death after {ms:.0} ms")
    });
    format!(
        "the checker {noticed} while {failed} request(s) failed: keepalived notices within delay_loop + (retry+1) × connect_timeout + retry × delay_before_retry = {} + {} × {} + {} × {} = {worst}s here (a refused connect ends at once); lower delay_loop ({}s), retry ({}) or connect_timeout in {name}'s {} to notice sooner, at the cost of more checks",
        c.delay_loop_secs,
        c.retry + 1,
        c.connect_timeout_secs,
        c.retry,
        c.delay_before_retry_secs,
        c.delay_loop_secs,
        c.retry,
        c.kind.as_deref().unwrap_or("checker"),
    )
}

/// keepalived's `lb_kind` for the mode.
pub fn lb_kind(mode: Mode) -> &'static str {
    match mode {
        Mode::Nat | Mode::FullNat => "NAT",
        Mode::Tun => "TUN",
        Mode::Dr | Mode::Direct => "DR",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_when_the_checker_took_a_dead_server_out_and_says_why_and_how_fast() {
        let ev = sample::checker_takes_out();
        let finding = check(&ev, &summarise(&ev)).expect("health-check must fire");
        assert_eq!(
            finding.title,
            "The health checker took rs2 out of the table during the run"
        );
        assert_eq!(
            finding.evidence,
            [
                "TCP_CHECK of rs2 on the director d1 removed it at 1500 ms: connection refused on 192.0.2.12:80: nothing listens there (or a firewall rejects)",
                "At 1500 ms: keepalived: \"TCP_CHECK on service [192.0.2.12]:tcp:80 failed.\"",
                "At 1500 ms: keepalived: \"Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80\"",
                "At 2300 ms: keepalived: \"TCP connection to [192.0.2.12]:tcp:80 success.\"",
                "At 2300 ms: keepalived: \"Adding service [192.0.2.12]:tcp:80 to VS [192.0.2.100]:tcp:80\"",
                "rs2 died at 1002 ms (\"rs2-dies\"); the checker took it out 498 ms later, and 17 request(s) sent meanwhile failed; put back 298 ms after \"rs2-back\"",
                "rs2 answered 56 of 300 requests (rs1 113, rs3 114): its share went to the others",
            ]
        );
        assert!(
            finding.fix[0].starts_with(
                "rs2's TCP_CHECK failed (connection refused): check by hand from the director d1: nc -zv -w 1 192.0.2.12 80"
            ),
            "{:?}",
            finding.fix
        );
        assert!(
            finding.fix[1].contains("= 1 + 1 × 1 + 0 × 1 = 2s here"),
            "{:?}",
            finding.fix
        );
        assert!(
            finding.fix[1].contains("lower delay_loop (1s), retry (0)"),
            "{:?}",
            finding.fix
        );
        // It came back: nothing to restart. Still out at the end: restart it.
        assert!(!finding.fix[0].contains("adds it back"), "{:?}", finding.fix);
        let mut ev = ev;
        ev.health.as_mut().unwrap().out_at_end = vec!["rs2".into()];
        let finding = check(&ev, &summarise(&ev)).expect("health-check must fire");
        assert!(
            finding.fix[0].ends_with(
                "then fix rs2's service, and keepalived adds it back at its next good check (\"Adding service\")"
            ),
            "{:?}",
            finding.fix
        );
        assert!(finding.evidence[6].ends_with("still out when the traffic ended: its share went to the others"));
    }

    #[test]
    fn an_inhibited_server_is_said_to_be_at_weight_zero_and_checked_as_http() {
        let mut ev = sample::checker_takes_out();
        let health = ev.health.as_mut().unwrap();
        health.changes[0].op = "set_weight".into();
        health.changes[0].weight = Some(0);
        health.outages.clear();
        health.failures[0].reason = CheckFailReason::HttpStatus(500);
        let checker = &mut health.checkers[1];
        checker.kind = Some("HTTP_GET".into());
        checker.path = Some("/health".into());
        let finding = check(&ev, &summarise(&ev)).expect("health-check must fire");
        assert!(
            finding.evidence[0].starts_with("HTTP_GET of rs2 on the director d1 set it to weight 0 (inhibit_on_failure) at 1500 ms: 192.0.2.12:80 answered HTTP 500"),
            "{:?}",
            finding.evidence
        );
        assert!(
            finding.fix[0]
                .contains("curl -sS -o /dev/null -w '%{http_code}\\n' --max-time 1 http://192.0.2.12:80/health"),
            "{:?}",
            finding.fix
        );
        assert!(
            finding.fix[1].starts_with("inhibit_on_failure keeps rs2"),
            "{:?}",
            finding.fix
        );
        // No outage with failures: nothing to tune.
        assert_eq!(finding.fix.len(), 2, "{:?}", finding.fix);
    }

    #[test]
    fn silent_without_checkers_or_when_they_took_nobody_out() {
        let ev = sample::server_dies();
        assert_eq!(check(&ev, &summarise(&ev)), None, "no checker ran");
        let mut ev = sample::checker_takes_out();
        let health = ev.health.as_mut().unwrap();
        health.changes.retain(|c| !c.takes_out());
        assert_eq!(check(&ev, &summarise(&ev)), None, "only additions");
        // The sorry server going out (quorum regained) is not a real server taken out.
        let mut ev = sample::sorry_server();
        let health = ev.health.as_mut().unwrap();
        health.changes.retain(|c| c.sorry);
        health.changes[0].op = "remove".into();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn many_servers_are_listed_briefly() {
        assert_eq!(list_names(&["rs1", "rs2"]), "rs1 and rs2");
        assert_eq!(list_names(&["rs1", "rs2", "rs3"]), "rs1, rs2 and rs3");
        assert_eq!(list_names(&["a", "b", "c", "d", "e"]), "a, b and 3 more");
    }
}
