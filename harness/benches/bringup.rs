//! Bring-up and teardown of the reference topology (switch, client, director, rs1..rs3:
//! 6 namespaces, 1 bridge, 5 veth pairs, addresses, VIP on the real servers' lo), by lvslab
//! and by ci/ip-script.sh (one `ip` command per step), with the ratio.
//!
//! `cargo bench --bench bringup [-- ITERATIONS]` as root.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lvslab::lab::{HostPlan, IfacePlan, Lab, LabOptions, LabPlan};

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
    // cargo bench passes "--bench"; the only argument of ours is an iteration count.
    let iterations: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(60);
    if !nix::unistd::geteuid().is_root() {
        println!("bringup bench skipped: needs root to create namespaces");
        return;
    }
    let plan = reference_plan();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Back to back, the kernel's deferred freeing of the previous lab's namespaces (cleanup_net,
    // RCU grace periods) lands in the next bring-up; with a pause it does not.
    let busy = measure_lab(&rt, &plan, iterations, Duration::ZERO);
    let settled = measure_lab(&rt, &plan, (iterations / 2).max(10), SETTLE);

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
