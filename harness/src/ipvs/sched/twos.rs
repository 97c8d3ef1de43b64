//! twos — power of two choices (`ip_vs_twos.c`): two weighted random picks,
//! keep the less loaded. The kernel uses get_random_u32; here a seeded
//! SplitMix64 makes runs repeatable (sequences cannot match a real kernel).

use super::{less_loaded, DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
pub struct Twos {
    state: u64,
}

impl Twos {
    pub fn new(seed: u64) -> Self {
        Twos { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, bound) (bound > 0), like get_random_u32_below.
    fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }
}

impl SchedulerOps for Twos {
    fn set_seed(&mut self, seed: u64) {
        self.state = seed;
    }

    fn schedule(&mut self, dests: &DestList, _pkt: &SchedInput) -> Option<DestIdx> {
        let total: u64 = dests
            .iter()
            .filter(|(_, d)| d.eligible())
            .map(|(_, d)| d.weight as u64)
            .sum();
        if total == 0 {
            return None;
        }
        // Inclusive upper bound, as the kernel: random_below(total + 1).
        let mut r1 = self.below(total + 1) as i64;
        let mut r2 = self.below(total + 1) as i64;
        let (mut c1, mut c2) = (None, None);
        for (i, d) in dests.iter().filter(|(_, d)| d.eligible()) {
            r1 -= d.weight as i64;
            r2 -= d.weight as i64;
            if c1.is_none() && r1 <= 0 {
                c1 = Some(i);
            }
            if c2.is_none() && r2 <= 0 {
                c2 = Some(i);
            }
        }
        let (c1, c2) = (c1?, c2?);
        let (d1, d2) = (dests.get(c1), dests.get(c2));
        if less_loaded(d1.overhead(), d1.weight, d2.overhead(), d2.weight) {
            Some(c2)
        } else {
            Some(c1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn twos_is_repeatable_and_avoids_loaded() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1), dest(1, 1)]);
        let a = run(&mut Twos::new(7), &dests, 30);
        let b = run(&mut Twos::new(7), &dests, 30);
        assert_eq!(a, b);
        assert!(a.iter().all(|&x| x != 0));
        let mut busy = dest(3, 1);
        busy.active = 100;
        let dests = DestList::from_list(vec![dest(2, 1), busy]);
        let picks = run(&mut Twos::new(1), &dests, 300);
        let to_busy = picks.iter().filter(|&&x| x == 3).count();
        // Busy (second, draw values {2} of {0,1,2}) only wins when both
        // draws land on it: 1/9 of picks, ~33 of 300.
        assert!((10..70).contains(&to_busy), "busy chosen {to_busy}/300");
    }
}
