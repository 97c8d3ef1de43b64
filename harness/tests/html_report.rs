//! `lvslab run --html`: the report of a shipped scenario, opened in headless Chromium.
//!
//! Chromium runs in a network namespace of its own with nothing but loopback (`unshare
//! --net`), so it can reach no network whatever it tries; the page's Content-Security-Policy
//! forbids any fetch, and a refused fetch is a console message. The page runs no script, so
//! every console line Chromium logs (`:CONSOLE`) is one the browser raised about the page:
//! the test wants none. No DevTools protocol is needed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::root;

/// Chromium gets this long per invocation; then its process group is killed.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(90);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|dir| Path::new(dir).join(name))
                .find(|p| p.is_file())
        })
}

/// Runs `command` in its own process group; kills the group if it outlives `deadline`.
fn run_with_deadline(mut command: Command, deadline: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("chromium starts");
    // Drained on threads so that a full pipe cannot stall it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let stderr = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on chromium") {
            break status;
        }
        if started.elapsed() > deadline {
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("chromium did not finish within {deadline:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Headless Chromium on `page`, offline, with background networking off; `extra` says what to produce.
fn headless(browser: &Path, page: &Path, profile: &Path, extra: &[&str]) -> Output {
    let mut command = Command::new("unshare");
    command
        .arg("--net")
        .arg("--")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--no-first-run",
            "--no-pings",
            "--dns-prefetch-disable",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
    run_with_deadline(command, CHROMIUM_DEADLINE)
}

#[test]
fn a_two_scenario_report_renders_in_chromium_with_its_sections_and_no_console_messages() {
    if !root() {
        return;
    }
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (ci/install.sh installs it)"
        );
        eprintln!("skipped: no chromium (apt-get install chromium)");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    let run = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .arg("run")
        .arg("--html")
        .arg(&page)
        .arg(repo("scenarios/why-arp-flux.toml"))
        .arg(repo("scenarios/dr-server-dies.toml"))
        .output()
        .expect("lvslab runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    let html = std::fs::read_to_string(&page).expect("the report was written");

    // Self-contained: nothing to fetch, no script.
    assert!(html.contains("Content-Security-Policy"), "no policy");
    // (The SVG namespace `http://www.w3.org/2000/svg` is a name, never fetched.)
    for needle in ["<script", " src=", "<link", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "the report holds {needle:?}");
    }

    let dom = headless(&browser, &page, &dir.join("profile"), &["--dump-dom"]);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    // Two scenarios, one file: a section each, the second with its timeline of faults.
    for id in [
        "contents",
        "s2-topology",
        "s2-timeline",
        "s2-checks",
        "s1-topology",
        "s1-spread",
        "s1-checks",
        "s1-diagnosis",
        "s1-ipvsadm",
        "cause-arp-flux",
    ] {
        assert!(
            dom_text.contains(&format!("id=\"{id}\"")),
            "no element {id} in the rendered page"
        );
    }
    // The client's frames went to rs2's MAC: the evidence names it.
    assert!(
        dom_text.contains("[rs2 eth0]</code>"),
        "rs2's MAC is not named in the diagnosis"
    );
    assert!(dom_text.contains("<svg"), "no SVG in the rendered page");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");

    let screenshot = dir.join("report.png");
    let shot = headless(
        &browser,
        &page,
        &dir.join("profile"),
        &[&format!("--screenshot={}", screenshot.display())],
    );
    let log = String::from_utf8_lossy(&shot.stderr);
    assert!(shot.status.success(), "chromium failed: {log}");
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // A blank 1280×2400 page compresses to a few kB; the report's drawing makes it far larger.
    assert!(png.len() > 30_000, "screenshot is only {} bytes", png.len());
    assert!(!log.contains(":CONSOLE"), "console messages: {log}");
    eprintln!("screenshot: {}", screenshot.display());
}

/// `diagnose --html` writes the diagnosis with its evidence; exit 1 as without it (causes found).
#[test]
fn diagnose_writes_its_findings_as_html() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("why.html");
    let out = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .arg("diagnose")
        .arg("--html")
        .arg(&page)
        .arg(repo("scenarios/why-arp-flux.toml"))
        .output()
        .expect("lvslab runs");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).expect("the report was written");
    assert!(html.contains("<title>lvslab diagnose: why-arp-flux</title>"), "{html}");
    assert!(html.contains("id=\"cause-arp-flux\""), "{html}");
    assert!(html.contains("[rs2 eth0]</code>"), "{html}");
}

/// The newcomer's command: with --capture the report shows each hop, and the client's frames
/// going to a real server's MAC.
#[test]
fn run_with_capture_puts_the_request_paths_in_the_report() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let caps = dir.path().join("caps");
    let out = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .args(["run", "--html"])
        .arg(&page)
        .arg("--capture")
        .arg(&caps)
        .arg(repo("scenarios/why-arp-flux.toml"))
        .output()
        .expect("lvslab runs");
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("the report was written");
    assert!(html.contains("id=\"s1-paths\""), "no request paths section");
    // ARP flux: some of the client's frames go straight to a real server's MAC.
    assert!(
        html.contains("dst MAC is rs"),
        "no frame to a real server's MAC is shown"
    );
    assert!(caps.join("why-arp-flux").read_dir().unwrap().any(|e| e
        .unwrap()
        .path()
        .extension()
        .is_some_and(|x| x == "pcapng")));
}

/// `graph --format`: each format from the binary, bad input refused with exit 2.
#[test]
fn graph_prints_mermaid_dot_and_svg() {
    let graph = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_lvslab"))
            .args(["graph", "--format", format])
            .arg(repo("scenarios/nat-rr.toml"))
            .output()
            .expect("lvslab runs")
    };
    let text = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let mermaid = graph("mermaid");
    assert!(text(&mermaid).starts_with("flowchart LR\n"));
    let dot = graph("dot");
    assert!(text(&dot).starts_with("graph \"nat-rr\" {"), "{}", text(&dot));
    let svg = graph("svg");
    assert!(svg.status.success());
    roxmltree::Document::parse(&text(&svg)).expect("well-formed SVG");
    let bad = graph("png");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("mermaid, dot, svg"));
}

/// `--html` into a missing directory is refused before any lab is built.
#[test]
fn html_into_a_missing_directory_is_refused_up_front() {
    let out = Command::new(env!("CARGO_BIN_EXE_lvslab"))
        .args(["run", "--html", "/nonexistent-lvslab-dir/report.html"])
        .arg(repo("scenarios/dr-rr.toml"))
        .output()
        .expect("lvslab runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lvslab run: --html /nonexistent-lvslab-dir/report.html: no directory /nonexistent-lvslab-dir"),
        "{stderr}"
    );
}
