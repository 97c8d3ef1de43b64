//! Cause 17: TUN adds a 20-byte outer header, so a full-size packet from the client does not
//! fit the director's link to the real servers. With DF set (every Linux TCP segment) IPVS
//! drops it and answers ICMP frag-needed with the tunnel's MTU (`ensure_mtu_is_adequate`);
//! when something on the way back drops that ICMP, the client never lowers its path MTU and
//! retransmits the same segment until it gives up. Small requests (one short segment) pass:
//! large ones (uploads, POST bodies, big cookies) hang.

use super::common::*;
use crate::diagnose::evidence::{Evidence, HostEvidence, Mode, ProbeKind};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::TunnelMtu;

/// The outer IPv4 header IPIP adds.
const TUNNEL_OVERHEAD: u32 = 20;
/// A link whose MTU was not read has the kernel's default.
const DEFAULT_MTU: u32 = 1500;
/// IPv4 and TCP headers with timestamps, around a segment's payload.
const TCP_IP_HEADERS: u32 = 52;
/// What an HTTP request's head adds to its body, at least (request line, Host, length).
const REQUEST_HEAD: u32 = 60;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    if ev.mode != Mode::Tun || ev.request_body_bytes == 0 || ev.records.is_empty() {
        return None;
    }
    let failed = ev.records.iter().filter(|r| r.error.is_some()).count();
    if failed == 0 {
        return None;
    }
    // The bodyless probe failing too means something else stops every request.
    let small = ev.probes.iter().find(|p| p.kind == ProbeKind::NewConn);
    if small.is_some_and(|p| p.requests > 0 && p.errors == p.requests) {
        return None;
    }
    let director = ev.director.as_ref()?;
    let (dev, link_mtu) = link_towards_servers(ev, director);
    let tunnel_mtu = link_mtu.saturating_sub(TUNNEL_OVERHEAD);
    let client_mtu = ev
        .clients
        .iter()
        .filter_map(|c| lan_mtu(&c.host))
        .min()
        .unwrap_or(DEFAULT_MTU);
    // The largest packet the request puts on the wire: a full-size segment, or all of it.
    let largest = client_mtu.min(ev.request_body_bytes.saturating_add(REQUEST_HEAD + TCP_IP_HEADERS));
    if largest <= tunnel_mtu {
        return None;
    }
    let mut lines = vec![
        format!(
            "{failed} of {} requests with a {}-byte body failed",
            ev.records.len(),
            ev.request_body_bytes
        ),
        format!(
            "a {largest}-byte packet from the client needs {} bytes once IPIP wraps it, over the director's {dev} MTU {link_mtu}: the tunnel takes {tunnel_mtu}",
            largest + TUNNEL_OVERHEAD
        ),
    ];
    if let Some(p) = small {
        lines.push(format!(
            "the bodyless probe: {} of {} answered ({})",
            p.requests - p.errors,
            p.requests,
            backend_list(&p.per_backend)
        ));
    }
    lines.extend(icmp_drops(ev));
    for c in &ev.clients {
        if c.host.counters.contains_key("IcmpInDestUnreachs") && c.host.counter("IcmpInDestUnreachs") == 0 {
            lines.push(format!(
                "{} received no ICMP destination-unreachable: the frag-needed never reached it",
                c.name
            ));
        }
    }
    for rs in &ev.real_servers {
        if let Some(mtu) = rs.host.link("tunl0").and_then(|l| l.mtu) {
            lines.push(format!(
                "{}'s tunl0 MTU {mtu}: its MSS for the client comes from its route, not from tunl0",
                rs.name
            ));
        }
    }
    let mss = tunnel_mtu.saturating_sub(40);
    Some(
        Finding::new(
            ID,
            "Large requests do not fit the tunnel, and the ICMP frag-needed that says so is lost",
            explains(failed, ev.records.len()),
        )
        .evidence(capped(lines))
        .fix([
            format!("clamp the MSS on the path: nft add rule inet mangle forward tcp flags syn tcp option maxseg size set {mss}"),
            format!("or on each real server: ip route change <client network> via <gateway> advmss {mss}"),
            "or let ICMP frag-needed back to the clients: nft insert rule ... icmp type destination-unreachable icmp code frag-needed accept"
                .to_string(),
            format!(
                "or give the director's {dev} (and the real servers' link) an MTU of {}: ip link set dev {dev} mtu {}",
                client_mtu + TUNNEL_OVERHEAD,
                client_mtu + TUNNEL_OVERHEAD
            ),
        ]),
    )
}

/// Each failed request is one the cause accounts for; every one failing explains nearly all.
fn explains(failed: usize, total: usize) -> f64 {
    (0.9 * failed as f64 / total as f64 * 100.0).round() / 100.0
}

/// The director's interface towards the first real server, and its MTU.
fn link_towards_servers(ev: &Evidence, director: &HostEvidence) -> (String, u32) {
    let dev = ev
        .real_servers
        .first()
        .and_then(|rs| director.addresses.iter().find(|a| a.net.contains(&rs.address)))
        .map(|a| a.iface.clone())
        .unwrap_or_else(|| "eth0".to_string());
    let mtu = director.link(&dev).and_then(|l| l.mtu).unwrap_or(DEFAULT_MTU);
    (dev, mtu)
}

/// A host's MTU on its first non-loopback link.
fn lan_mtu(host: &HostEvidence) -> Option<u32> {
    host.links.iter().find(|l| l.name != "lo").and_then(|l| l.mtu)
}

/// Firewall rules on the way that drop ICMP, with their counters.
fn icmp_drops(ev: &Evidence) -> Vec<String> {
    ev.firewalls
        .iter()
        .flat_map(|f| {
            f.rules
                .iter()
                .filter(|r| r.text.contains("icmp") && !r.text.contains("echo"))
                .map(move |r| format!("{} {} ICMP: {}", f.host, r.verdict_verb(), r.cited()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{FirewallEvidence, FirewallRule, HostRole};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    /// TUN with 4000-byte POSTs that all time out, a bodyless probe that passes, and a router
    /// that drops ICMP destination-unreachable.
    fn black_hole() -> Evidence {
        let mut ev = sample::healthy_dr();
        ev.mode = Mode::Tun;
        ev.request_body_bytes = 4000;
        for r in &mut ev.records {
            r.backend = None;
            r.error = Some("timed out".into());
        }
        let mut probe = sample::probe(ProbeKind::NewConn, 18, 1, 18, &[("rs1", 6), ("rs2", 6), ("rs3", 6)]);
        probe.errors = 0;
        ev.probes = vec![probe];
        ev.clients[0].host.counters.insert("IcmpInDestUnreachs".into(), 0);
        ev.firewalls = vec![FirewallEvidence {
            host: "r1".into(),
            role: HostRole::Router,
            rules: vec![FirewallRule {
                table: "inet pmtu".into(),
                chain: "forward".into(),
                hook: Some("forward".into()),
                text: "icmp type destination-unreachable icmp code frag-needed counter drop".into(),
                verdict: "drop".into(),
                packets: Some(42),
                matches: vec![],
            }],
        }];
        ev
    }

    #[test]
    fn fires_when_large_requests_fail_and_small_ones_pass() {
        let ev = black_hole();
        let finding = check(&ev, &summarise(&ev)).expect("tunnel-mtu must fire");
        assert_eq!(finding.explains, 0.9);
        assert_eq!(
            finding.evidence[..3],
            [
                "30 of 30 requests with a 4000-byte body failed",
                "a 1500-byte packet from the client needs 1520 bytes once IPIP wraps it, over the director's eth0 MTU 1500: the tunnel takes 1480",
                "the bodyless probe: 18 of 18 answered (rs1 6, rs2 6, rs3 6)",
            ]
        );
        assert!(
            finding.evidence[3].starts_with("r1 drops ICMP: inet pmtu forward:"),
            "{:?}",
            finding.evidence
        );
        assert!(finding.evidence[3].ends_with("(42 packets dropped)"));
        assert_eq!(
            finding.evidence[4],
            "c1 received no ICMP destination-unreachable: the frag-needed never reached it"
        );
        assert!(finding.fix[0].ends_with("maxseg size set 1440"), "{:?}", finding.fix);
    }

    #[test]
    fn half_the_requests_failing_explains_half() {
        let mut ev = black_hole();
        for r in ev.records.iter_mut().step_by(2) {
            r.error = None;
            r.backend = Some("rs1".into());
        }
        assert_eq!(check(&ev, &summarise(&ev)).unwrap().explains, 0.45);
    }

    #[test]
    fn silent_when_the_packets_fit_or_nothing_failed_or_small_ones_fail_too() {
        let mut dr = black_hole();
        dr.mode = Mode::Dr;
        assert_eq!(check(&dr, &summarise(&dr)), None, "no tunnel, no overhead");

        let mut small = black_hole();
        small.request_body_bytes = 1000;
        assert_eq!(check(&small, &summarise(&small)), None, "1112 bytes fit 1480");

        let mut bodyless = black_hole();
        bodyless.request_body_bytes = 0;
        assert_eq!(check(&bodyless, &summarise(&bodyless)), None);

        let mut jumbo = black_hole();
        for l in &mut jumbo.director.as_mut().unwrap().links {
            l.mtu = Some(1520);
        }
        assert_eq!(
            check(&jumbo, &summarise(&jumbo)),
            None,
            "the director's link takes 1520"
        );

        let mut fine = black_hole();
        for r in &mut fine.records {
            r.error = None;
            r.backend = Some("rs1".into());
        }
        assert_eq!(check(&fine, &summarise(&fine)), None, "clamped: every request answered");

        let mut dead = black_hole();
        dead.probes[0].errors = 18;
        assert_eq!(check(&dead, &summarise(&dead)), None, "bodyless requests fail too");
    }
}
