//! Stage 4: addresses. Each network gets its plan (a default network grows to hold every
//! host), the file's own addresses are claimed first, and after the VIPs are chosen every
//! interface left without an address gets the plan's next free one.

use std::collections::HashMap;

use ipnet::Ipv4Net;

use super::address_plan::{self, Demand, Plan, Step};
use super::context::{Context, FRONT};
use crate::scenario::model::{Mode, Network, Role};
use crate::scenario::raw::RawSources;

/// A Linux bridge numbers its ports in 10 bits and reserves port 0 (net/bridge/br_if.c, find_portno).
const MAX_BRIDGE_PORTS: u64 = 1023;

/// Each network's demand and plan; a default network grows to hold its demand.
pub(super) fn plan_networks(cx: &mut Context<'_, '_, '_>) {
    cx.demands = demands(cx);
    let declared = cx.declared_networks();
    cx.plans = cx
        .networks
        .iter()
        .zip(&cx.demands)
        .map(|(n, d)| {
            let plan = Plan::new(n.subnet);
            if declared {
                plan
            } else {
                address_plan::grown(plan, d.total())
            }
        })
        .collect();
    for (n, plan) in cx.networks.iter_mut().zip(&cx.plans) {
        n.subnet = plan.subnet;
    }
    for (n, d) in cx.demands.iter().enumerate() {
        let ports = d.directors + d.real_servers + d.clients + d.routers;
        if ports > MAX_BRIDGE_PORTS {
            cx.p.push(
                cx.network_spans.get(n).cloned().flatten(),
                format!(
                    "network \"{}\" joins {ports} interfaces, but its lab bridge takes at most {MAX_BRIDGE_PORTS} (the kernel's BR_MAX_PORTS, port 0 reserved)",
                    cx.networks[n].name
                ),
                Some("split the hosts over several [[network]]s joined by a [[router]]".into()),
            );
        }
    }
}

/// What each network must hold: its hosts' interfaces, the VIPs, FULLNAT local addresses
/// and extra client sources, as the default plan will hand them out.
fn demands(cx: &Context<'_, '_, '_>) -> Vec<Demand> {
    let r = cx.raw;
    let mut demands = vec![Demand::default(); cx.networks.len()];
    for h in &cx.hosts {
        for f in &h.ifaces {
            let d = &mut demands[f.network];
            match h.role() {
                Role::Director => d.directors += 1,
                Role::RealServer => d.real_servers += 1,
                Role::Client => d.clients += 1,
                Role::Router => d.routers += 1,
            }
        }
    }
    let director_count = cx.with_role(Role::Director).count();
    demands[FRONT].vips += director_count.max(1) as u64;
    if cx.any_mode(Mode::FullNat) {
        demands[cx.server_net].local_addresses += director_count as u64;
    }
    let extra_sources = match r.traffic.sources.as_ref().map(|s| s.get_ref()) {
        Some(RawSources::Count(n)) => n.clamp(&1, &1000) - 1,
        Some(RawSources::List(list)) => list.len() as i64,
        None => 0,
    } as u64;
    let sends = |name: &str| {
        r.traffic
            .clients
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c.get_ref() == name))
    };
    for h in cx.with_role(Role::Client).filter(|h| sends(&h.name)) {
        if let Some(f) = h.ifaces.first() {
            demands[f.network].extra_sources += extra_sources;
        }
    }
    demands
}

/// The file's own addresses, each to its first owner; a second owner is an error.
pub(super) fn claim_stated(cx: &mut Context<'_, '_, '_>) {
    for h in &cx.hosts {
        for f in &h.ifaces {
            if let Some(a) = f.address {
                if let Some((owner, _)) = cx.used.get(&a) {
                    cx.p.push(
                        f.address_span.clone(),
                        format!("address {a} of \"{}\" is already used by \"{owner}\"", h.name),
                        Some("two hosts cannot share an address".into()),
                    );
                } else {
                    cx.used.insert(a, (h.name.clone(), f.address_span.clone()));
                }
            }
        }
    }
}

/// Default addresses for every interface the file leaves without one, and FULLNAT local addresses.
/// The few (directors, their FULLNAT local addresses, routers, clients) before the many
/// (real servers), so a crowded network never pushes a director or router off its slot.
pub(super) fn assign_defaults(cx: &mut Context<'_, '_, '_>) {
    // Per network: the hosts (and FULLNAT directors) left without an address.
    let mut unplaced: Vec<Vec<String>> = vec![Vec::new(); cx.networks.len()];
    let mut cursors: HashMap<(Role, usize), u32> = HashMap::new();
    for role in [Role::Director, Role::Router, Role::Client, Role::RealServer] {
        for h in cx.hosts.iter_mut().filter(|h| h.role() == role) {
            for f in h.ifaces.iter_mut().filter(|f| f.address.is_none()) {
                let plan = cx.plans[f.network];
                let step = if role == Role::Router { Step::Down } else { Step::Up };
                let from = *cursors.entry((role, f.network)).or_insert(match role {
                    Role::Director => address_plan::DIRECTOR_HOST,
                    Role::RealServer => address_plan::FIRST_REAL_SERVER_HOST,
                    Role::Client => address_plan::FIRST_CLIENT_HOST,
                    Role::Router => address_plan::LAST_ROUTER_HOST,
                });
                match plan.first_free(from, step, |a| cx.used.contains_key(a)) {
                    Some((offset, a)) => {
                        cursors.insert((role, f.network), plan.next(offset, step));
                        cx.used.insert(a, (h.name.clone(), h.name_span.clone()));
                        f.address = Some(a);
                    }
                    None => unplaced[f.network].push(h.name.clone()),
                }
            }
        }
        if role == Role::Director && cx.any_mode(Mode::FullNat) {
            fullnat_local_addresses(cx, &mut unplaced);
        }
    }
    for (n, missing) in unplaced.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
        let span = cx.network_spans.get(n).cloned().flatten().or_else(|| {
            cx.hosts
                .iter()
                .find(|h| missing.first() == Some(&h.name))
                .and_then(|h| h.name_span.clone())
        });
        let (message, hint) = network_full(&cx.networks[n], &cx.demands[n], missing, cx.declared_networks());
        cx.p.push(span, message, Some(hint));
    }
}

/// FULLNAT's local address must not be one of the director kernel's own addresses:
/// replies to it would meet no socket there and be answered with RST. The engine
/// owns it (answers ARP for it): the first free address after the director's own.
fn fullnat_local_addresses(cx: &mut Context<'_, '_, '_>, unplaced: &mut [Vec<String>]) {
    let server_net = cx.server_net;
    let plan = cx.plans[server_net];
    for d in cx.hosts.iter_mut().filter(|h| h.role() == Role::Director) {
        let Some(own) = d
            .ifaces
            .iter()
            .find(|f| f.network == server_net)
            .and_then(|f| f.address)
        else {
            continue;
        };
        let after_own = plan.next(plan.offset_of(own), Step::Up);
        match plan.first_free(after_own, Step::Up, |a| cx.used.contains_key(a)) {
            Some((_, a)) => {
                cx.used.insert(a, (d.name.clone(), None));
                d.local_address = Some(a);
            }
            None => unplaced[server_net].push(format!("the FULLNAT local address of \"{}\"", d.name)),
        }
    }
}

/// The error for a network that ran out of default addresses, and how to make room.
fn network_full(net: &Network, demand: &Demand, missing: &[String], declared: bool) -> (String, String) {
    let shown: Vec<&str> = missing.iter().take(3).map(String::as_str).collect();
    let more = if missing.len() > shown.len() { ", …" } else { "" };
    let message =
        format!(
        "network \"{}\" ({}) is full: {} get no address ({}{more}); it holds {} addresses, the scenario needs {} ({})",
        net.name,
        net.subnet,
        if missing.len() == 1 { "1 host".to_owned() } else { format!("{} hosts", missing.len()) },
        shown.join(", "),
        address_plan::capacity(net.subnet.prefix_len()),
        demand.total(),
        demand.describe(),
    );
    let bigger = address_plan::prefix_for(demand.total(), 8).map(|p| {
        let subnet = Ipv4Net::new(net.subnet.network(), p).expect("valid prefix").trunc();
        format!("subnet = \"{subnet}\" ({} addresses)", address_plan::capacity(p))
    });
    let hint = match (declared, bigger) {
        (true, Some(b)) => format!("give [[network]] \"{}\" a larger subnet, e.g. {b}", net.name),
        (false, Some(b)) => format!(
            "the default network grows only up to /{}: declare [[network]] name = \"{}\" with a larger subnet, e.g. {b}",
            address_plan::WIDEST_GROWN_PREFIX,
            net.name
        ),
        (_, None) => "give the extra hosts explicit addresses on another [[network]]".to_owned(),
    };
    (message, hint)
}
