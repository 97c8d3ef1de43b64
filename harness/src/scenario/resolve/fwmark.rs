//! Firewall-mark services (`ipvsadm -f`): `fwmark = N` with `[service.mark]` (which packets the
//! director marks), `[traffic] destinations` (the addresses the requests cycle over, a hot one
//! among them) and what the hosts need for traffic to addresses no host holds: clients route
//! them via the director, DR/TUN real servers accept them (the prefixes on `lo`/`tunl0`).

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv4Subnets};

use super::context::Context;
use crate::nft::mark::MarkRule;
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Host, Mode, RealServer, Role, Route, Service, Traffic};
use crate::scenario::raw::{RawExpect, RawScenario, S};
use crate::scenario::validate::{self as v, span};

/// Most destination addresses `[traffic] destinations` may name (ranges expanded).
const MAX_DESTINATIONS: usize = 4096;

/// `hot_share` when the file gives `hot_destination` alone.
const DEFAULT_HOT_SHARE: f64 = 0.5;

/// Each service's `fwmark` and `[service.mark]`, before its VIP is known: the match's
/// addresses stay empty when the file gives none (`finish` puts the VIP there).
pub(super) fn resolve(r: &RawScenario, services: &mut [Service], p: &mut Problems<'_>) {
    let raws = std::iter::once(&r.service).chain(&r.more_services);
    let mut marks: Vec<u32> = Vec::new();
    for (svc, raw) in services.iter_mut().zip(raws) {
        let Some(fwmark) = &raw.fwmark else {
            if let Some(m) = &raw.mark {
                let at = m.addresses.as_ref().and_then(|a| a.first()).map(|a| a.span());
                let at = at.or(m.ports.as_ref().and_then(|a| a.first()).map(|a| a.span()));
                p.push(
                    at,
                    format!("[service.mark] on service \"{}\", which has no `fwmark`", svc.name),
                    Some("set `fwmark` = N to make it an ipvsadm -f service, or remove [service.mark]".into()),
                );
            }
            continue;
        };
        let n = *fwmark.get_ref();
        if n == 0 {
            p.push(
                span(fwmark),
                "`fwmark` = 0 is no mark: the kernel keys address services by mark 0",
                Some("use a mark from 1 to 4294967295".into()),
            );
            continue;
        }
        let mark: u32 = v::int_in(p, Some(fwmark), "fwmark", 1, u32::MAX as i64, 0);
        if mark == 0 {
            continue;
        }
        if marks.contains(&mark) {
            p.push(
                span(fwmark),
                format!("two services have `fwmark` = {mark}"),
                Some("a mark names one service (ipvsadm -A -f): give each its own".into()),
            );
        }
        marks.push(mark);
        if raw.name.is_none() {
            svc.name = format!("fwmark/{mark}");
        }
        if let Some(port) = &raw.port {
            p.push(
                span(port),
                format!("service \"{}\" has `fwmark`, so no port of its own", svc.name),
                Some("list the ports its mark covers in [service.mark] `ports`".into()),
            );
        }
        if let Some(rp) = &raw.real_port {
            p.push(
                span(rp),
                "`real_port` on a fwmark service: its real servers take each packet's own port",
                Some("remove `real_port`".into()),
            );
        }
        if svc.mode == Mode::Direct {
            p.push(
                span(fwmark),
                "`fwmark` with mode \"direct\": there is no director to mark packets",
                Some("use mode \"dr\", \"nat\" or \"tun\"".into()),
            );
        }
        let mark_table = raw.mark.as_ref();
        let addresses = mark_table
            .and_then(|m| m.addresses.as_ref())
            .map(|list| prefixes(list, "[service.mark] addresses", p))
            .unwrap_or_default();
        let mut ports: Vec<u16> = Vec::new();
        for port in mark_table.and_then(|m| m.ports.as_ref()).into_iter().flatten() {
            let n: u16 = v::int_in(p, Some(port), "port", 1, 65535, 0);
            if n == 0 {
                continue;
            }
            if ports.contains(&n) {
                p.push(span(port), format!("port {n} is listed twice"), None);
            } else {
                ports.push(n);
            }
        }
        svc.port = ports.first().copied().unwrap_or(80);
        svc.fwmark = Some(MarkRule {
            mark,
            protocol: svc.protocol,
            addresses,
            ports,
        });
    }
}

/// `a.b.c.d`, `a.b.c.d/n` or `a.b.c.d-e.f.g.h`, as the fewest prefixes that cover them.
fn prefixes(list: &[S<String>], what: &str, p: &mut Problems<'_>) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for item in list {
        match parse_prefixes(item.get_ref().trim()) {
            Ok(nets) => {
                for net in nets {
                    if !out.contains(&net) {
                        out.push(net);
                    }
                }
            }
            Err((message, hint)) => p.push(span(item), format!("{what}: {message}"), hint),
        }
    }
    out
}

/// One item of an address list, or what is wrong with it (message, hint).
fn parse_prefixes(text: &str) -> Result<Vec<Ipv4Net>, (String, Option<String>)> {
    let not_an_address = || {
        (
            format!("\"{text}\" is not an IPv4 address, prefix or range"),
            Some("e.g. \"203.0.113.7\", \"203.0.113.0/24\" or \"203.0.113.1-203.0.113.40\"".to_string()),
        )
    };
    if let Some((a, b)) = text.split_once('-') {
        let (Ok(a), Ok(b)) = (a.trim().parse::<Ipv4Addr>(), b.trim().parse::<Ipv4Addr>()) else {
            return Err(not_an_address());
        };
        if a > b {
            return Err((
                format!("range \"{text}\" runs backwards"),
                Some(format!("write \"{b}-{a}\"")),
            ));
        }
        return Ok(Ipv4Subnets::new(a, b, 0).collect());
    }
    if text.contains('/') {
        let net: Ipv4Net = text.parse().map_err(|_| not_an_address())?;
        if net.trunc() != net {
            return Err((
                format!("\"{text}\" has host bits set"),
                Some(format!("did you mean \"{}\"?", net.trunc())),
            ));
        }
        return Ok(vec![net]);
    }
    let addr: Ipv4Addr = text.parse().map_err(|_| not_an_address())?;
    Ok(vec![Ipv4Net::from(addr)])
}

/// The marks' default addresses (the VIP), the hosts' routes and addresses for marked
/// destinations, and `[traffic] destinations` with its hot one.
pub(super) fn finish(
    cx: &mut Context<'_, '_, '_>,
    services: &mut [Service],
    vip: Ipv4Addr,
    hosts: &mut [Host],
    traffic: &mut Traffic,
) {
    let r = cx.raw;
    let p = &mut *cx.p;
    for svc in services.iter_mut() {
        if let Some(rule) = svc.fwmark.as_mut().filter(|r| r.addresses.is_empty()) {
            rule.addresses.push(Ipv4Net::from(vip));
        }
    }
    let t = &r.traffic;
    let fwmark_targets = traffic.services.iter().any(|&i| services[i].fwmark.is_some());
    if let Some(list) = &t.destinations {
        if !fwmark_targets {
            p.push(
                list.first().map(|d| d.span()),
                "[traffic] `destinations` needs a fwmark service to send to",
                Some("set `fwmark` = N in the [service] the traffic goes to".into()),
            );
        }
        let mut addrs: Vec<Ipv4Addr> = Vec::new();
        for item in list {
            let text = item.get_ref().trim();
            let nets = match parse_prefixes(text) {
                Ok(nets) => nets,
                Err((message, hint)) => {
                    p.push(span(item), format!("[traffic] destinations: {message}"), hint);
                    continue;
                }
            };
            for net in nets {
                // A range names every address in it; a prefix its hosts.
                let hosts: Vec<Ipv4Addr> = if text.contains('-') || net.prefix_len() >= 31 {
                    (u32::from(net.network())..=u32::from(net.broadcast()))
                        .map(Ipv4Addr::from)
                        .collect()
                } else {
                    net.hosts().collect()
                };
                for a in hosts {
                    if addrs.len() > MAX_DESTINATIONS {
                        break;
                    }
                    if !addrs.contains(&a) {
                        addrs.push(a);
                    }
                }
            }
        }
        if addrs.len() > MAX_DESTINATIONS {
            p.push(
                list.first().map(|d| d.span()),
                format!("[traffic] `destinations` names more than {MAX_DESTINATIONS} addresses"),
                None,
            );
            addrs.truncate(MAX_DESTINATIONS);
        }
        traffic.destinations = addrs;
    }
    traffic.hot = hot(r, traffic, p);
    let director_addrs: Vec<(String, Ipv4Addr)> = hosts
        .iter()
        .filter(|h| h.role == Role::Director)
        .flat_map(|h| h.interfaces.iter().map(|i| (i.network.clone(), i.address.addr())))
        .collect();
    let mut reached: Vec<Ipv4Net> = Vec::new();
    for svc in services.iter().filter(|s| s.fwmark.is_some()) {
        let rule = svc.fwmark.as_ref().expect("filtered");
        for net in &rule.addresses {
            if !reached.contains(net) {
                reached.push(*net);
            }
        }
        for host in hosts.iter_mut().filter(|h| svc.has_real_server(&h.name)) {
            // The real server takes marked packets as its own: DR/TUN leave the address as it was.
            let list = match svc.mode {
                Mode::Dr => &mut host.loopback_vips,
                Mode::Tun => &mut host.tun_vips,
                _ => continue,
            };
            for net in &rule.addresses {
                if !list
                    .iter()
                    .any(|have| have.contains(&net.addr()) && have.prefix_len() <= net.prefix_len())
                {
                    list.push(*net);
                }
            }
        }
    }
    for a in &traffic.destinations {
        if !reached.iter().any(|n| n.contains(a)) {
            reached.push(Ipv4Net::from(*a));
        }
    }
    for host in hosts.iter_mut().filter(|h| h.role == Role::Client) {
        let Some(via) = host
            .interfaces
            .iter()
            .find_map(|i| director_addrs.iter().find(|(n, _)| *n == i.network).map(|(_, a)| *a))
        else {
            continue;
        };
        for net in &reached {
            let on_link = host.interfaces.iter().any(|i| i.address.contains(&net.addr()));
            if !on_link && !host.routes.iter().any(|r| r.dst == *net) {
                host.routes.push(Route {
                    dst: *net,
                    via: Some(via),
                });
            }
        }
    }
}

/// `hot_destination` (one of `destinations`) with `hot_share`.
fn hot(r: &RawScenario, traffic: &Traffic, p: &mut Problems<'_>) -> Option<(Ipv4Addr, f64)> {
    let t = &r.traffic;
    let Some(at) = &t.hot_destination else {
        if let Some(share) = &t.hot_share {
            p.push(
                span(share),
                "`hot_share` without `hot_destination`",
                Some("name the hot one: hot_destination = \"203.0.113.7\"".into()),
            );
        }
        return None;
    };
    let addr = v::ipv4(p, at, "hot_destination")?;
    if !traffic.destinations.contains(&addr) {
        p.push(
            span(at),
            format!("`hot_destination` = {addr} is not one of [traffic] `destinations`"),
            None,
        );
        return None;
    }
    let share = match &t.hot_share {
        None => DEFAULT_HOT_SHARE,
        Some(s) if (0.0..=0.95).contains(s.get_ref()) && *s.get_ref() > 0.0 => *s.get_ref(),
        Some(s) => {
            p.push(
                span(s),
                format!("`hot_share` = {} must be more than 0 and at most 0.95", s.get_ref()),
                None,
            );
            DEFAULT_HOT_SHARE
        }
    };
    Some((addr, share))
}

/// `destinations_sticky`: only with `[traffic] destinations`.
pub(super) fn destinations_sticky(e: &RawExpect, traffic: &Traffic, p: &mut Problems<'_>) -> bool {
    let Some(b) = &e.destinations_sticky else { return false };
    if *b.get_ref() && traffic.destinations.is_empty() {
        p.push(
            span(b),
            "`destinations_sticky` needs [traffic] `destinations`",
            Some("list the destination addresses the requests go to".into()),
        );
    }
    *b.get_ref()
}

/// `hot_destination_servers_min`: only with `[traffic] hot_destination`, at most the servers there are.
pub(super) fn hot_destination_servers_min(
    e: &RawExpect,
    traffic: &Traffic,
    real_servers: &[RealServer],
    p: &mut Problems<'_>,
) -> Option<(Ipv4Addr, u32)> {
    let n = e.hot_destination_servers_min.as_ref()?;
    let max = real_servers.len().max(1) as i64;
    let min: u32 = v::int_in(p, Some(n), "hot_destination_servers_min", 1, max, 1);
    match traffic.hot {
        Some((addr, _)) => Some((addr, min)),
        None => {
            p.push(
                span(n),
                "`hot_destination_servers_min` needs [traffic] `hot_destination`",
                None,
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse, Role, Scenario};

    const SERVERS: &str = "[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n";

    fn ok(text: &str) -> Scenario {
        parse(&format!("{text}\n{SERVERS}"), "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")))
    }

    fn problems(text: &str) -> String {
        match parse(&format!("{text}\n{SERVERS}"), "t.toml") {
            Ok(_) => panic!("expected problems in:\n{text}"),
            Err(report) => report.render("t.toml"),
        }
    }

    #[test]
    fn a_fwmark_service_marks_its_vip_by_default_and_its_servers_take_every_marked_prefix() {
        let s = ok("[service]\nmode = \"dr\"\nscheduler = \"lblc\"\nfwmark = 3\n[service.mark]\naddresses = [\"203.0.113.0/26\"]\nports = [80, 443]\n[traffic]\ndestinations = [\"203.0.113.1-203.0.113.3\"]\nhot_destination = \"203.0.113.2\"");
        let svc = s.service();
        let rule = svc.fwmark.as_ref().unwrap();
        assert_eq!((rule.mark, svc.port, svc.name.as_str()), (3, 80, "fwmark/3"));
        assert_eq!(rule.addresses, vec!["203.0.113.0/26".parse().unwrap()]);
        assert_eq!(s.traffic.destinations.len(), 3);
        assert_eq!(s.traffic.hot, Some(("203.0.113.2".parse().unwrap(), 0.5)));
        let rs = s.host("rs1").unwrap();
        assert!(
            rs.loopback_vips.contains(&"203.0.113.0/26".parse().unwrap()),
            "{:?}",
            rs.loopback_vips
        );
        let client = s.hosts_with_role(Role::Client).next().unwrap();
        let director = s.host("director").unwrap().primary_address();
        assert!(client
            .routes
            .iter()
            .any(|r| r.dst == "203.0.113.0/26".parse().unwrap() && r.via == director));
        let plain = ok("[service]\nmode = \"dr\"\nfwmark = 1\n[service.mark]\nports = [80, 443]");
        let rule = plain.service().fwmark.clone().unwrap();
        assert_eq!(rule.addresses, vec![ipnet::Ipv4Net::from(plain.service().vip)]);
        assert_eq!(plain.service().ports(), vec![80, 443]);
    }

    #[test]
    fn bad_fwmark_input_is_named_at_its_line() {
        let text = problems("[service]\nmode = \"dr\"\nfwmark = 0");
        assert!(text.contains("t.toml:3:10: error: `fwmark` = 0 is no mark"), "{text}");
        let text = problems("[service]\nmode = \"dr\"\nport = 443\nfwmark = 1");
        assert!(
            text.contains("t.toml:3:8: error: service \"fwmark/1\" has `fwmark`, so no port of its own"),
            "{text}"
        );
        let text = problems("[service]\nmode = \"dr\"\n[service.mark]\nports = [80]");
        assert!(
            text.contains("t.toml:4:10: error: [service.mark] on service \"tcp/80\", which has no `fwmark`"),
            "{text}"
        );
        let text = problems("[service]\nmode = \"dr\"\nfwmark = 1\n[service.mark]\naddresses = [\"10.0.0.9-10.0.0.1\", \"10.0.0.5/24\", \"ten\"]\nports = [80, 80]");
        assert!(text.contains("range \"10.0.0.9-10.0.0.1\" runs backwards"), "{text}");
        assert!(text.contains("\"10.0.0.5/24\" has host bits set"), "{text}");
        assert!(
            text.contains("\"ten\" is not an IPv4 address, prefix or range"),
            "{text}"
        );
        assert!(text.contains("t.toml:6:14: error: port 80 is listed twice"), "{text}");
        let text = problems("[service]\nmode = \"dr\"\n[traffic]\ndestinations = [\"203.0.113.1\"]");
        assert!(
            text.contains("t.toml:4:17: error: [traffic] `destinations` needs a fwmark service"),
            "{text}"
        );
        let text = problems("[service]\nmode = \"dr\"\nfwmark = 1\n[traffic]\ndestinations = [\"203.0.113.1\"]\nhot_destination = \"203.0.113.9\"\n[expect]\nhot_destination_servers_min = 2");
        assert!(
            text.contains("t.toml:6:19: error: `hot_destination` = 203.0.113.9 is not one of"),
            "{text}"
        );
        assert!(
            text.contains("`hot_destination_servers_min` needs [traffic] `hot_destination`"),
            "{text}"
        );
    }
}
