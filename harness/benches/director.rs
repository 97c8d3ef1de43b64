//! 1. Packets per second through the embedded director's parse + rewrite
//!    path on synthetic frames (no sockets: the userspace work per frame).
//! 2. As root: HTTP requests/s through the engine in a DR lab against the
//!    same client hitting one real server directly (target: at least 80%).
//!
//! Run: `cargo bench -p lvslab --bench director`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use lvslab::director::embedded::forward::{self, Csum, Rewrite, Tunnel};
use lvslab::director::embedded::frame::{self, Frame};

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x21];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
const MEASURE_FOR: Duration = Duration::from_millis(500);

fn request(payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(40000, 80, 1, 64240)
        .ack(1)
        .psh()
        .write(&mut f, &vec![b'x'; payload_len])
        .unwrap();
    f
}

/// Runs `step` on a fresh copy of `template` until MEASURE_FOR elapses; frames/s.
fn measure(template: &[u8], mut step: impl FnMut(&mut Vec<u8>) -> bool) -> f64 {
    let mut buf = Vec::with_capacity(template.len() + 64);
    let mut frames = 0u64;
    let start = Instant::now();
    while start.elapsed() < MEASURE_FOR {
        for _ in 0..1024 {
            buf.clear();
            buf.extend_from_slice(template);
            assert!(step(&mut buf));
            black_box(&buf);
        }
        frames += 1024;
    }
    frames as f64 / start.elapsed().as_secs_f64()
}

fn parsed(buf: &[u8]) -> frame::Ipv4Frame {
    match frame::parse(buf) {
        Ok(Frame::Ipv4(ip)) => ip,
        other => panic!("bench frame does not parse: {other:?}"),
    }
}

/// Requests/s: (through the director to the VIP, straight to rs1).
fn through_lab() -> (f64, f64) {
    use lvslab::director::{DirectorConfig, EmbeddedEngine, Engine};
    use lvslab::ipvs::{DestConfig, Forward, Proto, ServiceConfig, Sysctls};
    use lvslab::lab::{HostPlan, IfacePlan, Lab, LabOptions, LabPlan};
    use lvslab::realserver::{self, Behaviour, ServerSpec};
    use lvslab::traffic::{self, ConnectionMode, TrafficSpec};
    use std::net::SocketAddr;

    const REQUESTS: u32 = 2000;
    let eth = |addr: &str| IfacePlan {
        name: "eth0".into(),
        segment: "lan".into(),
        addrs: vec![addr.parse().unwrap()],
        mac: None,
    };
    let mut hosts = vec![
        HostPlan {
            name: "client".into(),
            interfaces: vec![eth("10.0.0.10/24")],
            ..Default::default()
        },
        HostPlan {
            name: "director".into(),
            interfaces: vec![eth("10.0.0.1/24")],
            ..Default::default()
        },
    ];
    for i in 1..=3u8 {
        hosts.push(HostPlan {
            name: format!("rs{i}"),
            interfaces: vec![eth(&format!("10.0.0.{}/24", 20 + i))],
            loopback_addrs: vec![ipnet::Ipv4Net::from(VIP)],
            sysctls: vec![
                ("net.ipv4.conf.all.arp_ignore".into(), "1".into()),
                ("net.ipv4.conf.all.arp_announce".into(), "2".into()),
            ],
            ..Default::default()
        });
    }
    let plan = LabPlan {
        name: "bench-dir".into(),
        hosts,
        segments: vec!["lan".into()],
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lab = Lab::build(&plan, LabOptions::default())
            .await
            .expect("lab builds");
        let mut servers = Vec::new();
        for i in 1..=3 {
            let spec = ServerSpec {
                name: format!("rs{i}"),
                bind: SocketAddr::from(([0, 0, 0, 0], 80)),
                proto: realserver::Proto::Tcp,
                behaviour: Behaviour::Up,
            };
            servers.push(
                realserver::start(lab.host(&format!("rs{i}")).unwrap().runtime(), spec)
                    .await
                    .unwrap(),
            );
        }
        let dests = (1..=3u8)
            .map(|i| DestConfig::new(Ipv4Addr::new(10, 0, 0, 20 + i), 80, 1, Forward::Dr))
            .collect();
        let cfg = DirectorConfig {
            services: vec![(ServiceConfig::new(Proto::Tcp, VIP, 80, "rr"), dests)],
            sysctls: Sysctls::default(),
            client_iface: "eth0".into(),
            server_iface: "eth0".into(),
            fullnat_local_addrs: vec![],
        };
        let engine =
            EmbeddedEngine::start(lab.host("director").unwrap(), cfg).expect("engine starts");
        let client = lab.host("client").unwrap().runtime();
        let rate = |target: Ipv4Addr| {
            let spec = TrafficSpec {
                targets: vec![SocketAddr::from((target, 80))],
                proto: realserver::Proto::Tcp,
                requests: REQUESTS,
                mode: ConnectionMode::New,
                concurrency: 4,
                sources: vec![],
                source_port: None,
                timeout: Duration::from_secs(3),
                path: "/".into(),
                client: "client".into(),
            };
            async move {
                let start = Instant::now();
                let records = traffic::fire(client, spec, None).await;
                let ok = records.iter().filter(|r| r.is_ok()).count();
                assert_eq!(ok, REQUESTS as usize, "every request answered");
                f64::from(REQUESTS) / start.elapsed().as_secs_f64()
            }
        };
        let direct = rate(Ipv4Addr::new(10, 0, 0, 21)).await;
        let via = rate(VIP).await;
        Box::new(engine).shutdown().unwrap();
        for s in servers {
            s.stop().await;
        }
        lab.teardown().await.unwrap();
        (via, direct)
    })
}

fn main() {
    for payload in [0usize, 512, 1400] {
        let template = request(payload);
        let dr_complete = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Complete, DIRECTOR_MAC, RS_MAC)
        });
        let dr_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_dr(b, &mut ip, Csum::Partial, DIRECTOR_MAC, RS_MAC)
        });
        let rw = Rewrite {
            saddr: CLIENT,
            sport: 40000,
            daddr: RIP,
            dport: 8080,
        };
        let nat_incremental = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Complete, rw, DIRECTOR_MAC, RS_MAC)
        });
        let nat_partial = measure(&template, |b| {
            let mut ip = parsed(b);
            forward::forward_rewrite(b, &mut ip, Csum::Partial, rw, DIRECTOR_MAC, RS_MAC)
        });
        let t = Tunnel {
            outer_src: Ipv4Addr::new(10, 0, 0, 1),
            outer_dst: RIP,
            ip_id: 1,
            our_mac: DIRECTOR_MAC,
            next_hop_mac: RS_MAC,
        };
        let tun = measure(&template, |b| {
            let mut ip = parsed(b);
            match forward::encapsulate_ipip(b, &mut ip, Csum::Partial, t) {
                Some(out) => {
                    black_box(out);
                    true
                }
                None => false,
            }
        });
        println!(
            "payload {payload:>4} B: DR {:>6.2} Mpps | DR+csum {:>6.2} | NAT incr {:>6.2} | NAT+csum {:>6.2} | TUN+csum {:>6.2}",
            dr_complete / 1e6,
            dr_partial / 1e6,
            nat_incremental / 1e6,
            nat_partial / 1e6,
            tun / 1e6
        );
    }
    if nix::unistd::geteuid().is_root() {
        let (via, direct) = through_lab();
        println!("HTTP (new connection per request, 4 workers): via director {via:.0} req/s, direct {direct:.0} req/s, ratio {:.0}%", 100.0 * via / direct);
    } else {
        println!("HTTP through a lab: skipped (needs root)");
    }
}
