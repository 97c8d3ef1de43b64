//! `run --junit` and `run --html` keep what finished when a later scenario is interrupted by
//! Ctrl-C or errors.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::root;

fn lvslab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvslab"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// dr-rr, renamed, with its traffic spread over a minute: long enough to be interrupted.
fn slow_scenario(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo("scenarios/dr-rr.toml")).unwrap();
    let text = text.replace("[traffic]\nrequests = 60", "[traffic]\nrate = 2.0\nduration_ms = 60000");
    assert!(
        text.contains("duration_ms"),
        "dr-rr's traffic table changed: adapt this test"
    );
    let path = dir.join("slow-rr.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Kills the run if an assertion fails before it ended.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_writes_the_junit_of_what_finished_and_marks_the_interrupted_run() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_scenario(dir.path());
    let junit = dir.path().join("junit.xml");
    let html = dir.path().join("report.html");
    let mut run = Reaped(
        lvslab()
            .args(["run", "--junit"])
            .arg(&junit)
            .arg("--html")
            .arg(&html)
            .arg(repo("scenarios/dr-rr.toml"))
            .arg(&slow)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts"),
    );
    let run = &mut run.0;
    // The first scenario's report is on stdout once it finished: the slow one runs next.
    let stdout = run.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        lines.any(|l| l.map(|l| l.contains("PASS") || l.contains("pass")).unwrap_or(false)),
        "the first scenario never reported"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop within 20 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains(r#"tests="2""#) && xml.contains(r#"errors="1""#), "{xml}");
    assert!(xml.contains(r#"name="dr-rr""#), "{xml}");
    assert!(xml.contains("slow-rr: interrupted (Ctrl-C)"), "{xml}");
    let report = std::fs::read_to_string(&html).expect("html written for the finished run");
    assert!(report.contains("dr-rr") && !report.contains("slow-rr"));
}

#[test]
fn html_keeps_the_earlier_scenarios_when_a_later_one_errors() {
    if !root() || lvslab::director::kernel_has_ipvs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Asks for the kernel engine, which this kernel lacks: the run errors at setup.
    let text = std::fs::read_to_string(repo("scenarios/dr-rr.toml")).unwrap();
    let kernel = dir.path().join("kernel-rr.toml");
    std::fs::write(&kernel, format!("engine = \"kernel\"\n{text}")).unwrap();
    let html = dir.path().join("report.html");
    let out = lvslab()
        .args(["run", "--html"])
        .arg(&html)
        .arg(repo("scenarios/dr-rr.toml"))
        .arg(&kernel)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kernel-rr"));
    let report = std::fs::read_to_string(&html).expect("html of the scenario that finished");
    assert!(report.contains("dr-rr") && !report.contains("kernel-rr"));
}
