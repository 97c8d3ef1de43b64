//! Stage 1: the scenario's name, the engine and the virtual service (all but its VIP, which
//! the `vips` stage chooses once addresses are known).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::scenario::diagnostic::Problems;
use crate::scenario::keywords::*;
use crate::scenario::model::Service;
use crate::scenario::raw::RawScenario;
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

/// The `[service]` table, with `vip` left unspecified.
pub(super) fn resolve(r: &RawScenario, engine: EngineChoice, p: &mut Problems<'_>) -> Service {
    let s = &r.service;
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
    Service {
        vip: Ipv4Addr::UNSPECIFIED,
        port,
        protocol,
        mode,
        scheduler,
        flags,
        persistence,
        persistence_prefix,
        one_packet,
    }
}
