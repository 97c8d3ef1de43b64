//! Cause 14: a forwarder that sends on frames with partial checksums (veth offload)
//! delivers bad checksums; the real server drops them and its share times out.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::ChecksumOffload;

const COUNTERS: &[&str] = &["TcpInCsumErrors", "UdpInCsumErrors", "IcmpInCsumErrors"];

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let mut lines = Vec::new();
    let mut hit = 0;
    for rs in &ev.real_servers {
        let before = lines.len();
        for name in COUNTERS {
            let n = rs.host.counter(name);
            if n > 0 {
                lines.push(format!(
                    "{} {name} +{n}: it dropped segments with bad checksums",
                    rs.name
                ));
            }
        }
        hit += usize::from(lines.len() > before);
    }
    if lines.is_empty() {
        return None;
    }
    Some(
        Finding::new(
            ID,
            "Real servers drop forwarded packets with bad checksums",
            share_explains(hit, ev.real_servers.len()),
        )
        .evidence(capped(lines))
        .fix([
            "the forwarder must complete partial checksums (CHECKSUM_PARTIAL frames from veth) before sending them on"
                .to_string(),
            "lvslab's embedded engine: leave `complete_checksums` at its default (true)".to_string(),
            "workaround: ethtool -K <client-side interface> tx off".to_string(),
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_on_csum_counters() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1].host.counters.insert("TcpInCsumErrors".into(), 12);
        let finding = check(&ev, &summarise(&ev)).expect("checksum-offload must fire");
        assert_eq!(
            finding.evidence,
            vec!["rs2 TcpInCsumErrors +12: it dropped segments with bad checksums"]
        );
    }

    #[test]
    fn silent_without_errors() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1].host.counters.insert("TcpInSegs".into(), 12);
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
