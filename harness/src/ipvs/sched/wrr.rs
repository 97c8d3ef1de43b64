//! wrr — weighted round robin (`ip_vs_wrr.c`): passes with a falling weight
//! threshold `cw` stepped by the gcd of the weights.

use super::{DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Wrr {
    /// Cursor: list position of the last pick, None = list head.
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn gcd_weight(dests: &DestList) -> i64 {
    let g = dests
        .iter()
        .map(|(_, d)| d.weight as i64)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
    if g > 0 {
        g
    } else {
        1
    }
}

fn max_weight(dests: &DestList) -> i64 {
    dests.iter().map(|(_, d)| d.weight as i64).max().unwrap_or(0)
}

impl Wrr {
    pub fn new(dests: &DestList) -> Self {
        let di = gcd_weight(dests);
        let mw = max_weight(dests) - (di - 1);
        Wrr {
            cl: None,
            cw: mw,
            mw,
            di,
        }
    }

    fn dest_changed(&mut self, dests: &DestList) {
        self.cl = None;
        self.di = gcd_weight(dests);
        self.mw = max_weight(dests) - (self.di - 1);
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }
}

impl SchedulerOps for Wrr {
    fn dests_changed(&mut self, dests: &DestList) {
        self.dest_changed(dests)
    }

    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl;
        let mut pos = self.cl;
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        // Bounded: each outer round lowers cw; two full cycles at most.
        let max_rounds = 2 * (self.mw / self.di.max(1) + 2) as usize + 4;
        for _ in 0..max_rounds {
            let from = pos.map(|p| p + 1).unwrap_or(0);
            for p in from..n {
                let d = dests.get(dests.at(p));
                if !d.overloaded && d.weight as i64 >= self.cw {
                    self.cl = Some(p);
                    return Some(dests.at(p));
                }
                if stop == Some(p) {
                    self.cl = Some(p);
                    return None;
                }
            }
            pos = None; // the walk ended at the list head
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
        self.cl = None;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn wrr_3_2_1_over_12() {
        let dests = DestList::from_list(vec![dest(3, 3), dest(2, 2), dest(1, 1)]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 12), vec![3, 3, 2, 3, 2, 1, 3, 3, 2, 3, 2, 1]);
    }

    #[test]
    fn wrr_reference_sequences() {
        // ipvs.md §1.3: A=4 B=3 C=2 → A A B A B C A B C.
        let dests = DestList::from_list(vec![dest(1, 4), dest(2, 3), dest(3, 2)]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 9), vec![1, 1, 2, 1, 2, 3, 1, 2, 3]);
        // Weights 4 and 2 (di=2, mw=3): A A B A A B.
        let dests = DestList::from_list(vec![dest(1, 4), dest(2, 2)]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 6), vec![1, 1, 2, 1, 1, 2]);
    }

    #[test]
    fn wrr_weight_zero_and_all_zero() {
        let dests = DestList::from_list(vec![dest(3, 0), dest(2, 1), dest(1, 1)]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 4), vec![2, 1, 2, 1]);
        let dests = DestList::from_list(vec![dest(3, 0)]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 2), vec![0, 0]);
    }

    #[test]
    fn wrr_all_overloaded_returns_none() {
        let mut a = dest(1, 2);
        a.overloaded = true;
        let mut b = dest(2, 1);
        b.overloaded = true;
        let dests = DestList::from_list(vec![a, b]);
        let mut s = Wrr::new(&dests);
        assert_eq!(run(&mut s, &dests, 3), vec![0, 0, 0]);
    }
}
