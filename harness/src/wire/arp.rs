//! ARP for IPv4 over Ethernet: the packet as a value, parsed (with etherparse) and
//! emitted, and the one builder of the requests and replies lvslab sends.

use std::net::Ipv4Addr;

use etherparse::ArpPacket;

use super::ethernet::{self, EtherType};
use super::Mac;

/// An ARP packet for Ethernet/IPv4.
pub const PACKET_LEN: usize = 28;
/// An Ethernet frame carrying one, unpadded.
pub const FRAME_LEN: usize = ethernet::HEADER_LEN + PACKET_LEN;

mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

const HTYPE_ETHERNET: u16 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
    Other(u16),
}

impl Operation {
    fn code(self) -> u16 {
        match self {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Other(c) => c,
        }
    }
    fn from_code(c: u16) -> Self {
        match c {
            1 => Operation::Request,
            2 => Operation::Reply,
            c => Operation::Other(c),
        }
    }
}

/// Shorter than its address lengths say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub operation: Operation,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Reads the ARP packet `payload` (what follows the Ethernet header). `Ok(None)` for
    /// ARP of another hardware or protocol type, which is not ours to judge.
    pub fn parse(payload: &[u8]) -> Result<Option<Repr>, Truncated> {
        let arp = ArpPacket::from_slice(payload).map_err(|_| Truncated)?;
        Ok(arp.try_eth_ipv4().ok().map(|a| Repr {
            operation: Operation::from_code(a.operation.0),
            sender_mac: Mac(a.sender_mac),
            sender_ip: a.sender_ipv4_addr(),
            target_mac: Mac(a.target_mac),
            target_ip: a.target_ipv4_addr(),
        }))
    }

    pub fn to_bytes(&self) -> [u8; PACKET_LEN] {
        let mut b = [0u8; PACKET_LEN];
        b[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&EtherType::IPV4.0.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&self.operation.code().to_be_bytes());
        b[field::SHA].copy_from_slice(&self.sender_mac.0);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_mac.0);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// This packet in an Ethernet frame from `source` to `destination` (unpadded).
    pub fn frame(&self, source: Mac, destination: Mac) -> Vec<u8> {
        let eth = ethernet::Repr {
            source,
            destination,
            ethertype: EtherType::ARP,
        };
        let mut out = Vec::with_capacity(FRAME_LEN);
        out.extend_from_slice(&eth.to_bytes());
        out.extend_from_slice(&self.to_bytes());
        out
    }
}

/// Broadcast "who has `target`? tell `source` (at `mac`)", unpadded.
pub fn request(mac: Mac, source: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let req = Repr {
        operation: Operation::Request,
        sender_mac: mac,
        sender_ip: source,
        target_mac: Mac::UNSPECIFIED,
        target_ip: target,
    };
    req.frame(mac, Mac::BROADCAST)
}

/// keepalived's gratuitous ARP for `vip` (`vrrp_arp.c`): a broadcast request with sender and
/// target address both `vip` and target MAC ff:ff:ff:ff:ff:ff, unpadded.
pub fn gratuitous(mac: Mac, vip: Ipv4Addr) -> Vec<u8> {
    let req = Repr {
        operation: Operation::Request,
        sender_mac: mac,
        sender_ip: vip,
        target_mac: Mac::BROADCAST,
        target_ip: vip,
    };
    req.frame(mac, Mac::BROADCAST)
}

/// The reply to `request` saying `request.target_ip` is at `mac`, sent to the MAC the
/// request came from; `None` if it is not a request.
pub fn reply_to(request: &Repr, mac: Mac) -> Option<Vec<u8>> {
    if request.operation != Operation::Request {
        return None;
    }
    let reply = Repr {
        operation: Operation::Reply,
        sender_mac: mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    Some(reply.frame(mac, request.sender_mac))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{ArpEthIpv4Packet, ArpOperation};

    const OUR: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const CLIENT: Mac = Mac([2, 0, 0, 0, 0, 9]);

    #[test]
    fn emit_then_parse_round_trips_and_matches_etherparse_bytes() {
        let repr = Repr {
            operation: Operation::Reply,
            sender_mac: OUR,
            sender_ip: Ipv4Addr::new(10, 0, 0, 100),
            target_mac: CLIENT,
            target_ip: Ipv4Addr::new(10, 0, 0, 9),
        };
        let bytes = repr.to_bytes();
        assert_eq!(Repr::parse(&bytes), Ok(Some(repr)));
        let theirs = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            sender_mac: OUR.0,
            sender_ipv4: [10, 0, 0, 100],
            target_mac: CLIENT.0,
            target_ipv4: [10, 0, 0, 9],
        };
        assert_eq!(bytes, theirs.to_bytes());
        assert_eq!(Repr::parse(&bytes[..27]), Err(Truncated));
        let mut not_ipv4 = bytes;
        not_ipv4[field::PTYPE].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(Repr::parse(&not_ipv4), Ok(None));
    }

    #[test]
    fn request_is_a_broadcast_who_has_and_the_reply_answers_it() {
        let frame = request(CLIENT, Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(frame.len(), FRAME_LEN);
        let eth = ethernet::Frame::new_checked(&frame[..]).unwrap();
        assert_eq!(
            (eth.destination(), eth.source(), eth.ethertype()),
            (Mac::BROADCAST, CLIENT, EtherType::ARP)
        );
        let req = Repr::parse(eth.payload()).unwrap().unwrap();
        assert_eq!(req.operation, Operation::Request);
        assert_eq!((req.sender_mac, req.target_mac), (CLIENT, Mac::UNSPECIFIED));

        let reply = reply_to(&req, OUR).unwrap();
        let eth = ethernet::Frame::new_checked(&reply[..]).unwrap();
        assert_eq!((eth.destination(), eth.source()), (CLIENT, OUR));
        let rep = Repr::parse(eth.payload()).unwrap().unwrap();
        assert_eq!(rep.operation, Operation::Reply);
        assert_eq!((rep.sender_mac, rep.sender_ip), (OUR, Ipv4Addr::new(10, 0, 0, 100)));
        assert_eq!(rep.target_ip, Ipv4Addr::new(10, 0, 0, 9));
        assert!(reply_to(&rep, OUR).is_none(), "a reply is not answered");
    }
}
