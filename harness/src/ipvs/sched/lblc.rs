//! lblc — locality-based least connection (`ip_vs_lblc.c`): remembers a dest
//! per packet *destination* address; falls back to wlc when the remembered
//! dest is gone, quiesced or lblc-overloaded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{weighted_least, DestIdx, DestList, SchedInput, SchedulerOps};
use crate::ipvs::service::Dest;

pub(crate) const CHECK_EXPIRE_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const ENTRY_TIMEOUT: Duration = Duration::from_secs(6 * 60);
/// sysctl lblc_expiration / lblcr_expiration default.
pub(crate) const DEFAULT_EXPIRATION: Duration = Duration::from_secs(24 * 60 * 60);
pub(crate) const COUNT_FOR_FULL_EXPIRATION: u32 = 30;
pub(crate) const TAB_SIZE: usize = 1024;
pub(crate) const MAX_SIZE: usize = 16 * TAB_SIZE;

/// `is_overloaded` of lblc/lblcr: more active than weight while some other
/// dest is below half its weight.
pub(crate) fn lblc_overloaded(d: &Dest, dests: &DestList) -> bool {
    d.active > d.weight && dests.iter().any(|(_, m)| (m.active as u64) * 2 < m.weight as u64)
}

/// `start + k·step` for the smallest k >= 0 that lies after `now`.
pub(crate) fn next_after(start: Instant, now: Instant, step: Duration) -> Instant {
    if start > now {
        return start;
    }
    let behind = now.duration_since(start).as_nanos();
    let k = behind / step.as_nanos() + 1;
    start + step * k as u32
}

/// The periodic garbage collector both schedulers share, run lazily.
#[derive(Debug, Default)]
pub(crate) struct Gc {
    next_tick: Option<Instant>,
    counter: u32,
}

impl Gc {
    /// Run the ticks due by `now` over a table keyed by destination address, dropping entries
    /// idle too long (the kernel's lblc and lblcr share this collector).
    pub(crate) fn collect<E>(&mut self, now: Instant, table: &mut HashMap<u32, E>, lastuse: impl Fn(&E) -> Instant) {
        let len = table.len();
        self.run(now, len, |at, idle, max| {
            let mut removed = 0;
            // Kept while idle for less than the limit (`time_after(lastuse + limit, now)`).
            table.retain(|_, e| {
                let keep = removed >= max || at.saturating_duration_since(lastuse(e)) < idle;
                if !keep {
                    removed += 1;
                }
                keep
            });
            table.len()
        });
    }

    /// Run the 60 s ticks due by `now`; `sweep(now, idle_limit, max_remove)`
    /// removes entries idle longer than idle_limit and returns how many remain.
    pub(crate) fn run(&mut self, now: Instant, len: usize, mut sweep: impl FnMut(Instant, Duration, usize) -> usize) {
        let next = *self.next_tick.get_or_insert_with(|| {
            self.counter = 1;
            now + CHECK_EXPIRE_INTERVAL
        });
        let mut tick = next;
        let mut len = len;
        // Bounded catch-up: past 31 ticks a full sweep has certainly happened.
        for _ in 0..=COUNT_FOR_FULL_EXPIRATION {
            if tick > now {
                break;
            }
            // `ip_vs_lblc(r)_check_expire`: the counter is read before it is bumped, so the full
            // check runs on the 30th tick, whatever the table's size.
            if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
                len = sweep(tick, DEFAULT_EXPIRATION, usize::MAX);
                self.counter = 1;
            } else if len <= MAX_SIZE {
                self.counter += 1;
            } else {
                let goal = ((len - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
                len = sweep(tick, ENTRY_TIMEOUT, goal);
            }
            tick += CHECK_EXPIRE_INTERVAL;
        }
        self.next_tick = Some(next_after(tick, now, CHECK_EXPIRE_INTERVAL));
    }
}

#[derive(Debug)]
struct Entry {
    dest: DestIdx,
    lastuse: Instant,
}

#[derive(Debug, Default)]
pub struct Lblc {
    table: HashMap<u32, Entry>,
    gc: Gc,
}

impl SchedulerOps for Lblc {
    fn schedule(&mut self, dests: &DestList, pkt: &SchedInput) -> Option<DestIdx> {
        self.gc.collect(pkt.now, &mut self.table, |e| e.lastuse);
        let key = u32::from(pkt.daddr);
        if let Some(e) = self.table.get_mut(&key) {
            e.lastuse = pkt.now;
            let d = dests.get(e.dest);
            if d.available && d.weight > 0 && !lblc_overloaded(d, dests) {
                return Some(e.dest);
            }
        }
        let chosen = weighted_least(dests, |d| d.overhead())?;
        self.table.insert(
            key,
            Entry {
                dest: chosen,
                lastuse: pkt.now,
            },
        );
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn lblc_sticks_until_overloaded() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1)]);
        let mut s = Lblc::default();
        assert_eq!(run(&mut s, &dests, 3), vec![3, 3, 3]);
        let mut busy = dest(3, 1);
        busy.active = 2; // > weight, and .2 has 0*2 < 1
        let dests = DestList::from_list(vec![busy, dest(2, 1)]);
        assert_eq!(run(&mut s, &dests, 2), vec![2, 2]);
        let _ = Ipv4Addr::LOCALHOST;
    }

    /// `ip_vs_lblc_check_expire` tests the counter before bumping it: the full check is on the
    /// 30th 60 s tick (30 minutes), not the 29th.
    #[test]
    fn the_full_expiration_check_runs_on_the_thirtieth_tick() {
        let start = Instant::now();
        let mut gc = Gc::default();
        gc.run(start, 1, |_, _, _| 1);
        let mut sweeps = Vec::new();
        for k in 1..=31u32 {
            gc.run(start + CHECK_EXPIRE_INTERVAL * k, 1, |_, idle, _| {
                sweeps.push((k, idle));
                1
            });
        }
        assert_eq!(sweeps, vec![(30, DEFAULT_EXPIRATION)]);
    }
}
