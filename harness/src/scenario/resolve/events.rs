//! Stage 12: the `[[event]]` tables (faults during the traffic) and the `[expect]` keys that
//! refer to them. Each event names one host and one action valid for that host's role, and a
//! moment the traffic reaches.

use std::time::Duration;

use super::context::{Context, Span};
use super::reference_hint;
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Event, EventAction, EventAt, EventExpect, Host, Role, Traffic, Vrrp};
use crate::scenario::raw::{RawEvent, RawNames, S};
use crate::scenario::sysctl;
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(
    cx: &mut Context<'_, '_, '_>,
    hosts: &[Host],
    traffic: &Traffic,
    vrrp: Option<&Vrrp>,
) -> (Vec<Event>, EventExpect) {
    let (r, p) = (cx.raw, &mut *cx.p);
    let mut events = Vec::new();
    for (raw, header) in r.events.iter().zip(&r.event_spans) {
        if let Some(event) = event(p, raw, header.clone(), hosts, traffic, vrrp, r.complete) {
            events.push(event);
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (raw, event) in r.events.iter().zip(&events) {
        if let (Some(name), true) = (raw.name.as_ref(), seen.contains(&event.name.as_str())) {
            p.push(
                span(name),
                format!("two events are named \"{}\"", event.name),
                Some("give each event its own name".into()),
            );
        }
        seen.push(&event.name);
    }
    let expect = expectations(p, &r.expect, &events, hosts, vrrp, r.complete);
    (events, expect)
}

fn event(
    p: &mut Problems<'_>,
    raw: &RawEvent,
    header: Span,
    hosts: &[Host],
    traffic: &Traffic,
    vrrp: Option<&Vrrp>,
    complete: bool,
) -> Option<Event> {
    let at = moment(p, raw, header.clone(), traffic);
    let Some(host_name) = raw.host.as_ref() else {
        p.push(
            header,
            "an [[event]] needs a `host`",
            Some("the real server, director or other host it acts on".into()),
        );
        return None;
    };
    let Some(host) = hosts.iter().find(|h| h.name == *host_name.get_ref()) else {
        if complete {
            let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
            p.push(
                span(host_name),
                format!("event host \"{}\" is not a host of the scenario", host_name.get_ref()),
                reference_hint(host_name.get_ref(), &names),
            );
        }
        return None;
    };
    let action = action(p, raw, header, host, hosts, vrrp)?;
    let name = raw
        .name
        .as_ref()
        .map(|n| n.get_ref().clone())
        .unwrap_or_else(|| format!("{} {}", host.name, action.label()));
    Some(Event {
        name,
        at: at?,
        host: host.name.clone(),
        action,
    })
}

/// `at_request` or `at_ms`, within the traffic.
fn moment(p: &mut Problems<'_>, raw: &RawEvent, header: Span, traffic: &Traffic) -> Option<EventAt> {
    match (raw.at_request.as_ref(), raw.at_ms.as_ref()) {
        (Some(_), Some(ms)) => {
            p.push(
                span(ms),
                "an [[event]] takes `at_request` or `at_ms`, not both",
                Some("at_request counts requests sent; at_ms is time since the traffic started".into()),
            );
            None
        }
        (None, None) => {
            p.push(
                header,
                "an [[event]] needs `at_request` or `at_ms`",
                Some(
                    "at_request = 100 fires once 100 requests were sent; at_ms = 2000, 2 s after the traffic started"
                        .into(),
                ),
            );
            None
        }
        (Some(n), None) => {
            let total = traffic.requests as i64 * traffic.clients.len().max(1) as i64;
            if *n.get_ref() >= total && *n.get_ref() >= 0 {
                p.push(
                    span(n),
                    format!(
                        "`at_request` = {} is beyond the traffic: it sends {total} requests",
                        n.get_ref()
                    ),
                    Some(format!(
                        "an event at_request = N fires once N requests were sent: give 0..{total}"
                    )),
                );
                return None;
            }
            Some(EventAt::Request(v::int_in(p, Some(n), "at_request", 0, total - 1, 0)))
        }
        (None, Some(ms)) => {
            let at = Duration::from_millis(v::int_in(p, Some(ms), "at_ms", 0, 86_400_000, 0u64));
            let end = traffic_end(traffic);
            match end {
                Some(end) if at >= end => {
                    p.push(
                        span(ms),
                        format!(
                            "`at_ms` = {} is after the traffic ends ({} ms)",
                            at.as_millis(),
                            end.as_millis()
                        ),
                        Some("move the event earlier, or send for longer (`requests`, `duration_ms`)".into()),
                    );
                    None
                }
                _ => Some(EventAt::Elapsed(at)),
            }
        }
    }
}

/// When the last request may go, when the file bounds it: `duration_ms`, or the paced schedule.
fn traffic_end(traffic: &Traffic) -> Option<Duration> {
    let total = f64::from(traffic.requests) * traffic.clients.len().max(1) as f64;
    let paced = traffic.rate.map(|rate| Duration::from_secs_f64(total / rate));
    match (traffic.duration, paced) {
        (Some(d), Some(p)) => Some(d.min(p)),
        (d, p) => d.or(p),
    }
}

/// The one action key of the event, checked against the host's role.
fn action(
    p: &mut Problems<'_>,
    raw: &RawEvent,
    header: Span,
    host: &Host,
    hosts: &[Host],
    vrrp: Option<&Vrrp>,
) -> Option<EventAction> {
    let flag = |b: &Option<S<bool>>| b.as_ref().map(|b| (span(b), *b.get_ref()));
    let mut found: Vec<(&str, Span)> = Vec::new();
    let mut note = |key: &'static str, at: Span| found.push((key, at));
    if let Some((at, _)) = flag(&raw.stop) {
        note("stop", at);
    }
    if let Some((at, _)) = flag(&raw.start) {
        note("start", at);
    }
    if let Some((at, _)) = flag(&raw.refuse) {
        note("refuse", at);
    }
    if let Some(s) = &raw.slow {
        note("slow", span(s));
    }
    if let Some(e) = &raw.error {
        note("error", span(e));
    }
    if let Some(l) = &raw.link {
        note("link", span(l));
    }
    if let Some(w) = &raw.weight {
        note("weight", span(w));
    }
    if let Some(s) = &raw.sysctl {
        note("sysctl", span(s));
    }
    if let Some((at, _)) = flag(&raw.kill) {
        note("kill", at);
    }
    if let Some((at, _)) = flag(&raw.freeze) {
        note("freeze", at);
    }
    if let Some((at, _)) = flag(&raw.thaw) {
        note("thaw", at);
    }
    if let Some(b) = &raw.block_adverts {
        note("block_adverts", span(b));
    }
    if let Some(f) = &raw.touch {
        note("touch", span(f));
    }
    if let Some(f) = &raw.remove {
        note("remove", span(f));
    }
    let (key, at) = match found.as_slice() {
        [one] => one.clone(),
        [] => {
            p.push(
                header,
                format!("the [[event]] on \"{}\" has no action", host.name),
                Some(
                    "give one of stop, start, refuse, slow, error, link, weight, sysctl, kill, freeze, thaw, \
                     block_adverts, touch, remove"
                        .into(),
                ),
            );
            return None;
        }
        [_, second, ..] => {
            let keys: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
            p.push(
                second.1.clone(),
                format!("an [[event]] has one action; this one has {}", keys.join(", ")),
                Some("write one [[event]] per action, at the same moment if need be".into()),
            );
            return None;
        }
    };
    let roles: &[Role] = match key {
        "refuse" | "slow" | "error" | "weight" => &[Role::RealServer],
        "stop" | "start" => &[Role::RealServer, Role::Director],
        "kill" | "freeze" | "thaw" | "block_adverts" | "touch" | "remove" => &[Role::Director],
        _ => &[Role::Client, Role::Director, Role::RealServer, Role::Router],
    };
    if !roles.contains(&host.role) {
        let wanted = match roles {
            [Role::Director] => "a director",
            [Role::RealServer] => "a real server",
            _ => "a real server or a director",
        };
        p.push(
            at,
            format!(
                "`{key}` acts on {wanted}; \"{}\" is a {}",
                host.name,
                role_word(host.role)
            ),
            None,
        );
        return None;
    }
    let set = |b: &Option<S<bool>>, p: &mut Problems<'_>| -> bool {
        let on = b.as_ref().is_some_and(|b| *b.get_ref());
        if !on {
            p.push(
                at.clone(),
                format!("`{key} = false` does nothing"),
                Some(format!("write `{key} = true`")),
            );
        }
        on
    };
    let vrrp_only = matches!(key, "freeze" | "thaw" | "block_adverts" | "touch" | "remove");
    if vrrp_only && vrrp.is_none() {
        p.push(
            at,
            format!("`{key}` acts on a director's VRRP, and this scenario runs none"),
            Some("add a [vrrp_instance] table".into()),
        );
        return None;
    }
    let action = match key {
        "freeze" => set(&raw.freeze, p).then_some(EventAction::Freeze)?,
        "thaw" => set(&raw.thaw, p).then_some(EventAction::Thaw)?,
        "block_adverts" => EventAction::BlockAdverts(*raw.block_adverts.as_ref()?.get_ref()),
        "touch" | "remove" => {
            let file = if key == "touch" {
                raw.touch.as_ref()?
            } else {
                raw.remove.as_ref()?
            };
            let name = file.get_ref();
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                p.push(
                    span(file),
                    format!("`{key}` = {name:?} must be a plain file name"),
                    Some("the file lives in the director's run directory, `{dir}` in a vrrp_script".into()),
                );
                return None;
            }
            if key == "touch" {
                EventAction::Touch(name.clone())
            } else {
                EventAction::Remove(name.clone())
            }
        }
        "stop" => set(&raw.stop, p).then_some(EventAction::Stop)?,
        "start" => set(&raw.start, p).then_some(EventAction::Start)?,
        "refuse" => set(&raw.refuse, p).then_some(EventAction::Refuse)?,
        "kill" => set(&raw.kill, p).then_some(EventAction::Kill)?,
        "slow" => EventAction::Slow(delay(p, raw.slow.as_ref()?)?),
        "error" => {
            let code = raw.error.as_ref()?;
            if !(400..=599).contains(code.get_ref()) {
                p.push(
                    span(code),
                    format!("`error` = {} is not an HTTP error status", code.get_ref()),
                    Some("give 400..=599, e.g. error = 500".into()),
                );
                return None;
            }
            EventAction::Error(*code.get_ref() as u16)
        }
        "link" => match raw.link.as_ref()?.get_ref().as_str() {
            "down" => EventAction::Link(false),
            "up" => EventAction::Link(true),
            other => {
                p.push(at, format!("`link` = \"{other}\": give \"down\" or \"up\""), None);
                return None;
            }
        },
        "weight" => {
            if !hosts.iter().any(|h| h.role == Role::Director) {
                p.push(
                    at,
                    "`weight` changes a director's table, and this scenario has no director",
                    None,
                );
                return None;
            }
            EventAction::Weight(v::int_in(p, raw.weight.as_ref(), "weight", 0, 65535, 1))
        }
        _ => EventAction::Sysctl(sysctls(p, raw.sysctl.as_ref()?, host)?),
    };
    Some(action)
}

fn sysctls(
    p: &mut Problems<'_>,
    table: &S<crate::scenario::raw::RawSysctls>,
    host: &Host,
) -> Option<Vec<(String, String)>> {
    let devices = sysctl::lab_devices(host);
    let target = sysctl::Target {
        host: &host.name,
        role: host.role,
        devices: &devices,
    };
    let before = p.len();
    let mut out = Vec::new();
    for (name, value) in table.get_ref() {
        if sysctl::is_engine(name) {
            p.push(
                span(value),
                format!("`{name}` is the director engine's, set once when it starts"),
                Some("give it in the director's own `sysctl` table".into()),
            );
            continue;
        }
        if let Some(text) = sysctl::host_value(p, &target, name, value) {
            out.push((name.clone(), text));
        }
    }
    if out.is_empty() && p.len() == before {
        p.push(span(table), "`sysctl = {}` sets nothing", None);
    }
    (p.len() == before).then_some(out)
}

/// `"300ms"`, `"2s"`, `"1.5s"`.
fn delay(p: &mut Problems<'_>, text: &S<String>) -> Option<Duration> {
    let t = text.get_ref().trim();
    let parsed = match t.strip_suffix("ms") {
        Some(ms) => ms.trim().parse::<u64>().ok().map(Duration::from_millis),
        None => t
            .strip_suffix('s')
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && (0.0..=3600.0).contains(s))
            .map(Duration::from_secs_f64),
    };
    if parsed.is_none() {
        p.push(
            span(text),
            format!("`slow` = \"{t}\" is not a delay"),
            Some("write it with its unit: \"300ms\" or \"2s\"".into()),
        );
    }
    parsed
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Director => "director",
        Role::RealServer => "real server",
        Role::Router => "router",
    }
}

/// `errors_between` and `answering_after`: names of events.
fn expectations(
    p: &mut Problems<'_>,
    e: &crate::scenario::raw::RawExpect,
    events: &[Event],
    hosts: &[Host],
    vrrp: Option<&Vrrp>,
    complete: bool,
) -> EventExpect {
    let names: Vec<String> = events.iter().map(|e| e.name.clone()).collect();
    let known = |n: &S<String>, key: &str, p: &mut Problems<'_>| -> Option<String> {
        match names.iter().filter(|x| *x == n.get_ref()).count() {
            1 => Some(n.get_ref().clone()),
            0 => {
                if complete {
                    p.push(
                        span(n),
                        format!("expect.{key}: \"{}\" is not an [[event]]", n.get_ref()),
                        reference_hint(n.get_ref(), &names),
                    );
                }
                None
            }
            _ => {
                p.push(
                    span(n),
                    format!("expect.{key}: several events are called \"{}\"", n.get_ref()),
                    Some("give the events a `name` each".into()),
                );
                None
            }
        }
    };
    let errors_between = e
        .errors_between
        .as_ref()
        .and_then(|pair| match pair.get_ref().as_slice() {
            [a, b] => {
                let (a, b) = (known(a, "errors_between", p), known(b, "errors_between", p));
                Some((a?, b?))
            }
            _ => {
                p.push(
                    span(pair),
                    "expect.errors_between takes two event names: [from, to]",
                    Some("errors_between = [\"rs2-dies\", \"rs2-back\"]".into()),
                );
                None
            }
        });
    let answering_after = e.answering_after.as_ref().and_then(|n| known(n, "answering_after", p));
    let needs_vrrp = |key: &str, at: Span, p: &mut Problems<'_>| -> bool {
        if vrrp.is_none() {
            p.push(
                at,
                format!("expect.{key} is about VRRP directors, and this scenario runs none"),
                Some("add a [vrrp_instance] table".into()),
            );
        }
        vrrp.is_some()
    };
    let master = e.master.as_ref().and_then(|m| {
        if !needs_vrrp("master", span(m), p) {
            return None;
        }
        let names = match m.get_ref() {
            RawNames::One(n) => vec![n.clone()],
            RawNames::List(list) => list.clone(),
        };
        let directors: Vec<String> = hosts
            .iter()
            .filter(|h| h.role == Role::Director)
            .map(|h| h.name.clone())
            .collect();
        let unknown: Vec<&String> = names.iter().filter(|n| !directors.contains(n)).collect();
        if let Some(first) = unknown.first() {
            p.push(
                span(m),
                format!("expect.master: \"{first}\" is not a director"),
                reference_hint(first, &directors),
            );
            return None;
        }
        Some(names)
    });
    let failover_ms = e
        .failover_ms
        .as_ref()
        .filter(|f| needs_vrrp("failover_ms", span(f), p))
        .map(|f| Duration::from_millis(v::int_in(p, Some(f), "failover_ms", 0, 3_600_000, 0u64)));
    let failed_during_failover = e
        .failed_during_failover
        .as_ref()
        .filter(|f| needs_vrrp("failed_during_failover", span(f), p))
        .map(|f| v::int_in(p, Some(f), "failed_during_failover", 0, i64::from(u32::MAX), 0u32));
    EventExpect {
        errors_between,
        answering_after,
        master,
        failover_ms,
        failed_during_failover,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::scenario::{parse, EventAction, EventAt};

    const BASE: &str = r#"
[service]
mode = "dr"
scheduler = "rr"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[traffic]
requests = 100
rate = 50
"#;

    fn with(events: &str) -> String {
        format!("{BASE}{events}")
    }

    fn problems(events: &str) -> String {
        match parse(&with(events), "t.toml") {
            Ok(_) => panic!("expected problems in:\n{events}"),
            Err(report) => report.render("t.toml"),
        }
    }

    #[test]
    fn events_resolve_with_their_moment_action_and_name() {
        let s = parse(
            &with(
                r#"
[[event]]
name = "rs2-dies"
at_request = 30
host = "rs2"
stop = true
[[event]]
at_ms = 1500
host = "rs2"
slow = "300ms"
[[event]]
at_ms = 1600
host = "director"
kill = true
[[event]]
at_ms = 1700
host = "rs1"
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1 }
[expect]
errors_between = ["rs2-dies", "rs2 slow 300ms"]
answering_after = "rs2-dies"
"#,
            ),
            "t.toml",
        )
        .unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
        assert_eq!(s.traffic.rate, Some(50.0));
        let summary: Vec<(String, EventAt, EventAction)> = s
            .events
            .iter()
            .map(|e| (e.name.clone(), e.at, e.action.clone()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("rs2-dies".into(), EventAt::Request(30), EventAction::Stop),
                (
                    "rs2 slow 300ms".into(),
                    EventAt::Elapsed(Duration::from_millis(1500)),
                    EventAction::Slow(Duration::from_millis(300))
                ),
                (
                    "director kill".into(),
                    EventAt::Elapsed(Duration::from_millis(1600)),
                    EventAction::Kill
                ),
                (
                    "rs1 sysctl net.ipv4.conf.all.arp_ignore=1".into(),
                    EventAt::Elapsed(Duration::from_millis(1700)),
                    EventAction::Sysctl(vec![("net.ipv4.conf.all.arp_ignore".into(), "1".into())])
                ),
            ]
        );
        assert_eq!(
            s.expect_events.errors_between,
            Some(("rs2-dies".into(), "rs2 slow 300ms".into()))
        );
    }

    #[test]
    fn a_rate_and_a_duration_give_the_requests_the_schedule_holds() {
        let text = BASE.replace("requests = 100\n", "duration_ms = 3000\n");
        let s = parse(&text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
        assert_eq!(s.traffic.requests, 150);
        assert_eq!(s.traffic.duration, Some(Duration::from_secs(3)));
    }

    #[test]
    fn unknown_host_and_wrong_role_are_errors_with_their_place() {
        insta::assert_snapshot!(
            "event_host_and_role",
            problems(
                r#"
[[event]]
at_ms = 100
host = "rs3"
stop = true
[[event]]
at_ms = 100
host = "client"
weight = 0
[[event]]
at_ms = 100
host = "rs1"
kill = true
"#
            )
        );
    }

    #[test]
    fn moments_must_be_one_and_within_the_traffic() {
        insta::assert_snapshot!(
            "event_moments",
            problems(
                r#"
[[event]]
host = "rs1"
stop = true
[[event]]
at_request = 10
at_ms = 100
host = "rs1"
stop = true
[[event]]
at_request = 100
host = "rs1"
stop = true
[[event]]
at_ms = 2000
host = "rs1"
start = true
"#
            )
        );
    }

    #[test]
    fn actions_must_be_one_and_well_formed() {
        insta::assert_snapshot!(
            "event_actions",
            problems(
                r#"
[[event]]
at_ms = 10
host = "rs1"
[[event]]
at_ms = 10
host = "rs1"
stop = true
error = 500
[[event]]
at_ms = 10
host = "rs1"
slow = "fast"
[[event]]
at_ms = 10
host = "rs1"
error = 200
[[event]]
at_ms = 10
host = "rs1"
link = "sideways"
[[event]]
at_ms = 10
host = "director"
sysctl = { "net.ipv4.vs.expire_nodest_conn" = 1 }
[expect]
errors_between = ["nothing"]
answering_after = "rs9 stop"
"#
            )
        );
    }
}
