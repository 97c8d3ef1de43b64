//! The service has only one real server to send to: one server is all it can do.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::SingleServer;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let line = match (ev.real_servers.as_slice(), &ev.ipvs) {
        ([only], _) => format!(
            "{} has one configured real server: {} ({})",
            service_label(svc),
            only.name,
            only.address
        ),
        ([], Some(ipvs)) if ipvs.dests.len() == 1 => {
            let d = &ipvs.dests[0];
            format!(
                "{} has one destination in the IPVS table: {}:{}",
                service_label(svc),
                d.addr,
                d.port
            )
        }
        _ => return None,
    };
    Some(
        Finding::new(ID, "Only one real server is configured", 1.0)
            .evidence([line])
            .fix([format!(
                "add the other servers: ipvsadm -a {} -r RIP:{} {} -w 1 (keepalived: one real_server block each)",
                ipvsadm_service(svc),
                svc.port,
                ipvsadm_forward(ev.mode)
            )]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_with_one_configured_server() {
        let mut ev = sample::healthy_dr();
        ev.real_servers.truncate(1);
        ev.records = (0..5).map(|n| sample::record(n, "rs1")).collect();
        let finding = check(&ev, &summarise(&ev)).expect("single-server must fire");
        assert_eq!(
            finding.evidence,
            vec!["TCP 192.0.2.100:80 has one configured real server: rs1 (192.0.2.11)"]
        );
    }

    #[test]
    fn fires_from_the_table_alone_and_not_with_three() {
        let mut ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
        ev.real_servers.clear();
        ev.ipvs.as_mut().unwrap().dests.truncate(1);
        assert!(check(&ev, &summarise(&ev)).is_some());
    }
}
