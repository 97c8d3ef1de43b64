//! VRRP v2 (RFC 3768 §5.1) and v3 (RFC 5798 §5.1) advertisements over IPv4:
//! parse and emit, with keepalived's choices (`vrrp_build_vrrp_v2/v3`,
//! `vrrp_build_ip4`, `vrrp_check_packet` in vrrp/vrrp.c): v2 always carries 8
//! bytes of authentication data and checksums the VRRP message alone; v3
//! checksums it with the IPv4 pseudo-header (src, dst, 0, 112, length), using
//! the packet's real destination (the unicast peer when unicast).

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::checksum::Sum16BitWords;
use etherparse::{IpDscp, IpNumber, Ipv4Header};

use super::timers::Version;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// `VRRP_IP_TTL`: sent with, and required on multicast receipt.
pub const VRRP_TTL: u8 = 255;
/// 224.0.0.18, keepalived's default `vrrp_mcast_group4`.
pub const MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// `VRRP_AUTH_LEN`.
pub const AUTH_LEN: usize = 8;
const HEADER_LEN: usize = 8;
/// keepalived sends with TOS 0xc0 (DSCP 48, internetwork control).
const DSCP_CS6: u8 = 48;

/// VRRPv2 authentication (v3 has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// Cleartext password, NUL-padded to 8 bytes.
    Pass([u8; AUTH_LEN]),
}

impl Auth {
    /// keepalived truncates `auth_pass` to 8 characters.
    pub fn pass(text: &str) -> Auth {
        let mut data = [0u8; AUTH_LEN];
        for (slot, byte) in data.iter_mut().zip(text.bytes()) {
            *slot = byte;
        }
        Auth::Pass(data)
    }

    fn type_code(&self) -> u8 {
        match self {
            Auth::None => 0,
            Auth::Pass(_) => 1,
        }
    }
}

/// One advertisement, as the VRRP header and its address list say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    /// 0 = the master is stopping.
    pub priority: u8,
    /// v2: whole seconds; v3: centiseconds (12 bits).
    pub advert_int: Duration,
    pub addrs: Vec<Ipv4Addr>,
    /// Always `Auth::None` for v3.
    pub auth: Auth,
}

/// Why bytes are not a usable advertisement, with keepalived's log wording where it has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PacketError {
    TooShort {
        len: usize,
    },
    /// Length does not match the address count (`vrrp packet too long/short`).
    Length {
        len: usize,
        expected: usize,
    },
    UnknownVersion(u8),
    /// Type other than 1 (ADVERTISEMENT).
    Type(u8),
    /// v2 auth type other than none/PASS (AH is not supported here).
    AuthType(u8),
    Checksum {
        version: Version,
    },
    /// The IPv4 header is malformed or not protocol 112.
    Ip(String),
}

impl PacketError {
    /// The line keepalived 2.2.7 logs for this drop, for instance `name`.
    pub fn log_line(&self, name: &str) -> String {
        match self {
            PacketError::TooShort { len } => format!("({name}) vrrp packet too short, length {len}"),
            PacketError::Length { len, expected } => {
                let which = if len > expected { "long" } else { "short" };
                format!("({name}) vrrp packet too {which}, length {len} and expect {expected}")
            }
            PacketError::UnknownVersion(v) => format!("({name}) wrong version. Received {v}"),
            PacketError::Type(t) => format!("({name}) Invalid packet type. {t} and expect 1"),
            PacketError::AuthType(t) => format!("({name}) Invalid auth type: {t}"),
            PacketError::Checksum { version: Version::V2 } => format!("({name}) Invalid VRRPv2 checksum"),
            PacketError::Checksum { version: Version::V3 } => format!("({name}) Invalid VRRPv3 checksum"),
            PacketError::Ip(why) => format!("({name}) {why}"),
        }
    }
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.log_line("vrrp"))
    }
}

impl std::error::Error for PacketError {}

fn checksum(pseudo: Option<(Ipv4Addr, Ipv4Addr)>, message: &[u8]) -> u16 {
    let mut sum = Sum16BitWords::new();
    if let Some((src, dst)) = pseudo {
        let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
        sum = sum
            .add_slice(&src.octets())
            .add_slice(&dst.octets())
            .add_2bytes([0, IPPROTO_VRRP])
            .add_2bytes(len.to_be_bytes());
    }
    sum.add_slice(message).ones_complement().to_be()
}

impl Advert {
    fn message_len(&self) -> usize {
        let auth = if self.version == Version::V2 { AUTH_LEN } else { 0 };
        HEADER_LEN + 4 * self.addrs.len() + auth
    }

    /// The VRRP message (no IP header). `src`/`dst` are the IP addresses it is sent
    /// between: v3's checksum covers them.
    pub fn emit(&self, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message_len());
        out.push((self.version.number() << 4) | 1);
        out.push(self.vrid);
        out.push(self.priority);
        // More than 255 VIPs become eVIPs in keepalived; the count is 8 bits.
        out.push(u8::try_from(self.addrs.len()).unwrap_or(u8::MAX));
        match self.version {
            Version::V2 => {
                out.push(self.auth.type_code());
                out.push(u8::try_from(self.advert_int.as_secs()).unwrap_or(u8::MAX));
            }
            Version::V3 => {
                let cs = u16::try_from(self.advert_int.as_millis() / 10).unwrap_or(0x0fff) & 0x0fff;
                out.extend_from_slice(&cs.to_be_bytes());
            }
        }
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addrs {
            out.extend_from_slice(&addr.octets());
        }
        if self.version == Version::V2 {
            match self.auth {
                Auth::Pass(data) => out.extend_from_slice(&data),
                Auth::None => out.extend_from_slice(&[0; AUTH_LEN]),
            }
        }
        let pseudo = (self.version == Version::V3).then_some((src, dst));
        let sum = checksum(pseudo, &out);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }

    /// Parses and verifies a VRRP message received from `src` to `dst`.
    pub fn parse(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Advert, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::TooShort { len: bytes.len() });
        }
        let version = match bytes[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            other => return Err(PacketError::UnknownVersion(other)),
        };
        if bytes[0] & 0x0f != 1 {
            return Err(PacketError::Type(bytes[0] & 0x0f));
        }
        let count = usize::from(bytes[3]);
        let auth_len = if version == Version::V2 { AUTH_LEN } else { 0 };
        let expected = HEADER_LEN + 4 * count + auth_len;
        if bytes.len() != expected {
            return Err(PacketError::Length {
                len: bytes.len(),
                expected,
            });
        }
        let pseudo = (version == Version::V3).then_some((src, dst));
        // A correct checksum makes the sum over the whole message (checksum included) zero.
        if checksum(pseudo, bytes) != 0 {
            return Err(PacketError::Checksum { version });
        }
        let addrs = bytes[HEADER_LEN..HEADER_LEN + 4 * count]
            .chunks_exact(4)
            .map(|a| Ipv4Addr::new(a[0], a[1], a[2], a[3]))
            .collect();
        let (advert_int, auth) = match version {
            Version::V2 => {
                let auth = match bytes[4] {
                    0 => Auth::None,
                    1 => {
                        let mut data = [0u8; AUTH_LEN];
                        data.copy_from_slice(&bytes[expected - AUTH_LEN..]);
                        Auth::Pass(data)
                    }
                    other => return Err(PacketError::AuthType(other)),
                };
                (Duration::from_secs(u64::from(bytes[5])), auth)
            }
            Version::V3 => {
                let cs = u16::from_be_bytes([bytes[4], bytes[5]]) & 0x0fff;
                (Duration::from_millis(u64::from(cs) * 10), Auth::None)
            }
        };
        Ok(Advert {
            version,
            vrid: bytes[1],
            priority: bytes[2],
            advert_int,
            addrs,
            auth,
        })
    }
}

/// An advertisement with the IP fields the receive checks need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub advert: Advert,
}

/// The whole IPv4 packet as keepalived sends it (`vrrp_build_ip4`): TOS 0xc0, TTL 255,
/// DF clear, the caller's incrementing identification.
pub fn emit_ipv4(advert: &Advert, src: Ipv4Addr, dst: Ipv4Addr, identification: u16) -> Vec<u8> {
    let message = advert.emit(src, dst);
    let len = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut header = Ipv4Header::new(len, VRRP_TTL, IpNumber(IPPROTO_VRRP), src.octets(), dst.octets())
        .expect("a VRRP message always fits an IPv4 packet");
    header.dscp = IpDscp::try_new(DSCP_CS6).expect("48 is a valid DSCP");
    header.identification = identification;
    header.dont_fragment = false;
    header.header_checksum = header.calc_header_checksum();
    let mut out = header.to_bytes().to_vec();
    out.extend_from_slice(&message);
    out
}

/// Parses an IPv4 packet carrying VRRP.
pub fn parse_ipv4(packet: &[u8]) -> Result<Received, PacketError> {
    let (header, rest) = Ipv4Header::from_slice(packet).map_err(|e| PacketError::Ip(e.to_string()))?;
    if header.protocol != IpNumber(IPPROTO_VRRP) {
        return Err(PacketError::Ip(format!("not VRRP: IP protocol {}", header.protocol.0)));
    }
    let total = usize::from(header.total_len);
    let payload_len = total.saturating_sub(header.header_len());
    let payload = rest
        .get(..payload_len)
        .ok_or(PacketError::Ip(format!("IP total length {total} beyond the packet")))?;
    let (src, dst) = (Ipv4Addr::from(header.source), Ipv4Addr::from(header.destination));
    let advert = Advert::parse(payload, src, dst)?;
    Ok(Received {
        src,
        dst,
        ttl: header.time_to_live,
        advert,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    /// Reference §1.3, captured from keepalived 2.2.7 (EXP-1): VRID 51, prio 150, PASS "kalab".
    const CAPTURED_V2: &str = "21 33 96 01 01 01 03 9a 0a 63 00 0a 6b 61 6c 61 62 00 00 00";
    /// Reference §1.3 (EXP-6): unicast 10.99.0.12 -> 10.99.0.11, VRID 54, prio 100, 10 cs.
    const CAPTURED_V3: &str = "31 36 64 01 00 0a 4a d0 0a 63 00 32";

    #[test]
    fn parses_and_re_emits_the_captured_v2_advert() {
        let bytes = hex(CAPTURED_V2);
        let (src, dst) = (Ipv4Addr::new(10, 99, 0, 11), MULTICAST_GROUP);
        let advert = Advert::parse(&bytes, src, dst).unwrap();
        assert_eq!(
            advert,
            Advert {
                version: Version::V2,
                vrid: 51,
                priority: 150,
                advert_int: Duration::from_secs(1),
                addrs: vec![Ipv4Addr::new(10, 99, 0, 10)],
                auth: Auth::pass("kalab"),
            }
        );
        assert_eq!(advert.emit(src, dst), bytes);
    }

    #[test]
    fn parses_and_re_emits_the_captured_v3_unicast_advert() {
        let bytes = hex(CAPTURED_V3);
        let (src, dst) = (Ipv4Addr::new(10, 99, 0, 12), Ipv4Addr::new(10, 99, 0, 11));
        let advert = Advert::parse(&bytes, src, dst).unwrap();
        assert_eq!(
            (advert.vrid, advert.priority, advert.advert_int),
            (54, 100, Duration::from_millis(100))
        );
        assert_eq!(advert.addrs, vec![Ipv4Addr::new(10, 99, 0, 50)]);
        assert_eq!(advert.emit(src, dst), bytes);
        // The pseudo-header matters: the old multicast-destination form does not verify.
        assert_eq!(
            Advert::parse(&bytes, src, MULTICAST_GROUP),
            Err(PacketError::Checksum { version: Version::V3 })
        );
    }

    #[test]
    fn round_trips_and_rejects_corruption() {
        let advert = Advert {
            version: Version::V3,
            vrid: 7,
            priority: 0,
            advert_int: Duration::from_millis(2500),
            addrs: vec![Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 20)],
            auth: Auth::None,
        };
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 2), MULTICAST_GROUP);
        let bytes = advert.emit(src, dst);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[4..6], &[0, 250]);
        assert_eq!(Advert::parse(&bytes, src, dst).unwrap(), advert);
        let mut flipped = bytes.clone();
        flipped[2] = 1;
        assert_eq!(
            Advert::parse(&flipped, src, dst),
            Err(PacketError::Checksum { version: Version::V3 })
        );
        assert_eq!(
            Advert::parse(&bytes[..12], src, dst),
            Err(PacketError::Length { len: 12, expected: 16 })
        );
        assert_eq!(
            PacketError::Length { len: 12, expected: 16 }.log_line("VI_1"),
            "(VI_1) vrrp packet too short, length 12 and expect 16"
        );
        let mut v4 = bytes;
        v4[0] = 0x41;
        assert_eq!(Advert::parse(&v4, src, dst), Err(PacketError::UnknownVersion(4)));
    }

    #[test]
    fn ipv4_packet_carries_keepalived_header_fields() {
        let advert = Advert::parse(&hex(CAPTURED_V2), Ipv4Addr::new(10, 99, 0, 11), MULTICAST_GROUP).unwrap();
        let packet = emit_ipv4(&advert, Ipv4Addr::new(10, 99, 0, 11), MULTICAST_GROUP, 1);
        assert_eq!(&packet[..2], &[0x45, 0xc0]);
        assert_eq!((packet[6] & 0x40, packet[8], packet[9]), (0, 255, 112));
        assert_eq!(&packet[20..], hex(CAPTURED_V2).as_slice());
        let received = parse_ipv4(&packet).unwrap();
        assert_eq!(
            (received.src, received.dst, received.ttl),
            (Ipv4Addr::new(10, 99, 0, 11), MULTICAST_GROUP, 255)
        );
        assert_eq!(received.advert, advert);
        // The IP header checksum verifies: the sum over the header is zero.
        assert_eq!(Sum16BitWords::new().add_slice(&packet[..20]).ones_complement(), 0);
    }
}
