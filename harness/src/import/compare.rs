//! Whether an imported scenario gives back a service: what `lvslab conform` asks of the real
//! `ipvsadm -S -n`, and what the round-trip tests ask of lvslab's own views.

use std::net::Ipv4Addr;

use crate::scenario::Scenario;

/// `Err` names every field of `back`'s services that differs from `original`'s, the VIP
/// taken as `vip` (each of several directors serves its own).
pub fn same_service(original: &Scenario, vip: Ipv4Addr, back: &Scenario) -> Result<(), String> {
    let servers = |s: &Scenario| {
        let mut v: Vec<_> = s.real_servers.iter().map(|r| (r.address, r.port, r.weight)).collect();
        v.sort();
        v
    };
    let mut wrong: Vec<String> = Vec::new();
    if original.services.len() != back.services.len() {
        wrong.push(format!(
            "{} service(s) came back as {}",
            original.services.len(),
            back.services.len()
        ));
    }
    // Import puts a VIP outside the lab's range on the lab's own (keeping it in a comment).
    let mapped = super::to_scenario::lab_vip(&vip.to_string());
    if back.service().vip != vip && back.service().vip != mapped {
        wrong.push(format!("VIP {vip} came back as {}", back.service().vip));
    }
    // A table lists its FWM services after the address services (the kernel's dump order):
    // each service is compared with the one of its own key.
    let key = |s: &crate::scenario::Service| match &s.fwmark {
        Some(rule) => format!("fwmark {}", rule.mark),
        None => format!("{}/{}", s.protocol, s.port),
    };
    let mut order: Vec<usize> = (0..back.services.len()).collect();
    for (i, a) in original.services.iter().enumerate() {
        if let Some(j) = (i..order.len()).find(|&j| key(&back.services[order[j]]) == key(a)) {
            order.swap(i, j);
        }
    }
    let back_services: Vec<&crate::scenario::Service> = order.iter().map(|&j| &back.services[j]).collect();
    for (index, (a, b)) in original
        .services
        .iter()
        .zip(back_services.iter().copied())
        .enumerate()
        .skip(1)
    {
        // A later service on a VIP of its own comes back on it (lab VIPs import as they are).
        let own = |s: &Scenario, svc: &crate::scenario::Service| (svc.vip != s.service().vip).then_some(svc.vip);
        if own(original, a) != own(back, b) {
            wrong.push(format!("service {}: VIP {} came back as {}", index + 1, a.vip, b.vip));
        }
    }
    for (index, (a, b)) in original.services.iter().zip(back_services.iter().copied()).enumerate() {
        let at = |s: &Scenario, svc: &crate::scenario::Service| {
            s.services.iter().position(|x| std::ptr::eq(x, svc)).unwrap_or(index)
        };
        let members = |s: &Scenario, svc: &crate::scenario::Service| {
            let mut v: Vec<_> = s
                .real_servers
                .iter()
                .filter(|r| svc.has_real_server(&r.name))
                .map(|r| (r.address, s.real_port(at(s, svc), r)))
                .collect();
            v.sort();
            format!("{v:?}")
        };
        let flags = |svc: &crate::scenario::Service| {
            let mut v: Vec<&str> = svc.flags.iter().map(|f| f.as_str()).collect();
            v.sort_unstable();
            v.join(",")
        };
        let checks = [
            // Each service has its own mode (its destinations' -g/-m/-i).
            ("mode", a.mode.as_str().to_owned(), b.mode.as_str().to_owned()),
            // A fwmark service's ports are its match's.
            ("port", port(a), port(b)),
            (
                "protocol",
                a.protocol.as_str().to_owned(),
                b.protocol.as_str().to_owned(),
            ),
            (
                "scheduler",
                a.scheduler.as_str().to_owned(),
                b.scheduler.as_str().to_owned(),
            ),
            ("flags", flags(a), flags(b)),
            (
                "persistence",
                format!("{:?}", a.persistence),
                format!("{:?}", b.persistence),
            ),
            (
                "netmask",
                a.persistence_netmask().to_string(),
                b.persistence_netmask().to_string(),
            ),
            ("one_packet", a.one_packet.to_string(), b.one_packet.to_string()),
            ("fwmark match", mark_match(a), mark_match(b)),
            ("its real servers", members(original, a), members(back, b)),
        ];
        // One service: its fields as they are; several: each under its place in the table.
        let prefix = if original.services.len() > 1 {
            format!("service {}: ", index + 1)
        } else {
            String::new()
        };
        wrong.extend(
            checks
                .iter()
                .filter(|(_, x, y)| x != y)
                .map(|(what, x, y)| format!("{prefix}{what} {x} came back as {y}")),
        );
    }
    let (x, y) = (format!("{:?}", servers(original)), format!("{:?}", servers(back)));
    if x != y {
        wrong.push(format!("real servers {x} came back as {y}"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

fn port(svc: &crate::scenario::Service) -> String {
    match svc.fwmark {
        Some(_) => "fwmark".into(),
        None => svc.port.to_string(),
    }
}

/// `mark 1 TCP [192.0.2.100/32] ports [80, 443]`, or `none`.
fn mark_match(svc: &crate::scenario::Service) -> String {
    match &svc.fwmark {
        Some(r) => {
            let mut addrs = r.addresses.clone();
            addrs.sort();
            let mut ports = r.ports.clone();
            ports.sort_unstable();
            format!("mark {} {} {addrs:?} ports {ports:?}", r.mark, r.protocol.name())
        }
        None => "none".into(),
    }
}
