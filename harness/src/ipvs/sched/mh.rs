//! mh — Maglev hashing (`ip_vs_mh.c`). Table size is the kernel default
//! (CONFIG_IP_VS_MH_TAB_INDEX 12 → 4093 slots) unless built with
//! [`Mh::with_table_index`]. Hashes are the 64-bit kernel's hsiphash
//! (SipHash-1-3 over the 4-byte sum `offset + port + addr`), fixed keys.

use super::{DestIdx, DestList, SchedInput, SchedulerOps};
use crate::ipvs::Proto;

const PRIMES: [u32; 10] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
/// Kernel default CONFIG_IP_VS_MH_TAB_INDEX.
pub const DEFAULT_TAB_INDEX: u32 = 12;
const K1: [u64; 2] = [2654435761, 2654435761];
const K2: [u64; 2] = [2654446892, 2654446892];

#[inline]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The kernel's `hsiphash(&v, 4, key)` on 64-bit: SipHash-1-3, low 32 bits.
pub fn hsiphash_u32(val: u32, key: &[u64; 2]) -> u32 {
    let mut v = [
        0x736f6d6570736575 ^ key[0],
        0x646f72616e646f6d ^ key[1],
        0x6c7967656e657261 ^ key[0],
        0x7465646279746573 ^ key[1],
    ];
    let b: u64 = (4u64 << 56) | val as u64;
    v[3] ^= b;
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

/// `ip_vs_mh_hashkey`.
fn hashkey(addr: u32, port: u16, key: &[u64; 2], offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(port as u32).wrapping_add(addr), key)
}

#[derive(Debug)]
pub struct Mh {
    size: u32,
    tab_bits: u32,
    lookup: Vec<Option<DestIdx>>,
    fallback: bool,
    use_port: bool,
}

impl Mh {
    pub fn new(dests: &DestList, fallback: bool, use_port: bool) -> Self {
        Self::with_table_index(dests, fallback, use_port, DEFAULT_TAB_INDEX)
    }

    /// `tab_index` as CONFIG_IP_VS_MH_TAB_INDEX (8..=17; 16 gives 65521).
    pub fn with_table_index(dests: &DestList, fallback: bool, use_port: bool, tab_index: u32) -> Self {
        let tab_index = tab_index.clamp(8, 17);
        let size = PRIMES[(tab_index - 8) as usize];
        let mut s = Mh {
            size,
            tab_bits: tab_index / 2,
            lookup: vec![None; size as usize],
            fallback,
            use_port,
        };
        s.reassign(dests);
        s
    }

    /// (offset, skip) of a real server, as in `ip_vs_mh_permutate`.
    pub fn offset_skip(&self, addr: std::net::Ipv4Addr, port: u16) -> (u32, u32) {
        let a = u32::from(addr);
        (
            hashkey(a, port, &K1, 0) % self.size,
            hashkey(a, port, &K2, 0) % (self.size - 1) + 1,
        )
    }

    /// Slot a client hashes to (no fallback).
    pub fn slot_of(&self, addr: std::net::Ipv4Addr, port: u16) -> usize {
        (hashkey(u32::from(addr), port, &K1, 0) % self.size) as usize
    }

    fn reassign(&mut self, dests: &DestList) {
        // More dests than slots: the kernel refuses and keeps the old table.
        if dests.len() > self.size as usize {
            return;
        }
        let g = dests
            .iter()
            .map(|(_, d)| d.last_weight)
            .filter(|&w| w > 0)
            .fold(0u32, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            self.lookup.iter_mut().for_each(|s| *s = None);
            return;
        }
        let maxw = dests.iter().map(|(_, d)| d.last_weight).max().unwrap_or(0);
        let fls = 32 - (maxw / g).leading_zeros();
        let rshift = fls.saturating_sub(self.tab_bits);
        struct Setup {
            idx: DestIdx,
            skip: u32,
            perm: u32,
            turns: u32,
        }
        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|(idx, d)| {
                let (offset, skip) = self.offset_skip(d.addr, d.port);
                let lw = d.last_weight;
                let t = (lw / g) >> rshift;
                let turns = if t != 0 { t } else { (lw != 0) as u32 };
                Setup {
                    idx,
                    skip,
                    perm: offset,
                    turns,
                }
            })
            .collect();
        let m = self.size as usize;
        let mut taken = vec![false; m];
        let mut filled = 0usize;
        // Every round fills at least one slot (g >= 1 means some turns > 0).
        'fill: while filled < m {
            for ds in setup.iter_mut() {
                for _ in 0..ds.turns {
                    let mut c = ds.perm as usize;
                    while taken[c] {
                        ds.perm += ds.skip;
                        if ds.perm >= self.size {
                            ds.perm -= self.size;
                        }
                        c = ds.perm as usize;
                    }
                    taken[c] = true;
                    self.lookup[c] = Some(ds.idx);
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl SchedulerOps for Mh {
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
        let ihash = hashkey(addr, port, &K1, 0) % self.size;
        let idx = self.lookup[ihash as usize]?;
        if dests.get(idx).eligible() {
            return Some(idx);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..self.size {
            let roffset = (offset + ihash) % self.size;
            let h = hashkey(addr, port, &K1, roffset) % self.size;
            let idx = self.lookup[h as usize]?;
            if dests.get(idx).eligible() {
                return Some(idx);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::ipvs::service::Dest;
    use std::net::Ipv4Addr;

    fn rs(a: [u8; 4], port: u16, w: u32) -> Dest {
        let mut d = dest(1, w);
        d.addr = Ipv4Addr::from(a);
        d.port = port;
        d
    }

    #[test]
    fn mh_hash_matches_reference_vectors() {
        let s = Mh::new(&DestList::default(), false, false);
        assert_eq!(s.size, 4093);
        assert_eq!(s.offset_skip(Ipv4Addr::new(172, 16, 0, 2), 8080), (3952, 355));
        assert_eq!(s.offset_skip(Ipv4Addr::new(172, 16, 0, 3), 8080), (2057, 3747));
        assert_eq!(s.offset_skip(Ipv4Addr::new(10, 1, 1, 1), 80), (2947, 3258));
        assert_eq!(s.slot_of(Ipv4Addr::new(10, 0, 0, 2), 0), 1884);
        assert_eq!(s.slot_of(Ipv4Addr::new(192, 168, 1, 100), 0), 1341);
    }

    #[test]
    fn mh_removing_a_server_moves_only_its_share() {
        let all = vec![
            rs([172, 16, 0, 4], 80, 1),
            rs([172, 16, 0, 3], 80, 1),
            rs([172, 16, 0, 2], 80, 1),
        ];
        let dests = DestList::from_list(all.clone());
        let mut full = Mh::new(&dests, false, false);
        let fewer = DestList::from_list(vec![all[0].clone(), all[2].clone()]);
        let mut less = Mh::new(&fewer, false, false);
        let clients: Vec<Ipv4Addr> = (0..2000u32).map(|i| Ipv4Addr::from(0x0A00_0000 + i * 7919)).collect();
        let mut moved_from_others = 0;
        let mut per_server = [0usize; 3];
        for &c in &clients {
            let a = dests.get(full.schedule(&dests, &input(c)).unwrap()).addr;
            let b = fewer.get(less.schedule(&fewer, &input(c)).unwrap()).addr;
            per_server[(a.octets()[3] - 2) as usize] += 1;
            if a != Ipv4Addr::new(172, 16, 0, 3) && a != b {
                moved_from_others += 1;
            }
        }
        // Maglev keeps most other clients in place (paper: small disruption).
        assert!(moved_from_others * 20 < clients.len(), "moved {moved_from_others}");
        assert!(per_server.iter().all(|&n| n > 400), "{per_server:?}");
    }

    #[test]
    fn mh_quiesced_keeps_slots_fallback_moves() {
        let mut a = rs([172, 16, 0, 2], 8080, 1);
        let b = rs([172, 16, 0, 3], 8080, 1);
        let dests = DestList::from_list(vec![a.clone(), b.clone()]);
        let s = Mh::new(&dests, false, false);
        let c = Ipv4Addr::new(10, 0, 0, 2);
        let owner = dests.get(s.lookup[s.slot_of(c, 0)].unwrap()).addr;
        a.weight = 0; // quiesce .2 (last_weight kept)
        let mut b2 = b;
        if owner == Ipv4Addr::new(172, 16, 0, 3) {
            b2.weight = 0;
            a.weight = 1;
        }
        let q = DestList::from_list(vec![a, b2]);
        let mut plain = Mh::new(&q, false, false);
        assert_eq!(plain.schedule(&q, &input(c)), None);
        let mut fb = Mh::new(&q, true, false);
        let got = fb.schedule(&q, &input(c)).map(|i| q.get(i).addr);
        assert!(got.is_some() && got != Some(owner));
    }
}
