//! Rewriting on crafted frames: every output is re-parsed with etherparse and
//! its checksums verified independently of our checksum code.

use std::net::Ipv4Addr;

use etherparse::{Ipv4Header, NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};

use super::drops::DropReason;
use super::forward::{self, Csum, Rewrite, Tunnel};
use super::frame::{self, Frame, Ipv4Frame, Malformed};
use crate::wire::checksum;
use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
use crate::wire::Mac;

const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
const DIRECTOR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x01];
const RS_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x21];
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);
const DIRECTOR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n";

fn tcp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 64240)
        .ack(1)
        .psh();
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn udp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, DIRECTOR_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

fn parse_ip(f: &[u8]) -> Ipv4Frame {
    match frame::parse(f).unwrap() {
        Frame::Ipv4(ip) => ip,
        other => panic!("not IPv4: {other:?}"),
    }
}

/// What CHECKSUM_PARTIAL leaves in the field: the folded pseudo-header sum.
fn make_partial(f: &mut [u8]) {
    let ip = parse_ip(f);
    let seed = checksum::fold(checksum::pseudo_header_sum(
        ip.saddr,
        ip.daddr,
        ip.protocol.0,
        ip.l4_len() as u16,
    ));
    let at = ip.l4_offset() + ip.l4_csum_at().unwrap();
    f[at..at + 2].copy_from_slice(&seed.to_be_bytes());
}

/// Parses `f` and checks the IPv4 header checksum and the L4 checksum.
fn verified(f: &[u8]) -> (Ipv4Header, TransportHeader, Vec<u8>) {
    let h = PacketHeaders::from_ethernet_slice(f).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else {
        panic!("no IPv4")
    };
    assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "IPv4 header checksum");
    let payload = h.payload.slice().to_vec();
    let transport = h.transport.unwrap();
    match &transport {
        TransportHeader::Tcp(t) => assert_eq!(t.checksum, t.calc_checksum_ipv4(&ip, &payload).unwrap(), "TCP checksum"),
        TransportHeader::Udp(u) => assert_eq!(u.checksum, u.calc_checksum_ipv4(&ip, &payload).unwrap(), "UDP checksum"),
        other => panic!("unexpected transport {other:?}"),
    }
    (ip, transport, payload)
}

fn ports(t: &TransportHeader) -> (u16, u16) {
    match t {
        TransportHeader::Tcp(t) => (t.source_port, t.destination_port),
        TransportHeader::Udp(u) => (u.source_port, u.destination_port),
        _ => unreachable!(),
    }
}

#[test]
fn crafted_partial_frame_really_fails_verification() {
    // Guards the tests below: a partial frame must not pass as complete.
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    make_partial(&mut f);
    let h = PacketHeaders::from_ethernet_slice(&f).unwrap();
    let Some(NetHeaders::Ipv4(ip, _)) = h.net else { panic!() };
    let Some(TransportHeader::Tcp(t)) = h.transport else {
        panic!()
    };
    assert_ne!(t.checksum, t.calc_checksum_ipv4(&ip, h.payload.slice()).unwrap());
}

#[test]
fn dr_rewrites_macs_only_and_completes_partial_checksum() {
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    make_partial(&mut f);
    let original = f.clone();
    let mut ip = parse_ip(&f);
    assert!(forward::forward_dr(&mut f, &mut ip, Csum::Partial, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
    assert_eq!(&f[0..6], &RS_MAC);
    assert_eq!(&f[6..12], &DIRECTOR_MAC);
    let (iph, t, payload) = verified(&f);
    assert_eq!(
        (iph.source, iph.destination),
        (CLIENT.octets(), VIP.octets()),
        "DR keeps the addresses"
    );
    assert_eq!(ports(&t), (40000, 80));
    assert_eq!(iph.time_to_live, 63);
    assert_eq!(payload, PAYLOAD);
    assert_eq!(f.len(), original.len());
}

#[test]
fn dr_leaves_a_complete_checksum_alone_and_strips_padding() {
    // A bare SYN is 54 bytes; on the wire it is padded to 60.
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, b"");
    let unpadded_len = f.len();
    f.resize(60, 0xee);
    let mut ip = parse_ip(&f);
    assert!(forward::forward_dr(&mut f, &mut ip, Csum::Complete, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
    assert_eq!(f.len(), unpadded_len);
    verified(&f);
}

#[test]
fn dr_refuses_ttl_one() {
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    f[ETH_LEN + 8] = 1;
    let mut ip = parse_ip(&f);
    assert_eq!(
        forward::forward_dr(&mut f, &mut ip, Csum::Complete, Mac(DIRECTOR_MAC), Mac(RS_MAC)),
        Err(DropReason::TtlExceeded)
    );
}

#[test]
fn nat_request_and_reply_rewrites_verify_for_complete_and_partial_checksums() {
    for csum in [Csum::Complete, Csum::Partial] {
        // Request: client → VIP:80 becomes client → RIP:8080.
        let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
        if csum == Csum::Partial {
            make_partial(&mut f);
        }
        let mut ip = parse_ip(&f);
        let rw = Rewrite {
            saddr: CLIENT,
            sport: 40000,
            daddr: RIP,
            dport: 8080,
        };
        assert!(forward::forward_rewrite(&mut f, &mut ip, csum, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
        let (iph, t, payload) = verified(&f);
        assert_eq!((iph.source, iph.destination), (CLIENT.octets(), RIP.octets()));
        assert_eq!(ports(&t), (40000, 8080));
        assert_eq!(payload, PAYLOAD);

        // Reply: RIP:8080 → client becomes VIP:80 → client.
        let mut f = tcp_frame(RIP, 8080, CLIENT, 40000, b"HTTP/1.1 200 OK\r\n\r\nrs1");
        if csum == Csum::Partial {
            make_partial(&mut f);
        }
        let mut ip = parse_ip(&f);
        let rw = Rewrite {
            saddr: VIP,
            sport: 80,
            daddr: CLIENT,
            dport: 40000,
        };
        assert!(forward::forward_rewrite(&mut f, &mut ip, csum, rw, Mac(DIRECTOR_MAC), Mac(CLIENT_MAC)).is_ok());
        let (iph, t, _) = verified(&f);
        assert_eq!((iph.source, iph.destination), (VIP.octets(), CLIENT.octets()));
        assert_eq!(ports(&t), (80, 40000));
        assert_eq!(&f[0..6], &CLIENT_MAC);
    }
}

#[test]
fn nat_udp_rewrite_verifies_and_zero_checksum_stays_zero() {
    let mut f = udp_frame(CLIENT, 5353, VIP, 53, b"query");
    let mut ip = parse_ip(&f);
    let rw = Rewrite {
        saddr: CLIENT,
        sport: 5353,
        daddr: RIP,
        dport: 5300,
    };
    assert!(forward::forward_rewrite(&mut f, &mut ip, Csum::Complete, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
    verified(&f);

    let mut f = udp_frame(CLIENT, 5353, VIP, 53, b"query");
    let at = ETH_LEN + 20 + 6;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    let mut ip = parse_ip(&f);
    assert!(forward::forward_rewrite(&mut f, &mut ip, Csum::Complete, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
    assert_eq!(&f[at..at + 2], &[0, 0]);
}

#[test]
fn gso_rewrite_keeps_a_valid_pseudo_header_seed() {
    let mut f = tcp_frame(RIP, 8080, CLIENT, 40000, &[7u8; 3000]);
    make_partial(&mut f);
    let mut ip = parse_ip(&f);
    let len = ip.l4_len() as u16;
    let rw = Rewrite {
        saddr: VIP,
        sport: 80,
        daddr: CLIENT,
        dport: 40000,
    };
    assert!(forward::forward_rewrite(
        &mut f,
        &mut ip,
        Csum::PartialGso,
        rw,
        Mac(DIRECTOR_MAC),
        Mac(CLIENT_MAC)
    )
    .is_ok());
    let at = ETH_LEN + 20 + 16;
    let seed = u16::from_be_bytes([f[at], f[at + 1]]);
    assert_eq!(seed, checksum::fold(checksum::pseudo_header_sum(VIP, CLIENT, 6, len)));
    // Completing it (as the kernel will per segment) gives a valid checksum.
    let ip = parse_ip(&f);
    forward::complete_l4_checksum(&mut f, &ip);
    verified(&f);
}

#[test]
fn fullnat_both_directions_round_trip() {
    let lport = 61000;
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    make_partial(&mut f);
    let mut ip = parse_ip(&f);
    let rw = Rewrite {
        saddr: LIP,
        sport: lport,
        daddr: RIP,
        dport: 8080,
    };
    assert!(forward::forward_rewrite(&mut f, &mut ip, Csum::Partial, rw, Mac(DIRECTOR_MAC), Mac(RS_MAC)).is_ok());
    let (iph, t, payload) = verified(&f);
    assert_eq!((iph.source, iph.destination), (LIP.octets(), RIP.octets()));
    assert_eq!(ports(&t), (lport, 8080));
    assert_eq!(payload, PAYLOAD);

    let mut f = tcp_frame(RIP, 8080, LIP, lport, b"HTTP/1.1 200 OK\r\n\r\nrs1");
    let mut ip = parse_ip(&f);
    let rw = Rewrite {
        saddr: VIP,
        sport: 80,
        daddr: CLIENT,
        dport: 40000,
    };
    assert!(forward::forward_rewrite(&mut f, &mut ip, Csum::Complete, rw, Mac(DIRECTOR_MAC), Mac(CLIENT_MAC)).is_ok());
    let (iph, t, _) = verified(&f);
    assert_eq!((iph.source, iph.destination), (VIP.octets(), CLIENT.octets()));
    assert_eq!(ports(&t), (80, 40000));
}

#[test]
fn tun_encapsulation_header_fields() {
    let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    make_partial(&mut f);
    f[ETH_LEN + 1] = 0x28; // DSCP AF11: must be copied to the outer header
    let df_set = f[ETH_LEN + 6] & 0x40 != 0;
    let mut ip = parse_ip(&f);
    let inner_len = ip.total_len;
    let t = Tunnel {
        outer_src: DIRECTOR_IP,
        outer_dst: RIP,
        ip_id: 4242,
        our_mac: Mac(DIRECTOR_MAC),
        next_hop_mac: Mac(RS_MAC),
    };
    let out = forward::encapsulate_ipip(&mut f, &mut ip, Csum::Partial, t).unwrap();
    assert_eq!(&out[0..6], &RS_MAC);
    assert_eq!(&out[6..12], &DIRECTOR_MAC);
    let outer = Ipv4Header::from_slice(&out[ETH_LEN..]).unwrap().0;
    assert_eq!(outer.protocol.0, 4);
    assert_eq!(outer.source, DIRECTOR_IP.octets());
    assert_eq!(outer.destination, RIP.octets());
    assert_eq!(outer.identification, 4242);
    assert_eq!(outer.dont_fragment, df_set);
    assert_eq!(outer.time_to_live, 63, "outer TTL = inner TTL after the hop");
    assert_eq!(usize::from(outer.total_len), 20 + inner_len);
    assert_eq!(u8::from(outer.dscp), 0x28 >> 2);
    assert_eq!(outer.header_checksum, outer.calc_header_checksum());
    // The inner packet, as the decapsulator will see it, verifies.
    let mut inner = vec![0u8; ETH_LEN];
    inner[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    inner.extend_from_slice(&out[ETH_LEN + 20..]);
    let (iph, _, payload) = verified(&inner);
    assert_eq!(
        (iph.source, iph.destination, iph.time_to_live),
        (CLIENT.octets(), VIP.octets(), 63)
    );
    assert_eq!(payload, PAYLOAD);
}

/// What the director encapsulates, a TUN real server's decapsulator gives back: the
/// client's packet as it left the director (TTL decremented, checksums complete).
#[test]
fn encapsulated_frames_decapsulate_to_the_forwarded_packet() {
    for partial in [false, true] {
        let mut f = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
        let csum = if partial {
            make_partial(&mut f);
            Csum::Partial
        } else {
            Csum::Complete
        };
        let mut ip = parse_ip(&f);
        let t = Tunnel {
            outer_src: DIRECTOR_IP,
            outer_dst: RIP,
            ip_id: 7,
            our_mac: Mac(DIRECTOR_MAC),
            next_hop_mac: Mac(RS_MAC),
        };
        let out = forward::encapsulate_ipip(&mut f, &mut ip, csum, t).unwrap();
        let inner = crate::wire::ipip::decapsulate(&out[ETH_LEN..]).expect("decapsulates");
        assert_eq!(inner, &f[ETH_LEN..], "the inner packet is the forwarded one");
        let mut framed = f[..ETH_LEN].to_vec();
        framed.extend_from_slice(inner);
        let (iph, _, payload) = verified(&framed);
        assert_eq!(iph.time_to_live, 63);
        assert_eq!(payload, PAYLOAD);
    }
}

#[test]
fn malformed_frames_are_classified_not_panicked_on() {
    let good = tcp_frame(CLIENT, 40000, VIP, 80, PAYLOAD);
    assert_eq!(frame::parse(&good[..10]).unwrap_err(), Malformed::TruncatedEthernet);
    assert_eq!(frame::parse(&good[..ETH_LEN + 12]).unwrap_err(), Malformed::Ipv4Header);

    let mut lie = good.clone();
    let too_long = (good.len() - ETH_LEN + 40) as u16;
    lie[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&too_long.to_be_bytes());
    assert_eq!(frame::parse(&lie).unwrap_err(), Malformed::Ipv4TotalLength);

    let mut ihl_lie = good.clone();
    ihl_lie[ETH_LEN] = 0x4f; // IHL 15 = 60 bytes of header
    ihl_lie.truncate(ETH_LEN + 40);
    ihl_lie[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&40u16.to_be_bytes());
    assert!(frame::parse(&ihl_lie).is_err());

    let mut offset = good.clone();
    offset[ETH_LEN + 20 + 12] = 0xf0; // data offset 15 words = 60 bytes > segment
    let cut = ETH_LEN + 20 + 40;
    offset.truncate(cut);
    offset[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&((cut - ETH_LEN) as u16).to_be_bytes());
    assert_eq!(frame::parse(&offset).unwrap_err(), Malformed::TcpHeader);

    let mut frag = good.clone();
    frag[ETH_LEN + 6..ETH_LEN + 8].copy_from_slice(&0x0010u16.to_be_bytes()); // offset 16*8
    let ip = parse_ip(&frag);
    assert!(ip.fragment && ip.l4.is_none(), "non-first fragment carries no ports");

    // Every prefix of a good frame parses or errors, never panics.
    for n in 0..good.len() {
        let _ = frame::parse(&good[..n]);
    }
}
