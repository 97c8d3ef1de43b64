//! Destination locality, what lblc and lblcr exist for: the requests of a transparent cache
//! cluster go to many destination addresses (`[traffic] destinations`, one hot), and the
//! checks say whether each destination stuck to one server and the hot one spread over a set.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use crate::scenario::{Expect, Mode, Scenario, Traffic};
use crate::traffic::RequestRecord;
use crate::verdict::Check;

/// The destinations in the order the requests cycle over them: each once, and the hot one
/// spread among them as often as gives it its share (`k / (k + n) ≈ share`).
pub fn destination_cycle(traffic: &Traffic) -> Vec<Ipv4Addr> {
    let Some((hot, share)) = traffic.hot else {
        return traffic.destinations.clone();
    };
    let cold: Vec<Ipv4Addr> = traffic.destinations.iter().copied().filter(|d| *d != hot).collect();
    let copies = ((share * cold.len() as f64) / (1.0 - share)).round().max(1.0) as usize;
    let total = cold.len() + copies;
    let mut out = Vec::with_capacity(total);
    let (mut placed, mut cold_iter) = (0usize, cold.into_iter());
    for slot in 0..total {
        // Bresenham: the hot one whenever it is behind its share so far.
        if placed * total < copies * (slot + 1) {
            out.push(hot);
            placed += 1;
        } else if let Some(c) = cold_iter.next() {
            out.push(c);
        } else {
            out.push(hot);
            placed += 1;
        }
    }
    out
}

/// Where each client sends, in order: every VIP:port of the target services (each director's
/// VIP once), or for a fwmark service with `destinations`, each destination on each marked port.
pub fn targets(scenario: &Scenario) -> Vec<SocketAddr> {
    let t = &scenario.traffic;
    let mut targets: Vec<SocketAddr> = Vec::new();
    if scenario.service().mode == Mode::Direct {
        return scenario
            .real_servers
            .iter()
            .map(|rs| SocketAddr::from((rs.address, rs.port)))
            .collect();
    }
    for &index in &t.services {
        let svc = &scenario.services[index];
        if svc.fwmark.is_some() && !t.destinations.is_empty() {
            for addr in destination_cycle(t) {
                targets.extend(svc.ports().into_iter().map(|port| SocketAddr::from((addr, port))));
            }
            continue;
        }
        // A VRRP instance's directors share one VIP.
        for d in &scenario.directors {
            for port in svc.ports() {
                let target = SocketAddr::from((scenario.service_vip(index, d), port));
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
        }
    }
    targets
}

/// Answers per destination address, per backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DestinationTally(pub BTreeMap<IpAddr, BTreeMap<String, u32>>);

impl DestinationTally {
    pub fn of(records: &[RequestRecord]) -> Self {
        let mut by: BTreeMap<IpAddr, BTreeMap<String, u32>> = BTreeMap::new();
        for r in records.iter().filter(|r| r.error.is_none()) {
            if let Some(b) = &r.backend {
                *by.entry(r.target.ip()).or_default().entry(b.clone()).or_default() += 1;
            }
        }
        DestinationTally(by)
    }

    /// Destinations answered by more than one backend, as "addr: rs1, rs2".
    pub fn split(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|(_, b)| b.len() > 1)
            .map(|(d, b)| format!("{d}: {}", b.keys().cloned().collect::<Vec<_>>().join(", ")))
            .collect()
    }

    pub fn servers_of(&self, destination: IpAddr) -> Vec<&str> {
        self.0
            .get(&destination)
            .map(|b| b.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

/// `destinations_sticky` and `hot_destination_servers_min`.
pub fn checks(expect: &Expect, records: &[RequestRecord]) -> Vec<Check> {
    let mut checks = Vec::new();
    if !expect.destinations_sticky && expect.hot_destination_servers_min.is_none() {
        return checks;
    }
    let tally = DestinationTally::of(records);
    if expect.destinations_sticky {
        let split = tally.split();
        checks.push(Check::new(
            "every destination address sticks to one backend".to_owned(),
            split.is_empty(),
            (!split.is_empty()).then(|| split.join("; ")),
        ));
    }
    if let Some((hot, min)) = expect.hot_destination_servers_min {
        let servers = tally.servers_of(IpAddr::V4(hot));
        let passed = servers.len() >= min as usize;
        checks.push(Check::new(
            format!("hot destination {hot} is answered by at least {min} backend(s)"),
            passed,
            (!passed).then(|| {
                format!(
                    "{} answered it: {}",
                    servers.len(),
                    if servers.is_empty() {
                        "none".to_owned()
                    } else {
                        servers.join(", ")
                    }
                )
            }),
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn traffic(n: u8, hot: Option<(u8, f64)>) -> Traffic {
        let addr = |i: u8| Ipv4Addr::new(203, 0, 113, i);
        Traffic {
            requests: 1,
            connection: crate::scenario::ConnectionMode::New,
            concurrency: 1,
            clients: vec![],
            source_port: None,
            timeout: Duration::from_secs(1),
            path: hyper::http::uri::PathAndQuery::from_static("/"),
            compare: None,
            rate: None,
            duration: None,
            services: vec![0],
            destinations: (1..=n).map(addr).collect(),
            hot: hot.map(|(i, s)| (addr(i), s)),
            body_bytes: 0,
        }
    }

    #[test]
    fn the_hot_destination_takes_its_share_spread_through_the_cycle() {
        let t = traffic(11, Some((1, 0.5)));
        let cycle = destination_cycle(&t);
        let hot = Ipv4Addr::new(203, 0, 113, 1);
        assert_eq!(cycle.len(), 20);
        assert_eq!(cycle.iter().filter(|a| **a == hot).count(), 10);
        // Never twice in a row at a 50% share: the cycle alternates.
        assert!(cycle.windows(2).all(|w| w[0] != w[1]), "{cycle:?}");
        for i in 2..=11 {
            assert_eq!(cycle.iter().filter(|a| a.octets()[3] == i).count(), 1);
        }
        assert_eq!(destination_cycle(&traffic(3, None)).len(), 3);
    }

    fn record(dest: &str, backend: &str) -> RequestRecord {
        RequestRecord {
            seq: 0,
            client: "c".into(),
            target: format!("{dest}:80").parse().unwrap(),
            backend: Some(backend.into()),
            latency: Duration::ZERO,
            local: None,
            seen_as: None,
            connection: 0,
            sent_at: Duration::ZERO,
            error: None,
        }
    }

    #[test]
    fn locality_checks_see_split_destinations_and_the_hot_set() {
        let records = [
            record("203.0.113.1", "rs1"),
            record("203.0.113.1", "rs2"),
            record("203.0.113.2", "rs3"),
            record("203.0.113.2", "rs3"),
        ];
        let expect = |sticky: bool, min: Option<u32>| Expect {
            destinations_sticky: sticky,
            hot_destination_servers_min: min.map(|m| (Ipv4Addr::new(203, 0, 113, 1), m)),
            backends: None,
            answering: None,
            share: None,
            tolerance: 0.1,
            even: false,
            sequence: None,
            sticky: false,
            errors: 0,
            diagnosis: vec![],
            removed: vec![],
            removed_within: None,
            removed_after_death: None,
            restored_after_return: None,
        };
        let c = checks(&expect(true, Some(2)), &records);
        assert!(!c[0].passed);
        assert_eq!(c[0].detail.as_deref(), Some("203.0.113.1: rs1, rs2"));
        assert!(c[1].passed);
        let c = checks(&expect(false, Some(3)), &records);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].detail.as_deref(), Some("2 answered it: rs1, rs2"));
        assert!(checks(&expect(false, None), &records).is_empty());
    }
}
