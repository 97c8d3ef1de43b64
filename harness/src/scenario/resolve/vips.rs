//! Stage 5: the VIPs. The first service's is the first director's; further directors get their
//! own, and a later service may have its own (held by the one director or the VRRP pair). Chosen
//! after the file's own addresses and before the default ones, so that no host is ever handed a VIP.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::address_plan::{self, Step};
use super::context::{Context, Source, Span, FRONT};
use crate::scenario::model::{Mode, Role};
use crate::scenario::validate::{self as v, span};

/// Sets each director's VIP and returns each service's VIP, in service order.
/// `names`: the services' names, as stage 1 resolved them.
pub(super) fn choose(cx: &mut Context<'_, '_, '_>, names: &[String]) -> Vec<Ipv4Addr> {
    let front_plan = cx.plans[FRONT];
    let front_net = front_plan.subnet;
    let service_vip = cx
        .raw
        .service
        .vip
        .as_ref()
        .map(|text| (v::ipv4(cx.p, text, "vip").unwrap_or(Ipv4Addr::UNSPECIFIED), span(text)));
    let mut stated_vips: Vec<Option<(Ipv4Addr, Span)>> = Vec::new();
    for h in &cx.hosts {
        let Source::Director(d) = h.source else { continue };
        let stated = d
            .and_then(|d| d.vip.as_ref())
            .and_then(|text| v::ipv4(cx.p, text, "vip").map(|a| (a, span(text))));
        stated_vips.push(stated);
    }
    if let (Some(Some((first, first_span))), Some((svc, _))) = (stated_vips.first(), &service_vip) {
        if first != svc {
            cx.p.push(
                first_span.clone(),
                format!("the first director's vip {first} differs from [service] vip {svc}"),
                Some("the first director serves the service VIP: give it in one place only".into()),
            );
        }
    }
    // A later service's own `vip`.
    let later_vips: Vec<Option<(Ipv4Addr, Span)>> = cx
        .raw
        .more_services
        .iter()
        .map(|s| {
            s.vip
                .as_ref()
                .and_then(|text| v::ipv4(cx.p, text, "vip").map(|a| (a, span(text))))
        })
        .collect();
    let explicit_vips: HashSet<Ipv4Addr> = stated_vips
        .iter()
        .flatten()
        .chain(service_vip.iter())
        .chain(later_vips.iter().flatten())
        .map(|(a, _)| *a)
        .collect();
    let used = &cx.used;
    let mut vip_cursor = address_plan::VIP_HOST;
    // A default VIP: the next address from .100 on that neither a host nor another VIP has.
    let mut default_vip = |picked: &[(Ipv4Addr, Span)]| {
        let taken =
            |a: &Ipv4Addr| used.contains_key(a) || explicit_vips.contains(a) || picked.iter().any(|(d, _)| d == a);
        let (offset, a) = front_plan.first_free(vip_cursor, Step::Up, taken)?;
        vip_cursor = front_plan.next(offset, Step::Up);
        Some(a)
    };
    let (vip, vip_span) = match (stated_vips.first().cloned().flatten(), service_vip) {
        (_, Some(svc)) => svc,
        (Some(first), None) => first,
        (None, None) => match default_vip(&[]) {
            Some(a) => (a, None),
            None => {
                cx.p.push(
                    None,
                    format!("no free default VIP in {front_net}"),
                    Some("give [service] a `vip`".into()),
                );
                (Ipv4Addr::UNSPECIFIED, None)
            }
        },
    };
    // One (VIP, span) per director.
    let mut director_vips: Vec<(Ipv4Addr, Span)> = Vec::new();
    let directors = cx.hosts.iter().filter(|h| h.role() == Role::Director);
    for (i, (stated, d)) in stated_vips.iter().zip(directors).enumerate() {
        let picked = match (i, stated) {
            (0, _) => (vip, vip_span.clone()),
            // One VRRP instance: every director may hold the one VIP.
            (_, Some((a, a_span))) if cx.vrrp && *a != vip => {
                cx.p.push(
                    a_span.clone(),
                    format!(
                        "director \"{}\" has the vip {a}, but its VRRP instance holds {vip}",
                        d.name
                    ),
                    Some(
                        "the directors of a [vrrp_instance] share the service VIP: leave out the director's `vip`"
                            .into(),
                    ),
                );
                (vip, vip_span.clone())
            }
            _ if cx.vrrp => (vip, vip_span.clone()),
            (_, Some(stated)) => stated.clone(),
            (_, None) => match default_vip(&director_vips) {
                Some(a) => (a, None),
                None => {
                    cx.p.push(
                        d.name_span.clone(),
                        format!("no free default VIP for \"{}\" in {front_net}", d.name),
                        Some("give the director a `vip`".into()),
                    );
                    (Ipv4Addr::UNSPECIFIED, None)
                }
            },
        };
        director_vips.push(picked);
    }
    for (d, picked) in cx
        .hosts
        .iter_mut()
        .filter(|h| h.role() == Role::Director)
        .zip(&director_vips)
    {
        d.vip = Some(picked.clone());
    }
    check_conflicts(cx, vip, &vip_span);
    let service_vips = later_services(cx, vip, &later_vips, names);
    claim(cx, vip, &service_vips);
    service_vips
}

/// Every service's VIP: the first's, then each later one's own or the first's. A service on a
/// VIP of its own needs one director, or a VRRP pair holding every VIP: independent directors
/// each serve every service on their own VIP.
fn later_services(
    cx: &mut Context<'_, '_, '_>,
    first: Ipv4Addr,
    stated: &[Option<(Ipv4Addr, Span)>],
    names: &[String],
) -> Vec<Ipv4Addr> {
    let directors = cx.with_role(Role::Director).count();
    let first_net = cx.networks.iter().map(|n| n.subnet).find(|n| n.contains(&first));
    let mut vips = vec![first];
    for (i, stated) in stated.iter().enumerate() {
        let name = names.get(i + 1).map_or("?", String::as_str);
        let Some((a, a_span)) = stated.clone().filter(|(a, _)| *a != first) else {
            vips.push(first);
            continue;
        };
        if directors > 1 && !cx.vrrp {
            cx.p.push(
                a_span.clone(),
                format!(
                    "service \"{name}\" is on {a}, but independent directors each serve every service on their own VIP"
                ),
                Some("drop the service's `vip`, or share the VIPs over VRRP with a [vrrp_instance]".into()),
            );
        } else if let Some(owner) = cx.used.get(&a).map(|(o, _)| o.clone()) {
            cx.p.push(
                a_span.clone(),
                format!("the VIP {a} of service \"{name}\" is also the address of \"{owner}\""),
                Some("a VIP must be an address of its own".into()),
            );
        } else if let Some(net) = first_net.filter(|n| !n.contains(&a)) {
            cx.p.push(
                a_span.clone(),
                format!("service \"{name}\" is on {a}, outside {net}, the network of the first service's VIP {first}"),
                Some(format!(
                    "the directors hold every VIP on one network: pick an address in {net}"
                )),
            );
        }
        vips.push(a);
    }
    vips
}

/// A VIP that is a host's address, or two directors with one VIP.
fn check_conflicts(cx: &mut Context<'_, '_, '_>, vip: Ipv4Addr, vip_span: &Span) {
    if cx.mode == Mode::Direct {
        // No director: the VIP only matters where a real server holds it (vip_on).
    } else if let Some((owner, owner_span)) = cx.used.get(&vip) {
        cx.p.push(
            vip_span.clone().or(owner_span.clone()),
            format!("the VIP {vip} is also the address of \"{owner}\""),
            Some("the VIP must be an address of its own (on the director, or on lo/tunl0 of real servers)".into()),
        );
    }
    let directors: Vec<(&str, Ipv4Addr, &Span)> = cx
        .hosts
        .iter()
        .filter_map(|h| h.vip.as_ref().map(|(a, s)| (h.name.as_str(), *a, s)))
        .collect();
    for (i, (name, a, a_span)) in directors.iter().enumerate().skip(1) {
        if let Some((owner, owner_span)) = cx.used.get(a) {
            cx.p.push(
                (*a_span).clone().or(owner_span.clone()),
                format!("the VIP {a} of director \"{name}\" is also the address of \"{owner}\""),
                Some("a VIP must be an address of its own".into()),
            );
        }
        if let (false, Some((first, _, _))) = (cx.vrrp, directors[..i].iter().find(|(_, b, _)| b == a)) {
            cx.p.push(
                (*a_span).clone(),
                format!("directors \"{first}\" and \"{name}\" both have the VIP {a}"),
                Some(
                    "two directors answering for one VIP is a VRRP split-brain; give each director its own `vip`"
                        .into(),
                ),
            );
        }
    }
}

/// From here on no default (host address, FULLNAT local address, client source) takes a VIP.
fn claim(cx: &mut Context<'_, '_, '_>, vip: Ipv4Addr, service_vips: &[Ipv4Addr]) {
    let mut owners: Vec<(Ipv4Addr, String)> = if cx.with_role(Role::Director).next().is_none() {
        vec![(vip, "the VIP".to_owned())]
    } else {
        cx.hosts
            .iter()
            .filter_map(|h| h.vip.as_ref().map(|(a, _)| (*a, h.name.clone())))
            .collect()
    };
    owners.extend(service_vips.iter().map(|a| (*a, "a service VIP".to_owned())));
    for (a, owner) in &owners {
        cx.used.entry(*a).or_insert_with(|| (owner.clone(), None));
    }
    cx.vips = Vec::new();
    // A VRRP instance's directors share one VIP: real servers hold it once.
    for (a, _) in owners {
        if !cx.vips.contains(&a) {
            cx.vips.push(a);
        }
    }
}
