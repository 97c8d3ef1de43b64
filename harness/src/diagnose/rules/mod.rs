//! One file per cause; each exposes `ID` and `check(evidence, spread) -> Option<Finding>`.
//! Causes follow the research note `why-one-backend.md` (most frequent first).

use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub mod common;

pub mod arp_flux;
pub mod checksum;
pub mod destination_hash;
pub mod keepalive;
pub mod local_client;
pub mod nat_return_path;
pub mod persistence;
pub mod port_reuse;
pub mod rp_filter;
pub mod scheduler_arithmetic;
pub mod server_down;
pub mod single_server;
pub mod source_hash;
pub mod source_ports;
pub mod tunnel_decap;
pub mod udp_flow;
pub mod vip_not_local;
pub mod weight_zero;

/// A rule: evidence and the spread in, a finding out if the cause holds.
pub type Rule = fn(&Evidence, &SpreadSummary) -> Option<Finding>;

/// Every rule with its id, in catalogue order (the tie-break when ranking).
pub const RULES: &[(&str, Rule)] = &[
    (single_server::ID, single_server::check),
    (persistence::ID, persistence::check),
    (arp_flux::ID, arp_flux::check),
    (local_client::ID, local_client::check),
    (weight_zero::ID, weight_zero::check),
    (server_down::ID, server_down::check),
    (vip_not_local::ID, vip_not_local::check),
    (udp_flow::ID, udp_flow::check),
    (keepalive::ID, keepalive::check),
    (port_reuse::ID, port_reuse::check),
    (nat_return_path::ID, nat_return_path::check),
    (source_hash::ID, source_hash::check),
    (destination_hash::ID, destination_hash::check),
    (checksum::ID, checksum::check),
    (scheduler_arithmetic::ID, scheduler_arithmetic::check),
    (rp_filter::ID, rp_filter::check),
    (tunnel_decap::ID, tunnel_decap::check),
    (source_ports::ID, source_ports::check),
];

/// Stable ids of every cause the diagnosis knows, in the order of [`RULES`].
pub const CAUSE_IDS: &[&str] = &[
    single_server::ID,
    persistence::ID,
    arp_flux::ID,
    local_client::ID,
    weight_zero::ID,
    server_down::ID,
    vip_not_local::ID,
    udp_flow::ID,
    keepalive::ID,
    port_reuse::ID,
    nat_return_path::ID,
    source_hash::ID,
    destination_hash::ID,
    checksum::ID,
    scheduler_arithmetic::ID,
    rp_filter::ID,
    tunnel_decap::ID,
    source_ports::ID,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_ids_list_every_rule_once_in_order() {
        let rule_ids: Vec<&str> = RULES.iter().map(|(id, _)| *id).collect();
        assert_eq!(rule_ids, CAUSE_IDS);
        let mut sorted = CAUSE_IDS.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), CAUSE_IDS.len(), "duplicate cause id");
    }
}
