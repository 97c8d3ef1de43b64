//! The engine's loop end to end on a TAP device in a private network
//! namespace: the test plays client and real servers by writing frames into
//! the TAP and reading what the engine sends out of it. Needs root.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation, ArpPacket, PacketBuilder};

use super::drops::DropReason;
use super::frame::{self, Frame};
use super::{EmbeddedEngine, IfaceFacts};
use crate::director::{DirectorConfig, Engine, ServiceKey};
use crate::ipvs::{DestConfig, Forward, Proto, SchedFlags, ServiceConfig, Sysctls};
use crate::sys::netdev;
use crate::sys::poll::PollSet;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::vnet::{VnetHdr, VIRTIO_NET_HDR_F_NEEDS_CSUM, VNET_HDR_LEN as VNET};
use crate::wire::{tcp, Mac};

/// include/uapi/linux/virtio_net.h.
const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 0, 21),
    Ipv4Addr::new(10, 0, 0, 22),
    Ipv4Addr::new(10, 0, 0, 23),
];
const RS_MAC: [[u8; 6]; 3] = [[2, 0, 0, 0, 0, 0x21], [2, 0, 0, 0, 0, 0x22], [2, 0, 0, 0, 0, 0x23]];

/// Frames cross the TAP with a virtio-net header, so the test can inject
/// CHECKSUM_PARTIAL frames exactly as a veth peer's offloading stack does.
struct Tap {
    fd: OwnedFd,
    index: u32,
    mac: [u8; 6],
}

impl Tap {
    /// Creates and brings up a TAP in the calling thread's namespace.
    fn create(name: &str) -> io::Result<Tap> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        let fd = OwnedFd::from(file);
        netdev::tun_set_iff(fd.as_fd(), name, libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR)?;
        netdev::set_up(name)?;
        let mac = netdev::hw_addr(name)?.octets();
        let index = nix::net::if_::if_nametoindex(name)?;
        Ok(Tap { fd, index, mac })
    }

    fn write(&self, frame: &[u8]) {
        self.write_with(&[0u8; VNET], frame)
    }

    /// Writes a TCP frame whose checksum is left to "offload": NEEDS_CSUM and
    /// only the pseudo-header seed in the field.
    fn write_partial(&self, frame: &[u8]) {
        let mut f = frame.to_vec();
        let ip = match frame::parse(&f) {
            Ok(Frame::Ipv4(ip)) => ip,
            other => panic!("not IPv4: {other:?}"),
        };
        let seed = crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_sum(
            ip.saddr,
            ip.daddr,
            ip.protocol.0,
            ip.l4_len() as u16,
        ));
        let at = ip.l4_offset() + tcp::CHECKSUM_AT;
        f[at..at + 2].copy_from_slice(&seed.to_be_bytes());
        let hdr = VnetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            csum_start: ip.l4_offset() as u16,
            csum_offset: tcp::CHECKSUM_AT as u16,
            ..VnetHdr::default()
        };
        self.write_with(&hdr.to_bytes(), &f)
    }

    /// Writes a TCP super-frame as a TSO-capable sender's stack hands one to a veth: partial
    /// checksum and GSO TCPv4 with `gso_size` bytes of payload per segment.
    fn write_gso(&self, frame: &[u8], gso_size: u16) {
        let ip = match frame::parse(frame) {
            Ok(Frame::Ipv4(ip)) => ip,
            other => panic!("not IPv4: {other:?}"),
        };
        let mut f = frame.to_vec();
        let seed = crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_sum(
            ip.saddr,
            ip.daddr,
            ip.protocol.0,
            ip.l4_len() as u16,
        ));
        let at = ip.l4_offset() + tcp::CHECKSUM_AT;
        f[at..at + 2].copy_from_slice(&seed.to_be_bytes());
        let hdr = VnetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            gso_type: VIRTIO_NET_HDR_GSO_TCPV4,
            hdr_len: (ip.l4_offset() + 20) as u16,
            gso_size,
            csum_start: ip.l4_offset() as u16,
            csum_offset: tcp::CHECKSUM_AT as u16,
        };
        self.write_with(&hdr.to_bytes(), &f)
    }

    fn write_with(&self, vnet: &[u8; VNET], frame: &[u8]) {
        let mut all = vnet.to_vec();
        all.extend_from_slice(frame);
        let n = nix::unistd::write(&self.fd, &all);
        assert_eq!(n, Ok(all.len()), "write to tap");
    }

    /// Next IPv4 or ARP frame the engine sent (the kernel's IPv6 chatter is
    /// skipped), or None after `timeout`.
    fn read(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = PollSet::readable([self.fd.as_fd()]).wait(left + Duration::from_millis(1));
            let n = nix::unistd::read(&self.fd, &mut buf).unwrap_or(0);
            if n > VNET + ETH_LEN {
                let f = buf[VNET..n].to_vec();
                if f[12..14] == [0x08, 0x00] || f[12..14] == [0x08, 0x06] {
                    return Some(f);
                }
            }
        }
    }

    /// Next frame the engine sent that is not an ARP request for a real
    /// server: those are answered on the servers' behalf, as they come.
    fn read_answering_arp(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let f = self.read(deadline.checked_duration_since(Instant::now())?)?;
            let Ok(Frame::Arp(a)) = frame::parse(&f) else {
                return Some(f);
            };
            if a.operation != crate::wire::ArpOperation::Request {
                return Some(f);
            }
            assert_eq!(a.sender_ip, DIRECTOR_IP, "asks from its own address");
            let target = a.target_ip;
            let i = RS
                .iter()
                .position(|&r| r == target)
                .expect("asks only for real servers");
            self.write(&arp_frame(
                ArpOperation::REPLY,
                RS_MAC[i],
                self.mac,
                target,
                self.mac,
                DIRECTOR_IP,
            ));
        }
    }
}

const DIRECTOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

fn arp_frame(
    op: ArpOperation,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    sender: Ipv4Addr,
    target_mac: [u8; 6],
    target: Ipv4Addr,
) -> Vec<u8> {
    let arp = ArpEthIpv4Packet {
        operation: op,
        sender_mac: src_mac,
        sender_ipv4: sender.octets(),
        target_mac,
        target_ipv4: target.octets(),
    };
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&arp.to_bytes());
    f
}

fn syn(to_mac: [u8; 6], dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, to_mac)
        .ipv4(CLIENT.octets(), dst.octets(), 64)
        .tcp(sport, 80, 1, 64240)
        .syn()
        .write(&mut f, &[])
        .unwrap();
    f
}

fn dr_config() -> DirectorConfig {
    let service = ServiceConfig {
        vip: VIP,
        port: 80,
        proto: Proto::Tcp,
        scheduler: crate::ipvs::Scheduler::Rr,
        flags: SchedFlags::default(),
        persistence: None,
        persistence_netmask: Ipv4Addr::BROADCAST,
        one_packet: false,
        fwmark: 0,
    };
    let dests = RS
        .iter()
        .map(|&addr| DestConfig {
            addr,
            port: 80,
            weight: 1,
            forward: Forward::Dr,
            upper_threshold: 0,
            lower_threshold: 0,
        })
        .collect();
    DirectorConfig {
        services: vec![(service, dests)],
        sysctls: Sysctls::default(),
        client_iface: "lvtap0".into(),
        server_iface: "lvtap0".into(),
        fullnat_local_addrs: vec![],
        vip_gate: None,
        marks: Vec::new(),
        complete_checksums: true,
    }
}

fn run_dr_scenario() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let tap = Tap::create("lvtap0").expect("create tap");
    let facts = IfaceFacts {
        name: "lvtap0".into(),
        index: tap.index,
        mac: Mac(tap.mac),
        addrs: vec!["10.0.0.1/24".parse().unwrap()],
    };
    // Threads spawned from here inherit this thread's private namespace.
    let engine = EmbeddedEngine::start_with(dr_config(), facts, None, |name, body| {
        std::thread::Builder::new().name(name).spawn(body)
    })
    .expect("engine starts");
    let mut engine: Box<dyn Engine> = Box::new(engine);

    // The client resolves the VIP: the engine answers with the director's MAC.
    tap.write(&arp_frame(
        ArpOperation::REQUEST,
        CLIENT_MAC,
        [0xff; 6],
        CLIENT,
        [0; 6],
        VIP,
    ));
    let reply = tap.read(Duration::from_secs(2)).expect("ARP reply for the VIP");
    let arp = ArpPacket::from_slice(&reply[ETH_LEN..])
        .unwrap()
        .try_eth_ipv4()
        .unwrap();
    assert_eq!(
        (arp.operation, arp.sender_ipv4_addr(), arp.sender_mac),
        (ArpOperation::REPLY, VIP, tap.mac)
    );

    // Noise first, each followed by a SYN so we know it was processed.
    let mut truncated = syn(tap.mac, VIP, 39999);
    truncated.truncate(ETH_LEN + 30); // IPv4 total length now lies
    let mut fragment = syn(tap.mac, VIP, 39998);
    fragment[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&0x2000u16.to_be_bytes()); // MF
    let not_vip = syn(tap.mac, Ipv4Addr::new(10, 0, 0, 50), 39997);
    let not_ours = syn([2, 0, 0, 0, 0, 0x99], VIP, 39996);

    let mut picked = Vec::new();
    for (k, noise) in [
        Some(truncated),
        Some(fragment),
        Some(not_vip),
        Some(not_ours),
        None,
        None,
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(n) = noise {
            tap.write(&n);
        }
        let sport = 40000 + k as u16;
        tap.write(&syn(tap.mac, VIP, sport));
        // The first SYN to each server waits for its ARP reply, then goes on.
        let out = tap.read_answering_arp(Duration::from_secs(2)).expect("forwarded SYN");
        let Ok(Frame::Ipv4(ip)) = frame::parse(&out) else {
            panic!("not IPv4")
        };
        assert_eq!(ip.l4.unwrap().sport, sport, "only the SYN to the VIP is forwarded");
        assert_eq!((ip.daddr, ip.ttl), (VIP, 63));
        assert_eq!(&out[6..12], &tap.mac);
        picked.push(
            RS_MAC
                .iter()
                .position(|m| m[..] == out[0..6])
                .expect("sent to a real server's MAC"),
        );
    }
    // rr visits every server once, then repeats the same order (which
    // server comes first depends on the destination list order, as in the kernel).
    let mut first_round = picked[..3].to_vec();
    first_round.sort();
    assert_eq!(
        first_round,
        [0, 1, 2],
        "round robin over the three real servers: {picked:?}"
    );
    assert_eq!(picked[3..], picked[..3], "round robin repeats: {picked:?}");

    let stats = engine.stats();
    assert_eq!(stats.forwarded_in, 6);
    assert_eq!(stats.malformed.get("ipv4_total_length"), Some(&1), "{stats:?}");
    assert_eq!(stats.dropped.get(&DropReason::Fragment), Some(&1), "{stats:?}");
    assert_eq!(stats.arp_answered, 1);
    assert_eq!(
        stats.arp_requests_sent, 3,
        "one request per real server, when first needed"
    );

    // Weight 0 takes a server out of rotation.
    let key = ServiceKey::new(Proto::Tcp, VIP, 80);
    engine.set_weight(key, SocketAddrV4::new(RS[0], 80), 0).unwrap();
    assert!(engine
        .set_weight(key, SocketAddrV4::new(Ipv4Addr::new(10, 9, 9, 9), 80), 1)
        .is_err());
    for k in 0..4u16 {
        tap.write(&syn(tap.mac, VIP, 41000 + k));
        let out = tap.read_answering_arp(Duration::from_secs(2)).expect("forwarded SYN");
        assert_ne!(&out[0..6], &RS_MAC[0], "weight-0 server must not be picked");
    }

    // With every server quiesced nothing can be scheduled: as `ip_vs_leave`
    // does, the client hears port unreachable from the VIP at once.
    for rs in &RS[1..] {
        engine.set_weight(key, SocketAddrV4::new(*rs, 80), 0).unwrap();
    }
    let refused = syn(tap.mac, VIP, 42000);
    tap.write(&refused);
    let icmp = tap.read(Duration::from_secs(2)).expect("port unreachable");
    assert_eq!(&icmp[0..6], &CLIENT_MAC);
    let h = etherparse::PacketHeaders::from_ethernet_slice(&icmp).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = &h.net else {
        panic!("no IPv4")
    };
    assert_eq!(
        (Ipv4Addr::from(ip.source), Ipv4Addr::from(ip.destination)),
        (VIP, CLIENT)
    );
    assert_eq!(
        h.transport.clone(),
        Some(etherparse::TransportHeader::Icmpv4(
            etherparse::Icmpv4Header::with_checksum(
                etherparse::Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port),
                h.payload.slice()
            )
        ))
    );
    assert_eq!(h.payload.slice(), &refused[ETH_LEN..], "about the client's SYN");
    let stats = engine.stats();
    assert_eq!(stats.icmp_sent.get("port_unreachable"), Some(&1), "{stats:?}");
    assert_eq!(
        stats
            .dropped
            .get(&DropReason::Ipvs(crate::ipvs::DropReason::NoDestination)),
        Some(&1),
        "{stats:?}"
    );

    let t0 = Instant::now();
    engine.shutdown().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1), "shutdown is prompt");
}

#[test]
fn dr_engine_on_a_tap_answers_arp_round_robins_and_counts_junk() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root for a private network namespace and a TAP device");
        return;
    }
    // unshare() changes only this thread's namespace; keep it off the test runner's threads.
    std::thread::spawn(run_dr_scenario).join().expect("scenario thread");
}

/// Starts an engine for `forward` on a fresh TAP.
fn start_on_tap(forward: Forward, dport: u16) -> (Tap, Box<dyn Engine>) {
    start_gated_on_tap(forward, dport, None)
}

fn start_gated_on_tap(forward: Forward, dport: u16, gate: Option<crate::director::VipGate>) -> (Tap, Box<dyn Engine>) {
    start_adjusted_on_tap(forward, dport, |cfg| cfg.vip_gate = gate)
}

fn start_adjusted_on_tap(
    forward: Forward,
    dport: u16,
    adjust: impl FnOnce(&mut DirectorConfig),
) -> (Tap, Box<dyn Engine>) {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
    let tap = Tap::create("lvtap0").expect("create tap");
    let facts = IfaceFacts {
        name: "lvtap0".into(),
        index: tap.index,
        mac: Mac(tap.mac),
        addrs: vec!["10.0.0.1/24".parse().unwrap()],
    };
    let mut cfg = dr_config();
    for d in &mut cfg.services[0].1 {
        d.forward = forward;
        d.port = dport;
    }
    cfg.fullnat_local_addrs = vec![LIP];
    adjust(&mut cfg);
    let engine = EmbeddedEngine::start_with(cfg, facts, None, |name, body| {
        std::thread::Builder::new().name(name).spawn(body)
    })
    .expect("engine starts");
    (tap, Box::new(engine))
}

const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 200);

fn tcp(src_mac: [u8; 6], dst_mac: [u8; 6], src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.0.octets(), dst.0.octets(), 64)
        .tcp(src.1, dst.1, 7, 64240);
    // An empty payload stands for the SYN that opens the connection.
    let builder = if payload.is_empty() {
        builder.syn()
    } else {
        builder.ack(1).psh()
    };
    builder.write(&mut f, payload).unwrap();
    f
}

/// Index of the real server a frame was sent to, by destination MAC.
fn rs_of(frame: &[u8]) -> usize {
    RS_MAC
        .iter()
        .position(|m| m[..] == frame[0..6])
        .expect("sent to a real server's MAC")
}

/// Addresses and ports of `f`, after checking both its checksums with etherparse.
fn verified_tuple(f: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16), Vec<u8>) {
    let h = etherparse::PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("no IPv4")
    };
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    let Some(etherparse::TransportHeader::Tcp(t)) = h.transport else {
        panic!("no TCP")
    };
    assert_eq!(
        t.checksum,
        t.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap(),
        "TCP checksum must verify at the receiver"
    );
    (
        (ip.source.into(), t.source_port),
        (ip.destination.into(), t.destination_port),
        h.payload.slice().to_vec(),
    )
}

fn nat_like_round_trip(forward: Forward) {
    let (tap, engine) = start_on_tap(forward, 8080);
    if forward == Forward::FullNat {
        tap.write(&arp_frame(
            ArpOperation::REQUEST,
            RS_MAC[0],
            [0xff; 6],
            RS[0],
            [0; 6],
            LIP,
        ));
        let reply = tap
            .read(Duration::from_secs(2))
            .expect("ARP reply for the FULLNAT local address");
        let arp = ArpPacket::from_slice(&reply[ETH_LEN..])
            .unwrap()
            .try_eth_ipv4()
            .unwrap();
        assert_eq!((arp.sender_ipv4_addr(), arp.sender_mac), (LIP, tap.mac));
    }
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), b""));
    let syn_out = tap.read_answering_arp(Duration::from_secs(2)).expect("forwarded SYN");
    let rs = rs_of(&syn_out);
    let (syn_src, syn_dst, _) = verified_tuple(&syn_out);
    let request = b"GET / HTTP/1.1\r\n\r\n";
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), request));
    let out = tap.read(Duration::from_secs(2)).expect("forwarded request");
    let (src, dst, payload) = verified_tuple(&out);
    assert_eq!(payload, request);
    assert_eq!((src, dst), (syn_src, syn_dst), "same connection, same rewrite");
    assert_eq!(dst, (RS[rs], 8080));
    match forward {
        Forward::Nat => assert_eq!(src, (CLIENT, 40000)),
        _ => assert_eq!(src.0, LIP, "FULLNAT sources from the local address"),
    }

    let response = b"HTTP/1.1 200 OK\r\n\r\nrs1";
    tap.write(&tcp(RS_MAC[rs], tap.mac, dst, src, response));
    let back = tap.read(Duration::from_secs(2)).expect("forwarded reply");
    let (src, dst, payload) = verified_tuple(&back);
    assert_eq!((src, dst), ((VIP, 80), (CLIENT, 40000)), "the client sees the VIP");
    assert_eq!(payload, response);
    assert_eq!(&back[0..6], &CLIENT_MAC, "back to the MAC the request came from");

    // A hop towards the client finds the reply too big: the error goes on to
    // the real server, about the packet as the real server sent it.
    // (The real server sees the client as `syn_src`: itself for NAT, the local address for FULLNAT.)
    tap.write(&frag_needed(CLIENT_MAC, tap.mac, CLIENT, VIP, &back[ETH_LEN..]));
    let relayed = tap.read(Duration::from_secs(2)).expect("relayed ICMP");
    assert_eq!(&relayed[0..6], &RS_MAC[rs], "to the connection's real server");
    let (outer, quoted) = icmp_addresses(&relayed);
    assert_eq!(outer, (syn_src.0, RS[rs]));
    assert_eq!(quoted, ((RS[rs], 8080), syn_src), "quotes the real server's reply");

    let stats = engine.stats();
    assert_eq!((stats.forwarded_in, stats.forwarded_out), (3, 1), "{stats:?}");
    assert_eq!(
        stats.icmp_relayed.get("client_to_real_server:frag_needed"),
        Some(&1),
        "{stats:?}"
    );
    engine.shutdown().unwrap();
}

/// An ICMP frag-needed (MTU 1400) from `src` to `dst` quoting `about`.
fn frag_needed(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, about: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 },
        ))
        .write(&mut f, about)
        .unwrap();
    f
}

/// Outer (source, destination) of an ICMP frame, and the (source, destination)
/// address and port of the packet it quotes; every checksum verified.
#[allow(clippy::type_complexity)]
fn icmp_addresses(f: &[u8]) -> ((Ipv4Addr, Ipv4Addr), ((Ipv4Addr, u16), (Ipv4Addr, u16))) {
    let h = etherparse::PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(etherparse::NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("no IPv4")
    };
    assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    let Some(etherparse::TransportHeader::Icmpv4(icmp)) = h.transport else {
        panic!("no ICMP")
    };
    let quote = h.payload.slice();
    assert_eq!(icmp.checksum, icmp.icmp_type.calc_checksum(quote), "ICMP checksum");
    let (q, rest) = etherparse::Ipv4Header::from_slice(quote).unwrap();
    assert_eq!(q.header_checksum, q.calc_header_checksum(), "quoted IPv4 checksum");
    let port = |at: usize| u16::from_be_bytes([rest[at], rest[at + 1]]);
    (
        (ip.source.into(), ip.destination.into()),
        ((q.source.into(), port(0)), (q.destination.into(), port(2))),
    )
}

fn tun_encapsulates() {
    let (tap, engine) = start_on_tap(Forward::Tun, 80);
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), b""));
    let out = tap
        .read_answering_arp(Duration::from_secs(2))
        .expect("encapsulated request");
    let rs = rs_of(&out);
    let (outer, _) = etherparse::Ipv4Header::from_slice(&out[ETH_LEN..]).unwrap();
    assert_eq!(
        (
            outer.protocol.0,
            Ipv4Addr::from(outer.source),
            Ipv4Addr::from(outer.destination)
        ),
        (4, Ipv4Addr::new(10, 0, 0, 1), RS[rs])
    );
    let mut inner = out[..ETH_LEN].to_vec();
    inner.extend_from_slice(&out[ETH_LEN + 20..]);
    let (src, dst, _) = verified_tuple(&inner);
    assert_eq!((src, dst), ((CLIENT, 40000), (VIP, 80)));

    // The real server cannot decapsulate: its protocol unreachable about our
    // IP-in-IP comes back to the client from the VIP, about its own SYN.
    let mut unreachable = Vec::new();
    PacketBuilder::ethernet2(RS_MAC[rs], tap.mac)
        .ipv4(RS[rs].octets(), DIRECTOR_IP.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Protocol,
        ))
        .write(&mut unreachable, &out[ETH_LEN..])
        .unwrap();
    tap.write(&unreachable);
    let back = tap.read(Duration::from_secs(2)).expect("ICMP to the client");
    assert_eq!(&back[0..6], &CLIENT_MAC, "to the MAC the request came from");
    let (outer, quoted) = icmp_addresses(&back);
    assert_eq!(outer, (VIP, CLIENT));
    assert_eq!(quoted, ((CLIENT, 40000), (VIP, 80)));

    // A full-size DF packet does not fit the tunnel: frag-needed from the VIP,
    // announcing the interface MTU less the outer header.
    let mut big = tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), &[b'x'; 1460]);
    big[ETH_LEN + 6] |= 0x40;
    parse_ipv4(&big); // still a whole IPv4 frame, as the forwarders' views assume
    super::forward::finish_ipv4_header(&mut big);
    tap.write(&big);
    let too_big = tap.read(Duration::from_secs(2)).expect("frag-needed to the client");
    let h = etherparse::PacketHeaders::from_ethernet_slice(&too_big).unwrap();
    assert_eq!(
        h.transport,
        Some(etherparse::TransportHeader::Icmpv4(
            etherparse::Icmpv4Header::with_checksum(
                etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1480 }
                ),
                h.payload.slice()
            )
        ))
    );
    assert_eq!(icmp_addresses(&too_big).0, (VIP, CLIENT));

    let stats = engine.stats();
    assert_eq!(
        stats.icmp_relayed.get("tunnel_to_client:protocol_unreachable"),
        Some(&1),
        "{stats:?}"
    );
    assert_eq!(stats.dropped.get(&DropReason::TunnelTooBig), Some(&1), "{stats:?}");
    assert_eq!(stats.icmp_sent.get("frag_needed"), Some(&1), "{stats:?}");
    engine.shutdown().unwrap();
}

fn parse_ipv4(f: &[u8]) -> super::frame::Ipv4Frame {
    match frame::parse(f) {
        Ok(Frame::Ipv4(ip)) => ip,
        other => panic!("not IPv4: {other:?}"),
    }
}

fn as_root(name: &'static str, f: fn()) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped {name}: needs root for a private network namespace and a TAP device");
        return;
    }
    std::thread::spawn(f).join().expect(name);
}

#[test]
fn nat_engine_on_a_tap_rewrites_both_ways_with_offloaded_checksums() {
    as_root("nat", || nat_like_round_trip(Forward::Nat));
}

#[test]
fn fullnat_engine_on_a_tap_answers_arp_for_local_address_and_rewrites_both_ways() {
    as_root("fullnat", || nat_like_round_trip(Forward::FullNat));
}

#[test]
fn tun_engine_on_a_tap_encapsulates_relays_tunnel_errors_and_answers_too_big() {
    as_root("tun", tun_encapsulates);
}

/// A GSO super-frame is held to the tunnel's MTU per segment, as the kernel's
/// `skb_gso_validate_network_len` holds it: segments that fit are cut and each wrapped in
/// IPIP with complete checksums; segments that do not fit get frag-needed.
fn tun_segments_gso_frames() {
    let (tap, engine) = start_on_tap(Forward::Tun, 80);
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40001), (VIP, 80), b""));
    let syn = tap
        .read_answering_arp(Duration::from_secs(2))
        .expect("encapsulated SYN");
    let rs = rs_of(&syn);

    let payload: Vec<u8> = (0..2900u32).map(|i| i as u8).collect();
    let mut big = tcp(CLIENT_MAC, tap.mac, (CLIENT, 40001), (VIP, 80), &payload);
    big[ETH_LEN + 6] |= 0x40; // DF, as Linux TCP sends
    super::forward::finish_ipv4_header(&mut big);
    tap.write_gso(&big, 1400);
    let mut joined = Vec::new();
    for n in 0..3 {
        let out = tap.read_answering_arp(Duration::from_secs(2)).expect("a segment");
        assert_eq!(rs_of(&out), rs, "segment {n} follows the connection");
        let (outer, _) = etherparse::Ipv4Header::from_slice(&out[ETH_LEN..]).unwrap();
        assert_eq!(outer.protocol.0, 4, "IPIP");
        assert!(
            out.len() - ETH_LEN <= 1500,
            "segment {n} fits the link: {}",
            out.len() - ETH_LEN
        );
        let mut inner = out[..ETH_LEN].to_vec();
        inner.extend_from_slice(&out[ETH_LEN + 20..]);
        let (src, dst, data) = verified_tuple(&inner);
        assert_eq!((src, dst), ((CLIENT, 40001), (VIP, 80)));
        joined.extend_from_slice(&data);
    }
    assert_eq!(joined, payload, "1400 + 1400 + 100, in order");

    // Segments of 1460 bytes make 1500-byte packets: 1520 with the outer header.
    tap.write_gso(&big, 1460);
    let too_big = tap.read(Duration::from_secs(2)).expect("frag-needed to the client");
    let h = etherparse::PacketHeaders::from_ethernet_slice(&too_big).unwrap();
    let Some(etherparse::TransportHeader::Icmpv4(icmp)) = h.transport else {
        panic!("ICMP expected")
    };
    assert_eq!(
        icmp.icmp_type,
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1480 }
        )
    );
    // The super-frame is refused whole: had it reached the engine cut in two, its second
    // segment (1480 bytes) would fit and be sent on.
    assert_eq!(tap.read(Duration::from_millis(300)), None, "nothing of it is forwarded");
    let stats = engine.stats();
    assert_eq!(stats.dropped.get(&DropReason::TunnelTooBig), Some(&1), "{stats:?}");
    assert_eq!(stats.dropped.get(&DropReason::GsoTunnel), None, "{stats:?}");
    engine.shutdown().unwrap();
}

#[test]
fn tun_engine_on_a_tap_segments_gso_frames_that_fit_and_answers_too_big_for_those_that_do_not() {
    as_root("tun gso", tun_segments_gso_frames);
}

/// A health checker's DEL_DEST and ADD_DEST: the removed server gets no new connection,
/// packets of its old one are dropped (expire_nodest_conn = 0, the kernel's default), and
/// once added back it is scheduled again.
fn dr_remove_and_add_dest() {
    let (tap, mut engine) = start_on_tap(Forward::Dr, 80);
    let key = ServiceKey::new(Proto::Tcp, VIP, 80);
    let wait = Duration::from_secs(2);
    tap.write(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), &[]));
    let removed = rs_of(&tap.read_answering_arp(wait).expect("forwarded SYN"));
    engine
        .remove_dest(key, SocketAddrV4::new(RS[removed], 80))
        .expect("DEL_DEST");
    let table = engine.snapshot().unwrap();
    assert!(!table.services[0].dests.iter().any(|d| d.addr == RS[removed]));

    tap.write(&tcp(
        CLIENT_MAC,
        tap.mac,
        (CLIENT, 40000),
        (VIP, 80),
        b"GET / HTTP/1.0\r\n\r\n",
    ));
    let unavailable = DropReason::Ipvs(crate::ipvs::DropReason::DestUnavailable);
    let deadline = Instant::now() + wait;
    while !engine.stats().dropped.contains_key(&unavailable) {
        assert!(
            Instant::now() < deadline,
            "old connection's packet not dropped: {:?}",
            engine.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for sport in 40001..40007 {
        tap.write(&tcp(CLIENT_MAC, tap.mac, (CLIENT, sport), (VIP, 80), &[]));
        let to = rs_of(&tap.read_answering_arp(wait).expect("forwarded SYN"));
        assert_ne!(to, removed, "a new connection went to the removed server");
    }

    let back = DestConfig::new(RS[removed], 80, 1, Forward::Dr);
    engine.add_dest(key, back).expect("ADD_DEST");
    let mut reached = false;
    for sport in 40010..40016 {
        tap.write(&tcp(CLIENT_MAC, tap.mac, (CLIENT, sport), (VIP, 80), &[]));
        reached |= rs_of(&tap.read_answering_arp(wait).expect("forwarded SYN")) == removed;
    }
    assert!(reached, "the server added back got none of 6 round-robin SYNs");
    engine.shutdown().unwrap();
}

#[test]
fn dr_engine_on_a_tap_removes_and_adds_back_a_dest() {
    as_root("remove and add dest", dr_remove_and_add_dest);
}

/// What IPVS leaves to the director's stack is answered as the kernel's TCP does: a
/// segment of no known connection (the client's entry gone) and a SYN to a port with
/// no service are both reset.
fn resets_what_ipvs_leaves_to_the_stack() {
    let (tap, engine) = start_on_tap(Forward::Dr, 80);
    let wait = Duration::from_secs(2);
    let request = tcp(
        CLIENT_MAC,
        tap.mac,
        (CLIENT, 41000),
        (VIP, 80),
        b"GET / HTTP/1.0\r\n\r\n",
    );
    tap.write(&request);
    let rst = tap
        .read_answering_arp(wait)
        .expect("a reset for a segment without an entry");
    let ((src, sport), (dst, dport), _) = verified_tuple(&rst);
    assert_eq!((src, sport, dst, dport), (VIP, 80, CLIENT, 41000));
    let h = etherparse::PacketHeaders::from_ethernet_slice(&rst).unwrap();
    let Some(etherparse::TransportHeader::Tcp(t)) = h.transport else {
        panic!("no TCP")
    };
    assert!(t.rst && !t.ack, "RST at the segment's acknowledgment: {t:?}");
    assert_eq!(t.sequence_number, 1);
    assert_eq!(&rst[0..6], &CLIENT_MAC, "sent back to the client's MAC");

    tap.write(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 41001), (VIP, 443), &[]));
    let refused = tap
        .read_answering_arp(wait)
        .expect("a reset for a SYN to an unserved port");
    let h = etherparse::PacketHeaders::from_ethernet_slice(&refused).unwrap();
    let Some(etherparse::TransportHeader::Tcp(t)) = h.transport else {
        panic!("no TCP")
    };
    assert!(
        t.rst && t.ack && t.acknowledgment_number == 8,
        "RST|ACK for SEQ 7 + SYN: {t:?}"
    );
    assert_eq!(engine.stats().resets_sent, 2);
    assert!(engine.snapshot().unwrap().conns.is_empty(), "no entry was made");
    engine.shutdown().unwrap();
}

#[test]
fn dr_engine_on_a_tap_resets_segments_ipvs_leaves_to_the_stack() {
    as_root("resets", resets_what_ipvs_leaves_to_the_stack);
}

/// DR with a destination configured on another port (8080 behind VIP:80), as netlink lets
/// one add it: the kernel's `ip_vs_dr_xmit` rewrites nothing but the MAC, so the real server
/// gets VIP:80; the entry and the table still name the configured port.
fn dr_keeps_the_service_port_whatever_the_dest_port() {
    let (tap, engine) = start_on_tap(Forward::Dr, 8080);
    tap.write(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40000), (VIP, 80), &[]));
    let sent = tap.read_answering_arp(Duration::from_secs(2)).expect("forwarded SYN");
    let rs = rs_of(&sent);
    let (from, to, _) = verified_tuple(&sent);
    assert_eq!((from, to), ((CLIENT, 40000), (VIP, 80)), "DR must not rewrite the port");
    let table = engine.snapshot().unwrap();
    assert!(table.services[0].dests.iter().all(|d| d.port == 8080), "{table:?}");
    assert_eq!(table.conns.len(), 1, "{table:?}");
    assert_eq!(table.conns[0].dest, SocketAddrV4::new(RS[rs], 8080));
    engine.shutdown().unwrap();
}

#[test]
fn dr_engine_on_a_tap_forwards_to_a_remapped_dest_unchanged() {
    as_root("dr remapped port", dr_keeps_the_service_port_whatever_the_dest_port);
}

/// keepalived's no_accept: the master answers ARP for the VIP it holds, and drops its
/// traffic (the kernel's nftables input hook drops it before IPVS); without the VIP it
/// answers nothing at all.
fn no_accept_answers_arp_and_drops_the_traffic() {
    let gate = crate::director::VipGate::no_accept();
    let (tap, engine) = start_gated_on_tap(Forward::Dr, 80, Some(gate.clone()));
    let wait = Duration::from_millis(300);
    let who_has = arp_frame(ArpOperation::REQUEST, CLIENT_MAC, [0xff; 6], CLIENT, [0; 6], VIP);
    tap.write(&who_has);
    assert!(tap.read(wait).is_none(), "a VIP not held is not answered");
    gate.set(VIP, true);
    tap.write(&who_has);
    let reply = tap.read(Duration::from_secs(2)).expect("ARP answered for the held VIP");
    assert_eq!(&reply[12..14], &[0x08, 0x06]);
    tap.write(&syn(tap.mac, VIP, 42000));
    assert!(tap.read_answering_arp(wait).is_none(), "nothing forwarded");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !engine.stats().dropped.contains_key(&DropReason::VrrpNoAccept) {
        assert!(
            Instant::now() < deadline,
            "no no_accept drop counted: {:?}",
            engine.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(engine.snapshot().unwrap().conns.is_empty(), "IPVS never saw it");
    engine.shutdown().unwrap();
}

#[test]
fn dr_engine_on_a_tap_under_no_accept_answers_arp_and_drops_the_vip_traffic() {
    as_root("no_accept", no_accept_answers_arp_and_drops_the_traffic);
}

/// `complete_checksums = false`: a CHECKSUM_PARTIAL frame goes out with the pseudo-header
/// seed still in its checksum field, as a forwarder that ignores the offload state sends it.
fn dr_forwards_partial_checksums_unfinished() {
    let (tap, engine) = start_adjusted_on_tap(Forward::Dr, 80, |cfg| cfg.complete_checksums = false);
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40002), (VIP, 80), b""));
    let out = tap.read_answering_arp(Duration::from_secs(2)).expect("forwarded SYN");
    rs_of(&out);
    let ip = parse_ipv4(&out);
    let seed = crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_sum(
        ip.saddr,
        ip.daddr,
        ip.protocol.0,
        ip.l4_len() as u16,
    ));
    let at = ip.l4_offset() + tcp::CHECKSUM_AT;
    assert_eq!(
        u16::from_be_bytes([out[at], out[at + 1]]),
        seed,
        "the seed, not a checksum"
    );
    engine.shutdown().unwrap();
}

#[test]
fn dr_engine_on_a_tap_told_not_to_complete_checksums_forwards_the_partial_seed() {
    as_root("dr unfinished checksums", dr_forwards_partial_checksums_unfinished);
}

/// TUN with `complete_checksums = false`: the inner packet of the IPIP frame keeps the seed, as
/// kernel IPVS with TX offload on hands it to a userspace decapsulator (`why-checksum-offload`).
fn tun_encapsulates_partial_checksums_unfinished() {
    let (tap, engine) = start_adjusted_on_tap(Forward::Tun, 80, |cfg| cfg.complete_checksums = false);
    tap.write_partial(&tcp(CLIENT_MAC, tap.mac, (CLIENT, 40003), (VIP, 80), b""));
    let out = tap
        .read_answering_arp(Duration::from_secs(2))
        .expect("encapsulated SYN");
    let (outer, _) = etherparse::Ipv4Header::from_slice(&out[ETH_LEN..]).unwrap();
    assert_eq!(outer.protocol.0, 4, "IP-in-IP");
    let mut inner = out[..ETH_LEN].to_vec();
    inner.extend_from_slice(&out[ETH_LEN + 20..]);
    let ip = parse_ipv4(&inner);
    assert_eq!((ip.saddr, ip.daddr), (CLIENT, VIP));
    let seed = crate::wire::checksum::fold(crate::wire::checksum::pseudo_header_sum(
        ip.saddr,
        ip.daddr,
        ip.protocol.0,
        ip.l4_len() as u16,
    ));
    let at = ip.l4_offset() + tcp::CHECKSUM_AT;
    assert_eq!(
        u16::from_be_bytes([inner[at], inner[at + 1]]),
        seed,
        "the inner seed, not a checksum"
    );
    engine.shutdown().unwrap();
}

#[test]
fn tun_engine_on_a_tap_told_not_to_complete_checksums_encapsulates_the_partial_seed() {
    as_root(
        "tun unfinished checksums",
        tun_encapsulates_partial_checksums_unfinished,
    );
}
