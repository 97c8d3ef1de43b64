//! Resolution: raw file → `Scenario`, applying the defaults of the chosen
//! forwarding mode (address plan, VIP placement, ARP/rp_filter sysctls,
//! gateways) and checking what only makes sense once addresses are known
//! (duplicates, addresses outside their network, references to hosts).

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::Duration;

use hyper::http::uri::PathAndQuery;
use ipnet::Ipv4Net;

use super::diagnostic::Problems;
use super::keywords::*;
use super::model::*;
use super::raw::{RawDirector, RawInterface, RawScenario, RawSources, RawSysctls, S};
use super::suggest;
use super::sysctl;
use super::validate::{self as v, span};

mod address_plan;
use address_plan::{Demand, Plan, Step};

type Span = Option<Range<usize>>;

/// A Linux bridge numbers its ports in 10 bits and reserves port 0 (net/bridge/br_if.c, find_portno).
const MAX_BRIDGE_PORTS: u64 = 1023;
const DEFAULT_SLOW_DELAY: Duration = Duration::from_millis(500);

/// An interface before addresses are allocated.
struct IfaceSpec {
    network: usize,
    address: Option<Ipv4Addr>,
    address_span: Span,
    mac: Option<[u8; 6]>,
}

/// A host before addresses are allocated.
struct HostSpec {
    name: String,
    name_span: Span,
    role: Role,
    ifaces: Vec<IfaceSpec>,
    gateway: Option<(Ipv4Addr, Span)>,
}

pub(crate) fn resolve(raw: &RawScenario, default_name: &str, p: &mut Problems<'_>) -> Scenario {
    let r = &raw;

    // --- top level and service ------------------------------------------
    let name = r
        .top
        .name
        .as_ref()
        .map_or_else(|| default_name.to_string(), |n| n.get_ref().clone());
    if !v::lab_label(&name) {
        match &r.top.name {
            Some(n) => p.push(
                span(n),
                format!("`name` = \"{name}\" cannot name a lab"),
                Some(v::LAB_LABEL_HINT.into()),
            ),
            None => p.push(
                None,
                format!("the scenario is named \"{name}\" after its file, which cannot name a lab"),
                Some(format!("give it a `name`: {}", v::LAB_LABEL_HINT)),
            ),
        }
    }
    let engine = v::keyword(p, r.top.engine.as_ref(), EngineChoice::Auto);
    let s = &r.service;
    let mode = v::keyword(p, s.mode.as_ref(), Mode::Dr);
    if let (Some(e), EngineChoice::Kernel, Mode::FullNat) = (&r.top.engine, engine, mode) {
        p.push(
            span(e),
            "engine = \"kernel\" cannot run mode \"fullnat\": FULLNAT is not in mainline IPVS",
            Some("use engine = \"auto\" or \"embedded\"".into()),
        );
    }
    let protocol = v::keyword(p, s.protocol.as_ref(), Protocol::Tcp);
    let scheduler = v::keyword(p, s.scheduler.as_ref(), Scheduler::Wlc);
    let mut flags = Vec::new();
    for f in s.flags.iter().flatten() {
        let Some(flag) = SchedFlag::from_word(f.get_ref()) else {
            v::keyword(p, Some(f), SchedFlag::ShFallback);
            continue;
        };
        if flag.scheduler() != scheduler {
            p.push(
                span(f),
                format!(
                    "flag `{flag}` only affects the `{}` scheduler, not `{scheduler}`",
                    flag.scheduler()
                ),
                Some(format!("remove it, or set scheduler = \"{}\"", flag.scheduler())),
            );
        }
        flags.push(flag);
    }
    let port: u16 = v::int_in(p, s.port.as_ref(), "port", 1, 65535, 80);
    let persistence_secs: u64 = v::int_in(p, s.persistence.as_ref(), "persistence", 0, 31_536_000, 0);
    let persistence = (persistence_secs > 0).then(|| Duration::from_secs(persistence_secs));
    let netmask_prefix = s
        .persistence_netmask
        .as_ref()
        .and_then(|m| v::persistence_netmask(p, m));
    let persistence_prefix = netmask_prefix.unwrap_or(32);
    if let (Some(m), Some(_), None) = (&s.persistence_netmask, netmask_prefix, persistence) {
        p.push(
            span(m),
            "`persistence_netmask` without `persistence` has no effect",
            Some("set `persistence` = seconds (ipvsadm -p)".into()),
        );
    }
    let one_packet = s.one_packet.as_ref().is_some_and(|b| *b.get_ref());
    if let Some(op) = s
        .one_packet
        .as_ref()
        .filter(|b| *b.get_ref() && protocol != Protocol::Udp)
    {
        p.push(
            span(op),
            "`one_packet` (ipvsadm -o) applies to UDP services only",
            Some("set protocol = \"udp\" or remove it".into()),
        );
    }

    // --- networks --------------------------------------------------------
    let (mut networks, network_spans) = resolve_networks(r, mode, p);
    let declared_networks = !network_spans.is_empty();
    let front = 0usize;
    let server_net = if matches!(mode, Mode::Nat | Mode::FullNat) && networks.len() >= 2 {
        1
    } else {
        front
    };

    // --- host specs (interfaces without addresses yet) --------------------
    let mut specs: Vec<HostSpec> = Vec::new();
    let mut ctx = Ctx { networks: &networks, p };

    let client_specs_start = specs.len();
    if r.clients.is_empty() {
        specs.push(HostSpec {
            name: "client".into(),
            name_span: None,
            role: Role::Client,
            ifaces: vec![ctx.iface_default(front)],
            gateway: None,
        });
    }
    for (i, c) in r.clients.iter().enumerate() {
        let (name, name_span) = ctx.host_name(c.name.as_ref(), "client", i, r.clients.len(), r.client_spans[i].clone());
        let iface = ctx.shorthand_iface(c.network.as_ref(), c.address.as_ref(), c.mac.as_ref(), front);
        let gateway = ctx.gateway(c.gateway.as_ref());
        specs.push(HostSpec {
            name,
            name_span,
            role: Role::Client,
            ifaces: iface.into_iter().collect(),
            gateway,
        });
    }
    let client_count = specs.len() - client_specs_start;

    let director_specs_start = specs.len();
    if mode == Mode::Direct {
        if let Some(span) = &r.director_span {
            ctx.p.push(
                Some(span.clone()),
                "`direct` mode has no director, but [director] is given",
                Some("remove [director], or choose mode \"dr\", \"nat\", \"tun\" or \"fullnat\"".into()),
            );
        }
    } else {
        // No [director] at all still means one director with every default.
        let count = r.directors.len().max(1);
        for i in 0..count {
            let d = r.directors.get(i);
            let header = r.director_spans.get(i).cloned().flatten();
            let (name, name_span) = ctx.host_name(d.and_then(|d| d.name.as_ref()), "director", i, count, header);
            specs.push(director_spec(&mut ctx, d, name, name_span, front, server_net));
        }
        if mode == Mode::Nat && count > 1 {
            ctx.p.push(
                r.director_spans.get(1).cloned().flatten(),
                format!("nat mode takes one director, but {count} are given: real servers send replies to their one gateway, so only one director could rewrite them"),
                Some("keep one [director], or use mode \"dr\", \"tun\" or \"fullnat\" for several".into()),
            );
        }
    }
    let director_count = specs.len() - director_specs_start;

    let rs_specs_start = specs.len();
    for (i, rs) in r.real_servers.iter().enumerate() {
        let (name, name_span) = ctx.host_name(rs.name.as_ref(), "rs", i, usize::MAX, r.real_server_spans[i].clone());
        let iface = ctx.shorthand_iface(rs.network.as_ref(), rs.address.as_ref(), rs.mac.as_ref(), server_net);
        let gateway = ctx.gateway(rs.gateway.as_ref());
        specs.push(HostSpec {
            name,
            name_span,
            role: Role::RealServer,
            ifaces: iface.into_iter().collect(),
            gateway,
        });
    }
    if r.real_servers.is_empty() && r.complete {
        ctx.p.push(
            None,
            "the scenario has no [[real_server]]",
            Some("add at least one: [[real_server]] name = \"rs1\"".into()),
        );
    }

    for (i, router) in r.routers.iter().enumerate() {
        let (name, name_span) = ctx.host_name(router.name.as_ref(), "r", i, usize::MAX, r.router_spans[i].clone());
        let mut ifaces = Vec::new();
        match router.interfaces.as_ref() {
            Some(list) if list.get_ref().len() >= 2 => {
                for iface in list.get_ref() {
                    ifaces.extend(ctx.explicit_iface(iface));
                }
            }
            other => ctx.p.push(
                other.map(span).unwrap_or(name_span.clone()),
                format!("router \"{name}\" needs `interfaces` on at least two networks"),
                Some("interfaces = [{ network = \"lan\" }, { network = \"far\" }]".into()),
            ),
        }
        specs.push(HostSpec {
            name,
            name_span,
            role: Role::Router,
            ifaces,
            gateway: None,
        });
    }
    let p = ctx.p;

    // --- names are unique ------------------------------------------------
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, h) in specs.iter().enumerate() {
        if let Some(first) = seen.insert(h.name.as_str(), i) {
            let other = &specs[first];
            p.push(
                h.name_span.clone().or(other.name_span.clone()),
                format!(
                    "duplicate host name \"{}\" ({} and {})",
                    h.name,
                    role_word(other.role),
                    role_word(h.role)
                ),
                Some("every client, director, real server and router needs its own name".into()),
            );
        }
    }

    // --- address plans: a default network grows to hold every host ---------
    let demands = address_demands(r, &specs, mode, director_count, front, server_net, networks.len());
    let plans: Vec<Plan> = networks
        .iter()
        .zip(&demands)
        .map(|(n, d)| {
            let plan = Plan::new(n.subnet);
            if declared_networks {
                plan
            } else {
                address_plan::grown(plan, d.total())
            }
        })
        .collect();
    for (n, plan) in networks.iter_mut().zip(&plans) {
        n.subnet = plan.subnet;
    }
    for (n, d) in demands.iter().enumerate() {
        let ports = d.directors + d.real_servers + d.clients + d.routers;
        if ports > MAX_BRIDGE_PORTS {
            p.push(
                network_spans.get(n).cloned().flatten(),
                format!(
                    "network \"{}\" joins {ports} interfaces, but its lab bridge takes at most {MAX_BRIDGE_PORTS} (the kernel's BR_MAX_PORTS, port 0 reserved)",
                    networks[n].name
                ),
                Some("split the hosts over several [[network]]s joined by a [[router]]".into()),
            );
        }
    }

    // --- explicit addresses --------------------------------------------------
    let mut used: HashMap<Ipv4Addr, (String, Span)> = HashMap::new();
    for h in &specs {
        for f in &h.ifaces {
            if let Some(a) = f.address {
                if let Some((owner, _)) = used.get(&a) {
                    p.push(
                        f.address_span.clone(),
                        format!("address {a} of \"{}\" is already used by \"{owner}\"", h.name),
                        Some("two hosts cannot share an address".into()),
                    );
                } else {
                    used.insert(a, (h.name.clone(), f.address_span.clone()));
                }
            }
        }
    }

    // --- VIPs: the service's is the first director's; further directors get their own ----
    // Chosen before default host addresses, so that no host is ever handed a VIP.
    let front_plan = plans[front];
    let front_net = front_plan.subnet;
    let service_vip = s
        .vip
        .as_ref()
        .map(|text| (v::ipv4(p, text, "vip").unwrap_or(Ipv4Addr::UNSPECIFIED), span(text)));
    let stated_vips: Vec<Option<(Ipv4Addr, Span)>> = (0..director_count)
        .map(|i| {
            let text = r.directors.get(i)?.vip.as_ref()?;
            v::ipv4(p, text, "vip").map(|a| (a, span(text)))
        })
        .collect();
    if let (Some(Some((first, first_span))), Some((svc, _))) = (stated_vips.first(), &service_vip) {
        if first != svc {
            p.push(
                first_span.clone(),
                format!("the first director's vip {first} differs from [service] vip {svc}"),
                Some("the first director serves the service VIP: give it in one place only".into()),
            );
        }
    }
    let explicit_vips: HashSet<Ipv4Addr> = stated_vips
        .iter()
        .flatten()
        .chain(service_vip.iter())
        .map(|(a, _)| *a)
        .collect();
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
                p.push(
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
    for (i, stated) in stated_vips.iter().enumerate() {
        let picked = match (i, stated) {
            (0, _) => (vip, vip_span.clone()),
            (_, Some(stated)) => stated.clone(),
            (_, None) => match default_vip(&director_vips) {
                Some(a) => (a, None),
                None => {
                    let spec = &specs[director_specs_start + i];
                    p.push(
                        spec.name_span.clone(),
                        format!("no free default VIP for \"{}\" in {front_net}", spec.name),
                        Some("give the director a `vip`".into()),
                    );
                    (Ipv4Addr::UNSPECIFIED, None)
                }
            },
        };
        director_vips.push(picked);
    }
    if mode == Mode::Direct {
        // No director: the VIP only matters where a real server holds it (vip_on).
    } else if let Some((owner, owner_span)) = used.get(&vip) {
        p.push(
            vip_span.clone().or(owner_span.clone()),
            format!("the VIP {vip} is also the address of \"{owner}\""),
            Some("the VIP must be an address of its own (on the director, or on lo/tunl0 of real servers)".into()),
        );
    }
    for (i, (a, a_span)) in director_vips.iter().enumerate().skip(1) {
        let name = &specs[director_specs_start + i].name;
        if let Some((owner, owner_span)) = used.get(a) {
            p.push(
                a_span.clone().or(owner_span.clone()),
                format!("the VIP {a} of director \"{name}\" is also the address of \"{owner}\""),
                Some("a VIP must be an address of its own".into()),
            );
        }
        if let Some(k) = director_vips[..i].iter().position(|(b, _)| b == a) {
            p.push(
                a_span.clone(),
                format!(
                    "directors \"{}\" and \"{name}\" both have the VIP {a}",
                    specs[director_specs_start + k].name
                ),
                Some(
                    "two directors answering for one VIP is a VRRP split-brain; give each director its own `vip`"
                        .into(),
                ),
            );
        }
    }
    // From here on no default (host address, FULLNAT local address, client source) takes a VIP.
    let vip_owners: Vec<(Ipv4Addr, String)> = if director_vips.is_empty() {
        vec![(vip, "the VIP".to_owned())]
    } else {
        director_vips
            .iter()
            .enumerate()
            .map(|(i, (a, _))| (*a, specs[director_specs_start + i].name.clone()))
            .collect()
    };
    for (a, owner) in &vip_owners {
        used.entry(*a).or_insert_with(|| (owner.clone(), None));
    }
    let all_vips: Vec<Ipv4Addr> = vip_owners.iter().map(|(a, _)| *a).collect();

    // --- default host addresses ----------------------------------------------
    // The few (directors, their FULLNAT local addresses, routers, clients) before the many
    // (real servers), so a crowded network never pushes a director or router off its slot.
    let mut addresses: Vec<Vec<Option<Ipv4Addr>>> = specs
        .iter()
        .map(|h| h.ifaces.iter().map(|f| f.address).collect())
        .collect();
    let mut local_addresses: Vec<Option<Ipv4Addr>> = vec![None; director_count];
    // Per network: the hosts (and FULLNAT directors) left without an address.
    let mut unplaced: Vec<Vec<String>> = vec![Vec::new(); networks.len()];
    let mut cursors: HashMap<(Role, usize), u32> = HashMap::new();
    for role in [Role::Director, Role::Router, Role::Client, Role::RealServer] {
        for (hi, h) in specs.iter().enumerate().filter(|(_, h)| h.role == role) {
            for (k, f) in h.ifaces.iter().enumerate().filter(|(_, f)| f.address.is_none()) {
                let plan = plans[f.network];
                let step = if role == Role::Router { Step::Down } else { Step::Up };
                let from = *cursors.entry((role, f.network)).or_insert(match role {
                    Role::Director => address_plan::DIRECTOR_HOST,
                    Role::RealServer => address_plan::FIRST_REAL_SERVER_HOST,
                    Role::Client => address_plan::FIRST_CLIENT_HOST,
                    Role::Router => address_plan::LAST_ROUTER_HOST,
                });
                match plan.first_free(from, step, |a| used.contains_key(a)) {
                    Some((offset, a)) => {
                        cursors.insert((role, f.network), plan.next(offset, step));
                        used.insert(a, (h.name.clone(), h.name_span.clone()));
                        addresses[hi][k] = Some(a);
                    }
                    None => unplaced[f.network].push(h.name.clone()),
                }
            }
        }
        if role == Role::Director && mode == Mode::FullNat {
            // FULLNAT's local address must not be one of the director kernel's own addresses:
            // replies to it would meet no socket there and be answered with RST. The engine
            // owns it (answers ARP for it): the first free address after the director's own.
            let plan = plans[server_net];
            for (i, local) in local_addresses.iter_mut().enumerate() {
                let di = director_specs_start + i;
                let Some(own) = specs[di]
                    .ifaces
                    .iter()
                    .position(|f| f.network == server_net)
                    .and_then(|k| addresses[di][k])
                else {
                    continue;
                };
                let after_own = plan.next(plan.offset_of(own), Step::Up);
                match plan.first_free(after_own, Step::Up, |a| used.contains_key(a)) {
                    Some((_, a)) => {
                        used.insert(a, (specs[di].name.clone(), None));
                        *local = Some(a);
                    }
                    None => unplaced[server_net].push(format!("the FULLNAT local address of \"{}\"", specs[di].name)),
                }
            }
        }
    }
    for (n, missing) in unplaced.iter().enumerate().filter(|(_, m)| !m.is_empty()) {
        let span = network_spans.get(n).cloned().flatten().or_else(|| {
            specs
                .iter()
                .find(|h| missing.first() == Some(&h.name))
                .and_then(|h| h.name_span.clone())
        });
        let (message, hint) = network_full(&networks[n], &demands[n], missing, declared_networks);
        p.push(span, message, Some(hint));
    }

    // --- real servers ----------------------------------------------------
    let mut real_servers = Vec::new();
    let mut rs_extra: Vec<RsHostExtras> = Vec::new();
    for (i, rs) in r.real_servers.iter().enumerate() {
        let spec = &specs[rs_specs_start + i];
        let weight: u32 = v::int_in(p, rs.weight.as_ref(), "weight", 0, 65535, 1);
        let rs_port: u16 = v::int_in(p, rs.port.as_ref(), "port", 1, 65535, port);
        if let Some(pt) = rs
            .port
            .as_ref()
            .filter(|_| rs_port != port && matches!(mode, Mode::Dr | Mode::Tun))
        {
            p.push(
                span(pt),
                format!("real server \"{}\" port {rs_port} differs from the service port {port}, but {mode} cannot remap ports", spec.name),
                Some("DR and TUN forward the packet unchanged; only nat and fullnat can change the port".into()),
            );
        }
        let state = v::keyword(p, rs.state.as_ref(), ServerState::Up);
        let delay = match rs.delay_ms.as_ref() {
            Some(d) => {
                if state != ServerState::Slow {
                    p.push(
                        span(d),
                        format!(
                            "`delay_ms` only applies to state \"slow\" (\"{}\" is \"{state}\")",
                            spec.name
                        ),
                        Some("add state = \"slow\"".into()),
                    );
                }
                Duration::from_millis(v::int_in(p, Some(d), "delay_ms", 0, 600_000, 0u64))
            }
            None if state == ServerState::Slow => DEFAULT_SLOW_DELAY,
            None => Duration::ZERO,
        };
        let default_vip_on = match mode {
            Mode::Dr => VipOn::Lo,
            Mode::Tun => VipOn::Tunl0,
            _ => VipOn::None,
        };
        let vip_on = v::keyword(p, rs.vip_on.as_ref(), default_vip_on);
        let vip_prefix: u8 = v::int_in(p, rs.vip_prefix.as_ref(), "vip_prefix", 0, 32, 32);
        let arp_default = matches!(mode, Mode::Dr | Mode::Tun);
        let arp_ignore = arp_sysctl(
            p,
            rs.arp_ignore.as_ref(),
            "arp_ignore",
            &[0, 1, 2, 3, 8],
            arp_default.then_some(1),
        );
        let arp_announce = arp_sysctl(
            p,
            rs.arp_announce.as_ref(),
            "arp_announce",
            &[0, 1, 2],
            arp_default.then_some(2),
        );
        let rp_filter = arp_sysctl(
            p,
            rs.rp_filter.as_ref(),
            "rp_filter",
            &[0, 1, 2],
            (mode == Mode::Tun).then_some(0),
        );
        real_servers.push(RealServer {
            name: spec.name.clone(),
            address: addresses[rs_specs_start + i]
                .first()
                .copied()
                .flatten()
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            port: rs_port,
            weight,
            state,
            delay,
        });
        rs_extra.push(RsHostExtras {
            vip_on,
            vip_prefix,
            arp_ignore,
            arp_announce,
            rp_filter,
        });
    }

    // --- directors -----------------------------------------------------
    let mut directors = Vec::new();
    for (i, ((dvip, _), local_address)) in director_vips.iter().zip(&local_addresses).enumerate() {
        let spec = &specs[director_specs_start + i];
        let engine_sysctls = sysctl::engine_settings(p, r.directors.get(i).and_then(|d| d.sysctl.as_ref()));
        directors.push(Director {
            name: spec.name.clone(),
            vip: *dvip,
            local_address: *local_address,
            engine_sysctls,
        });
    }

    // --- hosts: interfaces, VIPs, sysctls ----------------------------------
    let mut hosts: Vec<Host> = Vec::new();
    for (hi, h) in specs.iter().enumerate() {
        let interfaces: Vec<Interface> = h
            .ifaces
            .iter()
            .enumerate()
            .filter_map(|(k, f)| {
                let addr = addresses[hi][k]?;
                let net = &networks[f.network];
                let ifname = format!("eth{k}");
                Some(Interface {
                    mac: f.mac.unwrap_or_else(|| default_mac(&h.name, &ifname)),
                    name: ifname,
                    network: net.name.clone(),
                    address: Ipv4Net::new(addr, net.subnet.prefix_len()).expect("prefix comes from a valid subnet"),
                    secondary: Vec::new(),
                })
            })
            .collect();
        let mut host = Host {
            name: h.name.clone(),
            role: h.role,
            interfaces,
            loopback_vips: Vec::new(),
            tun_vips: Vec::new(),
            routes: Vec::new(),
            sysctls: Vec::new(),
            link_up: true,
        };
        let user_sysctls: Option<&RawSysctls> = match h.role {
            Role::Client => r.clients.get(hi - client_specs_start).and_then(|c| c.sysctl.as_ref()),
            Role::Director => r
                .directors
                .get(hi - director_specs_start)
                .and_then(|d| d.sysctl.as_ref()),
            Role::RealServer => r
                .real_servers
                .get(hi - rs_specs_start)
                .and_then(|rs| rs.sysctl.as_ref()),
            Role::Router => r
                .routers
                .get(hi - specs.iter().position(|s| s.role == Role::Router).unwrap_or(hi))
                .and_then(|ro| ro.sysctl.as_ref()),
        };
        match h.role {
            Role::Director => host.sysctls.push(("net.ipv4.ip_forward".into(), "0".into())),
            Role::Router => host.sysctls.push(("net.ipv4.ip_forward".into(), "1".into())),
            Role::RealServer => {
                let i = hi - rs_specs_start;
                let x = &rs_extra[i];
                // Every director's VIP: any of them may forward a request here.
                for vip_net in all_vips.iter().filter_map(|a| Ipv4Net::new(*a, x.vip_prefix).ok()) {
                    match x.vip_on {
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
                let ifnames: Vec<String> = host.interfaces.iter().map(|i| i.name.clone()).collect();
                for (key, value) in [("arp_ignore", x.arp_ignore), ("arp_announce", x.arp_announce)] {
                    if let Some(value) = value {
                        host.sysctls
                            .push((format!("net.ipv4.conf.all.{key}"), value.to_string()));
                        for ifname in &ifnames {
                            host.sysctls
                                .push((format!("net.ipv4.conf.{ifname}.{key}"), value.to_string()));
                        }
                    }
                }
                if let Some(value) = x.rp_filter {
                    // The kernel uses max(all, interface); `default` covers tunl0,
                    // which is created after the sysctls are applied.
                    for scope in ["all", "default"]
                        .into_iter()
                        .map(String::from)
                        .chain(ifnames.iter().cloned())
                    {
                        host.sysctls
                            .push((format!("net.ipv4.conf.{scope}.rp_filter"), value.to_string()));
                    }
                }
                if real_servers[i].state == ServerState::Down {
                    host.link_up = false;
                }
            }
            Role::Client => {}
        }
        let devices = sysctl::lab_devices(&host);
        let target = sysctl::Target {
            host: &host.name,
            role: h.role,
            devices: &devices,
        };
        for (k, val) in user_sysctls.into_iter().flatten() {
            if h.role == Role::Director && sysctl::is_engine(k) {
                continue; // the engine's, collected above
            }
            if let Some(value) = sysctl::host_value(p, &target, k, val) {
                set_sysctl(&mut host.sysctls, k, value);
            }
        }
        hosts.push(host);
    }

    // --- routes ----------------------------------------------------------
    let router_addrs: Vec<(String, Ipv4Addr)> = hosts
        .iter()
        .filter(|h| h.role == Role::Router)
        .flat_map(|h| h.interfaces.iter().map(|i| (i.network.clone(), i.address.addr())))
        .collect();
    let director_addrs: Vec<(String, Ipv4Addr)> = hosts
        .iter()
        .filter(|h| h.role == Role::Director)
        .flat_map(|h| h.interfaces.iter().map(|i| (i.network.clone(), i.address.addr())))
        .collect();
    for (hi, host) in hosts.iter_mut().enumerate() {
        if host.role == Role::Router {
            continue;
        }
        let explicit = &specs[hi].gateway;
        let via = if let Some((gw, gw_span)) = explicit {
            if !host.interfaces.iter().any(|i| i.address.contains(gw)) {
                p.push(
                    gw_span.clone(),
                    format!("gateway {gw} of \"{}\" is not on any of its networks", host.name),
                    Some("a gateway must be reachable on-link".into()),
                );
                None
            } else {
                Some(*gw)
            }
        } else if host.role == Role::RealServer && mode == Mode::Nat {
            // Replies must go back through the director to be rewritten.
            host.interfaces
                .iter()
                .find_map(|i| director_addrs.iter().find(|(n, _)| *n == i.network).map(|(_, a)| *a))
        } else if networks.len() > 1 {
            host.interfaces
                .iter()
                .find_map(|i| router_addrs.iter().find(|(n, _)| *n == i.network).map(|(_, a)| *a))
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

    // --- traffic and expect ------------------------------------------------
    let client_names: Vec<String> = specs[client_specs_start..client_specs_start + client_count]
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let rs_names: Vec<String> = real_servers.iter().map(|r| r.name.clone()).collect();
    let named_plans: Vec<(String, Plan)> = networks.iter().map(|n| n.name.clone()).zip(plans).collect();
    let traffic = resolve_traffic(r, &client_names, &named_plans, &mut hosts, &mut used, p);
    let expect = resolve_expect(r, &rs_names, &real_servers, &traffic, p);

    Scenario {
        name,
        description: r.top.description.as_ref().map(|d| d.get_ref().clone()),
        engine,
        service: Service {
            vip,
            port,
            protocol,
            mode,
            scheduler,
            flags,
            persistence,
            persistence_prefix,
            one_packet,
        },
        directors,
        real_servers,
        networks,
        hosts,
        traffic,
        expect,
    }
}

/// One director's host: `interfaces`, or `address`/`network` plus a leg on the real servers' network.
fn director_spec(
    ctx: &mut Ctx<'_, '_, '_>,
    d: Option<&RawDirector>,
    name: String,
    name_span: Span,
    front: usize,
    server_net: usize,
) -> HostSpec {
    let mut ifaces = Vec::new();
    match d.and_then(|d| d.interfaces.as_ref()) {
        Some(list) => {
            if let Some(a) = d.and_then(|d| d.address.as_ref()) {
                ctx.p.push(
                    span(a),
                    "give either `address` or `interfaces` for the director, not both",
                    Some("put the address in the first interface".into()),
                );
            }
            for i in list.get_ref() {
                ifaces.extend(ctx.explicit_iface(i));
            }
            if list.get_ref().is_empty() {
                ctx.p
                    .push(span(list), "the director needs at least one interface", None);
            }
        }
        None => {
            let first = ctx.shorthand_iface(
                d.and_then(|d| d.network.as_ref()),
                d.and_then(|d| d.address.as_ref()),
                None,
                front,
            );
            let first_net = first.as_ref().map_or(front, |f| f.network);
            ifaces.extend(first);
            if server_net != first_net {
                ifaces.push(ctx.iface_default(server_net));
            }
        }
    }
    let gateway = ctx.gateway(d.and_then(|d| d.gateway.as_ref()));
    HostSpec {
        name,
        name_span,
        role: Role::Director,
        ifaces,
        gateway,
    }
}

struct RsHostExtras {
    vip_on: VipOn,
    vip_prefix: u8,
    arp_ignore: Option<u8>,
    arp_announce: Option<u8>,
    rp_filter: Option<u8>,
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Client => "a client",
        Role::Director => "the director",
        Role::RealServer => "a real server",
        Role::Router => "a router",
    }
}

/// A small integer sysctl from a fixed set of valid values.
fn arp_sysctl(
    p: &mut Problems<'_>,
    value: Option<&S<i64>>,
    what: &str,
    valid: &[i64],
    default: Option<u8>,
) -> Option<u8> {
    let Some(val) = value else { return default };
    let n = *val.get_ref();
    if !valid.contains(&n) {
        let list: Vec<String> = valid.iter().map(|x| x.to_string()).collect();
        p.error(
            span(val),
            format!("`{what}` = {n} is not a valid value; valid: {}", list.join(" ")),
        );
        return default;
    }
    Some(n as u8)
}

/// Replaces `key` in place, or appends it.
fn set_sysctl(list: &mut Vec<(String, String)>, key: &str, value: String) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key.to_string(), value)),
    }
}

/// What each network must hold: its hosts' interfaces, the VIPs, FULLNAT local addresses
/// and extra client sources, as the default plan will hand them out.
fn address_demands(
    r: &RawScenario,
    specs: &[HostSpec],
    mode: Mode,
    director_count: usize,
    front: usize,
    server_net: usize,
    network_count: usize,
) -> Vec<Demand> {
    let mut demands = vec![Demand::default(); network_count];
    for h in specs {
        for f in &h.ifaces {
            let d = &mut demands[f.network];
            match h.role {
                Role::Director => d.directors += 1,
                Role::RealServer => d.real_servers += 1,
                Role::Client => d.clients += 1,
                Role::Router => d.routers += 1,
            }
        }
    }
    demands[front].vips += director_count.max(1) as u64;
    if mode == Mode::FullNat {
        demands[server_net].local_addresses += director_count as u64;
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
    for h in specs.iter().filter(|h| h.role == Role::Client && sends(&h.name)) {
        if let Some(f) = h.ifaces.first() {
            demands[f.network].extra_sources += extra_sources;
        }
    }
    demands
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

/// Locally administered, stable MAC from host and interface name (FNV-1a),
/// so neighbour tables read the same from run to run.
pub(crate) fn default_mac(host: &str, iface: &str) -> [u8; 6] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host.bytes().chain([b'/']).chain(iface.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let h = hash.to_be_bytes();
    [0x02, h[3], h[4], h[5], h[6], h[7]]
}

fn default_networks(mode: Mode) -> Vec<Network> {
    let net = |name: &str, cidr: &str| Network {
        name: name.into(),
        subnet: cidr.parse().expect("constant subnet"),
    };
    match mode {
        Mode::Nat | Mode::FullNat => vec![net("public", "192.0.2.0/24"), net("private", "198.51.100.0/24")],
        _ => vec![net("lan", "192.0.2.0/24")],
    }
}

/// The declared networks with their `subnet` spans, or the mode's defaults with no spans.
fn resolve_networks(r: &RawScenario, mode: Mode, p: &mut Problems<'_>) -> (Vec<Network>, Vec<Span>) {
    if r.networks.is_empty() {
        return (default_networks(mode), Vec::new());
    }
    let mut out: Vec<Network> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    for (i, n) in r.networks.iter().enumerate() {
        let header = r.network_spans[i].clone();
        let Some(name) = n.name.as_ref() else {
            p.push(header, "[[network]] needs a `name`", Some("e.g. name = \"lan\"".into()));
            continue;
        };
        if !v::lab_label(name.get_ref()) {
            p.push(
                span(name),
                format!("network name \"{}\" is not usable", name.get_ref()),
                Some(v::LAB_LABEL_HINT.into()),
            );
        }
        let Some(subnet_text) = n.subnet.as_ref() else {
            p.push(
                span(name),
                format!("network \"{}\" needs a `subnet`", name.get_ref()),
                Some("e.g. subnet = \"192.0.2.0/24\"".into()),
            );
            continue;
        };
        let Some(subnet) = v::subnet(p, subnet_text) else {
            continue;
        };
        if out.iter().any(|o| o.name == *name.get_ref()) {
            p.push(
                span(name),
                format!("duplicate network name \"{}\"", name.get_ref()),
                None,
            );
            continue;
        }
        if let Some(o) = out
            .iter()
            .find(|o| o.subnet.contains(&subnet.network()) || subnet.contains(&o.subnet.network()))
        {
            p.push(
                span(subnet_text),
                format!(
                    "subnet {subnet} of \"{}\" overlaps {} of \"{}\"",
                    name.get_ref(),
                    o.subnet,
                    o.name
                ),
                None,
            );
            continue;
        }
        out.push(Network {
            name: name.get_ref().clone(),
            subnet,
        });
        spans.push(span(subnet_text));
    }
    if out.is_empty() {
        // Keep going with the defaults so later problems are still found.
        return (default_networks(mode), Vec::new());
    }
    if matches!(mode, Mode::Nat | Mode::FullNat) && out.len() < 2 {
        p.push(
            r.network_spans.first().cloned().flatten(),
            format!("{mode} needs two networks: clients' (first) and real servers' (second)"),
            Some("add a second [[network]] for the real servers".into()),
        );
    }
    (out, spans)
}

struct Ctx<'n, 'p, 't> {
    networks: &'n [Network],
    p: &'p mut Problems<'t>,
}

impl Ctx<'_, '_, '_> {
    fn iface_default(&self, network: usize) -> IfaceSpec {
        IfaceSpec {
            network,
            address: None,
            address_span: None,
            mac: None,
        }
    }

    fn network_index(&mut self, name: &S<String>) -> Option<usize> {
        let found = self.networks.iter().position(|n| n.name == *name.get_ref());
        if found.is_none() {
            let names: Vec<&str> = self.networks.iter().map(|n| n.name.as_str()).collect();
            self.p.push(
                span(name),
                format!("network \"{}\" does not exist", name.get_ref()),
                suggest::did_you_mean(name.get_ref(), names.iter().copied())
                    .or_else(|| Some(format!("networks: {}", suggest::list(&names)))),
            );
        }
        found
    }

    /// One interface from `network`/`address`/`mac` keys (host shorthand).
    fn shorthand_iface(
        &mut self,
        network: Option<&S<String>>,
        address: Option<&S<String>>,
        mac: Option<&S<String>>,
        default_net: usize,
    ) -> Option<IfaceSpec> {
        let addr = address.and_then(|a| v::ipv4(self.p, a, "address"));
        let address_span = address.and_then(span);
        let net = match network {
            Some(n) => self.network_index(n)?,
            None => match addr {
                Some(a) => match self.networks.iter().position(|n| n.subnet.contains(&a)) {
                    Some(i) => i,
                    None => {
                        let nets: Vec<String> = self
                            .networks
                            .iter()
                            .map(|n| format!("{} {}", n.name, n.subnet))
                            .collect();
                        self.p.push(
                            address_span,
                            format!("address {a} is outside every network"),
                            Some(format!("networks: {}", nets.join(", "))),
                        );
                        return None;
                    }
                },
                None => default_net,
            },
        };
        let addr = addr.and_then(|a| self.check_in_network(a, net, address_span.clone()));
        let mac = mac.and_then(|m| v::mac(self.p, m));
        Some(IfaceSpec {
            network: net,
            address: addr,
            address_span,
            mac,
        })
    }

    fn explicit_iface(&mut self, i: &S<RawInterface>) -> Option<IfaceSpec> {
        let raw = i.get_ref();
        let Some(network) = raw.network.as_ref() else {
            self.p.push(
                span(i),
                "interface needs a `network`",
                Some("e.g. { network = \"lan\", address = \"192.0.2.1\" }".into()),
            );
            return None;
        };
        let net = self.network_index(network)?;
        let address_span = raw.address.as_ref().and_then(span);
        let addr = raw
            .address
            .as_ref()
            .and_then(|a| v::ipv4(self.p, a, "address"))
            .and_then(|a| self.check_in_network(a, net, address_span.clone()));
        let mac = raw.mac.as_ref().and_then(|m| v::mac(self.p, m));
        Some(IfaceSpec {
            network: net,
            address: addr,
            address_span,
            mac,
        })
    }

    fn check_in_network(&mut self, a: Ipv4Addr, net: usize, s: Span) -> Option<Ipv4Addr> {
        let n = &self.networks[net];
        if !n.subnet.contains(&a) {
            self.p.push(
                s,
                format!("address {a} is outside network \"{}\" ({})", n.name, n.subnet),
                None,
            );
            return None;
        }
        if a == n.subnet.network() || a == n.subnet.broadcast() {
            self.p.push(
                s,
                format!(
                    "address {a} is the {} address of {}",
                    if a == n.subnet.network() {
                        "network"
                    } else {
                        "broadcast"
                    },
                    n.subnet
                ),
                None,
            );
            return None;
        }
        Some(a)
    }

    fn gateway(&mut self, gw: Option<&S<String>>) -> Option<(Ipv4Addr, Span)> {
        let gw = gw?;
        v::ipv4(self.p, gw, "gateway").map(|a| (a, span(gw)))
    }

    /// The host's name, or `<prefix><n>` (`rs1`, `client`, `client2`) when absent.
    fn host_name(
        &mut self,
        name: Option<&S<String>>,
        prefix: &str,
        index: usize,
        total: usize,
        header: Span,
    ) -> (String, Span) {
        match name {
            Some(n) => {
                v::host_name(self.p, n);
                (n.get_ref().clone(), span(n))
            }
            None if total == 1 => (prefix.to_string(), header),
            None => (format!("{prefix}{}", index + 1), header),
        }
    }
}

fn resolve_traffic(
    r: &RawScenario,
    client_names: &[String],
    plans: &[(String, Plan)],
    hosts: &mut [Host],
    used: &mut HashMap<Ipv4Addr, (String, Span)>,
    p: &mut Problems<'_>,
) -> Traffic {
    let t = &r.traffic;
    let requests: u32 = match t.requests.as_ref() {
        Some(n) if *n.get_ref() == 0 => {
            p.push(
                span(n),
                "`requests` = 0: the scenario would send nothing",
                Some("the default is 100".into()),
            );
            100
        }
        other => v::int_in(p, other, "requests", 1, 10_000_000, 100),
    };
    let connection = v::keyword(p, t.connection.as_ref(), ConnectionMode::New);
    let compare = t.compare.as_ref().map(|c| v::keyword(p, Some(c), Comparison::Exact));
    let concurrency: u32 = v::int_in(p, t.concurrency.as_ref(), "concurrency", 1, 10_000, 1);
    let source_port: Option<u16> = t
        .source_port
        .as_ref()
        .map(|sp| v::int_in(p, Some(sp), "source_port", 1, 65535, 0u16))
        .filter(|&x| x != 0);
    let timeout = Duration::from_millis(v::int_in(p, t.timeout_ms.as_ref(), "timeout_ms", 1, 3_600_000, 2000u64));
    let path = t
        .path
        .as_ref()
        .and_then(|pa| v::request_path(p, pa))
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let names: Vec<String> = match t.clients.as_ref() {
        None => client_names.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for c in list {
                if client_names.contains(c.get_ref()) {
                    out.push(c.get_ref().clone());
                } else if r.complete {
                    p.push(
                        span(c),
                        format!("traffic client \"{}\" is not a [[client]]", c.get_ref()),
                        reference_hint(c.get_ref(), client_names),
                    );
                }
            }
            out
        }
    };
    if t.clients.as_ref().is_some_and(|l| l.is_empty()) {
        p.push(
            None,
            "traffic.clients is empty: no client would send",
            Some("remove it to send from every client".into()),
        );
    }
    // Sources: each client's own address first, then extra addresses from .150 down.
    let mut clients = Vec::new();
    for name in &names {
        let Some(host) = hosts.iter_mut().find(|h| h.name == *name) else {
            continue;
        };
        let Some(eth0) = host.interfaces.first_mut() else {
            continue;
        };
        let own = eth0.address.addr();
        let mut sources = vec![own];
        match t.sources.as_ref().map(|s| (s.get_ref(), span(s))) {
            None => {}
            Some((RawSources::Count(n), s)) => {
                let n = *n;
                if !(1..=1000).contains(&n) {
                    p.push(s, format!("`sources` = {n} is out of range 1..=1000"), None);
                } else {
                    for _ in 1..n {
                        let plan = plans
                            .iter()
                            .find(|(n, _)| *n == eth0.network)
                            .map_or_else(|| Plan::new(eth0.address.trunc()), |(_, plan)| *plan);
                        let free = plan.first_free(address_plan::FIRST_EXTRA_SOURCE_HOST, Step::Down, |a| {
                            used.contains_key(a)
                        });
                        match free.map(|(_, a)| a) {
                            Some(a) => {
                                used.insert(a, (name.clone(), s.clone()));
                                eth0.secondary
                                    .push(Ipv4Net::new(a, eth0.address.prefix_len()).expect("valid prefix"));
                                sources.push(a);
                            }
                            None => {
                                p.push(
                                    s.clone(),
                                    format!("no free address left for {n} sources of \"{name}\""),
                                    Some("give fewer sources or a larger subnet".into()),
                                );
                                break;
                            }
                        }
                    }
                }
            }
            Some((RawSources::List(list), s)) => {
                if names.len() > 1 {
                    p.push(
                        s.clone(),
                        "a list of `sources` needs exactly one traffic client",
                        Some("give a count instead, or set traffic.clients to one client".into()),
                    );
                }
                sources.clear();
                for text in list {
                    let Ok(a) = text.parse::<Ipv4Addr>() else {
                        p.push(s.clone(), format!("source \"{text}\" is not an IPv4 address"), None);
                        continue;
                    };
                    if !eth0.address.contains(&a) {
                        p.push(
                            s.clone(),
                            format!(
                                "source {a} is outside the network of \"{name}\" ({})",
                                eth0.address.trunc()
                            ),
                            None,
                        );
                        continue;
                    }
                    if a != own {
                        if let Some((owner, _)) = used.get(&a).filter(|(o, _)| o != name) {
                            p.push(
                                s.clone(),
                                format!("source {a} is already the address of \"{owner}\""),
                                None,
                            );
                            continue;
                        }
                        used.insert(a, (name.clone(), s.clone()));
                        eth0.secondary
                            .push(Ipv4Net::new(a, eth0.address.prefix_len()).expect("valid prefix"));
                    }
                    sources.push(a);
                }
                if sources.is_empty() {
                    sources.push(own);
                }
            }
        }
        clients.push(TrafficClient {
            name: name.clone(),
            sources,
        });
    }
    Traffic {
        requests,
        connection,
        concurrency,
        clients,
        source_port,
        timeout,
        path,
        compare,
    }
}

fn reference_hint(name: &str, candidates: &[String]) -> Option<String> {
    suggest::did_you_mean(name, candidates.iter().map(String::as_str)).or_else(|| {
        let list: Vec<&str> = candidates.iter().map(String::as_str).collect();
        (!list.is_empty()).then(|| format!("known: {}", suggest::list(&list)))
    })
}

fn resolve_expect(
    r: &RawScenario,
    rs_names: &[String],
    real_servers: &[RealServer],
    traffic: &Traffic,
    p: &mut Problems<'_>,
) -> Expect {
    let e = &r.expect;
    let names = |list: Option<&Vec<S<String>>>, what: &str, p: &mut Problems<'_>| -> Option<Vec<String>> {
        let list = list?;
        let mut out = Vec::new();
        for n in list {
            if rs_names.contains(n.get_ref()) {
                out.push(n.get_ref().clone());
            } else if r.complete {
                p.push(
                    span(n),
                    format!("expect.{what}: \"{}\" is not a [[real_server]]", n.get_ref()),
                    reference_hint(n.get_ref(), rs_names),
                );
            }
        }
        Some(out)
    };
    let mut backends = names(e.backends.as_ref(), "backends", p);
    if let Some(b) = backends.as_mut() {
        b.sort_by_key(|n| rs_names.iter().position(|x| x == n));
        b.dedup();
    }
    let sequence = names(e.sequence.as_ref(), "sequence", p);
    if let (Some(seq), true) = (e.sequence.as_ref(), traffic.concurrency > 1) {
        p.push(
            seq.first().and_then(span),
            format!("expect.sequence needs concurrency = 1 (it is {})", traffic.concurrency),
            Some("with parallel requests the order of answers is not defined".into()),
        );
    }
    let answering: Option<u32> = e
        .answering
        .as_ref()
        .map(|a| v::int_in(p, Some(a), "answering", 0, rs_names.len().max(1) as i64, 0));
    let tolerance: f64 = match e.tolerance.as_ref() {
        Some(t) if !(0.0..=1.0).contains(t.get_ref()) => {
            p.error(
                span(t),
                format!(
                    "`tolerance` = {} must be between 0 and 1 (a fraction of each expected share, not a percentage)",
                    t.get_ref()
                ),
            );
            0.1
        }
        Some(t) => *t.get_ref(),
        None => 0.1,
    };
    let share = e.share.as_ref().map(|map| {
        let mut out: Vec<(String, f64)> = Vec::new();
        let mut sum = 0.0;
        for (name, value) in map.get_ref() {
            let x = *value.get_ref();
            if !(0.0..=1.0).contains(&x) {
                p.error(
                    span(value),
                    format!("share of \"{name}\" = {x} must be between 0 and 1"),
                );
            }
            sum += x;
            if rs_names.contains(name) {
                out.push((name.clone(), x));
            } else if r.complete {
                p.push(
                    span(value),
                    format!("expect.share: \"{name}\" is not a [[real_server]]"),
                    reference_hint(name, rs_names),
                );
            }
        }
        if (sum - 1.0).abs() > 0.01 && !map.get_ref().is_empty() {
            p.push(
                span(map),
                format!("expect.share sums to {sum:.3}, not 1"),
                Some("shares are fractions of all requests; servers left out are expected to get 0".into()),
            );
        }
        out.sort_by_key(|(n, _)| rs_names.iter().position(|x| x == n));
        out
    });
    let even = e.even.as_ref().is_some_and(|b| *b.get_ref());
    if let (Some(ev), true) = (
        e.even.as_ref(),
        even && real_servers.iter().all(|r| r.weight == 0 || r.state != ServerState::Up),
    ) {
        p.push(
            span(ev),
            "expect.even = true, but no real server is up with weight > 0",
            None,
        );
    }
    let errors: u32 = v::int_in(p, e.errors.as_ref(), "errors", 0, u32::MAX as i64, 0);
    let mut diagnosis = Vec::new();
    for d in e.diagnosis.iter().flatten() {
        let before = p.len();
        let cause = v::keyword(p, Some(d), Cause::Healthy);
        if p.len() == before {
            diagnosis.push(cause);
        }
    }
    Expect {
        backends,
        answering,
        share,
        tolerance,
        even,
        sequence,
        sticky: e.sticky.as_ref().is_some_and(|b| *b.get_ref()),
        errors,
        diagnosis,
    }
}
