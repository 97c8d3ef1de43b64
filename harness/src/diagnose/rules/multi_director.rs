//! Cause 26: several independent directors each start idle and make the same first
//! choice. Every IPVS table schedules from its own state: rr's cursor starts at the head
//! of the kernel's newest-first list, and lc/wlc/sed/nq break ties towards the first
//! destination, so with few connections per director every director sends its first ones
//! to the same real servers. Each table alone looks fair; only all of them together show it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{DirectorTableEvidence, Evidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::MultiDirector;

/// Schedulers whose choice from an idle table is the same on every director.
const FROM_IDLE: &[&str] = &["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf"];

pub fn check(ev: &Evidence, spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let tables = &ev.director_tables;
    // Independent directors serve at once; a VRRP pair hands one VIP from one to the other.
    if ev.vrrp.is_some() || tables.len() < 2 || !FROM_IDLE.contains(&svc.scheduler.as_str()) || spread.healthy {
        return None;
    }
    let counts: Vec<BTreeMap<Ipv4Addr, u64>> = tables.iter().map(conns_by_dest).collect();
    // Every director leans the same way: no two of them prefer opposite real servers, and
    // at least one has already left some real server behind the others.
    let dests: Vec<Ipv4Addr> = counts.iter().flat_map(|c| c.keys().copied()).collect();
    for a in &dests {
        for b in &dests {
            let prefers = |c: &BTreeMap<Ipv4Addr, u64>| c.get(a).copied().unwrap_or(0) > c.get(b).copied().unwrap_or(0);
            let against = |c: &BTreeMap<Ipv4Addr, u64>| c.get(b).copied().unwrap_or(0) > c.get(a).copied().unwrap_or(0);
            if counts.iter().any(prefers) && counts.iter().any(against) {
                return None;
            }
        }
    }
    let uneven = counts.iter().any(|c| {
        let (lo, hi) = (c.values().min(), c.values().max());
        lo != hi
    });
    if !uneven {
        return None;
    }
    let mut lines: Vec<String> = tables
        .iter()
        .zip(&counts)
        .map(|(t, c)| {
            let head = t.ipvs.dests.first().map(|d| name_of(ev, d.addr)).unwrap_or_default();
            let per: Vec<String> = t
                .ipvs
                .dests
                .iter()
                .map(|d| format!("{} {}", name_of(ev, d.addr), c.get(&d.addr).copied().unwrap_or(0)))
                .collect();
            format!(
                "director {} (VIP {}) scheduled {} connection(s): {}; its list starts at {head} (the kernel's is newest-first)",
                t.director,
                t.vip,
                c.values().sum::<u64>(),
                per.join(", ")
            )
        })
        .collect();
    let idle: Vec<String> = ev
        .real_servers
        .iter()
        .filter(|rs| spread.per_backend.get(&rs.name).copied().unwrap_or(0) == 0)
        .map(|rs| rs.name.clone())
        .collect();
    if !idle.is_empty() {
        lines.push(format!(
            "{} answered nothing: every director's first choices went elsewhere",
            idle.join(", ")
        ));
    }
    // The skew is all theirs: what no director got to, and the surplus of what all got first.
    let explains = if idle.is_empty() { 0.5 } else { 0.8 };
    let mut fix: Vec<String> = tables
        .iter()
        .map(|t| {
            let on_vip = crate::diagnose::evidence::ServiceEvidence { vip: t.vip, ..svc.clone() };
            format!(
                "on {}: ipvsadm -E {} -s mh -b mh-port (a per-flow hash that is the same on every director and spreads flows)",
                t.director,
                ipvsadm_service(&on_vip)
            )
        })
        .collect();
    fix.push(
        "or add the real servers in a different order on each director, so their lists start at different servers"
            .to_string(),
    );
    fix.push("or accept it: once each director has scheduled a round of connections the spread evens out".to_string());
    Some(
        Finding::new(
            ID,
            format!(
                "{} directors each scheduled from an idle table and made the same first choices",
                tables.len()
            ),
            explains,
        )
        .evidence(lines)
        .fix(fix),
    )
}

fn conns_by_dest(t: &DirectorTableEvidence) -> BTreeMap<Ipv4Addr, u64> {
    t.ipvs.dests.iter().map(|d| (d.addr, d.conns_total)).collect()
}

fn name_of(ev: &Evidence, addr: Ipv4Addr) -> String {
    ev.real_server_at(addr).map_or(addr.to_string(), |r| r.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::{DestEvidence, IpvsEvidence};
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    fn table(director: &str, vip: [u8; 4], conns: [u64; 3]) -> DirectorTableEvidence {
        // Newest first, as the kernel lists them: rs3, rs2, rs1.
        let dests = [3u8, 2, 1]
            .iter()
            .zip(conns)
            .map(|(&i, n)| DestEvidence {
                addr: Ipv4Addr::new(192, 0, 2, 10 + i),
                port: 80,
                weight: 1,
                active: 0,
                inactive: n as u32,
                persist: 0,
                conns_total: n,
            })
            .collect();
        DirectorTableEvidence {
            director: director.into(),
            vip: Ipv4Addr::from(vip),
            ipvs: IpvsEvidence {
                dests,
                ..Default::default()
            },
        }
    }

    /// Two rr directors, two requests each: rs3 and rs2 twice, rs1 never.
    fn two_idle_directors() -> Evidence {
        let mut ev = sample::healthy_dr();
        let order = ["rs3", "rs3", "rs2", "rs2"];
        ev.records.truncate(order.len());
        for (r, name) in ev.records.iter_mut().zip(order) {
            r.backend = Some(name.into());
        }
        ev.director_tables = vec![
            table("lvs1", [192, 0, 2, 100], [1, 1, 0]),
            table("lvs2", [192, 0, 2, 101], [1, 1, 0]),
        ];
        ev
    }

    #[test]
    fn directors_that_lean_the_same_way_are_named_with_their_tables() {
        let ev = two_idle_directors();
        let f = check(&ev, &summarise(&ev)).expect("fires");
        assert!(
            f.evidence
                .iter()
                .any(|l| l.contains("director lvs2 (VIP 192.0.2.101) scheduled 2 connection(s): rs3 1, rs2 1, rs1 0")),
            "{:#?}",
            f.evidence
        );
        assert!(
            f.evidence.iter().any(|l| l.starts_with("rs1 answered nothing")),
            "{:#?}",
            f.evidence
        );
        assert!(
            f.fix[0].starts_with("on lvs1: ipvsadm -E -t 192.0.2.100:80 -s mh -b mh-port"),
            "{:?}",
            f.fix
        );
        assert!(
            f.fix[1].starts_with("on lvs2: ipvsadm -E -t 192.0.2.101:80"),
            "{:?}",
            f.fix
        );
    }

    #[test]
    fn silent_for_one_director_a_hash_scheduler_opposite_leanings_or_an_even_spread() {
        let mut one = two_idle_directors();
        one.director_tables.truncate(1);
        assert!(check(&one, &summarise(&one)).is_none());

        let mut hashed = two_idle_directors();
        hashed.service.as_mut().unwrap().scheduler = "mh".into();
        assert!(check(&hashed, &summarise(&hashed)).is_none());

        let mut pair = two_idle_directors();
        pair.vrrp = Some(crate::diagnose::evidence::VrrpEvidence::default());
        assert!(check(&pair, &summarise(&pair)).is_none(), "a VRRP pair takes turns");

        let mut opposite = two_idle_directors();
        opposite.director_tables[1] = table("lvs2", [192, 0, 2, 101], [0, 1, 1]);
        assert!(check(&opposite, &summarise(&opposite)).is_none());

        let even = sample::healthy_dr();
        let mut even_tables = even.clone();
        even_tables.director_tables = vec![
            table("lvs1", [192, 0, 2, 100], [5, 5, 5]),
            table("lvs2", [192, 0, 2, 101], [5, 5, 5]),
        ];
        assert!(check(&even_tables, &summarise(&even_tables)).is_none());
    }
}
