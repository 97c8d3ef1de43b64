//! One file per cause; each exposes `ID` and `check(evidence, spread) -> Option<Finding>`.
//! Causes follow the research note `why-one-backend.md` (most frequent first).

use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub mod common;

pub mod anti_spoofing;
pub mod arp_flux;
pub mod checksum_offload;
pub mod destination_hash;
pub mod dr_topology;
pub mod failover;
pub mod firewall;
pub mod fwmark;
pub mod health_check;
pub mod keepalive;
pub mod keepalived_config;
pub mod local_client;
pub mod mega_proxy;
pub mod multi_director;
pub mod nat_return_path;
pub mod persistence;
pub mod port_remap;
pub mod port_reuse;
pub mod rp_filter;
pub mod scheduler_arithmetic;
pub mod server_down;
pub mod server_fault;
pub mod single_server;
pub mod sorry_server;
pub mod source_hash;
pub mod source_ports;
pub mod split_brain;
pub mod tunnel_decap;
pub mod tunnel_mtu;
pub mod udp_flow;
pub mod vip_not_local;
pub mod vip_prefix;
pub mod weight_zero;

/// A rule: evidence and the spread in, a finding out if the cause holds.
pub type Rule = fn(&Evidence, &SpreadSummary) -> Option<Finding>;

/// Every rule with the cause it reports, in catalogue order (the tie-break when ranking).
/// Every cause but `healthy` has exactly one rule: checked when this compiles.
pub const RULES: &[(CauseId, Rule)] = &[
    (single_server::ID, single_server::check),
    // Before the causes its defaults bring about (persistence, nat-return-path, udp-flow, ...).
    (keepalived_config::ID, keepalived_config::check),
    (mega_proxy::ID, mega_proxy::check),
    // Before persistence: unmarked requests are why a persistent fwmark service splits clients.
    (fwmark::ID, fwmark::check),
    (persistence::ID, persistence::check),
    // Before arp-flux: a VIP on the LAN interface is why a server answers ARP for it.
    (vip_prefix::ID, vip_prefix::check),
    (arp_flux::ID, arp_flux::check),
    (local_client::ID, local_client::check),
    (weight_zero::ID, weight_zero::check),
    (sorry_server::ID, sorry_server::check),
    (health_check::ID, health_check::check),
    (server_fault::ID, server_fault::check),
    // Before server-down, whose symptoms (no listener, stuck handshakes) these explain.
    (port_remap::ID, port_remap::check),
    (dr_topology::ID, dr_topology::check),
    (server_down::ID, server_down::check),
    (vip_not_local::ID, vip_not_local::check),
    (firewall::ID, firewall::check),
    (udp_flow::ID, udp_flow::check),
    (keepalive::ID, keepalive::check),
    (port_reuse::ID, port_reuse::check),
    (nat_return_path::ID, nat_return_path::check),
    (source_hash::ID, source_hash::check),
    (destination_hash::ID, destination_hash::check),
    (anti_spoofing::ID, anti_spoofing::check),
    (checksum_offload::ID, checksum_offload::check),
    (scheduler_arithmetic::ID, scheduler_arithmetic::check),
    (rp_filter::ID, rp_filter::check),
    (tunnel_decap::ID, tunnel_decap::check),
    (tunnel_mtu::ID, tunnel_mtu::check),
    (source_ports::ID, source_ports::check),
    (split_brain::ID, split_brain::check),
    (failover::ID, failover::check),
    (multi_director::ID, multi_director::check),
];

/// Whether `rules` holds one rule for every cause but `healthy`, and none for it.
const fn one_rule_per_cause(rules: &[(CauseId, Rule)]) -> bool {
    let mut c = 0;
    while c < CauseId::ALL.len() {
        let cause = CauseId::ALL[c];
        let (mut n, mut r) = (0, 0);
        while r < rules.len() {
            if rules[r].0 as usize == cause as usize {
                n += 1;
            }
            r += 1;
        }
        let want = if matches!(cause, CauseId::Healthy) { 0 } else { 1 };
        if n != want {
            return false;
        }
        c += 1;
    }
    true
}

const _: () = assert!(
    one_rule_per_cause(RULES),
    "every cause but healthy needs exactly one rule in RULES"
);

/// Position of `id` in the catalogue (`healthy`, which has no rule, last).
pub fn rank(id: CauseId) -> usize {
    RULES.iter().position(|(c, _)| *c == id).unwrap_or(RULES.len())
}
