//! Cause 12: keepalived settings whose defaults change or break the service.
//! - `vrrp_strict` without `accept`, the most reported one (reference keepalived.md §1.7 and
//!   §5): strict mode turns on no_accept for every instance that does not own its VIP, and
//!   keepalived then drops all traffic to and from the VIP on the master with nftables, while
//!   still answering ARP for it: the VIP resolves, keepalived says MASTER, and nothing answers.
//! - A silent default of an imported keepalived.conf (its `[service.origin]`) that is the root
//!   of a cause another rule sees: port 0 makes the service persistent for 360 s, no `lb_kind`
//!   makes it NAT, no `protocol` makes it UDP (2.2.7), no `lb_algo` makes it wlc.

use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::KeepalivedConfig;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    strict_without_accept(ev, spread).or_else(|| imported_default(ev, spread))
}

/// The rule that sees what a defaulted key can cause, and the fix in keepalived.conf terms.
fn consequence(sets: &str, said: &str) -> Option<(super::Rule, String)> {
    Some(match sets {
        "persistence" | "port" if said.contains("zero port") => (
            super::persistence::check,
            "give the virtual_server its port (`virtual_server VIP 80`): keepalived makes a port-0 service persistent for 360 s; for all ports with no stickiness use a fwmark service".into(),
        ),
        "persistence" => (
            super::persistence::check,
            "state `persistence_timeout` in the virtual_server, or delete it, rather than leaving it to a default".into(),
        ),
        "mode" => (
            super::nat_return_path::check,
            "set `lb_kind DR` (or TUN) in the virtual_server, as the real servers are set up: without `lb_kind` keepalived makes the service NAT".into(),
        ),
        "protocol" => (
            super::udp_flow::check,
            "set `protocol TCP` in the virtual_server: without it keepalived 2.2.7 makes the service UDP (\"no protocol set - defaulting to UDP\")".into(),
        ),
        "scheduler" => (
            super::scheduler_arithmetic::check,
            "set `lb_algo` in the virtual_server: without it keepalived uses wlc".into(),
        ),
        "real_port" => (
            super::port_remap::check,
            "keepalived resets a DR/TUN real server's port to the service's: run the real server on that port, or use NAT to remap".into(),
        ),
        _ => return None,
    })
}

/// An imported default that is the root of a cause that fires.
fn imported_default(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    svc.imported_defaults.iter().find_map(|d| {
        let (rule, fix) = consequence(&d.sets, &d.said)?;
        let seen = rule(ev, spread)?;
        let at = match d.line {
            Some(line) => format!("{}:{line}", d.file),
            None => d.file.clone(),
        };
        Some(
            Finding::new(
                ID,
                format!("a keepalived default set `{}`, and that is why [{}]", d.sets, seen.id),
                seen.explains,
            )
            .evidence([
                format!("{at}: keepalived -t says \"{}\"", d.said),
                format!(
                    "the scenario's `{}` is that default, not the file's own choice (see [service.origin])",
                    d.sets
                ),
                format!("with it: {}", seen.title),
            ])
            .fix([fix]),
        )
    })
}

fn strict_without_accept(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let vrrp = ev.vrrp.as_ref()?;
    // A master that took the VIP without accepting its traffic.
    let refusing: Vec<_> = vrrp
        .nodes
        .iter()
        .filter(|n| n.no_accept && vrrp.masters.contains(&n.director))
        .collect();
    if refusing.is_empty() || spread.errors == 0 {
        return None;
    }
    let vip = ev.vip().map_or("the VIP".to_string(), |v| v.to_string());
    let mut lines = Vec::new();
    for n in &refusing {
        let why = if n.strict {
            "vrrp_strict without `accept` (strict mode accepts only for the address owner, priority 255)"
        } else {
            "no_accept"
        };
        lines.push(format!(
            "director {} is MASTER of {} (priority {}) with {why}: it drops every packet to and from {vip}",
            n.director, n.instance, n.priority
        ));
        for (_, line) in vrrp.firewall_lines.iter().filter(|(d, _)| *d == n.director) {
            lines.push(format!("{}: {line}", n.director));
        }
    }
    lines.push(format!(
        "{} of {} requests failed; ARP for {vip} is still answered, so the clients send and nothing replies",
        spread.errors, spread.requests
    ));
    let explains = f64::from(spread.errors) / f64::from(spread.requests.max(1));
    let instances: Vec<&str> = refusing.iter().map(|n| n.instance.as_str()).collect();
    Some(
        Finding::new(
            ID,
            format!("vrrp_strict without accept: the master drops all traffic to {vip}"),
            explains.max(0.5),
        )
        .evidence(lines)
        .fix([
            format!(
                "add `accept` to vrrp_instance {} (keepalived.conf), then restart keepalived",
                instances.join(", ")
            ),
            "or drop `vrrp_strict` from global_defs: it also forbids unicast peers, authentication and preempt_delay"
                .to_string(),
            format!("check on the master: `nft list table ip keepalived` shows `ip daddr @vips drop` for {vip}"),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{VrrpEvidence, VrrpNodeEvidence};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;
    use std::net::Ipv4Addr;

    fn node(director: &str, no_accept: bool) -> VrrpNodeEvidence {
        VrrpNodeEvidence {
            director: director.into(),
            instance: "VI_1".into(),
            interface: "eth0".into(),
            address: Ipv4Addr::new(192, 0, 2, 1),
            vrid: 51,
            priority: 150,
            version: 2,
            advert_int_ms: 1000,
            auth: false,
            unicast_peers: Vec::new(),
            strict: no_accept,
            no_accept,
        }
    }

    fn strict_master(no_accept: bool, failed: bool) -> Evidence {
        let mut ev = sample::healthy_dr();
        if failed {
            for r in &mut ev.records {
                r.backend = None;
                r.error = Some("timeout".into());
            }
        }
        ev.vrrp = Some(VrrpEvidence {
            implementation: "keepalived".into(),
            nodes: vec![node("lvs1", no_accept), node("lvs2", no_accept)],
            masters: vec!["lvs1".into()],
            firewall_lines: vec![("lvs1".into(), "(VI_1) setting firewall drop rule".into())],
            gateway: None,
            ..VrrpEvidence::default()
        });
        ev
    }

    #[test]
    fn a_strict_master_without_accept_is_named_with_its_firewall_line() {
        let ev = strict_master(true, true);
        let f = check(&ev, &summarise(&ev)).expect("fires");
        assert!(
            f.evidence[0]
                .starts_with("director lvs1 is MASTER of VI_1 (priority 150) with vrrp_strict without `accept`"),
            "{:?}",
            f.evidence
        );
        assert_eq!(f.evidence[1], "lvs1: (VI_1) setting firewall drop rule");
        assert!(f.fix[0].starts_with("add `accept` to vrrp_instance VI_1"));
    }

    #[test]
    fn silent_when_the_master_accepts_or_nothing_failed() {
        let accepting = strict_master(false, true);
        assert!(check(&accepting, &summarise(&accepting)).is_none());
        let fine = strict_master(true, false);
        assert!(check(&fine, &summarise(&fine)).is_none());
    }

    fn port_zero_default() -> crate::diagnose::evidence::ImportedDefault {
        crate::diagnose::evidence::ImportedDefault {
            sets: "persistence".into(),
            file: "keepalived.conf".into(),
            line: Some(12),
            said: "Virtual server [192.0.2.100]:tcp:0: zero port only valid for persistent services - setting".into(),
        }
    }

    #[test]
    fn an_imported_default_behind_a_firing_cause_is_named_with_its_line_and_fix() {
        let mut ev = sample::persistence();
        ev.service.as_mut().unwrap().imported_defaults.push(port_zero_default());
        let spread = summarise(&ev);
        let f = check(&ev, &spread).expect("fires");
        let sticky = crate::diagnose::rules::persistence::check(&ev, &spread).unwrap();
        assert_eq!(
            f.explains, sticky.explains,
            "as much of the skew as the cause it sets up"
        );
        assert!(
            f.title.contains("`persistence`") && f.title.contains("[persistence]"),
            "{}",
            f.title
        );
        assert!(
            f.evidence[0].starts_with("keepalived.conf:12: keepalived -t says"),
            "{:?}",
            f.evidence
        );
        assert!(f.fix[0].contains("give the virtual_server its port"), "{:?}", f.fix);
        // Ranked before the cause it explains.
        let d = crate::diagnose::diagnose(&ev);
        assert_eq!(d.ids()[..2], ["keepalived-config", "persistence"], "{:?}", d.ids());
    }

    #[test]
    fn an_imported_default_stays_silent_without_the_cause_or_without_the_default() {
        // The same persistent service written by hand: persistence alone.
        let plain = sample::persistence();
        assert!(check(&plain, &summarise(&plain)).is_none());
        // The default applied, but the spread is fine: nothing it caused.
        let mut healthy = sample::healthy_dr();
        healthy
            .service
            .as_mut()
            .unwrap()
            .imported_defaults
            .push(port_zero_default());
        assert!(check(&healthy, &summarise(&healthy)).is_none());
        // A default with no known consequence.
        let mut other = sample::persistence();
        let mut d = port_zero_default();
        d.sets = "something".into();
        other.service.as_mut().unwrap().imported_defaults.push(d);
        assert!(check(&other, &summarise(&other)).is_none());
    }
}
