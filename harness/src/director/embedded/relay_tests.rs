//! ICMP relaying on crafted frames, one test per rewrite: the input is built
//! with etherparse, the connection by `Ipvs` itself, and every output field
//! and checksum is read back with etherparse.

use std::net::Ipv4Addr;
use std::time::Instant;

use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{Icmpv4Header, Icmpv4Type, Ipv4Header, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};

use super::engine::IfaceFacts;
use super::forward::{self, Csum, Tunnel};
use super::frame::{self, Frame, Ipv4Frame};
use super::icmp::IcmpMalformed;
use super::relay::{self, Context, NotRelayed, Relayed, Route, Skip};
use crate::ipvs::{DestConfig, Forward, InVerdict, Ipvs, PacketIn, Proto, ServiceConfig, Sysctls, TcpFlags};
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::Mac;

const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x21];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const DIRECTOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);
const CPORT: u16 = 40000;

fn server_iface() -> IfaceFacts {
    IfaceFacts {
        name: "eth1".into(),
        index: 2,
        mac: Mac(DIRECTOR_MAC),
        addrs: vec!["10.0.1.1/24".parse().unwrap()],
    }
}

/// The real server's port for `forward` (DR/TUN cannot remap).
fn rport(forward: Forward) -> u16 {
    match forward {
        Forward::Dr | Forward::Tun => 80,
        Forward::Nat | Forward::FullNat => 8080,
    }
}

/// An `Ipvs` with one connection `CLIENT:CPORT → VIP:80` to RIP; its FULLNAT source.
fn connected(forward: Forward) -> (Ipvs, (Ipv4Addr, u16)) {
    let mut ipvs = Ipvs::new(Sysctls::default());
    ipvs.set_fullnat_local_addrs(vec![LIP]);
    let svc = ipvs
        .add_service(ServiceConfig::new(Proto::Tcp, VIP, 80, crate::ipvs::Scheduler::Rr))
        .unwrap();
    ipvs.add_dest(svc, DestConfig::new(RIP, rport(forward), 1, forward))
        .unwrap();
    let syn = PacketIn {
        proto: Proto::Tcp,
        saddr: CLIENT,
        sport: CPORT,
        daddr: VIP,
        dport: 80,
        tcp: Some(TcpFlags {
            syn: true,
            ..TcpFlags::default()
        }),
        len: 60,
    };
    match ipvs.process_in(&syn, Instant::now()) {
        InVerdict::Forward { snat, .. } => (ipvs, snat.unwrap_or((CLIENT, CPORT))),
        other => panic!("not forwarded: {other:?}"),
    }
}

/// An IPv4 TCP packet (no Ethernet header) with a payload.
fn tcp_packet(src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), syn: bool) -> Vec<u8> {
    let mut p = Vec::new();
    let b = PacketBuilder::ipv4(src.0.octets(), dst.0.octets(), 63).tcp(src.1, dst.1, 1000, 64240);
    let b = if syn { b.syn() } else { b.ack(1) };
    b.write(&mut p, if syn { b"" } else { b"HTTP/1.1 200 OK\r\n\r\nrs1" })
        .unwrap();
    p
}

/// An Ethernet frame with an ICMP error of `t` from `src` to `dst` quoting `about`.
fn icmp_frame(src_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, t: Icmpv4Type, about: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(src_mac, DIRECTOR_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .icmpv4(t)
        .write(&mut f, about)
        .unwrap();
    f
}

fn parse_ip(f: &[u8]) -> Ipv4Frame {
    match frame::parse(f).unwrap() {
        Frame::Ipv4(ip) => ip,
        other => panic!("not IPv4: {other:?}"),
    }
}

/// Recomputes the IPv4 header checksum after a test edited the header.
fn refresh_header(f: &mut [u8]) {
    parse_ip(f); // still a whole IPv4 frame, as the forwarders' views assume
    forward::finish_ipv4_header(f);
}

fn run(ipvs: &mut Ipvs, f: &[u8]) -> Result<Relayed, Skip> {
    let server = server_iface();
    let ctx = Context {
        kernel_local: &[DIRECTOR_IP],
        client_mac: Mac(DIRECTOR_MAC),
        server: &server,
        ip_id: 77,
        now: Instant::now(),
    };
    relay::relay(f, &parse_ip(f), Csum::Complete, ipvs, &ctx)
}

/// Outer header, ICMP header and quote of an ICMP frame, with the outer IPv4
/// and the ICMP checksums verified.
fn verified_icmp(f: &[u8]) -> (Ipv4Header, Icmpv4Header, Vec<u8>) {
    let h = PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("no IPv4")
    };
    assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "outer IPv4 checksum");
    let Some(TransportHeader::Icmpv4(icmp)) = h.transport else {
        panic!("no ICMP")
    };
    let quote = h.payload.slice().to_vec();
    assert_eq!(icmp.checksum, icmp.icmp_type.calc_checksum(&quote), "ICMP checksum");
    (ip, icmp, quote)
}

/// The quoted header (its checksum verified) and the quoted ports.
fn quoted(quote: &[u8]) -> (Ipv4Header, (u16, u16)) {
    let (h, rest) = Ipv4Header::from_slice(quote).unwrap();
    assert_eq!(h.header_checksum, h.calc_header_checksum(), "quoted IPv4 checksum");
    (
        h,
        (
            u16::from_be_bytes([rest[0], rest[1]]),
            u16::from_be_bytes([rest[2], rest[3]]),
        ),
    )
}

fn addrs(h: &Ipv4Header) -> (Ipv4Addr, Ipv4Addr) {
    (h.source.into(), h.destination.into())
}

fn frag_needed(mtu: u16) -> Icmpv4Type {
    Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: mtu })
}

/// A router on the client's path says our reply (VIP:80 → client) was too big.
fn frag_needed_about_reply() -> Vec<u8> {
    let reply = tcp_packet((VIP, 80), (CLIENT, CPORT), false);
    icmp_frame(ROUTER_MAC, ROUTER, VIP, frag_needed(1400), &reply)
}

#[test]
fn dr_sends_an_error_about_a_reply_on_to_the_real_server_unchanged() {
    let (mut ipvs, _) = connected(Forward::Dr);
    let f = frag_needed_about_reply();
    let r = run(&mut ipvs, &f).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::ClientToRealServer, RIP));
    assert_eq!(r.counter_key(), "client_to_real_server:frag_needed");
    assert_eq!(&r.frame[6..12], &DIRECTOR_MAC);
    let (ip, icmp, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (ROUTER, VIP), "DR keeps the addresses");
    assert_eq!(ip.time_to_live, 63);
    assert_eq!(icmp.icmp_type, frag_needed(1400));
    assert_eq!(quote, f[ETH_LEN + 28..], "the quote is untouched");
    let stats = ipvs.snapshot(Instant::now()).services[0].stats;
    assert_eq!(stats.inpkts, 2, "SYN and the error count as incoming");
}

#[test]
fn tun_encapsulates_an_error_about_a_reply_to_the_real_server() {
    let (mut ipvs, _) = connected(Forward::Tun);
    let f = frag_needed_about_reply();
    let r = run(&mut ipvs, &f).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::ClientToRealServer, RIP));
    let (outer, _) = Ipv4Header::from_slice(&r.frame[ETH_LEN..]).unwrap();
    assert_eq!((outer.protocol.0, addrs(&outer)), (4, (DIRECTOR_IP, RIP)));
    assert_eq!(outer.identification, 77);
    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
    let mut inner = r.frame[..ETH_LEN].to_vec();
    inner.extend_from_slice(&r.frame[ETH_LEN + 20..]);
    let (ip, icmp, quote) = verified_icmp(&inner);
    assert_eq!((addrs(&ip), ip.time_to_live), ((ROUTER, VIP), 63));
    assert_eq!(icmp.icmp_type, frag_needed(1400));
    assert_eq!(quote, f[ETH_LEN + 28..]);
}

#[test]
fn nat_rewrites_an_error_about_a_reply_towards_the_real_server() {
    let (mut ipvs, _) = connected(Forward::Nat);
    let r = run(&mut ipvs, &frag_needed_about_reply()).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::ClientToRealServer, RIP));
    let (ip, icmp, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (ROUTER, RIP), "outer destination is the real server");
    assert_eq!(ip.time_to_live, 63);
    assert_eq!(icmp.icmp_type, frag_needed(1400), "type, code and MTU kept");
    let (q, ports) = quoted(&quote);
    assert_eq!(addrs(&q), (RIP, CLIENT), "the quote reads as the real server's reply");
    assert_eq!(ports, (8080, CPORT));
}

#[test]
fn fullnat_rewrites_an_error_about_a_reply_to_the_local_address_side() {
    let (mut ipvs, (laddr, lport)) = connected(Forward::FullNat);
    assert_eq!(laddr, LIP);
    let r = run(&mut ipvs, &frag_needed_about_reply()).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::ClientToRealServer, RIP));
    let (ip, _, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (LIP, RIP));
    let (q, ports) = quoted(&quote);
    assert_eq!(addrs(&q), (RIP, LIP));
    assert_eq!(ports, (8080, lport));
}

#[test]
fn nat_rewrites_a_real_servers_error_back_to_the_vip() {
    let (mut ipvs, _) = connected(Forward::Nat);
    let received = tcp_packet((CLIENT, CPORT), (RIP, 8080), true);
    let f = icmp_frame(
        RS_MAC,
        RIP,
        CLIENT,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
        &received,
    );
    let r = run(&mut ipvs, &f).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::RealServerToClient, CLIENT));
    assert_eq!(r.counter_key(), "real_server_to_client:port_unreachable");
    let (ip, icmp, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (VIP, CLIENT));
    assert_eq!(ip.time_to_live, 63);
    assert_eq!(
        icmp.icmp_type,
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port)
    );
    let (q, ports) = quoted(&quote);
    assert_eq!(addrs(&q), (CLIENT, VIP), "the quote reads as the client's request");
    assert_eq!(ports, (CPORT, 80));
    assert_eq!(
        quote[q.header_len() + 4..],
        received[20 + 4..],
        "beyond the ports, untouched"
    );
    let stats = ipvs.snapshot(Instant::now()).services[0].stats;
    assert_eq!((stats.inpkts, stats.outpkts), (1, 1), "counted as outgoing");
}

#[test]
fn fullnat_rewrites_a_real_servers_error_back_to_client_and_vip() {
    let (mut ipvs, (laddr, lport)) = connected(Forward::FullNat);
    let received = tcp_packet((laddr, lport), (RIP, 8080), true);
    let f = icmp_frame(
        RS_MAC,
        RIP,
        LIP,
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
        &received,
    );
    let r = run(&mut ipvs, &f).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::RealServerToClient, CLIENT));
    assert_eq!(r.counter_key(), "real_server_to_client:time_exceeded");
    let (ip, _, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (VIP, CLIENT));
    let (q, ports) = quoted(&quote);
    assert_eq!(addrs(&q), (CLIENT, VIP));
    assert_eq!(ports, (CPORT, 80));
}

/// What a TUN real server without a decapsulator answers to our IP-in-IP:
/// `t` from RIP to the director, quoting the encapsulated SYN.
fn error_about_our_tunnel(t: Icmpv4Type, dont_fragment: bool) -> (Vec<u8>, Vec<u8>) {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 0x10], DIRECTOR_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .tcp(CPORT, 80, 1000, 64240)
        .syn()
        .write(&mut f, b"")
        .unwrap();
    if !dont_fragment {
        f[ETH_LEN + 6] &= !0x40;
        refresh_header(&mut f);
    }
    let mut ip = parse_ip(&f);
    let tunnel = Tunnel {
        outer_src: DIRECTOR_IP,
        outer_dst: RIP,
        ip_id: 5,
        our_mac: Mac(DIRECTOR_MAC),
        next_hop_mac: Mac(RS_MAC),
    };
    let sent = forward::encapsulate_ipip(&mut f, &mut ip, Csum::Complete, tunnel).unwrap();
    let inner = sent[ETH_LEN + 20..].to_vec();
    (icmp_frame(RS_MAC, RIP, DIRECTOR_IP, t, &sent[ETH_LEN..]), inner)
}

#[test]
fn tun_turns_an_error_about_our_tunnel_into_one_from_the_vip_to_the_client() {
    let (mut ipvs, _) = connected(Forward::Tun);
    let unreachable = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Protocol);
    let (f, inner) = error_about_our_tunnel(unreachable.clone(), true);
    let r = run(&mut ipvs, &f).expect("relayed");
    assert_eq!((r.route, r.next_hop), (Route::TunnelToClient, CLIENT));
    assert_eq!(r.counter_key(), "tunnel_to_client:protocol_unreachable");
    assert_eq!(&r.frame[6..12], &DIRECTOR_MAC);
    let (ip, icmp, quote) = verified_icmp(&r.frame);
    assert_eq!(addrs(&ip), (VIP, CLIENT), "from the VIP the client talked to");
    assert_eq!((ip.time_to_live, ip.identification, ip.dont_fragment), (64, 77, false));
    assert_eq!(icmp.icmp_type, unreachable, "same type and code");
    assert_eq!(quote, inner, "about the client's own packet");
    let (q, ports) = quoted(&quote);
    assert_eq!((addrs(&q), ports), ((CLIENT, VIP), (CPORT, 80)));
    let stats = ipvs.snapshot(Instant::now()).services[0].stats;
    assert_eq!(stats.outpkts, 1, "the kernel counts it as outgoing");
}

#[test]
fn tun_frag_needed_announces_the_mtu_less_the_outer_header_only_with_df() {
    let (mut ipvs, _) = connected(Forward::Tun);
    let (f, _) = error_about_our_tunnel(frag_needed(1400), true);
    let r = run(&mut ipvs, &f).expect("relayed");
    let (_, icmp, _) = verified_icmp(&r.frame);
    assert_eq!(icmp.icmp_type, frag_needed(1380));

    let (f, _) = error_about_our_tunnel(frag_needed(80), true);
    let (_, icmp, _) = verified_icmp(&run(&mut ipvs, &f).expect("relayed").frame);
    assert_eq!(icmp.icmp_type, frag_needed(80), "too small to lower (68 + 20 or less)");

    let (f, _) = error_about_our_tunnel(frag_needed(1400), false);
    assert_eq!(
        run(&mut ipvs, &f).unwrap_err(),
        Skip::NotRelayed(NotRelayed::TunnelNoDf),
        "without DF the client does no path MTU discovery"
    );
}

#[test]
fn errors_that_are_not_ours_say_why() {
    let (mut ipvs, _) = connected(Forward::Nat);
    let not_relayed = |r: Result<Relayed, Skip>| match r {
        Err(Skip::NotRelayed(why)) => why,
        other => panic!("expected not relayed: {other:?}"),
    };
    // Someone else's connection.
    let stranger = tcp_packet((VIP, 80), (CLIENT, CPORT + 1), false);
    let f = icmp_frame(ROUTER_MAC, ROUTER, VIP, frag_needed(1400), &stranger);
    assert_eq!(not_relayed(run(&mut ipvs, &f)), NotRelayed::NoConnection);
    // An echo request to the VIP.
    let mut echo = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, DIRECTOR_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut echo, b"ping")
        .unwrap();
    assert_eq!(not_relayed(run(&mut ipvs, &echo)), NotRelayed::NotAnError);
    // A corrupted checksum.
    let mut bad = frag_needed_about_reply();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    assert_eq!(not_relayed(run(&mut ipvs, &bad)), NotRelayed::BadChecksum);
    // To the director's own address, about something else than our tunnel.
    let reply = tcp_packet((DIRECTOR_IP, 22), (CLIENT, CPORT), false);
    let f = icmp_frame(ROUTER_MAC, ROUTER, DIRECTOR_IP, frag_needed(1400), &reply);
    assert_eq!(not_relayed(run(&mut ipvs, &f)), NotRelayed::ForTheKernel);
    // About IP-in-IP to a server that is no tunnel destination.
    let (f, _) = error_about_our_tunnel(frag_needed(1400), true);
    assert_eq!(not_relayed(run(&mut ipvs, &f)), NotRelayed::UnknownTunnel);
    // A quote without ports.
    let short = &tcp_packet((VIP, 80), (CLIENT, CPORT), false)[..20];
    let f = icmp_frame(ROUTER_MAC, ROUTER, VIP, frag_needed(1400), short);
    assert_eq!(not_relayed(run(&mut ipvs, &f)), NotRelayed::QuotedNoPorts);
    // The last hop.
    let mut dying = frag_needed_about_reply();
    dying[ETH_LEN + 8] = 1;
    refresh_header(&mut dying);
    assert_eq!(not_relayed(run(&mut ipvs, &dying)), NotRelayed::TtlExceeded);
    // A fragment.
    let mut piece = frag_needed_about_reply();
    piece[ETH_LEN + 6] |= 0x20;
    refresh_header(&mut piece);
    assert_eq!(not_relayed(run(&mut ipvs, &piece)), NotRelayed::Fragment);
    assert_eq!(
        ipvs.snapshot(Instant::now()).services[0].stats.inpkts,
        2,
        "the SYN, and the dying one"
    );
}

#[test]
fn malformed_icmp_is_counted_as_such_and_never_panics() {
    let (mut ipvs, _) = connected(Forward::Nat);
    let f = frag_needed_about_reply();
    // Cut inside the quoted header: the IPv4 total length is made to match.
    let mut cut = f[..ETH_LEN + 20 + 8 + 12].to_vec();
    let total = (cut.len() - ETH_LEN) as u16;
    cut[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&total.to_be_bytes());
    refresh_header(&mut cut);
    assert_eq!(
        run(&mut ipvs, &cut).unwrap_err(),
        Skip::Malformed(IcmpMalformed::QuotedHeader)
    );
    let mut tiny = f[..ETH_LEN + 20 + 4].to_vec();
    tiny[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&24u16.to_be_bytes());
    refresh_header(&mut tiny);
    assert_eq!(
        run(&mut ipvs, &tiny).unwrap_err(),
        Skip::Malformed(IcmpMalformed::Truncated)
    );
    // Every length of a tunnel error, as a frame whose IP length matches.
    let (mut ipvs, _) = connected(Forward::Tun);
    let (tunnel, _) = error_about_our_tunnel(frag_needed(1400), true);
    for n in ETH_LEN + 20..tunnel.len() {
        let mut g = tunnel[..n].to_vec();
        g[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&((n - ETH_LEN) as u16).to_be_bytes());
        refresh_header(&mut g);
        let _ = run(&mut ipvs, &g);
    }
}
