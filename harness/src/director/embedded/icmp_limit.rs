//! The director kernel's limit on the ICMP errors it originates, which IPVS's own errors to
//! clients go through (`icmp_send` → `icmpv4_xrlim_allow` → `inet_peer_xrlim_allow`): per
//! destination, a bucket of `net.ipv4.icmp_ratelimit` ms tokens that holds six of them
//! (`XRLIM_BURST_FACTOR`), for the types in `net.ipv4.icmp_ratemask`. Relayed (rewritten)
//! errors are not limited, as in the kernel. The global `icmp_msgs_per_sec` bucket (1000/s)
//! is not reproduced.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const XRLIM_BURST_FACTOR: u32 = 6;
/// Kernel defaults: 1000 ms; dest unreachable, source quench, time exceeded, parameter problem.
const DEFAULT_RATELIMIT: Duration = Duration::from_millis(1000);
const DEFAULT_RATEMASK: u32 = 6168;

#[derive(Debug)]
pub struct IcmpRateLimit {
    ratelimit: Duration,
    ratemask: u32,
    /// Tokens per destination and when they were last topped up.
    peers: HashMap<Ipv4Addr, (Duration, Instant)>,
}

impl IcmpRateLimit {
    pub fn new(ratelimit: Duration, ratemask: u32) -> Self {
        IcmpRateLimit {
            ratelimit,
            ratemask,
            peers: HashMap::new(),
        }
    }

    /// With the calling thread's namespace's sysctls (kernel defaults where unreadable).
    pub fn from_sysctls() -> Self {
        let read = |name: &str| -> Option<u32> {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let ratelimit = read("icmp_ratelimit").map_or(DEFAULT_RATELIMIT, |ms| Duration::from_millis(ms.into()));
        Self::new(ratelimit, read("icmp_ratemask").unwrap_or(DEFAULT_RATEMASK))
    }

    /// May an error of `icmp_type` go to `dst` now? Takes a token if so.
    pub fn allow(&mut self, dst: Ipv4Addr, icmp_type: u8, now: Instant) -> bool {
        if self.ratelimit.is_zero() || icmp_type > 31 || self.ratemask & (1 << icmp_type) == 0 {
            return true;
        }
        let cap = self.ratelimit * XRLIM_BURST_FACTOR;
        // A new peer starts with rate_last 60 s back: a full bucket.
        let (tokens, last) = self.peers.entry(dst).or_insert((cap, now));
        let mut t = (*tokens + now.saturating_duration_since(*last)).min(cap);
        *last = now;
        let allowed = t >= self.ratelimit;
        if allowed {
            t -= self.ratelimit;
        }
        *tokens = t;
        allowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEST_UNREACH: u8 = 3;
    const ECHO_REPLY: u8 = 0;

    #[test]
    fn six_at_once_then_one_per_interval_per_destination() {
        let mut limit = IcmpRateLimit::new(DEFAULT_RATELIMIT, DEFAULT_RATEMASK);
        let t0 = Instant::now();
        let client = Ipv4Addr::new(192, 0, 2, 201);
        let sent: Vec<bool> = (0..8).map(|_| limit.allow(client, DEST_UNREACH, t0)).collect();
        assert_eq!(sent, [true, true, true, true, true, true, false, false]);
        // Another destination has its own bucket.
        assert!(limit.allow(Ipv4Addr::new(192, 0, 2, 202), DEST_UNREACH, t0));
        // Half an interval gives no token, a whole one gives one.
        assert!(!limit.allow(client, DEST_UNREACH, t0 + Duration::from_millis(500)));
        assert!(limit.allow(client, DEST_UNREACH, t0 + Duration::from_millis(1000)));
        assert!(!limit.allow(client, DEST_UNREACH, t0 + Duration::from_millis(1000)));
        // A long pause refills the burst, no more.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..8).filter(|_| limit.allow(client, DEST_UNREACH, later)).count(), 6);
    }

    #[test]
    fn types_outside_the_mask_and_a_zero_limit_pass() {
        let mut limit = IcmpRateLimit::new(DEFAULT_RATELIMIT, DEFAULT_RATEMASK);
        let t0 = Instant::now();
        let client = Ipv4Addr::new(192, 0, 2, 201);
        assert!((0..20).all(|_| limit.allow(client, ECHO_REPLY, t0)));
        let mut off = IcmpRateLimit::new(Duration::ZERO, DEFAULT_RATEMASK);
        assert!((0..20).all(|_| off.allow(client, DEST_UNREACH, t0)));
    }
}
