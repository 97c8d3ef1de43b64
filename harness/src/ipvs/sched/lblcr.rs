//! lblcr — lblc with replication (`ip_vs_lblcr.c`): a *set* of dests per
//! destination address; grows when all members are busy, sheds its most
//! loaded member when unchanged for `lblcr_expiration`.

use std::collections::HashMap;
use std::time::Instant;

use super::lblc::{lblc_overloaded, Gc, DEFAULT_EXPIRATION};
use super::{less_loaded, weighted_least, DestIdx, DestList, SchedInput, SchedulerOps};

#[derive(Debug)]
struct Entry {
    /// Newest member first.
    set: Vec<DestIdx>,
    lastuse: Instant,
    lastmod: Instant,
}

#[derive(Debug, Default)]
pub struct Lblcr {
    table: HashMap<u32, Entry>,
    gc: Gc,
}

/// `ip_vs_dest_set_min`.
fn set_min(set: &[DestIdx], dests: &DestList) -> Option<DestIdx> {
    let mut best: Option<(DestIdx, u64, u32)> = None;
    for &i in set {
        let d = dests.get(i);
        if d.overloaded {
            continue;
        }
        match best {
            None => {
                if d.weight > 0 && d.available {
                    best = Some((i, d.overhead(), d.weight));
                }
            }
            Some((_, boh, bw)) => {
                if less_loaded(boh, bw, d.overhead(), d.weight) && d.available {
                    best = Some((i, d.overhead(), d.weight));
                }
            }
        }
    }
    best.map(|b| b.0)
}

/// `ip_vs_dest_set_max`.
fn set_max(set: &[DestIdx], dests: &DestList) -> Option<DestIdx> {
    let mut most: Option<(DestIdx, u64, u32)> = None;
    for &i in set {
        let d = dests.get(i);
        match most {
            None => {
                if d.weight > 0 {
                    most = Some((i, d.overhead(), d.weight));
                }
            }
            Some((_, moh, mw)) => {
                if (moh as u128) * (d.weight as u128) < (d.overhead() as u128) * (mw as u128) && d.weight > 0 {
                    most = Some((i, d.overhead(), d.weight));
                }
            }
        }
    }
    most.map(|m| m.0)
}

impl SchedulerOps for Lblcr {
    fn schedule(&mut self, dests: &DestList, pkt: &SchedInput) -> Option<DestIdx> {
        self.gc.collect(pkt.now, &mut self.table, |e| e.lastuse);
        let key = u32::from(pkt.daddr);
        let now = pkt.now;
        if let Some(e) = self.table.get_mut(&key) {
            e.lastuse = now;
            let cand = set_min(&e.set, dests);
            if e.set.len() > 1 && now.saturating_duration_since(e.lastmod) > DEFAULT_EXPIRATION {
                if let Some(m) = set_max(&e.set, dests) {
                    e.set.retain(|&x| x != m);
                    e.lastmod = now;
                }
            }
            if let Some(c) = cand {
                if !lblc_overloaded(dests.get(c), dests) {
                    return Some(c);
                }
            }
            let chosen = weighted_least(dests, |d| d.overhead())?;
            if !e.set.contains(&chosen) {
                e.set.insert(0, chosen);
                e.lastmod = now;
            }
            return Some(chosen);
        }
        let chosen = weighted_least(dests, |d| d.overhead())?;
        self.table.insert(
            key,
            Entry {
                set: vec![chosen],
                lastuse: now,
                lastmod: now,
            },
        );
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn lblcr_grows_set_when_member_busy() {
        let dests = DestList::from_list(vec![dest(3, 1), dest(2, 1)]);
        let mut s = Lblcr::default();
        assert_eq!(run(&mut s, &dests, 2), vec![3, 3]);
        let mut busy = dest(3, 1);
        busy.active = 2;
        let dests = DestList::from_list(vec![busy, dest(2, 1)]);
        assert_eq!(run(&mut s, &dests, 1), vec![2]);
        assert_eq!(s.table.values().next().unwrap().set.len(), 2);
    }
}
