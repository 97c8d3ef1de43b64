//! Cause 11 (destination side): dh, lblc and lblcr choose by destination address; a
//! service with one VIP has one destination address, so one server takes everything.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::DestinationHash;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let how = match svc.scheduler.as_str() {
        "dh" => "hashes the destination address",
        "lblc" => "keeps each destination address on one server until it is overloaded",
        "lblcr" => "keeps each destination address on a small server set, growing it only under overload",
        _ => return None,
    };
    // Requests to several destination addresses (a fwmark cache cluster's) are what these
    // schedulers are for.
    let destinations: std::collections::BTreeSet<std::net::IpAddr> =
        ev.records.iter().filter_map(|r| r.target.map(|t| t.ip())).collect();
    if destinations.len() > 1 {
        return None;
    }
    Some(
        Finding::new(
            ID,
            format!(
                "Destination-based scheduler ({}) with one destination address",
                svc.scheduler
            ),
            0.9,
        )
        .evidence([
            format!("scheduler {} on {} {how}", svc.scheduler, service_label(svc)),
            format!(
                "every packet of this service goes to one destination address, the VIP {}: one server for everyone",
                svc.vip
            ),
        ])
        .fix([format!(
            "ipvsadm -E {} -s rr (or wlc): dh/lblc/lblcr are for cache clusters serving many destination addresses",
            ipvsadm_service(svc)
        )]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn silent_when_the_requests_go_to_several_destinations() {
        let mut ev = sample::healthy_dr();
        ev.service.as_mut().unwrap().scheduler = "lblc".into();
        for (n, r) in ev.records.iter_mut().enumerate() {
            r.target = Some(std::net::SocketAddr::from(([203, 0, 113, (n % 8) as u8], 80)));
        }
        assert!(check(&ev, &summarise(&ev)).is_none());
    }

    #[test]
    fn fires_for_dh_lblc_lblcr() {
        for sched in ["dh", "lblc", "lblcr"] {
            let mut ev = sample::healthy_dr();
            ev.service.as_mut().unwrap().scheduler = sched.into();
            let finding = check(&ev, &summarise(&ev)).unwrap_or_else(|| panic!("{sched} must fire"));
            assert!(
                finding.evidence[1].contains("the VIP 192.0.2.100"),
                "{:?}",
                finding.evidence
            );
        }
    }

    #[test]
    fn silent_for_rr_and_sh() {
        for sched in ["rr", "sh", "wlc"] {
            let mut ev = sample::healthy_dr();
            ev.service.as_mut().unwrap().scheduler = sched.into();
            assert_eq!(check(&ev, &summarise(&ev)), None, "{sched}");
        }
    }
}
