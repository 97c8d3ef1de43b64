//! TUN without a decapsulating device on the real server: IP-in-IP packets from the
//! director are dropped (or answered "protocol unreachable") and never reach the service.

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::TunnelDecap;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if ev.mode != Mode::Tun {
        return None;
    }
    let vip = ev.vip().map_or("VIP".to_string(), |v| v.to_string());
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    for rs in ev.real_servers.iter().filter(|r| !r.host.links.is_empty()) {
        match rs.host.link("tunl0") {
            Some(l) if l.up => continue,
            Some(_) => lines.push(format!(
                "{}'s tunl0 is down: IP-in-IP packets are not decapsulated",
                rs.name
            )),
            None => {
                let links: Vec<&str> = rs.host.links.iter().map(|l| l.name.as_str()).collect();
                lines.push(format!(
                    "{} has no tunl0 (links: {}): IP-in-IP packets from the director are not decapsulated",
                    rs.name,
                    links.join(", ")
                ));
            }
        }
        fixes.push(format!(
            "on {}: modprobe ipip; ip link set tunl0 up; ip addr add {vip}/32 dev tunl0; rp_filter=0 on tunl0 and all",
            rs.name
        ));
    }
    if lines.is_empty() {
        return None;
    }
    let explains = share_explains(fixes.len(), ev.real_servers.len());
    Some(
        Finding::new(ID, "TUN real server(s) cannot decapsulate", explains)
            .evidence(capped(lines))
            .fix(fixes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_without_tunl0() {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        ev.real_servers[0].host.links.push(sample::link("tunl0", "ipip", None));
        ev.real_servers[1].host.links.push(sample::link("tunl0", "ipip", None));
        let finding = check(&ev, &summarise(&ev)).expect("tunnel-decap must fire");
        assert_eq!(
            finding.evidence,
            vec!["rs3 has no tunl0 (links: lo, eth0): IP-in-IP packets from the director are not decapsulated"]
        );
        assert!((finding.explains - (0.3 + 0.5 / 3.0)).abs() < 1e-9);
    }

    #[test]
    fn silent_with_tunl0_up_everywhere_or_in_dr() {
        let mut ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        ev.mode = Mode::Tun;
        for rs in &mut ev.real_servers {
            rs.host.links.push(sample::link("tunl0", "ipip", None));
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
