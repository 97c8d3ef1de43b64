//! Cause 12: keepalived settings whose defaults change or break the service. Here the most
//! reported one (reference keepalived.md §1.7 and §5): `vrrp_strict` without `accept`.
//! Strict mode turns on no_accept for every instance that does not own its VIP, and
//! keepalived then drops all traffic to and from the VIP on the master with nftables, while
//! still answering ARP for it: the VIP resolves, keepalived says MASTER, and nothing answers.

use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::KeepalivedConfig;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
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
}
