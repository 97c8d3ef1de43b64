//! The byte work of forwarding: MAC rewrite (DR), address/port rewrite with
//! checksum fix-ups (NAT, FULLNAT, both directions, and the ICMP errors that
//! belong to their connections), IPIP encapsulation (TUN). Pure functions over
//! a frame buffer and its parse, so they are unit-tested on crafted frames.
//! Fields are written through `crate::wire`'s views; a forwarder that cannot
//! send the frame says why with a `DropReason`.

use std::net::Ipv4Addr;

use super::drops::DropReason;
use super::frame::Ipv4Frame;
use super::icmp::{self, IcmpError, QuotedRewrite};
use crate::wire::{checksum, ethernet, ipip, l4, EthernetFrame, IpProtocol, Ipv4Packet, Mac};

/// State of the L4 checksum of a received frame (from its virtio-net header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Csum {
    /// The checksum field holds a complete checksum.
    Complete,
    /// CHECKSUM_PARTIAL: the field holds only the pseudo-header sum.
    Partial,
    /// A GSO super-frame with a partial checksum: the kernel segments it and
    /// completes the checksums on send, so only the seed is kept consistent.
    PartialGso,
}

/// New addresses and ports for a NAT/FULLNAT rewrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rewrite {
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
}

pub fn set_macs(frame: &mut [u8], src: Mac, dst: Mac) {
    let mut eth = EthernetFrame::new_unchecked(frame);
    eth.set_destination(dst);
    eth.set_source(src);
}

/// Drops Ethernet padding so later length-based work sees the IP packet only.
pub fn trim_padding(frame: &mut Vec<u8>, ip: &Ipv4Frame) {
    frame.truncate(ip.frame_len());
}

/// The IPv4 packet of a parsed frame.
fn ipv4(frame: &mut [u8]) -> Ipv4Packet<&mut [u8]> {
    Ipv4Packet::new_unchecked(EthernetFrame::new_unchecked(frame).into_payload_mut())
}

/// Decrements TTL as a forwarding hop does; the packet dies when TTL would
/// reach 0. The header checksum is recomputed by `finish_ipv4_header`.
pub fn decrement_ttl(frame: &mut [u8], ip: &mut Ipv4Frame) -> Result<(), DropReason> {
    if ip.ttl <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    ip.ttl -= 1;
    ipv4(frame).set_ttl(ip.ttl);
    Ok(())
}

/// Recomputes the IPv4 header checksum of a parsed frame.
pub fn finish_ipv4_header(frame: &mut [u8]) {
    ipv4(frame).fill_checksum();
}

/// Replaces the pseudo-header seed of a CHECKSUM_PARTIAL frame by the full
/// TCP/UDP checksum. No-op for other protocols and fragments.
pub fn complete_l4_checksum(frame: &mut [u8], ip: &Ipv4Frame) {
    let (Some(at), Some(_)) = (ip.l4_csum_at(), ip.l4) else {
        return;
    };
    let mut packet = ipv4(frame);
    let segment = &mut packet.payload_mut()[..ip.l4_len()];
    let c = checksum::l4_checksum(ip.saddr, ip.daddr, ip.protocol.0, segment, at);
    l4::set_checksum(segment, ip.protocol, c);
}

/// DR: the IP packet is unchanged but for TTL; the frame goes to the real
/// server's MAC. A partial checksum is completed (non-GSO), since the real
/// server will not get the offload metadata.
pub fn forward_dr(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    csum: Csum,
    our_mac: Mac,
    next_hop_mac: Mac,
) -> Result<(), DropReason> {
    trim_padding(frame, ip);
    decrement_ttl(frame, ip)?;
    finish_ipv4_header(frame);
    if csum == Csum::Partial {
        complete_l4_checksum(frame, ip);
    }
    set_macs(frame, our_mac, next_hop_mac);
    Ok(())
}

/// NAT / FULLNAT, either direction: rewrites addresses and ports, decrements
/// TTL, fixes the IP header checksum and the L4 checksum (incrementally when
/// complete, fully when partial, seed-only for GSO).
pub fn forward_rewrite(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    csum: Csum,
    rw: Rewrite,
    our_mac: Mac,
    next_hop_mac: Mac,
) -> Result<(), DropReason> {
    trim_padding(frame, ip);
    decrement_ttl(frame, ip)?;
    let mut packet = ipv4(frame);
    let old_addrs = packet.addrs_bytes();
    packet.set_src_addr(rw.saddr);
    packet.set_dst_addr(rw.daddr);
    let new_addrs = packet.addrs_bytes();
    let segment = packet.payload_mut();
    let (old_sport, old_dport) = l4::ports(segment).unwrap_or_default();
    let old_ports = l4::ports_bytes(old_sport, old_dport);
    let new_ports = l4::ports_bytes(rw.sport, rw.dport);
    l4::set_ports(segment, rw.sport, rw.dport);
    ip.saddr = rw.saddr;
    ip.daddr = rw.daddr;
    if let Some(l4_mut) = ip.l4.as_mut() {
        l4_mut.sport = rw.sport;
        l4_mut.dport = rw.dport;
    }
    finish_ipv4_header(frame);

    let mut packet = ipv4(frame);
    let segment = packet.payload_mut();
    if let Some(old) = l4::checksum(segment, ip.protocol) {
        let udp = ip.protocol == IpProtocol::UDP;
        let new = match csum {
            Csum::Partial => None,
            // A zero UDP checksum means "none": it stays none.
            Csum::Complete if udp && old == 0 => Some(0),
            Csum::Complete => {
                let c = checksum::update_complemented(old, &old_addrs, &new_addrs);
                let c = checksum::update_complemented(c, &old_ports, &new_ports);
                Some(if c == 0 && udp { 0xffff } else { c })
            }
            // Ports are in the data the kernel will sum; only addresses seed it.
            Csum::PartialGso => Some(checksum::update_partial(old, &old_addrs, &new_addrs)),
        };
        match new {
            Some(c) => l4::set_checksum(segment, ip.protocol, c),
            None => complete_l4_checksum(frame, ip),
        }
    }
    set_macs(frame, our_mac, next_hop_mac);
    Ok(())
}

/// New outer addresses of a relayed ICMP error, and the new tuple of the packet it quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpRewrite {
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub quoted: QuotedRewrite,
}

/// NAT / FULLNAT for an ICMP error (`ip_vs_nat_icmp`): decrements TTL,
/// rewrites the outer addresses and the quoted packet's addresses and ports,
/// and recomputes the outer and quoted IPv4 checksums and the ICMP checksum.
/// `err` is the parse of the ICMP message in `frame`.
pub fn forward_icmp_rewrite(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    err: &IcmpError,
    rw: IcmpRewrite,
    our_mac: Mac,
    next_hop_mac: Mac,
) -> Result<(), DropReason> {
    trim_padding(frame, ip);
    decrement_ttl(frame, ip)?;
    let mut packet = ipv4(frame);
    packet.set_src_addr(rw.saddr);
    packet.set_dst_addr(rw.daddr);
    ip.saddr = rw.saddr;
    ip.daddr = rw.daddr;
    packet.fill_checksum();
    icmp::rewrite_quoted(packet.payload_mut(), err, rw.quoted);
    set_macs(frame, our_mac, next_hop_mac);
    Ok(())
}

/// Parameters of the outer header for TUN (IPIP).
#[derive(Clone, Copy, Debug)]
pub struct Tunnel {
    pub outer_src: Ipv4Addr,
    pub outer_dst: Ipv4Addr,
    pub ip_id: u16,
    pub our_mac: Mac,
    pub next_hop_mac: Mac,
}

/// TUN: decrements the inner TTL, completes a partial checksum, and wraps the
/// inner packet in an outer IPv4 header (protocol 4, TOS and DF copied, TTL =
/// inner TTL, fresh ID) inside a new Ethernet frame.
pub fn encapsulate_ipip(frame: &mut Vec<u8>, ip: &mut Ipv4Frame, csum: Csum, t: Tunnel) -> Result<Vec<u8>, DropReason> {
    trim_padding(frame, ip);
    decrement_ttl(frame, ip)?;
    finish_ipv4_header(frame);
    if csum != Csum::Complete {
        complete_l4_checksum(frame, ip);
    }
    let outer = ipip::Outer {
        src: t.outer_src,
        dst: t.outer_dst,
        ident: t.ip_id,
        eth_source: t.our_mac,
        eth_destination: t.next_hop_mac,
    };
    Ok(ipip::encapsulate(&frame[ethernet::HEADER_LEN..], &outer))
}
