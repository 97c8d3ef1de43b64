//! The path builder over synthetic frames: each mode's rewriting shows at its hop.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use etherparse::PacketBuilder;

use super::index::TracedRequest;
use super::path::{self, attempt_of, Attempt, CapturedPlace, Direction};
use crate::capture::{CaptureFile, Frame, LinkType};
use crate::lvs::Proto;
use crate::wire::Mac;

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 40000);
const VIP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 100), 80);
const DIRECTOR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const RS2: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 22), 80);
const ISN: u32 = 1_000_000;
const SERVER_ISN: u32 = 3_000_000_000;

fn mac(last: u8) -> Mac {
    Mac([2, 0, 0, 0, 0, last])
}
const C_MAC: u8 = 0x0a;
const D_MAC: u8 = 0x01;
const R_MAC: u8 = 0x22;

fn macs() -> Vec<(Mac, String)> {
    vec![
        (mac(C_MAC), "client eth0".into()),
        (mac(D_MAC), "director eth0".into()),
        (mac(R_MAC), "rs2 eth0".into()),
    ]
}

#[derive(Clone, Copy)]
enum Seg {
    Syn,
    SynAck,
    Ack,
}

/// One TCP segment as bytes: Ethernet (unless `macs` is None: a TUN device's bare IP),
/// optionally inside an IP-in-IP header.
fn tcp(
    macs: Option<(u8, u8)>,
    outer: Option<(Ipv4Addr, Ipv4Addr)>,
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seg: Seg,
) -> Vec<u8> {
    let (seq, ack) = match seg {
        Seg::Syn => (ISN, None),
        Seg::SynAck => (SERVER_ISN, Some(ISN + 1)),
        Seg::Ack => (ISN + 1, Some(SERVER_ISN + 1)),
    };
    let ip = PacketBuilder::ipv4(src.ip().octets(), dst.ip().octets(), 64).tcp(src.port(), dst.port(), seq, 64240);
    let ip = match (seg, ack) {
        (Seg::Syn, _) => ip.syn(),
        (Seg::SynAck, Some(a)) => ip.syn().ack(a),
        (_, Some(a)) => ip.ack(a),
        (_, None) => ip,
    };
    let mut inner = Vec::new();
    ip.write(&mut inner, &[]).unwrap();
    let ip_bytes = match outer {
        Some((s, d)) => {
            let mut wrapped = Vec::new();
            PacketBuilder::ipv4(s.octets(), d.octets(), 64)
                .write(&mut wrapped, etherparse::IpNumber::IPV4, &inner)
                .unwrap();
            wrapped
        }
        None => inner,
    };
    match macs {
        Some((s, d)) => {
            let mut f = Vec::new();
            f.extend_from_slice(&mac(d).0);
            f.extend_from_slice(&mac(s).0);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(&ip_bytes);
            f
        }
        None => ip_bytes,
    }
}

struct Lab {
    files: Vec<CaptureFile>,
    frames: Vec<(LinkType, Vec<Frame>)>,
    clock: u32,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            files: Vec::new(),
            frames: Vec::new(),
            clock: 0,
        }
    }

    /// `data` seen at `host`'s `iface` (a segment when `host` is "switch"), `out` when sent.
    fn seen(&mut self, host: &str, iface: &str, out: bool, data: Vec<u8>) {
        let segment = (host == "switch").then(|| iface.to_owned());
        let link = if iface.starts_with("tunl") {
            LinkType::RawIp
        } else {
            LinkType::Ethernet
        };
        let i = match self.files.iter().position(|f| f.host == host && f.interface == iface) {
            Some(i) => i,
            None => {
                self.files.push(CaptureFile {
                    file: format!("{host}-{iface}.pcapng"),
                    host: host.into(),
                    interface: iface.into(),
                    segment,
                    link,
                    frames: 0,
                    dropped: 0,
                });
                self.frames.push((link, Vec::new()));
                self.files.len() - 1
            }
        };
        self.clock += 1;
        self.frames[i].1.push(Frame {
            timestamp: Duration::new(1_700_000_000, self.clock * 1000),
            outbound: out,
            data,
        });
    }

    fn path(&self, requests: &[TracedRequest], n: usize) -> path::RequestPath {
        let places: Vec<CapturedPlace<'_>> = self
            .files
            .iter()
            .zip(&self.frames)
            .map(|(file, (link, frames))| CapturedPlace::new(file, *link, frames))
            .collect();
        path::build(requests, &requests[n - 1], &places, &macs())
    }
}

fn request(local: Option<SocketAddrV4>, connection: u32, error: Option<&str>) -> TracedRequest {
    TracedRequest {
        number: connection as usize,
        client: "client".into(),
        proto: Proto::Tcp,
        target: VIP.into(),
        local: local.map(Into::into),
        connection,
        backend: error.is_none().then(|| "rs2".into()),
        error: error.map(Into::into),
    }
}

fn places_and_changes(leg: &path::Leg) -> Vec<(String, Option<Direction>, Vec<String>)> {
    leg.hops
        .iter()
        .map(|h| (h.place.clone(), h.direction, h.changed.clone()))
        .collect()
}

fn ch(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn dr_rewrites_only_the_destination_mac() {
    let mut lab = Lab::new();
    let syn_in = tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn);
    lab.seen("client", "eth0", true, syn_in.clone());
    lab.seen("switch", "lan", false, syn_in.clone());
    lab.seen("director", "eth0", false, syn_in);
    let syn_out = tcp(Some((D_MAC, R_MAC)), None, CLIENT, VIP, Seg::Syn);
    lab.seen("director", "eth0", true, syn_out.clone());
    lab.seen("rs2", "eth0", false, syn_out);
    let syn_ack = tcp(Some((R_MAC, C_MAC)), None, VIP, CLIENT, Seg::SynAck);
    lab.seen("rs2", "eth0", true, syn_ack.clone());
    lab.seen("client", "eth0", false, syn_ack);
    lab.seen(
        "client",
        "eth0",
        true,
        tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Ack),
    );
    let requests = [request(Some(CLIENT), 1, None)];
    let p = lab.path(&requests, 1);
    assert_eq!(p.from, Some(CLIENT));
    assert_eq!(p.legs.len(), 2);
    assert_eq!(p.legs[0].packet, "SYN");
    assert_eq!(
        places_and_changes(&p.legs[0]),
        vec![
            ("client eth0".into(), Some(Direction::Out), ch(&[])),
            ("segment lan".into(), None, ch(&[])),
            ("director eth0".into(), Some(Direction::In), ch(&[])),
            ("director eth0".into(), Some(Direction::Out), ch(&["dst MAC"])),
            ("rs2 eth0".into(), Some(Direction::In), ch(&[])),
        ]
    );
    assert_eq!(p.legs[0].hops[3].dst_mac_owner.as_deref(), Some("rs2 eth0"));
    assert_eq!(p.legs[1].packet, "SYN-ACK");
    assert_eq!(p.legs[1].hops.len(), 2, "the answer goes straight back to the client");
    let client = p.places.iter().find(|c| c.place == "client eth0").unwrap();
    assert_eq!((client.forward, client.back), (2, 1));
    assert_eq!(p.stopped, None);
    let text = super::render(&p);
    assert!(text.contains("rewritten: dst MAC"), "{text}");
    assert!(text.contains("(rs2 eth0)"), "{text}");
}

#[test]
fn nat_rewrites_the_destination_address_and_port_and_the_answer_back() {
    let rip = SocketAddrV4::new(*RS2.ip(), 8080);
    let mut lab = Lab::new();
    lab.seen(
        "client",
        "eth0",
        true,
        tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
    );
    lab.seen(
        "director",
        "eth1",
        true,
        tcp(Some((D_MAC, R_MAC)), None, CLIENT, rip, Seg::Syn),
    );
    lab.seen(
        "rs2",
        "eth0",
        true,
        tcp(Some((R_MAC, D_MAC)), None, rip, CLIENT, Seg::SynAck),
    );
    lab.seen(
        "director",
        "eth0",
        true,
        tcp(Some((D_MAC, C_MAC)), None, VIP, CLIENT, Seg::SynAck),
    );
    let requests = [request(Some(CLIENT), 1, None)];
    let p = lab.path(&requests, 1);
    assert_eq!(p.legs[0].hops[1].changed, ch(&["dst MAC", "dst IP", "dst port"]));
    assert_eq!(p.legs[1].hops[1].changed, ch(&["dst MAC", "src IP", "src port"]));
}

#[test]
fn tun_adds_an_outer_header_that_the_real_server_removes() {
    let mut lab = Lab::new();
    lab.seen(
        "client",
        "eth0",
        true,
        tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
    );
    let wrapped = tcp(
        Some((D_MAC, R_MAC)),
        Some((DIRECTOR_IP, *RS2.ip())),
        CLIENT,
        VIP,
        Seg::Syn,
    );
    lab.seen("director", "eth0", true, wrapped.clone());
    lab.seen("rs2", "eth0", false, wrapped);
    lab.seen("rs2", "tunl0", false, tcp(None, None, CLIENT, VIP, Seg::Syn));
    let requests = [request(Some(CLIENT), 1, None)];
    let p = lab.path(&requests, 1);
    let hops = &p.legs[0].hops;
    assert_eq!(hops[1].changed, ch(&["dst MAC", "outer header added"]));
    assert_eq!(
        (hops[1].outer_src, hops[1].outer_dst),
        (Some(DIRECTOR_IP), Some(*RS2.ip()))
    );
    assert_eq!(hops[3].place, "rs2 tunl0");
    assert_eq!(hops[3].changed, ch(&["outer header removed"]));
    assert!(super::render(&p).contains("[IPIP 192.0.2.2 → 192.0.2.22]"));
}

#[test]
fn fullnat_rewrites_both_addresses() {
    let local = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 2), 5000);
    let rip = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 22), 80);
    let mut lab = Lab::new();
    lab.seen(
        "client",
        "eth0",
        true,
        tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
    );
    lab.seen(
        "director",
        "eth1",
        true,
        tcp(Some((D_MAC, R_MAC)), None, local, rip, Seg::Syn),
    );
    lab.seen(
        "rs2",
        "eth0",
        true,
        tcp(Some((R_MAC, D_MAC)), None, rip, local, Seg::SynAck),
    );
    let requests = [request(Some(CLIENT), 1, None)];
    let p = lab.path(&requests, 1);
    assert_eq!(
        p.legs[0].hops[1].changed,
        ch(&["dst MAC", "src IP", "dst IP", "src port"]),
        "port 80 on both sides: the destination port stays"
    );
    assert_eq!(
        p.legs[1].hops.len(),
        1,
        "the answer to the director's local address is the connection's"
    );
}

#[test]
fn a_failed_request_shows_where_its_packets_stopped() {
    let mut lab = Lab::new();
    for _ in 0..2 {
        // The SYN and its retransmission: one hop each place.
        lab.seen(
            "client",
            "eth0",
            true,
            tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
        );
        lab.seen(
            "director",
            "eth0",
            false,
            tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
        );
        lab.seen(
            "director",
            "eth0",
            true,
            tcp(Some((D_MAC, R_MAC)), None, CLIENT, VIP, Seg::Syn),
        );
        lab.seen(
            "rs2",
            "eth0",
            false,
            tcp(Some((D_MAC, R_MAC)), None, CLIENT, VIP, Seg::Syn),
        );
    }
    let requests = [request(Some(CLIENT), 1, Some("timeout"))];
    let p = lab.path(&requests, 1);
    assert_eq!(p.legs.len(), 1);
    assert_eq!(p.legs[0].hops.len(), 4);
    assert_eq!(
        p.stopped.as_deref(),
        Some("the SYN was last seen at rs2 eth0 (received); nothing came back")
    );
    assert_eq!(
        p.places.iter().map(|c| c.forward).collect::<Vec<_>>(),
        vec![2, 4, 2],
        "the director saw each SYN in and out"
    );
}

#[test]
fn another_connection_on_the_same_addresses_is_not_this_one() {
    let mut lab = Lab::new();
    lab.seen(
        "client",
        "eth0",
        true,
        tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn),
    );
    // A later connection from the same fixed source port, with its own ISN.
    let mut other = tcp(Some((C_MAC, D_MAC)), None, CLIENT, VIP, Seg::Syn);
    other[14 + 20 + 4..14 + 20 + 8].copy_from_slice(&(ISN + 50_000_000).to_be_bytes());
    lab.seen("client", "eth0", true, other.clone());
    lab.seen("director", "eth0", false, other);
    let requests = [request(Some(CLIENT), 1, None), request(Some(CLIENT), 2, None)];
    let first = lab.path(&requests, 1);
    assert_eq!(
        first.places.len(),
        1,
        "only the client saw the first: {:?}",
        first.places
    );
    let second = lab.path(&requests, 2);
    assert_eq!(second.places.len(), 2);
}

#[test]
fn a_request_without_its_address_takes_the_attempt_no_other_claims() {
    let refused_from = SocketAddrV4::new(*CLIENT.ip(), 40001);
    let attempts = [
        Attempt {
            from: CLIENT,
            isn: Some(1),
        },
        Attempt {
            from: refused_from,
            isn: Some(2),
        },
    ];
    let requests = [request(Some(CLIENT), 1, None), request(None, 2, Some("refused"))];
    assert_eq!(attempt_of(&requests, &requests[1], &attempts), Some(attempts[1]));
    assert_eq!(attempt_of(&requests, &requests[0], &attempts), Some(attempts[0]));
    let never_sent = request(None, 3, Some("no route"));
    let requests = [requests[0].clone(), requests[1].clone(), never_sent];
    assert_eq!(attempt_of(&requests, &requests[2], &attempts), None);
}

#[test]
fn a_request_never_sent_says_so() {
    let lab = Lab::new();
    let requests = [request(None, 1, Some("no route"))];
    let p = lab.path(&requests, 1);
    assert!(p.legs.is_empty());
    assert!(p.stopped.unwrap().contains("never sent"));
}
