//! 1. Bring-up and teardown of the reference topology (switch, client, director, rs1..rs3:
//!    6 namespaces, 1 bridge, 5 veth pairs, addresses, VIP on the real servers' lo), by lvslab
//!    and by ci/ip-script.sh (one `ip` command per step), with the ratio.
//! 2. Scale: DR labs of 10, 100 and 1000 real servers from a generated scenario, brought up
//!    until ready to serve (lab, HTTP servers listening, embedded engine running; target at
//!    1000: at most 1.5 s), then 4 requests per real server through the VIP (target: none
//!    failed), the engine's drop counters, teardown, and how long the kernel takes to free
//!    the namespaces afterwards.
//!
//! `cargo bench -p lvslab --bench bringup [-- [reference|scale] [ITERATIONS]]` as root.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lvslab::director::{EmbeddedEngine, Engine, EngineStats};
use lvslab::lab::{BuildTimings, HostPlan, IfacePlan, Lab, LabOptions, LabPlan};
use lvslab::run::{self, Held};
use lvslab::scenario::Scenario;
use lvslab::traffic::{self, ConnectionMode, Proto, TrafficSpec};

fn reference_plan() -> LabPlan {
    let hosts = [
        ("client", "10.0.0.2"),
        ("director", "10.0.0.1"),
        ("rs1", "10.0.0.11"),
        ("rs2", "10.0.0.12"),
        ("rs3", "10.0.0.13"),
    ]
    .iter()
    .map(|(name, ip)| HostPlan {
        name: name.to_string(),
        interfaces: vec![IfacePlan {
            name: "eth0".into(),
            segment: "lan".into(),
            addrs: vec![format!("{ip}/24").parse().unwrap()],
            mac: None,
            mtu: None,
            segmented: false,
        }],
        loopback_addrs: if name.starts_with("rs") {
            vec!["10.0.0.100/32".parse().unwrap()]
        } else {
            vec![]
        },
        ..Default::default()
    })
    .collect();
    LabPlan {
        name: "bench".into(),
        hosts,
        segments: vec!["lan".into()],
    }
}

struct Stats {
    median: Duration,
    p90: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats {
        median: at(0.5),
        p90: at(0.9),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_row(what: &str, s: &Stats) {
    println!("{what:<34} median {:8.2} ms   p90 {:8.2} ms", ms(s.median), ms(s.p90));
}

fn run_script(script: &PathBuf, args: &[&str]) -> Duration {
    let t = Instant::now();
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .expect("run ci/ip-script.sh");
    let d = t.elapsed();
    assert!(status.success(), "ci/ip-script.sh {args:?} failed");
    d
}

const SETTLE: Duration = Duration::from_millis(200);
const WARMUP: usize = 5;

struct LabTimes {
    up: Vec<Duration>,
    listening: Vec<Duration>,
    down: Vec<Duration>,
}

fn measure_lab(rt: &tokio::runtime::Runtime, plan: &LabPlan, iterations: usize, pause: Duration) -> LabTimes {
    let mut times = LabTimes {
        up: Vec::new(),
        listening: Vec::new(),
        down: Vec::new(),
    };
    for i in 0..iterations + WARMUP {
        let t = Instant::now();
        let lab = rt
            .block_on(Lab::build(plan, LabOptions::default()))
            .expect("lab builds");
        let built = t.elapsed();
        // Servers listening: one TCP listener per real server, bound in its namespace.
        let listeners = rt.block_on(async {
            let mut v = Vec::new();
            for h in lab.hosts().filter(|h| h.name().starts_with("rs")) {
                let ip = h.iface("eth0").unwrap().addrs[0].addr();
                let l = h
                    .runtime()
                    .spawn(async move { tokio::net::TcpListener::bind((ip, 80)).await })
                    .await
                    .unwrap()
                    .unwrap();
                v.push(l);
            }
            v
        });
        let listening = t.elapsed();
        drop(listeners);
        let t = Instant::now();
        rt.block_on(lab.teardown()).expect("teardown");
        let torn = t.elapsed();
        if i >= WARMUP {
            times.up.push(built);
            times.listening.push(listening);
            times.down.push(torn);
        }
        std::thread::sleep(pause);
    }
    times
}

fn main() {
    // cargo bench passes "--bench"; ours are an optional part name and an iteration count.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(60);
    let only = |part: &str| !args.iter().any(|a| a == "reference" || a == "scale") || args.iter().any(|a| a == part);
    if !nix::unistd::geteuid().is_root() {
        println!("bringup bench skipped: needs root to create namespaces");
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if only("reference") {
        reference(&rt, iterations);
    }
    if only("scale") {
        scale(&rt);
    }
}

fn reference(rt: &tokio::runtime::Runtime, iterations: usize) {
    let plan = reference_plan();

    // Back to back, the kernel's deferred freeing of the previous lab's namespaces (cleanup_net,
    // RCU grace periods) lands in the next bring-up; with a pause it does not.
    let busy = measure_lab(rt, &plan, iterations, Duration::ZERO);
    let settled = measure_lab(rt, &plan, (iterations / 2).max(10), SETTLE);

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ci/ip-script.sh");
    let have_ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    let script_runs = (iterations / 3).max(5);
    let (mut s_up, mut s_down) = (Vec::new(), Vec::new());
    if have_ip {
        for i in 0..script_runs + 2 {
            let prefix = format!("ipbench-{}-{i}", std::process::id());
            let u = run_script(&script, &["up", &prefix]);
            let d = run_script(&script, &["down", &prefix]);
            if i >= 2 {
                s_up.push(u);
                s_down.push(d);
            }
        }
    }

    println!("reference topology: 6 namespaces, 1 bridge, 5 veth pairs, addresses ({iterations} lab runs, {script_runs} script runs)");
    let (lab_up, lab_down) = (stats(busy.up), stats(busy.down));
    print_row("lvslab bring-up", &lab_up);
    print_row("lvslab bring-up + 3 listeners", &stats(busy.listening));
    print_row("lvslab teardown", &lab_down);
    print_row(
        &format!("lvslab bring-up, {} ms pauses", SETTLE.as_millis()),
        &stats(settled.up),
    );
    if have_ip {
        let (ip_up, ip_down) = (stats(s_up), stats(s_down));
        print_row("ip script bring-up", &ip_up);
        print_row("ip script teardown", &ip_down);
        println!(
            "speed-up (median): bring-up {:.1}x, teardown {:.1}x",
            ms(ip_up.median) / ms(lab_up.median),
            ms(ip_down.median) / ms(lab_down.median)
        );
    } else {
        println!("ip script skipped: `ip` (iproute2) not installed");
    }
}

// ---------------------------------------------------------------------------
// Scale: DR labs of many real servers.

/// (real servers, labs built): fewer of the big ones, each takes seconds to come and go.
const SCALE_SIZES: [(usize, usize); 3] = [(10, 10), (100, 5), (1000, 3)];
/// `LVSLAB_SCALE_SIZES="1000x3,100x5"` runs those sizes (real servers x labs) instead.
fn scale_sizes() -> Vec<(usize, usize)> {
    let Ok(text) = std::env::var("LVSLAB_SCALE_SIZES") else {
        return SCALE_SIZES.to_vec();
    };
    text.split(',')
        .map(|size| {
            let (servers, labs) = size.trim().split_once('x').unwrap_or((size.trim(), "1"));
            match (servers.parse(), labs.parse()) {
                (Ok(s), Ok(l)) if s > 0 && l > 0 => (s, l),
                _ => panic!("LVSLAB_SCALE_SIZES: `{size}` is not SERVERSxLABS (e.g. 1000x3)"),
            }
        })
        .collect()
}
const READY_TARGET: Duration = Duration::from_millis(1500);
const REQUESTS_PER_SERVER: u32 = 4;
const SCALE_CONCURRENCY: u32 = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait for the kernel to free a torn-down lab's namespaces before the next: it
/// took about 40 ms per namespace here, slower when other labs come and go meanwhile.
fn free_deadline(namespaces: usize) -> Duration {
    Duration::from_secs(5) + Duration::from_millis(60) * namespaces as u32
}

/// The shape a user would write: DR, round robin, `servers` unnamed real servers, all defaults
/// (the default network grows from 192.0.2.0/24 to hold them).
fn dr_scenario(servers: usize) -> Scenario {
    let mut text = String::from("[service]\nmode = \"dr\"\nscheduler = \"rr\"\n");
    for _ in 0..servers {
        text.push_str("[[real_server]]\n");
    }
    lvslab::scenario::parse(&text, &format!("dr-{servers}.toml"))
        .unwrap_or_else(|e| panic!("generated scenario: {}", e.render("generated")))
}

struct ScaleRun {
    /// Phases of the lab build, from its start.
    phases: BuildTimings,
    lab: Duration,
    /// Real servers listening (after the lab).
    servers: Duration,
    /// The whole: lab, servers, engine running.
    ready: Duration,
    traffic: Duration,
    requests: usize,
    failed: BTreeMap<String, usize>,
    answering: usize,
    stats: EngineStats,
    teardown: Duration,
    /// Until the kernel's count of live namespaces is back to where it was; None past the deadline.
    freed: Option<Duration>,
}

/// Live network namespaces on the machine (the `net_namespace` slab's active objects): the
/// kernel frees a torn-down lab's namespaces asynchronously (cleanup_net).
fn live_namespaces() -> Option<u64> {
    let slabinfo = std::fs::read_to_string("/proc/slabinfo").ok()?;
    let line = slabinfo.lines().find(|l| l.starts_with("net_namespace "))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

async fn scale_run(scenario: &Scenario) -> ScaleRun {
    let before = live_namespaces();
    let started = Instant::now();
    let lab = Lab::build(&run::lab_plan(scenario), LabOptions::default())
        .await
        .expect("lab builds");
    let lab_built = started.elapsed();
    let phases = lab.build_timings();
    // The servers through Held, the engine here so that its counters can be read.
    let mut servers_only = scenario.clone();
    servers_only.directors.clear();
    let held = Held::start(&servers_only, &lab).await.expect("servers start");
    let servers = started.elapsed();
    let director = scenario.director().expect("a director");
    let config = run::director_config(scenario, director).expect("director config");
    let engine =
        EmbeddedEngine::start(lab.host(&director.name).expect("director host"), config).expect("engine starts");
    let ready = started.elapsed();

    let requests = REQUESTS_PER_SERVER * scenario.real_servers.len() as u32;
    let spec = TrafficSpec {
        targets: vec![SocketAddr::from((scenario.service().vip, scenario.service().port))],
        proto: Proto::Tcp,
        requests,
        mode: ConnectionMode::New,
        concurrency: SCALE_CONCURRENCY,
        sources: Vec::new(),
        source_port: None,
        timeout: REQUEST_TIMEOUT,
        path: "/".into(),
        client: "client".into(),
        body: bytes::Bytes::new(),
    };
    let client = lab.host("client").expect("client host");
    let fired = Instant::now();
    let records = traffic::fire(client.runtime(), spec, None).await;
    let traffic = fired.elapsed();
    let mut failed: BTreeMap<String, usize> = BTreeMap::new();
    let mut backends = std::collections::HashSet::new();
    for r in &records {
        match (&r.error, &r.backend) {
            (Some(e), _) => *failed.entry(e.to_string()).or_default() += 1,
            (None, Some(b)) => {
                backends.insert(b.clone());
            }
            (None, None) => *failed.entry("no backend named".into()).or_default() += 1,
        }
    }
    let stats = engine.stats();
    Box::new(engine).shutdown().expect("engine stops");
    held.stop().await;

    let torn = Instant::now();
    lab.teardown().await.expect("teardown");
    let teardown = torn.elapsed();
    let freed = match before {
        Some(before) => loop {
            // Other labs on the machine may come and go meanwhile: back to the count before is enough.
            if live_namespaces().is_some_and(|n| n <= before) {
                break Some(torn.elapsed());
            }
            if torn.elapsed() > free_deadline(scenario.hosts.len() + 1) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        },
        None => None,
    };
    ScaleRun {
        phases,
        lab: lab_built,
        servers,
        ready,
        traffic,
        requests: records.len(),
        failed,
        answering: backends.len(),
        stats,
        teardown,
        freed,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn scale(rt: &tokio::runtime::Runtime) {
    println!();
    println!("DR labs at scale: N real servers + client + director + switch = N+3 namespaces, N+2 veth pairs, 1 bridge; {REQUESTS_PER_SERVER} requests per real server at concurrency {SCALE_CONCURRENCY}");
    println!();
    println!("| real servers | labs | namespaces | + bridges, lo | + veths, addresses | + sysctls = lab | + servers listening | + engine = ready (median / max) | ready per host | requests | failed | answering | engine dropped | teardown | kernel frees namespaces in | load |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ready_medians = Vec::new();
    for (servers, labs) in scale_sizes() {
        let scenario = dr_scenario(servers);
        let runs: Vec<ScaleRun> = (0..labs).map(|_| rt.block_on(scale_run(&scenario))).collect();
        let hosts = servers + 2;
        let ready = median(runs.iter().map(|r| r.ready).collect());
        let ready_max = runs.iter().map(|r| r.ready).max().unwrap_or_default();
        ready_medians.push((servers, ready, ready_max));
        let requests: usize = runs.iter().map(|r| r.requests).sum();
        let failed: usize = runs.iter().flat_map(|r| r.failed.values()).sum();
        let mut failed_by: BTreeMap<&str, usize> = BTreeMap::new();
        let mut dropped: BTreeMap<lvslab::director::embedded::DropReason, u64> = BTreeMap::new();
        for r in &runs {
            for (k, n) in &r.failed {
                *failed_by.entry(k).or_default() += n;
            }
            for (k, n) in &r.stats.dropped {
                *dropped.entry(*k).or_default() += n;
            }
        }
        let list = |m: Vec<String>| if m.is_empty() { "0".to_owned() } else { m.join(", ") };
        let failed_text = if failed == 0 {
            "0".to_owned()
        } else {
            format!(
                "{failed} ({})",
                list(failed_by.iter().map(|(k, n)| format!("{n} {k}")).collect())
            )
        };
        let answering: Vec<String> = runs.iter().map(|r| r.answering.to_string()).collect();
        let freed: Vec<String> = runs
            .iter()
            .map(|r| {
                r.freed.map_or_else(
                    || format!("> {:.0} s", free_deadline(servers + 3).as_secs_f64()),
                    |d| format!("{:.2} s", d.as_secs_f64()),
                )
            })
            .collect();
        println!(
            "| {servers} | {labs} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} / {:.0} ms | {:.2} ms | {requests} ({:.0} ms median) | {failed_text} | {} | {} | {:.1} ms | {} | {} |",
            ms(median(runs.iter().map(|r| r.phases.namespaces).collect())),
            ms(median(runs.iter().map(|r| r.phases.prepared).collect())),
            ms(median(runs.iter().map(|r| r.phases.wired).collect())),
            ms(median(runs.iter().map(|r| r.lab).collect())),
            ms(median(runs.iter().map(|r| r.servers).collect())),
            ms(ready),
            ms(ready_max),
            ms(ready) / hosts as f64,
            ms(median(runs.iter().map(|r| r.traffic).collect())),
            answering.join(" / "),
            list(dropped.iter().map(|(k, n)| format!("{n} {k}")).collect()),
            ms(median(runs.iter().map(|r| r.teardown).collect())),
            freed.join(" / "),
            loadavg(),
        );
    }
    if let [(small, small_ready, _), .., (big, big_ready, big_max)] = ready_medians[..] {
        let per_host = (big_ready.saturating_sub(small_ready)).as_secs_f64() * 1e3 / (big - small) as f64;
        println!();
        println!("marginal cost per real server ({small} → {big}): {per_host:.2} ms");
        println!(
            "target: ready to serve with {big} real servers in at most {:.1} s: median {:.2} s, max {:.2} s — {}",
            READY_TARGET.as_secs_f64(),
            big_ready.as_secs_f64(),
            big_max.as_secs_f64(),
            if big_max <= READY_TARGET {
                "met"
            } else if big_ready <= READY_TARGET {
                "met by the median"
            } else {
                "NOT met"
            }
        );
    }
}

/// `/proc/loadavg`'s first three fields: other work on the 2 cores skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}
