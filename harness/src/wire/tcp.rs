//! TCP segments: the flags IPVS's state machine reads, and a view of the fields the
//! director rewrites (ports, checksum).

use serde::{Deserialize, Serialize};

/// A header without options.
pub const HEADER_LEN: usize = 20;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const FLAGS: usize = 13;
    pub const CHECKSUM: Range<usize> = 16..18;
}

/// Where the checksum sits in the header.
pub const CHECKSUM_AT: usize = field::CHECKSUM.start;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// The TCP flags IPVS's state machine looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A TCP segment whose buffer holds at least `HEADER_LEN` bytes.
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
    pub fn checksum(&self) -> u16 {
        super::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    pub fn flags(&self) -> TcpFlags {
        let f = self.buffer.as_ref()[field::FLAGS];
        TcpFlags {
            syn: f & SYN != 0,
            ack: f & ACK != 0,
            fin: f & FIN != 0,
            rst: f & RST != 0,
        }
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
    use etherparse::TcpHeader;

    #[test]
    fn reads_what_etherparse_writes_and_writes_what_it_reads() {
        let mut h = TcpHeader::new(40000, 80, 7, 64240);
        h.syn = true;
        h.ack = true;
        h.checksum = 0xbeef;
        let mut bytes = h.to_bytes().to_vec();
        let view = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!((view.src_port(), view.dst_port(), view.checksum()), (40000, 80, 0xbeef));
        assert_eq!(
            view.flags(),
            TcpFlags {
                syn: true,
                ack: true,
                ..TcpFlags::default()
            }
        );
        let mut view = Packet::new_checked(&mut bytes[..]).unwrap();
        view.set_src_port(1);
        view.set_dst_port(2);
        view.set_checksum(3);
        let (back, _) = TcpHeader::from_slice(&bytes).unwrap();
        assert_eq!((back.source_port, back.destination_port, back.checksum), (1, 2, 3));
        assert!(back.syn && back.ack && !back.fin && !back.rst);
        assert!(Packet::new_checked(&bytes[..19]).is_none());
    }
}
