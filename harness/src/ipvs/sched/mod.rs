//! Schedulers, one file per kernel module (`net/netfilter/ipvs/ip_vs_<name>.c`).
//!
//! Every scheduler walks the destination list in kernel order (newest first)
//! and gets the same hooks as the kernel's `struct ip_vs_scheduler`.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::service::{Dest, DestIdx, DestList};
use super::{Proto, SchedFlags, Scheduler};

pub mod dh;
pub mod fo;
pub mod lblc;
pub mod lblcr;
pub mod lc;
pub mod mh;
pub mod nq;
pub mod ovf;
pub mod rr;
pub mod sed;
pub mod sh;
pub mod twos;
pub mod wlc;
pub mod wrr;

/// What a scheduler may look at in the packet being scheduled.
#[derive(Clone, Copy, Debug)]
pub struct SchedInput {
    pub proto: Proto,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub now: Instant,
}

/// The kernel's scheduler hooks (`struct ip_vs_scheduler`). `dests` is the list *after* the change.
pub trait SchedulerOps: Send + std::fmt::Debug {
    /// After any change to the destination list: the hook of schedulers that rebuild their
    /// state from the whole list (the kernel's wrr, sh, dh and mh use one function for all three).
    fn dests_changed(&mut self, _dests: &DestList) {}
    /// After a destination was linked at the list head (add or revive).
    fn add_dest(&mut self, dests: &DestList, _d: DestIdx) {
        self.dests_changed(dests)
    }
    /// After a destination was unlinked; `old_pos` was its list position.
    fn del_dest(&mut self, dests: &DestList, _d: DestIdx, _old_pos: usize) {
        self.dests_changed(dests)
    }
    /// After a destination was edited (weight, method, thresholds).
    fn upd_dest(&mut self, dests: &DestList, _d: DestIdx) {
        self.dests_changed(dests)
    }
    fn schedule(&mut self, dests: &DestList, pkt: &SchedInput) -> Option<DestIdx>;
    /// Reseed a randomised scheduler (twos); others ignore it.
    fn set_seed(&mut self, _seed: u64) {}
}

/// Bind a scheduler to a service (`init_service`). The names and facts of the
/// schedulers are in [`crate::lvs::SCHEDULERS`]; this match gives each its hooks.
pub fn new_scheduler(scheduler: Scheduler, flags: SchedFlags, dests: &DestList, seed: u64) -> Box<dyn SchedulerOps> {
    match scheduler {
        Scheduler::Rr => Box::new(rr::Rr::default()),
        Scheduler::Wrr => Box::new(wrr::Wrr::new(dests)),
        Scheduler::Lc => Box::new(lc::Lc),
        Scheduler::Wlc => Box::new(wlc::Wlc),
        Scheduler::Sed => Box::new(sed::Sed),
        Scheduler::Nq => Box::new(nq::Nq),
        Scheduler::Fo => Box::new(fo::Fo),
        Scheduler::Ovf => Box::new(ovf::Ovf),
        Scheduler::Twos => Box::new(twos::Twos::new(seed)),
        Scheduler::Sh => Box::new(sh::Sh::new(dests, flags.sh_fallback, flags.sh_port)),
        Scheduler::Dh => Box::new(dh::Dh::new(dests)),
        Scheduler::Mh => Box::new(mh::Mh::new(dests, flags.mh_fallback, flags.mh_port)),
        Scheduler::Lblc => Box::new(lblc::Lblc::default()),
        Scheduler::Lblcr => Box::new(lblcr::Lblcr::default()),
    }
}

/// `hash_32` from include/linux/hash.h (GOLDEN_RATIO_32, high bits).
pub fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// "d is strictly less loaded than best": `oh(best)*w(d) > oh(d)*w(best)`.
pub(crate) fn less_loaded(best_oh: u64, best_w: u32, d_oh: u64, d_w: u32) -> bool {
    (best_oh as u128) * (d_w as u128) > (d_oh as u128) * (best_w as u128)
}

/// The wlc walk with a pluggable overhead (wlc, sed share it).
pub(crate) fn weighted_least(dests: &DestList, overhead: impl Fn(&Dest) -> u64) -> Option<DestIdx> {
    let mut best: Option<(DestIdx, u64, u32)> = None;
    for (i, d) in dests.iter() {
        match best {
            None => {
                if d.eligible() {
                    best = Some((i, overhead(d), d.weight));
                }
            }
            Some((_, boh, bw)) => {
                if d.overloaded {
                    continue;
                }
                let doh = overhead(d);
                if less_loaded(boh, bw, doh, d.weight) {
                    best = Some((i, doh, d.weight));
                }
            }
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::ipvs::Forward;
    use std::time::Instant;

    pub fn dest(last_octet: u8, weight: u32) -> Dest {
        Dest {
            addr: Ipv4Addr::new(10, 0, 1, last_octet),
            port: 80,
            weight,
            last_weight: weight,
            forward: Forward::Dr,
            u_threshold: 0,
            l_threshold: 0,
            overloaded: false,
            available: true,
            active: 0,
            inactive: 0,
            persist: 0,
            stats: Default::default(),
        }
    }

    pub fn input(saddr: Ipv4Addr) -> SchedInput {
        SchedInput {
            proto: Proto::Tcp,
            saddr,
            sport: 40000,
            daddr: Ipv4Addr::new(10, 0, 0, 10),
            dport: 80,
            now: Instant::now(),
        }
    }

    /// Run `n` picks and name the chosen dests by last octet.
    pub fn run(s: &mut dyn SchedulerOps, dests: &DestList, n: usize) -> Vec<u8> {
        let pkt = input(Ipv4Addr::new(10, 9, 9, 9));
        (0..n)
            .map(|_| {
                s.schedule(dests, &pkt)
                    .map(|i| dests.get(i).addr.octets()[3])
                    .unwrap_or(0)
            })
            .collect()
    }

    #[test]
    fn hash_32_vectors_from_reference() {
        // ipvs.md §1.11/1.12 test vectors.
        assert_eq!(hash_32(u32::from(Ipv4Addr::new(10, 0, 0, 2)), 8), 137);
        assert_eq!(
            hash_32(u32::from(Ipv4Addr::new(10, 0, 0, 2)).wrapping_add(40312), 8),
            89
        );
        assert_eq!(hash_32(u32::from(Ipv4Addr::new(192, 168, 1, 100)), 8), 89);
        assert_eq!(hash_32(u32::from(Ipv4Addr::new(207, 175, 44, 110)), 8), 174);
    }
}
