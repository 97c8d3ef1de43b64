//! Cause 5: in DR and TUN the packet still carries the VIP; a real server without
//! the VIP as a local address drops it (InAddrErrors) and never answers.

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::VipNotLocal;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if !matches!(ev.mode, Mode::Dr | Mode::Tun) {
        return None;
    }
    let vip = ev.vip()?;
    let dev = if ev.mode == Mode::Tun { "tunl0" } else { "lo" };
    let mut lines = Vec::new();
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    for rs in ev.real_servers.iter().filter(|r| !r.host.addresses.is_empty()) {
        // Held, but with a wide prefix or on the wrong interface: vip-prefix says so.
        if rs.host.address_of(vip).is_some() {
            continue;
        }
        let have: Vec<String> = rs
            .host
            .addresses
            .iter()
            .map(|a| format!("{} {}", a.iface, a.net))
            .collect();
        lines.push(format!(
            "{} does not hold {vip} (addresses: {}): frames for the VIP are dropped there",
            rs.name,
            have.join(", ")
        ));
        let dropped = rs.host.counter("InAddrErrors");
        if dropped > 0 {
            lines.push(format!(
                "{} InAddrErrors +{dropped}: packets for a non-local address dropped",
                rs.name
            ));
        }
        missing.push(rs.name.clone());
        fixes.push(format!(
            "on {}: set arp_ignore=1 and arp_announce=2 first, then `ip addr add {vip}/32 dev {dev}`",
            rs.name
        ));
    }
    if lines.is_empty() {
        return None;
    }
    let explains = share_explains(missing.len(), ev.real_servers.len());
    let title = format!("Real server(s) without the VIP: {}", missing.join(", "));
    Some(Finding::new(ID, title, explains).evidence(capped(lines)).fix(fixes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_for_a_server_without_the_vip() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1]
            .host
            .addresses
            .retain(|a| a.net.addr() != sample::VIP);
        ev.real_servers[1].host.counters.insert("InAddrErrors".into(), 10);
        let finding = check(&ev, &summarise(&ev)).expect("vip-not-local must fire");
        assert_eq!(
            finding.evidence[0],
            "rs2 does not hold 192.0.2.100 (addresses: lo 127.0.0.1/8, eth0 192.0.2.12/24): frames for the VIP are dropped there"
        );
        assert_eq!(
            finding.evidence[1],
            "rs2 InAddrErrors +10: packets for a non-local address dropped"
        );
        assert!(finding.fix[0].ends_with("`ip addr add 192.0.2.100/32 dev lo`"));
    }

    #[test]
    fn silent_when_every_server_holds_the_vip_or_in_nat() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Nat;
        for rs in &mut ev.real_servers {
            rs.host.addresses.retain(|a| a.net.addr() != sample::VIP);
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
