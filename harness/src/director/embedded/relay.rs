//! ICMP errors that belong to a connection, relayed as IPVS does
//! (`ip_vs_in_icmp`, `ip_vs_out_icmp`, `ip_vs_nat_icmp`, `ip_vs_icmp_xmit`):
//! which entry an error is about, how it is rewritten and where it goes.
//! Pure: from a received frame and the IPVS state to the frame to send, or
//! the reason there is none.
//!
//! * To the VIP, quoting one of our replies (`VIP:vport → client:cport`):
//!   sent to the real server as the connection's packets go: DR by MAC, TUN
//!   encapsulated, NAT with the outer destination and the quoted source set to
//!   `RIP:rport`, FULLNAT with the outer `LIP → RIP` and the quote `RIP:rport →
//!   LIP:lport`.
//! * From a NAT / FULLNAT real server, quoting what it received from us: the
//!   outer source becomes the VIP (FULLNAT: and the destination the client),
//!   the quote's destination `VIP:vport` (FULLNAT: and its source `client:cport`).
//! * To a director address, quoting our IP-in-IP to a tunnel real server (its
//!   kernel cannot decapsulate, a hop's MTU is too small, ...): a new error of
//!   the same type and code goes to the client from the VIP, about the inner
//!   packet. For frag-needed only when the client set DF, announcing the MTU
//!   less the 20-byte outer header.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use super::engine::IfaceFacts;
use super::forward::{self, Csum, IcmpRewrite, Tunnel};
use super::frame::Ipv4Frame;
use super::icmp::{self, ErrorKind, Icmp, IcmpError, IcmpMalformed, NewError, Quoted, QuotedRewrite};
use crate::ipvs::related::{self, Related};
use crate::ipvs::{Forward, Ipvs, Proto};
use crate::wire::{ipip, IpProtocol, Mac};

/// The smallest frag-needed MTU the kernel still lowers by the outer header (68 + 20).
const MIN_TUNNEL_MTU: u16 = 88;
const OUTER_HEADER_LEN: u16 = ipip::OVERHEAD as u16;

/// Which way a relayed error goes; with the error kind, the counter key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// From the client side, about a reply: on to the connection's real server.
    ClientToRealServer,
    /// From a NAT / FULLNAT real server: back to the client.
    RealServerToClient,
    /// About our IP-in-IP: a new error to the client.
    TunnelToClient,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::ClientToRealServer => "client_to_real_server",
            Route::RealServerToClient => "real_server_to_client",
            Route::TunnelToClient => "tunnel_to_client",
        }
    }
    /// True when the frame goes out on the client side.
    pub fn to_client(self) -> bool {
        self != Route::ClientToRealServer
    }
}

/// A frame to send: the destination MAC (bytes 0..6) is filled in by neighbour resolution.
#[derive(Debug)]
pub struct Relayed {
    pub route: Route,
    pub kind: ErrorKind,
    pub next_hop: Ipv4Addr,
    pub frame: Vec<u8>,
}

impl Relayed {
    pub fn counter_key(&self) -> String {
        format!("{}:{}", self.route.as_str(), self.kind.as_str())
    }
}

/// Why an ICMP message was not relayed; the names are counter keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotRelayed {
    /// Echo, redirect, parameter problem, ...: the kernel hands those to its local stack.
    NotAnError,
    /// A fragmented ICMP message (the kernel reassembles first; we do not).
    Fragment,
    /// The quoted packet is not TCP/UDP with its ports (or is a later fragment).
    QuotedNoPorts,
    /// No entry matches the quoted packet.
    NoConnection,
    /// Addressed to the director's own address about something other than our tunnel.
    ForTheKernel,
    /// Quoting IP-in-IP to an address that is not a tunnel real server.
    UnknownTunnel,
    /// Frag-needed about a tunnelled packet whose sender did not set DF.
    TunnelNoDf,
    /// The ICMP checksum does not verify.
    BadChecksum,
    TtlExceeded,
    /// No director address to tunnel the error to the real server from.
    NoSourceAddress,
}

impl NotRelayed {
    pub fn as_str(self) -> &'static str {
        match self {
            NotRelayed::NotAnError => "not_an_error",
            NotRelayed::Fragment => "fragment",
            NotRelayed::QuotedNoPorts => "quoted_no_ports",
            NotRelayed::NoConnection => "no_connection",
            NotRelayed::ForTheKernel => "for_the_kernel",
            NotRelayed::UnknownTunnel => "unknown_tunnel",
            NotRelayed::TunnelNoDf => "tunnel_no_df",
            NotRelayed::BadChecksum => "bad_checksum",
            NotRelayed::TtlExceeded => "ttl_exceeded",
            NotRelayed::NoSourceAddress => "no_source_address",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    Malformed(IcmpMalformed),
    NotRelayed(NotRelayed),
}

impl From<NotRelayed> for Skip {
    fn from(r: NotRelayed) -> Self {
        Skip::NotRelayed(r)
    }
}

impl From<IcmpMalformed> for Skip {
    fn from(m: IcmpMalformed) -> Self {
        Skip::Malformed(m)
    }
}

/// What the relay needs to know about the director.
pub struct Context<'a> {
    /// Addresses the director's kernel owns.
    pub kernel_local: &'a [Ipv4Addr],
    /// Our MAC on the client side.
    pub client_mac: Mac,
    /// The server-facing interface (our MAC there; tunnel source addresses).
    pub server: &'a IfaceFacts,
    /// IP ID for a frame we build or encapsulate.
    pub ip_id: u16,
    pub now: Instant,
}

/// Decides what to do with the ICMP frame `bytes` (parsed as `ip`, protocol 1).
pub fn relay(bytes: &[u8], ip: &Ipv4Frame, csum: Csum, ipvs: &mut Ipvs, ctx: &Context) -> Result<Relayed, Skip> {
    if ip.fragment {
        return Err(NotRelayed::Fragment.into());
    }
    let message = ip.l4_bytes(bytes);
    let Icmp::Error(err) = icmp::parse(message)? else {
        return Err(NotRelayed::NotAnError.into());
    };
    // An offloaded checksum is not there to verify; every rewrite recomputes it.
    if csum == Csum::Complete && !icmp::checksum_ok(message) {
        return Err(NotRelayed::BadChecksum.into());
    }
    let to_vip = ipvs.is_vip(ip.daddr);
    if err.quoted.protocol == IpProtocol::IPIP && (to_vip || ctx.kernel_local.contains(&ip.daddr)) {
        about_tunnel(message, ip, &err, ipvs, ctx)
    } else if to_vip {
        about_reply(bytes, ip, csum, &err, ipvs, ctx)
    } else if ctx.kernel_local.contains(&ip.daddr) {
        Err(NotRelayed::ForTheKernel.into())
    } else {
        from_real_server(bytes, ip, &err, ipvs, ctx)
    }
}

fn tuple(q: &Quoted) -> Result<related::Quoted, NotRelayed> {
    let (sport, dport) = q.ports.ok_or(NotRelayed::QuotedNoPorts)?;
    Ok(related::Quoted {
        proto: if q.protocol == IpProtocol::TCP {
            Proto::Tcp
        } else {
            Proto::Udp
        },
        saddr: q.saddr,
        sport,
        daddr: q.daddr,
        dport,
    })
}

fn sock(addr: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(addr, port)
}

/// From the client side, about a reply: forwarded like the connection's packets.
fn about_reply(
    bytes: &[u8],
    ip: &Ipv4Frame,
    csum: Csum,
    err: &IcmpError,
    ipvs: &mut Ipvs,
    ctx: &Context,
) -> Result<Relayed, Skip> {
    let q = tuple(&err.quoted)?;
    let c = ipvs
        .related_to_reply(&q, ip.total_len as u32, ctx.now)
        .ok_or(NotRelayed::NoConnection)?;
    let our_mac = ctx.server.mac;
    let mut out = bytes.to_vec();
    let mut ip = ip.clone();
    let rewrite = |saddr, quoted_dst| IcmpRewrite {
        saddr,
        daddr: c.daddr,
        quoted: QuotedRewrite {
            src: sock(c.daddr, c.dport),
            dst: quoted_dst,
        },
    };
    let sent = match c.forward {
        Forward::Dr | Forward::Tun => {
            if csum != Csum::Complete {
                let l4 = ip.l4_offset();
                icmp::fill_checksum(&mut out[l4..ip.frame_len()]);
            }
            if c.forward == Forward::Dr {
                forward::forward_dr(&mut out, &mut ip, Csum::Complete, our_mac, Mac::UNSPECIFIED)
            } else {
                let outer_src = ctx.server.source_for(c.daddr).ok_or(NotRelayed::NoSourceAddress)?;
                let t = Tunnel {
                    outer_src,
                    outer_dst: c.daddr,
                    ip_id: ctx.ip_id,
                    our_mac,
                    next_hop_mac: Mac::UNSPECIFIED,
                };
                forward::encapsulate_ipip(&mut out, &mut ip, Csum::Complete, t).map(|encapsulated| out = encapsulated)
            }
        }
        Forward::Nat => {
            let rw = rewrite(ip.saddr, sock(err.quoted.daddr, q.dport));
            forward::forward_icmp_rewrite(&mut out, &mut ip, err, rw, our_mac, Mac::UNSPECIFIED)
        }
        Forward::FullNat => {
            let rw = rewrite(c.laddr, sock(c.laddr, c.lport));
            forward::forward_icmp_rewrite(&mut out, &mut ip, err, rw, our_mac, Mac::UNSPECIFIED)
        }
    };
    // The forwarders' only reason to refuse: TTL.
    if sent.is_err() {
        return Err(NotRelayed::TtlExceeded.into());
    }
    Ok(Relayed {
        route: Route::ClientToRealServer,
        kind: err.kind,
        next_hop: c.daddr,
        frame: out,
    })
}

/// From a NAT / FULLNAT real server, about what it received: back to the client.
fn from_real_server(
    bytes: &[u8],
    ip: &Ipv4Frame,
    err: &IcmpError,
    ipvs: &mut Ipvs,
    ctx: &Context,
) -> Result<Relayed, Skip> {
    let q = tuple(&err.quoted)?;
    let c: Related = ipvs
        .related_to_forwarded(&q, ip.total_len as u32, ctx.now)
        .ok_or(NotRelayed::NoConnection)?;
    let (daddr, quoted_src) = match c.forward {
        Forward::Nat => (ip.daddr, sock(q.saddr, q.sport)),
        Forward::FullNat => (c.caddr, sock(c.caddr, c.cport)),
        // Only NAT-style entries are indexed by their replies.
        Forward::Dr | Forward::Tun => return Err(NotRelayed::NoConnection.into()),
    };
    let rw = IcmpRewrite {
        saddr: c.vaddr,
        daddr,
        quoted: QuotedRewrite {
            src: quoted_src,
            dst: sock(c.vaddr, c.vport),
        },
    };
    let mut out = bytes.to_vec();
    let mut ip = ip.clone();
    if forward::forward_icmp_rewrite(&mut out, &mut ip, err, rw, ctx.client_mac, Mac::UNSPECIFIED).is_err() {
        return Err(NotRelayed::TtlExceeded.into());
    }
    Ok(Relayed {
        route: Route::RealServerToClient,
        kind: err.kind,
        next_hop: daddr,
        frame: out,
    })
}

/// About our IP-in-IP to a tunnel real server: a new error to the client, from
/// the VIP, about the inner packet (the kernel's `icmp_send` after stripping
/// the outer IP, ICMP and IPIP headers).
fn about_tunnel(
    message: &[u8],
    ip: &Ipv4Frame,
    err: &IcmpError,
    ipvs: &mut Ipvs,
    ctx: &Context,
) -> Result<Relayed, Skip> {
    if err.quoted.later_fragment {
        return Err(NotRelayed::QuotedNoPorts.into());
    }
    if !ipvs.is_tunnel_dest(err.quoted.daddr) {
        return Err(NotRelayed::UnknownTunnel.into());
    }
    let inner_bytes = &message[icmp::HEADER_LEN + err.quoted.header_len..];
    let inner = icmp::parse_quoted(inner_bytes)?;
    let rest = match err.kind {
        ErrorKind::FragNeeded { .. } if !inner.dont_fragment => return Err(NotRelayed::TunnelNoDf.into()),
        ErrorKind::FragNeeded { mtu } if mtu > MIN_TUNNEL_MTU => icmp::frag_needed_rest(mtu - OUTER_HEADER_LEN),
        ErrorKind::FragNeeded { mtu } => icmp::frag_needed_rest(mtu),
        _ => err.rest,
    };
    let q = tuple(&inner)?;
    let c = ipvs
        .related_to_tunnelled(&q, ip.total_len as u32, ctx.now)
        .ok_or(NotRelayed::NoConnection)?;
    let e = NewError {
        src_mac: ctx.client_mac,
        dst_mac: Mac::UNSPECIFIED,
        src: c.vaddr,
        dst: c.caddr,
        ip_id: ctx.ip_id,
        icmp_type: err.icmp_type,
        code: err.code,
        rest,
    };
    Ok(Relayed {
        route: Route::TunnelToClient,
        kind: err.kind,
        next_hop: c.caddr,
        frame: icmp::build_error(&e, inner_bytes),
    })
}
