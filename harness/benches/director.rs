//! 1. Memory of the connection table with 100 000 entries (RSS growth and the
//!    size computed from the types; target < 64 MiB).
//! 2. Frames per second through the embedded director's parse + rewrite
//!    path on synthetic frames (no sockets: the userspace work per frame).
//! 3. As root, per forwarding mode, in the lab of the shipped scenario
//!    (`scenarios/{dr,nat,tun,fullnat}-rr.toml`): HTTP requests/s and p50/p99
//!    latency, new connection per request, through the engine against the
//!    same requests straight to rs1 (target: at least 80%); the engine's
//!    frames forwarded per second and CPU per frame.
//!
//! Output is Markdown tables (pasted into docs/benchmarks.md), each with the
//! load average, since other work may share the cores.
//!
//! Run: `cargo bench -p lvslab --bench director`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use lvslab::director::embedded::forward::{self, Csum, Rewrite, Tunnel};
use lvslab::director::embedded::frame::{self, Frame};
use lvslab::wire::Mac;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x21];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
const MEASURE_FOR: Duration = Duration::from_millis(500);

fn request(payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1, 64240)
        .ack(1)
        .psh()
        .write(&mut f, &vec![b'x'; payload_len])
        .unwrap();
    f
}

/// Runs `step` on a fresh copy of `template` until MEASURE_FOR elapses; frames/s.
fn measure(template: &[u8], mut step: impl FnMut(&mut Vec<u8>) -> bool) -> f64 {
    let mut buf = Vec::with_capacity(template.len() + 64);
    let mut frames = 0u64;
    let start = Instant::now();
    while start.elapsed() < MEASURE_FOR {
        for _ in 0..1024 {
            buf.clear();
            buf.extend_from_slice(template);
            assert!(step(&mut buf));
            black_box(&buf);
        }
        frames += 1024;
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn parsed(buf: &[u8]) -> frame::Ipv4Frame {
    match frame::parse(buf) {
        Ok(Frame::Ipv4(ip)) => ip,
        other => panic!("bench frame does not parse: {other:?}"),
    }
}

/// `/proc/loadavg`'s first three fields: other work sharing the 2 cores skews every figure.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

// ---------------------------------------------------------------------------
// Memory: 100 000 entries in the connection table.

const TABLE_ENTRIES: u32 = 100_000;
const TABLE_TARGET_MIB: f64 = 64.0;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm has a resident field");
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .expect("page size") as u64;
    resident * page
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

/// What the table's allocations come to, from the type sizes: the slab (`Vec<Slot>`, slot =
/// generation + `Option<Conn>`) and hashbrown indexes (bucket = key + slot index, plus one
/// control byte), each at the power-of-two capacity they grow to.
fn computed_table_bytes(entries: usize, indexes_out: bool) -> (usize, usize) {
    use lvslab::ipvs::conn::{Conn, InKey, OutKey};
    use std::mem::{align_of, size_of};
    let align = align_of::<Conn>();
    let slot = (size_of::<Option<Conn>>() + size_of::<u32>()).div_ceil(align) * align;
    let slab = entries.next_power_of_two() * slot;
    let buckets = (entries * 8 / 7).next_power_of_two();
    let mut index = buckets * (size_of::<(InKey, u32)>() + 1);
    if indexes_out {
        index += buckets * (size_of::<(OutKey, u32)>() + 1);
    }
    (slot, slab + index)
}

struct TableMemory {
    forward: lvslab::ipvs::Forward,
    rss_growth: u64,
    computed: usize,
    slot: usize,
    fill_time: Duration,
}

/// One TCP service with 3 destinations; a SYN from each of `TABLE_ENTRIES` distinct client
/// address:port pairs creates one entry each. RSS before and after, the table still alive.
fn table_memory(forward: lvslab::ipvs::Forward) -> TableMemory {
    use lvslab::ipvs::{DestConfig, InVerdict, Ipvs, PacketIn, Proto, ServiceConfig, Sysctls, TcpFlags};
    let before = rss_bytes();
    let mut ipvs = Ipvs::new(Sysctls::default());
    let svc = ipvs
        .add_service(ServiceConfig::new(Proto::Tcp, VIP, 80, lvslab::ipvs::Scheduler::Rr))
        .expect("service");
    for i in 1..=3u8 {
        ipvs.add_dest(svc, DestConfig::new(Ipv4Addr::new(10, 0, 1, 20 + i), 80, 1, forward))
            .expect("destination");
    }
    let syn = Some(TcpFlags {
        syn: true,
        ..Default::default()
    });
    let now = Instant::now();
    let started = Instant::now();
    for i in 0..TABLE_ENTRIES {
        // 1000 ports on each of 100 client addresses.
        let saddr = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i / 1000);
        let sport = 20_000 + (i % 1000) as u16;
        let pkt = PacketIn {
            proto: Proto::Tcp,
            saddr,
            sport,
            daddr: VIP,
            dport: 80,
            tcp: syn,
            len: 60,
        };
        let verdict = ipvs.process_in(&pkt, now);
        assert!(
            matches!(verdict, InVerdict::Forward { new: true, .. }),
            "SYN {i}: {verdict:?}"
        );
    }
    let fill_time = started.elapsed();
    assert_eq!(ipvs.conn_count(), TABLE_ENTRIES as usize);
    let after = rss_bytes();
    black_box(&ipvs);
    let with_out = matches!(forward, lvslab::ipvs::Forward::Nat | lvslab::ipvs::Forward::FullNat);
    let (slot, computed) = computed_table_bytes(TABLE_ENTRIES as usize, with_out);
    drop(ipvs);
    TableMemory {
        forward,
        rss_growth: after.saturating_sub(before),
        computed,
        slot,
        fill_time,
    }
}

/// Set in the child process that measures one table (its heap fresh, untouched by the other).
const TABLE_CHILD_ENV: &str = "LVSLAB_BENCH_TABLE_CHILD";

fn forward_named(name: &str) -> lvslab::ipvs::Forward {
    use lvslab::ipvs::Forward;
    match name {
        "dr" => Forward::Dr,
        "nat" => Forward::Nat,
        other => panic!("{TABLE_CHILD_ENV}={other}: expected dr or nat"),
    }
}

/// In the child: measure, print one line `rss_growth computed slot fill_ns`.
fn table_child(mode: &str) {
    let m = table_memory(forward_named(mode));
    println!("{} {} {} {}", m.rss_growth, m.computed, m.slot, m.fill_time.as_nanos());
}

/// Runs this bench binary again with TABLE_CHILD_ENV set: allocator state left by one
/// measurement (glibc keeps freed large blocks once its mmap threshold rises) cannot
/// inflate or hide the next.
fn table_in_child(mode: &str) -> TableMemory {
    let exe = std::env::current_exe().expect("path of this bench binary");
    let out = std::process::Command::new(exe)
        .env(TABLE_CHILD_ENV, mode)
        .output()
        .expect("run the table child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "table child for {mode} failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<u128> = text
        .split_whitespace()
        .map(|f| f.parse().unwrap_or_else(|_| panic!("table child printed {text:?}")))
        .collect();
    let [rss_growth, computed, slot, fill_ns] = fields[..] else {
        panic!("table child printed {text:?}")
    };
    TableMemory {
        forward: forward_named(mode),
        rss_growth: rss_growth as u64,
        computed: computed as usize,
        slot: slot as usize,
        fill_time: Duration::from_nanos(fill_ns as u64),
    }
}

fn report_table_memory() {
    println!(
        "\n## Connection table: {TABLE_ENTRIES} entries, each in a fresh process (load {})",
        loadavg()
    );
    println!(
        "size_of Conn = {} B, InKey = {} B, OutKey = {} B",
        std::mem::size_of::<lvslab::ipvs::conn::Conn>(),
        std::mem::size_of::<lvslab::ipvs::conn::InKey>(),
        std::mem::size_of::<lvslab::ipvs::conn::OutKey>()
    );
    println!("| forward | RSS growth | per entry (RSS) | computed from types | fill time | target < {TABLE_TARGET_MIB} MiB |");
    println!("|---|---|---|---|---|---|");
    for mode in ["dr", "nat"] {
        let m = table_in_child(mode);
        let growth = m.rss_growth as f64;
        println!(
            "| {mode} ({}) | {:.1} MiB | {:.0} B | {:.1} MiB (slab slot {} B + index{}) | {:.0} ms ({:.2} M SYN/s) | {} |",
            m.forward.name(),
            mib(growth),
            growth / f64::from(TABLE_ENTRIES),
            mib(m.computed as f64),
            m.slot,
            if mode == "nat" { "es in + out" } else { " in" },
            m.fill_time.as_secs_f64() * 1e3,
            f64::from(TABLE_ENTRIES) / m.fill_time.as_secs_f64() / 1e6,
            if mib(growth) < TABLE_TARGET_MIB { "met" } else { "MISSED" },
        );
    }
}

// ---------------------------------------------------------------------------
// HTTP through each shipped scenario's lab: via the director vs straight to a real server.

/// The shipped scenario per forwarding mode.
const MODE_SCENARIOS: [(&str, &str); 4] = [
    ("dr", "dr-rr.toml"),
    ("nat", "nat-rr.toml"),
    ("tun", "tun-rr.toml"),
    ("fullnat", "fullnat-rr.toml"),
];
/// Per target, after warm-up; split into ROUNDS that alternate direct and via-director so a
/// change in background load hits both alike.
const HTTP_REQUESTS: u32 = 3000;
const HTTP_ROUNDS: u32 = 3;
const HTTP_WARMUP: u32 = 200;
/// Requests in flight per client: 4 is the figure (closed loop, so latency-bound);
/// 16 shows how much of the gap is per-request latency rather than engine capacity.
const HTTP_CONCURRENCY: [u32; 2] = [4, 16];
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);
const RATIO_TARGET: f64 = 0.80;

/// Requests answered and how long they took, summed over rounds.
#[derive(Default)]
struct Sample {
    requests: u32,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Sample {
    fn add(&mut self, other: Sample) {
        self.requests += other.requests;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }
    fn rate(&self) -> f64 {
        f64::from(self.requests) / self.elapsed.as_secs_f64()
    }
    /// Latency at quantile `q` in ms (nearest rank).
    fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies.clone();
        v.sort();
        let at = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[at].as_secs_f64() * 1e3
    }
}

/// `requests` HTTP requests, a new connection each, from `from`'s namespace to `target`;
/// every one must be answered.
async fn fire_at(from: &lvslab::lab::Host, target: std::net::SocketAddr, requests: u32, concurrency: u32) -> Sample {
    use lvslab::traffic::{self, ConnectionMode, Proto, TrafficSpec};
    let spec = TrafficSpec {
        targets: vec![target],
        proto: Proto::Tcp,
        requests,
        mode: ConnectionMode::New,
        concurrency,
        sources: vec![],
        source_port: None,
        timeout: HTTP_TIMEOUT,
        path: "/".into(),
        client: from.name().to_owned(),
        body: bytes::Bytes::new(),
    };
    let started = Instant::now();
    let records = traffic::fire(from.runtime(), spec, None).await;
    let elapsed = started.elapsed();
    let failed: Vec<_> = records.iter().filter(|r| !r.is_ok()).collect();
    assert!(
        failed.is_empty(),
        "{} of {requests} requests from {} to {target} failed; first: {:?}",
        failed.len(),
        from.name(),
        failed[0].error
    );
    Sample {
        requests,
        elapsed,
        latencies: records.iter().map(|r| r.latency).collect(),
    }
}

/// The engine thread, as other threads can observe it while it lives.
#[derive(Clone, Copy)]
struct ThreadClock {
    /// Its CPU-time clock (ns resolution).
    cpu: libc::clockid_t,
    tid: libc::pid_t,
}

/// CPU clock and thread id of the calling thread.
fn own_cpu_clock() -> ThreadClock {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self is always valid for the calling thread; `clock` is a valid out pointer.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    assert_eq!(rc, 0, "pthread_getcpuclockid");
    // SAFETY: gettid has no preconditions.
    ThreadClock {
        cpu: clock,
        tid: unsafe { libc::gettid() },
    }
}

/// (user, system) CPU of a thread of this process, in clock ticks (10 ms here): coarse, but
/// tells whether the engine's time goes to its own code or to the kernel's send/receive path.
fn user_sys_ticks(tid: libc::pid_t) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("engine thread stat");
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    let after_name = &stat[stat.rfind(')').expect("stat has a name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    (fields[11].parse().expect("utime"), fields[12].parse().expect("stime"))
}

fn cpu_time(clock: ThreadClock) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out pointer; the clock belongs to a thread that is still running.
    let rc = unsafe { libc::clock_gettime(clock.cpu, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime on the engine thread's CPU clock");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `EmbeddedEngine::start`, but the packet thread also reports its CPU clock, so the bench
/// can tell how much CPU the engine spent per frame.
fn start_engine(
    host: &lvslab::lab::Host,
    cfg: lvslab::director::DirectorConfig,
) -> (lvslab::director::EmbeddedEngine, ThreadClock) {
    use lvslab::director::embedded::IfaceFacts;
    use lvslab::director::EmbeddedEngine;
    let facts = |name: &str| {
        let i = host
            .iface(name)
            .unwrap_or_else(|| panic!("director has no interface {name}"));
        IfaceFacts {
            name: i.name.clone(),
            index: i.index,
            mac: i.mac,
            addrs: i.addrs.clone(),
        }
    };
    let client = facts(&cfg.client_iface);
    let server = (cfg.server_iface != cfg.client_iface).then(|| facts(&cfg.server_iface));
    let (tx, rx) = std::sync::mpsc::channel();
    let engine = EmbeddedEngine::start_with(cfg, client, server, |name, body| {
        host.spawn_thread(&name, move || {
            let _ = tx.send(own_cpu_clock());
            body()
        })
    })
    .expect("engine starts");
    let clock = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("engine thread reports its clock");
    (engine, clock)
}

struct ModeResult {
    mode: &'static str,
    concurrency: u32,
    /// Who fired the direct requests: the client where it can reach rs1, else a peer server.
    direct_from: String,
    direct: Sample,
    via: Sample,
    /// A peer real server firing at rs1, when `direct` came from the client (calibration).
    peer: Option<Sample>,
    /// Frames the engine sent on (both directions) during the via-director rounds.
    frames_forwarded: u64,
    frames_seen: u64,
    engine_cpu: Duration,
    /// Share of the engine thread's CPU spent in the kernel (from clock ticks).
    engine_sys_share: f64,
    load: String,
}

/// One lab per mode; every concurrency level measured in it.
async fn bench_mode(mode: &'static str, file: &str) -> Vec<ModeResult> {
    use lvslab::director::Engine;
    use lvslab::lab::{Lab, LabOptions};
    use lvslab::run::{self, Held};
    use std::net::SocketAddr;

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(file);
    let scenario = lvslab::scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lab = Lab::build(&run::lab_plan(&scenario), LabOptions::default())
        .await
        .expect("lab builds");
    // Servers (and TUN decapsulators) through Held; the engine started here to read its stats.
    let mut servers_only = scenario.clone();
    servers_only.directors.clear();
    let held = Held::start(&servers_only, &lab).await.expect("servers start");
    let director = scenario.director().expect("scenario has a director");
    let config = run::director_config(&scenario, director).expect("director config");
    let (engine, engine_clock) = start_engine(lab.host(&director.name).expect("director host"), config);

    let client_name = &scenario.traffic.clients.first().expect("a client").name;
    let client = lab.host(client_name).expect("client host");
    let [rs1, peer_rs, ..] = scenario.real_servers.as_slice() else {
        panic!("{file}: needs two real servers")
    };
    let peer = lab.host(&peer_rs.name).expect("peer host");
    let rs1_addr = SocketAddr::from((rs1.address, rs1.port));
    let vip = SocketAddr::from((scenario.service().vip, scenario.service().port));
    let client_reaches_rs1 = scenario
        .host(client_name)
        .is_some_and(|h| h.interfaces.iter().any(|i| i.address.contains(&rs1.address)));
    let direct_host = if client_reaches_rs1 { client } else { peer };

    let direct_from = format!("{}→{}", direct_host.name(), rs1.name);
    let mut results = Vec::new();
    for concurrency in HTTP_CONCURRENCY {
        fire_at(direct_host, rs1_addr, HTTP_WARMUP, concurrency).await;
        fire_at(client, vip, HTTP_WARMUP, concurrency).await;
        if client_reaches_rs1 {
            fire_at(peer, rs1_addr, HTTP_WARMUP, concurrency).await;
        }
        let per_round = HTTP_REQUESTS / HTTP_ROUNDS;
        let (mut direct, mut via, mut peer_sample) = (Sample::default(), Sample::default(), Sample::default());
        let (mut frames_forwarded, mut frames_seen, mut engine_cpu) = (0, 0, Duration::ZERO);
        let (mut user_ticks, mut sys_ticks) = (0, 0);
        for _ in 0..HTTP_ROUNDS {
            direct.add(fire_at(direct_host, rs1_addr, per_round, concurrency).await);
            let (stats0, cpu0, ticks0) = (engine.stats(), cpu_time(engine_clock), user_sys_ticks(engine_clock.tid));
            via.add(fire_at(client, vip, per_round, concurrency).await);
            let (stats1, cpu1, ticks1) = (engine.stats(), cpu_time(engine_clock), user_sys_ticks(engine_clock.tid));
            user_ticks += ticks1.0 - ticks0.0;
            sys_ticks += ticks1.1 - ticks0.1;
            frames_forwarded +=
                (stats1.forwarded_in + stats1.forwarded_out) - (stats0.forwarded_in + stats0.forwarded_out);
            frames_seen += stats1.frames_seen - stats0.frames_seen;
            engine_cpu += cpu1 - cpu0;
            if client_reaches_rs1 {
                peer_sample.add(fire_at(peer, rs1_addr, per_round, concurrency).await);
            }
        }
        results.push(ModeResult {
            mode,
            concurrency,
            direct_from: direct_from.clone(),
            direct,
            via,
            peer: client_reaches_rs1.then_some(peer_sample),
            frames_forwarded,
            frames_seen,
            engine_cpu,
            engine_sys_share: sys_ticks as f64 / (user_ticks + sys_ticks).max(1) as f64,
            load: loadavg(),
        });
    }
    let stats = engine.stats();
    assert_eq!(
        stats.dropped_total(),
        0,
        "{mode}: engine dropped frames: {:?}",
        stats.dropped
    );
    Box::new(engine).shutdown().expect("engine stops");
    held.stop().await;
    lab.teardown().await.expect("lab tears down");
    results
}

fn report_http() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "\n## HTTP, new connection per request: {HTTP_REQUESTS} requests per target and concurrency ({HTTP_ROUNDS} alternating rounds, after {HTTP_WARMUP} warm-up)"
    );
    let results: Vec<ModeResult> = MODE_SCENARIOS
        .iter()
        .flat_map(|(mode, file)| rt.block_on(bench_mode(mode, file)))
        .collect();
    println!("| mode | conc | direct path | direct req/s | via director req/s | ratio | p50 / p99 direct ms | p50 / p99 via ms | peer rs→rs1 req/s | load |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let ratio = r.via.rate() / r.direct.rate();
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.0}% {} | {:.2} / {:.2} | {:.2} / {:.2} | {} | {} |",
            r.mode,
            r.concurrency,
            r.direct_from,
            r.direct.rate(),
            r.via.rate(),
            100.0 * ratio,
            if ratio >= RATIO_TARGET { "(met)" } else { "(MISSED)" },
            r.direct.quantile_ms(0.5),
            r.direct.quantile_ms(0.99),
            r.via.quantile_ms(0.5),
            r.via.quantile_ms(0.99),
            r.peer.as_ref().map_or("—".to_owned(), |p| format!("{:.0}", p.rate())),
            r.load,
        );
    }
    println!(
        "\n## Engine during the via-director rounds (frames carried; capacity = frames per engine-thread CPU second)"
    );
    println!("| mode | conc | frames seen | frames forwarded | forwarded/s | engine CPU | of it in kernel | CPU µs/frame | capacity frames/s |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let cpu = r.engine_cpu.as_secs_f64();
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.0} ms ({:.0}% of wall) | {:.0}% | {:.2} | {:.0} |",
            r.mode,
            r.concurrency,
            r.frames_seen,
            r.frames_forwarded,
            r.frames_forwarded as f64 / r.via.elapsed.as_secs_f64(),
            cpu * 1e3,
            100.0 * cpu / r.via.elapsed.as_secs_f64(),
            100.0 * r.engine_sys_share,
            1e6 * cpu / r.frames_seen.max(1) as f64,
            r.frames_seen as f64 / cpu.max(f64::EPSILON),
        );
    }
}

fn report_rewrite_path() {
    println!(
        "\n## Rewrite path on synthetic frames, one core (load {}): Mframes/s",
        loadavg()
    );
    println!("| payload | DR | DR + csum | NAT incremental | NAT + csum | TUN + csum |");
    println!("|---|---|---|---|---|---|");
    for payload in [0usize, 512, 1400] {
        let template = request(payload);
        let dr_complete = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Complete, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok()
        });
        let dr_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Partial, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok()
        });
        let rw = Rewrite {
            saddr: CLIENT,
            sport: 40000,
            daddr: RIP,
            dport: 8080,
        };
        let nat_incremental = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Complete, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok()
        });
        let nat_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Partial, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok()
        });
        let t = Tunnel {
            outer_src: Ipv4Addr::new(10, 0, 0, 1),
            outer_dst: RIP,
            ip_id: 1,
            our_mac: Mac(DIRECTOR_MAC),
            next_hop_mac: Mac(RS_MAC),
        };
        let tun = measure(&template, |b| {
            let mut ip = parsed(b);
            match forward::encapsulate_ipip(b, &mut ip, Csum::Partial, t) {
                Ok(out) => {
                    black_box(out);
                    true
                }
                Err(_) => false,
            }
        });
        println!(
            "| {payload} B | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            dr_complete / 1e6,
            dr_partial / 1e6,
            nat_incremental / 1e6,
            nat_partial / 1e6,
            tun / 1e6
        );
    }
}

fn main() {
    if let Ok(mode) = std::env::var(TABLE_CHILD_ENV) {
        table_child(&mode);
        return;
    }
    report_table_memory();
    report_rewrite_path();
    if nix::unistd::geteuid().is_root() {
        report_http();
    } else {
        println!("\nHTTP through the mode labs: skipped (needs root for namespaces)");
    }
}
