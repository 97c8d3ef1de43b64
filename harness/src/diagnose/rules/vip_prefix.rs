//! Cause 22: a DR/TUN real server holds the VIP with a prefix wider than /32, or on its LAN
//! interface. A wide prefix on lo makes the whole range local to the server (the kernel adds
//! `local <net> dev lo` to its local table): its replies to clients, the director or the
//! gateway in that range are routed to itself and never leave (with rp_filter on, their
//! packets are already dropped on arrival as martian). On
//! the LAN interface the VIP is answered in ARP whatever arp_ignore says (cause 2 follows).

use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, HostEvidence, IfaceAddr, Mode, RealServerEvidence};
use crate::diagnose::finding::{Finding, LATENT};
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::VipPrefix;

/// What a finding on a LAN-held VIP explains once a client resolves the VIP to that server.
const CLAIMED: f64 = 0.95;
/// A VIP on the LAN interface without proof that a client sends to it yet: as likely as
/// arp-flux's own latent finding (the tie goes to this, the more specific cause).
const ON_LAN: f64 = 0.3;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if !matches!(ev.mode, Mode::Dr | Mode::Tun) {
        return None;
    }
    let vip = ev.vip()?;
    let dev = if ev.mode == Mode::Tun { "tunl0" } else { "lo" };
    let (mut lines, mut fixes) = (Vec::new(), Vec::new());
    let (mut cut_off, mut claimed, mut on_lan, mut wide) = (Vec::new(), false, false, false);
    for rs in &ev.real_servers {
        let Some(held) = rs.host.address_of(vip) else { continue };
        let lan_held = !holds_without_arp(&rs.host, held);
        if held.net.prefix_len() < 32 {
            wide = true;
            let range = held.net.trunc();
            lines.push(format!(
                "{} holds {} on {}: all of {range} is local to it (`local {range} dev {}` in its local table), not just the VIP",
                rs.name, held.net, held.iface, held.iface
            ));
            let covered = covered_hosts(ev, rs, held);
            if !covered.is_empty() {
                lines.push(format!(
                    "{range} holds {}: {} routes its replies to them to itself (lo), so it cannot answer them",
                    covered.join(", "),
                    rs.name
                ));
                cut_off.push(rs.name.clone());
            }
        }
        if lan_held {
            on_lan = true;
            lines.push(format!(
                "{} holds {} on {}, its LAN interface: it answers ARP for the VIP there whatever arp_ignore says",
                rs.name, held.net, held.iface
            ));
            if let Some(proof) = claim_proof(ev, rs, vip) {
                lines.push(proof);
                claimed = true;
            }
        }
        if held.net.prefix_len() < 32 || lan_held {
            fixes.push(format!(
                "on {}: `ip addr del {} dev {} && ip addr add {vip}/32 dev {dev}` (arp_ignore=1 and arp_announce=2 set before)",
                rs.name, held.net, held.iface
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let explains = if claimed {
        CLAIMED
    } else if !cut_off.is_empty() {
        share_explains(cut_off.len(), ev.real_servers.len())
    } else if on_lan {
        ON_LAN
    } else {
        LATENT
    };
    let title = match (wide, on_lan) {
        (true, false) => format!("A real server holds the VIP {vip} with a prefix wider than /32"),
        (false, true) => format!("A real server holds the VIP {vip} on its LAN interface instead of {dev}"),
        _ => format!("Real servers hold the VIP {vip} with a wide prefix or on their LAN interface"),
    };
    Some(Finding::new(ID, title, explains).evidence(capped(lines)).fix(fixes))
}

/// Loopback, a dummy or the tunnel device: where a VIP is held without being answered in ARP.
fn holds_without_arp(host: &HostEvidence, held: &IfaceAddr) -> bool {
    let kind = host.link(&held.iface).and_then(|l| l.kind.as_deref());
    held.iface == "lo" || held.iface == "tunl0" || matches!(kind, Some("loopback" | "dummy" | "ipip"))
}

/// Other hosts' addresses (clients, directors, the server's gateways) inside the range the
/// wide prefix makes local, as `client c1 192.0.2.10`.
fn covered_hosts(ev: &Evidence, rs: &RealServerEvidence, held: &IfaceAddr) -> Vec<String> {
    let range = held.net.trunc();
    let inside = |ip: Ipv4Addr| range.contains(&ip) && ip != held.net.addr() && rs.host.address_of(ip).is_none();
    let outward = |h: &HostEvidence| -> Vec<Ipv4Addr> {
        h.addresses
            .iter()
            .filter(|a| a.iface != "lo" && !a.net.addr().is_loopback())
            .map(|a| a.net.addr())
            .filter(|ip| Some(*ip) != ev.vip())
            .collect()
    };
    let mut out = Vec::new();
    for c in &ev.clients {
        out.extend(
            outward(&c.host)
                .into_iter()
                .filter(|ip| inside(*ip))
                .map(|ip| format!("{} {ip}", role_and_name("client", &c.name))),
        );
    }
    for d in ev.directors() {
        out.extend(
            outward(d)
                .into_iter()
                .filter(|ip| inside(*ip))
                .map(|ip| format!("{} {ip}", the_director(&d.name))),
        );
    }
    for gw in rs.host.routes.iter().filter_map(|r| r.via).filter(|ip| inside(*ip)) {
        out.push(format!("its gateway {gw}"));
    }
    out.dedup();
    out
}

/// A client's neighbour entry or the ARP probe naming this server's MAC for the VIP.
fn claim_proof(ev: &Evidence, rs: &RealServerEvidence, vip: Ipv4Addr) -> Option<String> {
    let ours = |mac| rs.host.link_with_mac(mac).is_some();
    for c in &ev.clients {
        if let Some(mac) = c.host.neighbour(vip).and_then(|n| n.mac).filter(|m| ours(*m)) {
            return Some(format!(
                "{} resolves {vip} to {mac}, {}: its requests go straight to {}, past the director",
                role_and_name("client", &c.name),
                describe_mac(ev, mac),
                rs.name
            ));
        }
    }
    let probe = ev.arp_probe.as_ref()?;
    let mac = probe.replies.iter().find(|m| ours(**m))?;
    Some(format!(
        "ARP probe for {vip} from {}: answered by {mac}, {}",
        probe.from,
        describe_mac(ev, *mac)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::diagnose;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn with_vip_as(ev: &mut Evidence, index: usize, iface: &str, net: &str) {
        let host = &mut ev.real_servers[index].host;
        host.addresses.retain(|a| a.net.addr() != sample::VIP);
        host.addresses.push(sample::addr(iface, net));
    }

    /// rs2 cannot answer anyone in the /24: its requests time out, the SYNs stay in SYN_RECV.
    fn wide_on_lo() -> Evidence {
        let mut ev = sample::healthy_dr();
        with_vip_as(&mut ev, 1, "lo", "192.0.2.100/24");
        for (n, r) in ev.records.iter_mut().enumerate() {
            if n % 3 == 1 {
                r.backend = None;
                r.error = Some("timeout".into());
            }
        }
        ev
    }

    #[test]
    fn fires_for_a_wide_prefix_on_lo_that_covers_the_clients() {
        let ev = wide_on_lo();
        let finding = check(&ev, &summarise(&ev)).expect("vip-prefix must fire");
        assert_eq!(
            finding.evidence,
            [
                "rs2 holds 192.0.2.100/24 on lo: all of 192.0.2.0/24 is local to it (`local 192.0.2.0/24 dev lo` in its local table), not just the VIP",
                "192.0.2.0/24 holds client c1 192.0.2.10, the director d1 192.0.2.2: rs2 routes its replies to them to itself (lo), so it cannot answer them",
            ]
        );
        assert_eq!(
            finding.fix,
            ["on rs2: `ip addr del 192.0.2.100/24 dev lo && ip addr add 192.0.2.100/32 dev lo` (arp_ignore=1 and arp_announce=2 set before)"]
        );
        assert_eq!(finding.explains, share_explains(1, 3));
        let d = diagnose(&ev);
        assert_eq!(d.ids().first(), Some(&"vip-prefix"), "{:?}", d.ids());
        assert!(!d.ids().contains(&"vip-not-local"), "the VIP is local: {:?}", d.ids());
    }

    #[test]
    fn a_wide_prefix_that_covers_nobody_is_only_latent() {
        let mut ev = sample::healthy_dr();
        with_vip_as(&mut ev, 0, "lo", "192.0.2.100/30");
        let finding = check(&ev, &summarise(&ev)).expect("still worth saying");
        assert_eq!(finding.evidence.len(), 1, "{:?}", finding.evidence);
        assert!(finding.explains <= LATENT);
    }

    #[test]
    fn the_vip_on_the_lan_interface_ranks_before_arp_flux() {
        let mut ev = sample::healthy_dr();
        with_vip_as(&mut ev, 2, "eth0", "192.0.2.100/32");
        let finding = check(&ev, &summarise(&ev)).expect("vip-prefix must fire");
        assert!(finding.evidence[0].starts_with("rs3 holds 192.0.2.100/32 on eth0, its LAN interface"));
        assert_eq!(finding.explains, ON_LAN);
        assert_eq!(diagnose(&ev).ids(), ["vip-prefix", "arp-flux"]);

        // The client learnt rs3's MAC for the VIP: both say so, the interface first.
        ev.clients[0].host.neighbours[0].mac = Some(sample::mac(0x13));
        for r in &mut ev.records {
            r.backend = Some("rs3".into());
        }
        let finding = check(&ev, &summarise(&ev)).unwrap();
        assert_eq!(finding.explains, CLAIMED);
        assert_eq!(
            finding.evidence[1],
            "client c1 resolves 192.0.2.100 to 02:00:00:00:00:13, rs3's eth0: its requests go straight to rs3, past the director"
        );
        assert_eq!(&diagnose(&ev).ids()[..2], ["vip-prefix", "arp-flux"]);
    }

    #[test]
    fn silent_for_a_vip_32_on_lo_or_tunl0_and_outside_dr_tun() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        with_vip_as(&mut ev, 0, "tunl0", "192.0.2.100/32");
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = wide_on_lo();
        ev.mode = Mode::Nat;
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
