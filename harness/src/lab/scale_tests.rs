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

/// MTU of `ifname` in the calling thread's namespace.
fn mtu_of(ifname: &str) -> u32 {
    let sock = crate::sys::socket::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0).unwrap();
    crate::sys::netdev::mtu(std::os::fd::AsFd::as_fd(&sock), ifname).unwrap()
}

/// An interface's `mtu` is set on both ends of its veth (a veth drops what exceeds the MTU of
/// the end that receives it), and a `segmented` one gets TSO off on its switch port.
#[tokio::test(flavor = "current_thread")]
async fn an_interface_mtu_is_on_both_ends_and_segmented_turns_tso_off_at_the_port() {
    if !root() {
        return;
    }
    let mut plan = plan("mtu", 2);
    plan.hosts[1].interfaces[0].mtu = Some(1400);
    plan.hosts[1].interfaces[0].segmented = true;
    let lab = Lab::build(&plan, LabOptions::default()).await.expect("lab builds");
    let host_end = lab.host("h0").unwrap().exec(|| mtu_of("eth0")).await.expect("worker");
    let (port, port_tso, other_tso) = lab
        .switch()
        .exec(|| {
            (
                mtu_of("h0-eth0"),
                offload::gro_tso("h0-eth0").unwrap().1,
                offload::gro_tso("h1-eth0").unwrap().1,
            )
        })
        .await
        .expect("worker");
    assert_eq!((host_end, port), (1400, 1400));
    assert!(!port_tso, "frames reach h0 cut to its MTU");
    assert!(other_tso, "the other host's port keeps TSO");
    let hub = lab.host("hub").unwrap().exec(|| mtu_of("eth0")).await.expect("worker");
    assert_eq!(hub, 1500, "the kernel's default elsewhere");
    lab.teardown().await.unwrap();
}
