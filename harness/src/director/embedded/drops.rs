//! Why the engine dropped a frame: the keys of `EngineStats::dropped`. The names are
//! the counter keys of JSON output and reports, so they do not change.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::ipvs;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// IPVS's verdict (`ipvs:<reason>`).
    Ipvs(ipvs::DropReason),
    /// The receive ring or queue failed.
    RecvFailed,
    /// The socket refused a frame.
    SendFailed,
    /// A fragment for a service (ports absent or only in the first piece).
    Fragment,
    /// FULLNAT scheduled without a local address.
    FullnatNoLocalAddr,
    /// A GSO super-frame for a tunnel real server that cannot be segmented (not TCP).
    GsoTunnel,
    /// No address of ours to send from (tunnel source, ARP request sender).
    NoSourceAddress,
    /// TTL would reach 0 at this hop.
    TtlExceeded,
    /// Too big for the tunnel, and DF clear: the kernel would fragment the outer packet.
    TunnelTooBigNoDf,
    /// Too big for the tunnel with DF set: the client was sent frag-needed.
    TunnelTooBig,
    /// Pushed out of a next hop's queue while it resolved.
    NeighbourQueueFull,
    /// The next hop never answered ARP.
    NeighbourFailed,
    /// For a VIP its VRRP instance holds without accepting traffic (`vrrp_strict`, no `accept`).
    VrrpNoAccept,
}

impl DropReason {
    /// The counter key.
    pub fn as_str(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            DropReason::Ipvs(reason) => return Cow::Owned(format!("ipvs:{reason:?}")),
            DropReason::RecvFailed => "recv_failed",
            DropReason::SendFailed => "send_failed",
            DropReason::Fragment => "fragment",
            DropReason::FullnatNoLocalAddr => "fullnat_no_local_addr",
            DropReason::GsoTunnel => "gso_tunnel",
            DropReason::NoSourceAddress => "no_source_address",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::TunnelTooBigNoDf => "tunnel_too_big_no_df",
            DropReason::TunnelTooBig => "tunnel_too_big",
            DropReason::NeighbourQueueFull => "neighbour_queue_full",
            DropReason::NeighbourFailed => "neighbour_failed",
            DropReason::VrrpNoAccept => "vrrp_no_accept",
        })
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

/// As the key it counts under, so maps print as they did with string keys.
impl fmt::Debug for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.as_str(), f)
    }
}

/// By name: a map keyed by reasons iterates (and serialises) in the order of their keys.
impl Ord for DropReason {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(&other.as_str())
    }
}

impl PartialOrd for DropReason {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for DropReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn keys_serialise_and_sort_as_the_string_keys_did() {
        let reasons = [
            DropReason::NeighbourFailed,
            DropReason::Ipvs(ipvs::DropReason::NoDestination),
            DropReason::TunnelTooBig,
            DropReason::TunnelTooBigNoDf,
            DropReason::Fragment,
        ];
        let typed: BTreeMap<DropReason, u64> = reasons.iter().map(|r| (*r, 1)).collect();
        let strings: BTreeMap<String, u64> = reasons.iter().map(|r| (r.to_string(), 1)).collect();
        assert_eq!(
            serde_json::to_string(&typed).unwrap(),
            serde_json::to_string(&strings).unwrap()
        );
        assert_eq!(format!("{typed:?}"), format!("{strings:?}"));
        assert_eq!(
            DropReason::Ipvs(ipvs::DropReason::PortZeroNotPersistent).to_string(),
            "ipvs:PortZeroNotPersistent"
        );
    }
}
