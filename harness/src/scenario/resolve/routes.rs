//! Stage 9: default routes. A host's `gateway` if it is on-link; else, for real servers of a nat service,
//! the director (replies must go back through it to be rewritten; with `[vrrp_gateway]` the
//! address its VRRP master holds); else, with several
//! networks, a router on the host's network. Then host routes for a VIP on none of the lab's
//! networks.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::context::{Context, Source};
use crate::scenario::model::{Host, Mode, Role, Route};
use crate::scenario::validate::span;

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
        } else if host.role == Role::RealServer && cx.rs_modes(&host.name).contains(&Mode::Nat) {
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
    direct_replies_reach_the_clients(cx, hosts);
}

/// A real server only in dr/tun services answers the client itself, from the VIP: a `network`
/// the file put it on with no client and no route out is kept (to reproduce it), and said.
fn direct_replies_reach_the_clients(cx: &mut Context<'_, '_, '_>, hosts: &[Host]) {
    let client_nets: Vec<&str> = hosts
        .iter()
        .filter(|h| h.role == Role::Client)
        .flat_map(|h| h.interfaces.iter().map(|i| i.network.as_str()))
        .collect();
    for (h, host) in cx.hosts.iter().zip(hosts) {
        let Source::RealServer(raw) = h.source else { continue };
        let Some(stated) = raw.network.as_ref() else { continue };
        let modes = cx.rs_modes(&host.name);
        let direct = !modes.is_empty() && modes.iter().all(|m| matches!(m, Mode::Dr | Mode::Tun));
        let reaches = !host.routes.is_empty()
            || host
                .interfaces
                .iter()
                .any(|i| client_nets.contains(&i.network.as_str()));
        if direct && !reaches {
            cx.p.warn(
                span(stated),
                format!(
                    "real server \"{}\" is only in {} services, which it answers straight to the client from the VIP, but network \"{}\" has no client and it has no route out",
                    host.name,
                    modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join("/"),
                    stated.get_ref()
                ),
                Some("leave `network` out (it then shares the clients' network), or give it a `gateway` that is not the director (a router)".into()),
            );
        }
    }
}

/// A VIP on none of the lab's networks is routed to its director, as the upstream router of a
/// routed VIP would: a host route on every client and router that shares a network with the
/// director. A VIP on a network is reached by ARP instead, as most LVS set-ups do. A VRRP
/// pair's VIP moves by gratuitous ARP, so it must be on a network.
pub(super) fn add_vip_routes(cx: &mut Context<'_, '_, '_>, hosts: &mut [Host], service_vips: &[Ipv4Addr]) {
    if cx.mode == Mode::Direct {
        return;
    }
    let on_a_network = |a: &Ipv4Addr| cx.networks.iter().any(|n| n.subnet.contains(a));
    let directors: Vec<(String, Ipv4Addr, super::context::Span)> = cx
        .hosts
        .iter()
        .filter_map(|h| h.vip.as_ref().map(|(a, s)| (h.name.clone(), *a, s.clone())))
        .collect();
    // A later service on a VIP of its own is served by the one director (or the VRRP pair).
    let mut routed: Vec<(String, Ipv4Addr, super::context::Span)> = directors.clone();
    if let Some((first, _, span)) = directors.first() {
        for vip in service_vips
            .iter()
            .filter(|v| !directors.iter().any(|(_, d, _)| d == *v))
        {
            routed.push((first.clone(), *vip, span.clone()));
        }
    }
    let mut seen = Vec::new();
    for (director, vip, span) in routed {
        if on_a_network(&vip) || seen.contains(&vip) {
            continue;
        }
        seen.push(vip);
        if cx.vrrp {
            let nets: Vec<String> = cx.networks.iter().map(|n| n.subnet.to_string()).collect();
            cx.p.push(
                span,
                format!(
                    "the VIP {vip} is on none of the lab's networks ({}), but VRRP moves it by gratuitous ARP",
                    nets.join(", ")
                ),
                Some("give the VIP an address on the directors' network".into()),
            );
            continue;
        }
        let Some(dir) = hosts.iter().find(|h| h.name == director) else {
            continue;
        };
        let gateways: Vec<(String, Ipv4Addr)> = dir
            .interfaces
            .iter()
            .map(|i| (i.network.clone(), i.address.addr()))
            .collect();
        for host in hosts
            .iter_mut()
            .filter(|h| matches!(h.role, Role::Client | Role::Router))
        {
            if let Some(via) = on_same_network(host, &gateways) {
                host.routes.push(Route {
                    dst: Ipv4Net::from(vip),
                    via: Some(via),
                });
            }
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
