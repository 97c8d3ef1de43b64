//! Parsing received Ethernet frames into what the engine acts on. Never
//! panics: anything short or inconsistent becomes `Malformed` with a reason.

use std::net::Ipv4Addr;

use etherparse::{
    ArpEthIpv4Packet, ArpPacket, EtherType, Ethernet2HeaderSlice, IpNumber, Ipv4HeaderSlice, TcpHeaderSlice,
    UdpHeaderSlice,
};

pub const ETH_LEN: usize = 14;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// What a frame is, as far as the director cares.
#[derive(Debug)]
pub enum Frame {
    Arp(ArpEthIpv4Packet),
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
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub header_len: usize,
    /// IPv4 total length; the frame may carry Ethernet padding beyond it.
    pub total_len: usize,
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub protocol: u8,
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
    pub tcp: Option<TcpBits>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpBits {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
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
        match self.protocol {
            PROTO_TCP => Some(16),
            PROTO_UDP => Some(6),
            _ => None,
        }
    }
}

pub fn parse(frame: &[u8]) -> Result<Frame, Malformed> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| Malformed::TruncatedEthernet)?;
    match eth.ether_type() {
        EtherType::ARP => parse_arp(&frame[ETH_LEN..]),
        EtherType::IPV4 => parse_ipv4(eth.source(), eth.destination(), &frame[ETH_LEN..]).map(Frame::Ipv4),
        _ => Ok(Frame::Other),
    }
}

fn parse_arp(payload: &[u8]) -> Result<Frame, Malformed> {
    let arp = ArpPacket::from_slice(payload).map_err(|_| Malformed::Arp)?;
    // ARP for other hardware/protocol types is not ours to judge.
    Ok(arp.try_eth_ipv4().map(Frame::Arp).unwrap_or(Frame::Other))
}

fn parse_ipv4(src_mac: [u8; 6], dst_mac: [u8; 6], packet: &[u8]) -> Result<Ipv4Frame, Malformed> {
    let ip = Ipv4HeaderSlice::from_slice(packet).map_err(|_| Malformed::Ipv4Header)?;
    let header_len = ip.slice().len();
    let total_len = usize::from(ip.total_len());
    if total_len < header_len || total_len > packet.len() {
        return Err(Malformed::Ipv4TotalLength);
    }
    let fragment = ip.more_fragments() || ip.fragments_offset().value() != 0;
    let protocol = ip.protocol().0;
    let l4_bytes = &packet[header_len..total_len];
    let l4 = if fragment {
        None
    } else if ip.protocol() == IpNumber::TCP {
        let tcp = TcpHeaderSlice::from_slice(l4_bytes).map_err(|_| Malformed::TcpHeader)?;
        Some(L4 {
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            tcp: Some(TcpBits {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            }),
        })
    } else if ip.protocol() == IpNumber::UDP {
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
