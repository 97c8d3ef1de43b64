//! Soak: many new connections from one client address through the embedded director, in
//! the lab of `scenarios/dr-rr.toml` (DR, rr, three real servers). Every request is a new
//! TCP connection, `CONCURRENCY` in flight, so far more connections than the client has
//! ephemeral ports (28 232 by default). Prints, per `SLICE` requests, the throughput and
//! p50/p99 latency and the failures; then the failures by kind and the TIME_WAIT sockets
//! left on the client and on each real server.
//!
//! A step in latency, or failures late in the run, means something fills up as
//! connections accumulate (the client's port space, the director's table).
//!
//! Run (root): `cargo bench -p lvslab --bench soak`. `LVSLAB_SOAK_REQUESTS` and
//! `LVSLAB_SOAK_CONCURRENCY` change the defaults (100 000 and 8).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lvslab::lab::{Lab, LabOptions};
use lvslab::run::{self, Held};
use lvslab::traffic::{self, ConnectionMode, Proto, RequestRecord, TrafficSpec};
use tokio::sync::mpsc::UnboundedReceiver;

const REQUESTS: u32 = 100_000;
const CONCURRENCY: u32 = 8;
const SLICE: u32 = 10_000;
const TIMEOUT: Duration = Duration::from_secs(5);

fn env_number(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("{name}={text:?}: expected a whole number above 0")),
        Err(_) => default,
    }
}

/// `/proc/loadavg`'s first three fields: other work sharing the 2 cores skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

/// TCP sockets in TIME_WAIT in the calling thread's namespace.
fn time_wait_sockets() -> usize {
    const TIME_WAIT: &str = "06";
    std::fs::read_to_string("/proc/thread-self/net/tcp")
        .expect("read /proc/thread-self/net/tcp")
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(3) == Some(TIME_WAIT))
        .count()
}

/// When every `slice`-th request finished (one progress message per finished request).
async fn slice_ends(mut done: UnboundedReceiver<()>, slice: u32) -> Vec<Instant> {
    let mut ends = Vec::new();
    let mut finished = 0u32;
    while done.recv().await.is_some() {
        finished += 1;
        if finished.is_multiple_of(slice) {
            ends.push(Instant::now());
        }
    }
    ends
}

/// Latency at quantile `q` in ms (nearest rank); NaN when nothing was answered.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1e3
}

fn error_kinds(records: &[RequestRecord]) -> BTreeMap<String, u32> {
    let mut kinds = BTreeMap::new();
    for error in records.iter().filter_map(|r| r.error.as_ref()) {
        *kinds.entry(error.to_string()).or_default() += 1;
    }
    kinds
}

async fn soak(requests: u32, concurrency: u32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dr-rr.toml");
    let scenario = lvslab::scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lab = Lab::build(&run::lab_plan(&scenario), LabOptions::default())
        .await
        .expect("lab builds");
    let held = Held::start(&scenario, &lab).await.expect("servers and director start");
    let client_config = scenario.traffic.clients.first().expect("a client");
    let client = lab.host(&client_config.name).expect("client host");
    assert_eq!(client_config.sources.len(), 1, "the soak is about one client address");
    let port_range = client
        .sysctl("net.ipv4.ip_local_port_range")
        .await
        .unwrap_or_else(|e| format!("unreadable: {e}"));
    let spec = TrafficSpec {
        targets: vec![SocketAddr::from((scenario.service().vip, scenario.service().port))],
        proto: Proto::Tcp,
        requests,
        mode: ConnectionMode::New,
        concurrency,
        sources: client_config.sources.clone(),
        source_port: None,
        timeout: TIMEOUT,
        path: "/".into(),
        client: client_config.name.clone(),
        body: bytes::Bytes::new(),
    };
    let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel();
    let ends = tokio::spawn(slice_ends(done_rx, SLICE));
    let load_before = loadavg();
    let started = Instant::now();
    let records = traffic::fire(client.runtime(), spec, Some(done_tx)).await;
    let elapsed = started.elapsed();
    let ends = ends.await.expect("slice timer");
    let load_after = loadavg();

    println!(
        "\n## Soak: {requests} requests, new connection each, {concurrency} in flight, from {} (ephemeral ports {}), via {} ({}, {})",
        client_config.sources[0],
        port_range.split_whitespace().collect::<Vec<_>>().join("–"),
        scenario.service().vip,
        scenario.service().mode,
        scenario.service().scheduler,
    );
    println!("load before {load_before}, after {load_after}\n");
    println!("| requests | req/s | p50 ms | p99 ms | failed |");
    println!("|---|---|---|---|---|");
    let mut slice_start = started;
    for (index, chunk) in records.chunks(SLICE as usize).enumerate() {
        let mut answered: Vec<Duration> = chunk.iter().filter(|r| r.is_ok()).map(|r| r.latency).collect();
        answered.sort();
        let slice_end = ends.get(index).copied().unwrap_or(started + elapsed);
        let rate = chunk.len() as f64 / (slice_end - slice_start).as_secs_f64();
        slice_start = slice_end;
        let first = index * SLICE as usize + 1;
        println!(
            "| {first}–{} | {rate:.0} | {:.2} | {:.2} | {} |",
            first + chunk.len() - 1,
            quantile_ms(&answered, 0.5),
            quantile_ms(&answered, 0.99),
            chunk.len() - answered.len(),
        );
    }
    let mut all: Vec<Duration> = records.iter().filter(|r| r.is_ok()).map(|r| r.latency).collect();
    all.sort();
    println!(
        "\nall: {} answered of {requests} in {:.2} s = {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        elapsed.as_secs_f64(),
        f64::from(requests) / elapsed.as_secs_f64(),
        quantile_ms(&all, 0.5),
        quantile_ms(&all, 0.99),
    );
    let kinds = error_kinds(&records);
    if kinds.is_empty() {
        println!("failures: none");
    } else {
        let listed: Vec<String> = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
        let first = records.iter().position(|r| !r.is_ok()).map_or(0, |i| i + 1);
        println!("failures: {} (first at request {first})", listed.join(", "));
    }
    let mut waits = vec![format!(
        "{} {}",
        client.name(),
        client.exec(time_wait_sockets).await.expect("worker")
    )];
    for rs in &scenario.real_servers {
        let host = lab.host(&rs.name).expect("real server host");
        waits.push(format!(
            "{} {}",
            rs.name,
            host.exec(time_wait_sockets).await.expect("worker")
        ));
    }
    println!("TIME_WAIT sockets after the run: {}", waits.join(", "));

    held.stop().await;
    lab.teardown().await.expect("lab tears down");
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("soak: skipped (needs root for namespaces)");
        return;
    }
    let requests = env_number("LVSLAB_SOAK_REQUESTS", REQUESTS);
    let concurrency = env_number("LVSLAB_SOAK_CONCURRENCY", CONCURRENCY);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(soak(requests, concurrency));
}
