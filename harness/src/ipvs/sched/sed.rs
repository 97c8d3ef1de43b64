//! sed — shortest expected delay (`ip_vs_sed.c`): minimises (active+1)/weight;
//! inactive connections are ignored.

use super::{weighted_least, DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Sed;

impl SchedulerOps for Sed {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        weighted_least(dests, |d| d.active as u64 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn sed_ignores_inactive_and_favours_weight() {
        let mut a = dest(3, 1);
        a.inactive = 0;
        let mut b = dest(2, 3);
        b.inactive = 1000;
        b.active = 1; // (1+1)/3 < (0+1)/1
        let dests = DestList::from_list(vec![a, b]);
        assert_eq!(run(&mut Sed, &dests, 1), vec![2]);
    }
}
