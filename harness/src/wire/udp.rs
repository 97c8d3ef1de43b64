//! UDP datagrams: a view of the fields the director reads and rewrites.

pub const HEADER_LEN: usize = 8;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

/// Where the checksum sits in the header.
pub const CHECKSUM_AT: usize = field::CHECKSUM.start;

/// A UDP datagram whose buffer holds at least `HEADER_LEN` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Over a buffer already known to hold the header (a parsed frame).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Packet { buffer })
    }
    pub fn src_port(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    pub fn length(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::LENGTH)
    }
    /// Zero means the sender computed none.
    pub fn checksum(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::SRC_PORT].copy_from_slice(&port.to_be_bytes());
    }
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[field::DST_PORT].copy_from_slice(&port.to_be_bytes());
    }
    pub fn set_checksum(&mut self, c: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::UdpHeader;

    #[test]
    fn reads_what_etherparse_writes_and_writes_what_it_reads() {
        let h = UdpHeader {
            source_port: 5555,
            destination_port: 9999,
            length: 13,
            checksum: 0xabcd,
        };
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(b"hello");
        let view = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (view.src_port(), view.dst_port(), view.length(), view.checksum()),
            (5555, 9999, 13, 0xabcd)
        );
        let mut view = Packet::new_checked(&mut bytes[..]).unwrap();
        view.set_src_port(1);
        view.set_dst_port(2);
        view.set_checksum(0);
        let (back, rest) = UdpHeader::from_slice(&bytes).unwrap();
        assert_eq!(
            (back.source_port, back.destination_port, back.checksum, rest),
            (1, 2, 0, &b"hello"[..])
        );
        assert!(Packet::new_checked(&bytes[..7]).is_none());
    }
}
