//! The embedded director end to end: a lab (client, director, 3 real
//! servers), real HTTP servers, real client requests through the engine.
//! Needs root (namespaces); skips with a note otherwise.

mod common;

use common::{net, root};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ipnet::Ipv4Net;
use lvslab::director::{DirectorConfig, EmbeddedEngine, Engine};
use lvslab::ipvs::{DestConfig, Forward, Proto, ServiceConfig, Sysctls};
use lvslab::lab::{HostPlan, IfacePlan, Lab, LabOptions, LabPlan, RoutePlan, TunPlan};
use lvslab::realserver::{self, Behaviour, ServerSpec};
use lvslab::traffic::{self, ConnectionMode, TrafficSpec};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const REQUESTS: u32 = 30;

fn eth(name: &str, segment: &str, addr: &str) -> IfacePlan {
    IfacePlan {
        name: name.into(),
        segment: segment.into(),
        addrs: vec![net(addr)],
        mac: None,
        mtu: None,
        segmented: false,
    }
}

/// DR: one segment; real servers hold the VIP on lo and do not answer ARP for it.
fn dr_plan(name: &str) -> (LabPlan, Vec<Ipv4Addr>) {
    let mut hosts = vec![
        HostPlan {
            name: "client".into(),
            interfaces: vec![eth("eth0", "lan", "10.0.0.10/24")],
            ..Default::default()
        },
        HostPlan {
            name: "director".into(),
            interfaces: vec![eth("eth0", "lan", "10.0.0.1/24")],
            ..Default::default()
        },
    ];
    let mut rips = Vec::new();
    for i in 1..=3u8 {
        rips.push(Ipv4Addr::new(10, 0, 0, 20 + i));
        hosts.push(HostPlan {
            name: format!("rs{i}"),
            interfaces: vec![eth("eth0", "lan", &format!("10.0.0.{}/24", 20 + i))],
            loopback_addrs: vec![Ipv4Net::from(VIP)],
            sysctls: vec![
                ("net.ipv4.conf.all.arp_ignore".into(), "1".into()),
                ("net.ipv4.conf.all.arp_announce".into(), "2".into()),
            ],
            ..Default::default()
        });
    }
    (
        LabPlan {
            name: name.into(),
            hosts,
            segments: vec!["lan".into()],
        },
        rips,
    )
}

/// NAT: clients in front, real servers behind the director, which is their default route.
fn nat_plan(name: &str) -> (LabPlan, Vec<Ipv4Addr>) {
    let mut hosts = vec![
        HostPlan {
            name: "client".into(),
            interfaces: vec![eth("eth0", "front", "10.0.0.10/24")],
            ..Default::default()
        },
        HostPlan {
            name: "director".into(),
            interfaces: vec![eth("eth0", "front", "10.0.0.1/24"), eth("eth1", "back", "10.0.1.1/24")],
            ..Default::default()
        },
    ];
    let mut rips = Vec::new();
    for i in 1..=3u8 {
        rips.push(Ipv4Addr::new(10, 0, 1, 20 + i));
        hosts.push(HostPlan {
            name: format!("rs{i}"),
            interfaces: vec![eth("eth0", "back", &format!("10.0.1.{}/24", 20 + i))],
            routes: vec![RoutePlan {
                dst: net("0.0.0.0/0"),
                via: Some(Ipv4Addr::new(10, 0, 1, 1)),
                dev: None,
            }],
            ..Default::default()
        });
    }
    (
        LabPlan {
            name: name.into(),
            hosts,
            segments: vec!["front".into(), "back".into()],
        },
        rips,
    )
}

/// TUN: like DR, but the VIP sits on a TUN device `tunl0` fed by the
/// userspace IPIP decapsulator (this kernel has no ipip module).
fn tun_plan(name: &str) -> (LabPlan, Vec<Ipv4Addr>) {
    let (mut plan, rips) = dr_plan(name);
    for rs in plan.hosts.iter_mut().filter(|h| h.name.starts_with("rs")) {
        rs.loopback_addrs.clear();
        rs.tun_devices = vec![TunPlan {
            name: "tunl0".into(),
            addrs: vec![Ipv4Net::from(VIP)],
        }];
        // The inner source is the client, which is not reached via tunl0.
        rs.sysctls.push(("net.ipv4.conf.all.rp_filter".into(), "0".into()));
        rs.sysctls.push(("net.ipv4.conf.tunl0.rp_filter".into(), "0".into()));
    }
    (plan, rips)
}

/// FULLNAT: NAT's two segments, but the real servers need no route back to
/// clients: they answer the director's local address on their own segment.
fn fullnat_plan(name: &str) -> (LabPlan, Vec<Ipv4Addr>) {
    let (mut plan, rips) = nat_plan(name);
    for rs in plan.hosts.iter_mut().filter(|h| h.name.starts_with("rs")) {
        rs.routes.clear();
    }
    (plan, rips)
}

const FULLNAT_LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);

fn config(rips: &[Ipv4Addr], forward: Forward, port: u16, server_iface: &str) -> DirectorConfig {
    let service = ServiceConfig::new(Proto::Tcp, VIP, 80, lvslab::ipvs::Scheduler::Rr);
    let dests = rips.iter().map(|&r| DestConfig::new(r, port, 1, forward)).collect();
    DirectorConfig {
        services: vec![(service, dests)],
        sysctls: Sysctls::default(),
        client_iface: "eth0".into(),
        server_iface: server_iface.into(),
        fullnat_local_addrs: vec![],
        vip_gate: None,
        marks: Vec::new(),
        complete_checksums: true,
    }
}

/// Builds the lab, starts servers and the engine, fires the requests, and
/// returns answers per backend plus the engine's counters.
async fn run(
    plan: LabPlan,
    cfg: DirectorConfig,
    server_port: u16,
) -> (BTreeMap<String, u32>, Vec<String>, lvslab::director::EngineStats) {
    let plan_has_tun = plan.hosts.iter().any(|h| !h.tun_devices.is_empty());
    let lab = Lab::build(&plan, LabOptions::default()).await.expect("lab builds");
    let mut servers = Vec::new();
    let mut decaps = Vec::new();
    for i in 1..=3 {
        let host = lab.host(&format!("rs{i}")).unwrap();
        let spec = ServerSpec {
            name: format!("rs{i}"),
            bind: SocketAddr::from(([0, 0, 0, 0], server_port)),
            proto: realserver::Proto::Tcp,
            behaviour: Behaviour::Up,
        };
        servers.push(realserver::start(host.runtime(), spec).await.expect("server listens"));
        if let Some(tun) = host.take_tun("tunl0") {
            decaps.push(
                realserver::start_decap(host.runtime(), tun)
                    .await
                    .expect("decapsulator starts"),
            );
        }
    }
    let director = lab.host("director").unwrap();
    let engine = EmbeddedEngine::start(director, cfg).expect("engine starts");
    let spec = TrafficSpec {
        targets: vec![SocketAddr::from((VIP, 80))],
        proto: realserver::Proto::Tcp,
        requests: REQUESTS,
        mode: ConnectionMode::New,
        concurrency: 1,
        sources: vec![],
        source_port: None,
        timeout: Duration::from_secs(3),
        path: "/".into(),
        client: "client".into(),
        body: bytes::Bytes::new(),
    };
    let records = traffic::fire(lab.host("client").unwrap().runtime(), spec, None).await;
    let stats = engine.stats();
    Box::new(engine).shutdown().expect("engine stops");
    for s in servers {
        s.stop().await;
    }
    let mut decapsulated = 0;
    for d in decaps {
        let st = d.stop().await;
        assert_eq!((st.dropped, st.write_failed), (0, 0), "decapsulator: {st:?}");
        decapsulated += st.decapsulated;
    }
    assert!(
        plan_has_tun == (decapsulated > 0),
        "TUN traffic arrives encapsulated (decapsulated {decapsulated})"
    );
    lab.teardown().await.expect("lab tears down");

    let mut per_backend = BTreeMap::new();
    let mut errors = Vec::new();
    for r in &records {
        match (&r.backend, &r.error) {
            (Some(b), None) => *per_backend.entry(b.clone()).or_insert(0) += 1,
            (_, e) => errors.push(format!("#{}: {e:?}", r.seq)),
        }
    }
    (per_backend, errors, stats)
}

fn assert_rr_spread(per_backend: &BTreeMap<String, u32>, errors: &[String], stats: &lvslab::director::EngineStats) {
    assert!(errors.is_empty(), "failed requests: {errors:?}\nengine: {stats:?}");
    let expected: BTreeMap<String, u32> = (1..=3).map(|i| (format!("rs{i}"), REQUESTS / 3)).collect();
    assert_eq!(per_backend, &expected, "rr spreads evenly; engine: {stats:?}");
    assert_eq!(stats.malformed_total(), 0, "{stats:?}");
    assert!(
        stats.arp_answered >= 1,
        "the client resolved the VIP through the engine: {stats:?}"
    );
}

#[tokio::test]
async fn dr_round_robin_through_the_embedded_engine() {
    if !root() {
        return;
    }
    let (plan, rips) = dr_plan("dir-dr");
    let (per_backend, errors, stats) = run(plan, config(&rips, Forward::Dr, 80, "eth0"), 80).await;
    assert_rr_spread(&per_backend, &errors, &stats);
    assert_eq!(stats.forwarded_out, 0, "DR replies bypass the director");
}

#[tokio::test]
async fn nat_round_robin_through_the_embedded_engine() {
    if !root() {
        return;
    }
    let (plan, rips) = nat_plan("dir-nat");
    let (per_backend, errors, stats) = run(plan, config(&rips, Forward::Nat, 8080, "eth1"), 8080).await;
    assert_rr_spread(&per_backend, &errors, &stats);
    assert!(
        stats.forwarded_out > 0,
        "NAT replies come back through the engine: {stats:?}"
    );
}

#[tokio::test]
async fn tun_round_robin_through_the_embedded_engine() {
    if !root() {
        return;
    }
    let (plan, rips) = tun_plan("dir-tun");
    let (per_backend, errors, stats) = run(plan, config(&rips, Forward::Tun, 80, "eth0"), 80).await;
    assert_rr_spread(&per_backend, &errors, &stats);
    assert_eq!(stats.forwarded_out, 0, "TUN replies bypass the director");
}

#[tokio::test]
async fn fullnat_round_robin_through_the_embedded_engine() {
    if !root() {
        return;
    }
    let (plan, rips) = fullnat_plan("dir-fnat");
    let mut cfg = config(&rips, Forward::FullNat, 8080, "eth1");
    cfg.fullnat_local_addrs = vec![FULLNAT_LOCAL];
    let (per_backend, errors, stats) = run(plan, cfg, 8080).await;
    assert_rr_spread(&per_backend, &errors, &stats);
    assert!(
        stats.forwarded_out > 0,
        "FULLNAT replies come back through the engine: {stats:?}"
    );
}
