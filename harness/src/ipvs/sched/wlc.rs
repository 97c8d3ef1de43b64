//! wlc — weighted least connection (`ip_vs_wlc.c`, ipvsadm's default):
//! minimises (active×256+inactive)/weight; ties keep the earliest.

use super::{weighted_least, DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Wlc;

impl SchedulerOps for Wlc {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        weighted_least(dests, |d| d.overhead())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn wlc_uses_weight_ratio() {
        let mut a = dest(3, 1);
        a.active = 2; // 512/1
        let mut b = dest(2, 3);
        b.active = 5; // 1280/3 = 426
        let dests = DestList::from_list(vec![a, b]);
        assert_eq!(run(&mut Wlc, &dests, 1), vec![2]);
        // Inactive connections count too (1 each).
        let mut a = dest(3, 1);
        a.inactive = 3;
        let mut b = dest(2, 1);
        b.inactive = 2;
        let dests = DestList::from_list(vec![a, b]);
        assert_eq!(run(&mut Wlc, &dests, 1), vec![2]);
    }
}
