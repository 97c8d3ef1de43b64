//! Cause 13: in DR and TUN a real server answers the client itself, from the VIP. A router
//! (or a hypervisor's port filter) on the way that drops forwarded packets from an address
//! it does not expect there, by a match on the source or a reverse-path check
//! (`fib saddr . iif oif missing`), eats those replies: the requests time out although the
//! server answered them.

use super::common::*;
use crate::diagnose::evidence::{Evidence, FirewallRule, HostRole, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::AntiSpoofing;

/// Base chains forwarded packets pass (a chain without a hook is jumped to).
const FORWARD_HOOKS: &[&str] = &["prerouting", "forward", "ingress"];

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    if !matches!(ev.mode, Mode::Dr | Mode::Tun) || spread.errors == 0 {
        return None;
    }
    let vip = ev.vip()?;
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    for firewall in ev.firewalls.iter().filter(|f| f.role == HostRole::Router) {
        let drops: Vec<&FirewallRule> = firewall
            .rules
            .iter()
            .filter(|r| r.hook.as_deref().is_none_or(|h| FORWARD_HOOKS.contains(&h)))
            .filter(|r| r.packets.is_some_and(|n| n > 0))
            .filter(|r| {
                r.is_reverse_path_check() || (r.matches_on("ip saddr").next().is_some() && r.admits("ip saddr", vip))
            })
            .collect();
        for rule in &drops {
            lines.push(format!(
                "router {} {} forwarded packets sourced from the VIP {vip}: {}",
                firewall.host,
                rule.verdict_verb(),
                rule.cited()
            ));
            fixes.push(if rule.is_reverse_path_check() {
                format!(
                    "on {}: the reverse-path check cannot route {vip} back out where the replies arrive; accept them first, `nft insert rule {} {} ip saddr {vip} accept`, or route {vip} towards the real servers",
                    firewall.host, rule.table, rule.chain
                )
            } else {
                format!(
                    "on {}: let the real servers' replies from {vip} through, `nft insert rule {} {} ip saddr {vip} accept` (a cloud: allowed address pairs / source-destination check off for the VIP on every real server's port), or use NAT mode",
                    firewall.host, rule.table, rule.chain
                )
            });
        }
    }
    if lines.is_empty() {
        return None;
    }
    let silent: Vec<&str> = spread
        .per_backend
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| name.as_str())
        .collect();
    lines.push(format!(
        "{} of {} requests failed{}",
        spread.errors,
        spread.requests,
        if silent.is_empty() {
            String::new()
        } else {
            format!("; no answer ever came back from {}", silent.join(", "))
        }
    ));
    let explains = if silent.is_empty() {
        0.3
    } else {
        share_explains(silent.len(), ev.real_servers.len())
    };
    Some(
        Finding::new(
            ID,
            "A router drops the real servers' replies sourced from the VIP",
            explains,
        )
        .evidence(capped(lines))
        .fix(fixes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{FirewallEvidence, MatchValue, RuleMatch};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn forward_rule(text: &str, packets: Option<u64>, matches: Vec<RuleMatch>) -> FirewallRule {
        FirewallRule {
            table: "inet edge".into(),
            chain: "fwd".into(),
            hook: Some("forward".into()),
            text: text.into(),
            verdict: "drop".into(),
            packets,
            matches,
        }
    }

    fn saddr_vip(packets: Option<u64>) -> FirewallRule {
        forward_rule(
            "ip saddr 192.0.2.100 counter drop",
            packets,
            vec![RuleMatch {
                field: "ip saddr".into(),
                equal: true,
                values: vec![MatchValue::Net(sample::VIP.into())],
            }],
        )
    }

    fn reverse_path() -> FirewallRule {
        forward_rule(
            "fib saddr . iif oif missing counter drop",
            Some(12),
            vec![RuleMatch {
                field: "fib saddr . iif oif".into(),
                equal: true,
                values: vec![MatchValue::Word("missing".into())],
            }],
        )
    }

    /// The router `r1` has `rule`; rs2's and rs3's replies never came back.
    fn routed(rule: FirewallRule, role: HostRole) -> Evidence {
        let mut ev = sample::healthy_dr();
        for r in ev.records.iter_mut().filter(|r| r.backend.as_deref() != Some("rs1")) {
            r.backend = None;
            r.error = Some("timed out".into());
        }
        ev.firewalls = vec![FirewallEvidence {
            host: "r1".into(),
            role,
            rules: vec![rule],
        }];
        ev
    }

    #[test]
    fn fires_for_a_router_dropping_the_vip_as_source() {
        let ev = routed(saddr_vip(Some(40)), HostRole::Router);
        let finding = check(&ev, &summarise(&ev)).expect("anti-spoofing must fire");
        assert_eq!(
            finding.evidence,
            [
                "router r1 drops forwarded packets sourced from the VIP 192.0.2.100: inet edge fwd: `ip saddr 192.0.2.100 counter drop` (40 packets dropped)",
                "20 of 30 requests failed; no answer ever came back from rs2, rs3",
            ]
        );
        assert!(finding.fix[0].contains("`nft insert rule inet edge fwd ip saddr 192.0.2.100 accept`"));
        assert!(finding.explains > 0.5);
        let ev = routed(reverse_path(), HostRole::Router);
        let finding = check(&ev, &summarise(&ev)).expect("a reverse-path check counts too");
        assert!(finding.fix[0].contains("reverse-path check"));
    }

    #[test]
    fn silent_without_a_counted_drop_of_the_vip_on_a_router() {
        let other_source = forward_rule(
            "ip saddr 10.0.0.0/8 counter drop",
            Some(40),
            vec![RuleMatch {
                field: "ip saddr".into(),
                equal: true,
                values: vec![MatchValue::Net("10.0.0.0/8".parse().unwrap())],
            }],
        );
        let mut on_input = saddr_vip(Some(40));
        on_input.hook = Some("input".into());
        for (rule, role) in [
            (saddr_vip(Some(0)), HostRole::Router),
            (saddr_vip(None), HostRole::Router),
            (saddr_vip(Some(40)), HostRole::RealServer),
            (other_source, HostRole::Router),
            (on_input, HostRole::Router),
        ] {
            let ev = routed(rule.clone(), role);
            assert_eq!(check(&ev, &summarise(&ev)), None, "{} on {role:?}", rule.text);
        }
        // NAT replies leave through the director from the VIP, rewritten there: not this cause.
        let mut ev = routed(saddr_vip(Some(40)), HostRole::Router);
        ev.mode = Mode::Nat;
        assert_eq!(check(&ev, &summarise(&ev)), None);
        // Nothing failed: the drop caught something else.
        let mut ev = sample::healthy_dr();
        ev.firewalls = routed(saddr_vip(Some(40)), HostRole::Router).firewalls;
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
