//! fo — weighted fail-over (`ip_vs_fo.c`): the highest weight among usable
//! dests; ties keep the earliest.

use super::{DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Fo;

impl SchedulerOps for Fo {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let mut best: Option<(DestIdx, u32)> = None;
        for (i, d) in dests.iter() {
            if d.eligible() && best.is_none_or(|(_, w)| d.weight > w) {
                best = Some((i, d.weight));
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
    fn fo_highest_weight_first_on_tie() {
        let dests = DestList::from_list(vec![dest(3, 2), dest(2, 5), dest(1, 5)]);
        assert_eq!(run(&mut Fo, &dests, 2), vec![2, 2]);
        let mut b = dest(2, 5);
        b.overloaded = true;
        let dests = DestList::from_list(vec![dest(3, 2), b, dest(1, 5)]);
        assert_eq!(run(&mut Fo, &dests, 1), vec![1]);
    }
}
