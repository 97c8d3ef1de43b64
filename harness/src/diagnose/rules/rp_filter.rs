//! Cause 16: strict reverse-path filtering drops packets whose source is not routed back
//! out of the interface they came in on (decapsulated TUN packets on tunl0, asymmetric
//! NAT or multi-homed paths).

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::RpFilter;

/// The decapsulating device a TUN real server receives on.
const TUNNEL_DEV: &str = "tunl0";

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let mut lines = Vec::new();
    let mut hit = Vec::new();
    let mut fixes = Vec::new();
    for rs in &ev.real_servers {
        let mut flagged = false;
        if ev.mode == Mode::Tun
            && rs.host.link(TUNNEL_DEV).is_some()
            && rs.host.effective_conf("rp_filter", TUNNEL_DEV) == Some(1)
        {
            lines.push(format!(
                "{} drops decapsulated packets on {TUNNEL_DEV}: rp_filter {} (strict; the client is routed via another interface)",
                rs.name,
                conf_explained(&rs.host, "rp_filter", TUNNEL_DEV)
            ));
            fixes.push(format!(
                "on {}: sysctl -w net.ipv4.conf.{TUNNEL_DEV}.rp_filter=0 net.ipv4.conf.all.rp_filter=0",
                rs.name
            ));
            flagged = true;
        }
        let dropped = rs.host.counter("IPReversePathFilter");
        if dropped > 0 {
            lines.push(format!(
                "{} IPReversePathFilter +{dropped}: packets dropped by the reverse-path filter",
                rs.name
            ));
            if !flagged {
                fixes.push(format!(
                    "on {}: sysctl -w net.ipv4.conf.all.rp_filter=2 (loose) or fix its routes",
                    rs.name
                ));
            }
            flagged = true;
        }
        if flagged {
            hit.push(rs.name.clone());
        }
    }
    if let Some(d) = &ev.director {
        let dropped = d.counter("IPReversePathFilter");
        if dropped > 0 {
            lines.push(format!(
                "{} IPReversePathFilter +{dropped}: packets dropped by the reverse-path filter",
                role_and_name("director", &d.name)
            ));
            fixes.push(format!(
                "on {}: sysctl -w net.ipv4.conf.all.rp_filter=2 where routes are asymmetric",
                d.name
            ));
        }
    }
    if lines.is_empty() {
        return None;
    }
    let explains = if hit.is_empty() {
        0.5
    } else {
        share_explains(hit.len(), ev.real_servers.len())
    };
    Some(
        Finding::new(ID, "Reverse-path filtering drops forwarded packets", explains)
            .evidence(capped(lines))
            .fix(fixes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn tun() -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        for rs in &mut ev.real_servers {
            rs.host.links.push(sample::link("tunl0", "tun", None));
            rs.host
                .sysctls
                .insert("net.ipv4.conf.tunl0.rp_filter".into(), "0".into());
        }
        ev
    }

    #[test]
    fn fires_for_strict_rp_filter_on_tunl0_and_counters() {
        let mut ev = tun();
        ev.real_servers[0]
            .host
            .sysctls
            .insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
        ev.real_servers[0].host.counters.insert("IPReversePathFilter".into(), 7);
        let finding = check(&ev, &summarise(&ev)).expect("rp-filter must fire");
        assert_eq!(finding.evidence[0], "rs1 drops decapsulated packets on tunl0: rp_filter max(all 1, tunl0 0) = 1 (strict; the client is routed via another interface)");
        assert_eq!(
            finding.evidence[1],
            "rs1 IPReversePathFilter +7: packets dropped by the reverse-path filter"
        );
        assert_eq!(finding.fix.len(), 1);
    }

    #[test]
    fn silent_with_loose_or_off() {
        let mut ev = tun();
        ev.real_servers[0]
            .host
            .sysctls
            .insert("net.ipv4.conf.all.rp_filter".into(), "2".into());
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
