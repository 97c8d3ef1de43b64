//! Next-hop MACs, resolved as the kernel's neighbour layer resolves them for
//! ARP (`net/core/neighbour.c` with `arp_tbl`'s defaults). A frame for an
//! address whose MAC is unknown waits in that address's queue, bounded in
//! bytes (`unres_qlen_bytes`; when full, the oldest frames are dropped first).
//! The first such frame sends an ARP request at once; while unresolved, one
//! more goes out every `retrans_time`, `mcast_solicit` requests in all, and a
//! `retrans_time` after the last one resolution fails and the queue is dropped
//! (the next frame starts over). The reply sends the queue on, in order.
//!
//! We do not read the kernel's neighbour table: the kernel never forwards for
//! us, so it holds nothing about the hosts we send to. Entries do not age
//! (lab MACs do not move).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::socket::VnetHdr;
use crate::wire::Mac;

/// `net.ipv4.neigh.default.retrans_time_ms`.
pub const RETRANS_TIME: Duration = Duration::from_millis(1000);
/// `net.ipv4.neigh.default.mcast_solicit`: broadcast requests before giving up.
pub const MCAST_SOLICIT: u32 = 3;
/// `net.ipv4.neigh.default.unres_qlen_bytes` (SK_WMEM_MAX).
pub const UNRES_QLEN_BYTES: usize = 212_992;
/// What the kernel charges a queued packet beyond its bytes: `SKB_TRUESIZE`
/// adds `struct sk_buff` and `struct skb_shared_info`, cache-aligned (x86-64).
pub const SKB_OVERHEAD: usize = 576;

/// Which of the engine's counters a frame adds to once it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carried {
    /// Towards a real server (`forwarded_in`).
    In,
    /// Towards a client (`forwarded_out`).
    Out,
    /// An error the director itself originates (counted when it is built).
    Originated,
}

/// A frame waiting for its next hop's MAC (bytes 0..6 get filled in).
pub struct PendingFrame {
    pub vnet: VnetHdr,
    pub frame: Vec<u8>,
    pub carried: Carried,
}

impl PendingFrame {
    fn cost(&self) -> usize {
        self.frame.len() + SKB_OVERHEAD
    }
}

/// An address being resolved (NUD_INCOMPLETE).
struct Incomplete {
    queue: VecDeque<PendingFrame>,
    queued_bytes: usize,
    probes_sent: u32,
    next_timer: Instant,
}

/// The outcome of queueing a frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Queued {
    /// The address was not being resolved: send an ARP request now.
    pub probe_now: bool,
    /// Older frames pushed out to stay within the byte bound.
    pub dropped_oldest: u64,
}

/// What is due after `NeighbourTable::tick`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Addresses to send another ARP request for.
    pub probes: Vec<Ipv4Addr>,
    /// Frames dropped because resolution failed.
    pub failed_frames: u64,
}

/// Next-hop MACs of one interface, and the frames waiting for them.
#[derive(Default)]
pub struct NeighbourTable {
    macs: HashMap<Ipv4Addr, Mac>,
    incomplete: HashMap<Ipv4Addr, Incomplete>,
    /// Earliest timer among `incomplete`, so an idle tick costs one comparison.
    next_due: Option<Instant>,
}

impl NeighbourTable {
    pub fn lookup(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.macs.get(&ip).copied()
    }

    /// True while `ip` is being resolved.
    pub fn is_resolving(&self, ip: Ipv4Addr) -> bool {
        self.incomplete.contains_key(&ip)
    }

    /// Queues `frame` for `ip`, whose MAC is unknown (`__neigh_event_send`).
    pub fn queue(&mut self, ip: Ipv4Addr, frame: PendingFrame, now: Instant) -> Queued {
        let mut probe_now = false;
        let entry = self.incomplete.entry(ip).or_insert_with(|| {
            probe_now = true;
            Incomplete {
                queue: VecDeque::new(),
                queued_bytes: 0,
                probes_sent: 1,
                next_timer: now + RETRANS_TIME,
            }
        });
        let cost = frame.cost();
        let mut dropped_oldest = 0;
        while entry.queued_bytes + cost > UNRES_QLEN_BYTES {
            let Some(old) = entry.queue.pop_front() else { break };
            entry.queued_bytes -= old.cost();
            dropped_oldest += 1;
        }
        entry.queued_bytes += cost;
        entry.queue.push_back(frame);
        if probe_now {
            let due = entry.next_timer;
            self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
        }
        Queued {
            probe_now,
            dropped_oldest,
        }
    }

    /// Records `ip` at `mac`; returns the frames that were waiting for it, oldest first.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: Mac) -> Vec<PendingFrame> {
        if mac.is_unspecified() || mac.is_multicast() || ip.is_unspecified() {
            return Vec::new();
        }
        self.macs.insert(ip, mac);
        // `next_due` may now be early; the next tick recomputes it.
        self.incomplete.remove(&ip).map(|p| p.queue.into()).unwrap_or_default()
    }

    /// Runs the timers due at `now` (`neigh_timer_handler`).
    pub fn tick(&mut self, now: Instant) -> Tick {
        let mut tick = Tick::default();
        if self.next_due.is_none_or(|due| now < due) {
            return tick;
        }
        let mut next_due: Option<Instant> = None;
        self.incomplete.retain(|ip, p| {
            if now >= p.next_timer {
                if p.probes_sent >= MCAST_SOLICIT {
                    tick.failed_frames += p.queue.len() as u64;
                    return false;
                }
                p.probes_sent += 1;
                p.next_timer = now + RETRANS_TIME;
                tick.probes.push(*ip);
            }
            next_due = Some(next_due.map_or(p.next_timer, |d| d.min(p.next_timer)));
            true
        });
        self.next_due = next_due;
        tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 21);
    const MAC: Mac = Mac([2, 0, 0, 0, 0, 0x21]);

    fn frame(tag: u8, len: usize) -> PendingFrame {
        let mut bytes = vec![0; len];
        bytes[len - 1] = tag;
        PendingFrame {
            vnet: VnetHdr::default(),
            frame: bytes,
            carried: Carried::In,
        }
    }

    fn tags(frames: &[PendingFrame]) -> Vec<u8> {
        frames.iter().map(|f| *f.frame.last().unwrap()).collect()
    }

    #[test]
    fn one_probe_on_first_need_and_the_reply_flushes_the_queue_in_order() {
        let t0 = Instant::now();
        let mut table = NeighbourTable::default();
        assert_eq!(table.lookup(RS), None);
        let first = table.queue(RS, frame(1, 74), t0);
        assert_eq!(
            first,
            Queued {
                probe_now: true,
                dropped_oldest: 0
            }
        );
        for tag in 2..=5 {
            assert!(
                !table.queue(RS, frame(tag, 74), t0).probe_now,
                "one request per address"
            );
        }
        assert!(table.is_resolving(RS));
        assert_eq!(tags(&table.learn(RS, MAC)), [1, 2, 3, 4, 5]);
        assert_eq!(table.lookup(RS), Some(MAC));
        assert!(!table.is_resolving(RS));
        assert_eq!(
            table.tick(t0 + RETRANS_TIME * 5),
            Tick::default(),
            "nothing left to probe"
        );
    }

    #[test]
    fn probes_every_retrans_time_then_fails_the_queue_and_starts_over() {
        let t0 = Instant::now();
        let mut table = NeighbourTable::default();
        table.queue(RS, frame(1, 74), t0);
        table.queue(RS, frame(2, 74), t0 + Duration::from_millis(500));
        let ms = Duration::from_millis;
        assert_eq!(table.tick(t0 + ms(999)), Tick::default());
        assert_eq!(table.tick(t0 + ms(1000)).probes, [RS], "second request");
        assert_eq!(table.tick(t0 + ms(1500)), Tick::default());
        assert_eq!(table.tick(t0 + ms(2000)).probes, [RS], "third request");
        assert_eq!(table.tick(t0 + ms(2999)), Tick::default());
        let failed = table.tick(t0 + ms(3000));
        assert_eq!(
            failed,
            Tick {
                probes: vec![],
                failed_frames: 2
            },
            "mcast_solicit requests, then the queue is dropped"
        );
        assert!(!table.is_resolving(RS));
        assert!(
            table.queue(RS, frame(3, 74), t0 + ms(3001)).probe_now,
            "a new frame starts over"
        );
    }

    #[test]
    fn each_address_keeps_its_own_timer() {
        let t0 = Instant::now();
        let other = Ipv4Addr::new(10, 0, 0, 22);
        let mut table = NeighbourTable::default();
        table.queue(RS, frame(1, 74), t0);
        table.queue(other, frame(2, 74), t0 + Duration::from_millis(400));
        assert_eq!(table.tick(t0 + RETRANS_TIME).probes, [RS]);
        assert_eq!(table.tick(t0 + Duration::from_millis(1400)).probes, [other]);
        table.learn(RS, MAC);
        assert_eq!(table.tick(t0 + Duration::from_millis(2400)).probes, [other]);
        let late = table.tick(t0 + Duration::from_millis(3400));
        assert_eq!(late.failed_frames, 1, "only the unanswered address fails");
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_frames_first() {
        let t0 = Instant::now();
        let mut table = NeighbourTable::default();
        let len = 1000;
        let fit = UNRES_QLEN_BYTES / (len + SKB_OVERHEAD);
        let mut dropped = 0;
        for i in 0..fit + 3 {
            dropped += table.queue(RS, frame((i % 251) as u8, len), t0).dropped_oldest;
        }
        assert_eq!(dropped, 3);
        let flushed = table.learn(RS, MAC);
        assert_eq!(flushed.len(), fit);
        assert_eq!(tags(&flushed)[..2], [3, 4], "frames 0, 1 and 2 went first");
        // A big frame pushes out as many small ones as it needs.
        for _ in 0..10 {
            table.queue(Ipv4Addr::new(10, 0, 0, 30), frame(0, 60), t0);
        }
        let big = table.queue(
            Ipv4Addr::new(10, 0, 0, 30),
            frame(0, UNRES_QLEN_BYTES - 2 * SKB_OVERHEAD),
            t0,
        );
        assert_eq!(big.dropped_oldest, 10, "{big:?}");
    }

    #[test]
    fn learning_ignores_multicast_and_zero_macs() {
        let mut table = NeighbourTable::default();
        table.learn(RS, Mac::UNSPECIFIED);
        table.learn(RS, Mac([1, 0, 0x5e, 0, 0, 1]));
        assert_eq!(table.lookup(RS), None);
    }
}
