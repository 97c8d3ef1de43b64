//! lc — least connection (`ip_vs_lc.c`): minimum active×256+inactive among
//! non-overloaded, weight>0 dests; ties keep the earliest in list order.

use super::{DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Lc;

impl SchedulerOps for Lc {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let mut best: Option<(DestIdx, u64)> = None;
        for (i, d) in dests.iter() {
            if !d.eligible() {
                continue;
            }
            let oh = d.overhead();
            if best.is_none_or(|(_, b)| oh < b) {
                best = Some((i, oh));
            }
        }
        best.map(|b| b.0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn lc_prefers_fewest_and_ties_go_to_newest() {
        let mut a = dest(3, 1);
        a.active = 1; // 256
        let mut b = dest(2, 1);
        b.inactive = 200; // 200
        let c = dest(1, 0); // weight 0: never
        let dests = DestList::from_list(vec![a, b, c]);
        assert_eq!(run(&mut Lc, &dests, 1), vec![2]);
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1)]);
        assert_eq!(run(&mut Lc, &dests, 1), vec![3]);
    }
}
