//! The path of one request, from the frames of every capture file: pure functions.
//!
//! A TCP request is its connection: the client's SYN (its address, port and initial sequence
//! number) is found on the client's own interface; the same SYN elsewhere (any place, any
//! addresses: DR, NAT, TUN and FULLNAT all keep the sequence number) gives the addresses the
//! connection takes at each hop, and a packet of one of those address pairs belongs to it when
//! its sequence number (or, going back, its acknowledgement) follows that SYN's. A UDP request
//! is its socket's datagrams: from the client's address and port, or back to it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use serde::Serialize;

use super::index::TracedRequest;
use crate::capture::{CaptureFile, Frame, LinkType};
use crate::lvs::Proto;
use crate::wire::{EtherType, EthernetFrame, IpProtocol, Ipv4Packet, Mac, TcpFlags, TcpPacket, UdpPacket};

/// How far past the SYN's sequence number a connection's bytes may go (HTTP requests and
/// answers here are small); a random ISN of another connection falls inside with odds 2^-12.
const SEQ_WINDOW: u32 = 1 << 20;

/// One capture file read back, its TCP and UDP packets parsed once for every request traced.
pub struct CapturedPlace<'a> {
    pub file: &'a CaptureFile,
    packets: Vec<(&'a Frame, Parsed)>,
}

impl<'a> CapturedPlace<'a> {
    pub fn new(file: &'a CaptureFile, link: LinkType, frames: &'a [Frame]) -> Self {
        let packets = frames
            .iter()
            .filter_map(|f| parse(link, &f.data).map(|p| (f, p)))
            .collect();
        CapturedPlace { file, packets }
    }
}

/// The addresses of one packet at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addressing {
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// The outer header of an IP-in-IP packet (LVS-TUN): (source, destination).
    pub outer: Option<(Ipv4Addr, Ipv4Addr)>,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    pub addressing: Addressing,
    pub proto: Proto,
    /// (flags, sequence number, acknowledgement number) of a TCP segment.
    pub tcp: Option<(TcpFlags, u32, u32)>,
}

/// The header and the payload (to the IP total length) of an IPv4 packet.
fn ipv4(bytes: &[u8]) -> Option<(Ipv4Packet<&[u8]>, &[u8])> {
    let p = Ipv4Packet::new_checked(bytes)?;
    let end = usize::from(p.total_len()).clamp(p.header_len(), bytes.len());
    Some((p, &bytes[p.header_len()..end]))
}

/// A TCP or UDP packet over IPv4 (inside IP-in-IP too); None for anything else.
pub fn parse(link: LinkType, data: &[u8]) -> Option<Parsed> {
    let (src_mac, dst_mac, ip) = match link {
        LinkType::Ethernet => {
            let frame = EthernetFrame::new_checked(data)?;
            if frame.ethertype() != EtherType::IPV4 {
                return None;
            }
            (Some(frame.source()), Some(frame.destination()), frame.into_payload())
        }
        LinkType::RawIp => (None, None, data),
    };
    let (mut packet, mut l4) = ipv4(ip)?;
    let mut outer = None;
    if packet.protocol() == IpProtocol::IPIP {
        outer = Some((packet.src_addr(), packet.dst_addr()));
        (packet, l4) = ipv4(l4)?;
    }
    let (proto, src_port, dst_port, tcp) = match packet.protocol() {
        IpProtocol::TCP => {
            let t = TcpPacket::new_checked(l4)?;
            let h = etherparse::TcpHeaderSlice::from_slice(l4).ok()?;
            let tcp = (t.flags(), h.sequence_number(), h.acknowledgment_number());
            (Proto::Tcp, t.src_port(), t.dst_port(), Some(tcp))
        }
        IpProtocol::UDP => {
            let u = UdpPacket::new_checked(l4)?;
            (Proto::Udp, u.src_port(), u.dst_port(), None)
        }
        _ => return None,
    };
    Some(Parsed {
        addressing: Addressing {
            src_mac,
            dst_mac,
            outer,
            src: SocketAddrV4::new(packet.src_addr(), src_port),
            dst: SocketAddrV4::new(packet.dst_addr(), dst_port),
        },
        proto,
        tcp,
    })
}

/// Which way a packet goes in the request's exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Client to server.
    Forward,
    Back,
}

/// One connection attempt (TCP) or socket (UDP) of a client, as its own interface saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub from: SocketAddrV4,
    /// The SYN's sequence number (TCP).
    pub isn: Option<u32>,
}

/// The client's attempts towards `target`, in the order they first left it.
pub fn attempts(places: &[CapturedPlace<'_>], client: &str, proto: Proto, target: SocketAddrV4) -> Vec<Attempt> {
    let mut seen: Vec<(Duration, Attempt)> = Vec::new();
    for place in places
        .iter()
        .filter(|p| p.file.host == client && p.file.segment.is_none())
    {
        for (frame, p) in place.packets.iter().filter(|(f, _)| f.outbound) {
            if p.proto != proto || p.addressing.dst != target {
                continue;
            }
            let isn = match p.tcp {
                Some((flags, seq, _)) if flags.syn && !flags.ack => Some(seq),
                Some(_) => continue,
                None => None,
            };
            let attempt = Attempt {
                from: p.addressing.src,
                isn,
            };
            match seen.iter_mut().find(|(_, a)| *a == attempt) {
                Some((t, _)) => *t = (*t).min(frame.timestamp),
                None => seen.push((frame.timestamp, attempt)),
            }
        }
    }
    seen.sort_by_key(|(t, _)| *t);
    seen.into_iter().map(|(_, a)| a).collect()
}

/// The attempt that carried `request`: the one from its local address (the n-th such, when a
/// fixed source port made several, by connection ordinal); for a request that never learnt its
/// address (a refused connect), the n-th attempt no other request claims.
pub fn attempt_of(requests: &[TracedRequest], request: &TracedRequest, attempts: &[Attempt]) -> Option<Attempt> {
    let same_way = |r: &&TracedRequest| r.client == request.client && r.target == request.target;
    let rank = |pool: Vec<u32>| -> Option<usize> {
        let distinct: BTreeSet<u32> = pool.into_iter().collect();
        distinct.iter().position(|c| *c == request.connection)
    };
    match request.local {
        Some(local) => {
            let pool = requests
                .iter()
                .filter(same_way)
                .filter(|r| r.local == Some(local))
                .map(|r| r.connection)
                .collect();
            let n = rank(pool)?;
            attempts.iter().filter(|a| a.from == v4(local)).nth(n).copied()
        }
        None => {
            let known: Vec<SocketAddrV4> = requests
                .iter()
                .filter(same_way)
                .filter_map(|r| r.local.map(v4))
                .collect();
            let pool = requests
                .iter()
                .filter(same_way)
                .filter(|r| r.local.is_none())
                .map(|r| r.connection)
                .collect();
            let n = rank(pool)?;
            attempts.iter().filter(|a| !known.contains(&a.from)).nth(n).copied()
        }
    }
}

/// Which way `p` goes, if it belongs to the attempt whose SYN took the address pairs `pairs`.
fn way_of(p: &Parsed, attempt: &Attempt, pairs: &[(SocketAddrV4, SocketAddrV4)]) -> Option<Way> {
    let a = &p.addressing;
    match (attempt.isn, p.tcp) {
        (Some(isn), Some((flags, seq, ack))) => {
            if pairs.contains(&(a.src, a.dst)) && seq.wrapping_sub(isn) < SEQ_WINDOW {
                Some(Way::Forward)
            } else if pairs.contains(&(a.dst, a.src)) && flags.ack && ack.wrapping_sub(isn.wrapping_add(1)) < SEQ_WINDOW
            {
                Some(Way::Back)
            } else {
                None
            }
        }
        (None, None) if a.src == attempt.from => Some(Way::Forward),
        (None, None) if a.dst == attempt.from => Some(Way::Back),
        _ => None,
    }
}

/// Which way a hop's frame went through its interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// One packet seen at one place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    /// `client eth0`, `segment lan`.
    pub place: String,
    /// None on a segment (a bridge forwards; it neither sends nor receives).
    pub direction: Option<Direction>,
    /// Since the leg's first hop.
    pub at_us: f64,
    pub src_mac: Option<Mac>,
    pub dst_mac: Option<Mac>,
    /// Whose interface `dst_mac` is (`rs2 eth0`), when it is one of the lab's.
    pub dst_mac_owner: Option<String>,
    /// LVS-TUN's outer IP-in-IP header.
    pub outer_src: Option<Ipv4Addr>,
    pub outer_dst: Option<Ipv4Addr>,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    /// What differs from the hop before: `dst MAC`, `dst IP`, `dst port`, `src IP`, `src port`,
    /// `outer header added`, `outer header removed` (the source MAC is always the sender's).
    pub changed: Vec<String>,
}

/// One packet's way through the lab: the first packet each way.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Leg {
    /// `SYN`, `SYN-ACK`, `RST`, `datagram`, `reply`.
    pub packet: String,
    pub hops: Vec<Hop>,
}

/// Packets of the request's connection at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceCount {
    pub place: String,
    pub forward: u32,
    pub back: u32,
}

/// The path of one request, for the text report, `lvslab trace`, the JSON and the HTML report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestPath {
    /// 1-based, in the run's order of requests.
    pub request: usize,
    pub client: String,
    pub proto: Proto,
    /// The client's address and port for this request, as captured.
    pub from: Option<SocketAddrV4>,
    pub target: SocketAddrV4,
    pub backend: Option<String>,
    pub error: Option<String>,
    /// The first packet there, then the first packet back.
    pub legs: Vec<Leg>,
    /// Every packet of the connection, per place, in the order the places first saw one.
    pub places: Vec<PlaceCount>,
    /// For a failed request: where its packets stopped.
    pub stopped: Option<String>,
}

struct Seen {
    place: String,
    segment: bool,
    timestamp: Duration,
    outbound: bool,
    parsed: Parsed,
    way: Way,
}

/// The path of `request` through `places`; `macs` names the lab's MACs.
pub fn build(
    requests: &[TracedRequest],
    request: &TracedRequest,
    places: &[CapturedPlace<'_>],
    macs: &[(Mac, String)],
) -> RequestPath {
    let target = v4(request.target);
    let mut path = RequestPath {
        request: request.number,
        client: request.client.clone(),
        proto: request.proto,
        from: None,
        target,
        backend: request.backend.clone(),
        error: request.error.clone(),
        legs: Vec::new(),
        places: Vec::new(),
        stopped: None,
    };
    let found = attempts(places, &request.client, request.proto, target);
    let Some(attempt) = attempt_of(requests, request, &found) else {
        path.stopped = Some(format!(
            "no packet of this request left {}'s interfaces: it was never sent",
            request.client
        ));
        return path;
    };
    path.from = Some(attempt.from);
    let parsed: Vec<(&CapturedPlace<'_>, &Frame, Parsed)> = places
        .iter()
        .flat_map(|pl| pl.packets.iter().map(move |(f, p)| (pl, *f, *p)))
        .filter(|(_, _, p)| p.proto == request.proto)
        .collect();
    // The address pairs the SYN took, anywhere.
    let pairs: Vec<(SocketAddrV4, SocketAddrV4)> = match attempt.isn {
        Some(isn) => parsed
            .iter()
            .filter(|(_, _, p)| p.tcp.is_some_and(|(f, seq, _)| f.syn && !f.ack && seq == isn))
            .map(|(_, _, p)| (p.addressing.src, p.addressing.dst))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    let mut seen: Vec<Seen> = parsed
        .into_iter()
        .filter_map(|(pl, f, p)| {
            way_of(&p, &attempt, &pairs).map(|way| Seen {
                place: pl.file.location(),
                segment: pl.file.segment.is_some(),
                timestamp: f.timestamp,
                outbound: f.outbound,
                parsed: p,
                way,
            })
        })
        .collect();
    seen.sort_by_key(|s| s.timestamp);
    for s in &seen {
        let i = match path.places.iter().position(|c| c.place == s.place) {
            Some(i) => i,
            None => {
                path.places.push(PlaceCount {
                    place: s.place.clone(),
                    forward: 0,
                    back: 0,
                });
                path.places.len() - 1
            }
        };
        match s.way {
            Way::Forward => path.places[i].forward += 1,
            Way::Back => path.places[i].back += 1,
        }
    }
    let first = |way: Way, pick: &dyn Fn(&Parsed) -> bool| -> Vec<&Seen> {
        let mut hops: Vec<&Seen> = Vec::new();
        for s in seen.iter().filter(|s| s.way == way && pick(&s.parsed)) {
            if !hops.iter().any(|h| h.place == s.place && h.outbound == s.outbound) {
                hops.push(s);
            }
        }
        hops
    };
    let (there, back) = match request.proto {
        Proto::Tcp => {
            let syn = first(Way::Forward, &|p| p.tcp.is_some_and(|(f, _, _)| f.syn && !f.ack));
            let syn_ack = first(Way::Back, &|p| p.tcp.is_some_and(|(f, _, _)| f.syn && f.ack));
            let back = if syn_ack.is_empty() {
                ("RST", first(Way::Back, &|p| p.tcp.is_some_and(|(f, _, _)| f.rst)))
            } else {
                ("SYN-ACK", syn_ack)
            };
            (("SYN", syn), back)
        }
        Proto::Udp => (
            ("datagram", first(Way::Forward, &|_| true)),
            ("reply", first(Way::Back, &|_| true)),
        ),
    };
    for (packet, hops) in [there, back] {
        if !hops.is_empty() {
            path.legs.push(leg(packet, &hops, macs));
        }
    }
    if request.error.is_some() {
        path.stopped = Some(stopped(&path.legs));
    }
    path
}

fn stopped(legs: &[Leg]) -> String {
    let last = |leg: &Leg| {
        leg.hops.last().map(|h| match h.direction {
            Some(Direction::In) => format!("{} (received)", h.place),
            Some(Direction::Out) => format!("{} (sent)", h.place),
            None => h.place.clone(),
        })
    };
    match legs {
        [] => "no packet of this request was captured".to_owned(),
        [there] => format!(
            "the {} was last seen at {}; nothing came back",
            there.packet,
            last(there).unwrap_or_default()
        ),
        [there, back, ..] => format!(
            "the {} was last seen at {}; the {} back was last seen at {}",
            there.packet,
            last(there).unwrap_or_default(),
            back.packet,
            last(back).unwrap_or_default()
        ),
    }
}

fn leg(packet: &str, seen: &[&Seen], macs: &[(Mac, String)]) -> Leg {
    let start = seen.first().map(|s| s.timestamp).unwrap_or_default();
    let mut hops: Vec<Hop> = Vec::with_capacity(seen.len());
    for s in seen {
        let a = s.parsed.addressing;
        let changed = hops.last().map(|prev| changes(prev, &a)).unwrap_or_default();
        hops.push(Hop {
            place: s.place.clone(),
            direction: match (s.segment, s.outbound) {
                (true, _) => None,
                (false, true) => Some(Direction::Out),
                (false, false) => Some(Direction::In),
            },
            at_us: (s.timestamp.saturating_sub(start)).as_secs_f64() * 1e6,
            src_mac: a.src_mac,
            dst_mac: a.dst_mac,
            dst_mac_owner: a
                .dst_mac
                .and_then(|m| macs.iter().find(|(mac, _)| *mac == m).map(|(_, who)| who.clone())),
            outer_src: a.outer.map(|o| o.0),
            outer_dst: a.outer.map(|o| o.1),
            src: a.src,
            dst: a.dst,
            changed,
        });
    }
    Leg {
        packet: packet.to_owned(),
        hops,
    }
}

/// What `now` rewrote of the packet `prev` showed.
fn changes(prev: &Hop, now: &Addressing) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(before), Some(after)) = (prev.dst_mac, now.dst_mac) {
        if before != after {
            out.push("dst MAC".to_owned());
        }
    }
    let outer_before = prev.outer_src.zip(prev.outer_dst);
    match (outer_before, now.outer) {
        (None, Some(_)) => out.push("outer header added".to_owned()),
        (Some(_), None) => out.push("outer header removed".to_owned()),
        (Some(b), Some(a)) if b != a => out.push("outer header".to_owned()),
        _ => {}
    }
    for (what, before, after) in [
        ("src IP", prev.src.ip(), now.src.ip()),
        ("dst IP", prev.dst.ip(), now.dst.ip()),
    ] {
        if before != after {
            out.push(what.to_owned());
        }
    }
    for (what, before, after) in [
        ("src port", prev.src.port(), now.src.port()),
        ("dst port", prev.dst.port(), now.dst.port()),
    ] {
        if before != after {
            out.push(what.to_owned());
        }
    }
    out
}

fn v4(addr: std::net::SocketAddr) -> SocketAddrV4 {
    match addr {
        std::net::SocketAddr::V4(a) => a,
        std::net::SocketAddr::V6(a) => {
            SocketAddrV4::new(a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED), a.port())
        }
    }
}
