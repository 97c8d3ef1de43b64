//! Whether an imported scenario gives back a service: what `lvslab conform` asks of the real
//! `ipvsadm -S -n`, and what the round-trip tests ask of lvslab's own views.

use std::net::Ipv4Addr;

use crate::scenario::Scenario;

/// `Err` names every field of `back`'s service that differs from `original`'s, the VIP
/// taken as `vip` (each of several directors serves its own).
pub fn same_service(original: &Scenario, vip: Ipv4Addr, back: &Scenario) -> Result<(), String> {
    let servers = |s: &Scenario| {
        let mut v: Vec<_> = s.real_servers.iter().map(|r| (r.address, r.port, r.weight)).collect();
        v.sort();
        v
    };
    let flags = |s: &Scenario| {
        let mut v: Vec<&str> = s.service().flags.iter().map(|f| f.as_str()).collect();
        v.sort_unstable();
        v.join(",")
    };
    let (a, b) = (&original.service(), &back.service());
    let checks = [
        ("VIP", vip.to_string(), b.vip.to_string()),
        ("port", a.port.to_string(), b.port.to_string()),
        (
            "protocol",
            a.protocol.as_str().to_owned(),
            b.protocol.as_str().to_owned(),
        ),
        ("mode", a.mode.as_str().to_owned(), b.mode.as_str().to_owned()),
        (
            "scheduler",
            a.scheduler.as_str().to_owned(),
            b.scheduler.as_str().to_owned(),
        ),
        ("flags", flags(original), flags(back)),
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
        (
            "real servers",
            format!("{:?}", servers(original)),
            format!("{:?}", servers(back)),
        ),
    ];
    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, x, y)| x != y)
        .map(|(what, x, y)| format!("{what} {x} came back as {y}"))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}
