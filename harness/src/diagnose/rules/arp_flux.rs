//! Cause 2: a real server answers ARP for the VIP, so clients (or the gateway) send
//! frames for the VIP straight to it and the director never sees them.

use super::common::*;
use crate::diagnose::evidence::{Evidence, Mode};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::ArpFlux;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    if !has_director(ev) {
        return None;
    }
    let vip = ev.vip()?;
    let mut proof = Vec::new();
    let mut offenders: Vec<String> = Vec::new();

    for client in &ev.clients {
        let Some(entry) = client.host.neighbour(vip) else {
            continue;
        };
        let Some(mac) = entry.mac else { continue };
        if ev.director.is_some() && !ev.is_director_mac(mac) {
            proof.push(format!(
                "{} neighbour {vip} lladdr {mac} {} on {} = {}, not the director's ({})",
                role_and_name("client", &client.name),
                entry.state,
                entry.iface,
                describe_mac(ev, mac),
                director_macs(ev)
            ));
            offenders.extend(real_server_with_mac(ev, mac).map(|r| r.name.clone()));
        }
    }
    if let Some(probe) = &ev.arp_probe {
        let strangers: Vec<_> = probe.replies.iter().filter(|m| !ev.is_director_mac(**m)).collect();
        // Several directors answering is VRRP's business (a split brain), not ARP flux.
        let only_directors = strangers.is_empty() && ev.vrrp.is_some();
        if !strangers.is_empty() || (probe.replies.len() > 1 && !only_directors) {
            let answers: Vec<String> = probe
                .replies
                .iter()
                .map(|m| format!("{m} ({})", describe_mac(ev, *m)))
                .collect();
            proof.push(format!(
                "ARP probe for {vip} from {}: {} replies: {}",
                probe.from,
                probe.replies.len(),
                answers.join(", ")
            ));
            offenders.extend(
                strangers
                    .iter()
                    .filter_map(|m| real_server_with_mac(ev, **m))
                    .map(|r| r.name.clone()),
            );
        }
    }

    let mut bypass = Vec::new();
    // Requests a real server sent itself never reach the director (local-client's finding).
    let local = ev
        .records
        .iter()
        .filter(|r| r.error.is_none() && super::local_client::owner_of_ip(ev, r.source.ip()).is_some())
        .count() as u32;
    // Only requests sent to the VIP count against its packets (a fwmark service also takes
    // other destinations, a cache cluster's).
    let elsewhere = ev
        .records
        .iter()
        .filter(|r| r.error.is_none() && r.target.is_some_and(|t| t.ip() != std::net::IpAddr::V4(vip)))
        .count() as u32;
    let answered = (spread.requests - spread.errors).saturating_sub(local + elsewhere);
    if let Some(seen) = ev.director_seen_packets {
        // Every answered TCP request costs the director at least one frame (the SYN).
        if answered > 0 && seen < u64::from(answered) {
            let by = backend_list(
                &spread
                    .per_backend
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            );
            bypass.push(format!(
                "the director saw {seen} packets for {vip} while {answered} requests were answered ({by}): traffic bypasses it"
            ));
        }
    }

    let mut latent = Vec::new();
    for rs in &ev.real_servers {
        let Some(vip_addr) = rs.host.address_of(vip) else {
            continue;
        };
        let lan = lan_iface(rs);
        if vip_addr.iface == lan {
            latent.push(format!(
                "{} holds {} on {lan}, its LAN interface: it answers ARP for the VIP whatever arp_ignore says",
                rs.name, vip_addr.net
            ));
            offenders.push(rs.name.clone());
            continue;
        }
        let ignore = rs.host.effective_conf("arp_ignore", &lan);
        let announce = rs.host.effective_conf("arp_announce", &lan);
        if ignore.is_some_and(|v| v < 1) {
            latent.push(format!(
                "{} holds {vip} on {} and answers ARP for it on {lan}: arp_ignore {} (needs >= 1)",
                rs.name,
                vip_addr.iface,
                conf_explained(&rs.host, "arp_ignore", &lan)
            ));
            offenders.push(rs.name.clone());
        }
        if announce.is_some_and(|v| v < 2) {
            latent.push(format!(
                "{} may announce {vip} as the source of its own ARP requests: arp_announce {} (needs 2)",
                rs.name,
                conf_explained(&rs.host, "arp_announce", &lan)
            ));
            offenders.push(rs.name.clone());
        }
    }

    if proof.is_empty() && bypass.is_empty() && latent.is_empty() {
        return None;
    }
    offenders.sort();
    offenders.dedup();

    let (title, explains) = if !proof.is_empty() {
        (
            "A real server claims the VIP in ARP (answers for it or announces it): clients send straight to it and bypass the director",
            0.95,
        )
    } else if !bypass.is_empty() {
        ("Requests bypass the director (the VIP resolves to another host)", 0.7)
    } else {
        (
            "A real server can answer ARP for the VIP (arp_ignore / arp_announce)",
            0.3,
        )
    };

    let targets = if offenders.is_empty() {
        "every real server".to_string()
    } else {
        offenders.join(", ")
    };
    let vip_dev = if ev.mode == Mode::Tun { "tunl0" } else { "lo" };
    let mut fix = vec![
        format!(
            "on {targets}: sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 (the LAN interface counts too, lo alone does nothing); persist in /etc/sysctl.d/"
        ),
        format!("keep the VIP as {vip}/32 on {vip_dev}, never on the LAN interface; set the sysctls before adding it"),
    ];
    if !proof.is_empty() || !bypass.is_empty() {
        let lan = ev
            .director
            .as_ref()
            .and_then(|d| {
                d.addresses
                    .iter()
                    .find(|a| a.net.contains(&vip) && a.net.prefix_len() < 32)
            })
            .map_or("eth0", |a| a.iface.as_str());
        fix.push(format!(
            "then refresh the caches: from the director `arping -U -c 3 -I {lan} {vip}`, or `ip neigh flush to {vip}` on the clients / gateway"
        ));
    }
    Some(
        Finding::new(ID, title, explains)
            .evidence(proof)
            .evidence(bypass)
            .evidence(latent)
            .fix(fix),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn run(ev: &Evidence) -> Option<Finding> {
        check(ev, &summarise(ev))
    }

    #[test]
    fn fires_with_neighbour_probe_bypass_and_sysctl_lines() {
        let finding = run(&sample::arp_flux()).expect("arp-flux must fire");
        assert_eq!(finding.explains, 0.95);
        let text = finding.evidence.join("\n");
        assert!(
            text.contains("client c1 neighbour 192.0.2.100 lladdr 02:00:00:00:00:12 REACHABLE on eth0 = rs2's eth0, not the director's (02:00:00:00:00:02)"),
            "{text}"
        );
        assert!(text.contains("ARP probe for 192.0.2.100 from c1: 2 replies: 02:00:00:00:00:02 (the director d1's eth0), 02:00:00:00:00:12 (rs2's eth0)"), "{text}");
        assert!(
            text.contains("the director saw 0 packets for 192.0.2.100 while 30 requests were answered (rs2 30)"),
            "{text}"
        );
        assert!(
            text.contains(
                "rs2 holds 192.0.2.100 on lo and answers ARP for it on eth0: arp_ignore max(all 0, eth0 0) = 0"
            ),
            "{text}"
        );
        assert!(
            finding.fix[0].starts_with("on rs2: sysctl -w net.ipv4.conf.all.arp_ignore=1"),
            "{:?}",
            finding.fix
        );
    }

    #[test]
    fn silent_on_the_healthy_twin() {
        assert_eq!(run(&sample::healthy_dr()), None);
    }

    #[test]
    fn sysctl_only_is_latent_and_lo_setting_alone_does_not_count() {
        let mut ev = sample::healthy_dr();
        let host = &mut ev.real_servers[0].host;
        host.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), "0".into());
        host.sysctls.insert("net.ipv4.conf.lo.arp_ignore".into(), "1".into());
        let finding = run(&ev).expect("latent arp-flux");
        assert_eq!(finding.explains, 0.3);
        assert_eq!(finding.evidence.len(), 1, "{:?}", finding.evidence);
        assert!(finding.evidence[0].starts_with("rs1 holds 192.0.2.100 on lo"));
    }

    #[test]
    fn vip_on_the_lan_interface_counts_whatever_the_sysctls() {
        let mut ev = sample::healthy_dr();
        let host = &mut ev.real_servers[2].host;
        host.addresses
            .retain(|a| a.iface != "lo" || a.net.addr() != sample::VIP);
        host.addresses.push(sample::addr("eth0", "192.0.2.100/24"));
        let finding = run(&ev).expect("VIP on eth0");
        assert!(
            finding.evidence[0].contains("rs3 holds 192.0.2.100/24 on eth0, its LAN interface"),
            "{:?}",
            finding.evidence
        );
    }

    #[test]
    fn direct_mode_has_no_director_to_bypass() {
        let mut ev = sample::arp_flux();
        ev.mode = Mode::Direct;
        assert_eq!(run(&ev), None);
    }
}
