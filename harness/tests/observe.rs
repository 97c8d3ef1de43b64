//! Evidence gathering against a real lab (needs root; skips with a note otherwise).
//!
//! One segment: a client and two servers holding the same VIP on lo. Server `a` keeps
//! arp_ignore=0 (answers ARP for the VIP on eth0: the ARP-flux bug), `b` has arp_ignore=1.

mod common;

use common::{net, root};

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use lvslab::diagnose::evidence::{Mac, Proto};
use lvslab::lab::{self, HostPlan, IfacePlan, Lab, LabOptions, LabPlan, RoutePlan};
use lvslab::observe::{self, ObserveError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const A_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
const B_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 12);
const WINDOW: Duration = Duration::from_millis(300);

fn eth0(ip: Ipv4Addr) -> IfacePlan {
    IfacePlan {
        name: "eth0".into(),
        segment: "lan".into(),
        addrs: vec![Ipv4Net::new(ip, 24).unwrap()],
        mac: None,
        mtu: None,
        segmented: false,
    }
}

fn server(name: &str, ip: Ipv4Addr, arp_ignore: &str) -> HostPlan {
    HostPlan {
        name: name.into(),
        interfaces: vec![eth0(ip)],
        loopback_addrs: vec![Ipv4Net::new(VIP, 32).unwrap()],
        sysctls: vec![("net.ipv4.conf.all.arp_ignore".into(), arp_ignore.into())],
        ..Default::default()
    }
}

fn plan(name: &str) -> LabPlan {
    let client = HostPlan {
        name: "client".into(),
        interfaces: vec![eth0(CLIENT_IP)],
        // The VIP is on the client's segment, as in a one-subnet LVS-DR set-up.
        routes: vec![RoutePlan {
            dst: Ipv4Net::new(VIP, 32).unwrap(),
            via: None,
            dev: Some("eth0".into()),
        }],
        ..Default::default()
    };
    LabPlan {
        name: name.into(),
        hosts: vec![client, server("a", A_IP, "0"), server("b", B_IP, "1")],
        segments: vec!["lan".into()],
    }
}

fn mac_of(h: &lab::Host) -> Mac {
    h.iface("eth0").unwrap().mac
}

#[tokio::test]
async fn arp_probe_sees_exactly_the_servers_that_answer() {
    if !root() {
        return;
    }
    let lab = Lab::build(&plan("arpprobe"), LabOptions::default()).await.unwrap();
    let (client, a, b) = (
        lab.host("client").unwrap(),
        lab.host("a").unwrap(),
        lab.host("b").unwrap(),
    );

    // Only a, with arp_ignore=0, claims the VIP it holds on lo.
    let started = Instant::now();
    let probe = observe::arp_probe(client, "eth0", VIP, WINDOW).await.unwrap();
    let took = started.elapsed();
    assert_eq!(probe.from, "client");
    assert_eq!(probe.replies, vec![mac_of(a)]);
    assert!(
        took >= WINDOW && took < WINDOW + Duration::from_secs(2),
        "window not honoured: {took:?}"
    );

    // b does answer for its own address, so its silence for the VIP is arp_ignore at work.
    assert_eq!(
        observe::arp_probe(client, "eth0", B_IP, WINDOW).await.unwrap().replies,
        vec![mac_of(b)]
    );
    // Nobody holds this one.
    let nobody = Ipv4Addr::new(198, 51, 100, 99);
    assert!(observe::arp_probe(client, "eth0", nobody, WINDOW)
        .await
        .unwrap()
        .replies
        .is_empty());

    // Once b is fixed to arp_ignore=0 too, both answer: a flux of two MACs.
    b.set_sysctl("net.ipv4.conf.all.arp_ignore", "0").await.unwrap();
    let mut both = observe::arp_probe(client, "eth0", VIP, WINDOW).await.unwrap().replies;
    both.sort();
    let mut want = vec![mac_of(a), mac_of(b)];
    want.sort();
    assert_eq!(both, want);

    let err = observe::arp_probe(client, "eth9", VIP, WINDOW).await.unwrap_err();
    assert!(matches!(err, ObserveError::NoSuchIface { .. }), "{err}");
    let err = observe::arp_probe(client, "lo", VIP, WINDOW).await.unwrap_err();
    assert!(
        matches!(err, ObserveError::CannotArp { .. }) && err.to_string().contains("no Ethernet address"),
        "{err}"
    );
    lab.teardown().await.unwrap();
}

/// Answers every connection with "a" until the lab is torn down; bound before returning.
async fn serve(h: &lab::Host, addr: SocketAddr) {
    let listener = h
        .runtime()
        .spawn(async move { tokio::net::TcpListener::bind(addr).await })
        .await
        .unwrap()
        .unwrap();
    h.runtime().spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"a").await;
        }
    });
}

async fn fetch(h: &lab::Host, addr: SocketAddr) -> String {
    h.runtime()
        .spawn(async move {
            let mut s = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await??;
            let mut buf = String::new();
            tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut buf)).await??;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(buf)
        })
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn host_evidence_shows_vip_sysctls_routes_neighbours_counters_listeners() {
    if !root() {
        return;
    }
    let lab = Lab::build(&plan("evidence"), LabOptions::default()).await.unwrap();
    let (client, a, b) = (
        lab.host("client").unwrap(),
        lab.host("a").unwrap(),
        lab.host("b").unwrap(),
    );

    serve(a, SocketAddr::from(([0, 0, 0, 0], 8080))).await;
    let udp = a
        .runtime()
        .spawn(async { tokio::net::UdpSocket::bind((A_IP, 5353)).await })
        .await
        .unwrap()
        .unwrap();
    let client_before = observe::host_evidence(client).await.unwrap();

    // To a's address, then to the VIP: the client's kernel ARPs for the VIP and a answers.
    assert_eq!(fetch(client, SocketAddr::from((A_IP, 8080))).await, "a");
    assert_eq!(fetch(client, SocketAddr::from((VIP, 8080))).await, "a");

    let ev_a = observe::host_evidence(a).await.unwrap();
    assert_eq!(ev_a.name, "a");
    assert_eq!(ev_a.address_of(VIP).map(|x| x.iface.as_str()), Some("lo"));
    assert_eq!(ev_a.address_of(A_IP).map(|x| x.net), Some(net("198.51.100.11/24")));
    assert!(ev_a.address_of(Ipv4Addr::LOCALHOST).is_some());
    assert_eq!(ev_a.effective_conf("arp_ignore", "eth0"), Some(0));
    assert!(ev_a.sysctls.contains_key("net.ipv4.ip_forward"));
    assert!(ev_a.sysctls.contains_key("net.ipv4.conf.lo.rp_filter"));
    let route = ev_a.route_to(B_IP).expect("segment route");
    assert_eq!(
        (route.dst, route.via, route.dev.as_deref()),
        (net("198.51.100.0/24"), None, Some("eth0"))
    );
    let link = ev_a.link("eth0").unwrap();
    assert_eq!(
        (link.kind.as_deref(), link.mac, link.up, link.mtu),
        (Some("veth"), Some(mac_of(a)), true, Some(1500))
    );
    assert_eq!(ev_a.link("lo").and_then(|l| l.kind.as_deref()), Some("loopback"));
    for name in [
        "InAddrErrors",
        "InHdrErrors",
        "TcpInCsumErrors",
        "UdpInCsumErrors",
        "IPReversePathFilter",
        "ListenDrops",
    ] {
        assert!(
            ev_a.counters.contains_key(name),
            "{name} missing: {:?}",
            ev_a.counters.keys().collect::<Vec<_>>()
        );
    }
    assert!(ev_a.counter("TcpPassiveOpens") >= 2, "a accepted two connections");
    assert_eq!(ev_a.listens_on(Proto::Tcp, VIP, 8080), Some(true));
    assert_eq!(ev_a.listens_on(Proto::Udp, A_IP, 5353), Some(true));
    assert_eq!(
        ev_a.listens_on(Proto::Udp, VIP, 5353),
        Some(false),
        "bound to one address only"
    );
    assert_eq!(ev_a.listens_on(Proto::Tcp, A_IP, 9999), Some(false));

    let ev_b = observe::host_evidence(b).await.unwrap();
    assert_eq!(ev_b.effective_conf("arp_ignore", "eth0"), Some(1));
    assert_eq!(ev_b.listens_on(Proto::Tcp, VIP, 8080), Some(false));

    // The client's neighbour table holds a's MAC for a's address and, by ARP flux, the VIP.
    let ev_client = observe::host_evidence(client).await.unwrap();
    for ip in [A_IP, VIP] {
        let n = ev_client
            .neighbour(ip)
            .unwrap_or_else(|| panic!("no neighbour {ip}: {:?}", ev_client.neighbours));
        assert_eq!((n.mac, n.iface.as_str()), (Some(mac_of(a)), "eth0"), "{ip}");
        assert_ne!(n.state, "FAILED");
    }
    assert_eq!(ev_client.route_to(VIP).map(|r| r.dst), Some(net("192.0.2.100/32")));
    let delta = observe::counters_delta(&client_before, &ev_client);
    assert_eq!(delta["TcpActiveOpens"], 2, "two connects during the run");
    assert_eq!(delta["TcpInCsumErrors"], 0);
    drop(udp);
    lab.teardown().await.unwrap();
}

#[tokio::test]
async fn local_evidence_reads_the_callers_namespace() {
    if !root() {
        return;
    }
    let lab = Lab::build(&plan("local"), LabOptions::default()).await.unwrap();
    let a = lab.host("a").unwrap();
    let from_lab = observe::host_evidence(a).await.unwrap();
    // Called on a's namespace thread, which is inside a runtime: still fine.
    let local = a
        .exec(|| observe::local_evidence("a-live"))
        .await
        .expect("worker")
        .unwrap();
    assert_eq!(local.name, "a-live");
    assert_eq!(local.links, from_lab.links);
    assert_eq!(local.addresses, from_lab.addresses);
    assert_eq!(local.routes, from_lab.routes);
    assert_eq!(local.sysctls, from_lab.sysctls);
    assert_eq!(local.address_of(VIP).map(|x| x.iface.as_str()), Some("lo"));
    // And from a plain thread entered into the namespace.
    let t = a.spawn_thread("observe-test", || observe::local_evidence("a")).unwrap();
    assert_eq!(t.join().unwrap().unwrap().links, from_lab.links);
    lab.teardown().await.unwrap();
}
