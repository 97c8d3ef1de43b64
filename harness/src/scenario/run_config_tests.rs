//! What `check` accepts gets through `run`'s configuration: the lab plan validates, every
//! director's engine configuration builds (and the kernel engine would take it), the engine's
//! settings are the scenario's, every host sysctl is one `check` vouches for, and the request
//! path is one the client can send. Each file in scenarios/ and fixtures/ that checks clean
//! is put through it, and files that would fail it are shown to fail `check` first.

use std::path::{Path, PathBuf};

use super::*;
use crate::director::{embedded, kernel};
use crate::run;

/// `run`'s configuration steps, without the kernel: everything that can fail before traffic.
fn configure(s: &Scenario) -> Result<(), String> {
    run::lab_plan(s).validate().map_err(|e| format!("lab plan: {e}"))?;
    for d in &s.directors {
        let cfg = run::director_config(s, d).map_err(|e| format!("director {}: {e}", d.name))?;
        if cfg.sysctls != d.engine_sysctls {
            return Err(format!(
                "director {}: engine settings differ from the scenario's",
                d.name
            ));
        }
        embedded::build_ipvs(&cfg).map_err(|e| format!("director {}: embedded engine: {e}", d.name))?;
        let kernel_may_run = match s.engine {
            EngineChoice::Kernel => true,
            EngineChoice::Auto => {
                s.service().mode == Mode::Tun
                    || (s.service().mode != Mode::FullNat && s.directors.iter().all(|d| d.complete_checksums))
            }
            EngineChoice::Embedded => false,
        };
        if kernel_may_run {
            kernel::check_supported(&cfg).map_err(|e| format!("director {}: kernel engine: {e}", d.name))?;
        }
        for (name, _) in kernel::setup::plan(&cfg).sysctls {
            let leaf = name.strip_prefix("net.ipv4.vs.");
            if leaf.is_some_and(|l| sysctl::known_engine_leaf(l).is_none()) {
                return Err(format!("kernel engine writes {name}, which check does not know"));
            }
        }
    }
    for h in s.hosts() {
        for (name, value) in &h.sysctls {
            sysctl::vouch(h, name, value).map_err(|e| format!("host {}: {e}", h.name))?;
        }
    }
    hyper::Request::get(s.traffic.path.to_string())
        .body(())
        .map_err(|e| format!("request path {}: {e}", s.traffic.path))?;
    Ok(())
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_that_checks_clean_gets_through_runs_configuration() {
    let mut failures = Vec::new();
    for dir in ["scenarios", "fixtures/conform", "fixtures/check"] {
        for file in toml_files(dir) {
            match load(&file) {
                Ok(s) => {
                    if let Err(e) = configure(&s) {
                        failures.push(format!("{}: {e}", file.display()));
                    }
                }
                // Shipped scenarios and conform fixtures must check clean; check fixtures must not.
                Err(report) if dir != "fixtures/check" => {
                    failures.push(report.render(&file.display().to_string()));
                }
                Err(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(toml_files("scenarios").len() >= 30, "expected the shipped scenarios");
}

/// Each of these would fail `run`'s configuration or its lab; `check` must say so first.
#[test]
fn what_run_would_reject_check_rejects() {
    let rs = "[[real_server]]\nname = \"rs1\"\n";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("name = \"my lab\"\n{rs}"),
            "`name` = \"my lab\" cannot name a lab",
        ),
        (
            format!("[[network]]\nname = \"front/back\"\nsubnet = \"10.0.0.0/24\"\n{rs}"),
            "network name \"front/back\" is not usable",
        ),
        (
            format!("[[client]]\nname = \"switch\"\n{rs}"),
            "host name \"switch\" is reserved",
        ),
        (
            format!("engine = \"kernel\"\n[service]\nmode = \"fullnat\"\n{rs}"),
            "engine = \"kernel\" cannot run mode \"fullnat\"",
        ),
        (
            format!("{rs}[traffic]\npath = \"/a b\"\n"),
            "`path` = \"/a b\" is not an HTTP request path",
        ),
        (
            format!("[director]\nsysctl = {{ \"kernel.panic\" = 1 }}\n{rs}"),
            "is not a network sysctl",
        ),
        (
            format!("[director]\nsysctl = {{ \"net.ipv4.vs.conn_reuse_mode\" = \"maybe\" }}\n{rs}"),
            "is not a number",
        ),
        (
            format!("{rs}sysctl = {{ \"net.ipv4.conf.eth1.arp_ignore\" = 1 }}\n"),
            "has no interface `eth1`",
        ),
    ];
    for (text, expected) in cases {
        match parse(&text, "t.toml") {
            Ok(s) => panic!("check accepted:\n{text}\n(run configuration says {:?})", configure(&s)),
            Err(report) => {
                let rendered = report.render("t.toml");
                assert!(rendered.contains(expected), "{expected:?} not in:\n{rendered}");
            }
        }
    }
    // The file stem names the scenario when `name` is absent.
    let report = parse(rs, "scenarios/my lab.toml").unwrap_err().render("my lab.toml");
    assert!(
        report.contains("the scenario is named \"my lab\" after its file, which cannot name a lab"),
        "{report}"
    );
}
