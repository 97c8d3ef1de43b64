//! What two runs of one scenario must agree on, taken from a run's outcome with what
//! legitimately moves (expiry seconds, ephemeral client ports, lagging rates) left out.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ipvs::IpvsSnapshot;
use crate::run::RunOutcome;
use crate::scenario::{Comparison, Scenario};

/// One run's comparable facts, each a short text so a difference reads as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// `(name, value)` in a fixed order; see [`Facts::of`].
    pub facts: Vec<(&'static str, String)>,
}

impl Facts {
    /// The facts of `outcome`. With [`Comparison::OrderFree`] only what does not depend on
    /// which of several racing first packets won: no per-backend counts, no sequence.
    /// With [`Comparison::CountFree`], also no counts of answers, errors or connections.
    pub fn of(scenario: &Scenario, outcome: &RunOutcome) -> Facts {
        let comparison = scenario.traffic.comparison();
        let takeover_free = comparison == Comparison::TakeoverFree;
        let count_free = takeover_free || comparison == Comparison::CountFree;
        let order_free = count_free || comparison == Comparison::OrderFree;
        let mut facts = vec![("verdict", verdict(outcome))];
        if order_free {
            let answering: Vec<&str> = outcome.tally.answering().collect();
            facts.push(("answering", answering.join(" ")));
            if !count_free {
                facts.push(("answered", outcome.tally.answered().to_string()));
            }
        } else {
            facts.push(("tally", counts(&outcome.tally.backends)));
        }
        if takeover_free {
            // Whether a request was caught mid-flight by the takeover rests on the moment;
            // the verdict holds the scenario's bound on errors.
        } else if count_free {
            let kinds: Vec<&str> = outcome.tally.errors.keys().map(String::as_str).collect();
            facts.push((
                "error kinds",
                if kinds.is_empty() {
                    "none".into()
                } else {
                    kinds.join(", ")
                },
            ));
        } else {
            facts.push(("errors", counts(&outcome.tally.errors)));
        }
        if !order_free {
            facts.push(("sequence", sequence(outcome)));
        }
        let several = outcome.directors.len() > 1;
        for d in &outcome.directors {
            let name = several.then_some(d.name.as_str());
            facts.push(("table", table(&d.ipvs, order_free, name)));
            if !takeover_free {
                facts.push(("connections", connections(&d.ipvs, order_free, !count_free, name)));
            }
            if !count_free {
                facts.push(("scheduled", scheduled(&d.ipvs, order_free, name)));
            }
        }
        if let Some(v) = &outcome.vrrp {
            // Each director's states in order, and who is master: not when (the VM's clock is
            // slower), nor how two directors' simultaneous steps interleave.
            let mut steps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for t in &v.transitions {
                steps.entry(&t.director).or_default().push(&t.to);
            }
            let per_director: Vec<String> = steps.iter().map(|(d, s)| format!("{d}: {}", s.join(" "))).collect();
            facts.push((
                "vrrp",
                format!("{}; masters: {}", per_director.join("; "), v.masters.join(" ")),
            ));
        }
        facts.push(("diagnosis", diagnosis(outcome, count_free, takeover_free)));
        Facts { facts }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.facts.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

fn verdict(outcome: &RunOutcome) -> String {
    if outcome.verdict.passed {
        return "PASS".into();
    }
    let failed: Vec<&str> = outcome.verdict.failures().map(|c| c.what.as_str()).collect();
    format!("FAIL ({})", failed.join("; "))
}

fn counts(map: &BTreeMap<String, u32>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The answers in the order the requests were sent (deterministic scenarios only).
fn sequence(outcome: &RunOutcome) -> String {
    outcome
        .records
        .iter()
        .map(|r| match (&r.backend, &r.error) {
            (Some(b), None) => b.clone(),
            (_, Some(e)) => format!("<{e}>"),
            (None, None) => "<no backend>".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ipvsadm -Ln` as lvslab prints it: services, flags, real servers, weights and (unless
/// order-free) ActiveConn/InActConn.
fn table(ipvs: &IpvsSnapshot, order_free: bool, director: Option<&str>) -> String {
    let text = ipvs.list_text();
    let lines = text.lines().filter(|l| !l.starts_with("IP Virtual Server")).map(|l| {
        if order_free && l.trim_start().starts_with("->") && !l.contains("RemoteAddress") {
            // Keep address, forwarding method and weight; drop the connection counts.
            l.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
        } else {
            l.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    });
    prefixed(director, lines.collect::<Vec<_>>().join(" | "))
}

/// `ipvsadm -Lnc` rows counted by protocol, state and real server (templates apart, with
/// their client address), without expiry and client ports. Order-free: by state only.
/// Uncounted: which rows there are, not how many.
fn connections(ipvs: &IpvsSnapshot, order_free: bool, counted: bool, director: Option<&str>) -> String {
    let mut rows: BTreeMap<String, u32> = BTreeMap::new();
    for c in &ipvs.conns {
        let key = match (c.template, order_free) {
            (true, false) => format!("template {} {} -> {} -> {}", c.proto.name(), c.from.ip(), c.to, c.dest),
            (true, true) => format!("template {}", c.proto.name()),
            (false, false) => format!("{} {} -> {}", c.proto.name(), c.state, c.dest),
            (false, true) => format!("{} {}", c.proto.name(), c.state),
        };
        *rows.entry(key).or_default() += 1;
    }
    let text = if rows.is_empty() {
        "none".into()
    } else {
        rows.iter()
            .map(|(k, n)| if counted { format!("{n}× {k}") } else { k.clone() })
            .collect::<Vec<_>>()
            .join(", ")
    };
    prefixed(director, text)
}

/// `--stats` Conns per real server (order-free: per service): connections IPVS scheduled,
/// which kernel IPVS shows only once its estimator has folded the per-CPU counters.
fn scheduled(ipvs: &IpvsSnapshot, order_free: bool, director: Option<&str>) -> String {
    let mut parts = Vec::new();
    // ipvsadm's order: the kernel dumps services in its hash table's order.
    for (s, dests) in ipvs.sorted() {
        if order_free {
            parts.push(format!("{}:{} {}", s.vip, s.port, s.stats.conns));
        } else {
            for d in dests {
                parts.push(format!("{}:{} {}", d.addr, d.port, d.stats.conns));
            }
        }
    }
    prefixed(director, parts.join(", "))
}

fn prefixed(director: Option<&str>, text: String) -> String {
    match director {
        Some(name) => format!("{name}: {text}"),
        None => text,
    }
}

/// The diagnosis's cause ids. Count-free: only the causes that shaped the spread, since a latent
/// one (a reused source port that met a stale entry) rests on when a timed fault caught the
/// traffic. Takeover-free: every cause, latent or not (a split brain shapes the spread only when
/// a takeover caught a request), but `failover`, and `healthy` reads as no cause: both rest on
/// whether a request was in flight at the takeover.
fn diagnosis(outcome: &RunOutcome, count_free: bool, takeover_free: bool) -> String {
    let Some(d) = &outcome.diagnosis else {
        return "not made".into();
    };
    if !count_free {
        return if d.healthy {
            "healthy".into()
        } else {
            d.ids().join(", ")
        };
    }
    let ids: Vec<&str> = d
        .findings
        .iter()
        .filter(|f| takeover_free || f.explains > crate::diagnose::finding::LATENT)
        .map(|f| f.id.as_str())
        .filter(|id| !(takeover_free && *id == "failover"))
        .collect();
    match (ids.is_empty(), d.healthy || takeover_free) {
        (true, true) => "no cause shaping the spread".into(),
        (true, false) => "no cause found".into(),
        (false, _) => ids.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Instant;

    use super::*;
    use crate::ipvs::{self, ConnSnapshot, DestConfig, Forward, Proto, ServiceConfig};

    fn snapshot(weights: [u32; 2]) -> IpvsSnapshot {
        let mut table = ipvs::Ipvs::new(ipvs::Sysctls::default());
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let svc = table
            .add_service(ServiceConfig::new(Proto::Tcp, vip, 80, ipvs::Scheduler::Rr))
            .unwrap();
        for (i, w) in weights.into_iter().enumerate() {
            let rip = Ipv4Addr::new(192, 0, 2, 11 + i as u8);
            table.add_dest(svc, DestConfig::new(rip, 80, w, Forward::Dr)).unwrap();
        }
        table.snapshot(Instant::now())
    }

    fn conn(cport: u16, dest: u8, state: &str, expires: u64) -> ConnSnapshot {
        ConnSnapshot {
            proto: Proto::Tcp,
            from: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 201), cport),
            to: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 100), 80),
            dest: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, dest), 80),
            local: None,
            forward: Forward::Dr,
            state: state.into(),
            template: false,
            expires,
        }
    }

    #[test]
    fn tables_differ_by_weight_and_order_free_drops_connection_counts() {
        let a = snapshot([1, 1]);
        let mut busy = a.clone();
        busy.services[0].dests[0].inact_conns = 5;
        assert_ne!(table(&a, false, None), table(&busy, false, None));
        assert_eq!(table(&a, true, None), table(&busy, true, None));
        assert_ne!(table(&a, true, None), table(&snapshot([1, 2]), true, None));
        assert!(table(&a, false, None).contains("TCP 192.0.2.100:80 rr"));
    }

    #[test]
    fn connection_rows_ignore_ports_and_expiry_but_not_state_or_server() {
        let mut a = snapshot([1, 1]);
        let mut b = a.clone();
        a.conns = vec![conn(40001, 11, "FIN_WAIT", 119), conn(40002, 12, "FIN_WAIT", 118)];
        b.conns = vec![conn(51000, 12, "FIN_WAIT", 100), conn(52000, 11, "FIN_WAIT", 90)];
        assert_eq!(connections(&a, false, true, None), connections(&b, false, true, None));
        assert_eq!(
            connections(&a, false, true, None),
            "1× TCP FIN_WAIT -> 192.0.2.11:80, 1× TCP FIN_WAIT -> 192.0.2.12:80"
        );
        b.conns[0].dest = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 11), 80);
        assert_ne!(connections(&a, false, true, None), connections(&b, false, true, None));
        assert_eq!(connections(&a, true, true, None), connections(&b, true, true, None));
        b.conns[0].state = "CLOSE".into();
        assert_ne!(connections(&a, true, true, None), connections(&b, true, true, None));
    }

    #[test]
    fn count_free_keeps_which_rows_not_how_many() {
        let mut a = snapshot([1, 1]);
        let mut b = a.clone();
        a.conns = vec![conn(40001, 11, "FIN_WAIT", 119), conn(40002, 12, "SYN_RECV", 118)];
        b.conns = vec![
            conn(51000, 12, "FIN_WAIT", 100),
            conn(51001, 11, "FIN_WAIT", 100),
            conn(52000, 11, "SYN_RECV", 90),
        ];
        assert_ne!(connections(&a, true, true, None), connections(&b, true, true, None));
        assert_eq!(connections(&a, true, false, None), "TCP FIN_WAIT, TCP SYN_RECV");
        assert_eq!(connections(&a, true, false, None), connections(&b, true, false, None));
        b.conns[2].state = "CLOSE".into();
        assert_ne!(connections(&a, true, false, None), connections(&b, true, false, None));
    }

    #[test]
    fn scheduled_connections_come_from_the_counters() {
        let mut a = snapshot([1, 1]);
        a.services[0].dests[0].stats.conns = 3;
        a.services[0].stats.conns = 3;
        assert_eq!(scheduled(&a, true, Some("d1")), "d1: 192.0.2.100:80 3");
        let lagging = snapshot([1, 1]);
        assert_ne!(scheduled(&a, false, None), scheduled(&lagging, false, None));
    }
}
