//! IP-in-IP (protocol 4): wrapping an IPv4 packet in an outer header as IPVS's TUN
//! forwarding does (`ip_vs_tunnel_xmit`), and checking and stripping one as a real
//! server's `ipip` module would.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Slice};

use super::ethernet::{self, EtherType};
use super::ipv4::{self, Protocol};
use super::Mac;

/// The outer header encapsulation adds.
pub const OVERHEAD: usize = ipv4::HEADER_LEN;

/// The outer header and the frame around it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ident: u16,
    pub eth_source: Mac,
    pub eth_destination: Mac,
}

/// An Ethernet frame carrying `inner` (a whole IPv4 packet) in an outer IPv4 header:
/// protocol 4, TOS, DF and TTL copied from the inner header, no options.
pub fn encapsulate(inner: &[u8], outer: &Outer) -> Vec<u8> {
    let view = ipv4::Packet::new_checked(inner).expect("encapsulating a whole IPv4 packet");
    let eth = ethernet::Repr {
        source: outer.eth_source,
        destination: outer.eth_destination,
        ethertype: EtherType::IPV4,
    };
    let ip = ipv4::Repr {
        src_addr: outer.src,
        dst_addr: outer.dst,
        protocol: Protocol::IPIP,
        tos: view.tos(),
        ident: outer.ident,
        dont_fragment: view.dont_fragment(),
        ttl: view.ttl(),
        payload_len: inner.len(),
    };
    let mut out = Vec::with_capacity(ethernet::HEADER_LEN + OVERHEAD + inner.len());
    out.extend_from_slice(&eth.to_bytes());
    out.extend_from_slice(&ip.to_bytes());
    out.extend_from_slice(inner);
    out
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    #[error("outer IPv4 header invalid: {0}")]
    Outer(String),
    #[error("outer protocol is {0}, not IPIP (4)")]
    NotIpip(u8),
    #[error("outer packet is a fragment")]
    Fragment,
    #[error("inner IPv4 packet invalid: {0}")]
    Inner(String),
}

/// Checks an IPIP packet (outer IPv4 header included) and returns the inner
/// IPv4 packet, trimmed to its own total length. The inner header checksum is
/// left to the kernel, which verifies it when the packet comes in on tunl0.
pub fn decapsulate(packet: &[u8]) -> Result<&[u8], DecapError> {
    let outer = Ipv4Slice::from_slice(packet).map_err(|err| DecapError::Outer(err.to_string()))?;
    let protocol = outer.header().protocol();
    if protocol != IpNumber::IPV4 {
        return Err(DecapError::NotIpip(protocol.0));
    }
    // The kernel reassembles before raw delivery; a fragment here is not whole.
    if outer.is_payload_fragmented() {
        return Err(DecapError::Fragment);
    }
    let payload = outer.payload().payload;
    let inner = Ipv4Slice::from_slice(payload).map_err(|err| DecapError::Inner(err.to_string()))?;
    let inner_len = usize::from(inner.header().total_len());
    Ok(&payload[..inner_len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn inner_udp(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 98, 0, 5], [10, 99, 0, 1], 64)
            .udp(5555, 9999)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn ipip(inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 11], 64)
            .write(&mut out, IpNumber::IPV4, inner)
            .unwrap();
        out
    }

    const OUTER: Outer = Outer {
        src: Ipv4Addr::new(192, 0, 2, 2),
        dst: Ipv4Addr::new(192, 0, 2, 11),
        ident: 7,
        eth_source: Mac([2, 0, 0, 0, 0, 1]),
        eth_destination: Mac([2, 0, 0, 0, 0, 0x0b]),
    };

    #[test]
    fn encapsulate_then_decapsulate_gives_the_inner_packet_back() {
        let inner = inner_udp(b"hello");
        let frame = encapsulate(&inner, &OUTER);
        let eth = ethernet::Frame::new_checked(&frame[..]).unwrap();
        assert_eq!(
            (eth.source(), eth.destination()),
            (OUTER.eth_source, OUTER.eth_destination)
        );
        assert_eq!(decapsulate(eth.payload()).unwrap(), &inner[..]);
        let outer = ipv4::Packet::new_checked(eth.payload()).unwrap();
        assert!(outer.verify_checksum());
        assert_eq!(
            (outer.src_addr(), outer.dst_addr(), outer.ident()),
            (OUTER.src, OUTER.dst, 7)
        );
        assert_eq!(
            (outer.ttl(), outer.dont_fragment()),
            (64, true),
            "TTL and DF copied from the inner header"
        );
        assert_eq!(usize::from(outer.total_len()), OVERHEAD + inner.len());
    }

    #[test]
    fn strips_the_outer_header() {
        let inner = inner_udp(b"hello");
        let packet = ipip(&inner);
        assert_eq!(decapsulate(&packet).unwrap(), &inner[..]);
    }

    #[test]
    fn trims_padding_after_the_inner_packet() {
        let inner = inner_udp(b"hello");
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0u8; 6]);
        assert_eq!(decapsulate(&ipip(&padded)).unwrap(), &inner[..]);
    }

    #[test]
    fn rejects_malformed_input() {
        let inner = inner_udp(b"hello");
        let packet = ipip(&inner);
        assert!(matches!(decapsulate(&[]), Err(DecapError::Outer(_))));
        assert!(matches!(decapsulate(&packet[..10]), Err(DecapError::Outer(_))));
        // Outer total length says more than was received.
        assert!(matches!(
            decapsulate(&packet[..packet.len() - 1]),
            Err(DecapError::Outer(_))
        ));
        // Inner packet cut short (outer header rebuilt around the stub).
        assert!(matches!(
            decapsulate(&ipip(&inner[..inner.len() - 3])),
            Err(DecapError::Inner(_))
        ));
        assert!(matches!(decapsulate(&ipip(&inner[..8])), Err(DecapError::Inner(_))));
        // Inner is not IPv4 at all.
        assert!(matches!(decapsulate(&ipip(&[0x60; 40])), Err(DecapError::Inner(_))));
        // Outer carries UDP, not IPIP.
        assert!(matches!(decapsulate(&inner), Err(DecapError::NotIpip(17))));
        // Outer is a first fragment (MF set).
        let mut fragment = packet.clone();
        fragment[6] |= 0x20;
        assert!(matches!(decapsulate(&fragment), Err(DecapError::Fragment)));
        // Bad outer version nibble.
        let mut v6 = packet.clone();
        v6[0] = 0x65;
        assert!(matches!(decapsulate(&v6), Err(DecapError::Outer(_))));
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_flip() {
        let packet = ipip(&inner_udp(b"hello world"));
        for len in 0..=packet.len() {
            let _ = decapsulate(&packet[..len]);
        }
        for index in 0..packet.len() {
            let mut flipped = packet.clone();
            flipped[index] ^= 0xff;
            let _ = decapsulate(&flipped);
        }
    }
}
