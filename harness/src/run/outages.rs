//! What a real server's death and return cost under keepalived's checkers: how long after the
//! event that took it down the checker took it out, how many requests failed meanwhile, and
//! how long after the event that brought it back the checker put it back.

use serde::Serialize;

use crate::scenario::{EventAction, Scenario};
use crate::traffic::RequestRecord;
use crate::verdict::Check;

use super::{FiredEvent, HealthOutcome};

/// One death of a checked real server, from a `stop`, `refuse`, `error` or `link = "down"` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    pub server: String,
    /// The checked service it was out of (a server in two checked services has an outage in each).
    pub service: String,
    pub down_event: String,
    /// When the down event had taken effect, since the traffic started.
    pub down_at_ms: f64,
    /// From then to the checker's removal (or weight 0); `None`: never taken out.
    pub removed_after_ms: Option<f64>,
    /// Requests sent from the down event's moment to the removal (or the end) that failed.
    pub failed_meanwhile: u32,
    /// The next `start` or `link = "up"` event on the same server, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_event: Option<String>,
    /// From that event's effect to the checker's restore; `None`: not put back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_after_ms: Option<f64>,
}

impl Outage {
    /// The server, and its service when the outages are of several services.
    pub fn who(&self, all: &[Outage]) -> String {
        match all.iter().any(|o| o.service != self.service) {
            true => format!("{} (service {})", self.server, self.service),
            false => self.server.clone(),
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A span in ms, to a tenth: finer than any clock the checks or events keep.
fn span_ms(from: f64, to: f64) -> f64 {
    ((to - from).max(0.0) * 10.0).round() / 10.0
}

/// `error` counts: an HTTP_GET checker fails on the status (a TCP_CHECK never notices, so
/// such an outage is never taken out, and `removed_after_death_ms` says so).
fn takes_down(action: &EventAction) -> bool {
    matches!(
        action,
        EventAction::Stop | EventAction::Refuse | EventAction::Link(false) | EventAction::Error(_)
    )
}

fn brings_back(action: &EventAction) -> bool {
    matches!(action, EventAction::Start | EventAction::Link(true))
}

/// The outages of the servers the checkers watch, in the order their down events fired.
pub fn outages(
    scenario: &Scenario,
    fired: &[FiredEvent],
    health: &HealthOutcome,
    records: &[RequestRecord],
) -> Vec<Outage> {
    let action_of = |f: &FiredEvent| scenario.events.iter().find(|e| e.name == f.name).map(|e| &e.action);
    let watched = |name: &str, service: &str| health.servers.iter().any(|s| s.name == name && s.service == service);
    let mut out = Vec::new();
    for (i, down) in fired.iter().enumerate() {
        for service in &health.services {
            if down.error.is_some() || !watched(&down.host, service) || !action_of(down).is_some_and(takes_down) {
                continue;
            }
            let name = down.host.as_str();
            // The first director's checkers on this service (another director's do the same).
            let changes = health.table.iter().filter(|c| {
                c.real_server.as_deref() == Some(name) && c.service == *service && c.director == health.director
            });
            let removed_at = changes
                .clone()
                .find(|c| c.at_ms >= ms(down.due_ms) && (c.op == "remove" || c.weight == Some(0)))
                .map(|c| c.at_ms);
            let up = fired[i + 1..]
                .iter()
                .find(|f| f.host == name && f.error.is_none() && action_of(f).is_some_and(brings_back));
            let restored_at = up.and_then(|up| {
                changes
                    .clone()
                    .find(|c| c.at_ms >= ms(up.due_ms) && c.op != "remove" && c.weight != Some(0))
                    .map(|c| c.at_ms)
            });
            let window_end = removed_at.unwrap_or(f64::INFINITY);
            let failed_meanwhile = records
                .iter()
                .filter(|r| r.error.is_some())
                .filter(|r| (ms(down.due_ms)..window_end).contains(&ms(r.sent_at)))
                .count() as u32;
            out.push(Outage {
                server: name.to_owned(),
                service: service.clone(),
                down_event: down.name.clone(),
                down_at_ms: ms(down.done_ms),
                removed_after_ms: removed_at.map(|at| span_ms(ms(down.done_ms), at)),
                failed_meanwhile,
                up_event: up.map(|u| u.name.clone()),
                restored_after_ms: up.zip(restored_at).map(|(u, at)| span_ms(ms(u.done_ms), at)),
            });
        }
    }
    out
}

/// `[expect] removed_after_death_ms` and `restored_after_return_ms`, over every outage.
pub fn checks(scenario: &Scenario, outages: &[Outage]) -> Vec<Check> {
    let expect = &scenario.expect;
    let mut out = Vec::new();
    if let Some(bound) = expect.removed_after_death {
        let bound = ms(bound);
        if outages.is_empty() {
            out.push(Check::within_ms(
                format!("a checked server was taken out within {bound:.0} ms of its death"),
                None,
                bound,
                "no checked server went down during the run",
            ));
        }
        for o in outages {
            out.push(Check::within_ms(
                format!(
                    "{} was out within {bound:.0} ms of \"{}\"",
                    o.who(outages),
                    o.down_event
                ),
                o.removed_after_ms,
                bound,
                "never taken out",
            ));
        }
    }
    if let Some(bound) = expect.restored_after_return {
        let bound = ms(bound);
        let returns: Vec<&Outage> = outages.iter().filter(|o| o.up_event.is_some()).collect();
        if returns.is_empty() {
            out.push(Check::within_ms(
                format!("a checked server was put back within {bound:.0} ms of its return"),
                None,
                bound,
                "no checked server came back during the run",
            ));
        }
        for o in returns {
            let up = o.up_event.as_deref().unwrap_or_default();
            out.push(Check::within_ms(
                format!("{} was back within {bound:.0} ms of \"{up}\"", o.who(outages)),
                o.restored_after_ms,
                bound,
                "never put back before the traffic ended",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::run::{HealthTableChange, ServerHealth};
    use crate::traffic::RequestError;

    fn scenario() -> Scenario {
        let text = "[service]\nmode = \"dr\"\nscheduler = \"rr\"\n[service.check]\nkind = \"tcp\"\ndelay_loop = 1\n\
                    [[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n\
                    [traffic]\nrequests = 300\nrate = 100\n\
                    [[event]]\nname = \"dies\"\nat_request = 100\nhost = \"rs2\"\nstop = true\n\
                    [[event]]\nname = \"back\"\nat_request = 200\nhost = \"rs2\"\nstart = true\n";
        crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t")))
    }

    fn fired(name: &str, at_ms: u64) -> FiredEvent {
        FiredEvent {
            name: name.into(),
            host: "rs2".into(),
            action: String::new(),
            due_ms: Duration::from_millis(at_ms),
            done_ms: Duration::from_millis(at_ms + 2),
            error: None,
        }
    }

    fn change(at_ms: f64, op: &'static str) -> HealthTableChange {
        HealthTableChange {
            at_ms,
            service: "tcp/80".into(),
            director: "director".into(),
            dest: "192.0.2.12:80".parse().unwrap(),
            real_server: Some("rs2".into()),
            sorry: false,
            op,
            weight: None,
        }
    }

    fn health(table: Vec<HealthTableChange>) -> HealthOutcome {
        HealthOutcome {
            director: "director".into(),
            services: vec!["tcp/80".into()],
            started_ms: -2000.0,
            log: Vec::new(),
            notify: Vec::new(),
            table,
            servers: vec![ServerHealth {
                name: "rs2".into(),
                service: "tcp/80".into(),
                out_after_start_ms: None,
                out_at_end: false,
            }],
            failures: Vec::new(),
            problems: Vec::new(),
            implementation: crate::ha::Implementation::Embedded,
        }
    }

    fn record(sent_ms: u64, failed: bool) -> RequestRecord {
        let mut r = RequestRecord::failed(0, "client", None, RequestError::Refused);
        r.sent_at = Duration::from_millis(sent_ms);
        if !failed {
            r.error = None;
        }
        r
    }

    #[test]
    fn an_outage_is_measured_from_its_events_to_the_checkers_changes() {
        let s = scenario();
        let events = [fired("dies", 1000), fired("back", 2000)];
        // A removal before the death (the start-up one) is not this outage's.
        let table = vec![
            change(-500.0, "remove"),
            change(1502.0, "remove"),
            change(2302.0, "add"),
        ];
        let records = [
            record(990, true),
            record(1100, true),
            record(1400, false),
            record(1600, true),
        ];
        let o = outages(&s, &events, &health(table), &records);
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].removed_after_ms, Some(500.0));
        assert_eq!(
            o[0].failed_meanwhile, 1,
            "only the failure between the death and the removal"
        );
        assert_eq!(o[0].up_event.as_deref(), Some("back"));
        assert_eq!(o[0].restored_after_ms, Some(300.0));

        let mut bounded = s.clone();
        bounded.expect.removed_after_death = Some(Duration::from_millis(400));
        bounded.expect.restored_after_return = Some(Duration::from_millis(400));
        let c = checks(&bounded, &o);
        assert_eq!(c.iter().map(|c| c.passed).collect::<Vec<_>>(), [false, true]);
        assert_eq!(c[0].detail.as_deref(), Some("after 500 ms"));
    }

    #[test]
    fn an_error_event_is_an_outage_and_a_start_its_repair() {
        let text = "[service]\nmode = \"nat\"\n[service.check]\nkind = \"http\"\ndelay_loop = 1\n\
                    [[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n\
                    [traffic]\nrequests = 300\nrate = 100\n\
                    [[event]]\nname = \"dies\"\nat_request = 100\nhost = \"rs2\"\nerror = 500\n\
                    [[event]]\nname = \"back\"\nat_request = 200\nhost = \"rs2\"\nstart = true\n";
        let s = crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t")));
        let events = [fired("dies", 1000), fired("back", 2000)];
        let o = outages(
            &s,
            &events,
            &health(vec![change(2502.0, "add"), change(3302.0, "add")]),
            &[],
        );
        assert_eq!(o.len(), 1, "{o:?}");
        assert_eq!(o[0].removed_after_ms, None, "an add is not a removal");
        let inhibited = HealthTableChange {
            weight: Some(0),
            ..change(1502.0, "set_weight")
        };
        let enabled = HealthTableChange {
            weight: Some(1),
            ..change(2502.0, "set_weight")
        };
        let o = outages(&s, &events, &health(vec![inhibited, enabled]), &[]);
        assert_eq!(o[0].removed_after_ms, Some(500.0), "weight 0 is out");
        assert_eq!(o[0].restored_after_ms, Some(500.0));
    }

    #[test]
    fn a_server_never_taken_out_or_never_put_back_says_so() {
        let s = scenario();
        let events = [fired("dies", 1000), fired("back", 2000)];
        let o = outages(&s, &events, &health(Vec::new()), &[record(1500, true)]);
        assert_eq!(o[0].removed_after_ms, None);
        assert_eq!(o[0].failed_meanwhile, 1);
        assert_eq!(o[0].restored_after_ms, None);
        let mut bounded = s.clone();
        bounded.expect.removed_after_death = Some(Duration::from_millis(5000));
        let c = checks(&bounded, &o);
        assert!(!c[0].passed);
        assert_eq!(c[0].detail.as_deref(), Some("never taken out"));
        assert!(checks(&bounded, &[])[0].detail.as_deref() == Some("no checked server went down during the run"));
    }
}
