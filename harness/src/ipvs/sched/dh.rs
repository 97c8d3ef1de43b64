//! dh — destination hashing (`ip_vs_dh.c`): 256 buckets filled round-robin
//! (weights ignored), keyed by hash_32 of the packet's destination address.

use super::{hash_32, DestIdx, DestList, SchedInput, SchedulerOps};

pub const DH_TAB_BITS: u32 = 8;
pub const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

#[derive(Debug)]
pub struct Dh {
    buckets: Vec<Option<DestIdx>>,
}

impl Dh {
    pub fn new(dests: &DestList) -> Self {
        let mut s = Dh {
            buckets: vec![None; DH_TAB_SIZE],
        };
        s.reassign(dests);
        s
    }

    fn reassign(&mut self, dests: &DestList) {
        let n = dests.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            *b = if n == 0 { None } else { Some(dests.at(i % n)) };
        }
    }
}

impl SchedulerOps for Dh {
    fn dests_changed(&mut self, dests: &DestList) {
        self.reassign(dests)
    }
    // No upd_dest hook in the kernel: weight edits do not refill.
    fn upd_dest(&mut self, _dests: &DestList, _d: DestIdx) {}

    fn schedule(&mut self, dests: &DestList, pkt: &SchedInput) -> Option<DestIdx> {
        let h = hash_32(u32::from(pkt.daddr), DH_TAB_BITS) as usize;
        let idx = self.buckets[h]?;
        let d = dests.get(idx);
        (d.available && d.eligible()).then_some(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn dh_keys_on_destination_address() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1), dest(1, 1)]);
        let mut s = Dh::new(&dests);
        let mut pkt = input(Ipv4Addr::new(1, 2, 3, 4));
        pkt.daddr = Ipv4Addr::new(207, 175, 44, 110); // bucket 174 → 174 % 3 = 0 → .3
        let a = s.schedule(&dests, &pkt).unwrap();
        assert_eq!(dests.get(a).addr.octets()[3], 3);
        // Any client, same VIP → same server.
        pkt.saddr = Ipv4Addr::new(9, 9, 9, 9);
        assert_eq!(s.schedule(&dests, &pkt), Some(a));
    }
}
