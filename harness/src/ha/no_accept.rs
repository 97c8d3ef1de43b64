//! keepalived's no_accept firewall (`vrrp_strict` without `accept`), as lvslab's VRRP node
//! sets it: while MASTER, nftables drops traffic to and from the VIPs in the director's
//! namespace. keepalived's own table, read in a namespace (reference keepalived.md §1.7):
//! a `vips` set, and `ip daddr @vips drop` on input, `ip saddr @vips drop` on output, at
//! priority filter - 1. ARP is not filtered: clients resolve the VIP, and nothing answers.

use std::net::Ipv4Addr;

const TABLE: &str = "lvslab_vrrp_no_accept";

/// The nft script that sets (`on`) or removes the drop of `vips`, in the calling thread's
/// namespace.
pub fn script(vips: &[Ipv4Addr], on: bool) -> String {
    if !on {
        return format!("delete table ip {TABLE}\n");
    }
    let elements: Vec<String> = vips.iter().map(ToString::to_string).collect();
    format!(
        "table ip {TABLE} {{\n\
         \x20 set vips {{ type ipv4_addr; elements = {{ {} }}; }}\n\
         \x20 chain out {{ type filter hook output priority filter - 1; policy accept; ip saddr @vips drop; }}\n\
         \x20 chain in {{ type filter hook input priority filter - 1; policy accept; ip daddr @vips drop; }}\n\
         }}\n",
        elements.join(", ")
    )
}

/// Sets or removes the drop in the calling thread's namespace.
pub fn drop_rule(vips: &[Ipv4Addr], on: bool) -> Result<(), String> {
    crate::nft::load(&script(vips, on))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_drops_the_vips_both_ways_before_the_filter_hooks() {
        let s = script(&[Ipv4Addr::new(192, 0, 2, 100)], true);
        assert!(s.contains("elements = { 192.0.2.100 }"), "{s}");
        assert!(
            s.contains("hook input priority filter - 1; policy accept; ip daddr @vips drop"),
            "{s}"
        );
        assert!(
            s.contains("hook output priority filter - 1; policy accept; ip saddr @vips drop"),
            "{s}"
        );
        assert_eq!(script(&[], false), "delete table ip lvslab_vrrp_no_accept\n");
    }
}
