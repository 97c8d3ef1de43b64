//! What TCP and UDP share at the start of their headers: the ports, and a checksum
//! each keeps in its own place. An ICMP error quotes only these first bytes.

use super::ipv4::Protocol;
use super::{tcp, udp};

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const PORTS: Range<usize> = 0..4;
}

/// Source and destination port, when `segment` holds them.
pub fn ports(segment: &[u8]) -> Option<(u16, u16)> {
    let p = segment.get(field::PORTS)?;
    Some((u16::from_be_bytes([p[0], p[1]]), u16::from_be_bytes([p[2], p[3]])))
}

/// Both ports as the 4 bytes an incremental checksum update sees.
pub fn ports_bytes(src: u16, dst: u16) -> [u8; 4] {
    let mut b = [0u8; 4];
    b[field::SRC_PORT].copy_from_slice(&src.to_be_bytes());
    b[field::DST_PORT].copy_from_slice(&dst.to_be_bytes());
    b
}

/// Writes both ports (`segment` holds at least them).
pub fn set_ports(segment: &mut [u8], src: u16, dst: u16) {
    segment[field::PORTS].copy_from_slice(&ports_bytes(src, dst));
}

/// Where the checksum sits in a TCP or UDP header; `None` for other protocols.
pub fn checksum_at(protocol: Protocol) -> Option<usize> {
    match protocol {
        Protocol::TCP => Some(tcp::CHECKSUM_AT),
        Protocol::UDP => Some(udp::CHECKSUM_AT),
        _ => None,
    }
}

/// The checksum field of a TCP or UDP segment whose header is whole.
pub fn checksum(segment: &[u8], protocol: Protocol) -> Option<u16> {
    match protocol {
        Protocol::TCP => tcp::Packet::new_checked(segment).map(|p| p.checksum()),
        Protocol::UDP => udp::Packet::new_checked(segment).map(|p| p.checksum()),
        _ => None,
    }
}

/// Writes the checksum field of a TCP or UDP segment whose header is whole; no-op otherwise.
pub fn set_checksum(segment: &mut [u8], protocol: Protocol, c: u16) {
    match protocol {
        Protocol::TCP => {
            if let Some(mut p) = tcp::Packet::new_checked(segment) {
                p.set_checksum(c)
            }
        }
        Protocol::UDP => {
            if let Some(mut p) = udp::Packet::new_checked(segment) {
                p.set_checksum(c)
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn ports_and_checksum_of_tcp_and_udp_as_etherparse_builds_them() {
        for (protocol, packet) in [
            (Protocol::TCP, {
                let mut p = Vec::new();
                PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .tcp(40000, 80, 1, 1000)
                    .write(&mut p, b"x")
                    .unwrap();
                p
            }),
            (Protocol::UDP, {
                let mut p = Vec::new();
                PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .udp(40000, 80)
                    .write(&mut p, b"x")
                    .unwrap();
                p
            }),
        ] {
            let mut segment = packet[20..].to_vec();
            assert_eq!(ports(&segment), Some((40000, 80)));
            let theirs = etherparse::PacketHeaders::from_ip_slice(&packet).unwrap();
            let want = match theirs.transport.unwrap() {
                etherparse::TransportHeader::Tcp(t) => t.checksum,
                etherparse::TransportHeader::Udp(u) => u.checksum,
                _ => unreachable!(),
            };
            assert_eq!(checksum(&segment, protocol), Some(want));
            set_ports(&mut segment, 1, 2);
            set_checksum(&mut segment, protocol, 0x1234);
            assert_eq!(
                (ports(&segment), checksum(&segment, protocol)),
                (Some((1, 2)), Some(0x1234))
            );
            let at = checksum_at(protocol).unwrap();
            assert_eq!(segment[at..at + 2], [0x12, 0x34]);
        }
        assert_eq!(ports(&[0, 1, 2]), None);
        assert_eq!(checksum_at(Protocol::ICMP), None);
    }
}
