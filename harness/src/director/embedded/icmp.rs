//! ICMPv4 error messages as the director relays them: a typed view of an
//! error (type, code, next-hop MTU) and of the start of the packet it quotes
//! (its IPv4 header and the first 8 bytes after it, where the TCP/UDP ports
//! sit); rewriting both in place with their checksums recomputed; building a
//! new error. Parsing is bounded by the slice it is given and never panics:
//! anything short or inconsistent is `IcmpMalformed`.

use std::net::{Ipv4Addr, SocketAddrV4};

use etherparse::{Icmpv4Slice, Ipv4HeaderSlice};

use crate::wire::{
    ethernet, ipv4, l4, EtherType, EthernetRepr, IcmpPacket, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Mac,
};

pub use crate::wire::icmp::HEADER_LEN;
/// An ICMP error is at most 576 bytes of IP (RFC 1812 4.3.2.3; Linux's `icmp_send`).
pub const MAX_ERROR_IP_LEN: usize = 576;
const IPV4_HEADER_LEN: usize = ipv4::HEADER_LEN;
/// Linux's TTL for the errors it originates (`sysctl_ip_default_ttl`).
const ERROR_TTL: u8 = 64;

pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_SOURCE_QUENCH: u8 = 4;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const CODE_FRAG_NEEDED: u8 = 4;
/// The precedence Linux gives its ICMP errors (`IPTOS_PREC_INTERNETCONTROL`).
const TOS_INTERNET_CONTROL: u8 = 0xc0;
const TOS_MASK: u8 = 0x1e;

/// The errors IPVS relays (`ip_vs_in_icmp` / `ip_vs_out_icmp` take destination
/// unreachable, source quench and time exceeded; nothing else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set, with the next hop's MTU (RFC 1191).
    FragNeeded {
        mtu: u16,
    },
    /// Destination unreachable with another code (admin prohibited, ...).
    Unreachable {
        code: u8,
    },
    SourceQuench,
    TimeExceeded {
        code: u8,
    },
}

impl ErrorKind {
    fn from_header(icmp_type: u8, code: u8, rest: [u8; 4]) -> Option<Self> {
        Some(match (icmp_type, code) {
            (TYPE_DEST_UNREACHABLE, 0) => ErrorKind::NetUnreachable,
            (TYPE_DEST_UNREACHABLE, 1) => ErrorKind::HostUnreachable,
            (TYPE_DEST_UNREACHABLE, 2) => ErrorKind::ProtocolUnreachable,
            (TYPE_DEST_UNREACHABLE, 3) => ErrorKind::PortUnreachable,
            (TYPE_DEST_UNREACHABLE, CODE_FRAG_NEEDED) => ErrorKind::FragNeeded {
                mtu: u16::from_be_bytes([rest[2], rest[3]]),
            },
            (TYPE_DEST_UNREACHABLE, code) => ErrorKind::Unreachable { code },
            (TYPE_SOURCE_QUENCH, _) => ErrorKind::SourceQuench,
            (TYPE_TIME_EXCEEDED, code) => ErrorKind::TimeExceeded { code },
            _ => return None,
        })
    }

    /// Type, code and rest of header of a new error of this kind.
    pub fn header(self) -> (u8, u8, [u8; 4]) {
        let unreachable = |code| (TYPE_DEST_UNREACHABLE, code, [0; 4]);
        match self {
            ErrorKind::NetUnreachable => unreachable(0),
            ErrorKind::HostUnreachable => unreachable(1),
            ErrorKind::ProtocolUnreachable => unreachable(2),
            ErrorKind::PortUnreachable => unreachable(3),
            ErrorKind::FragNeeded { mtu } => (TYPE_DEST_UNREACHABLE, CODE_FRAG_NEEDED, frag_needed_rest(mtu)),
            ErrorKind::Unreachable { code } => unreachable(code),
            ErrorKind::SourceQuench => (TYPE_SOURCE_QUENCH, 0, [0; 4]),
            ErrorKind::TimeExceeded { code } => (TYPE_TIME_EXCEEDED, code, [0; 4]),
        }
    }

    /// Counter key.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NetUnreachable => "net_unreachable",
            ErrorKind::HostUnreachable => "host_unreachable",
            ErrorKind::ProtocolUnreachable => "protocol_unreachable",
            ErrorKind::PortUnreachable => "port_unreachable",
            ErrorKind::FragNeeded { .. } => "frag_needed",
            ErrorKind::Unreachable { .. } => "unreachable_other",
            ErrorKind::SourceQuench => "source_quench",
            ErrorKind::TimeExceeded { .. } => "time_exceeded",
        }
    }
}

/// Why an ICMP message could not be read; the names are counter keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpMalformed {
    /// Shorter than the 8-byte ICMP header.
    Truncated,
    /// An error whose quoted IPv4 header is missing, short or not IPv4.
    QuotedHeader,
}

impl IcmpMalformed {
    pub fn as_str(self) -> &'static str {
        match self {
            IcmpMalformed::Truncated => "icmp_truncated",
            IcmpMalformed::QuotedHeader => "icmp_quoted_header",
        }
    }
}

/// The start of the packet an error quotes, as far as it is present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    /// Header length (IHL × 4); the whole header is present.
    pub header_len: usize,
    pub tos: u8,
    pub protocol: IpProtocol,
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub dont_fragment: bool,
    /// A non-first fragment: the bytes after the header are not its L4 header.
    pub later_fragment: bool,
    /// TCP/UDP source and destination port, when present and meaningful.
    pub ports: Option<(u16, u16)>,
}

/// Reads a quoted packet: a full IPv4 header, and ports if the next 4 bytes are there.
pub fn parse_quoted(bytes: &[u8]) -> Result<Quoted, IcmpMalformed> {
    let h = Ipv4HeaderSlice::from_slice(bytes).map_err(|_| IcmpMalformed::QuotedHeader)?;
    let header_len = h.slice().len();
    let later_fragment = h.fragments_offset().value() != 0;
    let protocol = IpProtocol(h.protocol().0);
    let view = Ipv4Packet::new_unchecked(bytes);
    let ports = match l4::ports(view.payload()) {
        Some(p) if !later_fragment && (protocol == IpProtocol::TCP || protocol == IpProtocol::UDP) => Some(p),
        _ => None,
    };
    Ok(Quoted {
        header_len,
        tos: view.tos(),
        protocol,
        saddr: h.source_addr(),
        daddr: h.destination_addr(),
        dont_fragment: h.dont_fragment(),
        later_fragment,
        ports,
    })
}

/// An ICMP error message and the packet it quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    pub icmp_type: u8,
    pub code: u8,
    /// Bytes 4..8 of the header: unused, next-hop MTU, pointer, ...
    pub rest: [u8; 4],
    pub kind: ErrorKind,
    pub quoted: Quoted,
}

/// What an ICMP message is to the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmp {
    Error(IcmpError),
    /// Echo, redirect, parameter problem, ...: nothing IPVS relays.
    NotRelayable {
        icmp_type: u8,
    },
}

/// Reads the ICMP message `icmp` (from its type byte to the end of the IP packet).
pub fn parse(icmp: &[u8]) -> Result<Icmp, IcmpMalformed> {
    let slice = Icmpv4Slice::from_slice(icmp).map_err(|_| IcmpMalformed::Truncated)?;
    let (icmp_type, code, rest) = (slice.type_u8(), slice.code_u8(), slice.bytes5to8());
    let Some(kind) = ErrorKind::from_header(icmp_type, code, rest) else {
        return Ok(Icmp::NotRelayable { icmp_type });
    };
    let quoted = parse_quoted(&icmp[HEADER_LEN..])?;
    Ok(Icmp::Error(IcmpError {
        icmp_type,
        code,
        rest,
        kind,
        quoted,
    }))
}

/// True when the ICMP checksum over the whole message verifies.
pub fn checksum_ok(icmp: &[u8]) -> bool {
    IcmpPacket::new_checked(icmp).is_some_and(|p| p.verify_checksum())
}

/// Recomputes the checksum of the ICMP message `icmp` (at least its header) in place.
pub fn fill_checksum(icmp: &mut [u8]) {
    IcmpPacket::new_unchecked(icmp).fill_checksum();
}

/// New addresses and ports of the packet an error quotes. The ports are
/// written only where the quote carries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedRewrite {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
}

/// Rewrites the packet quoted by the ICMP error `icmp` (type byte to end) and
/// recomputes the quoted IPv4 header checksum and the ICMP checksum, as the
/// kernel's `ip_vs_nat_icmp` does (the quoted L4 checksum is left as it was).
pub fn rewrite_quoted(icmp: &mut [u8], err: &IcmpError, rw: QuotedRewrite) {
    let mut message = IcmpPacket::new_unchecked(icmp);
    let mut quoted = Ipv4Packet::new_unchecked(message.payload_mut());
    quoted.set_src_addr(*rw.src.ip());
    quoted.set_dst_addr(*rw.dst.ip());
    quoted.fill_checksum();
    if err.quoted.ports.is_some() {
        l4::set_ports(quoted.payload_mut(), rw.src.port(), rw.dst.port());
    }
    message.fill_checksum();
}

/// A new ICMP error to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewError {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ip_id: u16,
    pub icmp_type: u8,
    pub code: u8,
    pub rest: [u8; 4],
}

/// Builds an Ethernet frame carrying `e` about `about` (an IPv4 packet, cut so
/// the error stays within 576 bytes), as Linux's `icmp_send` does: TTL 64,
/// TOS of the quoted packet with internet-control precedence, DF clear.
pub fn build_error(e: &NewError, about: &[u8]) -> Vec<u8> {
    let quote = &about[..about.len().min(MAX_ERROR_IP_LEN - IPV4_HEADER_LEN - HEADER_LEN)];
    // The quoted packet's TOS, when it has a header to read it from.
    let quoted_tos = if about.len() > 1 {
        Ipv4Packet::new_unchecked(about).tos()
    } else {
        0
    };
    let eth = EthernetRepr {
        source: e.src_mac,
        destination: e.dst_mac,
        ethertype: EtherType::IPV4,
    };
    let ip = Ipv4Repr {
        src_addr: e.src,
        dst_addr: e.dst,
        protocol: IpProtocol::ICMP,
        tos: (quoted_tos & TOS_MASK) | TOS_INTERNET_CONTROL,
        ident: e.ip_id,
        dont_fragment: false,
        ttl: ERROR_TTL,
        payload_len: HEADER_LEN + quote.len(),
    };
    let message = IcmpRepr {
        msg_type: e.icmp_type,
        code: e.code,
        rest: e.rest,
    };
    let mut out = Vec::with_capacity(ethernet::HEADER_LEN + IPV4_HEADER_LEN + HEADER_LEN + quote.len());
    out.extend_from_slice(&eth.to_bytes());
    out.extend_from_slice(&ip.to_bytes());
    message.emit_message(quote, &mut out);
    out
}

/// The "rest of header" of a frag-needed error announcing `mtu`.
pub fn frag_needed_rest(mtu: u16) -> [u8; 4] {
    let [hi, lo] = mtu.to_be_bytes();
    [0, 0, hi, lo]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::HEADER_LEN as ETH_LEN;
    use etherparse::{Icmpv4Header, Icmpv4Type, IpNumber, Ipv4Header, PacketBuilder, PacketHeaders, TransportHeader};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

    fn reply_packet() -> Vec<u8> {
        let mut p = Vec::new();
        PacketBuilder::ipv4(VIP.octets(), CLIENT.octets(), 63)
            .tcp(80, 40000, 5, 64240)
            .ack(1)
            .write(&mut p, b"HTTP/1.1 200 OK\r\n")
            .unwrap();
        p
    }

    /// An ICMP message (type byte to end) built by etherparse, independent of our code.
    fn etherparse_error(t: Icmpv4Type, quoted: &[u8]) -> Vec<u8> {
        let h = Icmpv4Header::with_checksum(t, quoted);
        let mut out = h.to_bytes().to_vec();
        out.extend_from_slice(quoted);
        out
    }

    #[test]
    fn reads_every_relayed_kind_and_its_quote() {
        use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
        let cases = [
            (
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Protocol),
                ErrorKind::ProtocolUnreachable,
            ),
            (
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port),
                ErrorKind::PortUnreachable,
            ),
            (
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }),
                ErrorKind::FragNeeded { mtu: 1400 },
            ),
            (
                Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FilterProhibited),
                ErrorKind::Unreachable { code: 13 },
            ),
            (
                Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit),
                ErrorKind::TimeExceeded { code: 0 },
            ),
        ];
        let reply = reply_packet();
        for (t, kind) in cases {
            let msg = etherparse_error(t, &reply);
            assert!(checksum_ok(&msg));
            let Icmp::Error(e) = parse(&msg).unwrap() else {
                panic!("{kind:?} is an error")
            };
            assert_eq!(e.kind, kind);
            let q = e.quoted;
            assert_eq!((q.saddr, q.daddr, q.protocol), (VIP, CLIENT, IpProtocol::TCP));
            assert_eq!((q.header_len, q.ports), (20, Some((80, 40000))));
            assert!(q.dont_fragment && !q.later_fragment);
        }
    }

    #[test]
    fn every_kind_builds_the_header_it_is_read_from() {
        let kinds = [
            ErrorKind::NetUnreachable,
            ErrorKind::HostUnreachable,
            ErrorKind::ProtocolUnreachable,
            ErrorKind::PortUnreachable,
            ErrorKind::FragNeeded { mtu: 1480 },
            ErrorKind::Unreachable { code: 13 },
            ErrorKind::SourceQuench,
            ErrorKind::TimeExceeded { code: 1 },
        ];
        for kind in kinds {
            let (t, c, rest) = kind.header();
            assert_eq!(ErrorKind::from_header(t, c, rest), Some(kind));
        }
    }

    #[test]
    fn echo_and_parameter_problem_are_not_relayed() {
        let echo = etherparse_error(
            Icmpv4Type::EchoRequest(etherparse::IcmpEchoHeader { id: 1, seq: 1 }),
            b"ping",
        );
        assert_eq!(parse(&echo).unwrap(), Icmp::NotRelayable { icmp_type: 8 });
        let problem = etherparse_error(
            Icmpv4Type::ParameterProblem(etherparse::icmpv4::ParameterProblemHeader::PointerIndicatesError(0)),
            &reply_packet(),
        );
        assert_eq!(parse(&problem).unwrap(), Icmp::NotRelayable { icmp_type: 12 });
    }

    #[test]
    fn short_and_lying_messages_are_malformed_never_a_panic() {
        let msg = etherparse_error(
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::Port),
            &reply_packet(),
        );
        assert_eq!(parse(&msg[..7]), Err(IcmpMalformed::Truncated));
        assert_eq!(parse(&msg[..HEADER_LEN + 19]), Err(IcmpMalformed::QuotedHeader));
        // A full header but no ports: still an error, just without a connection to find.
        let Icmp::Error(e) = parse(&msg[..HEADER_LEN + 22]).unwrap() else {
            panic!()
        };
        assert_eq!(e.quoted.ports, None);
        let mut ihl_lie = msg.clone();
        ihl_lie[HEADER_LEN] = 0x4f; // 60-byte header claimed, 40 bytes quoted below
        assert_eq!(parse(&ihl_lie[..HEADER_LEN + 40]), Err(IcmpMalformed::QuotedHeader));
        let mut v6 = msg.clone();
        v6[HEADER_LEN] = 0x65;
        assert_eq!(parse(&v6), Err(IcmpMalformed::QuotedHeader));
        let mut later = msg.clone();
        later[HEADER_LEN + 6..HEADER_LEN + 8].copy_from_slice(&0x0010u16.to_be_bytes());
        let Icmp::Error(e) = parse(&later).unwrap() else {
            panic!()
        };
        assert!(e.quoted.later_fragment && e.quoted.ports.is_none());
        for n in 0..msg.len() {
            let _ = parse(&msg[..n]);
        }
    }

    #[test]
    fn rewriting_the_quote_round_trips_and_every_checksum_verifies() {
        let msg = etherparse_error(
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1280,
            }),
            &reply_packet(),
        );
        let Icmp::Error(e) = parse(&msg).unwrap() else { panic!() };
        let rip = SocketAddrV4::new(Ipv4Addr::new(10, 0, 1, 21), 8080);
        let mut out = msg.clone();
        rewrite_quoted(
            &mut out,
            &e,
            QuotedRewrite {
                src: rip,
                dst: SocketAddrV4::new(CLIENT, 40000),
            },
        );
        assert!(checksum_ok(&out), "ICMP checksum");
        let Icmp::Error(back) = parse(&out).unwrap() else {
            panic!()
        };
        assert_eq!(
            back.kind,
            ErrorKind::FragNeeded { mtu: 1280 },
            "type, code and MTU untouched"
        );
        assert_eq!((back.quoted.saddr, back.quoted.ports), (*rip.ip(), Some((8080, 40000))));
        let (qh, _) = Ipv4Header::from_slice(&out[HEADER_LEN..]).unwrap();
        assert_eq!(qh.header_checksum, qh.calc_header_checksum(), "quoted IPv4 checksum");
        assert_eq!(
            out[HEADER_LEN + 24..],
            msg[HEADER_LEN + 24..],
            "the rest of the quote is untouched"
        );
        // Rewriting back gives the original bytes.
        rewrite_quoted(
            &mut out,
            &back,
            QuotedRewrite {
                src: SocketAddrV4::new(VIP, 80),
                dst: SocketAddrV4::new(CLIENT, 40000),
            },
        );
        assert_eq!(out, msg);
    }

    #[test]
    fn a_built_error_reads_back_with_etherparse() {
        let about = reply_packet();
        let e = NewError {
            src_mac: Mac([2, 0, 0, 0, 0, 1]),
            dst_mac: Mac([2, 0, 0, 0, 0, 2]),
            src: ROUTER,
            dst: VIP,
            ip_id: 7,
            icmp_type: TYPE_DEST_UNREACHABLE,
            code: CODE_FRAG_NEEDED,
            rest: frag_needed_rest(1480),
        };
        let f = build_error(&e, &about);
        let h = PacketHeaders::from_ethernet_slice(&f).unwrap();
        let Some(etherparse::NetHeaders::Ipv4(ip, _)) = h.net else {
            panic!()
        };
        assert_eq!((ip.source, ip.destination), (ROUTER.octets(), VIP.octets()));
        assert_eq!(
            (ip.time_to_live, ip.protocol, ip.identification),
            (64, IpNumber::ICMP, 7)
        );
        assert!(!ip.dont_fragment);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let Some(TransportHeader::Icmpv4(icmp)) = h.transport else {
            panic!()
        };
        assert_eq!(
            icmp.icmp_type,
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1480
            })
        );
        assert_eq!(icmp.checksum, icmp.icmp_type.calc_checksum(h.payload.slice()));
        assert_eq!(h.payload.slice(), &about[..]);
        let Icmp::Error(mine) = parse(&f[ETH_LEN + 20..]).unwrap() else {
            panic!()
        };
        assert_eq!(mine.kind, ErrorKind::FragNeeded { mtu: 1480 });

        // A long packet is cut so the whole error is 576 bytes of IP.
        let big = vec![0x45u8; 1500];
        let f = build_error(&e, &big);
        assert_eq!(f.len() - ETH_LEN, MAX_ERROR_IP_LEN);
    }
}
