//! Cause 5 (its firewall part): a real server's own firewall drops what the director hands it
//! (DR/TUN: packets to the VIP; NAT: to its RIP and port). Health checks to the RIP may still
//! pass, so it keeps its share of the requests, and each of them times out.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::common::*;
use crate::diagnose::evidence::{Evidence, FirewallRule, Mode, Proto, RealServerEvidence, ServiceEvidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::Firewall;

/// Base chains the requests to a real server pass (a chain without a hook is jumped to).
const INBOUND_HOOKS: &[&str] = &["prerouting", "input", "ingress"];

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let sources = client_sources(ev);
    let fair = f64::from(spread.requests) / spread.eligible.max(1) as f64;
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    let mut bad = Vec::new();
    for rs in &ev.real_servers {
        let Some(firewall) = ev.firewall_of(&rs.name) else {
            continue;
        };
        let (Some(addr), Some(port)) = (service_address_on(ev, rs), service_port_on(ev, rs)) else {
            continue;
        };
        let answered = spread.per_backend.get(&rs.name).copied().unwrap_or(0);
        if f64::from(answered) >= fair / 2.0 {
            continue;
        }
        let drops: Vec<&FirewallRule> = firewall
            .rules
            .iter()
            .filter(|r| drops_service_traffic(r, svc.proto, addr, port, &sources))
            .collect();
        // A counter that counted is proof; a rule without one only where nothing came back.
        let counted: Vec<&&FirewallRule> = drops.iter().filter(|r| r.packets.is_some_and(|n| n > 0)).collect();
        let cited: Vec<&&FirewallRule> = if !counted.is_empty() {
            counted
        } else if answered == 0 {
            drops.iter().filter(|r| r.packets.is_none()).collect()
        } else {
            Vec::new()
        };
        let Some(first) = cited.first() else { continue };
        for rule in cited.iter().take(2) {
            lines.push(format!(
                "{}'s firewall {} {} to {addr}:{port}: {}",
                rs.name,
                rule.verdict_verb(),
                svc.proto.name(),
                rule.cited()
            ));
        }
        lines.push(format!(
            "{} answered {answered} of {} requests (an even share is {fair:.0})",
            rs.name, spread.requests
        ));
        fixes.push(fix(rs, svc, first, addr, port));
        bad.push(rs.name.clone());
    }
    if bad.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            ID,
            format!(
                "A real server's firewall drops the service's traffic: {}",
                bad.join(", ")
            ),
            share_explains(bad.len(), ev.real_servers.len()),
        )
        .evidence(capped(lines))
        .fix(fixes),
    )
}

/// Whether `rule` would drop a `proto` request arriving at `addr:port` from one of `sources`
/// (any source when empty).
pub fn drops_service_traffic(
    rule: &FirewallRule,
    proto: Proto,
    addr: Ipv4Addr,
    port: u16,
    sources: &BTreeSet<Ipv4Addr>,
) -> bool {
    rule.hook.as_deref().is_none_or(|h| INBOUND_HOOKS.contains(&h))
        && rule.admits("ip daddr", addr)
        && rule.admits_dport(proto, port)
        && (sources.is_empty() || sources.iter().any(|s| rule.admits("ip saddr", *s)))
}

/// The addresses requests come from at the real servers: the clients' (FULLNAT replaces them).
fn client_sources(ev: &Evidence) -> BTreeSet<Ipv4Addr> {
    if ev.mode == Mode::FullNat {
        return BTreeSet::new();
    }
    ev.records
        .iter()
        .filter_map(|r| match r.source.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn fix(rs: &RealServerEvidence, svc: &ServiceEvidence, rule: &FirewallRule, addr: Ipv4Addr, port: u16) -> String {
    let proto = svc.proto.name().to_ascii_lowercase();
    format!(
        "on {}: accept the service before that rule, `nft insert rule {} {} ip daddr {addr} {proto} dport {port} accept`, or delete the rule (`nft -a list chain {} {}` shows its handle, then `nft delete rule {} {} handle N`)",
        rs.name, rule.table, rule.chain, rule.table, rule.chain, rule.table, rule.chain
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{ConnEvidence, FirewallEvidence, HostRole, MatchValue, RuleMatch};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn rule(text: &str, hook: &str, packets: Option<u64>, matches: Vec<RuleMatch>) -> FirewallRule {
        FirewallRule {
            table: "inet filter".into(),
            chain: "in".into(),
            hook: Some(hook.into()),
            text: text.into(),
            verdict: "drop".into(),
            packets,
            matches,
        }
    }

    fn on(field: &str, value: MatchValue) -> RuleMatch {
        RuleMatch {
            field: field.into(),
            equal: true,
            values: vec![value],
        }
    }

    fn vip_drop(packets: Option<u64>) -> FirewallRule {
        rule(
            "ip daddr 192.0.2.100 tcp dport 80 counter drop",
            "input",
            packets,
            vec![
                on("ip daddr", MatchValue::Net(sample::VIP.into())),
                on("tcp dport", MatchValue::Ports(80, 80)),
            ],
        )
    }

    /// rs3's firewall has `rule`; its requests failed.
    fn rs3_with(rule: FirewallRule) -> Evidence {
        let mut ev = sample::healthy_dr();
        for r in ev.records.iter_mut().filter(|r| r.backend.as_deref() == Some("rs3")) {
            r.backend = None;
            r.error = Some("timed out".into());
        }
        ev.firewalls = vec![FirewallEvidence {
            host: "rs3".into(),
            role: HostRole::RealServer,
            rules: vec![rule],
        }];
        ev
    }

    #[test]
    fn fires_for_a_server_dropping_the_vip_with_a_counter() {
        let ev = rs3_with(vip_drop(Some(24)));
        let finding = check(&ev, &summarise(&ev)).expect("firewall must fire");
        assert_eq!(
            finding.evidence,
            [
                "rs3's firewall drops TCP to 192.0.2.100:80: inet filter in: `ip daddr 192.0.2.100 tcp dport 80 counter drop` (24 packets dropped)",
                "rs3 answered 0 of 30 requests (an even share is 10)",
            ]
        );
        assert!(finding.fix[0].starts_with(
            "on rs3: accept the service before that rule, `nft insert rule inet filter in ip daddr 192.0.2.100 tcp dport 80 accept`"
        ));
        // It explains more than the stuck handshakes server-down sees on the same server.
        let mut with_conns = ev.clone();
        let conn = |dest: u8, state: &str| ConnEvidence {
            proto: Proto::Tcp,
            client: sample::CLIENT,
            client_port: 40000 + u16::from(dest),
            dest: sample::rip(dest),
            dest_port: 80,
            state: state.into(),
            expires_secs: Some(50),
        };
        with_conns.ipvs.as_mut().unwrap().conns = vec![conn(1, "FIN_WAIT"), conn(3, "SYN_RECV"), conn(3, "SYN_RECV")];
        let d = crate::diagnose::diagnose(&with_conns);
        assert_eq!(d.ids()[..2], ["firewall", "server-down"]);
        // A catch-all drop at the end of an input chain is the same story.
        let ev = rs3_with(rule("counter drop", "input", Some(3), vec![]));
        assert!(check(&ev, &summarise(&ev)).is_some());
    }

    #[test]
    fn a_rule_without_counter_counts_only_where_nothing_came_back() {
        let ev = rs3_with(vip_drop(None));
        let finding = check(&ev, &summarise(&ev)).expect("firewall must fire");
        assert!(finding.evidence[0].ends_with("(no counter)"), "{:?}", finding.evidence);
        let mut ev = rs3_with(vip_drop(None));
        ev.records.truncate(27);
        ev.records.push(sample::record(27, "rs3"));
        ev.records.push(sample::record(28, "rs3"));
        ev.records.push(sample::record(29, "rs3"));
        ev.records.push(sample::record(30, "rs3"));
        assert_eq!(
            check(&ev, &summarise(&ev)),
            None,
            "rs3 answered: the rule did not drop these"
        );
    }

    #[test]
    fn silent_for_drops_of_other_traffic_or_an_even_spread() {
        // Another port, another address, an outbound chain, a counter at 0, another source.
        let ssh = rule(
            "tcp dport 22 counter drop",
            "input",
            Some(9),
            vec![on("tcp dport", MatchValue::Ports(22, 22))],
        );
        let rip_only = rule(
            "ip daddr 192.0.2.13 counter drop",
            "input",
            Some(9),
            vec![on("ip daddr", MatchValue::Net("192.0.2.13/32".parse().unwrap()))],
        );
        let output = rule("counter drop", "output", Some(9), vec![]);
        let stranger = rule(
            "ip saddr 10.9.9.9 counter drop",
            "input",
            Some(9),
            vec![on("ip saddr", MatchValue::Net("10.9.9.9/32".parse().unwrap()))],
        );
        for r in [ssh, rip_only, output, stranger, vip_drop(Some(0))] {
            let ev = rs3_with(r.clone());
            assert_eq!(check(&ev, &summarise(&ev)), None, "{}", r.text);
        }
        // The drop counted, but rs3 got its share: something else was dropped.
        let mut ev = sample::healthy_dr();
        ev.firewalls = rs3_with(vip_drop(Some(5))).firewalls;
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn nat_servers_are_judged_on_their_rip_and_port() {
        let mut ev = rs3_with(rule(
            "ip daddr 192.0.2.13 tcp dport 80 counter drop",
            "input",
            Some(4),
            vec![
                on("ip daddr", MatchValue::Net("192.0.2.13/32".parse().unwrap())),
                on("tcp dport", MatchValue::Ports(80, 80)),
            ],
        ));
        ev.mode = Mode::Nat;
        assert!(check(&ev, &summarise(&ev)).is_some());
        ev.mode = Mode::Dr;
        assert_eq!(check(&ev, &summarise(&ev)), None, "in DR the packets are for the VIP");
    }
}
