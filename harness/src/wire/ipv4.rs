//! IPv4 headers: a view with named fields over a packet buffer (reads and the in-place
//! rewrites forwarding does), and a header without options as a value to emit.
//! Validation on receive stays with etherparse (`director::embedded::frame`); a view is
//! made over a packet already known to hold a whole header.

use std::net::Ipv4Addr;

use super::checksum;

/// A header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
    /// Both addresses, as the pseudo-header and incremental checksum updates see them.
    pub const ADDRS: Range<usize> = 12..20;
}

/// Where the destination address sits in the header (for BPF filters).
pub const DST_ADDR_AT: usize = field::DST_ADDR.start;

/// IP protocol numbers the director handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocol(pub u8);

impl Protocol {
    pub const ICMP: Protocol = Protocol(1);
    pub const IPIP: Protocol = Protocol(4);
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
}

const FLAG_DF: u16 = 0x4000;

/// An IPv4 packet whose buffer holds at least its header (`HEADER_LEN` bytes, more with options).
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// `None` unless the buffer holds the whole header its IHL claims.
    /// Over a buffer already known to hold the header (a parsed frame).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    pub fn new_checked(buffer: T) -> Option<Self> {
        let b = buffer.as_ref();
        let ihl = usize::from(*b.first()? & 0x0f) * 4;
        (ihl >= HEADER_LEN && b.len() >= ihl).then_some(Packet { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn tos(&self) -> u8 {
        self.b()[field::TOS]
    }
    pub fn total_len(&self) -> u16 {
        super::read_u16(self.b(), field::LENGTH)
    }
    pub fn ident(&self) -> u16 {
        super::read_u16(self.b(), field::IDENT)
    }
    pub fn dont_fragment(&self) -> bool {
        super::read_u16(self.b(), field::FLG_OFF) & FLAG_DF != 0
    }
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    pub fn protocol(&self) -> Protocol {
        Protocol(self.b()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        super::read_u16(self.b(), field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.b()[field::SRC_ADDR]).expect("4 bytes"))
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(<[u8; 4]>::try_from(&self.b()[field::DST_ADDR]).expect("4 bytes"))
    }
    /// Source then destination, as 8 bytes.
    pub fn addrs_bytes(&self) -> [u8; 8] {
        self.b()[field::ADDRS].try_into().expect("8 bytes")
    }
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }
    /// What follows the header, to the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::ipv4_header_checksum(self.header()) == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    pub fn set_ttl(&mut self, ttl: u8) {
        self.bm()[field::TTL] = ttl;
    }
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.bm()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.bm()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }
    /// Recomputes the header checksum over the header as it now is.
    pub fn fill_checksum(&mut self) {
        let len = self.header_len();
        let header = &mut self.bm()[..len];
        header[field::CHECKSUM].fill(0);
        let c = checksum::ipv4_header_checksum(header);
        header[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.header_len();
        &mut self.bm()[len..]
    }
}

/// A header without options, to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub protocol: Protocol,
    pub tos: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub ttl: u8,
    /// Bytes after the header.
    pub payload_len: usize,
}

impl Repr {
    /// Writes the header, checksum filled, into `buf[..HEADER_LEN]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let h = &mut buf[..HEADER_LEN];
        h[field::VER_IHL] = 0x45;
        h[field::TOS] = self.tos;
        h[field::LENGTH].copy_from_slice(&((HEADER_LEN + self.payload_len) as u16).to_be_bytes());
        h[field::IDENT].copy_from_slice(&self.ident.to_be_bytes());
        let flags: u16 = if self.dont_fragment { FLAG_DF } else { 0 };
        h[field::FLG_OFF].copy_from_slice(&flags.to_be_bytes());
        h[field::TTL] = self.ttl;
        h[field::PROTOCOL] = self.protocol.0;
        h[field::CHECKSUM].fill(0);
        h[field::SRC_ADDR].copy_from_slice(&self.src_addr.octets());
        h[field::DST_ADDR].copy_from_slice(&self.dst_addr.octets());
        let c = checksum::ipv4_header_checksum(h);
        h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut b);
        b
    }

    /// Reads a header back (options are skipped; fragment offsets are not represented).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            tos: p.tos(),
            ident: p.ident(),
            dont_fragment: p.dont_fragment(),
            ttl: p.ttl(),
            payload_len: usize::from(p.total_len()).saturating_sub(p.header_len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(192, 0, 2, 2),
            dst_addr: Ipv4Addr::new(192, 0, 2, 11),
            protocol: Protocol::IPIP,
            tos: 0x10,
            ident: 0x1234,
            dont_fragment: true,
            ttl: 63,
            payload_len: 40,
        }
    }

    #[test]
    fn emit_then_parse_round_trips_and_etherparse_agrees() {
        let bytes = repr().to_bytes();
        let p = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&p), repr());
        assert!(p.verify_checksum());
        let (h, _) = etherparse::Ipv4Header::from_slice(&bytes).unwrap();
        assert_eq!((h.source, h.destination), ([192, 0, 2, 2], [192, 0, 2, 11]));
        assert_eq!((h.time_to_live, h.protocol.0, h.identification), (63, 4, 0x1234));
        assert_eq!((h.dont_fragment, h.total_len, h.dscp.value() << 2), (true, 60, 0x10));
        assert_eq!(h.header_checksum, h.calc_header_checksum());
    }

    #[test]
    fn setters_then_fill_checksum_verify() {
        let mut bytes = repr().to_bytes();
        let mut p = Packet::new_checked(&mut bytes[..]).unwrap();
        p.set_ttl(1);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(
            (p.ttl(), p.src_addr(), p.dst_addr()),
            (1, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
        );
    }

    #[test]
    fn a_view_needs_the_whole_header() {
        let bytes = repr().to_bytes();
        assert!(Packet::new_checked(&bytes[..19]).is_none());
        assert!(Packet::new_checked(&[][..]).is_none());
        let mut ihl_lie = bytes;
        ihl_lie[0] = 0x46;
        assert!(Packet::new_checked(&ihl_lie[..]).is_none());
    }
}
