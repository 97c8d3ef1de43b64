//! Ethernet II frames (no VLAN tag): a view with named fields over a frame buffer, and the
//! header as a value to emit.

use super::Mac;

/// Destination, source and EtherType.
pub const HEADER_LEN: usize = 14;
/// The shortest frame without FCS; shorter ones are padded (some NICs drop runts).
pub const MIN_FRAME_LEN: usize = 60;

mod field {
    use std::ops::{Range, RangeFrom};
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EtherType(pub u16);

impl EtherType {
    pub const IPV4: EtherType = EtherType(0x0800);
    pub const ARP: EtherType = EtherType(0x0806);
}

/// A frame at least `HEADER_LEN` long.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// `None` when the buffer cannot hold the header.
    /// Over a buffer already known to hold the header (a parsed frame).
    pub fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= HEADER_LEN).then_some(Frame { buffer })
    }
    pub fn destination(&self) -> Mac {
        Mac(self.buffer.as_ref()[field::DESTINATION].try_into().expect("6 bytes"))
    }
    pub fn source(&self) -> Mac {
        Mac(self.buffer.as_ref()[field::SOURCE].try_into().expect("6 bytes"))
    }
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType(u16::from_be_bytes([b[0], b[1]]))
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_destination(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&mac.0);
    }
    pub fn set_source(&mut self, mac: Mac) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&mac.0);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

impl<'a> Frame<&'a [u8]> {
    /// The payload, borrowed for as long as the buffer.
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[field::PAYLOAD]
    }
}

impl<'a> Frame<&'a mut [u8]> {
    pub fn into_payload_mut(self) -> &'a mut [u8] {
        &mut self.buffer[field::PAYLOAD]
    }
}

/// An Ethernet header to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub source: Mac,
    pub destination: Mac,
    pub ethertype: EtherType,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Repr {
        Repr {
            source: frame.source(),
            destination: frame.destination(),
            ethertype: frame.ethertype(),
        }
    }
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[field::DESTINATION].copy_from_slice(&self.destination.0);
        b[field::SOURCE].copy_from_slice(&self.source.0);
        b[field::ETHERTYPE].copy_from_slice(&self.ethertype.0.to_be_bytes());
        b
    }
}

/// Sets the destination MAC of `frame` (an Ethernet frame, at least a header long).
pub fn set_destination(frame: &mut [u8], mac: Mac) {
    frame[field::DESTINATION].copy_from_slice(&mac.0);
}

/// Pads `frame` with zeros to the minimum frame size.
pub fn pad_to_minimum(frame: &mut Vec<u8>) {
    if frame.len() < MIN_FRAME_LEN {
        frame.resize(MIN_FRAME_LEN, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emit_then_parse_round_trips_and_etherparse_agrees() {
        let repr = Repr {
            source: Mac([2, 0, 0, 0, 0, 1]),
            destination: Mac::BROADCAST,
            ethertype: EtherType::ARP,
        };
        let mut frame = repr.to_bytes().to_vec();
        frame.extend_from_slice(b"payload");
        let view = Frame::new_checked(&frame[..]).unwrap();
        assert_eq!(Repr::parse(&view), repr);
        assert_eq!(view.payload(), b"payload");
        let theirs = etherparse::Ethernet2HeaderSlice::from_slice(&frame).unwrap();
        assert_eq!(
            (theirs.source(), theirs.destination(), theirs.ether_type()),
            ([2, 0, 0, 0, 0, 1], [0xff; 6], etherparse::EtherType::ARP)
        );
        assert!(Frame::new_checked(&frame[..13]).is_none());
    }

    #[test]
    fn setters_write_only_their_field() {
        let mut frame = [0xaa; 20];
        let mut view = Frame::new_checked(&mut frame[..]).unwrap();
        view.set_destination(Mac([1; 6]));
        view.set_source(Mac([2; 6]));
        assert_eq!(frame[..12], [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]);
        assert_eq!(frame[12..], [0xaa; 8]);
        let mut short = frame[..20].to_vec();
        pad_to_minimum(&mut short);
        assert_eq!((short.len(), short[59]), (MIN_FRAME_LEN, 0));
    }
}
