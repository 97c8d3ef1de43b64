//! Virtual services and their destinations (`ip_vs_ctl.c`).
//!
//! Destinations live in slots that never move (a deleted destination stays in
//! its slot, unavailable, like the kernel's "trash", and is revived by a
//! re-add); `order` is the kernel's list: newest first (`list_add`).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::sched::SchedulerOps;
use super::{DestConfig, Forward, ServiceConfig};

/// Index of a destination slot inside its service.
pub type DestIdx = u32;

/// Traffic counters (`struct ip_vs_kstats`, without the rate estimator).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

/// One real server of a service (`struct ip_vs_dest`).
#[derive(Clone, Debug)]
pub struct Dest {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    /// Latest non-zero weight (mh builds its table from it).
    pub last_weight: u32,
    pub forward: Forward,
    pub u_threshold: u32,
    pub l_threshold: u32,
    /// IP_VS_DEST_F_OVERLOAD.
    pub overloaded: bool,
    /// IP_VS_DEST_F_AVAILABLE: false once deleted.
    pub available: bool,
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub stats: Counters,
}

impl Dest {
    /// `ip_vs_dest_conn_overhead`: active × 256 + inactive.
    pub fn overhead(&self) -> u64 {
        ((self.active as u64) << 8) + self.inactive as u64
    }

    fn total_conns(&self) -> u64 {
        self.active as u64 + self.inactive as u64
    }

    /// Usable for a new connection by most schedulers.
    pub fn eligible(&self) -> bool {
        !self.overloaded && self.weight > 0
    }

    /// `ip_vs_bind_dest`: count the entry and maybe set OVERLOAD.
    pub(crate) fn bind(&mut self, template: bool, inactive: bool) {
        if template {
            self.persist += 1;
        } else if inactive {
            self.inactive += 1;
        } else {
            self.active += 1;
        }
        if self.u_threshold != 0 && self.total_conns() >= self.u_threshold as u64 {
            self.overloaded = true;
        }
    }

    /// `ip_vs_unbind_dest`: uncount the entry and maybe clear OVERLOAD.
    pub(crate) fn unbind(&mut self, template: bool, inactive: bool) {
        if template {
            self.persist = self.persist.saturating_sub(1);
        } else if inactive {
            self.inactive = self.inactive.saturating_sub(1);
        } else {
            self.active = self.active.saturating_sub(1);
        }
        let total = self.total_conns();
        if self.l_threshold != 0 {
            if total < self.l_threshold as u64 {
                self.overloaded = false;
            }
        } else if self.u_threshold != 0 {
            if total * 4 < self.u_threshold as u64 * 3 {
                self.overloaded = false;
            }
        } else {
            self.overloaded = false;
        }
    }

    /// Move one connection between the active and inactive counters.
    pub(crate) fn set_activity(&mut self, was_inactive: bool, now_inactive: bool) {
        if was_inactive == now_inactive {
            return;
        }
        if now_inactive {
            self.active = self.active.saturating_sub(1);
            self.inactive += 1;
        } else {
            self.inactive = self.inactive.saturating_sub(1);
            self.active += 1;
        }
    }
}

/// The service's destinations: stable slots plus the kernel list order.
#[derive(Clone, Debug, Default)]
pub struct DestList {
    slots: Vec<Dest>,
    order: Vec<DestIdx>,
}

impl DestList {
    /// Destinations in kernel list order (newest first).
    pub fn iter(&self) -> impl Iterator<Item = (DestIdx, &Dest)> + '_ {
        self.order.iter().map(move |&i| (i, &self.slots[i as usize]))
    }

    /// Number of linked (not deleted) destinations.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, idx: DestIdx) -> &Dest {
        &self.slots[idx as usize]
    }

    pub(crate) fn get_mut(&mut self, idx: DestIdx) -> &mut Dest {
        &mut self.slots[idx as usize]
    }

    /// Slot at list position `pos`.
    pub fn at(&self, pos: usize) -> DestIdx {
        self.order[pos]
    }

    /// List position of a linked destination.
    pub fn position(&self, idx: DestIdx) -> Option<usize> {
        self.order.iter().position(|&i| i == idx)
    }

    /// Slot of `addr:port`, linked or deleted.
    pub fn find_slot(&self, addr: Ipv4Addr, port: u16) -> Option<DestIdx> {
        self.slots
            .iter()
            .position(|d| d.addr == addr && d.port == port)
            .map(|i| i as DestIdx)
    }

    /// Build a list directly (scheduler unit tests): `dests` in list order.
    #[cfg(test)]
    pub(crate) fn from_list(dests: Vec<Dest>) -> Self {
        let order = (0..dests.len() as DestIdx).collect();
        DestList { slots: dests, order }
    }
}

/// A virtual service (`struct ip_vs_service`).
pub struct Service {
    pub cfg: ServiceConfig,
    pub dests: DestList,
    pub sched: Box<dyn SchedulerOps>,
    pub stats: Counters,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("cfg", &self.cfg)
            .field("dests", &self.dests)
            .field("sched", &self.cfg.scheduler.as_str())
            .finish()
    }
}

/// What `add_dest` did, so the caller can run the scheduler hook.
pub(crate) enum DestAdded {
    New(DestIdx),
    Revived(DestIdx),
}

impl Service {
    pub(crate) fn new_dest(cfg: &DestConfig) -> Dest {
        Dest {
            addr: cfg.addr,
            port: cfg.port,
            weight: cfg.weight,
            last_weight: cfg.weight,
            forward: cfg.forward,
            u_threshold: cfg.upper_threshold,
            l_threshold: cfg.lower_threshold,
            overloaded: false,
            available: true,
            active: 0,
            inactive: 0,
            persist: 0,
            stats: Counters::default(),
        }
    }

    /// `__ip_vs_update_dest` with add=1: link at the list head.
    pub(crate) fn link_dest(&mut self, cfg: &DestConfig) -> DestAdded {
        if let Some(idx) = self.dests.find_slot(cfg.addr, cfg.port) {
            let d = self.dests.get_mut(idx);
            apply_update(d, cfg, true);
            d.available = true;
            self.dests.order.insert(0, idx);
            DestAdded::Revived(idx)
        } else {
            let idx = self.dests.slots.len() as DestIdx;
            self.dests.slots.push(Self::new_dest(cfg));
            self.dests.order.insert(0, idx);
            DestAdded::New(idx)
        }
    }

    /// Unlink a destination; returns its slot and former list position.
    pub(crate) fn unlink_dest(&mut self, addr: Ipv4Addr, port: u16) -> Option<(DestIdx, usize)> {
        let idx = self.dests.find_slot(addr, port)?;
        let pos = self.dests.position(idx)?;
        self.dests.order.remove(pos);
        self.dests.get_mut(idx).available = false;
        Some((idx, pos))
    }

    /// `__ip_vs_update_dest` with add=0 on a linked destination.
    pub(crate) fn update_dest(&mut self, cfg: &DestConfig) -> Option<DestIdx> {
        let idx = self.dests.find_slot(cfg.addr, cfg.port)?;
        self.dests.position(idx)?;
        apply_update(self.dests.get_mut(idx), cfg, false);
        Some(idx)
    }
}

fn apply_update(d: &mut Dest, cfg: &DestConfig, add: bool) {
    if add || cfg.weight != 0 {
        d.last_weight = cfg.weight;
    }
    d.weight = cfg.weight;
    d.forward = cfg.forward;
    if cfg.upper_threshold == 0 || cfg.upper_threshold > d.u_threshold {
        d.overloaded = false;
    }
    d.u_threshold = cfg.upper_threshold;
    d.l_threshold = cfg.lower_threshold;
}
