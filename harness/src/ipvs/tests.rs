//! Facade tests: whole packets through `Ipvs`, with a fake clock.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::*;

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

fn rs(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 16, 0, n)
}

fn client(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, n)
}

struct Clock(Instant);
impl Clock {
    fn at(&self, secs: u64) -> Instant {
        self.0 + Duration::from_secs(secs)
    }
}

fn flags(s: &str) -> TcpFlags {
    TcpFlags {
        syn: s.contains('S'),
        ack: s.contains('A'),
        fin: s.contains('F'),
        rst: s.contains('R'),
    }
}

fn tcp_in(c: Ipv4Addr, sport: u16, f: &str) -> PacketIn {
    PacketIn {
        proto: Proto::Tcp,
        saddr: c,
        sport,
        daddr: VIP,
        dport: 80,
        tcp: Some(flags(f)),
        len: 60,
    }
}

fn udp_in(c: Ipv4Addr, sport: u16) -> PacketIn {
    PacketIn {
        proto: Proto::Udp,
        saddr: c,
        sport,
        daddr: VIP,
        dport: 53,
        tcp: None,
        len: 100,
    }
}

fn setup(sched: Scheduler, fwd: Forward, n: u8, edit: impl FnOnce(&mut ServiceConfig)) -> (Ipvs, ServiceId) {
    let mut ipvs = Ipvs::new(Sysctls::default());
    let mut cfg = ServiceConfig::new(Proto::Tcp, VIP, 80, sched);
    edit(&mut cfg);
    let svc = ipvs.add_service(cfg).unwrap();
    for i in 1..=n {
        ipvs.add_dest(svc, DestConfig::new(rs(i), 80, 1, fwd)).unwrap();
    }
    (ipvs, svc)
}

/// Destination chosen (last octet) or 0 for anything but Forward.
fn dest_of(v: InVerdict) -> u8 {
    match v {
        InVerdict::Forward { dest, .. } => dest.octets()[3],
        _ => 0,
    }
}

fn conn_of(v: InVerdict) -> ConnId {
    match v {
        InVerdict::Forward { conn, .. } => conn,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn dest_counts(ipvs: &Ipvs, now: Instant, n: u8) -> (u32, u32, u32) {
    let snap = ipvs.snapshot(now);
    let d = snap.services[0].dests.iter().find(|d| d.addr == rs(n)).unwrap();
    (d.active_conns, d.inact_conns, d.persist_conns)
}

#[test]
fn rr_newest_first_through_facade() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 3, |_| {});
    let picks: Vec<u8> = (0..6)
        .map(|i| dest_of(ipvs.process_in(&tcp_in(client(1), 1000 + i, "S"), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![3, 2, 1, 3, 2, 1]);
}

#[test]
fn unknown_scheduler_and_bad_config_are_errors() {
    let mut ipvs = Ipvs::new(Sysctls::default());
    let err = "rrr".parse::<Scheduler>().unwrap_err();
    assert!(err.to_string().contains("wlc"), "{err}");
    assert_eq!(
        ipvs.add_service(ServiceConfig::new(Proto::Tcp, VIP, 0, Scheduler::Rr)),
        Err(IpvsError::PortZeroNotPersistent)
    );
    let svc = ipvs
        .add_service(ServiceConfig::new(Proto::Tcp, VIP, 80, Scheduler::Rr))
        .unwrap();
    let mut d = DestConfig::new(rs(1), 80, 1, Forward::Dr);
    d.upper_threshold = 5;
    d.lower_threshold = 6;
    assert!(matches!(ipvs.add_dest(svc, d), Err(IpvsError::ThresholdRange { .. })));
    ipvs.add_dest(svc, DestConfig::new(rs(1), 80, 1, Forward::Dr)).unwrap();
    assert_eq!(
        ipvs.add_dest(svc, DestConfig::new(rs(1), 80, 1, Forward::Dr)),
        Err(IpvsError::DestExists(rs(1), 80))
    );
    assert_eq!(
        ipvs.del_dest(svc, rs(9), 80, Instant::now()),
        Err(IpvsError::NoSuchDest(rs(9), 80))
    );
    assert!(ipvs.is_vip(VIP) && !ipvs.is_vip(rs(1)));
}

#[test]
fn not_service_and_stray_ack() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 1, |_| {});
    let mut p = tcp_in(client(1), 1000, "S");
    p.dport = 81;
    assert_eq!(ipvs.process_in(&p, clk.at(0)), InVerdict::NotService);
    // A non-SYN without an entry is not scheduled (kernel: local stack).
    assert_eq!(
        ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0)),
        InVerdict::NotService
    );
    assert_eq!(ipvs.conn_count(), 0);
    // sloppy_tcp schedules it.
    ipvs.set_sysctls(Sysctls {
        sloppy_tcp: true,
        ..Sysctls::default()
    });
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0))), 1);
}

#[test]
fn dr_tcp_states_counts_and_timeouts() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 1, |_| {});
    let v = ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0));
    assert!(matches!(
        v,
        InVerdict::Forward {
            new: true,
            forward: Forward::Dr,
            dport: 80,
            ..
        }
    ));
    let id = conn_of(v);
    assert_eq!(ipvs.conn(id).unwrap().state, ConnState::Tcp(TcpState::SynRecv));
    assert_eq!(dest_counts(&ipvs, clk.at(0), 1), (1, 0, 0));
    let snap = ipvs.snapshot(clk.at(0));
    assert_eq!(snap.conns[0].expires, 60);
    let v = ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(1));
    assert!(matches!(v, InVerdict::Forward { new: false, .. }));
    assert_eq!(ipvs.conn(id).unwrap().state, ConnState::Tcp(TcpState::Established));
    assert_eq!(ipvs.snapshot(clk.at(1)).conns[0].expires, 900);
    ipvs.process_in(&tcp_in(client(1), 1000, "FA"), clk.at(2));
    assert_eq!(ipvs.conn(id).unwrap().state, ConnState::Tcp(TcpState::FinWait));
    assert_eq!(dest_counts(&ipvs, clk.at(2), 1), (0, 1, 0));
    // FIN_WAIT is an idle timer of 120 s.
    ipvs.expire(clk.at(121));
    assert_eq!(ipvs.conn_count(), 1);
    ipvs.expire(clk.at(122));
    assert_eq!(ipvs.conn_count(), 0);
    assert_eq!(dest_counts(&ipvs, clk.at(122), 1), (0, 0, 0));
}

#[test]
fn nat_reverse_path_and_states() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Nat, 1, |_| {});
    ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0));
    let reply = PacketOut {
        proto: Proto::Tcp,
        saddr: rs(1),
        sport: 80,
        daddr: client(1),
        dport: 1000,
        tcp: Some(flags("SA")),
        len: 60,
    };
    match ipvs.process_out(&reply, clk.at(0)) {
        OutVerdict::Rewrite {
            saddr,
            sport,
            daddr,
            dport,
            ..
        } => {
            assert_eq!((saddr, sport, daddr, dport), (VIP, 80, client(1), 1000));
        }
        OutVerdict::NotOurs => panic!("reply not matched"),
    }
    let stray = PacketOut { sport: 81, ..reply };
    assert_eq!(ipvs.process_out(&stray, clk.at(0)), OutVerdict::NotOurs);
    ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0));
    // Client closes first: CLOSE_WAIT, then server FIN → TIME_WAIT.
    ipvs.process_in(&tcp_in(client(1), 1000, "FA"), clk.at(1));
    ipvs.process_out(
        &PacketOut {
            tcp: Some(flags("FA")),
            ..reply
        },
        clk.at(1),
    );
    let snap = ipvs.snapshot(clk.at(1));
    assert_eq!(snap.conns[0].state, "TIME_WAIT");
    assert_eq!(snap.services[0].stats.outpkts, 2);
    assert_eq!(snap.services[0].dests[0].stats.inbytes, 180);
}

#[test]
fn fullnat_allocates_local_source_and_reverses() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::FullNat, 1, |_| {});
    assert_eq!(
        ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)),
        InVerdict::Drop(DropReason::NoLocalAddress)
    );
    let laddr = Ipv4Addr::new(172, 16, 0, 254);
    ipvs.set_fullnat_local_addrs(vec![laddr]);
    let v1 = ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0));
    let v2 = ipvs.process_in(&tcp_in(client(2), 1000, "S"), clk.at(0));
    let (InVerdict::Forward { snat: Some(s1), .. }, InVerdict::Forward { snat: Some(s2), .. }) = (v1, v2) else {
        panic!("no snat: {v1:?} {v2:?}");
    };
    assert_eq!(s1.0, laddr);
    assert_ne!(s1, s2, "two connections share a local port");
    let reply = PacketOut {
        proto: Proto::Tcp,
        saddr: rs(1),
        sport: 80,
        daddr: s2.0,
        dport: s2.1,
        tcp: Some(flags("SA")),
        len: 60,
    };
    match ipvs.process_out(&reply, clk.at(0)) {
        OutVerdict::Rewrite {
            saddr,
            sport,
            daddr,
            dport,
            ..
        } => {
            assert_eq!((saddr, sport, daddr, dport), (VIP, 80, client(2), 1000));
        }
        OutVerdict::NotOurs => panic!("fullnat reply not matched"),
    }
}

#[test]
fn conn_reuse_mode_reschedules_time_wait_and_dr_fin_wait() {
    let clk = Clock(Instant::now());
    // NAT entry in TIME_WAIT: a new SYN on the same client port is rescheduled.
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Nat, 2, |_| {});
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
    let reply = PacketOut {
        proto: Proto::Tcp,
        saddr: rs(first),
        sport: 80,
        daddr: client(1),
        dport: 1000,
        tcp: Some(flags("SA")),
        len: 60,
    };
    ipvs.process_out(&reply, clk.at(0));
    ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0));
    ipvs.process_out(
        &PacketOut {
            tcp: Some(flags("FA")),
            ..reply
        },
        clk.at(1),
    );
    ipvs.process_in(&tcp_in(client(1), 1000, "FA"), clk.at(1));
    assert_eq!(ipvs.snapshot(clk.at(1)).conns[0].state, "TIME_WAIT");
    let v = ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(2));
    assert!(matches!(v, InVerdict::Forward { new: true, .. }));
    assert_ne!(dest_of(v), first, "rr moves on");
    assert_eq!(ipvs.conn_count(), 1);

    // DR ends in FIN_WAIT: mode 1 keeps the old entry, mode 3 reschedules.
    for (mode, expect_new) in [(1u8, false), (3, true), (0, false)] {
        let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 2, |_| {});
        ipvs.set_sysctls(Sysctls {
            conn_reuse_mode: mode,
            ..Sysctls::default()
        });
        let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
        ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0));
        ipvs.process_in(&tcp_in(client(1), 1000, "FA"), clk.at(1));
        let v = ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(2));
        assert!(
            matches!(v, InVerdict::Forward { new, .. } if new == expect_new),
            "mode {mode}: {v:?}"
        );
        assert_eq!(dest_of(v) != first, expect_new, "mode {mode}");
    }
}

#[test]
fn deleted_dest_and_expire_nodest_conn() {
    let clk = Clock(Instant::now());
    for expire_nodest in [false, true] {
        let (mut ipvs, svc) = setup(Scheduler::Rr, Forward::Dr, 2, |_| {});
        ipvs.set_sysctls(Sysctls {
            expire_nodest_conn: expire_nodest,
            ..Sysctls::default()
        });
        let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
        ipvs.del_dest(svc, rs(first), 80, clk.at(0)).unwrap();
        // Linux ≥ 5.10 flushes a deleted destination's entries at once with expire_nodest_conn.
        assert_eq!(ipvs.conn_count(), usize::from(!expire_nodest));
        let v = ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(1));
        if expire_nodest {
            // Entry gone; a bare ACK is not scheduled.
            assert_eq!(v, InVerdict::NotService);
            assert_eq!(ipvs.conn_count(), 0);
        } else {
            assert_eq!(v, InVerdict::Drop(DropReason::DestUnavailable));
        }
    }
    // Weight 0 + expire_nodest_conn: a SYN on the old entry is rescheduled.
    let (mut ipvs, svc) = setup(Scheduler::Rr, Forward::Dr, 2, |_| {});
    ipvs.set_sysctls(Sysctls {
        expire_nodest_conn: true,
        ..Sysctls::default()
    });
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
    ipvs.edit_dest(svc, DestConfig::new(rs(first), 80, 0, Forward::Dr))
        .unwrap();
    let v = ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(1));
    assert!(matches!(v, InVerdict::Forward { new: true, .. }));
    assert_ne!(dest_of(v), first);
}

#[test]
fn weight_zero_gets_no_new_connections_but_keeps_old() {
    let clk = Clock(Instant::now());
    let (mut ipvs, svc) = setup(Scheduler::Wlc, Forward::Dr, 2, |_| {});
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
    ipvs.edit_dest(svc, DestConfig::new(rs(first), 80, 0, Forward::Dr))
        .unwrap();
    assert_eq!(
        dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(1))),
        first
    );
    for p in 0..5 {
        assert_ne!(
            dest_of(ipvs.process_in(&tcp_in(client(2), 2000 + p, "S"), clk.at(1))),
            first
        );
    }
}

#[test]
fn wlc_spreads_by_active_connections() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Wlc, Forward::Dr, 3, |_| {});
    let picks: Vec<u8> = (0..6)
        .map(|p| dest_of(ipvs.process_in(&tcp_in(client(1), 3000 + p, "S"), clk.at(0))))
        .collect();
    // Ties go to the newest (.3); each SYN_RECV adds 256 to its dest.
    assert_eq!(picks, vec![3, 2, 1, 3, 2, 1]);
}

#[test]
fn overload_threshold_diverts_and_clears() {
    let clk = Clock(Instant::now());
    let mut ipvs = Ipvs::new(Sysctls::default());
    let svc = ipvs
        .add_service(ServiceConfig::new(Proto::Tcp, VIP, 80, Scheduler::Fo))
        .unwrap();
    ipvs.add_dest(svc, DestConfig::new(rs(1), 80, 1, Forward::Dr)).unwrap();
    let mut big = DestConfig::new(rs(2), 80, 10, Forward::Dr);
    big.upper_threshold = 2;
    ipvs.add_dest(svc, big).unwrap();
    let picks: Vec<u8> = (0..3)
        .map(|p| dest_of(ipvs.process_in(&tcp_in(client(1), 4000 + p, "S"), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![2, 2, 1]);
    assert!(ipvs.snapshot(clk.at(0)).services[0].dests.iter().any(|d| d.overloaded));
    // Both .2 entries expire (SYN_RECV 60 s): 0*4 < 2*3 clears the flag.
    ipvs.expire(clk.at(61));
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(1), 5000, "S"), clk.at(61))), 2);
}

#[test]
fn persistence_netmask_24_vs_32() {
    let clk = Clock(Instant::now());
    let pers = |mask: Ipv4Addr| {
        move |c: &mut ServiceConfig| {
            c.persistence = Some(Duration::from_secs(300));
            c.persistence_netmask = mask;
        }
    };
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 3, pers(Ipv4Addr::new(255, 255, 255, 0)));
    let picks: Vec<u8> = (1..=4)
        .map(|c| dest_of(ipvs.process_in(&tcp_in(client(c), 1000, "S"), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![3, 3, 3, 3], "one /24 → one template");
    let snap = ipvs.snapshot(clk.at(0));
    let tpl: Vec<_> = snap.conns.iter().filter(|c| c.template).collect();
    assert_eq!(tpl.len(), 1);
    assert_eq!(tpl[0].from, "192.168.1.0:0".parse().unwrap());
    assert_eq!(tpl[0].state, "NONE");
    assert_eq!(dest_counts(&ipvs, clk.at(0), 3), (4, 0, 1));

    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 3, pers(Ipv4Addr::BROADCAST));
    let picks: Vec<u8> = (1..=4)
        .map(|c| dest_of(ipvs.process_in(&tcp_in(client(c), 1000, "S"), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![3, 2, 1, 3]);
    // Same client again, other port: sticks.
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(2), 2000, "S"), clk.at(1))), 2);
}

#[test]
fn template_expiry_and_busy_rearm() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 2, |c| {
        c.persistence = Some(Duration::from_secs(300))
    });
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
    ipvs.process_in(&tcp_in(client(1), 1000, "A"), clk.at(0)); // ESTABLISHED, 900 s
    let tpl = |ipvs: &Ipvs, t| ipvs.snapshot(t).conns.into_iter().find(|c| c.template).unwrap();
    assert_eq!(tpl(&ipvs, clk.at(0)).state, "ASSURED");
    // Template timer fires at 300 s while it controls a connection → +60 s.
    ipvs.expire(clk.at(300));
    assert_eq!(tpl(&ipvs, clk.at(300)).expires, 60);
    // A new connection re-arms it with the (now permanent) 60 s timeout.
    assert_eq!(
        dest_of(ipvs.process_in(&tcp_in(client(1), 1001, "S"), clk.at(330))),
        first
    );
    assert_eq!(tpl(&ipvs, clk.at(330)).expires, 60);
    // Kill both connections with RST (CLOSE, 10 s; a RST in SYN_RECV would
    // leave it in SYN_RECV, so establish first); the template follows at
    // its next firing.
    ipvs.process_in(&tcp_in(client(1), 1001, "A"), clk.at(330));
    ipvs.process_in(&tcp_in(client(1), 1000, "R"), clk.at(331));
    ipvs.process_in(&tcp_in(client(1), 1001, "R"), clk.at(331));
    ipvs.expire(clk.at(389));
    assert_eq!(ipvs.conn_count(), 1, "only the template is left");
    ipvs.expire(clk.at(390));
    assert_eq!(ipvs.conn_count(), 0);
    assert_eq!(dest_counts(&ipvs, clk.at(390), first), (0, 0, 0));
    // Fresh template: rr goes on to the other server.
    assert_ne!(
        dest_of(ipvs.process_in(&tcp_in(client(1), 1002, "S"), clk.at(400))),
        first
    );
}

#[test]
fn template_lazily_expires_on_lookup() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 2, |c| {
        c.persistence = Some(Duration::from_secs(30))
    });
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "R"), clk.at(0)));
    assert_eq!(first, 0, "RST never schedules");
    let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
    ipvs.process_in(&tcp_in(client(1), 1000, "R"), clk.at(0)); // CLOSE 10 s
                                                               // No expire() call: the lookup at 100 s finds the template dead.
    assert_ne!(
        dest_of(ipvs.process_in(&tcp_in(client(1), 1001, "S"), clk.at(100))),
        first
    );
}

#[test]
fn quiesced_template_dest_and_expire_quiescent_template() {
    let clk = Clock(Instant::now());
    for eqt in [false, true] {
        let (mut ipvs, svc) = setup(Scheduler::Rr, Forward::Dr, 2, |c| {
            c.persistence = Some(Duration::from_secs(300))
        });
        ipvs.set_sysctls(Sysctls {
            expire_quiescent_template: eqt,
            ..Sysctls::default()
        });
        let first = dest_of(ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0)));
        ipvs.edit_dest(svc, DestConfig::new(rs(first), 80, 0, Forward::Dr))
            .unwrap();
        let again = dest_of(ipvs.process_in(&tcp_in(client(1), 1001, "S"), clk.at(1)));
        assert_eq!(again == first, !eqt, "expire_quiescent_template={eqt}");
    }
}

#[test]
fn port_zero_persistent_service_shares_template() {
    let clk = Clock(Instant::now());
    let mut ipvs = Ipvs::new(Sysctls::default());
    let mut cfg = ServiceConfig::new(Proto::Tcp, VIP, 0, Scheduler::Rr);
    cfg.persistence = Some(Duration::from_secs(360));
    let svc = ipvs.add_service(cfg).unwrap();
    for i in 1..=2 {
        ipvs.add_dest(svc, DestConfig::new(rs(i), 0, 1, Forward::Nat)).unwrap();
    }
    let mut p = tcp_in(client(1), 1000, "S");
    let a = ipvs.process_in(&p, clk.at(0));
    p.dport = 443;
    p.sport = 1001;
    let b = ipvs.process_in(&p, clk.at(0));
    let (
        InVerdict::Forward {
            dest: d1, dport: p1, ..
        },
        InVerdict::Forward {
            dest: d2, dport: p2, ..
        },
    ) = (a, b)
    else {
        panic!("{a:?} {b:?}")
    };
    assert_eq!((d1, p1, d2, p2), (rs(2), 80, rs(2), 443));
    let snap = ipvs.snapshot(clk.at(0));
    let tpl: Vec<_> = snap.conns.iter().filter(|c| c.template).collect();
    assert_eq!(tpl.len(), 1);
    assert_eq!(tpl[0].to.port(), 0);
}

#[test]
fn udp_one_packet_and_plain() {
    let clk = Clock(Instant::now());
    let mut ipvs = Ipvs::new(Sysctls::default());
    let mut cfg = ServiceConfig::new(Proto::Udp, VIP, 53, Scheduler::Rr);
    cfg.one_packet = true;
    let svc = ipvs.add_service(cfg).unwrap();
    for i in 1..=2 {
        ipvs.add_dest(svc, DestConfig::new(rs(i), 53, 1, Forward::Nat)).unwrap();
    }
    let picks: Vec<u8> = (0..4)
        .map(|_| dest_of(ipvs.process_in(&udp_in(client(1), 5353), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![2, 1, 2, 1], "ops: every datagram scheduled");
    assert_eq!(ipvs.conn_count(), 0);
    let snap = ipvs.snapshot(clk.at(0));
    assert_eq!(snap.services[0].stats.conns, 4);
    assert_eq!(snap.services[0].dests[0].inact_conns, 0);

    let mut ipvs = Ipvs::new(Sysctls::default());
    let svc = ipvs
        .add_service(ServiceConfig::new(Proto::Udp, VIP, 53, Scheduler::Rr))
        .unwrap();
    for i in 1..=2 {
        ipvs.add_dest(svc, DestConfig::new(rs(i), 53, 1, Forward::Dr)).unwrap();
    }
    let picks: Vec<u8> = (0..4)
        .map(|_| dest_of(ipvs.process_in(&udp_in(client(1), 5353), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![2, 2, 2, 2], "one flow = one entry");
    let snap = ipvs.snapshot(clk.at(0));
    assert_eq!(snap.conns[0].state, "UDP");
    assert_eq!(snap.conns[0].expires, 300);
    assert_eq!(
        (
            snap.services[0].dests[0].active_conns,
            snap.services[0].dests[0].inact_conns
        ),
        (0, 1)
    );
    assert_eq!(snap.services[0].dests[0].stats.inpkts, 4);
}

#[test]
fn sh_through_facade_is_sticky() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Sh, Forward::Dr, 3, |_| {});
    let c = Ipv4Addr::new(10, 0, 0, 2); // bucket 137 → 137 % 3 = 2 → oldest (.1)
    let picks: Vec<u8> = (0..3)
        .map(|p| dest_of(ipvs.process_in(&tcp_in(c, 1000 + p, "S"), clk.at(0))))
        .collect();
    assert_eq!(picks, vec![1, 1, 1]);
}

#[test]
fn list_text_matches_ipvsadm_sample_1() {
    let clk = Clock(Instant::now());
    let mut ipvs = Ipvs::new(Sysctls::default());
    let vip = Ipv4Addr::new(172, 16, 10, 30);
    let mut cfg = ServiceConfig::new(Proto::Tcp, vip, 3128, Scheduler::Wrr);
    cfg.persistence = Some(Duration::from_secs(5));
    let svc = ipvs.add_service(cfg).unwrap();
    // Added in reverse so the listing's sort is exercised.
    ipvs.add_dest(
        svc,
        DestConfig::new(Ipv4Addr::new(172, 128, 10, 32), 3128, 1, Forward::Dr),
    )
    .unwrap();
    ipvs.add_dest(
        svc,
        DestConfig::new(Ipv4Addr::new(172, 128, 10, 31), 3128, 1, Forward::Dr),
    )
    .unwrap();
    ipvs.del_dest(svc, Ipv4Addr::new(172, 128, 10, 31), 3128, Instant::now())
        .unwrap();
    for p in 0..3 {
        let pkt = PacketIn {
            proto: Proto::Tcp,
            saddr: client(1),
            sport: 1000 + p,
            daddr: vip,
            dport: 3128,
            tcp: Some(flags("S")),
            len: 60,
        };
        assert_eq!(dest_of(ipvs.process_in(&pkt, clk.at(0))), 32);
    }
    ipvs.add_dest(
        svc,
        DestConfig::new(Ipv4Addr::new(172, 128, 10, 31), 3128, 1, Forward::Dr),
    )
    .unwrap();
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.10.30:3128 wrr persistent 5
  -> 172.128.10.31:3128           Route   1      0          0         
  -> 172.128.10.32:3128           Route   1      3          0         
";
    assert_eq!(ipvs.snapshot(clk.at(0)).list_text(), expected);
}

#[test]
fn list_text_flags_mask_ops_and_sort_quirk() {
    let mut ipvs = Ipvs::new(Sysctls::default());
    let mut cfg = ServiceConfig::new(Proto::Udp, Ipv4Addr::new(10, 0, 0, 10), 53, Scheduler::Rr);
    cfg.persistence = Some(Duration::from_secs(360));
    cfg.persistence_netmask = Ipv4Addr::new(255, 255, 255, 0);
    cfg.one_packet = true;
    ipvs.add_service(cfg).unwrap();
    let mut cfg = ServiceConfig::new(Proto::Tcp, Ipv4Addr::new(207, 175, 44, 110), 8080, Scheduler::Sh);
    cfg.flags.sh_fallback = true;
    cfg.flags.sh_port = true;
    let s = ipvs.add_service(cfg).unwrap();
    ipvs.add_dest(s, DestConfig::new(Ipv4Addr::new(10, 0, 0, 10), 8080, 2, Forward::Nat))
        .unwrap();
    ipvs.add_dest(
        s,
        DestConfig::new(Ipv4Addr::new(207, 175, 44, 111), 8080, 1, Forward::Tun),
    )
    .unwrap();
    let text = ipvs.snapshot(Instant::now()).list_text();
    let lines: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(
        lines,
        vec![
            "TCP  207.175.44.110:8080 sh (sh-fallback,sh-port)",
            // Wrapping difference: 10.0.0.10 sorts after 207.175.44.111.
            "  -> 207.175.44.111:8080          Tunnel  1      0          0         ",
            "  -> 10.0.0.10:8080               Masq    2      0          0         ",
            "UDP  10.0.0.10:53 rr persistent 360 mask 255.255.255.0 ops",
        ]
    );
}

#[test]
fn stats_text_matches_ipvsadm_sample_9_layout() {
    let snap = IpvsSnapshot {
        conn_tab_size: 4096,
        services: vec![ServiceSnapshot {
            id: 0,
            proto: Proto::Tcp,
            vip: Ipv4Addr::new(10, 3, 0, 42),
            port: 80,
            scheduler: "rr".into(),
            flags: SchedFlags::default(),
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            one_packet: false,
            stats: Counters {
                conns: 14209,
                inpkts: 111769,
                outpkts: 74613,
                inbytes: 7207174,
                outbytes: 8334358,
            },
            rates: Default::default(),
            dests: vec![DestSnapshot {
                addr: Ipv4Addr::new(10, 2, 1, 22),
                port: 80,
                forward: Forward::Nat,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
                active_conns: 0,
                inact_conns: 0,
                persist_conns: 0,
                overloaded: false,
                local_node: false,
                stats: Counters {
                    conns: 2,
                    inpkts: 12,
                    outpkts: 8,
                    inbytes: 774,
                    outbytes: 123_456_789_012,
                },
                rates: Default::default(),
            }],
            fwmark: 0,
        }],
        conns: vec![],
    };
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.3.0.42:80                    14209   111769    74613  7207174  8334358
  -> 10.2.1.22:80                        2       12        8      774     123G
";
    assert_eq!(snap.stats_text(), expected);
}

#[test]
fn conns_text_matches_ipvsadm_layout() {
    let clk = Clock(Instant::now());
    let mut ipvs = Ipvs::new(Sysctls::default());
    let vip = Ipv4Addr::new(192, 168, 175, 100);
    let mut cfg = ServiceConfig::new(Proto::Tcp, vip, 80, Scheduler::Rr);
    cfg.persistence = Some(Duration::from_secs(300));
    let svc = ipvs.add_service(cfg).unwrap();
    ipvs.add_dest(
        svc,
        DestConfig::new(Ipv4Addr::new(192, 168, 175, 102), 80, 1, Forward::Dr),
    )
    .unwrap();
    let c = Ipv4Addr::new(192, 168, 175, 30);
    let pkt = |f: &str| PacketIn {
        proto: Proto::Tcp,
        saddr: c,
        sport: 41724,
        daddr: vip,
        dport: 80,
        tcp: Some(flags(f)),
        len: 60,
    };
    ipvs.process_in(&pkt("S"), clk.at(0));
    ipvs.process_in(&pkt("FA"), clk.at(0));
    // Sample 17 (template NONE because the SYN→FIN path never established).
    let expected = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 04:55  NONE        192.168.175.30:0   192.168.175.100:80 192.168.175.102:80
TCP 01:55  TIME_WAIT   192.168.175.30:41724 192.168.175.100:80 192.168.175.102:80
";
    assert_eq!(
        ipvs.snapshot(clk.at(4) + Duration::from_millis(500)).conns_text(),
        expected
    );
}

#[test]
fn snapshot_serialises() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Dr, 1, |_| {});
    ipvs.process_in(&tcp_in(client(1), 1000, "S"), clk.at(0));
    let json = serde_json::to_string(&ipvs.snapshot(clk.at(0))).unwrap();
    let back: IpvsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ipvs.snapshot(clk.at(0)));
    assert!(json.contains("\"SYN_RECV\""));
}

#[test]
fn hundred_thousand_connections_fit_and_lookup() {
    let clk = Clock(Instant::now());
    let (mut ipvs, _) = setup(Scheduler::Rr, Forward::Nat, 4, |_| {});
    let n = 100_000u32;
    for i in 0..n {
        let c = Ipv4Addr::from(0x0B00_0000 + i / 50_000);
        let v = ipvs.process_in(&tcp_in(c, (i % 50_000) as u16 + 1024, "S"), clk.at(0));
        assert!(matches!(v, InVerdict::Forward { new: true, .. }));
    }
    assert_eq!(ipvs.conn_count(), n as usize);
    let per_entry = conn::ConnTable::bytes_per_entry();
    let total = per_entry * n as usize;
    eprintln!(
        "size_of Conn = {} B, per entry incl. indexes ≈ {} B, 100k ≈ {:.1} MiB",
        std::mem::size_of::<conn::Conn>(),
        per_entry,
        total as f64 / (1 << 20) as f64
    );
    // Hash tables keep up to 2× spare capacity; still well under 64 MiB.
    assert!(total * 2 < 64 << 20, "{total} bytes");
    // Existing-entry hits are not rescheduled.
    let v = ipvs.process_in(&tcp_in(Ipv4Addr::from(0x0B00_0000), 1024, "A"), clk.at(1));
    assert!(matches!(v, InVerdict::Forward { new: false, .. }));
    ipvs.expire(clk.at(61));
    assert_eq!(ipvs.conn_count(), 1, "only the ACKed entry (ESTABLISHED) survives");
}

#[test]
fn rr_cursor_moves_to_predecessor_on_delete_and_revive_keeps_stats() {
    let clk = Clock(Instant::now());
    let (mut ipvs, svc) = setup(Scheduler::Rr, Forward::Dr, 3, |_| {});
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(1), 1, "S"), clk.at(0))), 3);
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(1), 2, "S"), clk.at(0))), 2);
    ipvs.del_dest(svc, rs(2), 80, Instant::now()).unwrap();
    // Cursor was on .2 → now on .3, so the next pick is .1.
    assert_eq!(dest_of(ipvs.process_in(&tcp_in(client(1), 3, "S"), clk.at(0))), 1);
    // Re-adding revives the same destination (counters kept) at the head.
    ipvs.add_dest(svc, DestConfig::new(rs(2), 80, 1, Forward::Dr)).unwrap();
    let snap = ipvs.snapshot(clk.at(0));
    assert_eq!(snap.services[0].dests[0].addr, rs(2));
    assert_eq!(snap.services[0].dests[0].stats.conns, 1);
    assert_eq!(snap.services[0].dests[0].active_conns, 1);
}

/// A fwmark service (`ipvsadm -A -f 1 -s rr -p 300`) with `n` DR real servers on port 0.
fn fwmark_setup(sched: Scheduler, n: u8, persistent: bool) -> Ipvs {
    let mut ipvs = Ipvs::new(Sysctls::default());
    let mut cfg = ServiceConfig::fwmark(1, sched);
    cfg.vip = VIP;
    if persistent {
        cfg.persistence = Some(Duration::from_secs(300));
    }
    let svc = ipvs.add_service(cfg).unwrap();
    for i in 1..=n {
        ipvs.add_dest(svc, DestConfig::new(rs(i), 0, 1, Forward::Dr)).unwrap();
    }
    ipvs
}

#[test]
fn a_fwmark_service_takes_marked_packets_on_every_port_and_only_those() {
    let clock = Clock(Instant::now());
    let mut ipvs = fwmark_setup(Scheduler::Rr, 2, false);
    let syn = |port: u16, sport: u16| PacketIn {
        dport: port,
        ..tcp_in(client(1), sport, "S")
    };
    // Unmarked: no address service on VIP:80, so not IPVS's.
    assert_eq!(ipvs.process_in(&syn(80, 1000), clock.at(0)), InVerdict::NotService);
    // Marked: any port; a real server on port 0 keeps the packet's own.
    for (port, want) in [(80, 2), (443, 1), (8080, 2)] {
        let v = ipvs.process_in_marked(&syn(port, 2000 + port), 1, clock.at(0));
        assert_eq!(dest_of(v), want);
        assert!(matches!(v, InVerdict::Forward { dport, .. } if dport == port));
    }
    assert_eq!(
        ipvs.process_in_marked(&syn(80, 3000), 2, clock.at(0)),
        InVerdict::NotService
    );
    let snap = ipvs.snapshot(clock.at(0));
    assert_eq!(snap.services[0].key(), ServiceKey::fwmark(1));
    assert_eq!(snap.services[0].vip, Ipv4Addr::UNSPECIFIED);
}

#[test]
fn a_persistent_fwmark_template_holds_a_client_across_ports_and_protocols() {
    let clock = Clock(Instant::now());
    let mut ipvs = fwmark_setup(Scheduler::Rr, 3, true);
    let mut seen = Vec::new();
    for (i, port) in [80u16, 443, 80, 443].into_iter().enumerate() {
        let p = PacketIn {
            dport: port,
            ..tcp_in(client(1), 4000 + i as u16, "S")
        };
        seen.push(dest_of(ipvs.process_in_marked(&p, 1, clock.at(i as u64))));
    }
    let udp = PacketIn {
        dport: 53,
        ..udp_in(client(1), 5353)
    };
    seen.push(dest_of(ipvs.process_in_marked(&udp, 1, clock.at(5))));
    assert!(seen.iter().all(|d| *d == seen[0] && *d != 0), "{seen:?}");
    // Another client: the scheduler moves on.
    let other = PacketIn {
        dport: 443,
        ..tcp_in(client(2), 4000, "S")
    };
    assert_ne!(dest_of(ipvs.process_in_marked(&other, 1, clock.at(6))), seen[0]);
    // One template per client: <client, 0, mark as 0.0.0.1, 0>.
    let templates: Vec<_> = ipvs
        .snapshot(clock.at(6))
        .conns
        .into_iter()
        .filter(|c| c.template)
        .collect();
    assert_eq!(templates.len(), 2);
    assert_eq!(templates[0].to, "0.0.0.1:0".parse().unwrap());
}

#[test]
fn lblc_on_a_fwmark_service_keys_on_the_destination_address() {
    let clock = Clock(Instant::now());
    let mut ipvs = fwmark_setup(Scheduler::Lblc, 3, false);
    let mut first: Vec<u8> = Vec::new();
    for round in 0..3u16 {
        for d in 1..=6u8 {
            let p = PacketIn {
                daddr: Ipv4Addr::new(203, 0, 113, d),
                ..tcp_in(client(1), 1000 + round * 10 + d as u16, "S")
            };
            let got = dest_of(ipvs.process_in_marked(&p, 1, clock.at(round.into())));
            match round {
                0 => first.push(got),
                _ => assert_eq!(got, first[d as usize - 1], "destination {d} moved"),
            }
        }
    }
    // The first choices spread (least connections), the later ones stick.
    let mut distinct = first.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{first:?}");
}
