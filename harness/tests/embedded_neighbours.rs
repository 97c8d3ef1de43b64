//! The embedded engine resolves next hops the way the kernel's neighbour layer
//! does, in a real lab with many real servers (root). A test binary of its
//! own: its lab's start-up traffic would disturb labs built at the same time.

use std::time::{Duration, Instant};

mod common;

use common::root;
use lvslab::run::{self, DiagnoseWhen, RunOptions};
use lvslab::scenario::{self, EngineChoice};

/// Entries in the host's ARP table and its hard limit (`gc_thresh3`). The
/// table is one for all namespaces, so other labs on the host use it up too.
fn host_arp_table() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/net/stat/arp_cache").ok()?;
    let entries = u64::from_str_radix(stat.lines().nth(1)?.split_whitespace().next()?, 16).ok()?;
    let limit = std::fs::read_to_string("/proc/sys/net/ipv4/neigh/default/gc_thresh3").ok()?;
    Some((entries, limit.trim().parse().ok()?))
}

/// Waits (up to a deadline) until the host's ARP table has room for `needed`
/// more entries; false if it never does, saying why.
async fn host_arp_table_has_room(needed: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match host_arp_table() {
            None => return true, // no figures to go by: run anyway
            Some((entries, limit)) if entries + needed <= limit => return true,
            Some((entries, limit)) if Instant::now() >= deadline => {
                eprintln!(
                    "skipped: the host's ARP table holds {entries} of at most {limit} entries \
                     (gc_thresh3; other labs are running?), this lab needs {needed} more"
                );
                return false;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// DR over many real servers on one segment. Every real server's MAC is
/// resolved when first needed with one ARP request; frames wait for it rather
/// than being dropped. IPv6 is off on the hosts: hundreds of interfaces coming
/// up would otherwise flood the bridge with multicast (router solicitations,
/// MLD, DAD) for seconds, which drops frames in the kernel whatever the engine.
/// The host's one ARP table (shared by all namespaces, `gc_thresh3` 1024 by
/// default) must not overflow: each server holds entries for the director
/// and the client, and the client one per server. When it is full the
/// kernel answers no ARP and sends nothing, whatever the engine does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_real_servers_each_resolved_once_and_every_request_answered() {
    const SERVERS: u32 = 200;
    if !root() || !host_arp_table_has_room(u64::from(SERVERS) * 3 + 16).await {
        return;
    }
    let no_ipv6 = r#"sysctl = { "net.ipv6.conf.all.disable_ipv6" = 1 }"#;
    let mut toml = String::from(
        "[[network]]\nname = \"lan\"\nsubnet = \"10.77.0.0/16\"\n\
         [service]\nmode = \"dr\"\nscheduler = \"rr\"\nvip = \"10.77.200.100\"\n",
    );
    for i in 0..SERVERS {
        let host = 11 + i;
        toml += &format!(
            "[[real_server]]\nname = \"rs{}\"\naddress = \"10.77.{}.{}\"\n{no_ipv6}\n",
            i + 1,
            host / 256,
            host % 256
        );
    }
    toml += &format!("[[client]]\nname = \"client\"\n{no_ipv6}\n");
    toml += &format!("[traffic]\nrequests = {}\nconcurrency = 16\n", SERVERS * 4);
    let scenario = scenario::parse(&toml, "many-real-servers").expect("valid scenario");
    let opts = RunOptions {
        engine: Some(EngineChoice::Embedded),
        diagnose: DiagnoseWhen::Never,
        ..RunOptions::default()
    };
    let outcome = run::run(&scenario, &opts).await.expect("lab runs");
    let failed: Vec<_> = outcome.records.iter().filter(|r| r.error.is_some()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    let silent: Vec<_> = outcome.tally.backends.iter().filter(|(_, n)| **n != 4).collect();
    assert!(silent.is_empty(), "rr gives every server 4 requests: {silent:?}");
    let stats = outcome.engine_stats.as_ref().expect("a director ran");
    let (arp, servers) = (stats.arp_requests_sent, u64::from(SERVERS));
    assert!(
        arp >= servers * 95 / 100 && arp <= servers * 105 / 100,
        "about one ARP request per real server: {arp} for {servers}"
    );
    assert_eq!(stats.dropped_total(), 0, "nothing dropped: {:?}", stats.dropped);
}
