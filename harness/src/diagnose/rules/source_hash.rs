//! Cause 11 (source side): `sh` / `mh` hash the client address; one address always maps
//! to the same server, a few addresses to a few.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::SourceHash;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let sched = svc.scheduler.as_str();
    if sched != "sh" && sched != "mh" {
        return None;
    }
    let port_flag = format!("{sched}-port");
    if svc.sched_flags.contains(&port_flag) {
        return None; // hashes the source port too: per-flow spread
    }
    let mut sources: Vec<String> = source_addresses(ev).iter().map(|s| s.to_string()).collect();
    if sources.is_empty() {
        sources = ev
            .ipvs
            .iter()
            .flat_map(|i| &i.conns)
            .map(|c| c.client.to_string())
            .collect();
        sources.sort();
        sources.dedup();
    }
    let servers = spread.eligible.max(1);
    if !sources.is_empty() && sources.len() >= 2 * servers {
        return None;
    }
    let mut lines = vec![format!(
        "scheduler {sched} on {} hashes only the client address: one address always maps to the same server, with no timeout",
        service_label(svc)
    )];
    if !sources.is_empty() {
        let shown: Vec<String> = sources.iter().take(MAX_LINES).cloned().collect();
        lines.push(format!(
            "the traffic came from {} source address(es) ({}) for {servers} servers",
            sources.len(),
            shown.join(", ")
        ));
    }
    lines.extend(capped(pinned_source_lines(ev)));
    let explains = if sources.len() == 1 && servers > 1 { 0.9 } else { 0.6 };
    Some(
        Finding::new(
            ID,
            format!("Source hashing ({sched}) with {} client address(es)", sources.len()),
            explains,
        )
        .evidence(lines)
        .fix([
            format!(
                "ipvsadm -E {} -s {sched} -b {port_flag} to hash address and port (per-flow spread)",
                ipvsadm_service(svc)
            ),
            format!(
                "or ipvsadm -E {} -s rr (or wlc) for an even spread of short connections",
                ipvsadm_service(svc)
            ),
            "to test source hashing itself, use many client addresses".to_string(),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn sh_one_client() -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.service.as_mut().unwrap().scheduler = "sh".into();
        ev.records = (0..30).map(|n| sample::record(n, "rs3")).collect();
        ev
    }

    #[test]
    fn fires_for_sh_with_one_source() {
        let ev = sh_one_client();
        let finding = check(&ev, &summarise(&ev)).expect("source-hash must fire");
        assert_eq!(finding.explains, 0.9);
        assert!(
            finding.evidence[1].contains("1 source address(es) (192.0.2.10) for 3 servers"),
            "{:?}",
            finding.evidence
        );
        assert!(finding.fix[0].contains("-s sh -b sh-port"));
    }

    #[test]
    fn silent_with_sh_port_or_other_scheduler() {
        let mut ev = sh_one_client();
        ev.service.as_mut().unwrap().sched_flags = vec!["sh-port".into()];
        assert_eq!(check(&ev, &summarise(&ev)), None);
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
