//! Parsing received Ethernet frames into what the engine acts on. Never
//! panics: anything short or inconsistent becomes `Malformed` with a reason.

use std::net::Ipv4Addr;

use etherparse::{Ipv4HeaderSlice, TcpHeaderSlice, UdpHeaderSlice};

use crate::wire::{ethernet, l4, ArpRepr, EtherType, EthernetFrame, IpProtocol, Mac, TcpFlags};

const ETH_LEN: usize = ethernet::HEADER_LEN;

/// What a frame is, as far as the director cares.
#[derive(Debug)]
pub enum Frame {
    Arp(ArpRepr),
    Ipv4(Ipv4Frame),
    /// Not ARP-over-Ethernet/IPv4 and not IPv4 (IPv6, VLAN-tagged, LLDP, ...).
    Other,
}

/// Why a frame could not be parsed; the names are the counter keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    TruncatedEthernet,
    Arp,
    Ipv4Header,
    Ipv4TotalLength,
    TcpHeader,
    UdpHeader,
}

impl Malformed {
    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::TruncatedEthernet => "truncated_ethernet",
            Malformed::Arp => "arp",
            Malformed::Ipv4Header => "ipv4_header",
            Malformed::Ipv4TotalLength => "ipv4_total_length",
            Malformed::TcpHeader => "tcp_header",
            Malformed::UdpHeader => "udp_header",
        }
    }
}

/// Offsets and fields of an IPv4 frame (no VLAN tag: L3 starts at `ETH_LEN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Frame {
    pub src_mac: Mac,
    pub dst_mac: Mac,
    pub header_len: usize,
    /// IPv4 total length; the frame may carry Ethernet padding beyond it.
    pub total_len: usize,
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub protocol: IpProtocol,
    pub ttl: u8,
    pub dont_fragment: bool,
    /// MF set or a non-zero offset: ports are absent or only in the first piece.
    pub fragment: bool,
    /// TCP/UDP ports and flags; `None` for other protocols and fragments.
    pub l4: Option<L4>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    pub sport: u16,
    pub dport: u16,
    pub tcp: Option<TcpFlags>,
}

impl Ipv4Frame {
    pub fn l3_offset(&self) -> usize {
        ETH_LEN
    }
    pub fn l4_offset(&self) -> usize {
        ETH_LEN + self.header_len
    }
    pub fn l4_len(&self) -> usize {
        self.total_len - self.header_len
    }
    /// Frame length without Ethernet padding.
    pub fn frame_len(&self) -> usize {
        ETH_LEN + self.total_len
    }
    /// Offset of the L4 checksum field inside the L4 header.
    pub fn l4_csum_at(&self) -> Option<usize> {
        l4::checksum_at(self.protocol)
    }
    /// The IPv4 packet in `frame` (this parse's frame), without Ethernet padding.
    pub fn packet<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.l3_offset()..self.frame_len()]
    }
    /// The L4 part of the IPv4 packet in `frame` (ICMP message, TCP segment, ...).
    pub fn l4_bytes<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.l4_offset()..self.frame_len()]
    }
}

pub fn parse(frame: &[u8]) -> Result<Frame, Malformed> {
    let eth = EthernetFrame::new_checked(frame).ok_or(Malformed::TruncatedEthernet)?;
    match eth.ethertype() {
        EtherType::ARP => parse_arp(eth.payload()),
        EtherType::IPV4 => parse_ipv4(eth.source(), eth.destination(), eth.payload()).map(Frame::Ipv4),
        _ => Ok(Frame::Other),
    }
}

fn parse_arp(payload: &[u8]) -> Result<Frame, Malformed> {
    let arp = ArpRepr::parse(payload).map_err(|_| Malformed::Arp)?;
    // ARP for other hardware/protocol types is not ours to judge.
    Ok(arp.map(Frame::Arp).unwrap_or(Frame::Other))
}

fn parse_ipv4(src_mac: Mac, dst_mac: Mac, packet: &[u8]) -> Result<Ipv4Frame, Malformed> {
    let ip = Ipv4HeaderSlice::from_slice(packet).map_err(|_| Malformed::Ipv4Header)?;
    let header_len = ip.slice().len();
    let total_len = usize::from(ip.total_len());
    if total_len < header_len || total_len > packet.len() {
        return Err(Malformed::Ipv4TotalLength);
    }
    let fragment = ip.more_fragments() || ip.fragments_offset().value() != 0;
    let protocol = IpProtocol(ip.protocol().0);
    let l4_bytes = &packet[header_len..total_len];
    let l4 = if fragment {
        None
    } else if protocol == IpProtocol::TCP {
        let tcp = TcpHeaderSlice::from_slice(l4_bytes).map_err(|_| Malformed::TcpHeader)?;
        Some(L4 {
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            tcp: Some(TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            }),
        })
    } else if protocol == IpProtocol::UDP {
        let udp = UdpHeaderSlice::from_slice(l4_bytes).map_err(|_| Malformed::UdpHeader)?;
        if usize::from(udp.length()) != l4_bytes.len() {
            return Err(Malformed::UdpHeader);
        }
        Some(L4 {
            sport: udp.source_port(),
            dport: udp.destination_port(),
            tcp: None,
        })
    } else {
        None
    };
    Ok(Ipv4Frame {
        src_mac,
        dst_mac,
        header_len,
        total_len,
        saddr: ip.source_addr(),
        daddr: ip.destination_addr(),
        protocol,
        ttl: ip.ttl(),
        dont_fragment: ip.dont_fragment(),
        fragment,
        l4,
    })
}
