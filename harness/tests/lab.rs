//! Lab builder against the real kernel (needs root; skips with a note otherwise).

mod common;

use common::{net, root};

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use lvslab::lab::{self, HostPlan, IfacePlan, Lab, LabError, LabOptions, LabPlan, RoutePlan, TunPlan};
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::RouteMessageBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn iface(addr: &str) -> IfacePlan {
    IfacePlan {
        name: "eth0".into(),
        segment: "lan".into(),
        addrs: vec![net(addr)],
        mac: None,
        mtu: None,
        segmented: false,
    }
}

/// Client + 3 real servers on one segment; rs1 has a VIP on lo, DR sysctls, a TUN and a route.
fn plan(name: &str) -> LabPlan {
    let mut hosts = vec![HostPlan {
        name: "client".into(),
        interfaces: vec![iface("10.0.0.2/24")],
        routes: vec![RoutePlan {
            dst: net("0.0.0.0/0"),
            via: Some("10.0.0.1".parse().unwrap()),
            dev: None,
        }],
        ..Default::default()
    }];
    for i in 1..=3 {
        hosts.push(HostPlan {
            name: format!("rs{i}"),
            interfaces: vec![iface(&format!("10.0.0.{}/24", 10 + i))],
            loopback_addrs: vec![net("10.0.0.100/32")],
            sysctls: vec![
                ("net.ipv4.conf.all.arp_ignore".into(), "1".into()),
                ("net.ipv4.conf.all.arp_announce".into(), "2".into()),
            ],
            ..Default::default()
        });
    }
    hosts[1].tun_devices = vec![TunPlan {
        name: "tunl0".into(),
        addrs: vec![net("10.0.0.100/32")],
    }];
    hosts[1].routes = vec![RoutePlan {
        dst: net("192.168.7.0/24"),
        via: None,
        dev: Some("tunl0".into()),
    }];
    LabPlan {
        name: name.into(),
        hosts,
        segments: vec!["lan".into()],
    }
}

struct LinkRow {
    name: String,
    index: u32,
    up: bool,
    mac: Vec<u8>,
    controller: Option<u32>,
}

async fn links(h: &lab::Host) -> Vec<LinkRow> {
    let msgs: Vec<_> = h.rtnl().link().get().execute().try_collect().await.unwrap();
    msgs.into_iter()
        .map(|m| {
            let mut row = LinkRow {
                name: String::new(),
                index: m.header.index,
                up: m.header.flags.contains(LinkFlags::Up),
                mac: vec![],
                controller: None,
            };
            for a in m.attributes {
                match a {
                    LinkAttribute::IfName(n) => row.name = n,
                    LinkAttribute::Address(a) => row.mac = a,
                    LinkAttribute::Controller(c) => row.controller = Some(c),
                    _ => {}
                }
            }
            row
        })
        .collect()
}

async fn addrs(h: &lab::Host) -> BTreeSet<(u32, String)> {
    let msgs: Vec<_> = h.rtnl().address().get().execute().try_collect().await.unwrap();
    msgs.into_iter()
        .flat_map(|m| {
            let (idx, len) = (m.header.index, m.header.prefix_len);
            m.attributes.into_iter().filter_map(move |a| match a {
                AddressAttribute::Address(IpAddr::V4(ip)) => Some((idx, format!("{ip}/{len}"))),
                _ => None,
            })
        })
        .collect()
}

async fn gateways(h: &lab::Host) -> Vec<Ipv4Addr> {
    let req = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let msgs: Vec<_> = h.rtnl().route().get(req).execute().try_collect().await.unwrap();
    msgs.into_iter()
        .flat_map(|m| m.attributes)
        .filter_map(|a| match a {
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(g),
            _ => None,
        })
        .collect()
}

async fn host_ns_links() -> BTreeSet<String> {
    // The test's own threads are in the host namespace.
    let (conn, handle, _) = rtnetlink::new_connection().unwrap();
    let task = tokio::spawn(conn);
    let msgs: Vec<_> = handle.link().get().execute().try_collect().await.unwrap();
    task.abort();
    msgs.into_iter()
        .flat_map(|m| m.attributes)
        .filter_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n),
            _ => None,
        })
        .collect()
}

fn ns_inode(fd: impl AsFd) -> u64 {
    nix::sys::stat::fstat(fd).unwrap().st_ino
}

/// Does any thread or fd of this process still refer to network namespace `ino`?
fn process_holds_ns(ino: u64) -> bool {
    let needle = format!("net:[{ino}]");
    let mut paths = Vec::new();
    for dir in ["/proc/self/fd", "/proc/self/task"] {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            paths.push(if dir.ends_with("task") {
                e.path().join("ns/net")
            } else {
                e.path()
            });
        }
    }
    paths
        .iter()
        .any(|p| std::fs::read_link(p).is_ok_and(|t| t.to_string_lossy() == needle))
}

async fn serve_once(h: &lab::Host, addr: &str, reply: &'static str) {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    // Bound before this returns: the client can connect right away.
    let listener = h
        .runtime()
        .spawn(async move { tokio::net::TcpListener::bind(addr).await })
        .await
        .unwrap()
        .unwrap();
    h.runtime().spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(reply.as_bytes()).await.unwrap();
    });
}

async fn fetch(h: &lab::Host, addr: &str) -> String {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    h.runtime()
        .spawn(async move {
            let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await??;
            let mut buf = String::new();
            s.read_to_string(&mut buf).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(buf)
        })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn builds_links_addresses_routes_sysctls() {
    if !root() {
        return;
    }
    let before = host_ns_links().await;
    let lab = Lab::build(&plan("inspect"), LabOptions::default()).await.unwrap();
    assert!(lab.run_id().starts_with("lvslab-"));

    // Switch: one bridge, four ports enslaved to it and up.
    let sw = links(lab.switch()).await;
    let br = sw.iter().find(|l| l.name == "br-lan").expect("bridge br-lan");
    assert!(br.up);
    let ports: Vec<_> = sw.iter().filter(|l| l.controller == Some(br.index)).collect();
    assert_eq!(
        ports.len(),
        4,
        "ports: {:?}",
        ports.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    assert!(ports.iter().all(|p| p.up));
    assert!(ports.iter().any(|p| p.name == "rs1-eth0"));

    for h in lab.hosts() {
        let info = h.iface("eth0").unwrap();
        let ls = links(h).await;
        let eth0 = ls.iter().find(|l| l.name == "eth0").expect("eth0");
        assert_eq!(eth0.index, info.index);
        assert_eq!(eth0.mac, info.mac.octets().to_vec());
        assert!(eth0.up, "{} eth0 up", h.name());
        assert!(ls.iter().find(|l| l.name == "lo").unwrap().up);
        let a = addrs(h).await;
        assert!(
            a.contains(&(info.index, info.addrs[0].to_string())),
            "{}: {a:?}",
            h.name()
        );
    }
    let rs2 = lab.host("rs2").unwrap();
    assert!(addrs(rs2).await.contains(&(1, "10.0.0.100/32".to_string())));
    assert_eq!(rs2.sysctl("net.ipv4.conf.all.arp_ignore").await.unwrap(), "1");
    assert_eq!(rs2.sysctl("net.ipv4.conf.all.arp_announce").await.unwrap(), "2");
    // Only the namespace was changed, not the host.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/all/arp_announce")
            .unwrap()
            .trim(),
        "0"
    );

    let client = lab.host("client").unwrap();
    assert_eq!(gateways(client).await, vec!["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);

    // rs1's TUN exists, is up, holds the VIP, and the lab hands out its fd once.
    let rs1 = lab.host("rs1").unwrap();
    let tun = rs1.iface("tunl0").unwrap().clone();
    let tl = links(rs1).await;
    assert!(tl.iter().any(|l| l.name == "tunl0" && l.index == tun.index && l.up));
    assert!(addrs(rs1).await.contains(&(tun.index, "10.0.0.100/32".to_string())));
    assert!(rs1.take_tun("tunl0").is_some());
    assert!(rs1.take_tun("tunl0").is_none());

    // Nothing ever appeared in the host's namespace.
    assert_eq!(host_ns_links().await, before);
    lab.teardown().await.unwrap();
}

#[tokio::test]
async fn tcp_connects_between_namespaces() {
    if !root() {
        return;
    }
    let lab = Lab::build(&plan("tcp"), LabOptions::default()).await.unwrap();
    serve_once(lab.host("rs3").unwrap(), "10.0.0.13:8080", "rs3").await;
    assert_eq!(fetch(lab.host("client").unwrap(), "10.0.0.13:8080").await, "rs3");
    // exec and spawn_thread run inside the namespace: they see its lo address, not the host's.
    let rs3 = lab.host("rs3").unwrap();
    let in_ns = rs3
        .exec(|| std::fs::read_to_string("/proc/thread-self/net/dev").unwrap())
        .await
        .expect("worker");
    assert!(in_ns.contains("eth0:") && !in_ns.contains("ifb0"), "{in_ns}");
    let t = rs3
        .spawn_thread("probe", || {
            std::fs::read_to_string("/proc/thread-self/net/dev").unwrap()
        })
        .unwrap();
    assert_eq!(dev_names(&t.join().unwrap()), dev_names(&in_ns));
    lab.teardown().await.unwrap();
}

/// Device names of a /proc/net/dev text (counters move between two reads).
fn dev_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.trim().to_string())
        .collect()
}

#[tokio::test]
async fn two_labs_from_one_plan_coexist() {
    if !root() {
        return;
    }
    let p = plan("twin");
    let (a, b) = tokio::join!(
        Lab::build(&p, LabOptions::default()),
        Lab::build(&p, LabOptions::default())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.run_id(), b.run_id());
    assert_ne!(
        ns_inode(a.host("rs1").unwrap().netns_fd()),
        ns_inode(b.host("rs1").unwrap().netns_fd())
    );
    serve_once(a.host("rs1").unwrap(), "10.0.0.11:80", "a").await;
    serve_once(b.host("rs1").unwrap(), "10.0.0.11:80", "b").await;
    assert_eq!(fetch(b.host("client").unwrap(), "10.0.0.11:80").await, "b");
    assert_eq!(fetch(a.host("client").unwrap(), "10.0.0.11:80").await, "a");
    a.teardown().await.unwrap();
    b.teardown().await.unwrap();
}

#[test]
fn panic_inside_a_lab_leaves_nothing_behind() {
    if !root() {
        return;
    }
    let keep = format!("panic{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let before_links = rt.block_on(host_ns_links());
    let (tx, rx) = std::sync::mpsc::channel();
    let keep2 = keep.clone();
    let result = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let lab = Lab::build(&plan("panic"), LabOptions { keep: Some(keep2) })
                .await
                .unwrap();
            let inodes: Vec<u64> = std::iter::once(lab.switch())
                .chain(lab.hosts())
                .map(|h| ns_inode(h.netns_fd()))
                .collect();
            tx.send(inodes).unwrap();
            panic!("test panics while the lab is up");
        })
    })
    .join();
    assert!(result.is_err(), "the scope panicked");
    let inodes = rx.recv().unwrap();
    assert_eq!(inodes.len(), 5);

    // Kept-lab files are gone at once; namespaces once the kernel lets go (polled, bounded).
    let entries: Vec<_> = std::fs::read_dir(lab::NETNS_DIR)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(!entries.iter().any(|e| e.contains(&keep)), "{entries:?}");
    assert!(!std::path::Path::new(lab::STATE_DIR)
        .join(format!("{keep}.json"))
        .exists());
    let deadline = Instant::now() + Duration::from_secs(10);
    while inodes.iter().any(|&i| process_holds_ns(i)) {
        assert!(Instant::now() < deadline, "namespaces still held after the deadline");
        std::thread::yield_now();
    }
    assert_eq!(rt.block_on(host_ns_links()), before_links);
}

#[tokio::test]
async fn kept_lab_is_visible_then_removed_and_clean_spares_live_owners() {
    if !root() {
        return;
    }
    let keep = format!("keep{}", std::process::id());
    let lab = Lab::build(
        &plan("keep"),
        LabOptions {
            keep: Some(keep.clone()),
        },
    )
    .await
    .unwrap();
    let link = lab::link_path(&keep, "client");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    let fd = lab::enter_kept(&keep, "client").unwrap();
    assert_eq!(ns_inode(&fd), ns_inode(lab.host("client").unwrap().netns_fd()));
    assert!(lab::enter_kept(&keep, "nosuch")
        .unwrap_err()
        .to_string()
        .contains("no host"));
    let listed = lab::list_kept().into_iter().find(|k| k.name == keep).expect("listed");
    assert!(listed.alive);
    assert!(listed.hosts.contains(&"switch".to_string()));

    // A second lab may not take the same name while the owner lives; clean leaves it alone.
    let again = Lab::build(
        &plan("keep"),
        LabOptions {
            keep: Some(keep.clone()),
        },
    )
    .await;
    assert!(matches!(again, Err(LabError::Kept { .. })));
    let report = lab::clean().unwrap();
    assert!(report.live.iter().any(|(n, _)| *n == keep));
    assert!(link.exists());

    lab.teardown().await.unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert!(!lab::list_kept().iter().any(|k| k.name == keep));
}

#[test]
fn clean_removes_only_what_a_dead_owner_recorded() {
    if !root() {
        return;
    }
    let name = format!("dead{}", std::process::id());
    // pid_max is at most 2^22: this owner cannot be alive.
    let dead_pid = 4_194_304 + 99;
    let recorded = lab::link_path(&name, "a");
    let foreign = lab::link_path(&name, "notours");
    std::fs::create_dir_all(lab::NETNS_DIR).unwrap();
    std::fs::create_dir_all(lab::STATE_DIR).unwrap();
    std::os::unix::fs::symlink(format!("/proc/{dead_pid}/fd/7"), &recorded).unwrap();
    std::os::unix::fs::symlink(format!("/proc/{dead_pid}/fd/8"), &foreign).unwrap();
    let state = lab::KeptState {
        name: name.clone(),
        run_id: format!("lvslab-{dead_pid}-0-abcd"),
        pid: dead_pid,
        start_ticks: 12,
        started: 0,
        hosts: vec!["a".into()],
        links: vec![recorded.display().to_string()],
    };
    let state_file = std::path::Path::new(lab::STATE_DIR).join(format!("{name}.json"));
    std::fs::write(&state_file, serde_json::to_string(&state).unwrap()).unwrap();
    assert!(!lab::list_kept().iter().find(|k| k.name == name).unwrap().alive);
    assert!(lab::enter_kept(&name, "a").unwrap_err().to_string().contains("gone"));

    let report = lab::clean().unwrap();
    assert!(report.removed_labs.contains(&name), "{report:?}");
    assert!(report.removed_links.contains(&recorded.display().to_string()));
    assert!(std::fs::symlink_metadata(&recorded).is_err());
    assert!(!state_file.exists());
    // Not recorded, so not touched.
    assert!(std::fs::symlink_metadata(&foreign).unwrap().file_type().is_symlink());
    std::fs::remove_file(&foreign).unwrap();
}

#[tokio::test]
async fn bad_sysctl_fails_clearly_and_dead_host_comes_up_with_routes() {
    if !root() {
        return;
    }
    let mut p = plan("sysctl");
    p.hosts[2]
        .sysctls
        .push(("net.ipv4.conf.all.no_such_knob".into(), "1".into()));
    let err = Lab::build(&p, LabOptions::default())
        .await
        .err()
        .expect("unknown sysctl fails");
    let msg = err.to_string();
    assert!(matches!(err, LabError::UnknownSysctl { .. }), "{msg}");
    assert!(msg.contains("rs2") && msg.contains("no_such_knob"), "{msg}");

    let mut p = plan("dead");
    p.hosts[0].link_up = false;
    let lab = Lab::build(&p, LabOptions::default()).await.unwrap();
    let client = lab.host("client").unwrap();
    assert!(!links(client).await.iter().find(|l| l.name == "eth0").unwrap().up);
    assert!(gateways(client).await.is_empty());
    client.set_link_up("eth0", true).await.unwrap();
    assert!(links(client).await.iter().find(|l| l.name == "eth0").unwrap().up);
    assert_eq!(gateways(client).await, vec!["10.0.0.1".parse::<Ipv4Addr>().unwrap()]);
    client.add_address("eth0", net("10.0.0.50/24")).await.unwrap();
    assert!(addrs(client).await.iter().any(|(_, a)| a == "10.0.0.50/24"));
    assert!(matches!(
        client.set_link_up("eth7", true).await,
        Err(LabError::NoSuchIface { .. })
    ));
    lab.teardown().await.unwrap();
}
