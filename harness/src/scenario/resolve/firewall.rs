//! Stage 8b: each host's `nftables` rules, `{vip}` filled in. Whether nft accepts them is
//! `check`'s to ask nft (`scenario::firewall::check_rules`): resolution runs no commands.

use std::net::Ipv4Addr;

use super::context::Context;
use crate::scenario::firewall;
use crate::scenario::model::Host;
use crate::scenario::validate::span;

pub(super) fn apply(cx: &mut Context<'_, '_, '_>, hosts: &mut [Host], vip: Ipv4Addr) {
    for (h, host) in cx.hosts.iter().zip(hosts.iter_mut()) {
        let Some(rules) = h.nftables() else { continue };
        if rules.get_ref().trim().is_empty() {
            cx.p.push(
                span(rules),
                format!("`nftables` of host \"{}\" is empty", h.name),
                Some("give nft rules, e.g. \"table inet f { chain in { type filter hook input priority 0; ip daddr {vip} tcp dport 80 counter drop; } }\", or remove the key".into()),
            );
            continue;
        }
        host.nftables = Some(firewall::fill(rules.get_ref(), vip).script);
    }
}
