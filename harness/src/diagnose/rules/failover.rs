//! keepalived causes (reference keepalived.md §1.4–1.6): requests failed while a backup took
//! the VIP over from a master that died, stopped or froze, or while a returning master took it
//! back (a connection in flight through the old master has no entry on the new one). A dead master is noticed only
//! after master_down_interval = 3 × advert_int + (256 − priority)/256 s (VRRPv2) since its
//! last advert; a graceful stop sends priority 0, so the backup waits only its skew time.
//! Meanwhile the clients' packets go to the old master's MAC, and TCP retries on its own
//! clock after that.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::Failover;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let vrrp = ev.vrrp.as_ref()?;
    // Two masters at the end: the old one never went away, and split-brain says why.
    if vrrp.masters.len() > 1 {
        return None;
    }
    let costly: Vec<_> = vrrp.failovers.iter().filter(|f| f.failed > 0).collect();
    if costly.is_empty() {
        return None;
    }
    let mut lines = Vec::new();
    let mut failed = 0;
    for f in &costly {
        failed += f.failed;
        let answered = f
            .failover_ms
            .map_or("no request was answered after it".to_string(), |ms| {
                format!("the first request answered after it ended {ms:.0} ms after the event")
            });
        lines.push(format!(
            "\"{}\" ({} on {}): {} became MASTER {:.0} ms later; {answered}; {} request(s) failed meanwhile",
            f.event,
            f.action,
            f.from.join(", "),
            f.to,
            f.takeover_ms,
            f.failed
        ));
        if let Some(n) = vrrp.nodes.iter().find(|n| n.director == f.to) {
            let advert = n.advert_int_ms as f64 / 1000.0;
            let skew = if n.version == 2 {
                (256.0 - f64::from(n.priority)) / 256.0
            } else {
                (256.0 - f64::from(n.priority)) * advert / 256.0
            };
            let down = 3.0 * advert + skew;
            lines.push(format!(
                "{}: VRRPv{} advert_int {advert} s, priority {}: master_down_interval = 3 × {advert} s + {skew:.3} s = {down:.3} s after the last advert it heard",
                n.director, n.version, n.priority
            ));
        }
    }
    let fix = vec![
        "a faster failover: VRRPv3 with a shorter advert_int (`version 3`, `advert_int 0.1` gives a backup at priority 100 0.36 s), on every node".to_string(),
        "stop a master gracefully when you can (`systemctl stop keepalived` sends priority 0: the backup takes over after its skew time, about 0.6 s)".to_string(),
        "clients retry on their own clock: keep request timeouts and retries above the failover time".to_string(),
        "to keep established connections across the takeover: `lvs_sync_daemon` (IPVS connection sync) on both nodes".to_string(),
    ];
    let answered = spread.requests.saturating_sub(spread.errors).max(1) as usize;
    let explains = share_explains(failed as usize, answered + failed as usize).max(0.2);
    Some(
        Finding::new(
            ID,
            format!("{failed} request(s) failed while the VIP moved to another director"),
            explains,
        )
        .evidence(capped(lines))
        .fix(fix),
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::diagnose::evidence::{FailoverEvidence, Mode, VrrpEvidence, VrrpNodeEvidence};
    use crate::diagnose::spread;

    fn evidence(failed: u32) -> Evidence {
        let mut ev = Evidence::empty(Mode::Dr);
        ev.vrrp = Some(VrrpEvidence {
            implementation: "embedded".into(),
            nodes: vec![VrrpNodeEvidence {
                director: "lvs2".into(),
                instance: "VI_1".into(),
                interface: "eth0".into(),
                address: Ipv4Addr::new(192, 0, 2, 2),
                vrid: 51,
                priority: 100,
                version: 2,
                advert_int_ms: 1000,
                auth: false,
                unicast_peers: Vec::new(),
                strict: false,
                no_accept: false,
            }],
            masters: vec!["lvs2".into()],
            failovers: vec![FailoverEvidence {
                event: "lvs1-dies".into(),
                action: "kill".into(),
                from: vec!["lvs1".into()],
                to: "lvs2".into(),
                takeover_ms: 3611.0,
                failover_ms: Some(4025.0),
                failed,
            }],
            ..Default::default()
        });
        ev
    }

    #[test]
    fn a_costly_takeover_names_master_down_interval() {
        let ev = evidence(16);
        let f = check(&ev, &spread::summarise(&ev)).expect("fires");
        let text = f.evidence.join("\n");
        assert!(
            text.contains("\"lvs1-dies\" (kill on lvs1): lvs2 became MASTER 3611 ms later"),
            "{text}"
        );
        assert!(
            text.contains("master_down_interval = 3 × 1 s + 0.609 s = 3.609 s"),
            "{text}"
        );
        assert!(f.fix[0].contains("advert_int 0.1"));
    }

    #[test]
    fn a_takeover_that_lost_nothing_is_silent() {
        let ev = evidence(0);
        assert!(check(&ev, &spread::summarise(&ev)).is_none());
    }

    #[test]
    fn a_split_brain_is_left_to_its_own_rule() {
        let mut ev = evidence(2);
        ev.vrrp.as_mut().unwrap().masters = vec!["lvs1".into(), "lvs2".into()];
        assert!(check(&ev, &spread::summarise(&ev)).is_none());
    }
}
