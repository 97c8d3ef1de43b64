//! Stage 1: the scenario's name, the engine and the virtual service (all but its VIP, which
//! the `vips` stage chooses once addresses are known).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::scenario::diagnostic::Problems;
use crate::scenario::keywords::*;
use crate::scenario::model::{Origin, OriginDefault, RealServer, Service};
use crate::scenario::raw::RawOrigin;
use crate::scenario::raw::{RawScenario, RawService};
use crate::scenario::validate::{self as v, span};

/// `name` from the file, else `default_name` (the file stem); either must be usable as a lab label.
pub(super) fn scenario_name(r: &RawScenario, default_name: &str, p: &mut Problems<'_>) -> String {
    let name = r
        .top
        .name
        .as_ref()
        .map_or_else(|| default_name.to_string(), |n| n.get_ref().clone());
    if !v::lab_label(&name) {
        match &r.top.name {
            Some(n) => p.push(
                span(n),
                format!("`name` = \"{name}\" cannot name a lab"),
                Some(v::LAB_LABEL_HINT.into()),
            ),
            None => p.push(
                None,
                format!("the scenario is named \"{name}\" after its file, which cannot name a lab"),
                Some(format!("give it a `name`: {}", v::LAB_LABEL_HINT)),
            ),
        }
    }
    name
}

/// Every `[service]` / `[[service]]`, with `vip` and `real_servers` left for later stages.
pub(super) fn resolve_all(r: &RawScenario, engine: EngineChoice, p: &mut Problems<'_>) -> Vec<Service> {
    let first = resolve(r, &r.service, engine, p);
    let mut services = vec![first];
    for (i, s) in r.more_services.iter().enumerate() {
        let mut svc = resolve(r, s, engine, p);
        // Unnamed, on a VIP of its own, with a port another service has: named with its VIP.
        if let (None, Some(vip)) = (
            &s.name,
            s.vip.as_ref().filter(|_| stated_vip(r, i + 1) != stated_vip(r, 0)),
        ) {
            if services.iter().any(|o| o.name == svc.name) {
                svc.name = format!("{}/{}:{}", svc.protocol, vip.get_ref(), svc.port);
            }
        }
        let header = r.service_spans.get(i + 1).cloned().flatten();
        // `direct` has no director: it cannot share a scenario with services that need one.
        if let Some(m) = s
            .mode
            .as_ref()
            .filter(|_| (svc.mode == Mode::Direct) != (services[0].mode == Mode::Direct))
        {
            p.push(
                span(m),
                format!(
                    "service \"{}\" has mode {}, but the first service has {}",
                    svc.name, svc.mode, services[0].mode
                ),
                Some("mode \"direct\" has no director, so every service of its scenario is direct: drop `mode`".into()),
            );
            svc.mode = services[0].mode;
        }
        // A later service without `mode` keeps the first's.
        if s.mode.is_none() {
            svc.mode = services[0].mode;
        }
        let vip = stated_vip(r, i + 1);
        if let Some(same) = services
            .iter()
            .enumerate()
            .find(|(j, o)| {
                // A fwmark service is keyed by its mark (fwmark.rs checks those), not by a port.
                !by_mark(r, *j)
                    && !by_mark(r, i + 1)
                    && o.protocol == svc.protocol
                    && o.port == svc.port
                    && stated_vip(r, *j) == vip
            })
            .map(|(_, o)| o)
        {
            p.push(
                s.port.as_ref().map(|p| p.span()).or(header.clone()),
                format!(
                    "services \"{}\" and \"{}\" are both {}/{}",
                    same.name, svc.name, svc.protocol, svc.port
                ),
                Some("each service on one VIP needs its own port or protocol".into()),
            );
        } else if let Some(same) = services
            .iter()
            .enumerate()
            // An unnamed fwmark service is named after its mark later (fwmark.rs).
            .find(|(j, o)| {
                o.name == svc.name && !(s.name.is_none() && by_mark(r, i + 1)) && !(unnamed(r, *j) && by_mark(r, *j))
            })
            .map(|(_, o)| o)
        {
            p.push(
                s.name.as_ref().map(|n| n.span()).or(header),
                format!("two services are named \"{}\"", same.name),
                Some("give each service its own `name`".into()),
            );
        }
        services.push(svc);
    }
    services
}

/// The VIP service `index` states (a later one without `vip` is on the first's), as far as it
/// parses: two services may share a port only on two VIPs.
/// Whether service `index` (0 = `[service]`) is a fwmark service.
fn by_mark(r: &RawScenario, index: usize) -> bool {
    match index {
        0 => r.service.fwmark.is_some(),
        i => r.more_services.get(i - 1).is_some_and(|s| s.fwmark.is_some()),
    }
}

fn unnamed(r: &RawScenario, index: usize) -> bool {
    match index {
        0 => r.service.name.is_none(),
        i => r.more_services.get(i - 1).is_some_and(|s| s.name.is_none()),
    }
}

fn stated_vip(r: &RawScenario, index: usize) -> Option<Ipv4Addr> {
    let own = match index {
        0 => r.service.vip.as_ref(),
        i => r.more_services.get(i - 1).and_then(|s| s.vip.as_ref()),
    };
    own.or(r.service.vip.as_ref()).and_then(|t| t.get_ref().parse().ok())
}

/// One service table, with `vip` left unspecified.
fn resolve(r: &RawScenario, s: &RawService, engine: EngineChoice, p: &mut Problems<'_>) -> Service {
    let mode = v::keyword(p, s.mode.as_ref(), Mode::Dr);
    if let (Some(e), EngineChoice::Kernel, Mode::FullNat) = (&r.top.engine, engine, mode) {
        p.push(
            span(e),
            "engine = \"kernel\" cannot run mode \"fullnat\": FULLNAT is not in mainline IPVS",
            Some("use engine = \"auto\" or \"embedded\"".into()),
        );
    }
    let protocol = v::keyword(p, s.protocol.as_ref(), Protocol::Tcp);
    let scheduler = v::keyword(p, s.scheduler.as_ref(), Scheduler::Wlc);
    let mut flags = Vec::new();
    for f in s.flags.iter().flatten() {
        let Some(flag) = SchedFlag::from_word(f.get_ref()) else {
            v::keyword(p, Some(f), SchedFlag::ShFallback);
            continue;
        };
        if flag.scheduler() != scheduler {
            p.push(
                span(f),
                format!(
                    "flag `{flag}` only affects the `{}` scheduler, not `{scheduler}`",
                    flag.scheduler()
                ),
                Some(format!("remove it, or set scheduler = \"{}\"", flag.scheduler())),
            );
        }
        flags.push(flag);
    }
    let port: u16 = v::int_in(p, s.port.as_ref(), "port", 1, 65535, 80);
    let persistence_secs: u64 = v::int_in(p, s.persistence.as_ref(), "persistence", 0, 31_536_000, 0);
    let persistence = (persistence_secs > 0).then(|| Duration::from_secs(persistence_secs));
    let netmask_prefix = s
        .persistence_netmask
        .as_ref()
        .and_then(|m| v::persistence_netmask(p, m));
    let persistence_prefix = netmask_prefix.unwrap_or(32);
    if let (Some(m), Some(_), None) = (&s.persistence_netmask, netmask_prefix, persistence) {
        p.push(
            span(m),
            "`persistence_netmask` without `persistence` has no effect",
            Some("set `persistence` = seconds (ipvsadm -p)".into()),
        );
    }
    let one_packet = s.one_packet.as_ref().is_some_and(|b| *b.get_ref());
    if let Some(op) = s
        .one_packet
        .as_ref()
        .filter(|b| *b.get_ref() && protocol != Protocol::Udp)
    {
        p.push(
            span(op),
            "`one_packet` (ipvsadm -o) applies to UDP services only",
            Some("set protocol = \"udp\" or remove it".into()),
        );
    }
    let real_port = s
        .real_port
        .as_ref()
        .map(|rp| v::int_in(p, Some(rp), "real_port", 1, 65535, port));
    let name = s
        .name
        .as_ref()
        .map_or_else(|| format!("{protocol}/{port}"), |n| n.get_ref().clone());
    Service {
        name,
        vip: Ipv4Addr::UNSPECIFIED,
        port,
        protocol,
        mode,
        scheduler,
        flags,
        persistence,
        persistence_prefix,
        one_packet,
        real_servers: Vec::new(),
        real_port,
        expect: None,
        origin: s.origin.as_ref().map(|o| origin(o, p)),
        fwmark: None,
        health: None,
    }
}

/// `[service.origin]`: the file, its line and the defaults an import applied.
fn origin(o: &RawOrigin, p: &mut Problems<'_>) -> Origin {
    let line = |p: &mut Problems<'_>, l: Option<&crate::scenario::raw::S<i64>>| {
        l.map(|l| v::int_in(p, Some(l), "line", 1, i64::from(u32::MAX), 1u32))
    };
    let file = o.file.as_ref().map_or_else(String::new, |f| f.get_ref().clone());
    let at = line(p, o.line.as_ref());
    let mut defaults = Vec::new();
    for d in o.defaults.iter().flatten() {
        let Some(sets) = &d.sets else {
            p.push(
                d.said.as_ref().map(|s| s.span()),
                "a [service.origin] default without `sets`",
                Some("name the key it set: `sets = \"persistence\"`".into()),
            );
            continue;
        };
        defaults.push(OriginDefault {
            sets: v::keyword(p, Some(sets), DefaultedKey::Mode),
            line: line(p, d.line.as_ref()),
            said: d.said.as_ref().map_or_else(String::new, |s| s.get_ref().clone()),
        });
    }
    Origin {
        file,
        line: at,
        defaults,
    }
}

/// Each service's `vip` (chosen by the `vips` stage) and real servers.
pub(super) fn finish(
    r: &RawScenario,
    services: &mut [Service],
    vips: &[Ipv4Addr],
    real_servers: &[RealServer],
    p: &mut Problems<'_>,
) {
    let all: Vec<String> = real_servers.iter().map(|rs| rs.name.clone()).collect();
    let raws = std::iter::once(&r.service).chain(&r.more_services);
    for ((svc, raw), vip) in services.iter_mut().zip(raws).zip(vips) {
        svc.vip = *vip;
        svc.real_servers = match &raw.real_servers {
            None => all.clone(),
            Some(names) => {
                let mut picked = Vec::new();
                for n in names {
                    if !all.contains(n.get_ref()) {
                        p.push(
                            span(n),
                            format!(
                                "service \"{}\" names real server \"{}\", which the scenario does not have",
                                svc.name,
                                n.get_ref()
                            ),
                            super::reference_hint(n.get_ref(), &all),
                        );
                    } else if !picked.contains(n.get_ref()) {
                        picked.push(n.get_ref().clone());
                    }
                }
                // Scenario order, whatever the list's.
                all.iter().filter(|a| picked.contains(a)).cloned().collect()
            }
        };
    }
}

/// A real server cannot be in a nat service and a dr or tun one: its one default route goes
/// through the director for NAT, whose kernel then drops the DR/TUN replies (their source is
/// the director's own VIP) as martians. Reported on the later service's `mode`.
pub(super) fn check_mode_mix(r: &RawScenario, services: &[Service], p: &mut Problems<'_>) {
    let direct_reply = |m: Mode| matches!(m, Mode::Dr | Mode::Tun);
    for (i, later) in services.iter().enumerate().skip(1) {
        let clash = services[..i].iter().find_map(|earlier| {
            let nat = (earlier.mode == Mode::Nat && direct_reply(later.mode))
                || (later.mode == Mode::Nat && direct_reply(earlier.mode));
            let shared = later.real_servers.iter().find(|n| earlier.has_real_server(n));
            shared.filter(|_| nat).map(|rs| (earlier, rs))
        });
        if clash.is_none() {
            fullnat_beside_direct_reply(r, services, i, p);
        }
        let Some((earlier, rs)) = clash else { continue };
        let raw = r.more_services.get(i - 1);
        let at = raw
            .and_then(|s| s.mode.as_ref().map(|m| m.span()))
            .or_else(|| r.service_spans.get(i).cloned().flatten());
        let (nat, other) = if later.mode == Mode::Nat {
            (later, earlier)
        } else {
            (earlier, later)
        };
        p.push(
            at,
            format!(
                "real server \"{rs}\" is in service \"{}\" (mode {}) and in service \"{}\" (mode {}): \
                 as a NAT real server it routes its replies through the director, as a {} real server it \
                 answers from the VIP straight to the client, and a director that is its gateway drops a \
                 source that is its own VIP as martian",
                earlier.name,
                earlier.mode,
                later.name,
                later.mode,
                other.mode.as_str().to_uppercase()
            ),
            Some(format!(
                "give service \"{}\" and service \"{}\" real servers of their own, or one mode",
                nat.name, other.name
            )),
        );
    }
}

/// A real server in a fullnat service and a dr/tun one sits behind the director (FULLNAT's
/// side) with no route to the clients its DR/TUN replies go to: a warning, kept as written.
fn fullnat_beside_direct_reply(r: &RawScenario, services: &[Service], i: usize, p: &mut Problems<'_>) {
    let later = &services[i];
    let direct_reply = |m: Mode| matches!(m, Mode::Dr | Mode::Tun);
    let Some((earlier, rs)) = services[..i].iter().find_map(|earlier| {
        let pair = (earlier.mode == Mode::FullNat && direct_reply(later.mode))
            || (later.mode == Mode::FullNat && direct_reply(earlier.mode));
        let shared = later.real_servers.iter().find(|n| earlier.has_real_server(n))?;
        pair.then_some((earlier, shared))
    }) else {
        return;
    };
    let at = r
        .more_services
        .get(i - 1)
        .and_then(|s| s.mode.as_ref().map(|m| m.span()))
        .or_else(|| r.service_spans.get(i).cloned().flatten());
    p.warn(
        at,
        format!(
            "real server \"{rs}\" is in service \"{}\" (mode {}) and in service \"{}\" (mode {}): it sits behind \
             the director on the FULLNAT side, where its DR/TUN replies reach the clients only through a router",
            earlier.name, earlier.mode, later.name, later.mode
        ),
        Some(format!(
            "route \"{rs}\" to the clients through a [[router]] (not the director: it drops a source that is its own VIP), or give the services real servers of their own"
        )),
    );
}

/// `[traffic] services`: which services the requests go to (every one by default), by index.
pub(super) fn traffic_targets(r: &RawScenario, services: &[Service], p: &mut Problems<'_>) -> Vec<usize> {
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let Some(listed) = &r.traffic.services else {
        if let Some(other) = services.iter().position(|s| s.protocol != services[0].protocol) {
            p.push(
                r.service_spans.get(other).cloned().flatten(),
                format!(
                    "service \"{}\" is {}, service \"{}\" {}: the traffic speaks one protocol",
                    services[other].name, services[other].protocol, services[0].name, services[0].protocol
                ),
                Some("name the services the requests go to in [traffic] `services`".into()),
            );
        }
        return (0..services.len()).collect();
    };
    let mut picked: Vec<usize> = Vec::new();
    for n in listed {
        match names.iter().position(|s| s == n.get_ref()) {
            None => p.push(
                span(n),
                format!(
                    "[traffic] names service \"{}\", which the scenario does not have",
                    n.get_ref()
                ),
                super::reference_hint(n.get_ref(), &names),
            ),
            Some(i) if picked.contains(&i) => {}
            Some(i) => {
                if let Some(&first) = picked
                    .first()
                    .filter(|&&f| services[f].protocol != services[i].protocol)
                {
                    p.push(
                        span(n),
                        format!(
                            "service \"{}\" is {}, \"{}\" {}: the traffic speaks one protocol",
                            services[i].name, services[i].protocol, services[first].name, services[first].protocol
                        ),
                        Some("send to the services of one protocol".into()),
                    );
                }
                picked.push(i);
            }
        }
    }
    if picked.is_empty() && listed.is_empty() {
        p.push(
            None,
            "[traffic] `services` is empty",
            Some(format!(
                "name one or more of: {}",
                crate::scenario::suggest::list(&names.iter().map(String::as_str).collect::<Vec<_>>())
            )),
        );
    }
    if picked.is_empty() {
        picked.push(0);
    }
    picked
}
