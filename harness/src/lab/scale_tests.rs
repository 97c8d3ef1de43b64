//! Large segments against the real kernel (needs root; skips with a note otherwise): per-host
//! receive rings, permanent entries for well-known hosts, no IPv6 anywhere.

use super::*;
use crate::lab::offload;

fn host(name: &str, addr: &str, well_known: bool) -> HostPlan {
    HostPlan {
        name: name.into(),
        interfaces: vec![IfacePlan {
            name: "eth0".into(),
            segment: "lan".into(),
            addrs: vec![addr.parse().unwrap()],
            mac: None,
            mtu: None,
            segmented: false,
        }],
        well_known,
        ..Default::default()
    }
}

/// A hub (well-known) and `others` hosts on one /16 segment.
fn plan(name: &str, others: usize) -> LabPlan {
    let mut hosts = vec![host("hub", "10.9.0.1/16", true)];
    hosts.extend((0..others).map(|i| {
        host(
            &format!("h{i}"),
            &format!("10.9.{}.{}/16", 1 + i / 200, 1 + i % 200),
            false,
        )
    }));
    LabPlan {
        name: name.into(),
        hosts,
        segments: vec!["lan".into()],
    }
}

/// /proc/net/arp of the calling thread's namespace: (address, flags) per entry.
fn arp_entries() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/thread-self/net/arp")
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[2].to_owned())
        })
        .collect()
}

fn root() -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("skipped: needs root for network namespaces");
    }
    ok
}

#[tokio::test(flavor = "current_thread")]
async fn a_large_segment_gets_own_receive_rings_and_knows_its_hub() {
    if !root() {
        return;
    }
    let plan = plan("scale-large", LARGE_SEGMENT_PORTS);
    assert_eq!(plan.large_segments(), ["lan"]);
    let lab = Lab::build(&plan, LabOptions::default()).await.expect("lab builds");
    let h7 = lab.host("h7").unwrap();
    let (gro, _) = h7.exec(|| offload::gro_tso("eth0")).await.expect("worker").unwrap();
    assert!(gro, "host end receives with GRO, so on its own NAPI ring");
    let (_, tso) = lab
        .switch()
        .exec(|| offload::gro_tso("h7-eth0"))
        .await
        .expect("worker")
        .unwrap();
    assert!(
        !tso,
        "switch port sends without TSO, so its frames are eligible for that ring"
    );
    // ATF_COM | ATF_PERM: a permanent entry for the hub, none for the others.
    let entries = h7.exec(arp_entries).await.expect("worker");
    assert_eq!(entries, [("10.9.0.1".to_owned(), "0x6".to_owned())]);
    assert!(lab
        .host("hub")
        .unwrap()
        .exec(arp_entries)
        .await
        .expect("worker")
        .is_empty());
    let v6 = h7
        .exec(|| std::fs::read_to_string("/proc/sys/net/ipv6/conf/eth0/disable_ipv6"))
        .await
        .expect("worker")
        .unwrap();
    assert_eq!(v6.trim(), "1");
    lab.teardown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_small_segment_keeps_the_kernel_defaults() {
    if !root() {
        return;
    }
    let plan = plan("scale-small", 3);
    assert!(plan.large_segments().is_empty());
    let lab = Lab::build(&plan, LabOptions::default()).await.expect("lab builds");
    let (_, tso) = lab
        .switch()
        .exec(|| offload::gro_tso("h1-eth0"))
        .await
        .expect("worker")
        .unwrap();
    assert!(tso, "TSO stays on");
    assert!(lab
        .host("h1")
        .unwrap()
        .exec(arp_entries)
        .await
        .expect("worker")
        .is_empty());
    lab.teardown().await.unwrap();
}
