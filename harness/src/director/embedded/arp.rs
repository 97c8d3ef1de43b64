//! ARP: answering for addresses the engine owns (VIPs, FULLNAT local
//! addresses — the director's kernel does not hold them), and resolving
//! next hops with our own ARP requests plus a cache. We do not read the
//! kernel's neighbour table: the kernel never forwards for us, so its table
//! holds nothing about the hosts we send to. Replies to clients use the MAC
//! their requests came from (learnt), as a router would after ARP.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use etherparse::{ArpEthIpv4Packet, ArpOperation};

use super::frame::ETH_LEN;
use super::socket::VnetHdr;

pub const BROADCAST: [u8; 6] = [0xff; 6];
/// Frames held per unresolved address while its ARP request is outstanding.
pub const MAX_PENDING_FRAMES: usize = 16;
pub const RETRY_EVERY: Duration = Duration::from_millis(200);
pub const MAX_TRIES: u32 = 5;

fn arp_frame(dst_mac: [u8; 6], src_mac: [u8; 6], arp: &ArpEthIpv4Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(ETH_LEN + ArpEthIpv4Packet::LEN);
    out.extend_from_slice(&dst_mac);
    out.extend_from_slice(&src_mac);
    out.extend_from_slice(&0x0806u16.to_be_bytes());
    out.extend_from_slice(&arp.to_bytes());
    out
}

/// The reply to `request` saying `request.target` is at `our_mac`, or `None`
/// if it is not a request.
pub fn reply_to(request: &ArpEthIpv4Packet, our_mac: [u8; 6]) -> Option<Vec<u8>> {
    if request.operation != ArpOperation::REQUEST {
        return None;
    }
    let reply = ArpEthIpv4Packet {
        operation: ArpOperation::REPLY,
        sender_mac: our_mac,
        sender_ipv4: request.target_ipv4,
        target_mac: request.sender_mac,
        target_ipv4: request.sender_ipv4,
    };
    Some(arp_frame(request.sender_mac, our_mac, &reply))
}

/// Broadcast "who has `target`? tell `our_ip`".
pub fn request_for(target: Ipv4Addr, our_ip: Ipv4Addr, our_mac: [u8; 6]) -> Vec<u8> {
    let req = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: our_mac,
        sender_ipv4: our_ip.octets(),
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    arp_frame(BROADCAST, our_mac, &req)
}

/// A frame waiting for its next hop's MAC (bytes 0..6 get filled in).
pub struct PendingFrame {
    pub vnet: VnetHdr,
    pub frame: Vec<u8>,
    pub outbound: bool,
}

struct Pending {
    frames: Vec<PendingFrame>,
    last_request: Instant,
    tries: u32,
}

/// What to do after `NeighbourCache::tick`.
pub struct Tick {
    /// Addresses to send another ARP request for.
    pub retry: Vec<Ipv4Addr>,
    /// Frames given up on (counted as `neighbour_unresolved`).
    pub expired_frames: u64,
}

/// Next-hop MACs of one interface.
#[derive(Default)]
pub struct NeighbourCache {
    macs: HashMap<Ipv4Addr, [u8; 6]>,
    pending: HashMap<Ipv4Addr, Pending>,
}

impl NeighbourCache {
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<[u8; 6]> {
        self.macs.get(&ip).copied()
    }

    /// Records `ip` at `mac`; returns frames that were waiting for it.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6]) -> Vec<PendingFrame> {
        if mac == [0; 6] || mac[0] & 1 == 1 || ip.is_unspecified() {
            return Vec::new();
        }
        self.macs.insert(ip, mac);
        self.pending.remove(&ip).map(|p| p.frames).unwrap_or_default()
    }

    /// Queues a frame for `ip`. True if an ARP request should go out now
    /// (first frame for it); frames beyond the bound are dropped (false, and
    /// `dropped` set).
    pub fn hold(&mut self, ip: Ipv4Addr, frame: PendingFrame, now: Instant) -> HoldOutcome {
        match self.pending.get_mut(&ip) {
            Some(p) if p.frames.len() >= MAX_PENDING_FRAMES => HoldOutcome::Dropped,
            Some(p) => {
                p.frames.push(frame);
                HoldOutcome::Queued
            }
            None => {
                self.pending.insert(
                    ip,
                    Pending {
                        frames: vec![frame],
                        last_request: now,
                        tries: 1,
                    },
                );
                HoldOutcome::QueuedSendRequest
            }
        }
    }

    /// Marks that a request for `ip` went out without any frame waiting
    /// (pre-resolution at start).
    pub fn want(&mut self, ip: Ipv4Addr, now: Instant) {
        self.pending.entry(ip).or_insert(Pending {
            frames: Vec::new(),
            last_request: now,
            tries: 1,
        });
    }

    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick {
            retry: Vec::new(),
            expired_frames: 0,
        };
        self.pending.retain(|ip, p| {
            if now.duration_since(p.last_request) < RETRY_EVERY {
                return true;
            }
            if p.tries >= MAX_TRIES {
                tick.expired_frames += p.frames.len() as u64;
                return false;
            }
            p.tries += 1;
            p.last_request = now;
            tick.retry.push(*ip);
            true
        });
        tick
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    QueuedSendRequest,
    Queued,
    Dropped,
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::ArpPacket;

    const OUR: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 9];

    #[test]
    fn reply_names_our_mac_for_the_asked_address() {
        let req = ArpEthIpv4Packet {
            operation: ArpOperation::REQUEST,
            sender_mac: CLIENT,
            sender_ipv4: [10, 0, 0, 9],
            target_mac: [0; 6],
            target_ipv4: [10, 0, 0, 100],
        };
        let frame = reply_to(&req, OUR).unwrap();
        assert_eq!(&frame[0..6], &CLIENT);
        assert_eq!(&frame[6..12], &OUR);
        let arp = ArpPacket::from_slice(&frame[ETH_LEN..])
            .unwrap()
            .try_eth_ipv4()
            .unwrap();
        assert_eq!(arp.operation, ArpOperation::REPLY);
        assert_eq!(arp.sender_mac, OUR);
        assert_eq!(arp.sender_ipv4_addr(), Ipv4Addr::new(10, 0, 0, 100));
        assert_eq!(arp.target_ipv4_addr(), Ipv4Addr::new(10, 0, 0, 9));
        let as_reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            ..req
        };
        assert!(reply_to(&as_reply, OUR).is_none());
    }

    #[test]
    fn pending_frames_are_bounded_released_on_learn_and_expire() {
        let t0 = Instant::now();
        let ip = Ipv4Addr::new(10, 0, 0, 2);
        let mut cache = NeighbourCache::default();
        let pf = || PendingFrame {
            vnet: VnetHdr::default(),
            frame: vec![0; 60],
            outbound: false,
        };
        assert_eq!(cache.hold(ip, pf(), t0), HoldOutcome::QueuedSendRequest);
        for _ in 1..MAX_PENDING_FRAMES {
            assert_eq!(cache.hold(ip, pf(), t0), HoldOutcome::Queued);
        }
        assert_eq!(cache.hold(ip, pf(), t0), HoldOutcome::Dropped);
        assert_eq!(cache.learn(ip, CLIENT).len(), MAX_PENDING_FRAMES);
        assert_eq!(cache.lookup(ip), Some(CLIENT));

        let other = Ipv4Addr::new(10, 0, 0, 3);
        cache.hold(other, pf(), t0);
        let mut retries = 0;
        let mut expired = 0;
        for i in 1..=MAX_TRIES {
            let tick = cache.tick(t0 + RETRY_EVERY * i);
            retries += tick.retry.len();
            expired += tick.expired_frames;
        }
        assert_eq!(retries as u32, MAX_TRIES - 1);
        assert_eq!(expired, 1);
    }
}
