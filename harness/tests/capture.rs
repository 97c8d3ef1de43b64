//! `--capture`: lvslab's own pcapng files, read back by tshark (frame counts and interface
//! names), and the path of a request built from them in each mode the embedded engine runs.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::root;
use lvslab::run::{self, DiagnoseWhen, RunOptions, RunOutcome};
use lvslab::trace::{Direction, RequestPath};

fn scenario(name: &str) -> lvslab::scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
    lvslab::scenario::load(&path).unwrap_or_else(|r| panic!("{}", r.render(name)))
}

async fn captured_run(s: &lvslab::scenario::Scenario, dir: &Path) -> RunOutcome {
    let opts = RunOptions {
        diagnose: DiagnoseWhen::Never,
        ..RunOptions::default()
    };
    run::run_capturing(s, &opts, Some(dir)).await.expect("the run goes")
}

/// tshark's path, or None: skipped where it is not installed, but never in CI, which installs it.
fn tshark() -> Option<PathBuf> {
    let found = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("tshark"));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "tshark is missing in CI: ci/install.sh installs it (Debian package tshark)"
    );
    eprintln!("SKIPPED: the tshark check (tshark is not installed; apt-get install tshark)");
    None
}

/// The request's first packet's hops: (place, direction, what that hop rewrote).
fn hops(path: &RequestPath) -> Vec<(String, Option<Direction>, Vec<String>)> {
    path.legs[0]
        .hops
        .iter()
        .map(|h| (h.place.clone(), h.direction, h.changed.clone()))
        .collect()
}

/// The hop where the director sent the packet on, and what it rewrote there.
fn director_rewrite(path: &RequestPath) -> Vec<String> {
    path.legs[0]
        .hops
        .iter()
        .find(|h| h.place.starts_with("director ") && h.direction == Some(Direction::Out))
        .unwrap_or_else(|| panic!("the director sent the SYN on: {:?}", hops(path)))
        .changed
        .clone()
}

/// Common to every mode: the files are there and readable by tshark, request 1's SYN reached
/// the server that answered it and its answer came back to the client.
fn check_files_and_path(outcome: &RunOutcome) -> RequestPath {
    let report = outcome.capture.as_ref().expect("the outcome says what was captured");
    let dir = &report.summary.dir;
    assert!(
        report.summary.files.iter().any(|f| f.segment.is_some()),
        "a segment file"
    );
    for f in &report.summary.files {
        assert!(dir.join(&f.file).is_file(), "{} written", f.file);
        assert_eq!(f.dropped, 0, "{}: frames dropped", f.file);
    }
    let client = report
        .summary
        .files
        .iter()
        .find(|f| f.host == "client" && f.interface == "eth0")
        .expect("the client's eth0 captured");
    assert!(client.frames >= 3 * outcome.records.len() as u64, "{client:?}");
    if let Some(tshark) = tshark() {
        for f in &report.summary.files {
            let out = Command::new(&tshark)
                .arg("-r")
                .arg(dir.join(&f.file))
                .args(["-T", "fields", "-e", "frame.interface_name"])
                .output()
                .expect("tshark runs");
            assert!(
                out.status.success(),
                "tshark reads {}: {}",
                f.file,
                String::from_utf8_lossy(&out.stderr)
            );
            let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_owned)
                .collect();
            assert_eq!(
                names.len() as u64,
                f.frames,
                "{}: tshark's frames = lvslab's count",
                f.file
            );
            let want = format!("{}:{}", f.host, f.interface);
            assert!(names.iter().all(|n| *n == want), "{}: interface named {want}", f.file);
        }
    }
    let path = report.paths.first().expect("the report traces request 1").clone();
    assert_eq!(path.request, 1);
    let backend = outcome.records[0].backend.clone().expect("request 1 answered");
    let last = path.legs[0].hops.last().expect("hops");
    assert!(
        last.place.starts_with(&format!("{backend} ")),
        "the SYN ends at {backend}: {:?}",
        hops(&path)
    );
    assert_eq!(last.direction, Some(Direction::In));
    let back = path.legs.get(1).expect("a SYN-ACK came back");
    assert_eq!(back.packet, "SYN-ACK");
    let end = back.hops.last().unwrap();
    assert_eq!(
        (end.place.as_str(), end.direction),
        ("client eth0", Some(Direction::In))
    );
    // What `lvslab trace DIR --request 1` prints comes from the same files.
    assert_eq!(
        lvslab::trace::trace_dir(dir, 1).expect("trace reads the directory"),
        path
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_capture_shows_only_the_destination_mac_rewritten() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outcome = captured_run(&scenario("dr-rr"), dir.path()).await;
    let path = check_files_and_path(&outcome);
    assert_eq!(director_rewrite(&path), vec!["dst MAC"], "{:?}", hops(&path));
    let to = path.legs[0].hops.iter().find(|h| h.changed == ["dst MAC"]).unwrap();
    let backend = outcome.records[0].backend.clone().unwrap();
    assert_eq!(to.dst_mac_owner, Some(format!("{backend} eth0")));
    assert!(dir.path().join("dr-rr/segment-lan.pcapng").is_file());
    assert!(dir.path().join("dr-rr/director-eth0.pcapng").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_capture_shows_the_address_and_port_rewritten() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outcome = captured_run(&scenario("nat-rr"), dir.path()).await;
    let path = check_files_and_path(&outcome);
    let changed = director_rewrite(&path);
    for what in ["dst IP", "dst port"] {
        assert!(changed.contains(&what.to_owned()), "{changed:?}");
    }
    assert!(!changed.contains(&"src IP".to_owned()), "{changed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tun_capture_shows_the_outer_header() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outcome = captured_run(&scenario("tun-rr"), dir.path()).await;
    let path = check_files_and_path(&outcome);
    let changed = director_rewrite(&path);
    assert!(changed.contains(&"outer header added".to_owned()), "{changed:?}");
    assert!(
        !changed.contains(&"dst IP".to_owned()),
        "the inner header is the client's: {changed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fullnat_capture_shows_both_addresses_rewritten() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let outcome = captured_run(&scenario("fullnat-rr"), dir.path()).await;
    let path = check_files_and_path(&outcome);
    let changed = director_rewrite(&path);
    for what in ["src IP", "dst IP"] {
        assert!(changed.contains(&what.to_owned()), "{changed:?}");
    }
}

/// A refused request's SYN ends at the server that refused it, and a RST comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_shows_where_it_stopped() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dr-refuse.toml");
    std::fs::write(
        &file,
        "[service]\nvip = \"192.0.2.100\"\nmode = \"dr\"\nscheduler = \"rr\"\n\n[[real_server]]\nname = \"rs1\"\n\n[[real_server]]\nname = \"rs2\"\nstate = \"refuse\"\n\n[traffic]\nrequests = 4\n",
    )
    .unwrap();
    let s = lvslab::scenario::load(&file).unwrap_or_else(|r| panic!("{}", r.render("dr-refuse.toml")));
    let outcome = captured_run(&s, &dir.path().join("caps")).await;
    let report = outcome.capture.as_ref().unwrap();
    let failed = report
        .paths
        .iter()
        .find(|p| p.error.is_some())
        .expect("a failed request traced");
    let last = failed.legs[0].hops.last().unwrap();
    assert_eq!((last.place.as_str(), last.direction), ("rs2 eth0", Some(Direction::In)));
    assert_eq!(failed.legs.get(1).map(|l| l.packet.as_str()), Some("RST"));
    let stopped = failed.stopped.as_deref().unwrap();
    assert!(stopped.contains("last seen at rs2 eth0 (received)"), "{stopped}");
    let text = lvslab::report::human_report(&outcome, false);
    assert!(text.contains("stopped: "), "{text}");
}

fn lvslab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvslab"))
}

/// As a user types it: `run --capture`, then `trace` on the directory it names.
#[test]
fn run_capture_then_trace_on_the_command_line() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dr-rr.toml");
    let out = lvslab()
        .arg("run")
        .arg("--capture")
        .arg(dir.path())
        .arg(&scenario)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let caps = dir.path().join("dr-rr");
    assert!(stdout.contains(&format!("captures: {}", caps.display())), "{stdout}");
    assert!(stdout.contains("rewritten: dst MAC"), "{stdout}");
    let trace = |args: &[&str]| lvslab().arg("trace").arg(&caps).args(args).output().expect("runs");
    let out = trace(&["--request", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("request 2 (client, TCP): "), "{text}");
    assert!(text.contains("director eth0  out"), "{text}");
    let out = trace(&["--request", "2", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["request"], 2);
    assert_eq!(json["legs"][0]["packet"], "SYN");
    let out = trace(&["--request", "61"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no request 61: the run made requests 1 to 60"),
        "{stderr}"
    );
}

/// `up --capture` captures a kept lab's traffic until `down`; the files are readable while it runs.
#[test]
fn a_kept_lab_is_captured_until_down() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = "capture-kept";
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/dr-rr.toml");
    // The lab's holder keeps stderr: a pipe of ours would never close while it runs.
    let up = lvslab()
        .args(["up", "--name", name, "--capture"])
        .arg(dir.path())
        .arg(&scenario)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(up.status.code(), Some(0), "{}", String::from_utf8_lossy(&up.stdout));
    let client = dir.path().join(name).join("client-eth0.pcapng");
    let opened = lvslab_capture_frames(&client);
    let curl = lvslab()
        .args([
            "exec",
            name,
            "client",
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "http://192.0.2.100/",
        ])
        .output()
        .expect("runs");
    let down = lvslab().args(["down", name]).output().expect("runs");
    assert_eq!(down.status.code(), Some(0), "{}", String::from_utf8_lossy(&down.stderr));
    assert!(opened.is_some(), "a valid capture while the lab is up");
    assert_eq!(curl.status.code(), Some(0), "curl through the VIP");
    let index = lvslab::trace::CaptureIndex::read(&dir.path().join(name)).expect("index written at down");
    let client = index
        .capture
        .files
        .iter()
        .find(|f| f.file == "client-eth0.pcapng")
        .unwrap();
    assert!(client.frames >= 6, "the curl's connection: {client:?}");
    assert!(index.requests.is_empty());
    let e = lvslab::trace::trace_dir(&dir.path().join(name), 1).unwrap_err();
    assert!(e.contains("no lvslab requests"), "{e}");
}

/// Frames in a capture file as lvslab reads it (None when unreadable).
fn lvslab_capture_frames(path: &Path) -> Option<usize> {
    lvslab::capture::read_frames(path).ok().map(|(_, frames)| frames.len())
}
