//! One `vrrp_instance` as keepalived 2.2.7 runs it, on the caller's clock.
//!
//! Rules and log lines come from vrrp/vrrp.c (`vrrp_state_backup`,
//! `vrrp_state_master_rx`, `vrrp_state_master_tx`, `vrrp_state_become_master`,
//! `vrrp_state_leave_master`, `vrrp_state_leave_fault`, `vrrp_check_packet`,
//! `vrrp_complete_instance`, `restore_vrrp_interfaces`), vrrp/vrrp_scheduler.c
//! (`vrrp_init_state`, `vrrp_init_instance_sands`, `vrrp_dispatcher_read[_timeout]`,
//! `try_up_instance`) and vrrp/vrrp_track.c (`down_instance`,
//! `vrrp_set_effective_priority`). Lines are those of `keepalived -D`.
//!
//! keepalived has one timer per instance (`sands`): the down timer in BACKUP,
//! the next advert in MASTER. Receiving an advert it discards leaves that
//! timer running; accepting one restarts it.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::packet::{Advert, Auth, Received, VRRP_TTL};
use super::timers::{master_down_interval, normalise_advert_int, skew_time, Version};
use super::track::{clamp_priority, TrackConfig};

const PRIO_OWNER: u8 = 255;

/// keepalived's instance states (include/vrrp.h `VRRP_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Init,
    Backup,
    Master,
    Fault,
    Stop,
}

impl State {
    /// The word keepalived's notify scripts and FIFO use.
    pub fn word(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stop => "STOP",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.word())
    }
}

/// A `vrrp_instance` block, with keepalived's defaults from [`InstanceConfig::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub interface: String,
    /// The interface's primary address: advert source and tie-breaker.
    pub address: Ipv4Addr,
    pub vrid: u8,
    /// `priority`; `None` = derived from `state` (255 for MASTER, else 100).
    pub priority: Option<u8>,
    /// `state MASTER|BACKUP`; `None` = derived from the priority.
    pub initial_master: Option<bool>,
    pub version: Version,
    pub advert_int: Duration,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub down_timer_adverts: u32,
    pub vips: Vec<Ipv4Addr>,
    /// VRRPv2 `authentication { auth_type PASS }`.
    pub auth: Auth,
    /// Unicast peers are configured: no TTL check, unicast packets expected.
    pub unicast: bool,
    pub garp_master_delay: Duration,
    pub garp_master_repeat: u32,
    pub garp_master_refresh: Duration,
    pub garp_master_refresh_repeat: u32,
    pub garp_lower_prio_delay: Duration,
    pub garp_lower_prio_repeat: u32,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// track_interface / track_script entries. keepalived also tracks the instance's own
    /// interface (weight 0) unless `dont_track_primary`: add it here to get FAULT on carrier loss.
    pub tracks: Vec<TrackConfig>,
}

impl InstanceConfig {
    /// `priority`, else keepalived's from `state`: 255 for MASTER, 100 otherwise.
    pub fn base_priority(&self) -> u8 {
        self.priority.unwrap_or(if self.initial_master == Some(true) {
            PRIO_OWNER
        } else {
            100
        })
    }

    /// keepalived's defaults (`alloc_vrrp`, `core/global_data.c`): v2, advert 1 s, preempt,
    /// 3 down-timer adverts, 5 GARPs now and 5 more after 5 s, no refresh.
    pub fn new(name: &str, interface: &str, address: Ipv4Addr, vrid: u8, vips: Vec<Ipv4Addr>) -> InstanceConfig {
        InstanceConfig {
            name: name.to_string(),
            interface: interface.to_string(),
            address,
            vrid,
            priority: None,
            initial_master: None,
            version: Version::V2,
            advert_int: Duration::from_secs(1),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            down_timer_adverts: 3,
            vips,
            auth: Auth::None,
            unicast: false,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: 1,
            garp_lower_prio_delay: Duration::from_secs(5),
            garp_lower_prio_repeat: 5,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            tracks: Vec::new(),
        }
    }
}

/// Something the instance does; the caller carries it out (sockets, addresses, scripts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VrrpAction {
    /// A line keepalived logs (with `-D`) at this point, verbatim.
    Log(String),
    /// A state change, as notify scripts and the FIFO see it: `INSTANCE "VI_1" MASTER 150`.
    Transition {
        from: State,
        to: State,
        priority: u8,
        fifo: String,
    },
    /// Send this advert (to the multicast group, or to each unicast peer).
    SendAdvert(Advert),
    AddVips(Vec<Ipv4Addr>),
    RemoveVips(Vec<Ipv4Addr>),
    /// One gratuitous ARP (broadcast request, sender = target = `vip`) on the instance's interface.
    Garp {
        vip: Ipv4Addr,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpRecord {
    pub at: Duration,
    pub action: VrrpAction,
}

/// What an instance's `vrrp_sync_group` says at the moment of an event (vrrp_sync.c): the
/// group runs each member with the view of the others it has then.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SyncView {
    /// The group is MASTER already (`GROUP_STATE(sgroup) == VRRP_STATE_MAST`).
    pub group_master: bool,
    /// Every other member wants MASTER (`vrrp_sync_can_goto_master`).
    pub others_want_master: bool,
    /// Another member is down by its own tracks (`sgroup->num_member_fault`).
    pub others_faulted: bool,
}

pub struct Instance {
    cfg: InstanceConfig,
    /// In a sync group: the group's view, set before each event.
    sync: Option<SyncView>,
    state: State,
    /// The state the last transition reported.
    notified: State,
    wantstate: State,
    base_priority: u8,
    effective_priority: u8,
    total_priority: i64,
    master_adver_int: Duration,
    ms_down_timer: Duration,
    /// The one timer: down timer (BACKUP) or next advert (MASTER); none in FAULT/INIT.
    sands: Option<Duration>,
    preempt_time: Option<Duration>,
    vipset: bool,
    num_fault: u32,
    track_ok: Vec<bool>,
    garp_refresh_at: Option<Duration>,
    /// Delayed GARP bursts (`vrrp_gratuitous_arp_thread`): when, and how many per VIP.
    delayed_garps: Vec<(Duration, u32)>,
    master: Option<(Ipv4Addr, u8)>,
    out: Vec<VrrpAction>,
}

impl Instance {
    /// Applies `vrrp_complete_instance`'s fix-ups; returns keepalived's warnings with the instance.
    pub fn new(mut cfg: InstanceConfig) -> (Instance, Vec<String>) {
        let mut warnings = Vec::new();
        let name = cfg.name.clone();
        let base_priority = cfg.base_priority();
        let wants_master = cfg.initial_master.unwrap_or(base_priority == PRIO_OWNER);
        if cfg.version == Version::V3 && cfg.auth != Auth::None {
            warnings.push(format!(
                "({name}) VRRP version 3 does not support authentication. Ignoring."
            ));
            cfg.auth = Auth::None;
        }
        if base_priority == PRIO_OWNER && cfg.nopreempt {
            warnings.push(format!(
                "({name}) nopreempt is incompatible with priority 255. resetting nopreempt"
            ));
            cfg.nopreempt = false;
        }
        if wants_master {
            if cfg.nopreempt {
                warnings.push(format!(
                    "({name}) Warning - nopreempt will not work with initial state MASTER - clearing"
                ));
                cfg.nopreempt = false;
            }
            if !cfg.preempt_delay.is_zero() {
                warnings.push(format!(
                    "({name}) Warning - preempt delay will not work with initial state MASTER - clearing"
                ));
                cfg.preempt_delay = Duration::ZERO;
            }
        }
        if !cfg.preempt_delay.is_zero() && cfg.nopreempt {
            warnings.push(format!(
                "({name}) preempt_delay is incompatible with nopreempt mode - resetting"
            ));
            cfg.preempt_delay = Duration::ZERO;
        }
        let (advert_int, warning) = normalise_advert_int(&name, cfg.version, cfg.advert_int);
        warnings.extend(warning);
        cfg.advert_int = advert_int;
        let track_ok = cfg.tracks.iter().map(|t| t.ok_at_start).collect();
        let instance = Instance {
            state: State::Init,
            notified: State::Init,
            wantstate: if wants_master { State::Master } else { State::Backup },
            base_priority,
            effective_priority: base_priority,
            total_priority: i64::from(base_priority),
            master_adver_int: advert_int,
            ms_down_timer: Duration::ZERO,
            sands: None,
            preempt_time: None,
            vipset: false,
            num_fault: 0,
            track_ok,
            garp_refresh_at: None,
            delayed_garps: Vec::new(),
            master: None,
            out: Vec::new(),
            sync: None,
            cfg,
        };
        (instance, warnings)
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub(super) fn wantstate(&self) -> State {
        self.wantstate
    }

    /// Down by its own tracks (not by its sync group).
    pub(super) fn faulted(&self) -> bool {
        self.num_fault > 0
    }

    /// Whether its tracks put it in FAULT at start.
    pub(super) fn faults_at_start(&self) -> bool {
        self.cfg.tracks.iter().zip(&self.track_ok).any(|(t, ok)| t.faults(*ok))
    }

    pub(super) fn set_sync(&mut self, view: Option<SyncView>) {
        self.sync = view;
    }

    /// `vrrp_complete_init`: a sync group that cannot start all MASTER starts all BACKUP.
    pub(super) fn want_backup(&mut self) {
        self.wantstate = State::Backup;
    }

    pub(super) fn log_line(&mut self, line: String) {
        self.log(line);
    }

    pub(super) fn take_records(&mut self, at: Duration) -> Vec<VrrpRecord> {
        self.flush(at)
    }

    /// `vrrp_sync_master` on a member: it wants MASTER and goes there.
    pub(super) fn sync_to_master(&mut self, now: Duration) {
        self.wantstate = State::Master;
        self.goto_master(now);
    }

    /// `vrrp_sync_backup` on a member.
    pub(super) fn sync_to_backup(&mut self, now: Duration) {
        self.wantstate = State::Backup;
        match self.state {
            State::Fault | State::Init => self.leave_fault(now),
            _ => self.leave_master(now, false),
        }
    }

    /// `vrrp_sync_fault` on a member: a master leaves (no priority-0 advert of its own: the
    /// leave sends one), a backup is put in FAULT ("a bit of a bodge" in vrrp_sync.c).
    pub(super) fn sync_to_fault(&mut self, now: Duration) {
        self.wantstate = State::Fault;
        match self.state {
            State::Master => self.leave_master(now, false),
            State::Backup | State::Init => {
                self.state = State::Fault;
                self.leave_fault(now);
            }
            State::Fault | State::Stop => {}
        }
    }

    /// `vrrp_sync_can_goto_master`: a member held back re-arms its down timer.
    fn sync_can_goto_master(&mut self, now: Duration) -> bool {
        match self.sync {
            None => true,
            Some(v) if v.group_master || v.others_want_master => true,
            Some(_) => {
                self.ms_down_timer = self.down_interval();
                self.init_sands(now);
                false
            }
        }
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    pub fn holds_vips(&self) -> bool {
        self.vipset
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// The master this backup last accepted an advert from, and its priority.
    pub fn known_master(&self) -> Option<(Ipv4Addr, u8)> {
        self.master
    }

    /// The next time [`Instance::on_timer`] has something to do.
    pub fn next_timer(&self) -> Option<Duration> {
        self.delayed_garps.iter().map(|g| g.0).chain(self.sands).min()
    }

    fn log(&mut self, line: String) {
        self.out.push(VrrpAction::Log(line));
    }

    fn flush(&mut self, at: Duration) -> Vec<VrrpRecord> {
        self.out.drain(..).map(|action| VrrpRecord { at, action }).collect()
    }

    fn down_interval(&self) -> Duration {
        master_down_interval(
            self.cfg.version,
            self.effective_priority,
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    fn skew(&self) -> Duration {
        skew_time(self.cfg.version, self.effective_priority, self.master_adver_int)
    }

    fn set_state(&mut self, to: State) {
        // keepalived moves `state` before it notifies (goto_master): report from the last notice.
        let from = std::mem::replace(&mut self.notified, to);
        self.state = to;
        let priority = self.effective_priority;
        let fifo = format!("INSTANCE \"{}\" {} {priority}", self.cfg.name, to.word());
        self.out.push(VrrpAction::Transition {
            from,
            to,
            priority,
            fifo,
        });
    }

    /// `vrrp_init_instance_sands`.
    fn init_sands(&mut self, now: Duration) {
        self.sands = match self.state {
            State::Master => Some(now + self.cfg.advert_int),
            State::Backup => Some(now + self.ms_down_timer),
            State::Fault | State::Init | State::Stop => None,
        };
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            advert_int: self.cfg.advert_int,
            addrs: self.cfg.vips.clone(),
            auth: self.cfg.auth,
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = self.advert(priority);
        self.out.push(VrrpAction::SendAdvert(advert));
    }

    /// `vrrp_send_link_update`: `repeat` GARPs per VIP, only while the VIPs are set.
    fn send_garps(&mut self, repeat: u32) {
        if !self.vipset {
            return;
        }
        let (name, interface) = (self.cfg.name.clone(), self.cfg.interface.clone());
        for round in 0..repeat {
            for vip in self.cfg.vips.clone() {
                if round == 0 {
                    self.log(format!(
                        "({name}) Sending/queueing gratuitous ARPs on {interface} for {vip}"
                    ));
                }
                self.log(format!("Sending gratuitous ARP on {interface} for {vip}"));
                self.out.push(VrrpAction::Garp { vip });
            }
        }
    }

    /// `vrrp_init_state` at startup.
    pub fn start(&mut self, now: Duration) -> Vec<VrrpRecord> {
        let name = self.cfg.name.clone();
        // A (re)started instance first removes any VIPs left behind.
        self.log(format!("({name}) removing VIPs."));
        self.out.push(VrrpAction::RemoveVips(self.cfg.vips.clone()));
        for (track, ok) in self.cfg.tracks.iter().zip(&self.track_ok) {
            if track.faults(*ok) {
                self.num_fault += 1;
            } else if self.base_priority != PRIO_OWNER {
                self.total_priority += track.contribution(*ok);
            }
        }
        if self.base_priority != PRIO_OWNER {
            self.effective_priority = clamp_priority(self.total_priority);
        }
        let up = self.num_fault == 0;
        if up && self.wantstate == State::Master && self.base_priority == PRIO_OWNER {
            // "The simplest way to become master is to timeout from the backup state very quickly."
            self.state = State::Backup;
            self.ms_down_timer = Duration::from_micros(1);
        } else {
            self.ms_down_timer = self.down_interval();
            if up {
                self.log(format!("({name}) Entering BACKUP STATE (init)"));
                self.set_state(State::Backup);
            } else {
                self.log(format!("({name}) Entering FAULT STATE (init)"));
                self.set_state(State::Fault);
            }
        }
        self.init_sands(now);
        self.flush(now)
    }

    /// Runs every timer due at `now`: delayed GARP bursts, the down timer, the advert timer.
    pub fn on_timer(&mut self, now: Duration) -> Vec<VrrpRecord> {
        let mut due = Vec::new();
        self.delayed_garps.retain(|&(at, repeat)| {
            if at <= now {
                due.push(repeat);
            }
            at > now
        });
        for repeat in due {
            self.send_garps(repeat);
        }
        if self.sands.is_some_and(|at| at <= now) {
            match self.state {
                State::Backup => {
                    self.log(format!("({}) Receive advertisement timeout", self.cfg.name));
                    self.wantstate = State::Master;
                    self.goto_master(now);
                }
                State::Master => self.master_tx(now),
                State::Init | State::Fault | State::Stop => {}
            }
            self.init_sands(now);
        }
        self.flush(now)
    }

    /// `vrrp_state_goto_master`.
    fn goto_master(&mut self, now: Duration) {
        if !self.sync_can_goto_master(now) {
            self.wantstate = State::Master;
            return;
        }
        self.state = State::Master;
        self.init_sands(now);
        self.master_tx(now);
    }

    /// `vrrp_state_master_tx`: the advert goes first, so the old master drops the VIPs
    /// before our GARPs.
    fn master_tx(&mut self, now: Duration) {
        self.send_advert(self.effective_priority);
        if !self.vipset {
            let name = self.cfg.name.clone();
            self.log(format!("({name}) Entering MASTER STATE"));
            self.become_master(now);
            if !self.cfg.garp_master_delay.is_zero() {
                self.delayed_garps
                    .push((now + self.cfg.garp_master_delay, self.cfg.garp_master_repeat));
            }
        } else if self.garp_refresh_at.is_some_and(|at| now > at) {
            self.send_garps(self.cfg.garp_master_refresh_repeat);
            self.garp_refresh_at = Some(now + self.cfg.garp_master_refresh);
        }
    }

    /// `vrrp_state_become_master`.
    fn become_master(&mut self, now: Duration) {
        let name = self.cfg.name.clone();
        if self.cfg.version == Version::V3 && self.master_adver_int != self.cfg.advert_int {
            self.log(format!(
                "({name}) changing advert interval from {}ms to locally configured {}ms",
                self.master_adver_int.as_millis(),
                self.cfg.advert_int.as_millis()
            ));
            self.master_adver_int = self.cfg.advert_int;
        }
        self.log(format!("({name}) setting VIPs."));
        self.out.push(VrrpAction::AddVips(self.cfg.vips.clone()));
        self.vipset = true;
        self.send_garps(self.cfg.garp_master_repeat);
        if !self.cfg.garp_master_refresh.is_zero() {
            self.garp_refresh_at = Some(now + self.cfg.garp_master_refresh);
        }
        self.set_state(State::Master);
    }

    /// `vrrp_restore_interface`: optionally a priority-0 advert, then the VIPs go.
    fn restore_interface(&mut self, send_stop_advert: bool) {
        let name = self.cfg.name.clone();
        if send_stop_advert {
            self.send_advert(0);
            self.log(format!("({name}) sent 0 priority"));
        }
        if self.vipset {
            self.log(format!("({name}) removing VIPs."));
            self.out.push(VrrpAction::RemoveVips(self.cfg.vips.clone()));
            self.vipset = false;
        }
    }

    /// `vrrp_state_leave_master`.
    fn leave_master(&mut self, now: Duration, send_stop_advert: bool) {
        let name = self.cfg.name.clone();
        match self.wantstate {
            State::Backup => {
                self.log(format!("({name}) Entering BACKUP STATE"));
                self.preempt_time = None;
            }
            State::Fault => {
                self.log(format!("({name}) Entering FAULT STATE"));
                self.send_advert(0);
            }
            other => {
                self.log(format!(
                    "({name}) vrrp_state_leave_master called with invalid wantstate {}",
                    other.word()
                ));
                return;
            }
        }
        self.restore_interface(send_stop_advert);
        self.set_state(self.wantstate);
        self.ms_down_timer = self.down_interval();
        self.init_sands(now);
    }

    /// `vrrp_state_leave_fault` (also used to enter FAULT from BACKUP).
    fn leave_fault(&mut self, now: Duration) {
        if self.wantstate == State::Master {
            self.goto_master(now);
        } else {
            if self.state != self.wantstate {
                let word = if self.wantstate == State::Backup {
                    "BACKUP"
                } else {
                    "FAULT"
                };
                self.log(format!("({}) Entering {word} STATE", self.cfg.name));
            }
            if self.wantstate == State::Fault && self.state == State::Master {
                self.send_advert(0);
                self.restore_interface(false);
            }
            if self.state != self.wantstate || self.notified != self.wantstate {
                self.set_state(self.wantstate);
            }
            if self.state == State::Backup {
                self.preempt_time = None;
            }
        }
        self.master_adver_int = self.cfg.advert_int;
        self.ms_down_timer = self.down_interval();
        self.init_sands(now);
    }

    /// The receive checks of `vrrp_check_packet` that depend on the instance; `false` = drop.
    fn check_packet(&mut self, rx: &Received) -> bool {
        let name = self.cfg.name.clone();
        let advert = &rx.advert;
        let reject = if !self.cfg.unicast && rx.ttl != VRRP_TTL {
            Some(format!(
                "({name}) invalid TTL/HL. Received {} and expect {VRRP_TTL}",
                rx.ttl
            ))
        } else if advert.version != self.cfg.version {
            let (got, want) = (advert.version.number(), self.cfg.version.number());
            Some(format!("({name}) wrong version. Received {got} and expect {want}"))
        } else if self.cfg.version == Version::V2 && auth_type(&advert.auth) != auth_type(&self.cfg.auth) {
            let (got, want) = (auth_type(&advert.auth), auth_type(&self.cfg.auth));
            Some(format!("({name}) received a {got} auth, expecting {want}!"))
        } else if self.cfg.version == Version::V2 && advert.auth != self.cfg.auth {
            Some(format!("({name}) received an invalid passwd!"))
        } else if self.cfg.version == Version::V2 && advert.advert_int != self.cfg.advert_int {
            // "to prevent concurent VRID running => multiple master in 1 VRID"
            Some(format!(
                "({name}) advertisement interval mismatch mine={} sec rcv'd={} sec",
                self.cfg.advert_int.as_secs(),
                advert.advert_int.as_secs()
            ))
        } else if advert.addrs.len() != self.cfg.vips.len() {
            Some(format!(
                "({name}) received an unexpected ip number count {}, expected {}!",
                advert.addrs.len(),
                self.cfg.vips.len()
            ))
        } else if rx.dst.is_multicast() == self.cfg.unicast {
            let (want, got) = if self.cfg.unicast {
                ("un", "mult")
            } else {
                ("mult", "un")
            };
            Some(format!(
                "({name}) Expected {want}icast packet but received {got}icast packet"
            ))
        } else {
            self.cfg.vips.iter().find(|vip| !advert.addrs.contains(vip)).map(|vip| {
                format!(
                    "({name}) ip address associated with VRID {} not present in MASTER advert: {vip}",
                    self.cfg.vrid
                )
            })
        };
        match reject {
            Some(line) => {
                self.log(line);
                false
            }
            None => true,
        }
    }

    /// An advert received at `now` (already parsed and checksum-verified by the codec).
    /// Adverts for another VRID are ignored, as keepalived's dispatcher does.
    pub fn on_advert(&mut self, now: Duration, rx: &Received) -> Vec<VrrpRecord> {
        if rx.advert.vrid != self.cfg.vrid || matches!(self.state, State::Fault | State::Init | State::Stop) {
            return Vec::new();
        }
        match self.state {
            State::Backup => {
                self.backup_rx(now, rx);
                self.init_sands(now);
            }
            State::Master => {
                if self.master_rx(now, rx) {
                    self.leave_master(now, false);
                }
                // "If we have sent an advert, reset the timer" - done for every received advert.
                if self.state != State::Master || !self.cfg.lower_prio_no_advert {
                    self.init_sands(now);
                }
            }
            State::Init | State::Fault | State::Stop => {}
        }
        self.flush(now)
    }

    /// `vrrp_state_backup`.
    fn backup_rx(&mut self, now: Duration, rx: &Received) {
        let name = self.cfg.name.clone();
        let priority = rx.advert.priority;
        let preempt_delay = self.cfg.preempt_delay;
        let mut ignore = false;
        if !self.check_packet(rx) {
            ignore = true;
        } else if priority == 0 {
            self.log(format!("({name}) Backup received priority 0 advertisement"));
            self.ms_down_timer = self.skew();
        } else if self.cfg.nopreempt
            || priority >= self.effective_priority
            || (!preempt_delay.is_zero() && self.preempt_time.is_none_or(|at| at > now))
        {
            if self.cfg.version == Version::V3 && self.master_adver_int != rx.advert.advert_int {
                self.log(format!(
                    "({name}) advertisement interval updated from {}ms to {}ms by master",
                    self.master_adver_int.as_millis(),
                    rx.advert.advert_int.as_millis()
                ));
                self.master_adver_int = rx.advert.advert_int;
            }
            self.ms_down_timer = self.down_interval();
            self.master = Some((rx.src, priority));
            if !preempt_delay.is_zero() {
                if priority >= self.effective_priority {
                    if self.preempt_time.take().is_some() {
                        self.log(format!("({name}) stop preempt delay"));
                    }
                } else if self.preempt_time.is_none() {
                    self.log(format!(
                        "({name}) start preempt delay ({}.{:06})",
                        preempt_delay.as_secs(),
                        preempt_delay.subsec_micros()
                    ));
                    self.preempt_time = Some(now + preempt_delay);
                }
            }
            self.wantstate = State::Backup;
        } else {
            self.log(format!(
                "({name}) received lower priority ({priority}) advert from {} - discarding",
                rx.src
            ));
            ignore = true;
        }
        if ignore {
            // The down timer keeps running from where it was.
            self.ms_down_timer = self.sands.map_or(Duration::ZERO, |at| at.saturating_sub(now));
        }
    }

    /// `vrrp_state_master_rx`: true when this master must step down to BACKUP.
    fn master_rx(&mut self, now: Duration, rx: &Received) -> bool {
        if !self.check_packet(rx) {
            return false;
        }
        let name = self.cfg.name.clone();
        let priority = rx.advert.priority;
        let ours = self.effective_priority;
        let addr_cmp = rx.src.cmp(&self.cfg.address);
        let higher = priority > ours || (priority == ours && addr_cmp.is_gt());
        if priority == 0 || (self.cfg.higher_prio_send_advert && higher) {
            self.send_advert(ours);
            if priority == 0 {
                self.log(format!("({name}) Master received priority 0 message"));
                return false;
            }
        }
        if priority == ours {
            if addr_cmp.is_eq() {
                self.log(format!(
                    "({name}) WARNING - equal priority advert received from remote host with our IP address."
                ));
            } else if ours == PRIO_OWNER {
                self.log(format!("({name}) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority"));
                self.effective_priority = PRIO_OWNER - 1;
                self.base_priority = PRIO_OWNER - 1;
            }
        }
        let ours = self.effective_priority;
        if priority < ours || (priority == ours && addr_cmp.is_lt()) {
            let election = if self.cfg.lower_prio_no_advert {
                ""
            } else {
                ", forcing new election"
            };
            self.log(format!(
                "({name}) Received advert from {} with lower priority {priority}, ours {ours}{election}",
                rx.src
            ));
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(ours);
            }
            if self.cfg.garp_lower_prio_repeat > 0 {
                self.send_garps(self.cfg.garp_lower_prio_repeat);
                if !self.cfg.garp_lower_prio_delay.is_zero() {
                    self.delayed_garps
                        .push((now + self.cfg.garp_lower_prio_delay, self.cfg.garp_lower_prio_repeat));
                }
            }
            return false;
        }
        if priority > ours || (priority == ours && addr_cmp.is_gt()) {
            if priority > ours {
                self.log(format!(
                    "({name}) Master received advert from {} with higher priority {priority}, ours {ours}",
                    rx.src
                ));
            } else {
                self.log(format!(
                    "({name}) Master received advert from {} with same priority {priority} but higher IP address than ours",
                    rx.src
                ));
            }
            if self.cfg.version == Version::V3 && self.master_adver_int != rx.advert.advert_int {
                self.log(format!(
                    "({name}) advertisement interval updated from {}ms to {}ms by master",
                    self.master_adver_int.as_millis(),
                    rx.advert.advert_int.as_millis()
                ));
                self.master_adver_int = rx.advert.advert_int;
            }
            self.ms_down_timer = self.down_interval();
            self.master = Some((rx.src, priority));
            self.wantstate = State::Backup;
            return true;
        }
        false
    }

    /// A tracked interface or script changed (`ok` = up / script succeeding).
    pub fn on_track(&mut self, now: Duration, index: usize, ok: bool) -> Vec<VrrpRecord> {
        let Some(track) = self.cfg.tracks.get(index).cloned() else {
            return Vec::new();
        };
        if self.state == State::Stop || self.track_ok[index] == ok {
            return Vec::new();
        }
        self.track_ok[index] = ok;
        if track.weight == 0 {
            if track.faults(ok) {
                self.down_instance(now);
            } else {
                self.try_up_instance(now);
            }
        } else if self.base_priority != PRIO_OWNER {
            self.total_priority += track.contribution(ok) - track.contribution(!ok);
            self.set_effective_priority();
        }
        self.flush(now)
    }

    /// `down_instance`.
    fn down_instance(&mut self, now: Duration) {
        self.num_fault += 1;
        if self.num_fault == 1 || self.state == State::Init {
            self.wantstate = State::Fault;
            if self.state == State::Master {
                self.leave_master(now, true);
            } else {
                self.leave_fault(now);
            }
        }
    }

    /// `try_up_instance`: the last fault cleared goes to BACKUP with a full down timer.
    fn try_up_instance(&mut self, now: Duration) {
        self.num_fault = self.num_fault.saturating_sub(1);
        if self.num_fault > 0 {
            return;
        }
        self.wantstate = State::Backup;
        self.master_adver_int = self.cfg.advert_int;
        self.ms_down_timer = self.down_interval();
        // A sync group comes up only when its last member does (vrrp_scheduler.c).
        if self.sync.is_some_and(|v| v.others_faulted) {
            return;
        }
        self.leave_fault(now);
    }

    /// `vrrp_set_effective_priority`: a BACKUP's running down timer moves by the change.
    fn set_effective_priority(&mut self) {
        let new = clamp_priority(self.total_priority);
        if new == self.effective_priority {
            return;
        }
        let name = self.cfg.name.clone();
        self.log(format!(
            "({name}) Changing effective priority from {} to {new}",
            self.effective_priority
        ));
        self.effective_priority = new;
        let old_down_timer = self.ms_down_timer;
        self.ms_down_timer = self.down_interval();
        if let (State::Backup, Some(at)) = (self.state, self.sands) {
            self.sands = Some(if self.ms_down_timer >= old_down_timer {
                at + (self.ms_down_timer - old_down_timer)
            } else {
                at.saturating_sub(old_down_timer - self.ms_down_timer)
            });
        }
    }

    /// A graceful stop (SIGTERM): a master sends priority 0 and drops its VIPs, then STOP.
    pub fn shutdown(&mut self, now: Duration) -> Vec<VrrpRecord> {
        if self.state == State::Master {
            self.restore_interface(true);
        }
        if self.state != State::Stop {
            self.set_state(State::Stop);
        }
        self.sands = None;
        self.delayed_garps.clear();
        self.flush(now)
    }
}

fn auth_type(auth: &Auth) -> u8 {
    match auth {
        Auth::None => 0,
        Auth::Pass(_) => 1,
    }
}
