//! ICMPv4 messages: a view with named fields over a message (type byte to the end of
//! the IP packet), and a header as a value to emit. What the director makes of them
//! (which errors it relays) is `director::embedded::icmp`.

use super::checksum;

/// Type, code, checksum and the 4 bytes of "rest of header".
pub const HEADER_LEN: usize = 8;

mod field {
    use std::ops::{Range, RangeFrom};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const PAYLOAD: RangeFrom<usize> = 8..;
}

/// A message whose buffer holds at least the 8-byte header.
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
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Bytes 4..8: unused, next-hop MTU, pointer, echo id and sequence, ...
    pub fn rest(&self) -> [u8; 4] {
        self.buffer.as_ref()[field::REST].try_into().expect("4 bytes")
    }
    /// For an error: the start of the packet it quotes.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum_words(0, self.buffer.as_ref())) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
    /// Recomputes the checksum over the whole message as it now is.
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        b[field::CHECKSUM].fill(0);
        let c = !checksum::fold(checksum::sum_words(0, b));
        b[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// A message header to emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub msg_type: u8,
    pub code: u8,
    pub rest: [u8; 4],
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            msg_type: p.msg_type(),
            code: p.code(),
            rest: p.rest(),
        }
    }
    /// The whole message: this header, `payload`, and the checksum over both.
    pub fn emit_message(&self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[self.msg_type, self.code, 0, 0]);
        out.extend_from_slice(&self.rest);
        out.extend_from_slice(payload);
        Packet::new_checked(&mut out[start..])
            .expect("a header was written")
            .fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv4Header, Icmpv4Type};

    #[test]
    fn emit_then_parse_round_trips_and_etherparse_agrees() {
        let repr = Repr {
            msg_type: 3,
            code: 4,
            rest: [0, 0, 0x05, 0xc8],
        };
        let mut msg = Vec::new();
        repr.emit_message(b"quoted bytes", &mut msg);
        let view = Packet::new_checked(&msg[..]).unwrap();
        assert_eq!(Repr::parse(&view), repr);
        assert!(view.verify_checksum());
        assert_eq!(view.payload(), b"quoted bytes");
        let (theirs, rest) = Icmpv4Header::from_slice(&msg).unwrap();
        assert_eq!(
            theirs.icmp_type,
            Icmpv4Type::DestinationUnreachable(etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1480
            })
        );
        assert_eq!(theirs.checksum, theirs.icmp_type.calc_checksum(rest));
    }

    #[test]
    fn a_changed_payload_fails_until_refilled() {
        let mut msg = Vec::new();
        Repr {
            msg_type: 11,
            code: 0,
            rest: [0; 4],
        }
        .emit_message(b"abcd", &mut msg);
        let mut view = Packet::new_checked(&mut msg[..]).unwrap();
        view.payload_mut()[0] = b'z';
        assert!(!view.verify_checksum());
        view.fill_checksum();
        assert!(view.verify_checksum());
        assert!(Packet::new_checked(&msg[..7]).is_none());
    }
}
