//! `lvslab import keepalived.conf` then `lvslab run`: the imported checkers run in the lab as
//! the file says. The fixture's rs3 expects HTTP 201-204 from /health and the lab's servers
//! answer 200, so its HTTP_GET takes it out at its first check; the others pass and answer.
//! Needs root.

use std::path::Path;

mod common;

use common::root;
use lvslab::run::{self, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_keepalived_conf_runs_its_checkers() {
    if !root() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/import/keepalived-health.conf");
    let (toml, warnings) = lvslab::import::import_file(&path).expect("imports");
    let scenario = lvslab::scenario::parse(&toml, "imported.toml")
        .unwrap_or_else(|r| panic!("{}\n{toml}", r.render("imported.toml")));
    assert!(warnings.iter().all(|w| w.starts_with("line ")), "{warnings:?}");
    let opts = RunOptions {
        diagnose: run::DiagnoseWhen::Never,
        ..Default::default()
    };
    let outcome = run::run(&scenario, &opts).await.expect("the lab runs");
    let health = outcome.health.as_ref().expect("the imported checkers ran");
    let logged = |line: &str| health.log.iter().any(|l| l.line == line);
    for line in [
        "Remote Web server [192.0.2.11]:tcp:80 succeed on service.",
        "HTTP_CHECK on service [192.0.2.13]:tcp:80 failed after 1 retries.",
        "Removing service [192.0.2.13]:tcp:80 from VS [192.0.2.100]:tcp:80",
        "Misc check for [[192.0.2.14]:tcp:80 VS [192.0.2.100]:tcp:80] by [/bin/true] succeeded.",
    ] {
        assert!(logged(line), "missing {line:?} in {:#?}", health.log);
    }
    let count = |name: &str| outcome.tally.backends.get(name).copied().unwrap_or(0);
    assert_eq!(count("rs3"), 0, "{:?}", outcome.tally);
    assert_eq!(count("sorry"), 0, "quorum 2 holds with rs1, rs2 and rs4");
    for live in ["rs1", "rs2", "rs4"] {
        assert!(count(live) > 0, "{live} answered nothing: {:?}", outcome.tally);
    }
    assert_eq!(outcome.tally.failed(), 0, "{:?}", outcome.tally);
}

/// An imported `virtual_server_group`: every entry is a service of its own with the group's
/// real servers, so on the embedded engine the requests spread over both real servers on
/// each of them (80 and 443 on one VIP, 80 on two more).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_virtual_server_group_serves_every_entry() {
    if !root() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/import/keepalived-group.conf");
    let (toml, _) = lvslab::import::import_file(&path).expect("imports");
    let scenario = lvslab::scenario::parse(&toml, "imported.toml")
        .unwrap_or_else(|r| panic!("{}\n{toml}", r.render("imported.toml")));
    let opts = RunOptions {
        engine: Some(lvslab::scenario::EngineChoice::Embedded),
        diagnose: run::DiagnoseWhen::Never,
        ..Default::default()
    };
    let outcome = run::run(&scenario, &opts).await.expect("the lab runs");
    assert_eq!(outcome.tally.failed(), 0, "{:?}", outcome.tally);
    let names: Vec<&str> = outcome.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEB/tcp/10.20.0.10:80",
            "WEB/tcp/10.20.0.10:443",
            "WEB/tcp/10.20.0.20:80",
            "WEB/tcp/10.20.0.21:80"
        ]
    );
    for spread in &outcome.services {
        for rs in ["rs1", "rs2"] {
            let answered = spread.tally.backends.get(rs).copied().unwrap_or(0);
            assert!(
                answered > 0,
                "{rs} answered nothing on {}: {:?}",
                spread.name,
                spread.tally
            );
        }
    }
    let health = outcome.health.as_ref().expect("each entry's service runs its checkers");
    for (vip, port) in [("192.0.2.100", 80), ("192.0.2.100", 443), ("192.0.2.101", 80)] {
        let line = format!("Activating healthchecker for service [192.0.2.11]:tcp:{port} for VS [{vip}]:tcp:{port}");
        assert!(
            health.log.iter().any(|l| l.line == line),
            "missing {line:?} in {:#?}",
            health.log
        );
    }
}
