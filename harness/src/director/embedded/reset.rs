//! The director's own stack answering for the VIP: a TCP segment that IPVS does
//! not take (no entry and not a SYN, or no service on its port) reaches the
//! kernel's TCP, which has no socket there and resets it (`tcp_v4_send_reset`,
//! RFC 9293 §3.10.7.1). The embedded engine holds the VIP outside the kernel's
//! stack, so it answers the same way itself.

use std::net::Ipv4Addr;

use etherparse::{PacketBuilder, TcpHeaderSlice};

use crate::wire::Mac;

/// The RST answering the TCP segment at `tcp` (its header and payload), sent
/// from `local` to `remote`; `None` for a segment that is itself a reset or too
/// short to read.
pub fn answer(tcp: &[u8], local: Ipv4Addr, remote: Ipv4Addr, src_mac: Mac) -> Option<Vec<u8>> {
    let seg = TcpHeaderSlice::from_slice(tcp).ok()?;
    if seg.rst() {
        return None;
    }
    let payload = tcp.len().saturating_sub(seg.slice().len()) as u32;
    // With ACK set the reset takes its sequence from it; without, it
    // acknowledges everything the segment occupied (SYN and FIN count one).
    let seq = if seg.ack() { seg.acknowledgment_number() } else { 0 };
    let builder = PacketBuilder::ethernet2(src_mac.0, Mac::UNSPECIFIED.0)
        .ipv4(local.octets(), remote.octets(), 64)
        .tcp(seg.destination_port(), seg.source_port(), seq, 0)
        .rst();
    let builder = if seg.ack() {
        builder
    } else {
        let len = payload + u32::from(seg.syn()) + u32::from(seg.fin());
        builder.ack(seg.sequence_number().wrapping_add(len))
    };
    let mut frame = Vec::with_capacity(builder.size(0));
    builder.write(&mut frame, &[]).ok()?;
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);

    fn segment(
        build: impl FnOnce(
            etherparse::PacketBuilderStep<etherparse::TcpHeader>,
        ) -> etherparse::PacketBuilderStep<etherparse::TcpHeader>,
        payload: &[u8],
    ) -> Vec<u8> {
        let b = build(PacketBuilder::ipv4(CLIENT.octets(), VIP.octets(), 64).tcp(40000, 80, 1000, 64240));
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out[20..].to_vec()
    }

    fn parse(frame: &[u8]) -> (Ipv4Addr, Ipv4Addr, etherparse::TcpHeader) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("not TCP")
        };
        (
            ip.header().source_addr(),
            ip.header().destination_addr(),
            tcp.to_header(),
        )
    }

    #[test]
    fn an_ack_without_an_entry_is_reset_at_its_acknowledgment() {
        let seg = segment(|b| b.ack(5000).psh(), b"GET / HTTP/1.1\r\n\r\n");
        let (src, dst, rst) = parse(&answer(&seg, VIP, CLIENT, Mac([2, 0, 0, 0, 0, 1])).unwrap());
        assert_eq!((src, dst), (VIP, CLIENT));
        assert_eq!((rst.source_port, rst.destination_port), (80, 40000));
        assert!(rst.rst && !rst.ack);
        assert_eq!(rst.sequence_number, 5000);
    }

    #[test]
    fn a_syn_to_an_unserved_port_is_refused_with_rst_ack() {
        let seg = segment(|b| b.syn(), &[]);
        let (_, _, rst) = parse(&answer(&seg, VIP, CLIENT, Mac::UNSPECIFIED).unwrap());
        assert!(rst.rst && rst.ack);
        assert_eq!((rst.sequence_number, rst.acknowledgment_number), (0, 1001));
    }

    #[test]
    fn a_fin_with_data_counts_both() {
        let seg = segment(|b| b.fin(), b"abc");
        let (_, _, rst) = parse(&answer(&seg, VIP, CLIENT, Mac::UNSPECIFIED).unwrap());
        assert_eq!(rst.acknowledgment_number, 1004);
    }

    #[test]
    fn a_reset_and_a_truncated_header_get_no_answer() {
        let seg = segment(|b| b.rst(), &[]);
        assert!(answer(&seg, VIP, CLIENT, Mac::UNSPECIFIED).is_none());
        assert!(answer(&seg[..10], VIP, CLIENT, Mac::UNSPECIFIED).is_none());
    }
}
