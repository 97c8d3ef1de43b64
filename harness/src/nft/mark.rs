//! Firewall marks for fwmark services (`ipvsadm -f`): the match a scenario states, as the nft
//! rules lvslab loads into the director's namespace and as the test the embedded engine applies
//! itself (it reads frames on AF_PACKET, before netfilter, so it never sees an nft mark).
//!
//! The rules live in a table of lvslab's own, in a prerouting chain at mangle priority, the
//! place iptables' `-t mangle -A PREROUTING ... -j MARK` had in the LVS HOWTOs: the mark is set
//! before the routing decision (so `ip rule fwmark N` can deliver it locally) and before IPVS's
//! LOCAL_IN hook reads `skb->mark`.

use std::fmt::Write;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::lvs::Proto;

/// The nft table lvslab owns in a director's namespace.
pub const TABLE: &str = "lvslab_fwmark";

/// Routing table number for `ip rule add fwmark N lookup T` (`T = TABLE_BASE + N`): the
/// director's `local 0.0.0.0/0 dev lo` route for marked traffic whose destination is not local.
pub const ROUTE_TABLE_BASE: u32 = 1000;

/// One marking rule: packets of `protocol` to one of `addresses` (and, when `ports` is not
/// empty, to one of `ports`) get `mark`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRule {
    pub mark: u32,
    pub protocol: Proto,
    pub addresses: Vec<Ipv4Net>,
    /// Empty: every port.
    pub ports: Vec<u16>,
}

impl MarkRule {
    pub fn matches(&self, protocol: Proto, daddr: Ipv4Addr, dport: u16) -> bool {
        protocol == self.protocol
            && self.addresses.iter().any(|net| net.contains(&daddr))
            && (self.ports.is_empty() || self.ports.contains(&dport))
    }

    /// The rule in nft syntax, as `script` writes it.
    pub fn nft_rule(&self) -> String {
        let mut rule = format!("ip daddr {}", set(self.addresses.iter().map(|a| a.trunc().to_string())));
        if !self.ports.is_empty() {
            let _ = write!(
                rule,
                " {} dport {}",
                self.protocol.name().to_lowercase(),
                set(self.ports.iter().map(u16::to_string))
            );
        } else {
            let _ = write!(rule, " meta l4proto {}", self.protocol.name().to_lowercase());
        }
        let _ = write!(rule, " meta mark set {:#x}", self.mark);
        rule
    }
}

/// `{ a, b }`, or `a` alone.
fn set(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

/// The mark netfilter leaves on a packet after `rules` ran in order: the last match's (each
/// `meta mark set` overwrites the one before), 0 when none matches.
pub fn mark_of(rules: &[MarkRule], protocol: Proto, daddr: Ipv4Addr, dport: u16) -> u32 {
    rules
        .iter()
        .rev()
        .find(|r| r.matches(protocol, daddr, dport))
        .map_or(0, |r| r.mark)
}

/// The nft script for `rules` (`nft -f -`): lvslab's table, replaced whole if it was there.
pub fn script(rules: &[MarkRule]) -> String {
    let mut out = format!("table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n");
    out.push_str("  chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n");
    for rule in rules {
        let _ = writeln!(out, "    {}", rule.nft_rule());
    }
    out.push_str("  }\n}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mark: u32, addresses: &[&str], ports: &[u16]) -> MarkRule {
        MarkRule {
            mark,
            protocol: Proto::Tcp,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            ports: ports.to_vec(),
        }
    }

    #[test]
    fn a_rule_matches_its_protocol_addresses_and_ports() {
        let r = rule(1, &["10.0.0.100/32", "203.0.113.0/26"], &[80, 443]);
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert!(r.matches(Proto::Tcp, vip, 443));
        assert!(r.matches(Proto::Tcp, Ipv4Addr::new(203, 0, 113, 63), 80));
        assert!(!r.matches(Proto::Tcp, Ipv4Addr::new(203, 0, 113, 64), 80));
        assert!(!r.matches(Proto::Tcp, vip, 22));
        assert!(!r.matches(Proto::Udp, vip, 80));
        assert!(rule(1, &["10.0.0.100/32"], &[]).matches(Proto::Tcp, vip, 22));
    }

    #[test]
    fn the_last_matching_rule_sets_the_mark() {
        let rules = [rule(1, &["10.0.0.0/24"], &[]), rule(2, &["10.0.0.100/32"], &[443])];
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        assert_eq!(mark_of(&rules, Proto::Tcp, vip, 443), 2);
        assert_eq!(mark_of(&rules, Proto::Tcp, vip, 80), 1);
        assert_eq!(mark_of(&rules, Proto::Tcp, Ipv4Addr::new(10, 0, 1, 1), 80), 0);
    }

    #[test]
    fn the_script_is_one_table_of_lvslabs_own() {
        let text = script(&[
            rule(1, &["10.0.0.100/32"], &[80, 443]),
            rule(2, &["203.0.113.0/26"], &[]),
        ]);
        assert_eq!(
            text,
            "table ip lvslab_fwmark\ndelete table ip lvslab_fwmark\ntable ip lvslab_fwmark {\n  \
             chain prerouting {\n    type filter hook prerouting priority mangle; policy accept;\n    \
             ip daddr 10.0.0.100/32 tcp dport { 80, 443 } meta mark set 0x1\n    \
             ip daddr 203.0.113.0/26 meta l4proto tcp meta mark set 0x2\n  }\n}\n"
        );
    }

    #[test]
    fn nft_accepts_the_script() {
        // Needs nft (ci/install.sh installs it) and either root or user namespaces.
        let text = script(&[rule(1, &["10.0.0.100/32", "203.0.113.0/26"], &[80, 443])]);
        assert_eq!(super::super::check(&text, &[]), Ok(vec![]));
    }
}
