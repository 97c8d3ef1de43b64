//! `lvslab ipvsadm` on a kept lab: the listing an operator reads, a server drained with `-e -w 0`
//! and seen to get nothing, `-d` and `-a` round trips, ipvsadm's refusals, and nothing left after
//! `lvslab down`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::root;

fn lvslab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lvslab"))
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn ipvsadm(lab: &str, args: &str) -> Output {
    lvslab()
        .args(["ipvsadm", lab])
        .args(args.split_whitespace())
        .output()
        .expect("runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The backends `n` fresh connections from the client reached, in order.
fn fire(lab: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = lvslab()
                .args([
                    "exec",
                    lab,
                    "client",
                    "--",
                    "curl",
                    "-s",
                    "-m",
                    "5",
                    "http://192.0.2.100/",
                ])
                .output()
                .expect("curl runs");
            assert!(out.status.success(), "curl: {}", stderr(&out));
            let body = stdout(&out);
            let at = body.find(r#""backend":""#).expect("backend in the body") + 11;
            body[at..].split('"').next().unwrap_or_default().to_string()
        })
        .collect()
}

/// The address a host has on eth0, as `ip` prints it.
fn address_of(lab: &str, host: &str) -> String {
    let out = lvslab()
        .args(["exec", lab, host, "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .output()
        .expect("ip runs");
    let text = stdout(&out);
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .expect("an inet address");
    cidr.split('/').next().unwrap_or_default().to_string()
}

/// `lvslab up` of dr-rr as `name`: the guard that takes it down, its state file, its run directory.
fn up_dr_rr(name: &str) -> (Kept, serde_json::Value, PathBuf) {
    let up = lvslab()
        .args(["up", "--name", name])
        .arg(repo("scenarios/dr-rr.toml"))
        // The holder keeps stderr: a pipe of ours would never close while it runs.
        .stderr(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(up.status.code(), Some(0), "{}", stdout(&up));
    let kept = Kept(name.to_owned());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("/run/lvslab/{name}.json")).unwrap()).unwrap();
    let run_dir = Path::new("/run/lvslab/runs").join(state["run_id"].as_str().unwrap());
    (kept, state, run_dir)
}

/// Takes the lab down even when an assertion fails halfway.
struct Kept(String);

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = lvslab()
            .args(["down", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_drained_server_gets_nothing_and_delete_and_add_round_trip() {
    if !root() {
        return;
    }
    let name = format!("ipvsadm{}", std::process::id());
    let (kept, _state, run_dir) = up_dr_rr(&name);
    let socket = run_dir.join("ipvsadm.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);

    let rs1 = address_of(&name, "rs1");
    let list = ipvsadm(&name, "-Ln");
    assert_eq!(list.status.code(), Some(0), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(
        text.starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"),
        "{text}"
    );
    assert!(text.contains("TCP  192.0.2.100:80 rr\n"), "{text}");
    let rs1_row = format!("  -> {:<28} Route   1      ", format!("{rs1}:80"));
    assert!(text.contains(&rs1_row), "{text}");

    // Drain rs1, the way an operator does before maintenance.
    let drain = ipvsadm(&name, &format!("-e -t 192.0.2.100:80 -r {rs1}:80 -w 0"));
    assert_eq!(drain.status.code(), Some(0), "{}", stderr(&drain));
    assert_eq!(stdout(&drain), "");
    let save = stdout(&ipvsadm(&name, "-S -n"));
    assert!(
        save.contains(&format!("-a -t 192.0.2.100:80 -r {rs1}:80 -g -w 0\n")),
        "{save}"
    );
    let backends = fire(&name, 12);
    assert!(
        !backends.iter().any(|b| b == "rs1"),
        "rs1 drained yet served: {backends:?}"
    );
    assert!(
        backends.iter().any(|b| b == "rs2") && backends.iter().any(|b| b == "rs3"),
        "{backends:?}"
    );
    let stats = stdout(&ipvsadm(&name, "-L -n --stats -t 192.0.2.100:80"));
    assert!(
        stats.starts_with("Prot LocalAddress:Port               Conns"),
        "{stats}"
    );
    let conns = stdout(&ipvsadm(&name, "-Lnc"));
    assert!(conns.starts_with("IPVS connection entries\n"), "{conns}");
    assert!(!conns.contains(&format!("{rs1}:80")), "{conns}");

    // -d, then -a: gone from the table, then back and serving again.
    let del = ipvsadm(&name, &format!("-d -t 192.0.2.100:80 -r {rs1}:80"));
    assert_eq!(del.status.code(), Some(0), "{}", stderr(&del));
    assert!(!stdout(&ipvsadm(&name, "-Ln")).contains(&format!("{rs1}:80")));
    let again = ipvsadm(&name, &format!("-d -t 192.0.2.100:80 -r {rs1}:80"));
    assert_eq!(
        (again.status.code(), stderr(&again)),
        (Some(255), "No such destination\n".to_string())
    );
    let edit_gone = ipvsadm(&name, &format!("-e -t 192.0.2.100:80 -r {rs1}:80 -w 1"));
    assert_eq!(stderr(&edit_gone), "No such destination\n");
    let add = ipvsadm(&name, &format!("-a -t 192.0.2.100:80 -r {rs1}:80 -w 1"));
    assert_eq!(add.status.code(), Some(0), "{}", stderr(&add));
    assert!(stdout(&ipvsadm(&name, "-Ln")).contains(&rs1_row));
    let twice = ipvsadm(&name, &format!("-a -t 192.0.2.100:80 -r {rs1}:80"));
    assert_eq!(
        (twice.status.code(), stderr(&twice)),
        (Some(255), "Destination already exists\n".to_string())
    );
    let no_service = ipvsadm(&name, &format!("-a -t 192.0.2.100:81 -r {rs1}:81"));
    assert_eq!(stderr(&no_service), "Service not defined\n");
    let no_list = ipvsadm(&name, "-Ln -t 192.0.2.100:81");
    assert_eq!(
        (no_list.status.code(), stderr(&no_list)),
        (Some(1), "No such service\n".to_string())
    );
    assert!(fire(&name, 6).iter().any(|b| b == "rs1"), "rs1 is back in the rotation");

    // Bad arguments: ipvsadm's words, exit 2, nothing asked of the lab.
    let bad = ipvsadm(&name, "-e -t 192.0.2.100:80 -w 0");
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad),
        "You need to supply the 'real-server' option for the 'edit-server' command\n"
    );
    let wrong = lvslab()
        .args(["ipvsadm", &name, "--director", "nope", "-Ln"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("has no director nope (directors: director)"),
        "{}",
        stderr(&wrong)
    );

    drop(kept);
    assert!(
        !Path::new(&format!("/run/lvslab/{name}.json")).exists(),
        "state file left"
    );
    assert!(!run_dir.exists(), "run directory (and its socket) left");
    let gone = ipvsadm(&name, "-Ln");
    assert_eq!(gone.status.code(), Some(2));
    assert!(stderr(&gone).contains("no kept lab named"), "{}", stderr(&gone));
}

#[test]
fn a_killed_owner_is_a_clear_error_and_clean_removes_its_socket() {
    if !root() {
        return;
    }
    let name = format!("ipvsadmkill{}", std::process::id());
    let (_kept, state, run_dir) = up_dr_rr(&name);
    let pid = state["pid"].as_i64().unwrap() as i32;
    assert!(run_dir.join("ipvsadm.sock").exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    // Until the kernel has ended it the owner may still look alive; then the error is at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let started = std::time::Instant::now();
        let out = ipvsadm(&name, "-Ln");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(7),
            "a dead owner must not hang the asker"
        );
        if stderr(&out).contains("is gone") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "the owner of lab {name} (pid {pid}) is gone; run `lvslab clean`"
        )),
        "{}",
        stderr(&out)
    );
    let clean = lvslab().arg("clean").output().unwrap();
    assert!(clean.status.success(), "{}", stderr(&clean));
    assert!(!run_dir.exists(), "the control socket and its run directory are gone");
    assert!(!Path::new(&format!("/run/lvslab/{name}.json")).exists());
}
