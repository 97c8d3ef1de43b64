//! A keepalived virtual server's health checking as the scenario's `[service.check]`, the
//! real servers' `check = { ... }` and `inhibit_on_failure`, and the sorry server as a real
//! server of its own. Inheritance is keepalived's: the virtual server's values go to
//! `[service.check]`, a real server's and its checker's (the checker's winning) to its own
//! `check`; what every real server's checker says alike is written once, in
//! `[service.check]`. What lvslab cannot run is a warning at its line.

use super::error::Warning;
use super::keepalived::{KeepalivedRealServer, VirtualServer};
use super::keepalived_checkers::{Checker, CheckerKind, Timing};
use super::to_scenario::{quote, PlanCheck, PlanServer, PlanService};
use crate::lvs::Proto;
use crate::scenario::keywords::Mode;

/// The longest time lvslab takes for a checker setting (a day).
const MAX_SECONDS: f64 = 86_400.0;

type Keys = Vec<(String, String)>;

/// Fills in `service.check`, the real servers' checks and the sorry server from `vs`.
pub(super) fn plan(vs: &VirtualServer, service: &mut PlanService, mode: Mode, warnings: &mut Vec<Warning>) {
    let udp = service.proto == Proto::Udp;
    let per_server: Vec<Option<Keys>> = vs
        .real_servers
        .iter()
        .map(|rs| server_checker(rs, udp, warnings))
        .collect();
    if per_server.iter().all(Option::is_none) {
        for (line, keyword) in &vs.health_lines {
            warnings.push(Warning::new(
                *line,
                format!("`{keyword}`: no real server has a checker lvslab runs, so it has no effect; not imported"),
            ));
        }
        return;
    }
    let mut keys = Keys::new();
    timing_keys(&vs.timing, vs.line, true, &mut keys, warnings);
    if vs.inhibit_on_failure {
        keys.push(("inhibit_on_failure".into(), "true".into()));
    }
    if vs.omega {
        keys.push(("omega".into(), "true".into()));
    }
    match vs.quorum {
        // keepalived reduced it to a zero total weight: lvslab's quorum is at least 1.
        Some(0) => warnings.push(Warning::new(
            vs.line,
            "quorum 0 (every weight is 0) is written as lvslab's least quorum, 1",
        )),
        Some(q) if q != 1 => keys.push(("quorum".into(), q.to_string())),
        _ => {}
    }
    if let Some(h) = vs.hysteresis.filter(|h| *h != 0) {
        keys.push(("hysteresis".into(), h.to_string()));
    }
    for (key, script) in [("quorum_up", &vs.quorum_up), ("quorum_down", &vs.quorum_down)] {
        if let Some(s) = script.as_ref().filter(|s| !s.command.trim().is_empty()) {
            keys.push((key.into(), quote(&s.command)));
            warnings.push(Warning::new(
                s.line,
                format!("{key} runs `{}` with sh -c in the lab director's namespace", s.command),
            ));
        }
    }
    // What every checker says alike goes to [service.check] (not a key the virtual server
    // states itself: its own value must stay the default of each server; nor delay_loop,
    // whose virtual-server value is also MISC_CHECK's default misc_timeout).
    let all_checked = per_server.iter().all(Option::is_some);
    let checked: Vec<&Keys> = per_server.iter().flatten().collect();
    let common: Keys = if all_checked {
        checked[0]
            .iter()
            .filter(|kv| {
                kv.0 != "delay_loop" && checked.iter().all(|c| c.contains(kv)) && !keys.iter().any(|(k, _)| *k == kv.0)
            })
            .cloned()
            .collect()
    } else {
        Keys::new()
    };
    // kind first, as people write it.
    let mut table: Keys = common.iter().filter(|(k, _)| k == "kind").cloned().collect();
    table.extend(keys);
    table.extend(common.iter().filter(|(k, _)| k != "kind").cloned());
    for (server, (rs, own)) in service.servers.iter_mut().zip(vs.real_servers.iter().zip(per_server)) {
        server.inhibit = rs.inhibit_on_failure;
        server.check = match own {
            Some(own) => own.into_iter().filter(|kv| !common.contains(kv)).collect(),
            None => {
                warnings.push(Warning::new(
                    rs.line,
                    format!(
                        "real server {} has no checker, so keepalived never takes it out: lvslab checks every real server of a checked service, so it gets a MISC_CHECK that always passes (`true`)",
                        rs.addr
                    ),
                ));
                let mut keys: Keys = vec![("kind".into(), quote("misc")), ("command".into(), quote("true"))];
                if vs.timing.alpha == Some(true) {
                    keys.push(("alpha".into(), "false".into()));
                }
                keys
            }
        };
    }
    let sorry = vs.sorry_server.as_ref().map(|s| {
        if s.inhibit {
            table.push(("sorry_server_inhibit".into(), "true".into()));
        }
        if !service.servers.iter().any(|r| r.address == s.addr) {
            let dr_like = matches!(mode, Mode::Dr | Mode::Tun);
            service.servers.push(PlanServer {
                address: s.addr,
                original: match s.port {
                    Some(p) => format!("{}:{p}", s.addr),
                    None => s.addr.to_string(),
                },
                line: s.line,
                port: s.port.filter(|_| !dr_like).or(Some(service.port)),
                weight: 1,
                note: Some("keepalived's sorry_server: in the table only while quorum is lost".into()),
                check: Vec::new(),
                inhibit: None,
                sorry: true,
            });
        }
        s.addr
    });
    service.check = Some(PlanCheck { keys: table, sorry });
}

/// A later service's checking: as the first's, but a later service states it all in its
/// `[service.check]` (a real server's own `check` is the first service's): the first real
/// checker's keys go there, and a real server whose checker says otherwise is a warning.
pub(super) fn plan_later(vs: &VirtualServer, service: &mut PlanService, mode: Mode, warnings: &mut Vec<Warning>) {
    plan(vs, service, mode, warnings);
    let what = vs.describe();
    let Some(check) = service.check.as_mut() else {
        return;
    };
    // The MISC_CHECK `true` stands in for "no checker": a real checker is preferred.
    let stand_in = |keys: &Keys| keys.iter().any(|(k, v)| k == "command" && v == &quote("true"));
    let pool = || service.servers.iter().filter(|s| !s.sorry);
    let model: Keys = pool()
        .map(|s| s.check.clone())
        .find(|k| !stand_in(k))
        .or_else(|| pool().next().map(|s| s.check.clone()))
        .unwrap_or_default();
    for kv in &model {
        if check.keys.iter().any(|(k, _)| *k == kv.0) {
            continue;
        }
        match kv.0.as_str() {
            "kind" => check.keys.insert(0, kv.clone()),
            _ => check.keys.push(kv.clone()),
        }
    }
    let inhibits: Vec<bool> = pool().map(|s| s.inhibit.unwrap_or(vs.inhibit_on_failure)).collect();
    if !vs.inhibit_on_failure && !inhibits.is_empty() && inhibits.iter().all(|i| *i) {
        check.keys.push(("inhibit_on_failure".into(), "true".into()));
    }
    let inhibit_all = inhibits.first().copied().unwrap_or(false);
    for server in service.servers.iter_mut().filter(|s| !s.sorry) {
        if server.check != model {
            let own: Vec<String> = server.check.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            warnings.push(Warning::new(
                server.line,
                format!(
                    "the checker of {} in `{what}` ({}) differs from its other real servers': a later service has one [service.check] for all of them, so it is checked like the others",
                    server.original,
                    own.join(", ")
                ),
            ));
        }
        if server.inhibit.unwrap_or(vs.inhibit_on_failure) != inhibit_all && inhibits.iter().any(|i| *i != inhibit_all)
        {
            warnings.push(Warning::new(
                server.line,
                format!(
                    "inhibit_on_failure of {} in `{what}` differs from its other real servers': a later service states it once, in [service.check]",
                    server.original
                ),
            ));
        }
        server.check.clear();
        server.inhibit = None;
    }
}

/// The one checker of `rs` lvslab runs, as `check` keys (kind first); `None` for none.
fn server_checker(rs: &KeepalivedRealServer, udp: bool, warnings: &mut Vec<Warning>) -> Option<Keys> {
    let mut chosen: Option<&Checker> = None;
    for c in &rs.checkers {
        let runnable = matches!(c.kind, CheckerKind::Tcp | CheckerKind::Http | CheckerKind::Misc);
        if !runnable {
            let why = match c.kind {
                CheckerKind::Ssl => "SSL_GET (HTTP over TLS) is not modelled: the lab's real servers speak plain HTTP",
                _ => "lvslab runs TCP_CHECK, HTTP_GET and MISC_CHECK",
            };
            warnings.push(Warning::new(c.line, format!("{} not imported: {why}", c.name())));
            continue;
        }
        if udp && c.kind != CheckerKind::Misc {
            warnings.push(Warning::new(
                c.line,
                format!(
                    "{} not imported: it connects over TCP and the service is UDP, whose lab real servers do not listen on TCP",
                    c.name()
                ),
            ));
            continue;
        }
        match chosen {
            None => chosen = Some(c),
            Some(first) => warnings.push(Warning::new(
                c.line,
                format!(
                    "{} not imported: lvslab runs one checker per real server, here the {} at line {}",
                    c.name(),
                    first.name(),
                    first.line
                ),
            )),
        }
    }
    let c = chosen?;
    let mut keys = Keys::new();
    let kind = match c.kind {
        CheckerKind::Tcp => "tcp",
        CheckerKind::Http => "http",
        _ => "misc",
    };
    keys.push(("kind".into(), quote(kind)));
    let mut timing = c.timing.over(&rs.timing);
    if c.kind == CheckerKind::Misc {
        timing.connect_timeout = None;
    }
    timing_keys(&timing, c.line, false, &mut keys, warnings);
    if let Some((line, ip)) = &c.connect_ip {
        warnings.push(Warning::new(
            *line,
            format!("connect_ip {ip} is not modelled: lvslab checks the real server's own address"),
        ));
    }
    if let Some((line, port)) = c.connect_port.filter(|(_, p)| Some(*p) != rs.port) {
        warnings.push(Warning::new(
            line,
            format!("connect_port {port} is not modelled: lvslab checks the real server's own port"),
        ));
    }
    for (line, keyword) in &c.unmodelled {
        warnings.push(Warning::new(
            *line,
            format!("`{keyword}` in {} is not modelled; ignored", c.name()),
        ));
    }
    match c.kind {
        CheckerKind::Http => {
            let url = &c.urls[0];
            if !url.path.starts_with('/') {
                warnings.push(Warning::new(
                    url.line,
                    format!("url path `{}` does not start with /: HTTP_GET not imported", url.path),
                ));
                return None;
            }
            keys.push(("path".into(), quote(&url.path)));
            if !url.status_codes.is_empty() {
                let codes: Vec<String> = url
                    .status_codes
                    .iter()
                    .map(|(a, b)| {
                        if a == b {
                            a.to_string()
                        } else {
                            quote(&format!("{a}-{b}"))
                        }
                    })
                    .collect();
                keys.push(("status_code".into(), format!("[{}]", codes.join(", "))));
            }
            if let Some(d) = &url.digest {
                keys.push(("digest".into(), quote(d)));
                // Kept as the file says, but the lab's servers cannot serve the user's page.
                warnings.push(Warning::new(
                    url.line,
                    format!(
                        "digest {d} kept, but the lab's real servers answer a JSON body that names each client, whose MD5 is never this: in the lab this HTTP_GET fails and the server is taken out; drop `digest` to check the status only"
                    ),
                ));
            }
            for extra in &c.urls[1..] {
                warnings.push(Warning::new(
                    extra.line,
                    format!(
                        "url `{}` not imported: lvslab's HTTP_GET fetches one url (`{}`)",
                        extra.path, url.path
                    ),
                ));
            }
        }
        CheckerKind::Misc => {
            let command = c.misc_path.clone().unwrap_or_default();
            warnings.push(Warning::new(
                c.line,
                format!("MISC_CHECK runs `{command}` with sh -c in the lab director's namespace: it must exist there"),
            ));
            keys.push(("command".into(), quote(&command)));
            if let Some(t) = c.misc_timeout.filter(|t| *t > 0) {
                keys.push(("misc_timeout".into(), t.to_string()));
            }
            if c.misc_dynamic {
                keys.push(("misc_dynamic".into(), "true".into()));
            }
        }
        _ => {}
    }
    Some(keys)
}

/// The timing keywords stated in `t`; `alpha` only when on at the virtual server (keepalived's
/// `alpha` there takes no value).
fn timing_keys(t: &Timing, line: usize, virtual_server: bool, keys: &mut Keys, warnings: &mut Vec<Warning>) {
    let mut seconds = |key: &str, value: Option<f64>, keys: &mut Keys| {
        let Some(v) = value else { return };
        if v > MAX_SECONDS {
            warnings.push(Warning::new(
                line,
                format!("{key} {v} is longer than lvslab's limit of a day; not imported"),
            ));
            return;
        }
        keys.push((key.into(), seconds_text(v)));
    };
    seconds("delay_loop", t.delay_loop, keys);
    seconds("connect_timeout", t.connect_timeout, keys);
    if let Some(r) = t.retry {
        keys.push(("retry".into(), r.to_string()));
    }
    seconds("delay_before_retry", t.delay_before_retry, keys);
    seconds("warmup", t.warmup, keys);
    match t.alpha {
        Some(true) => keys.push(("alpha".into(), "true".into())),
        Some(false) if !virtual_server => keys.push(("alpha".into(), "false".into())),
        _ => {}
    }
    if let Some(l) = t.log_all_failures {
        keys.push(("log_all_failures".into(), l.to_string()));
    }
}

/// Whole seconds as an integer, else a decimal.
fn seconds_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as u64)
    } else {
        format!("{v}")
    }
}
