//! sh — source hashing (`ip_vs_sh.c`): 256 buckets filled in list order, each
//! dest taking max(weight,1) consecutive buckets; key = hash_32(sport? + saddr).

use super::{hash_32, DestIdx, DestList, SchedInput, SchedulerOps};
use crate::ipvs::Proto;

pub const SH_TAB_BITS: u32 = 8;
pub const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;

#[derive(Debug)]
pub struct Sh {
    buckets: Vec<Option<DestIdx>>,
    fallback: bool,
    use_port: bool,
}

/// `ip_vs_sh_hashkey`.
pub fn sh_hashkey(addr: u32, port: u16, offset: u32) -> usize {
    (offset.wrapping_add(hash_32((port as u32).wrapping_add(addr), SH_TAB_BITS)) as usize) & (SH_TAB_SIZE - 1)
}

impl Sh {
    pub fn new(dests: &DestList, fallback: bool, use_port: bool) -> Self {
        let mut s = Sh {
            buckets: vec![None; SH_TAB_SIZE],
            fallback,
            use_port,
        };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: &DestList) {
        if dests.is_empty() {
            self.buckets.iter_mut().for_each(|b| *b = None);
            return;
        }
        let (mut pos, mut count) = (0usize, 0u32);
        for b in self.buckets.iter_mut() {
            let idx = dests.at(pos);
            *b = Some(idx);
            count += 1;
            if count >= dests.get(idx).weight {
                pos = (pos + 1) % dests.len();
                count = 0;
            }
        }
    }

    fn usable(dests: &DestList, b: Option<DestIdx>) -> Option<Option<DestIdx>> {
        // None = empty bucket; Some(None) = unusable dest.
        b.map(|i| if dests.get(i).eligible() { Some(i) } else { None })
    }

    /// Bucket of a client (for tests and diagnosis).
    pub fn bucket_of(&self, addr: std::net::Ipv4Addr, port: u16) -> usize {
        sh_hashkey(u32::from(addr), if self.use_port { port } else { 0 }, 0)
    }
}

impl SchedulerOps for Sh {
    fn dests_changed(&mut self, dests: &DestList) {
        self.reassign(dests)
    }

    fn schedule(&mut self, dests: &DestList, pkt: &SchedInput) -> Option<DestIdx> {
        let port = if self.use_port && matches!(pkt.proto, Proto::Tcp | Proto::Udp) {
            pkt.sport
        } else {
            0
        };
        let addr = u32::from(pkt.saddr);
        let ihash = sh_hashkey(addr, port, 0);
        let first = Self::usable(dests, self.buckets[ihash])?;
        if first.is_some() || !self.fallback {
            return first;
        }
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash as u32) % SH_TAB_SIZE as u32;
            let hash = sh_hashkey(addr, port, roffset);
            match Self::usable(dests, self.buckets[hash])? {
                Some(i) => return Some(i),
                None => continue,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn pick(s: &mut Sh, dests: &DestList, a: Ipv4Addr) -> u8 {
        s.schedule(dests, &input(a))
            .map(|i| dests.get(i).addr.octets()[3])
            .unwrap_or(0)
    }

    #[test]
    fn sh_table_fill_and_known_buckets() {
        let dests = DestList::from_list(vec![dest(3, 2), dest(2, 0), dest(1, 1)]);
        let s = Sh::new(&dests, false, false);
        // .3 ×2, .2 ×1 (weight 0 still owns one), .1 ×1, repeat.
        let names: Vec<u8> = s.buckets[..8]
            .iter()
            .map(|b| dests.get(b.unwrap()).addr.octets()[3])
            .collect();
        assert_eq!(names, vec![3, 3, 2, 1, 3, 3, 2, 1]);
        assert_eq!(s.bucket_of(Ipv4Addr::new(10, 0, 0, 2), 0), 137);
    }

    #[test]
    fn sh_is_stable_per_client_and_spreads() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1), dest(1, 1)]);
        let mut s = Sh::new(&dests, false, false);
        let clients: Vec<Ipv4Addr> = (1..=30).map(|i| Ipv4Addr::new(192, 168, 7, i)).collect();
        let first: Vec<u8> = clients.iter().map(|&c| pick(&mut s, &dests, c)).collect();
        let again: Vec<u8> = clients.iter().map(|&c| pick(&mut s, &dests, c)).collect();
        assert_eq!(first, again);
        for rs in [1, 2, 3] {
            assert!(first.contains(&rs), "server .{rs} never chosen: {first:?}");
        }
        // Pinned: bucket 137 → 137 % 3 = 2 → third in list = .1
        assert_eq!(pick(&mut s, &dests, Ipv4Addr::new(10, 0, 0, 2)), 1);
    }

    #[test]
    fn sh_fallback_probes_when_dest_quiesced() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1), dest(1, 0)]);
        let c = Ipv4Addr::new(10, 0, 0, 2); // bucket 137 → .1 (weight 0)
        let mut plain = Sh::new(&dests, false, false);
        assert_eq!(pick(&mut plain, &dests, c), 0);
        let mut fb = Sh::new(&dests, true, false);
        // Probe 0 hashes to (137+137)&255 = 18 → 18 % 3 = 0 → .3
        assert_eq!(pick(&mut fb, &dests, c), 3);
    }
}
