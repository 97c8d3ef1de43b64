//! `[vrrp_gateway]` and `[vrrp_sync_group]`: the LVS-NAT pair's second floating address.
//!
//! In NAT the real servers answer through their default gateway, which must be the director
//! that holds the VIP (only it knows the connections to rewrite). keepalived's classic pair
//! runs a second `vrrp_instance` on the real servers' network holding that gateway, and binds
//! both instances in a `vrrp_sync_group` so that they move together.

use std::net::Ipv4Addr;

use super::super::context::Context;
use super::super::reference_hint;
use crate::scenario::model::{GatewayInstance, Host, Mode, VrrpNode, VrrpTrack};
use crate::scenario::validate::{self as v, span};
use crate::scenario::Keyword;

const DEFAULT_GATEWAY_INSTANCE: &str = "VI_GW";
const DEFAULT_SYNC_GROUP: &str = "VG_1";

/// Gives every node its gateway instance; the floating address.
pub(super) fn resolve(
    cx: &mut Context<'_, '_, '_>,
    hosts: &[Host],
    vips: &[Ipv4Addr],
    nodes: &mut [VrrpNode],
) -> Option<Ipv4Addr> {
    let raw = cx.raw;
    let Some(gw) = raw.vrrp_gateway.as_ref() else {
        if cx.mode == Mode::Nat && raw.vrrp_sync_group.is_some() {
            cx.p.push(
                raw.vrrp_sync_group_span.clone(),
                "[vrrp_sync_group] binds instances, but each director has one: the VIP's",
                Some("add [vrrp_gateway] (the real servers' gateway as a second instance), or remove the group".into()),
            );
        }
        return None;
    };
    let header = raw.vrrp_gateway_span.clone();
    if cx.mode != Mode::Nat {
        cx.p.push(
            header,
            format!(
                "[vrrp_gateway] floats the real servers' default gateway, which only mode = \"nat\" needs (this is \"{}\")",
                cx.mode.word()
            ),
            Some("in dr, tun and fullnat the real servers do not answer through the director: remove [vrrp_gateway]".into()),
        );
        return None;
    }
    let name = gw
        .name
        .as_ref()
        .map_or(DEFAULT_GATEWAY_INSTANCE.to_string(), |n| n.get_ref().clone());
    if name.is_empty() || name.contains(char::is_whitespace) {
        cx.p.push(
            gw.name.as_ref().and_then(span),
            format!("instance name {name:?} must be one word"),
            Some("keepalived reads `vrrp_instance NAME {`".into()),
        );
    }
    if nodes.first().is_some_and(|n| n.instance.name == name) {
        cx.p.push(
            gw.name.as_ref().and_then(span).or(header.clone()),
            format!("[vrrp_gateway] and [vrrp_instance] are both named {name:?}"),
            Some("keepalived needs one name per vrrp_instance: name one `VI_GW`".into()),
        );
    }
    let Some(vrid_text) = gw.virtual_router_id.as_ref() else {
        cx.p.push(
            header,
            "[vrrp_gateway] needs its own `virtual_router_id`",
            Some("a VRID for the instance on the real servers' network, e.g. virtual_router_id = 52".into()),
        );
        return None;
    };
    let vrid = v::int_in(cx.p, Some(vrid_text), "virtual_router_id", 1, 255, 52u8);
    let Some(address_text) = gw.address.as_ref() else {
        cx.p.push(
            header,
            "[vrrp_gateway] needs the `address` the real servers route through",
            Some("a free address on the real servers' network, e.g. address = \"10.0.1.254\"".into()),
        );
        return None;
    };
    let address = v::ipv4(cx.p, address_text, "address")?;
    let at = span(address_text);
    if vips.contains(&address) {
        cx.p.push(
            at.clone(),
            format!("the gateway {address} is also a VIP"),
            Some("the VIP is on the clients' side, the gateway on the real servers'".into()),
        );
        return None;
    }
    if let Some((owner, iface)) = hosts.iter().find_map(|h| {
        h.interfaces
            .iter()
            .find(|i| i.address.addr() == address)
            .map(|i| (h, i))
    }) {
        cx.p.push(
            at.clone(),
            format!(
                "the gateway {address} is already {}'s address ({})",
                owner.name, iface.name
            ),
            Some("the floating gateway is held by whichever director is master: give it an address no host has".into()),
        );
        return None;
    }
    // Each director's interface on the gateway's network, and the real servers behind it.
    let mut placed = Vec::new();
    for node in nodes.iter() {
        let Some(host) = hosts.iter().find(|h| h.name == node.director) else {
            continue;
        };
        match host.interfaces.iter().find(|i| i.address.contains(&address)) {
            Some(i) if i.address.network() == address || i.address.broadcast() == address => {
                cx.p.push(
                    at.clone(),
                    format!(
                        "the gateway {address} is the address of network {} itself",
                        i.address.trunc()
                    ),
                    Some("pick a host address of that network".into()),
                );
                return None;
            }
            Some(i) => placed.push((i.name.clone(), i.address.addr())),
            None => {
                cx.p.push(
                    at.clone(),
                    format!(
                        "director \"{}\" has no interface on the gateway {address}'s network",
                        node.director
                    ),
                    Some("the gateway is on the real servers' network, where each director has a leg".into()),
                );
                return None;
            }
        }
    }
    for rs in hosts
        .iter()
        .filter(|h| h.role == crate::scenario::model::Role::RealServer)
    {
        if !rs.interfaces.iter().any(|i| i.address.contains(&address)) {
            cx.p.push(
                at.clone(),
                format!("real server \"{}\" is not on the gateway {address}'s network", rs.name),
                Some("in nat the real servers route through the gateway: put it on their network".into()),
            );
            return None;
        }
    }
    let addresses: Vec<Ipv4Addr> = placed.iter().map(|(_, a)| *a).collect();
    for (node, (interface, own)) in nodes.iter_mut().zip(&placed) {
        if *interface == node.instance.interface && vrid == node.instance.vrid {
            // keepalived -t: "VI_1 and VI_GW both use VRID 51 with IPv4 on interface eth0".
            cx.p.push(
                span(vrid_text),
                format!(
                    "{} and {name} both use VRID {vrid} on {}'s interface {interface}: one network, one VRID per instance",
                    node.instance.name, node.director
                ),
                Some("give [vrrp_gateway] another virtual_router_id".into()),
            );
            return None;
        }
        let mut cfg = node.instance.clone();
        cfg.name = name.clone();
        cfg.interface = interface.clone();
        cfg.address = *own;
        cfg.vrid = vrid;
        cfg.vips = vec![address];
        cfg.tracks = Vec::new();
        let unicast_peers = if node.unicast_peers.is_empty() {
            Vec::new()
        } else {
            addresses.iter().copied().filter(|a| a != own).collect()
        };
        node.gateway = Some(GatewayInstance {
            instance: cfg,
            unicast_peers,
        });
    }
    if raw.vrrp_sync_group.is_none() {
        cx.p.warn(
            header,
            "without a [vrrp_sync_group] the VIP and the gateway fail over on their own: one can move while the other stays, and replies then reach a director that does not know the connection",
            Some("add [vrrp_sync_group] (keepalived's `vrrp_sync_group VG_1 { group { VI_1 VI_GW } }`)".into()),
        );
    }
    Some(address)
}

/// `[vrrp_sync_group]`: its name, once its members name every instance, and its
/// `tracking_weight`. Without that, a director's weighted tracks become the group's
/// (`VrrpNode::weights_to_group`; the config writer puts them in the group's block).
pub(super) fn sync_group(
    cx: &mut Context<'_, '_, '_>,
    vip_instance: &str,
    nodes: &mut [VrrpNode],
) -> Option<(String, bool)> {
    let raw = cx.raw;
    let g = raw.vrrp_sync_group.as_ref()?;
    let gateway = nodes.first().and_then(|n| n.gateway.as_ref())?;
    let instances = vec![vip_instance.to_string(), gateway.instance.name.clone()];
    let name = g
        .name
        .as_ref()
        .map_or(DEFAULT_SYNC_GROUP.to_string(), |n| n.get_ref().clone());
    if name.is_empty() || name.contains(char::is_whitespace) {
        cx.p.push(
            g.name.as_ref().and_then(span),
            format!("sync group name {name:?} must be one word"),
            Some("keepalived reads `vrrp_sync_group NAME {`".into()),
        );
    }
    if let Some(list) = g.group.as_ref() {
        let mut seen: Vec<&str> = Vec::new();
        let mut unknown = false;
        for member in list.get_ref() {
            let m = member.get_ref().as_str();
            if !instances.iter().any(|i| i == m) {
                unknown = true;
                cx.p.push(
                    span(member),
                    format!("no vrrp_instance is named {m:?}"),
                    reference_hint(m, &instances),
                );
            } else if seen.contains(&m) {
                cx.p.push(
                    span(member),
                    format!("{m:?} is in the group twice"),
                    Some("keepalived: \"cannot exist in more than one sync group\"".into()),
                );
            }
            seen.push(m);
        }
        if let Some(missing) = instances.iter().find(|i| !unknown && !seen.contains(&i.as_str())) {
            cx.p.push(
                span(list),
                format!("the group leaves out {missing:?}: the VIP and the gateway must move together"),
                Some(format!(
                    "group = [{}]",
                    instances
                        .iter()
                        .map(|i| format!("{i:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        }
    }
    let tracking_weight = g.tracking_weight.as_ref().is_some_and(|t| *t.get_ref());
    for node in nodes.iter_mut() {
        node.weights_to_group = !tracking_weight;
    }
    if let Some(node) = nodes
        .iter()
        .find(|n| tracking_weight && !n.weighted_tracks().is_empty())
    {
        cx.p.warn(
            g.tracking_weight.as_ref().and_then(span),
            format!(
                "with tracking_weight director \"{}\"'s weighted tracks move its VIP instance alone: its gateway instance keeps its priority, so the other directors' gateway instances keep accepting its adverts and the group never moves (keepalived's manual: \"This probably WON'T WORK\")",
                node.director
            ),
            Some("leave tracking_weight out: the group then takes the weighted tracks and moves both instances".into()),
        );
    }
    // A weighted track is the group's (keepalived adds it to every member), except beside an
    // address owner: "Cannot have weighted track script ... with member having priority 255 -
    // clearing weight".
    for node in nodes
        .iter()
        .filter(|n| n.instance.base_priority() == 255 && !tracking_weight)
    {
        if let Some(track) = node.weighted_tracks().first() {
            let (VrrpTrack::Interface(what, weight) | VrrpTrack::Script(what, weight)) = track;
            cx.p.push(
                cx.hosts.iter().find(|h| h.name == node.director).and_then(|h| h.name_span.clone()),
                format!(
                    "director \"{}\" has priority 255 (the address owner) and tracks {what:?} with weight {weight} in a vrrp_sync_group: keepalived clears the weight of a group's track when a member is the address owner",
                    node.director
                ),
                Some("give the track weight = 0 (down: FAULT for the whole group), or a priority below 255".into()),
            );
        }
    }
    Some((name, tracking_weight))
}
