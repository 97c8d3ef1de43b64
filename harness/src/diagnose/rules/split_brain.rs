//! keepalived causes (reference keepalived.md §1.9): two directors of one `vrrp_instance` are
//! MASTER at once and both hold the VIP. Adverts did not get through (a firewall without
//! `vrrp`, multicast filtered, unicast peers missing) or were refused (VRID, password,
//! interval or version differ), so each node thinks it is alone. Clients follow whichever
//! sent the last gratuitous ARP; the other's table ages alone.

use super::common::*;
use crate::diagnose::evidence::{Evidence, VrrpNodeEvidence};
use crate::diagnose::finding::{Finding, LATENT};
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::SplitBrain;

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let vrrp = ev.vrrp.as_ref()?;
    if vrrp.masters.len() < 2 {
        return None;
    }
    let vip = ev.vip().map_or("the VIP".to_string(), |v| v.to_string());
    let node = |d: &str| vrrp.nodes.iter().find(|n| n.director == d);
    let instance = vrrp
        .nodes
        .first()
        .map_or("the instance".to_string(), |n| n.instance.clone());
    let mut lines = vec![format!(
        "{} are each MASTER of {instance} when the traffic ended: each holds {vip}",
        vrrp.masters.join(" and ")
    )];
    for (director, at_ms, why) in &vrrp.became_master {
        if !vrrp.masters.contains(director) {
            continue;
        }
        let priority = node(director).map_or(String::new(), |n| format!(" (priority {})", n.priority));
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(": {why}")
        };
        lines.push(format!("{director}{priority} became MASTER at {at_ms:.0} ms{why}"));
    }
    for (director, line) in &vrrp.advert_trouble {
        lines.push(format!("{director}: {line}"));
    }
    let mismatches = mismatches(&vrrp.nodes);
    lines.extend(mismatches.iter().cloned());
    if let Some(vip) = ev.vip() {
        for c in &ev.clients {
            if let Some(mac) = c.host.neighbour(vip).and_then(|n| n.mac) {
                lines.push(format!(
                    "client {} sends {vip} to {mac} ({}): the last gratuitous ARP won",
                    c.name,
                    describe_mac(ev, mac)
                ));
            }
        }
    }
    let mut fix = Vec::new();
    if mismatches.is_empty() {
        fix.push(
            "let VRRP through on every director, in and out: `nft add rule inet filter input ip protocol vrrp accept` \
             and the same on output (firewalld: `firewall-cmd --permanent --add-rich-rule='rule protocol value=\"vrrp\" accept'`)"
                .to_string(),
        );
        fix.push(
            "where the network filters multicast (cloud, some switches), use `unicast_src_ip` and `unicast_peer { <the other node> }` on each node"
                .to_string(),
        );
    } else {
        fix.push(
            "give every node of the instance the same virtual_router_id, version, advert_int and authentication"
                .to_string(),
        );
    }
    fix.push(
        "once adverts flow, the lower-priority node steps down; refresh the clients' caches from the master: `arping -U -c 3 -I <iface> <VIP>` \
         (or set garp_lower_prio_repeat so keepalived re-sends its gratuitous ARPs)"
            .to_string(),
    );
    // Both masters forward to the same real servers: the spread may look fine.
    let explains = if spread.healthy { LATENT } else { 0.5 };
    Some(
        Finding::new(
            ID,
            format!("VRRP split brain: {} are MASTER at once", vrrp.masters.join(" and ")),
            explains,
        )
        .evidence(capped(lines))
        .fix(fix),
    )
}

/// Settings the nodes must share and do not.
fn mismatches(nodes: &[VrrpNodeEvidence]) -> Vec<String> {
    let mut out = Vec::new();
    let Some(first) = nodes.first() else { return out };
    for n in &nodes[1..] {
        let mut differ = Vec::new();
        if n.vrid != first.vrid {
            differ.push(format!("virtual_router_id {} vs {}", first.vrid, n.vrid));
        }
        if n.version != first.version {
            differ.push(format!("version {} vs {}", first.version, n.version));
        }
        if n.advert_int_ms != first.advert_int_ms {
            differ.push(format!(
                "advert_int {} ms vs {} ms",
                first.advert_int_ms, n.advert_int_ms
            ));
        }
        if n.auth != first.auth {
            differ.push("authentication on one node only".to_string());
        }
        if !differ.is_empty() {
            out.push(format!(
                "{} and {} differ: {}",
                first.director,
                n.director,
                differ.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::diagnose::evidence::{Mode, VrrpEvidence};
    use crate::diagnose::spread;

    fn node(director: &str, vrid: u8, priority: u8) -> VrrpNodeEvidence {
        VrrpNodeEvidence {
            director: director.into(),
            instance: "VI_1".into(),
            interface: "eth0".into(),
            address: Ipv4Addr::new(192, 0, 2, if director == "lvs1" { 1 } else { 2 }),
            vrid,
            priority,
            version: 2,
            advert_int_ms: 1000,
            auth: false,
            unicast_peers: Vec::new(),
            strict: false,
            no_accept: false,
        }
    }

    fn evidence(masters: &[&str], lvs2_vrid: u8, trouble: &[(&str, &str)]) -> Evidence {
        let mut ev = Evidence::empty(Mode::Dr);
        ev.vrrp = Some(VrrpEvidence {
            implementation: "embedded".into(),
            nodes: vec![node("lvs1", 51, 150), node("lvs2", lvs2_vrid, 100)],
            masters: masters.iter().map(|m| m.to_string()).collect(),
            advert_trouble: trouble.iter().map(|(d, l)| (d.to_string(), l.to_string())).collect(),
            became_master: vec![
                ("lvs1".into(), 0.0, "(VI_1) Receive advertisement timeout".into()),
                ("lvs2".into(), 3611.0, "(VI_1) Receive advertisement timeout".into()),
            ],
            failovers: Vec::new(),
            firewall_lines: Vec::new(),
            gateway: None,
        });
        ev
    }

    #[test]
    fn two_masters_are_a_split_brain_with_the_firewall_fix() {
        let ev = evidence(
            &["lvs1", "lvs2"],
            51,
            &[("lvs2", "(VI_1) send advert error 1 (Operation not permitted)")],
        );
        let f = check(&ev, &spread::summarise(&ev)).expect("fires");
        assert_eq!(f.id, CauseId::SplitBrain);
        let text = f.evidence.join("\n");
        assert!(text.contains("lvs1 and lvs2 are each MASTER of VI_1"), "{text}");
        assert!(text.contains("lvs2 (priority 100) became MASTER at 3611 ms: (VI_1) Receive advertisement timeout"));
        assert!(text.contains("lvs2: (VI_1) send advert error 1"));
        assert!(f.fix[0].contains("ip protocol vrrp accept"), "{:?}", f.fix);
    }

    #[test]
    fn a_vrid_mismatch_is_named_with_its_fix() {
        let ev = evidence(&["lvs1", "lvs2"], 52, &[]);
        let f = check(&ev, &spread::summarise(&ev)).expect("fires");
        assert!(f
            .evidence
            .iter()
            .any(|l| l == "lvs1 and lvs2 differ: virtual_router_id 51 vs 52"));
        assert!(f.fix[0].contains("same virtual_router_id"));
    }

    #[test]
    fn one_master_or_no_vrrp_is_silent() {
        let ev = evidence(&["lvs2"], 51, &[]);
        assert!(check(&ev, &spread::summarise(&ev)).is_none());
        let ev = Evidence::empty(Mode::Dr);
        assert!(check(&ev, &spread::summarise(&ev)).is_none());
    }
}
