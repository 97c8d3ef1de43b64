//! Byte layouts of IPVS generic netlink messages (ipvs.md §6.1), written out
//! by hand, against the encoder and decoder. Little-endian hosts only (the
//! host-order fields are spelled in that order).

#![cfg(target_endian = "little")]

use std::net::Ipv4Addr;
use std::time::Duration;

use netlink_packet_core::{
    Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, ParseableParametrized, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlHeader, GenlMessage};

use super::genl::{Cmd, CmdAttr, DestAttr, IpvsMessage, Stats, SvcAttr};
use super::objects::{self, decode_dest, decode_service, fwd, svc_flags};
use crate::ipvs::{DestConfig, Forward, Proto, Scheduler, ServiceConfig, ServiceKey};

const FAMILY_ID: u16 = 0x1c;

fn request_bytes(msg: IpvsMessage, seq: u32) -> Vec<u8> {
    let mut genl = GenlMessage::from_payload(msg);
    genl.set_resolved_family_id(FAMILY_ID);
    genl.finalize();
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(genl));
    m.finalize();
    let mut buf = vec![0; m.buffer_len()];
    m.serialize(&mut buf);
    buf
}

/// One attribute with its header and padding.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut v = ((4 + value.len()) as u16).to_le_bytes().to_vec();
    v.extend(kind.to_le_bytes());
    v.extend(value);
    v.resize((v.len() + 3) & !3, 0);
    v
}

fn parse(cmd: u8, attrs: &[u8]) -> IpvsMessage {
    IpvsMessage::parse_with_param(attrs, GenlHeader { cmd, version: 1 }).unwrap()
}

#[test]
fn new_service_is_laid_out_like_ipvsadm_sends_it() {
    let svc = ServiceConfig::new(Proto::Tcp, Ipv4Addr::new(192, 0, 2, 100), 80, Scheduler::Rr);
    let msg = IpvsMessage::new(
        Cmd::NewService,
        vec![CmdAttr::Service(objects::service_attrs(&svc).unwrap())],
    );
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        // nlmsghdr: length 104, type = family id, flags REQUEST|ACK, seq 7, pid 0
        104, 0, 0, 0,  0x1c, 0,  0x05, 0,  7, 0, 0, 0,  0, 0, 0, 0,
        // genlmsghdr: cmd NEW_SERVICE (1), version 1
        1, 1, 0, 0,
        // IPVS_CMD_ATTR_SERVICE (1) | NLA_F_NESTED, length 84
        84, 0, 0x01, 0x80,
        //   AF (1) = AF_INET, u16 host order
        6, 0, 1, 0,  2, 0, 0, 0,
        //   PROTOCOL (2) = TCP
        6, 0, 2, 0,  6, 0, 0, 0,
        //   ADDR (3): 16 bytes, IPv4 first
        20, 0, 3, 0,  192, 0, 2, 100,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
        //   PORT (4) = 80, network order
        6, 0, 4, 0,  0, 80, 0, 0,
        //   SCHED_NAME (6) = "rr\0"
        7, 0, 6, 0,  b'r', b'r', 0, 0,
        //   FLAGS (7) = {flags 0, mask ~0}
        12, 0, 7, 0,  0, 0, 0, 0,  0xff, 0xff, 0xff, 0xff,
        //   TIMEOUT (8) = 0
        8, 0, 8, 0,  0, 0, 0, 0,
        //   NETMASK (9) = 255.255.255.255, network order
        8, 0, 9, 0,  0xff, 0xff, 0xff, 0xff,
    ];
    assert_eq!(request_bytes(msg, 7), expected);
}

#[test]
fn persistence_one_packet_and_sched_flags_set_the_flag_bits() {
    let mut svc = ServiceConfig::new(Proto::Udp, Ipv4Addr::new(10, 0, 0, 10), 53, Scheduler::Sh);
    svc.persistence = Some(Duration::from_secs(360));
    svc.persistence_netmask = Ipv4Addr::new(255, 255, 255, 0);
    svc.one_packet = true;
    svc.flags.sh_fallback = true;
    svc.flags.sh_port = true;
    let attrs = objects::service_attrs(&svc).unwrap();
    let want = svc_flags::PERSISTENT | svc_flags::ONEPACKET | svc_flags::SCHED1 | svc_flags::SCHED2;
    assert!(attrs.contains(&SvcAttr::Flags {
        flags: want,
        mask: u32::MAX
    }));
    assert!(attrs.contains(&SvcAttr::Timeout(360)));
    assert!(attrs.contains(&SvcAttr::Netmask([255, 255, 255, 0])));
    assert!(attrs.contains(&SvcAttr::Protocol(17)));
    let bytes = {
        let a = SvcAttr::Flags {
            flags: want,
            mask: u32::MAX,
        };
        let mut b = vec![0; a.buffer_len()];
        a.emit(&mut b);
        b
    };
    assert_eq!(bytes, [12, 0, 7, 0, 0x1d, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn every_scheduler_name_fits_the_kernel() {
    for &scheduler in Scheduler::ALL {
        let svc = ServiceConfig::new(Proto::Tcp, Ipv4Addr::new(192, 0, 2, 100), 80, scheduler);
        assert!(objects::service_attrs(&svc).is_ok(), "{scheduler}");
    }
}

#[test]
fn new_dest_carries_the_service_ident_and_the_whole_dest() {
    let key = objects::key_of(&ServiceConfig::new(
        Proto::Tcp,
        Ipv4Addr::new(192, 0, 2, 100),
        80,
        Scheduler::Rr,
    ));
    let mut d = DestConfig::new(Ipv4Addr::new(192, 0, 2, 11), 80, 3, Forward::Tun);
    d.upper_threshold = 100;
    d.lower_threshold = 50;
    // The one builder for setup and for a health checker's ADD_DEST.
    let msg = objects::new_dest_message(&key, &d).unwrap();
    let bytes = request_bytes(msg, 1);
    assert_eq!(&bytes[16..20], &[5, 1, 0, 0], "genl cmd NEW_DEST");
    // SERVICE ident nest: AF, PROTOCOL, ADDR, PORT = 8+8+20+8 bytes + header.
    assert_eq!(&bytes[20..24], &[48, 0, 0x01, 0x80]);
    let dest_nest = &bytes[20 + 48..];
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        vec![80, 0, 0x02, 0x80],
        nla(11, &2u16.to_le_bytes()),               // ADDR_FAMILY
        nla(1, &[192, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        nla(2, &[0, 80]),                           // PORT, network order
        nla(3, &2u32.to_le_bytes()),                // FWD_METHOD tunnel
        nla(4, &3u32.to_le_bytes()),                // WEIGHT
        nla(13, &[0]),                              // TUN_TYPE ipip
        nla(5, &100u32.to_le_bytes()),              // U_THRESH
        nla(6, &50u32.to_le_bytes()),               // L_THRESH
    ]
    .concat();
    assert_eq!(dest_nest, &expected[..]);
    assert_eq!(bytes.len(), 20 + 48 + 80);
}

#[test]
fn del_dest_carries_the_service_ident_and_only_the_dests_address() {
    let key = objects::key_of(&ServiceConfig::new(
        Proto::Tcp,
        Ipv4Addr::new(192, 0, 2, 100),
        80,
        Scheduler::Rr,
    ));
    let bytes = request_bytes(objects::del_dest_message(&key, Ipv4Addr::new(192, 0, 2, 11), 8080), 1);
    assert_eq!(&bytes[16..20], &[7, 1, 0, 0], "genl cmd DEL_DEST");
    assert_eq!(&bytes[20..24], &[48, 0, 0x01, 0x80]);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        vec![40, 0, 0x02, 0x80],
        nla(11, &2u16.to_le_bytes()),               // ADDR_FAMILY
        nla(1, &[192, 0, 2, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        nla(2, &8080u16.to_be_bytes()),             // PORT, network order
    ]
    .concat();
    assert_eq!(&bytes[20 + 48..], &expected[..]);
}

#[test]
fn forwarding_methods_map_to_the_uapi_numbers() {
    assert_eq!(objects::fwd_method(Forward::Dr).unwrap(), fwd::DROUTE);
    assert_eq!(objects::fwd_method(Forward::Nat).unwrap(), fwd::MASQ);
    assert_eq!(objects::fwd_method(Forward::Tun).unwrap(), fwd::TUNNEL);
    assert!(objects::fwd_method(Forward::FullNat).is_err());
}

/// A service as a kernel dumps it: no NLA_F_NESTED, HASHED set, STATS with
/// u32 counters and u64 byte counters behind a PAD, and STATS64.
#[test]
fn dumped_service_decodes_with_hashed_masked_and_stats64_preferred() {
    let stats32 = [
        nla(1, &40u32.to_le_bytes()),
        nla(2, &612u32.to_le_bytes()),
        nla(3, &0u32.to_le_bytes()),
        nla(11, &[]),
        nla(4, &123_456u64.to_le_bytes()),
        nla(5, &0u64.to_le_bytes()),
    ]
    .concat();
    let stats64 = [
        nla(1, &41u64.to_le_bytes()),
        nla(2, &613u64.to_le_bytes()),
        nla(4, &5_000_000_000u64.to_le_bytes()),
    ]
    .concat();
    let mut flags = (svc_flags::PERSISTENT | svc_flags::HASHED).to_le_bytes().to_vec();
    flags.extend(u32::MAX.to_le_bytes());
    let svc = [
        nla(1, &2u16.to_le_bytes()),
        nla(2, &6u16.to_le_bytes()),
        nla(3, &[207, 175, 44, 110, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        nla(4, &8080u16.to_be_bytes()),
        nla(6, b"wlc\0"),
        nla(7, &flags),
        nla(8, &360u32.to_le_bytes()),
        nla(9, &[255, 255, 255, 0]),
        nla(10, &stats32),
        nla(12, &stats64),
    ]
    .concat();
    let msg = parse(1, &nla(1, &svc));
    assert_eq!(msg.cmd, Cmd::NewService);
    let attrs = msg.service().unwrap();
    let s = decode_service(attrs).unwrap().unwrap();
    assert_eq!(s.key.vip, Ipv4Addr::new(207, 175, 44, 110));
    assert_eq!((s.key.port, s.key.proto), (8080, Proto::Tcp));
    assert_eq!(s.scheduler, "wlc");
    assert_eq!(s.flags, svc_flags::PERSISTENT, "HASHED is internal");
    assert_eq!((s.timeout, s.netmask), (360, Ipv4Addr::new(255, 255, 255, 0)));
    assert_eq!(
        (s.stats.conns, s.stats.inpkts, s.stats.inbytes),
        (41, 613, 5_000_000_000)
    );
    // The 32-bit set decoded too, PAD skipped.
    let stats = attrs
        .iter()
        .find_map(|a| if let SvcAttr::Stats(s) = a { Some(*s) } else { None })
        .unwrap();
    assert_eq!((stats.conns, stats.inpkts, stats.inbytes), (40, 612, 123_456));
}

#[test]
fn fwmark_services_decode_by_their_mark() {
    let svc = [
        nla(1, &2u16.to_le_bytes()),
        nla(5, &7u32.to_le_bytes()),
        nla(6, b"sh\0"),
    ]
    .concat();
    let msg = parse(1, &nla(1, &svc));
    let svc = decode_service(msg.service().unwrap()).unwrap().unwrap();
    assert_eq!(svc.key, ServiceKey::fwmark(7));
    assert_eq!(svc.scheduler, "sh");
    // The ident libipvs sends: AF and FWMARK, no PROTOCOL/ADDR/PORT.
    assert_eq!(
        objects::ident_attrs(&ServiceKey::fwmark(7)),
        vec![SvcAttr::Af(2), SvcAttr::Fwmark(7)]
    );
}

/// The case the published netlink-packet-ipvs crate panics on: DR and TUN dests.
#[test]
fn dumped_route_and_tunnel_dests_decode() {
    for (method, forward) in [(3u32, Forward::Dr), (2, Forward::Tun), (0, Forward::Nat)] {
        let dest = [
            nla(1, &[172, 16, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            nla(2, &8080u16.to_be_bytes()),
            nla(3, &method.to_le_bytes()),
            nla(4, &2u32.to_le_bytes()),
            nla(5, &0u32.to_le_bytes()),
            nla(6, &0u32.to_le_bytes()),
            nla(7, &5u32.to_le_bytes()),
            nla(8, &20u32.to_le_bytes()),
            nla(9, &1u32.to_le_bytes()),
            nla(11, &2u16.to_le_bytes()),
            nla(13, &[0]),
            nla(14, &0u16.to_be_bytes()),
            nla(15, &0u16.to_le_bytes()),
            nla(99, &[1, 2, 3]), // an attribute from a newer kernel
        ]
        .concat();
        let msg = parse(5, &nla(2, &dest));
        let d = decode_dest(msg.dest().unwrap()).unwrap();
        assert_eq!((d.addr, d.port, d.weight), (Ipv4Addr::new(172, 16, 0, 2), 8080, 2));
        assert_eq!((d.active_conns, d.inact_conns, d.persist_conns), (5, 20, 1));
        assert_eq!(objects::forward_of(d.fwd_method), forward);
    }
}

#[test]
fn info_reply_uses_the_info_attribute_space() {
    let body = [nla(1, &0x010201u32.to_le_bytes()), nla(2, &4096u32.to_le_bytes())].concat();
    let msg = parse(14, &body);
    assert_eq!(
        msg.attrs,
        vec![CmdAttr::InfoVersion(0x010201), CmdAttr::InfoConnTabSize(4096)]
    );
}

#[test]
fn every_attribute_survives_a_round_trip() {
    let stats = Stats {
        conns: 1,
        inpkts: 2,
        outpkts: 3,
        inbytes: 4,
        outbytes: 5,
        cps: 6,
        inpps: 7,
        outpps: 8,
        inbps: 9,
        outbps: 10,
    };
    let msg = IpvsMessage::new(
        Cmd::SetDest,
        vec![
            CmdAttr::Service(vec![
                SvcAttr::Af(2),
                SvcAttr::Protocol(17),
                SvcAttr::Addr(vec![10, 0, 0, 10]),
                SvcAttr::Port(53),
                SvcAttr::SchedName("mh".into()),
                SvcAttr::Flags {
                    flags: 0x18,
                    mask: 0x38,
                },
                SvcAttr::Timeout(90),
                SvcAttr::Netmask([255, 255, 0, 0]),
                SvcAttr::PeName("sip".into()),
                SvcAttr::Stats64(stats),
            ]),
            CmdAttr::Dest(vec![
                DestAttr::Addr(vec![10, 0, 0, 1]),
                DestAttr::Port(5353),
                DestAttr::FwdMethod(3),
                DestAttr::Weight(65535),
                DestAttr::UThresh(9),
                DestAttr::LThresh(8),
                DestAttr::ActiveConns(7),
                DestAttr::InactConns(6),
                DestAttr::PersistConns(5),
                DestAttr::Stats64(stats),
                DestAttr::AddrFamily(2),
                DestAttr::TunType(1),
                DestAttr::TunPort(6080),
                DestAttr::TunFlags(2),
            ]),
            CmdAttr::TimeoutTcp(900),
            CmdAttr::TimeoutTcpFin(120),
            CmdAttr::TimeoutUdp(300),
        ],
    );
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    assert_eq!(parse(6, &buf), msg);
}

#[test]
fn truncated_attributes_are_an_error_not_a_panic() {
    let svc = [nla(1, &2u16.to_le_bytes()), nla(7, &[1, 2, 3])].concat();
    let err = IpvsMessage::parse_with_param(&nla(1, &svc)[..], GenlHeader { cmd: 1, version: 1 }).unwrap_err();
    assert!(err.to_string().contains("FLAGS"), "{err}");
    let cut = &nla(1, &svc)[..10];
    assert!(IpvsMessage::parse_with_param(cut, GenlHeader { cmd: 1, version: 1 }).is_err());
}
