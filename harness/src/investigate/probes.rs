//! Short contrasting probes after the main traffic, shaped to tell causes apart:
//! new connections from one source, the same over one kept-alive connection, and new
//! connections from several source addresses. A cause that balances connections but not
//! requests (keep-alive) spreads only in the first; one that pins a source address
//! (persistence, sh) spreads only in the last.
//!
//! The director keeps its state between probes (templates, sh's hash): a probe from the
//! main run's source lands where the main run's templates say. That is evidence too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;

use crate::diagnose::evidence::{ProbeKind, ProbeResult};
use crate::lab::Lab;
use crate::scenario::{Mode, Role, Scenario};
use crate::traffic::{self, RequestRecord, TrafficSpec};

/// Requests per probe: enough to see a spread over a few servers, few enough to be quick.
pub const PROBE_REQUESTS: u32 = 18;
/// Extra source addresses the many-sources probe adds to the client.
pub const PROBE_SOURCES: usize = 6;
/// A probe request that fails (dead server) costs at most this; a lab answers in ~1 ms,
/// but a loaded 2-core machine can stall a namespace thread for a hundred.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(300);
/// Every request of a new-connection probe in flight at once: failures cost one timeout.
const PROBE_CONCURRENCY: u32 = PROBE_REQUESTS;
/// Probe source addresses are picked from this host number upward, below the clients' .201.
const FIRST_PROBE_HOST: u32 = 160;

/// Runs the probes from the first traffic client. The keep-alive probe runs only when the
/// main run reused connections: that is the contrast it exists for, and every healthy
/// service "fails" it. Problems (no client, no free address) skip the probe that needs
/// it and are returned to be reported.
pub async fn run_probes(scenario: &Scenario, lab: &Lab, main_run: &[RequestRecord]) -> (Vec<ProbeResult>, Vec<String>) {
    let mut results = Vec::new();
    let mut problems = Vec::new();
    let Some(client) = scenario.traffic.clients.first() else {
        return (results, vec!["no traffic client to probe from".into()]);
    };
    let Some(host) = lab.host(&client.name) else {
        return (results, vec![format!("client {} is not in the lab", client.name)]);
    };
    let own = client.sources.first().copied();
    let base = TrafficSpec {
        targets: targets(scenario),
        proto: scenario.service().protocol,
        requests: PROBE_REQUESTS,
        mode: traffic::ConnectionMode::New,
        concurrency: PROBE_CONCURRENCY,
        sources: own.into_iter().collect(),
        source_port: None,
        timeout: scenario.traffic.timeout.min(PROBE_TIMEOUT),
        path: scenario.traffic.path.to_string(),
        client: client.name.clone(),
        // Bodyless: against a main run of large requests, the probes are the small ones.
        body: bytes::Bytes::new(),
    };
    let rt = host.runtime().clone();

    // The probes are independent (their own source addresses or connections), so they run
    // at once: a dead server then costs one probe timeout, not one per probe.
    let mut shapes = vec![(ProbeKind::NewConn, base.clone())];
    if reused_connections(main_run) {
        let kept = TrafficSpec {
            mode: traffic::ConnectionMode::KeepAlive,
            concurrency: 1,
            ..base.clone()
        };
        shapes.push((ProbeKind::Keepalive, kept));
    }
    match add_probe_sources(scenario, lab, &client.name).await {
        Ok(sources) => shapes.push((ProbeKind::ManySources, TrafficSpec { sources, ..base })),
        Err(problem) => problems.push(problem),
    }
    let fired = shapes.into_iter().map(|(kind, spec)| {
        let rt = rt.clone();
        async move { summarise(kind, &traffic::fire(&rt, spec, None).await) }
    });
    results.extend(futures::future::join_all(fired).await);
    (results, problems)
}

/// Whether some connection of the run carried more than one request.
pub fn reused_connections(records: &[RequestRecord]) -> bool {
    let mut seen = BTreeSet::new();
    records
        .iter()
        .filter(|r| r.local.is_some())
        .any(|r| !seen.insert((r.client.as_str(), r.connection)))
}

fn targets(scenario: &Scenario) -> Vec<SocketAddr> {
    match scenario.service().mode {
        Mode::Direct => scenario
            .real_servers
            .iter()
            .map(|rs| SocketAddr::from((rs.address, rs.port)))
            .collect(),
        _ => vec![SocketAddr::from((scenario.service().vip, scenario.service().port))],
    }
}

/// Adds [`PROBE_SOURCES`] free addresses of the client's first network to its interface.
/// They stay until the lab goes down.
async fn add_probe_sources(scenario: &Scenario, lab: &Lab, client: &str) -> Result<Vec<Ipv4Addr>, String> {
    let host_plan = scenario
        .host(client)
        .ok_or_else(|| format!("client {client} is not in the scenario"))?;
    let iface = host_plan
        .interfaces
        .first()
        .ok_or_else(|| format!("client {client} has no interface"))?;
    let net = iface.address.trunc();
    let sources = free_addresses(scenario, net, PROBE_SOURCES);
    if sources.len() < 2 {
        return Err(format!("no free addresses in {net} for the many-sources probe"));
    }
    let host = lab
        .host(client)
        .ok_or_else(|| format!("client {client} is not in the lab"))?;
    for addr in &sources {
        let with_prefix = Ipv4Net::new(*addr, net.prefix_len()).map_err(|e| e.to_string())?;
        host.add_address(&iface.name, with_prefix)
            .await
            .map_err(|e| format!("cannot add probe source {addr} to {client}: {e}"))?;
    }
    Ok(sources)
}

/// Up to `count` addresses of `net`, from host number [`FIRST_PROBE_HOST`] up, that no
/// host, VIP or traffic source uses.
pub fn free_addresses(scenario: &Scenario, net: Ipv4Net, count: usize) -> Vec<Ipv4Addr> {
    let mut used: BTreeSet<Ipv4Addr> = scenario
        .hosts()
        .flat_map(|h| h.interfaces.iter())
        .flat_map(|i| std::iter::once(i.address.addr()).chain(i.secondary.iter().map(|s| s.addr())))
        .collect();
    used.insert(scenario.service().vip);
    used.extend(scenario.traffic.clients.iter().flat_map(|c| c.sources.iter().copied()));
    used.extend(
        scenario
            .hosts_with_role(Role::RealServer)
            .flat_map(|h| h.loopback_vips.iter().map(|v| v.addr())),
    );
    let base = u32::from(net.network());
    let last = u32::from(net.broadcast());
    (base + FIRST_PROBE_HOST..last)
        .map(Ipv4Addr::from)
        .filter(|a| net.contains(a) && !used.contains(a))
        .take(count)
        .collect()
}

/// One probe's records summed up.
pub fn summarise(kind: ProbeKind, records: &[RequestRecord]) -> ProbeResult {
    let mut per_backend: BTreeMap<String, u32> = BTreeMap::new();
    let mut sources = BTreeSet::new();
    let mut connections = BTreeSet::new();
    let mut errors = 0;
    for r in records {
        if let Some(local) = r.local {
            sources.insert(local.ip());
            connections.insert(r.connection);
        }
        match (&r.backend, &r.error) {
            (Some(b), None) => *per_backend.entry(b.clone()).or_default() += 1,
            _ => errors += 1,
        }
    }
    ProbeResult {
        kind,
        requests: records.len() as u32,
        sources: sources.len() as u32,
        connections: connections.len() as u32,
        per_backend,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sources_avoid_every_address_in_use() {
        let text = "[service]\nmode = \"dr\"\nvip = \"192.0.2.161\"\n[[real_server]]\naddress = \"192.0.2.160\"\n[[real_server]]\n[traffic]\nsources = [\"192.0.2.201\", \"192.0.2.163\"]\n";
        let s = crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
        let net: Ipv4Net = "192.0.2.0/24".parse().unwrap();
        let got = free_addresses(&s, net, 3);
        let want: Vec<Ipv4Addr> = ["192.0.2.162", "192.0.2.164", "192.0.2.165"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        // A /29 has no host number 160: nothing to offer, never an address outside it.
        assert!(free_addresses(&s, "10.0.0.0/29".parse().unwrap(), 3).is_empty());
    }

    #[test]
    fn summaries_count_sources_connections_and_answers() {
        let record = |seq: u32, port: u16, conn: u32, backend: Option<&str>| RequestRecord {
            seq,
            client: "c".into(),
            target: "192.0.2.100:80".parse().unwrap(),
            backend: backend.map(str::to_owned),
            latency: Duration::ZERO,
            local: Some(SocketAddr::from(([192, 0, 2, 160 + (seq % 2) as u8], port))),
            seen_as: None,
            connection: conn,
            sent_at: Duration::ZERO,
            error: backend.is_none().then_some(crate::traffic::RequestError::Timeout),
        };
        let records = [
            record(0, 1000, 0, Some("rs1")),
            record(1, 1001, 1, Some("rs2")),
            record(2, 1002, 2, None),
        ];
        let p = summarise(ProbeKind::ManySources, &records);
        assert_eq!((p.requests, p.sources, p.connections, p.errors), (3, 2, 3, 1));
        assert_eq!(p.distinct_backends(), 2);
        assert!(!reused_connections(&records));
        let kept = [record(0, 1000, 0, Some("rs1")), record(1, 1000, 0, Some("rs1"))];
        assert!(reused_connections(&kept));
    }
}
