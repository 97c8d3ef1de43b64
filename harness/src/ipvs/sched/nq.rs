//! nq — never queue (`ip_vs_nq.c`): the first idle (active == 0) dest in list
//! order, else sed's (active+1)/weight minimum.

use super::{less_loaded, DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Nq;

impl SchedulerOps for Nq {
    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let mut best: Option<(DestIdx, u64, u32)> = None;
        for (i, d) in dests.iter() {
            if !d.eligible() {
                continue;
            }
            if d.active == 0 {
                return Some(i);
            }
            let oh = d.active as u64 + 1;
            if best.is_none_or(|(_, boh, bw)| less_loaded(boh, bw, oh, d.weight)) {
                best = Some((i, oh, d.weight));
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
    fn nq_takes_first_idle_then_sed() {
        let mut a = dest(3, 5);
        a.active = 1;
        let mut b = dest(2, 1);
        b.inactive = 50;
        let dests = DestList::from_list(vec![a.clone(), b]);
        assert_eq!(run(&mut Nq, &dests, 1), vec![2]);
        let mut b = dest(2, 1);
        b.active = 1; // 2/1 vs 2/5
        let dests = DestList::from_list(vec![b, a]);
        assert_eq!(run(&mut Nq, &dests, 1), vec![3]);
    }
}
