//! Internet checksums: full computation, completion of partial (offloaded)
//! checksums, and incremental updates (RFC 1624) when addresses/ports change.

use std::net::Ipv4Addr;

/// One's-complement sum of big-endian 16-bit words, carries kept in the high half.
pub fn sum_words(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for w in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        if sum > 0xffff_0000 {
            sum = fold_carries(sum);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

fn fold_carries(mut sum: u32) -> u32 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// Folded, not complemented.
pub fn fold(sum: u32) -> u16 {
    fold_carries(sum) as u16
}

/// IPv4 header checksum over `header` (its checksum field must be zero or is
/// skipped: bytes 10..12 are treated as zero).
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let sum = sum_words(sum_words(0, &header[..10]), &header[12..]);
    !fold(sum)
}

/// Sum of the TCP/UDP pseudo-header.
pub fn pseudo_header_sum(saddr: Ipv4Addr, daddr: Ipv4Addr, proto: u8, l4_len: u16) -> u32 {
    let mut sum = sum_words(0, &saddr.octets());
    sum = sum_words(sum, &daddr.octets());
    sum += u32::from(proto);
    sum + u32::from(l4_len)
}

/// Full TCP/UDP checksum over `segment` (header + payload), with the checksum
/// field at `csum_at` treated as zero. UDP's zero result is sent as 0xffff.
pub fn l4_checksum(saddr: Ipv4Addr, daddr: Ipv4Addr, proto: u8, segment: &[u8], csum_at: usize) -> u16 {
    let mut sum = pseudo_header_sum(saddr, daddr, proto, segment.len() as u16);
    sum = sum_words(sum, &segment[..csum_at]);
    // csum_at is even (16 for TCP, 6 for UDP): word alignment is preserved.
    sum = sum_words(sum, &segment[csum_at + 2..]);
    let c = !fold(sum);
    if c == 0 && proto == super::IpProtocol::UDP.0 {
        0xffff
    } else {
        c
    }
}

/// RFC 1624 eqn. 3: a complemented checksum after `old` bytes became `new`
/// (both of the same, even length).
pub fn update_complemented(check: u16, old: &[u8], new: &[u8]) -> u16 {
    !update_partial(!check, old, new)
}

/// Update a non-complemented sum (a CHECKSUM_PARTIAL pseudo-header seed):
/// subtract `old`, add `new`.
pub fn update_partial(partial: u16, old: &[u8], new: &[u8]) -> u16 {
    let mut sum = u32::from(partial);
    for w in old.chunks_exact(2) {
        sum += u32::from(!u16::from_be_bytes([w[0], w[1]]));
    }
    sum = sum_words(sum, new);
    fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checksum_matches_rfc1071_example() {
        // A classic 20-byte header whose checksum is 0xb861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&hdr), 0xb861);
    }

    #[test]
    fn incremental_update_equals_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        let old = hdr[16..20].to_vec();
        let new = [10, 1, 2, 3];
        hdr[16..20].copy_from_slice(&new);
        let incremental = update_complemented(0xb861, &old, &new);
        assert_eq!(incremental, ipv4_header_checksum(&hdr));
    }

    #[test]
    fn odd_length_is_padded_with_zero() {
        assert_eq!(sum_words(0, &[0x01]), 0x0100);
        assert_eq!(sum_words(0, &[0x01, 0x02, 0x03]), 0x0102 + 0x0300);
    }
}
