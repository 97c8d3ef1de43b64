//! rr — round robin (`ip_vs_rr.c`): a cursor into the list; weights only
//! matter as zero / non-zero.

use super::{DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug, Default)]
pub struct Rr {
    /// The last chosen dest; None = list head.
    cursor: Option<DestIdx>,
}

impl SchedulerOps for Rr {
    fn del_dest(&mut self, dests: &DestList, d: DestIdx, old_pos: usize) {
        // The cursor moves to the removed entry's predecessor.
        if self.cursor == Some(d) {
            self.cursor = if old_pos == 0 {
                None
            } else {
                Some(dests.at(old_pos - 1))
            };
        }
    }

    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let n = dests.len();
        if n == 0 {
            return None;
        }
        let start = match self.cursor.and_then(|c| dests.position(c)) {
            Some(p) => p + 1,
            None => 0,
        };
        // From the entry after the cursor round to (and including) the cursor.
        for k in 0..n {
            let idx = dests.at((start + k) % n);
            if dests.get(idx).eligible() {
                self.cursor = Some(idx);
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

    #[test]
    fn rr_starts_with_newest_and_skips_weight_zero() {
        // List order (newest first): .3 .2 .1
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1), dest(1, 1)]);
        let mut s = Rr::default();
        assert_eq!(run(&mut s, &dests, 6), vec![3, 2, 1, 3, 2, 1]);
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 0), dest(1, 5)]);
        let mut s = Rr::default();
        assert_eq!(run(&mut s, &dests, 4), vec![3, 1, 3, 1]);
        let dests = DestList::from_list(vec![dest(3, 0)]);
        assert_eq!(run(&mut Rr::default(), &dests, 1), vec![0]);
    }
}
