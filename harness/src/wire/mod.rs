//! Packet formats with named fields: Ethernet, ARP, IPv4, TCP, UDP, ICMP and IP-in-IP.
//! Each module has a view (`Packet<T: AsRef<[u8]>>`, smoltcp's shape) whose getters and
//! setters name the fields the director reads and rewrites, a `Repr` to emit, and
//! parse/emit round-trip tests. Receive-side validation stays with etherparse, which the
//! crate already uses; smoltcp's `wire` was not taken because lvslab's forwarding also
//! works on CHECKSUM_PARTIAL seeds and RFC 1624 updates, which its views do not offer,
//! and because keeping etherparse's checks keeps the malformed-frame counters as they are.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipip;
pub mod ipv4;
pub mod l4;
mod mac;
pub mod tcp;
pub mod udp;
pub mod vnet;

pub use arp::{Operation as ArpOperation, Repr as ArpRepr};
pub use ethernet::{EtherType, Frame as EthernetFrame, Repr as EthernetRepr};
pub use icmp::{Packet as IcmpPacket, Repr as IcmpRepr};
pub use ipv4::{Packet as Ipv4Packet, Protocol as IpProtocol, Repr as Ipv4Repr};
pub use mac::{Mac, MacParseError};
pub use tcp::{Packet as TcpPacket, TcpFlags};
pub use udp::Packet as UdpPacket;

/// The big-endian 16-bit field at `at` (two bytes), as every header here stores them.
pub(crate) fn read_u16(b: &[u8], at: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[at.start], b[at.start + 1]])
}
