//! The `lvslab` binary as a user meets it: exit codes, a kept lab's life cycle, Ctrl-C cleanup.

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

#[test]
fn check_exits_2_and_names_file_line_and_column() {
    let out = lvslab()
        .arg("check")
        .arg(repo("fixtures/check/many-problems.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("many-problems.toml:"), "{stderr}");
    assert!(
        stderr.lines().filter(|l| l.contains(": error: ")).count() > 5,
        "{stderr}"
    );
}

#[test]
fn check_accepts_a_shipped_scenario() {
    let out = lvslab()
        .arg("check")
        .arg(repo("scenarios/dr-rr.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A VRRP contradiction is a warning at its line with a hint: the file still checks (exit 0).
#[test]
fn check_warns_about_vrrp_contradictions_at_their_lines_and_accepts_the_file() {
    let out = lvslab()
        .current_dir(repo(""))
        .arg("check")
        .arg("fixtures/warnings/vrrp-contradictions.toml")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("vrrp-contradictions: ok"), "{stdout}");
    assert!(!stderr.contains(": error: "), "{stderr}");
    insta::assert_snapshot!("check-vrrp-contradictions", stderr);
}

/// Two keepalived.conf files of one pair: one scenario, and their contradictions as warnings
/// naming the file and line.
#[test]
fn import_of_a_pair_warns_about_its_contradictions_by_file_and_line() {
    let out = lvslab()
        .current_dir(repo(""))
        .arg("import")
        .arg("fixtures/import/keepalived-pair-a.conf")
        .arg("fixtures/import/keepalived-pair-b.conf")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# lvs2: vrrp_instance VI_1 of fixtures/import/keepalived-pair-b.conf"),
        "{stdout}"
    );
    insta::assert_snapshot!("import-pair-contradictions", stderr);
}

/// A keepalived.conf with a `virtual_server_group`: `lvslab import -o` writes a scenario that
/// `lvslab check` accepts, one service per group entry address.
#[test]
fn an_imported_virtual_server_group_checks() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let out_file = dir.path().join("group.toml");
    let out = lvslab()
        .arg("import")
        .arg(repo("fixtures/import/keepalived-group.conf"))
        .arg("-o")
        .arg(&out_file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: line 8: Virtual server group range"),
        "{stderr}"
    );
    let out = lvslab().arg("check").arg(&out_file).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("group: ok (dr mode, 2 real servers)"), "{stdout}");
    let toml = std::fs::read_to_string(&out_file).expect("written");
    assert_eq!(toml.matches("[[service]]").count(), 4, "{toml}");
}

/// `lvslab … | head -1`: the reader goes away after one line (3000 lines overflow the pipe
/// buffer, so a write meets the closed pipe); lvslab must end quietly.
#[test]
fn a_closed_output_pipe_ends_quietly() {
    let mut child = lvslab()
        .arg("check")
        .args(std::iter::repeat_n(repo("scenarios/dr-rr.toml"), 3_000))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("one line");
    assert!(first.starts_with("dr-rr: ok"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

#[test]
fn run_exits_1_when_an_expectation_fails_and_0_when_all_hold() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = dir.path().join("wrong.toml");
    // rr over two servers cannot give one backend only.
    std::fs::write(
        &wrong,
        "# wrong on purpose\n[service]\nmode = \"dr\"\nscheduler = \"rr\"\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n[traffic]\nrequests = 4\n[expect]\nanswering = 1\n",
    )
    .expect("write");
    let out = lvslab().arg("run").arg(&wrong).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL 1 distinct backend(s) answer — 2 answered: rs1, rs2"),
        "{stdout}"
    );

    let out = lvslab()
        .args(["run", "--json"])
        .arg(repo("scenarios/direct.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(json["scenario"], "direct");
    assert_eq!(json["tally"]["requests"], 100);
    assert_eq!(json["verdict"]["passed"], true);
}

fn kept_links(name: &str) -> Vec<String> {
    let prefix = format!("lvslab-{name}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_kept_lab_serves_exec_and_goes_away_on_ctrl_c() {
    if !root() {
        return;
    }
    let name = format!("clitest{}", std::process::id());
    let mut holder = lvslab()
        .args(["up", "--foreground", "--name", &name])
        .arg(repo("scenarios/dr-rr.toml"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = holder.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    // Readiness is the holder's own word, printed once servers and director run.
    assert!(
        lines.any(|l| l.map(|l| l == "ready").unwrap_or(false)),
        "holder never got ready"
    );
    assert_eq!(
        kept_links(&name).len(),
        6,
        "switch, client, director and three real servers"
    );

    // What a user does in a kept lab: curl the VIP from the client host, through the director.
    let out = lvslab()
        .args([
            "exec",
            &name,
            "client",
            "--",
            "curl",
            "-s",
            "-m",
            "5",
            "http://192.0.2.100/",
        ])
        .output()
        .expect("exec runs");
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        body.contains(r#""local":"192.0.2.100:80""#) && body.contains(r#""backend":"rs"#),
        "{body}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("signal");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = holder.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "holder did not stop within 10 s of Ctrl-C");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    assert!(kept_links(&name).is_empty(), "links left: {:?}", kept_links(&name));
    assert!(
        !Path::new(&format!("/run/lvslab/{name}.json")).exists(),
        "state file left"
    );
}

/// nft's complaint about a host's rules comes at the rule's line in the scenario file.
#[test]
fn check_reports_a_rule_nft_refuses_at_its_line() {
    let out = lvslab()
        .arg("check")
        .arg(repo("fixtures/nft/refused-rule.toml"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refused-rule.toml:12:45: error: nft rejects the nftables of host \"rs1\": syntax error"),
        "{stderr}"
    );
}
