//! ovf — weighted overflow (`ip_vs_ovf.c`): the highest weight among dests
//! whose active count has not passed their weight (`active <= weight`).

use super::{DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Ovf;

impl SchedulerOps for Ovf {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let mut best: Option<(DestIdx, u32)> = None;
        for (i, d) in dests.iter() {
            if !d.eligible() || d.active > d.weight {
                continue;
            }
            if best.is_none_or(|(_, w)| d.weight > w) {
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
    fn ovf_overflows_after_weight_plus_one() {
        let mut a = dest(3, 2);
        a.active = 2; // still eligible (<=)
        let dests = DestList::from_list(vec![a.clone(), dest(2, 1)]);
        assert_eq!(run(&mut Ovf, &dests, 1), vec![3]);
        a.active = 3;
        let dests = DestList::from_list(vec![a, dest(2, 1)]);
        assert_eq!(run(&mut Ovf, &dests, 1), vec![2]);
    }
}
