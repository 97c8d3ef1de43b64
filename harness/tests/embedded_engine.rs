//! The embedded engine against kernel IPVS behaviour, in real labs (root):
//! ICMP errors that belong to a connection reach the client.

use std::path::Path;

mod common;

use common::root;
use lvslab::run::{self, DiagnoseWhen, RunOptions};
use lvslab::scenario::{self, EngineChoice};
use lvslab::traffic::RequestError;

fn embedded() -> RunOptions {
    RunOptions {
        engine: Some(EngineChoice::Embedded),
        ..RunOptions::default()
    }
}

/// TUN real servers without a decapsulator answer the director's IP-in-IP
/// with ICMP protocol unreachable (this kernel has no `ipip`). Kernel IPVS
/// re-sends that error to the client from the VIP, so its connect fails at
/// once with ENOPROTOOPT; so must the embedded engine, instead of a timeout.
/// The director's kernel sends those errors through its ICMP rate limit (a
/// burst of 6 per destination, then 1 a second): of the 8 for one client, 6
/// go out and 2 connects wait out their timeout, under either engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_decap_errors_reach_the_client_as_protocol_unreachable() {
    if !root() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/why-tunnel-decap.toml");
    let scenario = scenario::load(&path).expect("shipped scenario is valid");
    let outcome = run::run(&scenario, &embedded()).await.expect("lab runs");
    let failed: Vec<_> = outcome.records.iter().filter_map(|r| r.error.as_ref()).collect();
    assert_eq!(failed.len(), 8, "rs2 and rs3 get 4 requests each: {failed:?}");
    let relayed = failed
        .iter()
        .filter(|e| ***e == RequestError::ProtocolUnreachable)
        .count();
    let timed_out = failed.iter().filter(|e| ***e == RequestError::Timeout).count();
    assert_eq!((relayed, timed_out), (6, 2), "{failed:?}");
    let stats = outcome.engine_stats.as_ref().expect("a director ran");
    assert_eq!(
        stats.icmp_relayed.get("tunnel_to_client:protocol_unreachable"),
        Some(&6),
        "{stats:?}"
    );
    assert_eq!(stats.icmp_not_relayed.get("rate_limited"), Some(&2), "{stats:?}");
    assert!(
        outcome.verdict.passed,
        "{:?}",
        outcome.verdict.failures().collect::<Vec<_>>()
    );
}

/// NAT and FULLNAT, UDP: a real server with nothing listening answers with
/// ICMP port unreachable, which goes back through the director rewritten to
/// come from the VIP about the client's own datagram, so the client's socket
/// reports "connection refused" rather than waiting out its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_and_fullnat_relay_a_real_servers_port_unreachable_to_the_client() {
    if !root() {
        return;
    }
    for mode in ["nat", "fullnat"] {
        let toml = format!(
            "[service]\nmode = \"{mode}\"\nprotocol = \"udp\"\nport = 53\nscheduler = \"rr\"\n\
             [[real_server]]\nname = \"rs1\"\nport = 5353\n\
             [[real_server]]\nname = \"rs2\"\nport = 5353\nstate = \"refuse\"\n\
             [traffic]\nrequests = 4\ntimeout_ms = 5000\n"
        );
        let scenario = scenario::parse(&toml, mode).expect("valid scenario");
        let opts = RunOptions {
            diagnose: DiagnoseWhen::Never,
            ..embedded()
        };
        let outcome = run::run(&scenario, &opts).await.expect("lab runs");
        let errors: Vec<_> = outcome.records.iter().filter_map(|r| r.error.clone()).collect();
        assert_eq!(
            errors,
            vec![RequestError::Refused; 2],
            "{mode}: rs2's half is refused at once"
        );
        assert_eq!(outcome.tally.backends.get("rs1"), Some(&2), "{mode}");
        let stats = outcome.engine_stats.as_ref().expect("a director ran");
        assert_eq!(
            stats.icmp_relayed.get("real_server_to_client:port_unreachable"),
            Some(&2),
            "{mode}: {stats:?}"
        );
    }
}
