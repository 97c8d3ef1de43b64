//! The byte work of forwarding: MAC rewrite (DR), address/port rewrite with
//! checksum fix-ups (NAT, FULLNAT, both directions, and the ICMP errors that
//! belong to their connections), IPIP encapsulation (TUN). Pure functions over
//! a frame buffer and its parse, so they are unit-tested on crafted frames.

use std::net::Ipv4Addr;

use super::checksum;
use super::frame::{Ipv4Frame, ETH_LEN, PROTO_UDP};
use super::icmp::{self, IcmpError, QuotedRewrite};

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

pub const IPPROTO_IPIP: u8 = 4;

pub fn set_macs(frame: &mut [u8], src: [u8; 6], dst: [u8; 6]) {
    frame[0..6].copy_from_slice(&dst);
    frame[6..12].copy_from_slice(&src);
}

/// Drops Ethernet padding so later length-based work sees the IP packet only.
pub fn trim_padding(frame: &mut Vec<u8>, ip: &Ipv4Frame) {
    frame.truncate(ip.frame_len());
}

/// Decrements TTL as a forwarding hop does. False when the packet must die
/// (TTL would reach 0). The header checksum is recomputed by `finish_ipv4_header`.
pub fn decrement_ttl(frame: &mut [u8], ip: &mut Ipv4Frame) -> bool {
    if ip.ttl <= 1 {
        return false;
    }
    ip.ttl -= 1;
    frame[ETH_LEN + 8] = ip.ttl;
    true
}

pub fn finish_ipv4_header(frame: &mut [u8], ip: &Ipv4Frame) {
    let header = &mut frame[ETH_LEN..ETH_LEN + ip.header_len];
    header[10] = 0;
    header[11] = 0;
    let c = checksum::ipv4_header_checksum(header);
    header[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Replaces the pseudo-header seed of a CHECKSUM_PARTIAL frame by the full
/// TCP/UDP checksum. No-op for other protocols and fragments.
pub fn complete_l4_checksum(frame: &mut [u8], ip: &Ipv4Frame) {
    let (Some(at), Some(_)) = (ip.l4_csum_at(), ip.l4) else {
        return;
    };
    let l4 = ip.l4_offset();
    let segment = &frame[l4..l4 + ip.l4_len()];
    let c = checksum::l4_checksum(ip.saddr, ip.daddr, ip.protocol, segment, at);
    frame[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

/// DR: the IP packet is unchanged but for TTL; the frame goes to the real
/// server's MAC. A partial checksum is completed (non-GSO), since the real
/// server will not get the offload metadata.
pub fn forward_dr(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    csum: Csum,
    our_mac: [u8; 6],
    next_hop_mac: [u8; 6],
) -> bool {
    trim_padding(frame, ip);
    if !decrement_ttl(frame, ip) {
        return false;
    }
    finish_ipv4_header(frame, ip);
    if csum == Csum::Partial {
        complete_l4_checksum(frame, ip);
    }
    set_macs(frame, our_mac, next_hop_mac);
    true
}

/// NAT / FULLNAT, either direction: rewrites addresses and ports, decrements
/// TTL, fixes the IP header checksum and the L4 checksum (incrementally when
/// complete, fully when partial, seed-only for GSO).
pub fn forward_rewrite(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    csum: Csum,
    rw: Rewrite,
    our_mac: [u8; 6],
    next_hop_mac: [u8; 6],
) -> bool {
    trim_padding(frame, ip);
    if !decrement_ttl(frame, ip) {
        return false;
    }
    let l3 = ETH_LEN;
    let l4 = ip.l4_offset();
    let mut old_addrs = [0u8; 8];
    old_addrs.copy_from_slice(&frame[l3 + 12..l3 + 20]);
    let mut new_addrs = [0u8; 8];
    new_addrs[..4].copy_from_slice(&rw.saddr.octets());
    new_addrs[4..].copy_from_slice(&rw.daddr.octets());
    let mut old_ports = [0u8; 4];
    old_ports.copy_from_slice(&frame[l4..l4 + 4]);
    let mut new_ports = [0u8; 4];
    new_ports[..2].copy_from_slice(&rw.sport.to_be_bytes());
    new_ports[2..].copy_from_slice(&rw.dport.to_be_bytes());

    frame[l3 + 12..l3 + 20].copy_from_slice(&new_addrs);
    frame[l4..l4 + 4].copy_from_slice(&new_ports);
    ip.saddr = rw.saddr;
    ip.daddr = rw.daddr;
    if let Some(l4_mut) = ip.l4.as_mut() {
        l4_mut.sport = rw.sport;
        l4_mut.dport = rw.dport;
    }
    finish_ipv4_header(frame, ip);

    if let Some(at) = ip.l4_csum_at() {
        let field = l4 + at;
        let old = u16::from_be_bytes([frame[field], frame[field + 1]]);
        let new = match csum {
            Csum::Partial => None,
            // A zero UDP checksum means "none": it stays none.
            Csum::Complete if ip.protocol == PROTO_UDP && old == 0 => Some(0),
            Csum::Complete => {
                let c = checksum::update_complemented(old, &old_addrs, &new_addrs);
                let c = checksum::update_complemented(c, &old_ports, &new_ports);
                Some(if c == 0 && ip.protocol == PROTO_UDP { 0xffff } else { c })
            }
            // Ports are in the data the kernel will sum; only addresses seed it.
            Csum::PartialGso => Some(checksum::update_partial(old, &old_addrs, &new_addrs)),
        };
        match new {
            Some(c) => frame[field..field + 2].copy_from_slice(&c.to_be_bytes()),
            None => complete_l4_checksum(frame, ip),
        }
    }
    set_macs(frame, our_mac, next_hop_mac);
    true
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
/// `err` is the parse of the ICMP message in `frame`. False if TTL expired.
pub fn forward_icmp_rewrite(
    frame: &mut Vec<u8>,
    ip: &mut Ipv4Frame,
    err: &IcmpError,
    rw: IcmpRewrite,
    our_mac: [u8; 6],
    next_hop_mac: [u8; 6],
) -> bool {
    trim_padding(frame, ip);
    if !decrement_ttl(frame, ip) {
        return false;
    }
    frame[ETH_LEN + 12..ETH_LEN + 16].copy_from_slice(&rw.saddr.octets());
    frame[ETH_LEN + 16..ETH_LEN + 20].copy_from_slice(&rw.daddr.octets());
    ip.saddr = rw.saddr;
    ip.daddr = rw.daddr;
    finish_ipv4_header(frame, ip);
    let l4 = ip.l4_offset();
    icmp::rewrite_quoted(&mut frame[l4..], err, rw.quoted);
    set_macs(frame, our_mac, next_hop_mac);
    true
}

/// Parameters of the outer header for TUN (IPIP).
#[derive(Clone, Copy, Debug)]
pub struct Tunnel {
    pub outer_src: Ipv4Addr,
    pub outer_dst: Ipv4Addr,
    pub ip_id: u16,
    pub our_mac: [u8; 6],
    pub next_hop_mac: [u8; 6],
}

/// TUN: decrements the inner TTL, completes a partial checksum, and wraps the
/// inner packet in an outer IPv4 header (protocol 4, TOS and DF copied, TTL =
/// inner TTL, fresh ID) inside a new Ethernet frame. `None` if TTL expired.
pub fn encapsulate_ipip(frame: &mut Vec<u8>, ip: &mut Ipv4Frame, csum: Csum, t: Tunnel) -> Option<Vec<u8>> {
    trim_padding(frame, ip);
    if !decrement_ttl(frame, ip) {
        return None;
    }
    finish_ipv4_header(frame, ip);
    if csum != Csum::Complete {
        complete_l4_checksum(frame, ip);
    }
    let inner = &frame[ETH_LEN..];
    let total = 20 + inner.len();
    let mut out = Vec::with_capacity(ETH_LEN + total);
    out.extend_from_slice(&t.next_hop_mac);
    out.extend_from_slice(&t.our_mac);
    out.extend_from_slice(&0x0800u16.to_be_bytes());
    let flags_frag: u16 = if ip.dont_fragment { 0x4000 } else { 0 };
    out.extend_from_slice(&[0x45, inner[1]]);
    out.extend_from_slice(&(total as u16).to_be_bytes());
    out.extend_from_slice(&t.ip_id.to_be_bytes());
    out.extend_from_slice(&flags_frag.to_be_bytes());
    out.extend_from_slice(&[ip.ttl, IPPROTO_IPIP, 0, 0]);
    out.extend_from_slice(&t.outer_src.octets());
    out.extend_from_slice(&t.outer_dst.octets());
    let c = checksum::ipv4_header_checksum(&out[ETH_LEN..ETH_LEN + 20]);
    out[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
    out.extend_from_slice(inner);
    Some(out)
}
