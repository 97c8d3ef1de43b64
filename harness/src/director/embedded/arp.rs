//! ARP frames: answering for addresses the engine owns (VIPs, FULLNAT local
//! addresses — the director's kernel does not hold them), and the requests
//! that resolve next hops (`neighbour.rs` decides when). Replies to clients use
//! the MAC their requests came from (learnt), as a router would after ARP.

use std::net::Ipv4Addr;

use etherparse::{ArpEthIpv4Packet, ArpOperation};

use super::frame::ETH_LEN;

pub const BROADCAST: [u8; 6] = [0xff; 6];

fn arp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], arp: &ArpEthIpv4Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETH_LEN + ArpEthIpv4Packet::LEN);
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&0x0806u16.to_be_bytes());
    out.extend_from_slice(&arp.to_bytes());
    out
}

/// The reply to `request` saying `request.target` is at `our_mac`, or `None`
/// if it is not a request.
pub fn reply_to(request: &ArpEthIpv4Packet, our_mac: [u8; 6]) -> Option<Vec<u8>> {
    if request.operation != ArpOperation::REQUEST {
        return None;
    }
    let reply = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: our_mac,
        sender_ipv4: request.target_ipv4,
        target_mac: request.sender_mac,
        target_ipv4: request.sender_ipv4,
    };
    Some(arp_frame(request.sender_mac, our_mac, &reply))
}

/// Broadcast "who has `target`? tell `our_ip`".
pub fn request_for(target: Ipv4Addr, our_ip: Ipv4Addr, our_mac: [u8; 6]) -> Vec<u8> {
    let req = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: our_mac,
        sender_ipv4: our_ip.octets(),
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    arp_frame(BROADCAST, our_mac, &req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::ArpPacket;

    const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 9];

    #[test]
    fn reply_names_our_mac_for_the_asked_address() {
        let req = ArpEthIpv4Packet {
            operation: ArpOperation::REQUEST,
            sender_mac: CLIENT,
            sender_ipv4: [10, 0, 0, 9],
            target_mac: [0; 6],
            target_ipv4: [10, 0, 0, 100],
        };
        let frame = reply_to(&req, OUR).unwrap();
        assert_eq!(&frame[0..6], &CLIENT);
        assert_eq!(&frame[6..12], &OUR);
        let arp = ArpPacket::from_slice(&frame[ETH_LEN..])
            .unwrap()
            .try_eth_ipv4()
            .unwrap();
        assert_eq!(arp.operation, ArpOperation::REPLY);
        assert_eq!(arp.sender_mac, OUR);
        assert_eq!(arp.sender_ipv4_addr(), Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(arp.target_ipv4_addr(), Ipv4Addr::new(10, 0, 0, 9));
        let as_reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            ..req
        };
        assert!(reply_to(&as_reply, OUR).is_none());
    }
}
