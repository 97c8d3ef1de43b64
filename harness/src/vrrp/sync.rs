//! A director's instances, as keepalived's VRRP child runs them: each on its own, or bound by a
//! `vrrp_sync_group` so that they move together.
//!
//! The rules are vrrp/vrrp_sync.c's (`vrrp_sync_can_goto_master`, `vrrp_sync_master`,
//! `vrrp_sync_backup`, `vrrp_sync_fault`), applied where keepalived applies them: after an
//! advert or a timer changed a member's state (the transition matrix `VRRP_TSM` of
//! vrrp_scheduler.c: BACKUP/FAULT -> MASTER syncs MASTER, MASTER -> BACKUP syncs BACKUP), when a
//! member's tracks put it down (`down_instance`: the first member down syncs FAULT) and when its
//! last fault clears (`try_up_instance`: the group comes up only with its last member). At
//! configuration keepalived starts every member BACKUP unless all are address owners wanting
//! MASTER, and all FAULT when one is down (`vrrp_complete_init`).
//!
//! So a BACKUP member whose down timer expires waits (its timer re-armed) until every other
//! member wants MASTER too; the last one to time out takes the group with it.

use std::time::Duration;

use super::instance::{Instance, SyncView};
use super::{InstanceConfig, Received, State, VrrpRecord};

/// One director's VRRP instances; `group` names their `vrrp_sync_group`, if any.
pub struct Group {
    name: Option<String>,
    members: Vec<Instance>,
    /// The sync group's own state (`sgroup->state`).
    state: State,
}

/// A record of one member (index in the group's order).
pub type MemberRecord = (usize, VrrpRecord);

impl Group {
    /// keepalived's warnings come with the group, each after its instance's name.
    pub fn new(name: Option<&str>, configs: Vec<InstanceConfig>) -> (Group, Vec<String>) {
        let mut warnings = Vec::new();
        let mut members = Vec::new();
        for cfg in configs {
            let (instance, w) = Instance::new(cfg);
            warnings.extend(w);
            members.push(instance);
        }
        let mut state = State::Backup;
        if let Some(group) = name {
            if members.len() == 1 {
                warnings.push(format!(
                    "Sync group {group} has only 1 virtual router(s) - this probably isn't what you want"
                ));
            }
            let owner_master = |m: &Instance| m.wantstate() == State::Master && m.config().base_priority() == 255;
            if members.iter().all(owner_master) {
                state = State::Master;
            } else {
                for m in &mut members {
                    m.want_backup();
                }
            }
        }
        let group = Group {
            name: name.map(str::to_string),
            members,
            state,
        };
        (group, warnings)
    }

    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    pub fn member(&self, index: usize) -> &Instance {
        &self.members[index]
    }

    /// The sync group's state (BACKUP without a group).
    pub fn state(&self) -> State {
        self.state
    }

    pub fn next_timer(&self) -> Option<Duration> {
        self.members.iter().filter_map(Instance::next_timer).min()
    }

    fn view(&mut self, index: usize) {
        if self.name.is_none() {
            return;
        }
        let others = || self.members.iter().enumerate().filter(|(j, _)| *j != index);
        let view = SyncView {
            group_master: self.state == State::Master,
            others_want_master: others().all(|(_, m)| m.wantstate() == State::Master),
            others_faulted: others().any(|(_, m)| m.faulted()),
        };
        self.members[index].set_sync(Some(view));
    }

    fn collect(&mut self, now: Duration, out: &mut Vec<MemberRecord>) {
        for (i, m) in self.members.iter_mut().enumerate() {
            out.extend(m.take_records(now).into_iter().map(|r| (i, r)));
        }
    }

    /// `vrrp_init_state`, every member; one down at start takes the group to FAULT.
    pub fn start(&mut self, now: Duration) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        let down = self.members.iter().position(Instance::faults_at_start);
        for i in 0..self.members.len() {
            self.view(i);
            let records = self.members[i].start(now);
            out.extend(records.into_iter().map(|r| (i, r)));
        }
        if let (Some(_), Some(i)) = (&self.name, down) {
            self.sync_fault(now, i);
            self.collect(now, &mut out);
        }
        out
    }

    /// Every member's timers due at `now`.
    pub fn on_timer(&mut self, now: Duration) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            if self.members[i].next_timer().is_none_or(|at| at > now) {
                continue;
            }
            self.view(i);
            let before = self.members[i].state();
            let records = self.members[i].on_timer(now);
            out.extend(records.into_iter().map(|r| (i, r)));
            self.transition(now, i, before);
            self.collect(now, &mut out);
        }
        out
    }

    /// An advert received on member `index`'s interface.
    pub fn on_advert(&mut self, now: Duration, index: usize, rx: &Received) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        if index >= self.members.len() {
            return out;
        }
        self.view(index);
        let before = self.members[index].state();
        let records = self.members[index].on_advert(now, rx);
        out.extend(records.into_iter().map(|r| (index, r)));
        self.transition(now, index, before);
        self.collect(now, &mut out);
        out
    }

    /// A track of member `index` changed.
    pub fn on_track(&mut self, now: Duration, index: usize, track: usize, ok: bool) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        if index >= self.members.len() {
            return out;
        }
        self.view(index);
        let was_down = self.members[index].faulted();
        let records = self.members[index].on_track(now, track, ok);
        out.extend(records.into_iter().map(|r| (index, r)));
        if self.name.is_some() {
            let down = self.members[index].faulted();
            if !was_down && down {
                // `down_instance`: the first member down takes the group to FAULT.
                self.sync_fault(now, index);
            } else if was_down && !down && self.members[index].state() != State::Fault {
                // `try_up_instance`: the last member up takes the group along.
                if self.members[index].state() == State::Master {
                    self.sync_master(now, index);
                } else {
                    self.sync_backup(now, index);
                }
            }
            self.collect(now, &mut out);
        }
        out
    }

    /// SIGTERM: every member stops.
    pub fn shutdown(&mut self, now: Duration) -> Vec<MemberRecord> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let records = self.members[i].shutdown(now);
            out.extend(records.into_iter().map(|r| (i, r)));
        }
        out
    }

    /// `VRRP_TSM_HANDLE` after a member moved from `before`.
    fn transition(&mut self, now: Duration, index: usize, before: State) {
        if self.name.is_none() {
            return;
        }
        match (before, self.members[index].state()) {
            (State::Backup | State::Master | State::Fault, State::Master) => self.sync_master(now, index),
            (State::Master, State::Backup) => self.sync_backup(now, index),
            _ => {}
        }
    }

    fn log(&mut self, index: usize, what: &str) {
        let name = self.name.clone().unwrap_or_default();
        self.members[index].log_line(format!("VRRP_Group({name}) Syncing instances to {what} state"));
    }

    /// `vrrp_sync_master`.
    fn sync_master(&mut self, now: Duration, index: usize) {
        if self.state == State::Master {
            return;
        }
        let others_want = self
            .members
            .iter()
            .enumerate()
            .all(|(j, m)| j == index || m.wantstate() == State::Master);
        if !others_want {
            return;
        }
        self.log(index, "MASTER");
        for j in 0..self.members.len() {
            if j != index && self.members[j].state() != State::Master {
                self.members[j].set_sync(Some(SyncView {
                    group_master: true,
                    ..SyncView::default()
                }));
                self.members[j].sync_to_master(now);
            }
        }
        self.state = State::Master;
    }

    /// `vrrp_sync_backup`.
    fn sync_backup(&mut self, now: Duration, index: usize) {
        if self.state == State::Backup {
            return;
        }
        self.log(index, "BACKUP");
        for j in 0..self.members.len() {
            if j != index && self.members[j].state() != State::Backup {
                self.members[j].sync_to_backup(now);
            }
        }
        self.state = State::Backup;
    }

    /// `vrrp_sync_fault`.
    fn sync_fault(&mut self, now: Duration, index: usize) {
        if self.state == State::Fault {
            return;
        }
        self.log(index, "FAULT");
        for j in 0..self.members.len() {
            if j != index && self.members[j].state() != State::Fault {
                self.members[j].sync_to_fault(now);
            }
        }
        self.state = State::Fault;
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
