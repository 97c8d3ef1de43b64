//! The default address plan: where hosts, VIPs and extra sources land inside a network when
//! the file does not say, and how a default network grows to hold a large scenario.
//!
//! Each role starts at its own offset (director .1, real servers .11, VIP .100, extra sources
//! .150 down, clients .201, routers .254 down) and walks on, wrapping at the ends of the subnet,
//! so a network holds as many hosts as it has addresses and no default lands on one taken.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

pub(super) const DIRECTOR_HOST: u32 = 1;
pub(super) const VIP_HOST: u32 = 100;
pub(super) const FIRST_REAL_SERVER_HOST: u32 = 11;
pub(super) const FIRST_EXTRA_SOURCE_HOST: u32 = 150;
pub(super) const FIRST_CLIENT_HOST: u32 = 201;
pub(super) const LAST_ROUTER_HOST: u32 = 254;
/// A default network grows up to this prefix (65 534 addresses), no wider.
pub(super) const WIDEST_GROWN_PREFIX: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Up,
    Down,
}

/// A network's plan: offsets count from `anchor` and wrap inside `subnet`. The anchor is the
/// subnet's own address, except for a grown default network, where it stays at the /24 the
/// network started as (so 192.0.2.100 is still the VIP when `lan` grows to 192.0.0.0/22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub subnet: Ipv4Net,
    pub anchor: Ipv4Addr,
}

impl Plan {
    pub fn new(subnet: Ipv4Net) -> Self {
        Plan {
            subnet,
            anchor: subnet.network(),
        }
    }

    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.subnet.prefix_len()))
    }

    /// Usable host addresses (neither the network nor the broadcast address).
    pub fn capacity(&self) -> u64 {
        capacity(self.subnet.prefix_len())
    }

    /// The address at `offset` from the anchor, wrapping inside the subnet.
    fn at(&self, offset: u64) -> Ipv4Addr {
        let base = u64::from(u32::from(self.subnet.network()));
        let from_base = u64::from(u32::from(self.anchor)) - base;
        Ipv4Addr::from((base + (from_base + offset) % self.size()) as u32)
    }

    /// The first host address from `start` on (stepping `step`, wrapping) that `taken` refuses
    /// not, with its offset; `None` when every address is taken.
    pub fn first_free(&self, start: u32, step: Step, taken: impl Fn(&Ipv4Addr) -> bool) -> Option<(u32, Ipv4Addr)> {
        let size = self.size();
        (0..size)
            .map(|i| match step {
                Step::Up => (u64::from(start) + i) % size,
                Step::Down => (u64::from(start) + size - i % size) % size,
            })
            .map(|offset| (offset as u32, self.at(offset)))
            .find(|(_, a)| *a != self.subnet.network() && *a != self.subnet.broadcast() && !taken(a))
    }

    /// The offset of `addr` (inside the subnet) from the anchor.
    pub fn offset_of(&self, addr: Ipv4Addr) -> u32 {
        let size = self.size();
        let (a, anchor) = (
            u64::from(u32::from(addr)) % size,
            u64::from(u32::from(self.anchor)) % size,
        );
        ((a + size - anchor) % size) as u32
    }

    /// The offset after `offset` in direction `step`.
    pub fn next(&self, offset: u32, step: Step) -> u32 {
        let size = self.size();
        match step {
            Step::Up => ((u64::from(offset) + 1) % size) as u32,
            Step::Down => ((u64::from(offset) + size - 1) % size) as u32,
        }
    }
}

/// Usable host addresses of a subnet of this prefix length.
pub(super) fn capacity(prefix: u8) -> u64 {
    (1u64 << (32 - u32::from(prefix))).saturating_sub(2)
}

/// The narrowest prefix (not wider than `widest`) whose subnet holds `needed` addresses; `None`
/// when even `widest` is too small.
pub(super) fn prefix_for(needed: u64, widest: u8) -> Option<u8> {
    (widest..=30).rev().find(|&p| capacity(p) >= needed)
}

/// `plan` widened to hold `needed` addresses, keeping its anchor; unchanged when it already
/// does or when not even a /16 would.
pub(super) fn grown(plan: Plan, needed: u64) -> Plan {
    if plan.capacity() >= needed {
        return plan;
    }
    match prefix_for(needed, WIDEST_GROWN_PREFIX) {
        Some(p) => Plan {
            subnet: Ipv4Net::new(plan.anchor, p).expect("prefix from a valid range").trunc(),
            anchor: plan.anchor,
        },
        None => plan,
    }
}

/// What a network must hold, by kind, to say why it is full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Demand {
    pub directors: u64,
    pub real_servers: u64,
    pub clients: u64,
    pub routers: u64,
    pub vips: u64,
    pub local_addresses: u64,
    pub extra_sources: u64,
}

impl Demand {
    pub fn total(&self) -> u64 {
        self.directors
            + self.real_servers
            + self.clients
            + self.routers
            + self.vips
            + self.local_addresses
            + self.extra_sources
    }

    /// "1000 real servers, 1 director, 1 client, 1 VIP".
    pub fn describe(&self) -> String {
        let parts = [
            (self.real_servers, "real server", "real servers"),
            (self.directors, "director", "directors"),
            (self.clients, "client", "clients"),
            (self.routers, "router", "routers"),
            (self.vips, "VIP", "VIPs"),
            (self.local_addresses, "FULLNAT local address", "FULLNAT local addresses"),
            (self.extra_sources, "extra client source", "extra client sources"),
        ];
        let words: Vec<String> = parts
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect();
        words.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cidr: &str) -> Plan {
        Plan::new(cidr.parse().unwrap())
    }

    #[test]
    fn walking_up_wraps_past_the_broadcast_and_skips_taken_addresses() {
        let p = plan("192.0.2.0/24");
        let taken = |a: &Ipv4Addr| a.octets()[3] >= 250 || a.octets()[3] == 1;
        assert_eq!(
            p.first_free(250, Step::Up, taken),
            Some((2, "192.0.2.2".parse().unwrap()))
        );
        assert_eq!(
            p.first_free(5, Step::Down, |_| false),
            Some((5, "192.0.2.5".parse().unwrap()))
        );
        assert_eq!(
            p.first_free(1, Step::Down, |a| a.octets()[3] == 1),
            Some((254, "192.0.2.254".parse().unwrap()))
        );
        assert_eq!(p.first_free(11, Step::Up, |_| true), None);
        assert_eq!(plan("192.0.2.4/31").first_free(0, Step::Up, |_| false), None);
    }

    #[test]
    fn a_grown_plan_keeps_its_anchor_and_spills_into_the_wider_subnet() {
        let p = grown(plan("192.0.2.0/24"), 1003);
        assert_eq!(p.subnet, "192.0.0.0/22".parse::<Ipv4Net>().unwrap());
        assert_eq!(
            p.first_free(100, Step::Up, |_| false).unwrap().1,
            "192.0.2.100".parse::<Ipv4Addr>().unwrap()
        );
        // Past 192.0.3.255 (the /22's broadcast) the walk wraps to 192.0.0.1.
        assert_eq!(
            p.first_free(511, Step::Up, |_| false).unwrap().1,
            "192.0.0.1".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(grown(plan("192.0.2.0/24"), 254), plan("192.0.2.0/24"));
        assert_eq!(
            grown(plan("198.51.100.0/24"), 300).subnet,
            "198.51.100.0/23".parse::<Ipv4Net>().unwrap()
        );
        assert_eq!(
            grown(plan("192.0.2.0/24"), 70_000),
            plan("192.0.2.0/24"),
            "beyond /16 it stays"
        );
    }

    #[test]
    fn prefix_for_is_the_narrowest_that_fits() {
        assert_eq!(prefix_for(254, 8), Some(24));
        assert_eq!(prefix_for(255, 8), Some(23));
        assert_eq!(prefix_for(1003, 8), Some(22));
        assert_eq!(prefix_for(70_000, 16), None);
    }
}
