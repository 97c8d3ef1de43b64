//! Stage 9: default routes. A host's `gateway` if it is on-link; else, for NAT real servers,
//! the director (replies must go back through it to be rewritten; with `[vrrp_gateway]` the
//! address its VRRP master holds); else, with several
//! networks, a router on the host's network.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::context::Context;
use crate::scenario::model::{Host, Mode, Role, Route};

pub(super) fn add_default_routes(cx: &mut Context<'_, '_, '_>, hosts: &mut [Host]) {
    let router_addrs = addresses_of(hosts, Role::Router);
    let director_addrs = addresses_of(hosts, Role::Director);
    // `[vrrp_gateway]`: the address the VRRP master holds (its errors are the vrrp stage's).
    let floating: Option<Ipv4Addr> = cx
        .raw
        .vrrp_gateway
        .as_ref()
        .and_then(|g| g.address.as_ref())
        .and_then(|a| a.get_ref().parse().ok());
    for (h, host) in cx.hosts.iter().zip(hosts.iter_mut()) {
        if host.role == Role::Router {
            continue;
        }
        let via = if let Some((gw, gw_span)) = &h.gateway {
            if !host.interfaces.iter().any(|i| i.address.contains(gw)) {
                cx.p.push(
                    gw_span.clone(),
                    format!("gateway {gw} of \"{}\" is not on any of its networks", host.name),
                    Some("a gateway must be reachable on-link".into()),
                );
                None
            } else {
                Some(*gw)
            }
        } else if host.role == Role::RealServer && cx.mode == Mode::Nat {
            floating
                .filter(|gw| host.interfaces.iter().any(|i| i.address.contains(gw)))
                .or_else(|| on_same_network(host, &director_addrs))
        } else if cx.networks.len() > 1 {
            on_same_network(host, &router_addrs)
        } else {
            None
        };
        if let Some(via) = via {
            host.routes.push(Route {
                dst: Ipv4Net::default(),
                via: Some(via),
            });
        }
    }
}

/// (network, address) of every interface of the hosts with `role`.
fn addresses_of(hosts: &[Host], role: Role) -> Vec<(String, Ipv4Addr)> {
    hosts
        .iter()
        .filter(|h| h.role == role)
        .flat_map(|h| h.interfaces.iter().map(|i| (i.network.clone(), i.address.addr())))
        .collect()
}

/// The first of `candidates` on a network of `host`'s, in the host's interface order.
fn on_same_network(host: &Host, candidates: &[(String, Ipv4Addr)]) -> Option<Ipv4Addr> {
    host.interfaces
        .iter()
        .find_map(|i| candidates.iter().find(|(n, _)| *n == i.network).map(|(_, a)| *a))
}
