//! Stage 12: keepalived's health checkers (`[service.check]`, a `[[real_server]]`'s `check`
//! and `inhibit_on_failure`) and the expectations about them (`expect.removed`,
//! `expect.removed_within_ms`).
//!
//! Keywords, units and inheritance are keepalived.conf's: seconds (fractions allowed), the
//! virtual server's values as defaults for each real server's checker, then keepalived's own
//! defaults per kind (`health::CheckerSettings::resolve`).

use std::net::SocketAddrV4;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::context::{Context, Source};
use super::reference_hint;
use crate::health::{CheckerKind, CheckerSettings, HttpGet, MiscCheck, TimingOverrides, Url};
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Expect, HealthCheck, Mode, Protocol, RealServer, RealServerCheck, Service, SorryServer};
use crate::scenario::raw::{RawCheck, RawExpect, RawStatusCode, RawStatusCodes, S};
use crate::scenario::validate::{self as v, span};

/// The longest time any checker setting may take: a day, far past any lab run.
const MAX_SECONDS: f64 = 86_400.0;

/// A real server's name with its `check` table and `inhibit_on_failure`, as written.
type RealServerTables<'r> = (String, Option<&'r RawCheck>, Option<&'r S<bool>>);

/// Which kind a check table asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Http,
    Misc,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Misc => "misc",
        }
    }
}

/// The checkers of service `index` (`raw_check`: its `[service.check]`). A real server's own
/// `check` and `inhibit_on_failure` belong to the first service (they name no service).
pub(super) fn resolve(
    cx: &mut Context<'_, '_, '_>,
    index: usize,
    service: &Service,
    raw_check: Option<&RawCheck>,
    real_servers: &[RealServer],
) -> Option<HealthCheck> {
    let raw = cx.raw;
    let vs = raw_check;
    let per_rs: Vec<RealServerTables<'_>> = cx
        .hosts
        .iter()
        .filter_map(|h| match h.source {
            Source::RealServer(rs) if index == 0 => {
                Some((h.name.clone(), rs.check.as_ref(), rs.inhibit_on_failure.as_ref()))
            }
            Source::RealServer(_) => Some((h.name.clone(), None, None)),
            _ => None,
        })
        .filter(|(name, _, _)| service.has_real_server(name))
        .collect();
    let any_rs_check = per_rs.iter().any(|(_, c, i)| c.is_some() || i.is_some());
    if vs.is_none() && !any_rs_check {
        return None;
    }
    let p = &mut *cx.p;
    let first_span = vs.and_then(any_span).or_else(|| {
        per_rs
            .iter()
            .find_map(|(_, c, i)| c.and_then(any_span).or(i.map(|i| i.span())))
    });
    if service.mode == Mode::Direct {
        p.push(
            first_span,
            "a health check needs a director, and mode = \"direct\" has none",
            Some("use mode = \"dr\", \"nat\", \"tun\" or \"fullnat\"".into()),
        );
        return None;
    }
    let empty = RawCheck::default();
    let vs_raw = vs.unwrap_or(&empty);
    let vs_kind = kind(p, vs_raw);
    let vs_timing = timing(p, vs_raw);
    let vs_delay_loop = vs_timing.delay_loop.unwrap_or(crate::health::DEFAULT_DELAY_LOOP);

    let quorum: u32 = v::int_in(p, vs_raw.quorum.as_ref(), "quorum", 1, u32::MAX as i64, 1);
    let hysteresis: u32 = v::int_in(p, vs_raw.hysteresis.as_ref(), "hysteresis", 0, u32::MAX as i64, 0);
    let command = |p: &mut Problems<'_>, c: Option<&S<String>>, what: &str| {
        let c = c?;
        if c.get_ref().trim().is_empty() {
            p.error(span(c), format!("`{what}` is empty: give a shell command"));
            return None;
        }
        Some(c.get_ref().clone())
    };
    let quorum_up = command(p, vs_raw.quorum_up.as_ref(), "quorum_up");
    let quorum_down = command(p, vs_raw.quorum_down.as_ref(), "quorum_down");
    let sorry_server = vs_raw
        .sorry_server
        .as_ref()
        .and_then(|s| sorry(p, s, real_servers, raw.complete, |rs| port_in(index, service, rs)));

    let mut pool = Vec::new();
    for (name, rs_check, rs_inhibit) in &per_rs {
        let Some(rs) = real_servers.iter().find(|r| &r.name == name) else {
            continue;
        };
        if sorry_server
            .as_ref()
            .is_some_and(|s| s.real_server.as_deref() == Some(name))
        {
            continue;
        }
        let rs_raw = rs_check.unwrap_or(&empty);
        vs_only_keys_absent(p, rs_raw, name);
        let rs_kind = kind(p, rs_raw);
        let checker = match (rs_kind.or(vs_kind), vs.is_some() || rs_check.is_some()) {
            (Some(k), true) => {
                // Kind-specific keys are inherited only by a checker of the same kind.
                let inherited = if rs_kind.is_none() || rs_kind == vs_kind {
                    Some(vs_raw)
                } else {
                    None
                };
                let spec = kind_spec(p, k, rs_raw, inherited, service);
                let rs_timing = timing(p, rs_raw);
                spec.map(|spec| {
                    let settings = CheckerSettings::resolve(&spec, &vs_timing, &rs_timing, &TimingOverrides::default());
                    (spec, settings)
                })
            }
            (None, true) => {
                let at = rs_check.and_then(any_span).or(vs.and_then(any_span));
                p.push(
                    at,
                    format!("the health check of real server \"{name}\" has no `kind`"),
                    Some(
                        "set kind = \"tcp\", \"http\" or \"misc\" (keepalived's TCP_CHECK, HTTP_GET, MISC_CHECK)"
                            .into(),
                    ),
                );
                None
            }
            (_, false) => None,
        };
        let inhibit = rs_inhibit
            .or(rs_raw.inhibit_on_failure.as_ref())
            .or(vs_raw.inhibit_on_failure.as_ref())
            .is_some_and(|b| *b.get_ref());
        pool.push(RealServerCheck {
            name: rs.name.clone(),
            inhibit_on_failure: inhibit,
            checker,
        });
    }
    Some(HealthCheck {
        delay_loop: vs_delay_loop,
        quorum,
        hysteresis,
        omega: flag(vs_raw.omega.as_ref()),
        quorum_up,
        quorum_down,
        sorry_server,
        sorry_server_inhibit: flag(vs_raw.sorry_server_inhibit.as_ref()),
        traffic_waits_for_checks: vs_raw.traffic_waits_for_checks.as_ref().is_none_or(|b| *b.get_ref()),
        real_servers: pool,
    })
}

/// `expect.removed` and `expect.removed_within_ms`, which need a checker to mean anything: at
/// the top, of any service (the server is then taken out of every service that checks it).
pub(super) fn resolve_expect(
    cx: &mut Context<'_, '_, '_>,
    expect: &mut Expect,
    services: &[Service],
    real_servers: &[RealServer],
) {
    let (e, p) = (&cx.raw.expect, &mut *cx.p);
    let checks: Vec<&HealthCheck> = services.iter().filter_map(|s| s.health.as_ref()).collect();
    removed(p, e, expect, &checks, real_servers, cx.raw.complete, None);
    let health = checks.first();
    for (raw, key, field) in [
        (
            e.removed_after_death_ms.as_ref(),
            "removed_after_death_ms",
            &mut expect.removed_after_death,
        ),
        (
            e.restored_after_return_ms.as_ref(),
            "restored_after_return_ms",
            &mut expect.restored_after_return,
        ),
    ] {
        let Some(ms) = raw else { continue };
        let bound: u64 = v::int_in(p, Some(ms), key, 1, 86_400_000, 1);
        if health.is_none() {
            p.push(
                span(ms),
                format!("expect.{key} bounds what a health checker does after an [[event]], and no checker runs"),
                Some("add a [service.check] table".into()),
            );
        }
        *field = Some(Duration::from_millis(bound));
    }
}

/// `[service.expect]`'s `removed` and `removed_within_ms`: taken out of this service's table.
pub(super) fn resolve_service_expect(
    cx: &mut Context<'_, '_, '_>,
    service: &Service,
    raw: &RawExpect,
    expect: &mut Expect,
    real_servers: &[RealServer],
) {
    let checks: Vec<&HealthCheck> = service.health.iter().collect();
    let members: Vec<RealServer> = real_servers
        .iter()
        .filter(|r| service.has_real_server(&r.name))
        .cloned()
        .collect();
    removed(
        cx.p,
        raw,
        expect,
        &checks,
        &members,
        cx.raw.complete,
        Some(&service.name),
    );
}

/// `removed` (names a checker of `checks` watches) and `removed_within_ms`, of `[expect]` or of
/// service `service`'s expect.
fn removed(
    p: &mut Problems<'_>,
    e: &RawExpect,
    expect: &mut Expect,
    checks: &[&HealthCheck],
    real_servers: &[RealServer],
    complete: bool,
    service: Option<&str>,
) {
    let (key, of) = match service {
        None => ("expect.removed".to_string(), String::new()),
        Some(name) => (
            format!("service \"{name}\"'s expect.removed"),
            format!(" of service \"{name}\""),
        ),
    };
    let names: Vec<String> = real_servers.iter().map(|r| r.name.clone()).collect();
    for n in e.removed.iter().flatten() {
        let name = n.get_ref();
        if !names.contains(name) {
            if complete {
                p.push(
                    span(n),
                    match service {
                        None => format!("{key}: \"{name}\" is not a [[real_server]]"),
                        Some(_) => format!("{key}: \"{name}\" is not a real server{of}"),
                    },
                    reference_hint(name, &names),
                );
            }
            continue;
        }
        let checked = checks
            .iter()
            .flat_map(|h| h.real_servers.iter())
            .any(|r| &r.name == name && r.checker.is_some());
        if checked {
            expect.removed.push(name.clone());
        } else {
            p.push(
                span(n),
                format!("{key}: no health checker{of} watches \"{name}\", so nothing can remove it"),
                Some(match service {
                    None => "add a [service.check] table (or a `check` on that real server)".into(),
                    Some(_) => "add a [service.check] table to that service".into(),
                }),
            );
        }
    }
    if let Some(ms) = e.removed_within_ms.as_ref() {
        let within: u64 = v::int_in(p, Some(ms), "removed_within_ms", 1, 86_400_000, 1);
        if e.removed.as_ref().is_none_or(|r| r.is_empty()) {
            p.push(
                span(ms),
                "expect.removed_within_ms bounds the removal of the servers in `expect.removed`, and there are none",
                Some("add expect.removed = [\"name\", ...]".into()),
            );
        }
        expect.removed_within = Some(Duration::from_millis(within));
    }
}

/// A place in the file for a check table as a whole (tables keep no span of their own here):
/// its `kind`, else its first timing key.
fn any_span(c: &RawCheck) -> Option<std::ops::Range<usize>> {
    c.kind
        .as_ref()
        .map(|k| k.span())
        .or(c.delay_loop.as_ref().map(|x| x.span()))
        .or(c.connect_timeout.as_ref().map(|x| x.span()))
        .or(c.inhibit_on_failure.as_ref().map(|x| x.span()))
}

fn flag(b: Option<&S<bool>>) -> bool {
    b.is_some_and(|b| *b.get_ref())
}

fn kind(p: &mut Problems<'_>, c: &RawCheck) -> Option<Kind> {
    let k = c.kind.as_ref()?;
    match k.get_ref().as_str() {
        "tcp" => Some(Kind::Tcp),
        "http" => Some(Kind::Http),
        "misc" => Some(Kind::Misc),
        other => {
            let near = crate::scenario::suggest::did_you_mean(other, ["tcp", "http", "misc"]);
            p.push(
                span(k),
                format!("unknown check kind `{other}`; valid: tcp http misc"),
                near.or_else(|| Some("TCP_CHECK is \"tcp\", HTTP_GET \"http\", MISC_CHECK \"misc\"".into())),
            );
            None
        }
    }
}

/// Seconds as keepalived.conf writes them; `positive` refuses 0.
pub(super) fn seconds(p: &mut Problems<'_>, value: Option<&S<f64>>, what: &str, positive: bool) -> Option<Duration> {
    let v = value?;
    let x = *v.get_ref();
    let low_ok = if positive { x > 0.0 } else { x >= 0.0 };
    if !x.is_finite() || !low_ok || x > MAX_SECONDS {
        let low = if positive { "more than 0" } else { "at least 0" };
        p.error(
            span(v),
            format!("`{what}` = {x} must be {low} and at most {MAX_SECONDS} seconds"),
        );
        return None;
    }
    Some(Duration::from_secs_f64(x))
}

fn timing(p: &mut Problems<'_>, c: &RawCheck) -> TimingOverrides {
    TimingOverrides {
        delay_loop: seconds(p, c.delay_loop.as_ref(), "delay_loop", true),
        connect_timeout: seconds(p, c.connect_timeout.as_ref(), "connect_timeout", true),
        retry: c
            .retry
            .as_ref()
            .map(|r| v::int_in(p, Some(r), "retry", 0, u32::MAX as i64, 0)),
        delay_before_retry: seconds(p, c.delay_before_retry.as_ref(), "delay_before_retry", false),
        warmup: seconds(p, c.warmup.as_ref(), "warmup", false),
        alpha: c.alpha.as_ref().map(|b| *b.get_ref()),
        log_all_failures: c.log_all_failures.as_ref().map(|b| *b.get_ref()),
    }
}

/// Keys that only the virtual server has in keepalived.conf.
fn vs_only_keys_absent(p: &mut Problems<'_>, c: &RawCheck, rs: &str) {
    let spans = [
        ("quorum", c.quorum.as_ref().map(|x| x.span())),
        ("hysteresis", c.hysteresis.as_ref().map(|x| x.span())),
        ("quorum_up", c.quorum_up.as_ref().map(|x| x.span())),
        ("quorum_down", c.quorum_down.as_ref().map(|x| x.span())),
        ("sorry_server", c.sorry_server.as_ref().map(|x| x.span())),
        (
            "sorry_server_inhibit",
            c.sorry_server_inhibit.as_ref().map(|x| x.span()),
        ),
        ("omega", c.omega.as_ref().map(|x| x.span())),
        (
            "traffic_waits_for_checks",
            c.traffic_waits_for_checks.as_ref().map(|x| x.span()),
        ),
    ];
    for (key, at) in spans {
        if let Some(at) = at {
            p.push(
                Some(at),
                format!("`{key}` in the check of real server \"{rs}\" is a virtual server setting"),
                Some("put it in [service.check]".into()),
            );
        }
    }
}

/// The checker of `kind`, from the real server's table and (same kind) the service's.
fn kind_spec(
    p: &mut Problems<'_>,
    kind: Kind,
    rs: &RawCheck,
    vs: Option<&RawCheck>,
    service: &Service,
) -> Option<CheckerKind> {
    let pick = |f: fn(&RawCheck) -> bool| -> Option<&RawCheck> {
        if f(rs) {
            Some(rs)
        } else {
            vs.filter(|v| f(v))
        }
    };
    // Keys of the other kinds are mistakes wherever they are written.
    for table in std::iter::once(rs).chain(vs) {
        let foreign: [(&str, Kind, Option<std::ops::Range<usize>>); 6] = [
            ("path", Kind::Http, table.path.as_ref().map(|x| x.span())),
            ("status_code", Kind::Http, table.status_code.as_ref().map(|x| x.span())),
            ("digest", Kind::Http, table.digest.as_ref().map(|x| x.span())),
            ("command", Kind::Misc, table.command.as_ref().map(|x| x.span())),
            (
                "misc_timeout",
                Kind::Misc,
                table.misc_timeout.as_ref().map(|x| x.span()),
            ),
            (
                "misc_dynamic",
                Kind::Misc,
                table.misc_dynamic.as_ref().map(|x| x.span()),
            ),
        ];
        for (key, belongs, at) in foreign {
            if let (Some(at), true) = (at, belongs != kind) {
                p.push(
                    Some(at),
                    format!(
                        "`{key}` applies to kind = \"{}\", not \"{}\"",
                        belongs.word(),
                        kind.word()
                    ),
                    None,
                );
            }
        }
    }
    match kind {
        Kind::Tcp | Kind::Http if service.protocol == Protocol::Udp => {
            let at = rs.kind.as_ref().or(vs.and_then(|v| v.kind.as_ref()));
            p.push(
                at.and_then(span),
                format!(
                    "a {} check connects over TCP, but the service is UDP and its real servers do not listen on TCP",
                    kind.word()
                ),
                Some("use kind = \"misc\" with a command that probes the server".into()),
            );
            None
        }
        Kind::Tcp => Some(CheckerKind::Tcp),
        Kind::Http => {
            let path = match pick(|c| c.path.is_some()).and_then(|c| c.path.as_ref()) {
                Some(path) if !path.get_ref().starts_with('/') => {
                    p.push(
                        span(path),
                        format!("`path` = \"{}\" must start with /", path.get_ref()),
                        None,
                    );
                    return None;
                }
                Some(path) => path.get_ref().clone(),
                None => "/".into(),
            };
            let mut url = Url::new(&path);
            if let Some(codes) = pick(|c| c.status_code.is_some()).and_then(|c| c.status_code.as_ref()) {
                url.status_codes = status_codes(p, codes)?;
            }
            if let Some(d) = pick(|c| c.digest.is_some()).and_then(|c| c.digest.as_ref()) {
                let hex = d.get_ref();
                if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    p.push(
                        span(d),
                        format!("`digest` = \"{hex}\" is not an MD5 digest (32 hex digits)"),
                        Some("compute it with `genhash` or `curl -s URL | md5sum`".into()),
                    );
                    return None;
                }
                url.digest = Some(hex.to_ascii_lowercase());
            }
            Some(CheckerKind::Http(HttpGet {
                urls: vec![url],
                fast_recovery: false,
            }))
        }
        Kind::Misc => {
            let Some(command) = pick(|c| c.command.is_some()).and_then(|c| c.command.as_ref()) else {
                let at = rs.kind.as_ref().or(vs.and_then(|v| v.kind.as_ref()));
                p.push(
                    at.and_then(span),
                    "kind = \"misc\" needs a `command` (keepalived's misc_path)",
                    Some("for example command = \"nc -z 192.0.2.11 80\"".into()),
                );
                return None;
            };
            if command.get_ref().trim().is_empty() {
                p.error(span(command), "`command` is empty: give a shell command");
                return None;
            }
            let timeout = pick(|c| c.misc_timeout.is_some())
                .and_then(|c| seconds(p, c.misc_timeout.as_ref(), "misc_timeout", true));
            Some(CheckerKind::Misc(MiscCheck {
                command: command.get_ref().clone(),
                timeout,
                dynamic: pick(|c| c.misc_dynamic.is_some()).is_some_and(|c| flag(c.misc_dynamic.as_ref())),
            }))
        }
    }
}

fn status_codes(p: &mut Problems<'_>, codes: &S<RawStatusCodes>) -> Option<Vec<RangeInclusive<u16>>> {
    let list: Vec<&RawStatusCode> = match codes.get_ref() {
        RawStatusCodes::One(c) => vec![c],
        RawStatusCodes::List(l) => l.iter().collect(),
    };
    let mut out = Vec::new();
    let bad = |p: &mut Problems<'_>, what: String| {
        p.push(
            span(codes),
            format!("`status_code`: {what}"),
            Some("give codes from 100 to 599, or ranges such as \"200-299\"".into()),
        );
    };
    let code = |n: i64| u16::try_from(n).ok().filter(|c| (100..=599).contains(c));
    for c in list {
        let range = match c {
            RawStatusCode::Code(n) => code(*n).map(|c| c..=c),
            RawStatusCode::Range(text) => {
                let mut parts = text.splitn(2, '-').map(|x| x.trim().parse::<i64>().ok().and_then(code));
                match (parts.next().flatten(), parts.next()) {
                    (Some(a), None) => Some(a..=a),
                    (Some(a), Some(Some(b))) if a <= b => Some(a..=b),
                    _ => None,
                }
            }
        };
        match range {
            Some(r) => out.push(r),
            None => {
                let shown = match c {
                    RawStatusCode::Code(n) => n.to_string(),
                    RawStatusCode::Range(t) => format!("\"{t}\""),
                };
                bad(p, format!("{shown} is not an HTTP status code or range"));
                return None;
            }
        }
    }
    if out.is_empty() {
        bad(p, "the list is empty".into());
        return None;
    }
    Some(out)
}

/// `sorry_server = "IP:PORT"` or the name of a `[[real_server]]` (which then leaves the pool).
/// The port `rs` serves service `index` on (`Scenario::real_port`, before the scenario exists).
fn port_in(index: usize, service: &Service, rs: &RealServer) -> u16 {
    match service.real_port {
        Some(port) => port,
        None if index == 0 => rs.port,
        None => service.port,
    }
}

fn sorry(
    p: &mut Problems<'_>,
    s: &S<String>,
    real_servers: &[RealServer],
    complete: bool,
    port: impl Fn(&RealServer) -> u16,
) -> Option<SorryServer> {
    let text = s.get_ref();
    if let Ok(addr) = text.parse::<SocketAddrV4>() {
        let real_server = real_servers
            .iter()
            .find(|r| r.address == *addr.ip() && port(r) == addr.port())
            .map(|r| r.name.clone());
        return Some(SorryServer { addr, real_server });
    }
    if let Some(rs) = real_servers.iter().find(|r| &r.name == text) {
        return Some(SorryServer {
            addr: SocketAddrV4::new(rs.address, port(rs)),
            real_server: Some(rs.name.clone()),
        });
    }
    if complete {
        let names: Vec<String> = real_servers.iter().map(|r| r.name.clone()).collect();
        p.push(
            span(s),
            format!("`sorry_server` = \"{text}\" is neither IP:PORT nor a [[real_server]]"),
            reference_hint(text, &names).or_else(|| Some("for example \"192.0.2.99:80\"".into())),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::health::{CheckerKind, CheckerSettings};
    use crate::scenario::{parse, HealthCheck, Scenario};

    fn ok(text: &str) -> Scenario {
        parse(text, "t.toml").unwrap_or_else(|r| panic!("unexpected problems:\n{}", r.render("t.toml")))
    }

    fn problems(text: &str) -> String {
        match parse(text, "t.toml") {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(report) => report.render("t.toml"),
        }
    }

    fn health(s: &Scenario) -> &HealthCheck {
        s.service().health.as_ref().expect("a health check")
    }

    fn checker<'a>(h: &'a HealthCheck, rs: &str) -> &'a (CheckerKind, CheckerSettings) {
        let r = h.real_servers.iter().find(|r| r.name == rs).expect("in the pool");
        r.checker.as_ref().expect("checked")
    }

    const SERVERS: &str = r#"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
"#;

    #[test]
    fn no_check_table_means_no_checkers() {
        assert_eq!(
            ok(&format!("[service]\nmode = \"dr\"\n{SERVERS}")).service().health,
            None
        );
    }

    #[test]
    fn keepalived_keywords_and_inheritance_vs_then_real_server() {
        let s = ok(r#"
[service]
mode = "dr"
[service.check]
kind = "tcp"
delay_loop = 2.5
connect_timeout = 1
retry = 3
delay_before_retry = 0.5
quorum = 2
hysteresis = 1
quorum_down = "true"
sorry_server = "sorry"
traffic_waits_for_checks = false

[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
inhibit_on_failure = true
check = { delay_loop = 4, alpha = true }
[[real_server]]
name = "sorry"
"#);
        let h = health(&s);
        assert_eq!((h.quorum, h.hysteresis, h.traffic_waits_for_checks), (2, 1, false));
        assert_eq!(h.quorum_down.as_deref(), Some("true"));
        assert_eq!(h.delay_loop, Duration::from_millis(2500));
        let sorry = h.sorry_server.as_ref().unwrap();
        assert_eq!((sorry.real_server.as_deref(), sorry.addr.port()), (Some("sorry"), 80));
        let pool: Vec<&str> = h.real_servers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(pool, ["rs1", "rs2"], "the sorry server is not in the pool");
        let (kind, rs1) = checker(h, "rs1");
        assert_eq!(*kind, CheckerKind::Tcp);
        assert_eq!(
            (rs1.delay_loop, rs1.connect_timeout, rs1.retry, rs1.delay_before_retry),
            (
                Duration::from_millis(2500),
                Duration::from_secs(1),
                3,
                Duration::from_millis(500)
            )
        );
        // warmup falls back to the checker's own delay_loop, as validate_check_config does.
        assert_eq!(rs1.warmup, Duration::from_millis(2500));
        let (_, rs2) = checker(h, "rs2");
        assert_eq!(
            (rs2.delay_loop, rs2.warmup, rs2.alpha, rs2.retry),
            (Duration::from_secs(4), Duration::from_secs(4), true, 3)
        );
        let inhibit: Vec<bool> = h.real_servers.iter().map(|r| r.inhibit_on_failure).collect();
        assert_eq!(inhibit, [false, true]);
        // The director's table leaves the sorry server out until quorum is lost.
        let cfg = crate::run::director_config(&s, s.director().unwrap()).unwrap();
        assert_eq!(cfg.services[0].1.len(), 2);
    }

    #[test]
    fn http_and_misc_checkers_take_their_own_keys() {
        let s = ok(r#"
[service]
mode = "nat"
[service.check]
kind = "http"
path = "/health"
status_code = [200, "301-302"]
digest = "5D41402ABC4B2A76B9719D911017C592"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
check = { kind = "misc", command = "exit 0", misc_timeout = 2, misc_dynamic = true }
"#);
        let h = health(&s);
        let CheckerKind::Http(http) = &checker(h, "rs1").0 else {
            panic!("http")
        };
        let url = &http.urls[0];
        assert_eq!(url.path, "/health");
        assert_eq!(url.status_codes, vec![200..=200, 301..=302]);
        assert_eq!(url.digest.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
        // HTTP_GET's own default delay_before_retry.
        assert_eq!(checker(h, "rs1").1.delay_before_retry, Duration::from_secs(3));
        let CheckerKind::Misc(misc) = &checker(h, "rs2").0 else {
            panic!("misc")
        };
        assert_eq!(
            (misc.command.as_str(), misc.timeout, misc.dynamic),
            ("exit 0", Some(Duration::from_secs(2)), true)
        );
        // The http keys are not inherited by a misc checker.
        assert_eq!(checker(h, "rs2").1.retry, 0);
    }

    #[test]
    fn bad_values_are_reported_where_they_are() {
        let text = problems(
            r#"
[service]
mode = "dr"
[service.check]
kind = "tpc"
delay_loop = -1
[[real_server]]
name = "rs1"
check = { kind = "tcp", path = "/", quorum = 2 }
[[real_server]]
name = "rs2"
check = { kind = "http", status_code = 99, digest = "abc" }
[[real_server]]
name = "rs3"
check = { kind = "misc" }
"#,
        );
        for want in [
            "t.toml:5:8: error: unknown check kind `tpc`; valid: tcp http misc",
            "hint: TCP_CHECK is \"tcp\", HTTP_GET \"http\", MISC_CHECK \"misc\"",
            "t.toml:6:14: error: `delay_loop` = -1 must be more than 0",
            "`path` applies to kind = \"http\", not \"tcp\"",
            "`quorum` in the check of real server \"rs1\" is a virtual server setting",
            "`status_code`: 99 is not an HTTP status code or range",
            "kind = \"misc\" needs a `command`",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    #[test]
    fn mistakes_across_sections_say_what_to_do() {
        let text = problems(
            r#"
[service]
mode = "dr"
protocol = "udp"
[service.check]
kind = "tcp"
delay_lop = 1
sorry_server = "nowhere"
[[real_server]]
name = "rs1"
[expect]
removed = ["rs9"]
removed_within_ms = 0
"#,
        );
        for want in [
            "unknown key `delay_lop` in [service] (check)",
            "did you mean `delay_loop`?",
            "a tcp check connects over TCP, but the service is UDP",
            "`sorry_server` = \"nowhere\" is neither IP:PORT nor a [[real_server]]",
            "expect.removed: \"rs9\" is not a [[real_server]]",
            "`removed_within_ms` = 0 is out of range",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let text =
            problems("[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n[expect]\nremoved = [\"rs1\"]\n");
        assert!(text.contains("no health checker watches \"rs1\""), "{text}");
        let text = problems(
            "[service]\nmode = \"direct\"\n[service.check]\nkind = \"tcp\"\n[[real_server]]\nname = \"rs1\"\n",
        );
        assert!(text.contains("a health check needs a director"), "{text}");
        let text = problems(
            "[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n[expect]\nrestored_after_return_ms = 500\n",
        );
        assert!(
            text.contains("expect.restored_after_return_ms bounds what a health checker does after an [[event]], and no checker runs"),
            "{text}"
        );
    }

    const TWO: &str = r#"
[[service]]
name = "web"
mode = "dr"
port = 80
[service.check]
kind = "tcp"
delay_loop = 2
[[service]]
name = "tls"
port = 443
real_servers = ["rs2", "rs3"]
[service.check]
kind = "http"
path = "/health"
quorum = 2
sorry_server = "rs1"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
check = { kind = "misc", command = "exit 1" }
[[real_server]]
name = "rs3"
"#;

    #[test]
    fn a_later_service_has_checkers_of_its_own() {
        let s = ok(TWO);
        assert!(s.has_checkers());
        let names: Vec<&str> = s.checked_services().map(|(_, svc, _)| svc.name.as_str()).collect();
        assert_eq!(names, ["web", "tls"]);
        let web = s.services[0].health.as_ref().unwrap();
        // A real server's own `check` is the first service's.
        assert!(matches!(checker(web, "rs2").0, CheckerKind::Misc(_)));
        assert_eq!(web.delay_loop, Duration::from_secs(2));
        let tls = s.services[1].health.as_ref().unwrap();
        let pool: Vec<&str> = tls.real_servers.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(pool, ["rs2", "rs3"], "its own real servers only");
        let CheckerKind::Http(http) = &checker(tls, "rs2").0 else {
            panic!("tls checks rs2 with its own HTTP_GET")
        };
        assert_eq!(http.urls[0].path, "/health");
        assert_eq!((tls.quorum, tls.delay_loop), (2, crate::health::DEFAULT_DELAY_LOOP));
        // The sorry server is on the service's own port.
        let sorry = tls.sorry_server.as_ref().unwrap();
        assert_eq!((sorry.real_server.as_deref(), sorry.addr.port()), (Some("rs1"), 443));
    }

    #[test]
    fn a_service_expect_bounds_removal_from_its_own_table() {
        let text = TWO.replace(
            "[service.check]\nkind = \"http\"",
            "[service.expect]\nremoved = [\"rs3\"]\nremoved_within_ms = 5000\n[service.check]\nkind = \"http\"",
        );
        let s = ok(&text);
        let e = s.services[1].expect.as_ref().unwrap();
        assert_eq!(e.removed, ["rs3"]);
        assert_eq!(e.removed_within, Some(Duration::from_secs(5)));
        assert!(s.expect.removed.is_empty());
    }

    #[test]
    fn bad_checks_on_a_later_service_are_reported_where_they_are() {
        let text = problems(
            r#"
[[service]]
name = "web"
mode = "dr"
[[service]]
name = "tls"
port = 443
real_servers = ["rs2"]
[service.check]
kind = "htp"
sorry_server = "nowhere"
[service.expect]
removed = ["rs1"]
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
"#,
        );
        for want in [
            "t.toml:10:8: error: unknown check kind `htp`; valid: tcp http misc",
            "`sorry_server` = \"nowhere\" is neither IP:PORT nor a [[real_server]]",
            "t.toml:13:12: error: service \"tls\"'s expect.removed: \"rs1\" is not a real server of service \"tls\"",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // A later service's check without a `kind` is refused at its first key.
        let text = problems(
            "[[service]]\nname = \"web\"\nmode = \"dr\"\n[[service]]\nname = \"tls\"\nport = 443\n\
             [service.check]\ndelay_loop = 1\n[[real_server]]\nname = \"rs1\"\n",
        );
        assert!(
            text.contains("t.toml:8:14: error: the health check of real server \"rs1\" has no `kind`"),
            "{text}"
        );
        // Top-level `removed` needs some service's checker on the server.
        let text = problems(
            "[[service]]\nname = \"web\"\nmode = \"dr\"\n[[service]]\nname = \"tls\"\nport = 443\n\
             real_servers = [\"rs2\"]\n[service.check]\nkind = \"tcp\"\n\
             [[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n[expect]\nremoved = [\"rs1\", \"rs2\"]\n",
        );
        assert!(
            text.contains("expect.removed: no health checker watches \"rs1\"") && !text.contains("watches \"rs2\""),
            "{text}"
        );
    }
}
