//! Stage 3: one draft per host (clients, directors, real servers, routers) with its
//! interfaces as the file states them, and every name unique. At the end, after addresses,
//! VIPs and real servers are settled, `finish` turns the drafts into the model's hosts.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::context::{Context, HostDraft, IfaceDraft, Source, Span, FRONT};
use super::interfaces::default_mac;
use crate::scenario::model::{Host, Interface, Mode, Role, VipOn};
use crate::scenario::raw::{RawDirector, S};
use crate::scenario::validate::{self as v, span};

pub(super) fn draft(cx: &mut Context<'_, '_, '_>) {
    clients(cx);
    directors(cx);
    real_servers(cx);
    routers(cx);
    check_names_unique(cx);
}

fn clients(cx: &mut Context<'_, '_, '_>) {
    let r = cx.raw;
    if r.clients.is_empty() {
        cx.hosts.push(draft_host(
            "client".into(),
            None,
            Source::Client(None),
            vec![IfaceDraft::on(FRONT)],
            None,
        ));
    }
    for (i, c) in r.clients.iter().enumerate() {
        let (name, name_span) = host_name(
            cx,
            c.name.as_ref(),
            "client",
            i,
            r.clients.len(),
            r.client_spans[i].clone(),
        );
        let iface = cx.shorthand_iface(c.network.as_ref(), c.address.as_ref(), c.mac.as_ref(), FRONT);
        let gateway = cx.gateway(c.gateway.as_ref());
        cx.hosts.push(draft_host(
            name,
            name_span,
            Source::Client(Some(c)),
            iface.into_iter().collect(),
            gateway,
        ));
    }
}

fn directors(cx: &mut Context<'_, '_, '_>) {
    let r = cx.raw;
    if cx.mode == Mode::Direct {
        if let Some(span) = &r.director_span {
            cx.p.push(
                Some(span.clone()),
                "`direct` mode has no director, but [director] is given",
                Some("remove [director], or choose mode \"dr\", \"nat\", \"tun\" or \"fullnat\"".into()),
            );
        }
        return;
    }
    // No [director] at all still means one director with every default.
    let count = r.directors.len().max(1);
    for i in 0..count {
        let d = r.directors.get(i);
        let header = r.director_spans.get(i).cloned().flatten();
        let (name, name_span) = host_name(cx, d.and_then(|d| d.name.as_ref()), "director", i, count, header);
        let host = director(cx, d, name, name_span);
        cx.hosts.push(host);
    }
    // A VRRP pair floats the gateway with the VIP ([vrrp_gateway]): one director at a time rewrites.
    if cx.mode == Mode::Nat && count > 1 && !(cx.vrrp && r.vrrp_gateway.is_some()) {
        cx.p.push(
            r.director_spans.get(1).cloned().flatten(),
            format!("nat mode takes one director, but {count} are given: real servers send replies to their one gateway, so only one director could rewrite them"),
            Some("keep one [director]; for a VRRP pair, float the real servers' gateway with [vrrp_gateway] (and bind it to the VIP with [vrrp_sync_group]); or use mode \"dr\", \"tun\" or \"fullnat\"".into()),
        );
    }
}

/// One director's host: `interfaces`, or `address`/`network` plus a leg on the real servers' network.
fn director<'r>(
    cx: &mut Context<'r, '_, '_>,
    d: Option<&'r RawDirector>,
    name: String,
    name_span: Span,
) -> HostDraft<'r> {
    let mut ifaces = Vec::new();
    match d.and_then(|d| d.interfaces.as_ref()) {
        Some(list) => {
            if let Some(a) = d.and_then(|d| d.address.as_ref()) {
                cx.p.push(
                    span(a),
                    "give either `address` or `interfaces` for the director, not both",
                    Some("put the address in the first interface".into()),
                );
            }
            for i in list.get_ref() {
                ifaces.extend(cx.explicit_iface(i));
            }
            if list.get_ref().is_empty() {
                cx.p.push(span(list), "the director needs at least one interface", None);
            }
        }
        None => {
            let first = cx.shorthand_iface(
                d.and_then(|d| d.network.as_ref()),
                d.and_then(|d| d.address.as_ref()),
                None,
                FRONT,
            );
            let first_net = first.as_ref().map_or(FRONT, |f| f.network);
            ifaces.extend(first);
            if cx.server_net != first_net {
                ifaces.push(IfaceDraft::on(cx.server_net));
            }
        }
    }
    let gateway = cx.gateway(d.and_then(|d| d.gateway.as_ref()));
    draft_host(name, name_span, Source::Director(d), ifaces, gateway)
}

fn real_servers(cx: &mut Context<'_, '_, '_>) {
    let r = cx.raw;
    for (i, rs) in r.real_servers.iter().enumerate() {
        let (name, name_span) = host_name(
            cx,
            rs.name.as_ref(),
            "rs",
            i,
            usize::MAX,
            r.real_server_spans[i].clone(),
        );
        // A server only in dr/tun services is on the clients' network by default (L2 with the
        // director, replies straight to the client); one in a nat/fullnat service behind it.
        let modes = cx.rs_modes(&name);
        let behind = modes.is_empty() || modes.iter().any(|m| matches!(m, Mode::Nat | Mode::FullNat));
        let net = if behind { cx.server_net } else { FRONT };
        let iface = cx.shorthand_iface(rs.network.as_ref(), rs.address.as_ref(), rs.mac.as_ref(), net);
        let gateway = cx.gateway(rs.gateway.as_ref());
        cx.hosts.push(draft_host(
            name,
            name_span,
            Source::RealServer(rs),
            iface.into_iter().collect(),
            gateway,
        ));
    }
    if r.real_servers.is_empty() && r.complete {
        cx.p.push(
            None,
            "the scenario has no [[real_server]]",
            Some("add at least one: [[real_server]] name = \"rs1\"".into()),
        );
    }
}

fn routers(cx: &mut Context<'_, '_, '_>) {
    let r = cx.raw;
    for (i, router) in r.routers.iter().enumerate() {
        let (name, name_span) = host_name(cx, router.name.as_ref(), "r", i, usize::MAX, r.router_spans[i].clone());
        let mut ifaces = Vec::new();
        match router.interfaces.as_ref() {
            Some(list) if list.get_ref().len() >= 2 => {
                for iface in list.get_ref() {
                    ifaces.extend(cx.explicit_iface(iface));
                }
            }
            other => cx.p.push(
                other.map(span).unwrap_or(name_span.clone()),
                format!("router \"{name}\" needs `interfaces` on at least two networks"),
                Some("interfaces = [{ network = \"lan\" }, { network = \"far\" }]".into()),
            ),
        }
        cx.hosts
            .push(draft_host(name, name_span, Source::Router(router), ifaces, None));
    }
}

fn draft_host<'r>(
    name: String,
    name_span: Span,
    source: Source<'r>,
    ifaces: Vec<IfaceDraft>,
    gateway: Option<(std::net::Ipv4Addr, Span)>,
) -> HostDraft<'r> {
    HostDraft {
        name,
        name_span,
        source,
        ifaces,
        gateway,
        vip: None,
        local_address: None,
        real_server: None,
    }
}

/// The host's name, or `<prefix><n>` (`rs1`, `client`, `client2`) when absent.
fn host_name(
    cx: &mut Context<'_, '_, '_>,
    name: Option<&S<String>>,
    prefix: &str,
    index: usize,
    total: usize,
    header: Span,
) -> (String, Span) {
    match name {
        Some(n) => {
            v::host_name(cx.p, n);
            (n.get_ref().clone(), span(n))
        }
        None if total == 1 => (prefix.to_string(), header),
        None => (format!("{prefix}{}", index + 1), header),
    }
}

fn check_names_unique(cx: &mut Context<'_, '_, '_>) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, h) in cx.hosts.iter().enumerate() {
        if let Some(first) = seen.insert(h.name.as_str(), i) {
            let other = &cx.hosts[first];
            cx.p.push(
                h.name_span.clone().or(other.name_span.clone()),
                format!(
                    "duplicate host name \"{}\" ({} and {})",
                    h.name,
                    role_word(other.role()),
                    role_word(h.role())
                ),
                Some("every client, director, real server and router needs its own name".into()),
            );
        }
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Client => "a client",
        Role::Director => "the director",
        Role::RealServer => "a real server",
        Role::Router => "a router",
    }
}

/// The model's hosts: interfaces with their addresses and MACs, real servers' VIPs and links.
/// Sysctls and routes are the next stages'.
pub(super) fn finish(cx: &Context<'_, '_, '_>, service_vips: &[Ipv4Addr]) -> Vec<Host> {
    cx.hosts.iter().map(|h| host(cx, h, service_vips)).collect()
}

/// The VIPs real server `name` holds, in [`Context::vips`] order, and where: those of its own
/// services (any director may forward a request of one here), each where its mode puts it
/// (dr: lo, tun: tunl0; a VIP of both on tunl0, which takes either) unless `vip_on` says.
fn real_server_vips(
    cx: &Context<'_, '_, '_>,
    name: &str,
    stated: Option<VipOn>,
    service_vips: &[Ipv4Addr],
) -> Vec<(Ipv4Addr, VipOn)> {
    let director_vips: Vec<Ipv4Addr> = cx
        .hosts
        .iter()
        .filter_map(|h| h.vip.as_ref().map(|(a, _)| *a))
        .collect();
    let mut wanted: Vec<(Ipv4Addr, VipOn)> = Vec::new();
    for (i, mode) in cx.modes.iter().enumerate().filter(|(i, _)| cx.lists(*i, name)) {
        let on = match (stated, mode) {
            (Some(on), _) => on,
            (None, Mode::Dr) => VipOn::Lo,
            (None, Mode::Tun) => VipOn::Tunl0,
            (None, _) => continue,
        };
        let Some(&vip) = service_vips.get(i) else { continue };
        // A service on the first's VIP is on each independent director's own (Scenario::service_vip).
        let vips = if (i > 0 && service_vips.first() != Some(&vip)) || director_vips.is_empty() {
            vec![vip]
        } else {
            director_vips.clone()
        };
        for v in vips {
            match wanted.iter_mut().find(|(a, _)| *a == v) {
                Some(have) if on == VipOn::Tunl0 => have.1 = on,
                Some(_) => {}
                None => wanted.push((v, on)),
            }
        }
    }
    cx.vips
        .iter()
        .filter_map(|a| wanted.iter().find(|(w, _)| w == a).copied())
        .collect()
}

fn host(cx: &Context<'_, '_, '_>, h: &HostDraft<'_>, service_vips: &[Ipv4Addr]) -> Host {
    let interfaces: Vec<Interface> = h
        .ifaces
        .iter()
        .enumerate()
        .filter_map(|(k, f)| {
            let addr = f.address?;
            let net = &cx.networks[f.network];
            let ifname = format!("eth{k}");
            Some(Interface {
                mac: f.mac.unwrap_or_else(|| default_mac(&h.name, &ifname)),
                name: ifname,
                network: net.name.clone(),
                address: Ipv4Net::new(addr, net.subnet.prefix_len()).expect("prefix comes from a valid subnet"),
                secondary: Vec::new(),
                mtu: f.mtu.or(net.mtu),
            })
        })
        .collect();
    let mut host = Host {
        name: h.name.clone(),
        role: h.role(),
        interfaces,
        loopback_vips: Vec::new(),
        tun_vips: Vec::new(),
        routes: Vec::new(),
        sysctls: Vec::new(),
        link_up: true,
        nftables: None,
    };
    if let Some(x) = &h.real_server {
        for (vip, on) in real_server_vips(cx, &h.name, x.vip_on, service_vips) {
            let Ok(vip_net) = Ipv4Net::new(vip, x.vip_prefix) else {
                continue;
            };
            match on {
                VipOn::Lo => host.loopback_vips.push(vip_net),
                VipOn::Tunl0 => host.tun_vips.push(vip_net),
                VipOn::Eth0 => {
                    if let Some(eth0) = host.interfaces.first_mut() {
                        eth0.secondary.push(vip_net);
                    }
                }
                VipOn::None => {}
            }
        }
        if x.down {
            host.link_up = false;
        }
    }
    host
}
