//! The cost of `--capture` on scenarios/dr-rr.toml: whole runs (bring-up, servers, engine,
//! 60 requests, teardown) without and with captures, alternating so that both meet the same
//! load, and the median wall times' ratio (target: under 10% extra).
//!
//! `cargo bench -p lvslab --bench capture [-- ROUNDS]` as root.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use lvslab::run::{self, RunOptions};

const WARMUP: usize = 3;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(30);
    if !nix::unistd::geteuid().is_root() {
        println!("capture bench skipped: needs root to create namespaces");
        return;
    }
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dr-rr.toml");
    let scenario = lvslab::scenario::load(&file).unwrap_or_else(|r| panic!("{}", r.render("dr-rr.toml")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions::default();
    let mut plain = Vec::new();
    let mut captured = Vec::new();
    let (mut frames, mut files) = (0, 0);
    // (traffic, teardown) of each run, to tell where the extra time goes.
    let mut phases: [Vec<Duration>; 4] = Default::default();
    // The capture's own start, stop and report.
    let mut capture_phases: [Vec<Duration>; 3] = Default::default();
    let once = |capture: Option<&std::path::Path>| {
        let t = Instant::now();
        let outcome = rt
            .block_on(run::run_capturing(&scenario, &opts, capture))
            .expect("dr-rr runs");
        assert!(outcome.verdict.passed, "dr-rr passes");
        (t.elapsed(), outcome)
    };
    for i in 0..rounds + WARMUP {
        let (without, plain_outcome) = once(None);
        let (with, outcome) = once(Some(dir.path()));
        if i >= WARMUP {
            let d = |ms: f64| Duration::from_secs_f64(ms / 1e3);
            phases[0].push(d(plain_outcome.timings.traffic_ms));
            phases[1].push(d(outcome.timings.traffic_ms));
            phases[2].push(d(plain_outcome.timings.teardown_ms));
            phases[3].push(d(outcome.timings.teardown_ms));
            let c = outcome.timings.capture.clone().expect("capture timed");
            capture_phases[0].push(d(c.start_ms));
            capture_phases[1].push(d(c.stop_ms));
            capture_phases[2].push(d(c.report_ms));
            plain.push(without);
            captured.push(with);
            let report = outcome.capture.expect("captures reported");
            frames = report.summary.files.iter().map(|f| f.frames).sum::<u64>();
            files = report.summary.files.len();
        }
    }
    let [t0, t1, d0, d1] = phases.map(median);
    let [cs, cp, cr] = capture_phases.map(median);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let (p, c) = (median(plain), median(captured));
    println!("| run of dr-rr | median wall time | |");
    println!("|---|---|---|");
    println!(
        "| without --capture | {:.1} ms | traffic {:.1} ms, teardown {:.1} ms |",
        ms(p),
        ms(t0),
        ms(d0)
    );
    println!(
        "| with --capture | {:.1} ms | traffic {:.1} ms, teardown {:.1} ms; capture start {:.1} ms, stop {:.1} ms, report {:.1} ms; {frames} frames in {files} files |",
        ms(c),
        ms(t1),
        ms(d1),
        ms(cs),
        ms(cp),
        ms(cr)
    );
    println!(
        "| extra | {:+.1}% | target under 10%; {rounds} rounds, load {} |",
        (ms(c) / ms(p) - 1.0) * 100.0,
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}
