//! Ethernet MAC address: six bytes, written `02:00:00:00:00:0b`. The one MAC type of the
//! crate: frames, interface facts and evidence all carry it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 48-bit Ethernet address. Serialised as the usual colon-separated hex text.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
    /// The all-zero address: "not known yet" in a frame whose next hop is still resolving.
    pub const UNSPECIFIED: Mac = Mac([0; 6]);

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }
    /// The group bit: broadcast and multicast addresses, never a host's.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }
    pub fn is_unspecified(self) -> bool {
        self == Mac::UNSPECIFIED
    }
}

impl From<[u8; 6]> for Mac {
    fn from(bytes: [u8; 6]) -> Self {
        Mac(bytes)
    }
}

/// Text that is not six colon-separated hex bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (want six hex bytes like 02:00:00:00:00:0b): {0:?}")]
pub struct MacParseError(String);

impl FromStr for Mac {
    type Err = MacParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || MacParseError(text.to_string());
        let mut bytes = [0u8; 6];
        let mut parts = text.split([':', '-']);
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.is_empty() || part.len() > 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(bytes))
    }
}

impl TryFrom<String> for Mac {
    type Error = MacParseError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Mac> for String {
    fn from(mac: Mac) -> String {
        mac.to_string()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let mac: Mac = "02:00:0A:00:00:0b".parse().unwrap();
        assert_eq!(mac.0, [2, 0, 10, 0, 0, 11]);
        assert_eq!(mac.to_string(), "02:00:0a:00:00:0b");
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:00:0a:00:00:0b\"");
        assert_eq!(serde_json::from_str::<Mac>(&json).unwrap(), mac);
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:0b:01",
            "02:00:00:00:00:zz",
            "002:00:00:00:00:0b",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn group_and_zero_addresses() {
        assert!(Mac::BROADCAST.is_multicast());
        assert!(Mac([1, 0, 0x5e, 0, 0, 1]).is_multicast());
        assert!(!Mac([2, 0, 0, 0, 0, 1]).is_multicast());
        assert!(Mac::UNSPECIFIED.is_unspecified());
    }
}
