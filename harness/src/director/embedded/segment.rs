//! TCP segmentation of a GSO super-frame, as the kernel's `tcp_gso_segment` and
//! `inet_gso_segment` cut one: the engine must do it itself before IPIP encapsulation, since a
//! virtio-net header cannot ask the kernel to segment an IPIP packet. Each segment carries at
//! most `gso_size` bytes of payload; the IPv4 ID counts up from the super-frame's, the sequence
//! number advances by the payload before it, CWR stays on the first segment only, FIN and PSH
//! on the last only, and every checksum is complete.

use super::frame::Ipv4Frame;
use crate::wire::{checksum, ethernet, l4, IpProtocol, Ipv4Packet};

/// Offsets in the IPv4 header and the TCP header.
const IP_TOTAL_LEN: usize = 2;
const IP_IDENT: usize = 4;
const TCP_SEQ: usize = 4;
const TCP_DATA_OFFSET: usize = 12;
const TCP_FLAGS: usize = 13;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Why a super-frame could not be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Only TCP super-frames are segmented here (UDP GSO is not).
    NotTcp,
    /// A gso_size of 0, or a TCP header that does not fit the packet.
    Malformed,
}

/// Length of the IPv4 packet of each full segment: IPv4 and TCP headers plus `gso_size`, what
/// the kernel's `skb_gso_validate_network_len` holds against the MTU.
pub fn segment_network_len(frame: &[u8], ip: &Ipv4Frame, gso_size: u16) -> Result<usize, SegmentError> {
    Ok(ip.header_len + tcp_header_len(frame, ip)? + usize::from(gso_size))
}

fn tcp_header_len(frame: &[u8], ip: &Ipv4Frame) -> Result<usize, SegmentError> {
    if ip.protocol != IpProtocol::TCP {
        return Err(SegmentError::NotTcp);
    }
    let tcp = ip.l4_bytes(frame);
    let len = usize::from(tcp.get(TCP_DATA_OFFSET).ok_or(SegmentError::Malformed)? >> 4) * 4;
    if len < 20 || len > tcp.len() {
        return Err(SegmentError::Malformed);
    }
    Ok(len)
}

/// The segments of TCP/IPv4 super-frame `frame` (Ethernet header included, padding trimmed),
/// each a whole Ethernet frame with the super-frame's MACs.
pub fn segment_tcp(frame: &[u8], ip: &Ipv4Frame, gso_size: u16) -> Result<Vec<Vec<u8>>, SegmentError> {
    let thl = tcp_header_len(frame, ip)?;
    if gso_size == 0 {
        return Err(SegmentError::Malformed);
    }
    let headers_end = ip.l4_offset() + thl;
    let headers = &frame[..headers_end];
    let payload = &frame[headers_end..ip.frame_len()];
    let ident = u16::from_be_bytes([frame[ip.l3_offset() + IP_IDENT], frame[ip.l3_offset() + IP_IDENT + 1]]);
    let seq = u32::from_be_bytes(
        frame[ip.l4_offset() + TCP_SEQ..ip.l4_offset() + TCP_SEQ + 4]
            .try_into()
            .expect("four bytes"),
    );
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![payload]
    } else {
        payload.chunks(usize::from(gso_size)).collect()
    };
    let last = chunks.len() - 1;
    let mut out = Vec::with_capacity(chunks.len());
    let mut offset = 0u32;
    for (n, chunk) in chunks.into_iter().enumerate() {
        let mut seg = Vec::with_capacity(headers_end + chunk.len());
        seg.extend_from_slice(headers);
        seg.extend_from_slice(chunk);
        let ip_at = ip.l3_offset();
        let total = (ip.header_len + thl + chunk.len()) as u16;
        seg[ip_at + IP_TOTAL_LEN..ip_at + IP_TOTAL_LEN + 2].copy_from_slice(&total.to_be_bytes());
        seg[ip_at + IP_IDENT..ip_at + IP_IDENT + 2].copy_from_slice(&ident.wrapping_add(n as u16).to_be_bytes());
        let tcp_at = ip.l4_offset();
        seg[tcp_at + TCP_SEQ..tcp_at + TCP_SEQ + 4].copy_from_slice(&seq.wrapping_add(offset).to_be_bytes());
        if n > 0 {
            seg[tcp_at + TCP_FLAGS] &= !TCP_CWR;
        }
        if n < last {
            seg[tcp_at + TCP_FLAGS] &= !(TCP_FIN | TCP_PSH);
        }
        let mut packet = Ipv4Packet::new_unchecked(&mut seg[ethernet::HEADER_LEN..]);
        packet.fill_checksum();
        let segment = &mut packet.payload_mut()[..thl + chunk.len()];
        let at = l4::checksum_at(ip.protocol).expect("TCP has a checksum");
        let c = checksum::l4_checksum(ip.saddr, ip.daddr, ip.protocol.0, segment, at);
        l4::set_checksum(segment, ip.protocol, c);
        offset = offset.wrapping_add(chunk.len() as u32);
        out.push(seg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::director::embedded::frame::{self, Frame};
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn super_frame(payload: &[u8], fin: bool) -> Vec<u8> {
        let mut tcp = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 201], [192, 0, 2, 100], 64)
            .tcp(40_000, 80, 1_000, 64_000)
            .ack(7)
            .psh()
            .cwr();
        if fin {
            tcp = tcp.fin();
        }
        let mut out = Vec::new();
        tcp.write(&mut out, payload).unwrap();
        out
    }

    fn ipv4(frame: &[u8]) -> Ipv4Frame {
        match frame::parse(frame).unwrap() {
            Frame::Ipv4(ip) => ip,
            other => panic!("not IPv4: {other:?}"),
        }
    }

    #[test]
    fn segments_carry_gso_size_each_with_sequence_ids_flags_and_checksums_of_their_own() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let frame = super_frame(&payload, true);
        let ip = ipv4(&frame);
        assert_eq!(segment_network_len(&frame, &ip, 1448), Ok(20 + 20 + 1448));
        let segs = segment_tcp(&frame, &ip, 1448).unwrap();
        assert_eq!(segs.len(), 3, "1448 + 1448 + 104");
        let mut joined = Vec::new();
        for (n, seg) in segs.iter().enumerate() {
            let sliced = SlicedPacket::from_ethernet(seg).unwrap();
            let net = sliced.net.as_ref().unwrap();
            let etherparse::NetSlice::Ipv4(v4) = net else {
                panic!("IPv4")
            };
            let header = v4.header();
            assert_eq!(header.identification(), header_ident(&frame).wrapping_add(n as u16));
            assert!(Ipv4Packet::new_checked(&seg[ethernet::HEADER_LEN..])
                .unwrap()
                .verify_checksum());
            let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                panic!("TCP")
            };
            assert_eq!(tcp.sequence_number(), 1_000 + 1448 * n as u32);
            assert_eq!(tcp.cwr(), n == 0, "CWR on the first only");
            assert_eq!((tcp.fin(), tcp.psh()), (n == 2, n == 2), "FIN and PSH on the last only");
            assert!(tcp.ack() && tcp.acknowledgment_number() == 7);
            let expected = tcp
                .to_header()
                .calc_checksum_ipv4_raw(header.source(), header.destination(), tcp.payload())
                .unwrap();
            assert_eq!(tcp.checksum(), expected, "segment {n}");
            joined.extend_from_slice(tcp.payload());
        }
        assert_eq!(joined, payload);
    }

    fn header_ident(frame: &[u8]) -> u16 {
        let at = ethernet::HEADER_LEN + IP_IDENT;
        u16::from_be_bytes([frame[at], frame[at + 1]])
    }

    #[test]
    fn one_segment_when_the_payload_fits_and_udp_is_refused() {
        let frame = super_frame(&[7; 100], false);
        let ip = ipv4(&frame);
        let segs = segment_tcp(&frame, &ip, 1448).unwrap();
        assert_eq!(segs.len(), 1);
        assert_eq!(segs[0].len(), frame.len());
        assert_eq!(segment_tcp(&frame, &ip, 0), Err(SegmentError::Malformed));

        let mut udp = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([192, 0, 2, 201], [192, 0, 2, 100], 64)
            .udp(5000, 53)
            .write(&mut udp, &[0; 64])
            .unwrap();
        assert_eq!(segment_tcp(&udp, &ipv4(&udp), 32), Err(SegmentError::NotTcp));
    }
}
