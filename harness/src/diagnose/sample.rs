//! Canonical evidence sets: a healthy DR lab and its classic failures. Used by the
//! rule tests and the report snapshots; `report` and docs may use them too.
//!
//! Topology: LAN 192.0.2.0/24; client c1 .10, director d1 .2, rs1..rs3 .11-.13,
//! VIP 192.0.2.100:80/tcp, scheduler rr. MACs: director 02:..:02, client 02:..:0a, rsN 02:..:1N.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use super::evidence::*;

pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
pub const DIRECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

pub fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

pub fn rip(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 10 + index)
}

pub fn link(name: &str, kind: &str, mac: Option<Mac>) -> LinkEvidence {
    LinkEvidence {
        name: name.into(),
        kind: Some(kind.into()),
        mac,
        up: true,
        mtu: Some(1500),
    }
}

pub fn addr(iface: &str, net: &str) -> IfaceAddr {
    IfaceAddr {
        iface: iface.into(),
        net: net.parse().expect("sample network"),
    }
}

pub fn sysctls(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

pub fn lan_route() -> RouteEvidence {
    RouteEvidence {
        dst: "192.0.2.0/24".parse().unwrap(),
        via: None,
        dev: Some("eth0".into()),
    }
}

pub fn director_host() -> HostEvidence {
    HostEvidence {
        name: "d1".into(),
        sysctls: sysctls(&[("net.ipv4.ip_forward", "0")]),
        links: vec![link("lo", "loopback", None), link("eth0", "veth", Some(mac(2)))],
        addresses: vec![addr("lo", "127.0.0.1/8"), addr("eth0", "192.0.2.2/24")],
        routes: vec![lan_route()],
        neighbours: vec![],
        counters: BTreeMap::new(),
        listening: Some(vec![]),
    }
}

/// A DR real server set up right: VIP/32 on lo, arp_ignore=1, arp_announce=2.
pub fn real_server(index: u8) -> RealServerEvidence {
    let name = format!("rs{index}");
    let last = 10 + index;
    let mac_last = 0x10 + index;
    RealServerEvidence {
        name: name.clone(),
        address: rip(index),
        port: None,
        weight: Some(1),
        host: HostEvidence {
            name,
            sysctls: sysctls(&[
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                ("net.ipv4.conf.eth0.arp_ignore", "0"),
                ("net.ipv4.conf.eth0.arp_announce", "0"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.eth0.rp_filter", "0"),
            ]),
            links: vec![link("lo", "loopback", None), link("eth0", "veth", Some(mac(mac_last)))],
            addresses: vec![
                addr("lo", "127.0.0.1/8"),
                addr("lo", "192.0.2.100/32"),
                addr("eth0", &format!("192.0.2.{last}/24")),
            ],
            routes: vec![lan_route()],
            neighbours: vec![],
            counters: BTreeMap::new(),
            listening: Some(vec![Listener {
                proto: Proto::Tcp,
                addr: "0.0.0.0:80".parse().unwrap(),
            }]),
        },
    }
}

pub fn client_host(vip_mac: Mac) -> ClientEvidence {
    ClientEvidence {
        name: "c1".into(),
        host: HostEvidence {
            name: "c1".into(),
            sysctls: BTreeMap::new(),
            links: vec![link("lo", "loopback", None), link("eth0", "veth", Some(mac(0x0a)))],
            addresses: vec![addr("lo", "127.0.0.1/8"), addr("eth0", "192.0.2.10/24")],
            routes: vec![lan_route()],
            neighbours: vec![NeighbourEvidence {
                ip: VIP,
                mac: Some(vip_mac),
                state: "REACHABLE".into(),
                iface: "eth0".into(),
            }],
            counters: BTreeMap::new(),
            listening: None,
        },
    }
}

pub fn dest(index: u8, inactive: u32, conns_total: u64) -> DestEvidence {
    DestEvidence {
        addr: rip(index),
        port: 80,
        weight: 1,
        active: 0,
        inactive,
        persist: 0,
        conns_total,
    }
}

/// A request from c1 on its own connection and source port, sent 10 ms after the one before.
pub fn record(n: u32, backend: &str) -> RecordEvidence {
    RecordEvidence {
        client: "c1".into(),
        source: SocketAddr::new(CLIENT.into(), 40000 + n as u16),
        backend: Some(backend.into()),
        connection: n,
        error: None,
        sent_ms: Some(f64::from(n) * 10.0),
        seen_as: None,
        target: None,
    }
}

pub fn probe(
    kind: ProbeKind,
    requests: u32,
    sources: u32,
    connections: u32,
    per_backend: &[(&str, u32)],
) -> ProbeResult {
    ProbeResult {
        kind,
        requests,
        sources,
        connections,
        per_backend: per_backend.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        errors: 0,
    }
}

/// 30 new-connection requests from c1 through a correct DR director, rr over rs1..rs3.
pub fn healthy_dr() -> Evidence {
    Evidence {
        mode: Mode::Dr,
        service: Some(ServiceEvidence {
            vip: VIP,
            port: 80,
            proto: Proto::Tcp,
            scheduler: "rr".into(),
            sched_flags: vec![],
            persistence_secs: None,
            persistence_prefix: None,
            one_packet: false,
            imported_defaults: Vec::new(),
        }),
        director: Some(director_host()),
        real_servers: (1..=3).map(real_server).collect(),
        clients: vec![client_host(mac(2))],
        ipvs: Some(IpvsEvidence {
            dests: (1..=3).map(|i| dest(i, 10, 10)).collect(),
            conns: vec![],
            templates: vec![],
            settings: sysctls(&[
                ("conn_reuse_mode", "1"),
                ("expire_nodest_conn", "0"),
                ("expire_quiescent_template", "0"),
            ]),
        }),
        director_seen_packets: Some(150),
        arp_probe: Some(ArpProbe {
            from: "c1".into(),
            replies: vec![mac(2)],
        }),
        records: (0..30).map(|n| record(n, &format!("rs{}", n % 3 + 1))).collect(),
        probes: vec![],
        health: None,
        events: vec![],
        other_directors: Vec::new(),
        vrrp: None,
        firewalls: Vec::new(),
        director_tables: Vec::new(),
        fwmark: None,
        request_body_bytes: 0,
    }
}

/// rs2 answers ARP for the VIP (arp_ignore=0, arp_announce=0): c1 learnt rs2's MAC and
/// every request bypasses the director.
pub fn arp_flux() -> Evidence {
    let mut ev = healthy_dr();
    let rs2 = &mut ev.real_servers[1].host;
    rs2.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), "0".into());
    rs2.sysctls.insert("net.ipv4.conf.all.arp_announce".into(), "0".into());
    ev.clients[0] = client_host(mac(0x12));
    ev.arp_probe = Some(ArpProbe {
        from: "c1".into(),
        replies: vec![mac(2), mac(0x12)],
    });
    ev.director_seen_packets = Some(0);
    ev.ipvs.as_mut().unwrap().dests = (1..=3).map(|i| dest(i, 0, 0)).collect();
    ev.records = (0..30).map(|n| record(n, "rs2")).collect();
    ev
}

/// `-p 360`: every connection from c1 follows its template to rs1.
pub fn persistence() -> Evidence {
    let mut ev = healthy_dr();
    let svc = ev.service.as_mut().unwrap();
    svc.persistence_secs = Some(360);
    svc.persistence_prefix = Some(32);
    let ipvs = ev.ipvs.as_mut().unwrap();
    ipvs.dests = vec![dest(1, 30, 30), dest(2, 0, 0), dest(3, 0, 0)];
    ipvs.dests[0].persist = 1;
    ipvs.templates = vec![TemplateEvidence {
        client: CLIENT,
        dest: rip(1),
        expires_secs: Some(355),
    }];
    ev.records = (0..30).map(|n| record(n, "rs1")).collect();
    ev.probes = vec![probe(
        ProbeKind::ManySources,
        12,
        4,
        12,
        &[("rs1", 6), ("rs2", 3), ("rs3", 3)],
    )];
    ev
}

/// All 30 requests over one kept-alive connection; a new-connection probe spreads.
pub fn keepalive() -> Evidence {
    let mut ev = healthy_dr();
    ev.ipvs.as_mut().unwrap().dests = vec![dest(1, 1, 1), dest(2, 0, 0), dest(3, 0, 0)];
    ev.ipvs.as_mut().unwrap().dests[0].active = 1;
    ev.ipvs.as_mut().unwrap().dests[0].inactive = 0;
    ev.records = (0..30)
        .map(|n| RecordEvidence {
            source: SocketAddr::new(CLIENT.into(), 40000),
            connection: 0,
            ..record(n, "rs1")
        })
        .collect();
    ev.probes = vec![
        probe(ProbeKind::NewConn, 30, 1, 30, &[("rs1", 10), ("rs2", 10), ("rs3", 10)]),
        probe(ProbeKind::Keepalive, 30, 1, 1, &[("rs1", 30)]),
    ];
    ev
}

/// An `[[event]]` as it fired: its action took effect a few ms after its moment.
pub fn event(name: &str, host: &str, action: &str, effect: FaultEffect, due_ms: f64, done_ms: f64) -> EventEvidence {
    EventEvidence {
        name: name.into(),
        host: host.into(),
        action: action.into(),
        effect,
        due_ms,
        done_ms,
        error: None,
    }
}

/// rr over rs1..rs3, 300 requests 10 ms apart; with "rs2-dies" at 1000 ms and "rs2-back" at
/// 2000 ms; `failing` says which of the requests rs2 would have answered were refused.
fn rs2_outage(failing: impl Fn(u32) -> bool) -> Evidence {
    let mut ev = healthy_dr();
    ev.records = (0..300)
        .map(|n| {
            let mut r = record(n, &format!("rs{}", n % 3 + 1));
            if n % 3 == 1 && failing(n) {
                r.backend = None;
                r.error = Some("connection refused".into());
            }
            r
        })
        .collect();
    ev.ipvs.as_mut().unwrap().dests = (1..=3).map(|i| dest(i, 100, 100)).collect();
    // Five frames per request, as in `healthy_dr`.
    ev.director_seen_packets = Some(1500);
    ev.events = vec![
        event("rs2-dies", "rs2", "stop", FaultEffect::Down, 1000.0, 1002.0),
        event("rs2-back", "rs2", "start", FaultEffect::Back, 2000.0, 2003.0),
    ];
    ev
}

/// rs2 stops mid-run and starts again, with no health checker: IPVS keeps sending it its third.
pub fn server_dies() -> Evidence {
    rs2_outage(|n| (100..=200).contains(&n))
}

/// keepalived's TCP_CHECK (delay_loop 1 s, connect_timeout 1 s, retry 0) on every server.
pub fn tcp_checker(index: u8) -> CheckerEvidence {
    CheckerEvidence {
        server: format!("rs{index}"),
        kind: Some("TCP_CHECK".into()),
        connect: std::net::SocketAddrV4::new(rip(index), 80),
        path: None,
        command: None,
        delay_loop_secs: 1.0,
        connect_timeout_secs: 1.0,
        retry: 0,
        delay_before_retry_secs: 1.0,
        inhibit_on_failure: false,
    }
}

/// A keepalived log line, about `server` if given.
pub fn log_line(at_ms: f64, line: &str, server: Option<&str>) -> HealthLogLine {
    HealthLogLine {
        at_ms,
        line: line.into(),
        server: server.map(Into::into),
    }
}

/// A table change by the checkers.
pub fn change(at_ms: f64, index: u8, op: &str, weight: Option<u32>, sorry: bool) -> HealthChange {
    HealthChange {
        at_ms,
        dest: SocketAddr::new(rip(index).into(), 80),
        server: Some(format!("rs{index}")),
        sorry,
        op: op.into(),
        weight,
    }
}

/// `server_dies` under TCP_CHECK: rs2 is removed at 1500 ms, and re-added at 2300 ms; until the
/// removal its share is refused, meanwhile rs1 and rs3 take everything.
pub fn checker_takes_out() -> Evidence {
    let mut ev = rs2_outage(|n| (100..150).contains(&n));
    // Out of the table from 1500 ms to 2300 ms: rs1 and rs3 take turns.
    for r in ev.records.iter_mut().filter(|r| r.error.is_none()) {
        let n = r.connection;
        if (150..230).contains(&n) {
            r.backend = Some(if n % 2 == 0 { "rs1" } else { "rs3" }.into());
        }
    }
    ev.health = Some(HealthEvidence {
        service: "tcp/80".into(),
        director: "d1".into(),
        checkers: (1..=3).map(tcp_checker).collect(),
        log: vec![
            log_line(1500.0, "TCP_CHECK on service [192.0.2.12]:tcp:80 failed.", Some("rs2")),
            log_line(
                1500.0,
                "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
                Some("rs2"),
            ),
            log_line(2300.0, "TCP connection to [192.0.2.12]:tcp:80 success.", Some("rs2")),
            log_line(
                2300.0,
                "Adding service [192.0.2.12]:tcp:80 to VS [192.0.2.100]:tcp:80",
                Some("rs2"),
            ),
        ],
        changes: vec![
            change(1500.0, 2, "remove", None, false),
            change(2300.0, 2, "add", Some(1), false),
        ],
        failures: vec![CheckFailure {
            at_ms: 1500.0,
            server: "rs2".into(),
            reason: CheckFailReason::ConnectRefused,
        }],
        outages: vec![OutageEvidence {
            server: "rs2".into(),
            down_event: "rs2-dies".into(),
            down_at_ms: 1002.0,
            removed_after_ms: Some(498.0),
            failed_meanwhile: 17,
            up_event: Some("rs2-back".into()),
            restored_after_ms: Some(298.0),
        }],
        quorum: 1,
        hysteresis: 0,
        sorry_server: None,
        out_at_end: vec![],
    });
    ev
}

/// rs1 and rs2 refuse; TCP_CHECK takes both out before the traffic, quorum (1) is lost and
/// the sorry server rs3 answers everything.
pub fn sorry_server() -> Evidence {
    let mut ev = healthy_dr();
    for rs in &mut ev.real_servers[..2] {
        rs.host.listening = Some(vec![]);
    }
    ev.ipvs.as_mut().unwrap().dests = vec![dest(3, 30, 30)];
    ev.records = (0..30).map(|n| record(n, "rs3")).collect();
    ev.health = Some(HealthEvidence {
        service: "tcp/80".into(),
        director: "d1".into(),
        checkers: (1..=2).map(tcp_checker).collect(),
        log: vec![
            log_line(-1200.0, "TCP_CHECK on service [192.0.2.11]:tcp:80 failed.", Some("rs1")),
            log_line(
                -1200.0,
                "Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.100]:tcp:80",
                Some("rs1"),
            ),
            log_line(-1000.0, "TCP_CHECK on service [192.0.2.12]:tcp:80 failed.", Some("rs2")),
            log_line(
                -1000.0,
                "Removing service [192.0.2.12]:tcp:80 from VS [192.0.2.100]:tcp:80",
                Some("rs2"),
            ),
            log_line(-1000.0, "Lost quorum 1-0=1 > 0 for VS [192.0.2.100]:tcp:80", None),
            log_line(
                -1000.0,
                "Adding sorry server [192.0.2.13]:tcp:80 to VS [192.0.2.100]:tcp:80",
                Some("rs3"),
            ),
        ],
        changes: vec![
            change(-1200.0, 1, "remove", None, false),
            change(-1000.0, 2, "remove", None, false),
            change(-1000.0, 3, "add", Some(1), true),
        ],
        failures: [(-1200.0, 1), (-1000.0, 2)]
            .into_iter()
            .map(|(at_ms, i)| CheckFailure {
                at_ms,
                server: format!("rs{i}"),
                reason: CheckFailReason::ConnectRefused,
            })
            .collect(),
        outages: vec![],
        quorum: 1,
        hysteresis: 0,
        sorry_server: Some(SorryServerEvidence {
            addr: std::net::SocketAddrV4::new(rip(3), 80),
            name: Some("rs3".into()),
        }),
        out_at_end: vec!["rs1".into(), "rs2".into()],
    });
    ev
}
