//! Cause 14: a forwarder that sends on frames with partial checksums (veth offload)
//! delivers bad checksums; the real server drops them and its share times out.

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::ChecksumOffload;

const COUNTERS: &[&str] = &["TcpInCsumErrors", "UdpInCsumErrors", "IcmpInCsumErrors"];

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let mut lines = Vec::new();
    let mut hit = 0;
    let mut userspace_decap = Vec::new();
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
        if lines.len() > before {
            hit += 1;
            // A TUN device, not the kernel's ipip: a userspace decapsulator wrote the inner packet.
            let tun_device = rs.host.link("tunl0").is_some_and(|l| l.kind.as_deref() == Some("tun"));
            if ev.mode == Mode::Tun && tun_device {
                userspace_decap.push(rs.name.clone());
            }
        }
    }
    if lines.is_empty() {
        return None;
    }
    if !userspace_decap.is_empty() {
        let verb = if userspace_decap.len() == 1 {
            "decapsulates"
        } else {
            "decapsulate"
        };
        lines.push(format!(
            "{} {verb} in userspace (tunl0 is a TUN device): the inner checksum arrives as the director sent it",
            userspace_decap.join(", ")
        ));
    }
    let fixes = if ev.mode == Mode::Tun {
        vec![
            "the director must complete partial checksums before it encapsulates: ethtool -K <director's server-facing interface> tx off (kernel IPVS then finishes the inner sum)"
                .to_string(),
            "or decapsulate in the real servers' kernel (modprobe ipip; tunl0 up), which takes the packet with its offload state"
                .to_string(),
            "lvslab: leave `complete_checksums` at its default (true), on either engine".to_string(),
        ]
    } else {
        vec![
            "the forwarder must complete partial checksums (CHECKSUM_PARTIAL frames from veth) before sending them on"
                .to_string(),
            "lvslab's embedded engine: leave `complete_checksums` at its default (true)".to_string(),
            "workaround: ethtool -K <client-side interface> tx off".to_string(),
        ]
    };
    Some(
        Finding::new(
            ID,
            "Real servers drop forwarded packets with bad checksums",
            share_explains(hit, ev.real_servers.len()),
        )
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
    fn through_a_userspace_decapsulator_names_it_and_the_directors_offload() {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        for rs in &mut ev.real_servers {
            rs.host.links.push(sample::link("tunl0", "tun", None));
            rs.host.counters.insert("TcpInCsumErrors".into(), 4);
        }
        let finding = check(&ev, &summarise(&ev)).expect("checksum-offload must fire");
        assert_eq!(finding.evidence.len(), 4, "{:?}", finding.evidence);
        assert_eq!(
            finding.evidence[3],
            "rs1, rs2, rs3 decapsulate in userspace (tunl0 is a TUN device): the inner checksum arrives as the director sent it"
        );
        assert!(
            finding.fix[0].contains("ethtool -K <director's server-facing interface> tx off"),
            "{:?}",
            finding.fix
        );
        assert!((finding.explains - share_explains(3, 3)).abs() < 1e-9);
    }

    #[test]
    fn silent_in_tun_without_errors() {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        for rs in &mut ev.real_servers {
            rs.host.links.push(sample::link("tunl0", "tun", None));
            rs.host.counters.insert("TcpInSegs".into(), 40);
        }
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }

    #[test]
    fn silent_without_errors() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[1].host.counters.insert("TcpInSegs".into(), 12);
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
