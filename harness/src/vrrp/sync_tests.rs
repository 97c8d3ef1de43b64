//! A LVS-NAT director pair on two virtual LANs: each director runs the VIP's instance on
//! network 0 and the real servers' gateway on network 1, bound or not by a sync group. Adverts
//! go through the codec to the same member of every other running director.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::vrrp::*;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 254);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

/// 3 × 1 s + (256 − p)/256 s, truncated to µs.
const DOWN_150: u64 = 3_414_062;
const DOWN_100: u64 = 3_609_375;
const SKEW_100: u64 = 609_375;

fn members(host: u8, priority: u8) -> Vec<InstanceConfig> {
    let mut vip = InstanceConfig::new("VI_VIP", "eth0", Ipv4Addr::new(192, 0, 2, host), 51, vec![VIP]);
    let mut gw = InstanceConfig::new("VI_GW", "eth1", Ipv4Addr::new(10, 0, 1, host), 52, vec![GW]);
    for (i, cfg) in [&mut vip, &mut gw].into_iter().enumerate() {
        cfg.priority = Some(priority);
        cfg.initial_master = Some(priority == 150);
        // The own interface, tracked with weight 0 as keepalived does.
        cfg.tracks = vec![TrackConfig::new(if i == 0 { "eth0" } else { "eth1" }, 0)];
    }
    vec![vip, gw]
}

struct Director {
    group: Option<Group>,
    records: Vec<MemberRecord>,
    /// Adverts on these networks are dropped in and out.
    blocked: Vec<usize>,
}

struct Lan {
    directors: Vec<Director>,
    sync: Option<&'static str>,
    hosts: Vec<u8>,
    ip_id: u16,
}

impl Lan {
    /// lvs1 (priority 150, state MASTER) and lvs2 (100), both started at 0.
    fn pair(sync: Option<&'static str>) -> Lan {
        let mut lan = Lan {
            directors: Vec::new(),
            sync,
            hosts: vec![11, 12],
            ip_id: 0,
        };
        for _ in 0..2 {
            lan.directors.push(Director {
                group: None,
                records: Vec::new(),
                blocked: Vec::new(),
            });
        }
        lan.start(0, Duration::ZERO);
        lan.start(1, Duration::ZERO);
        lan
    }

    fn start(&mut self, d: usize, now: Duration) {
        let priority = if d == 0 { 150 } else { 100 };
        let (mut group, _) = Group::new(self.sync, members(self.hosts[d], priority));
        let records = group.start(now);
        self.directors[d].group = Some(group);
        self.handle(d, records);
    }

    fn kill(&mut self, d: usize) {
        self.directors[d].group = None;
    }

    fn track(&mut self, d: usize, member: usize, ok: bool, now: Duration) {
        let records = self.group_mut(d).on_track(now, member, 0, ok);
        self.handle(d, records);
    }

    fn group(&self, d: usize) -> &Group {
        self.directors[d].group.as_ref().unwrap()
    }

    fn group_mut(&mut self, d: usize) -> &mut Group {
        self.directors[d].group.as_mut().unwrap()
    }

    fn states(&self, d: usize) -> Vec<State> {
        self.group(d).members().iter().map(Instance::state).collect()
    }

    fn handle(&mut self, from: usize, records: Vec<MemberRecord>) {
        let mut queue = vec![(from, records)];
        for _ in 0..1000 {
            let Some((sender, records)) = queue.pop() else { return };
            for (member, record) in &records {
                let VrrpAction::SendAdvert(advert) = &record.action else {
                    continue;
                };
                let src = self.group(sender).member(*member).config().address;
                self.ip_id = self.ip_id.wrapping_add(1);
                let packet = emit_ipv4(advert, src, MULTICAST_GROUP, self.ip_id);
                if self.directors[sender].blocked.contains(member) {
                    continue;
                }
                for target in 0..self.directors.len() {
                    if target == sender || self.directors[target].blocked.contains(member) {
                        continue;
                    }
                    let Some(group) = self.directors[target].group.as_mut() else {
                        continue;
                    };
                    let received = parse_ipv4(&packet).expect("our own packets parse");
                    let answer = group.on_advert(record.at, *member, &received);
                    queue.insert(0, (target, answer));
                }
            }
            self.directors[sender].records.extend(records);
        }
        panic!("advert storm");
    }

    fn run_until(&mut self, end: Duration) {
        for _ in 0..100_000 {
            let next = self
                .directors
                .iter()
                .enumerate()
                .filter_map(|(i, d)| d.group.as_ref().and_then(Group::next_timer).map(|t| (t, i)))
                .min();
            let Some((at, d)) = next.filter(|(at, _)| *at <= end) else {
                return;
            };
            let records = self.group_mut(d).on_timer(at);
            self.handle(d, records);
        }
        panic!("timers do not advance");
    }

    /// When member `member` of `d` entered `state`.
    fn entered(&self, d: usize, member: usize, state: State) -> Vec<Duration> {
        self.directors[d]
            .records
            .iter()
            .filter_map(|(m, r)| match r.action {
                VrrpAction::Transition { to, .. } if *m == member && to == state => Some(r.at),
                _ => None,
            })
            .collect()
    }

    fn actions(&self, d: usize, member: usize, pick: impl Fn(&VrrpAction) -> bool) -> Vec<Duration> {
        self.directors[d]
            .records
            .iter()
            .filter(|(m, r)| *m == member && pick(&r.action))
            .map(|(_, r)| r.at)
            .collect()
    }

    fn logged(&self, d: usize, line: &str) -> usize {
        self.directors[d]
            .records
            .iter()
            .filter(|(_, r)| r.action == VrrpAction::Log(line.to_string()))
            .count()
    }
}

#[test]
fn the_pair_elects_one_master_for_both_addresses() {
    let mut lan = Lan::pair(Some("VG_1"));
    lan.run_until(secs(10.0));
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert_eq!(lan.group(0).state(), State::Master);
    // The first member to time out waits for the other (same down timer: the same instant).
    assert_eq!(lan.entered(0, 0, State::Master), vec![us(DOWN_150)]);
    assert_eq!(lan.entered(0, 1, State::Master), vec![us(DOWN_150)]);
    assert_eq!(lan.logged(0, "VRRP_Group(VG_1) Syncing instances to MASTER state"), 1);
    let adds = |m: usize| {
        lan.actions(
            0,
            m,
            |a| matches!(a, VrrpAction::AddVips(v) if v[0] == if m == 0 { VIP } else { GW }),
        )
    };
    assert_eq!((adds(0), adds(1)), (vec![us(DOWN_150)], vec![us(DOWN_150)]));
}

#[test]
fn a_killed_master_hands_both_addresses_over_with_their_garps() {
    let mut lan = Lan::pair(Some("VG_1"));
    lan.run_until(secs(10.0));
    let last_advert = lan
        .actions(0, 1, |a| matches!(a, VrrpAction::SendAdvert(_)))
        .into_iter()
        .filter(|t| *t <= secs(10.0))
        .max()
        .unwrap();
    lan.kill(0);
    lan.run_until(secs(20.0));
    let takeover = last_advert + us(DOWN_100);
    assert_eq!(lan.entered(1, 0, State::Master), vec![takeover]);
    assert_eq!(lan.entered(1, 1, State::Master), vec![takeover]);
    for (member, addr) in [(0, VIP), (1, GW)] {
        let garps = lan.actions(1, member, |a| *a == VrrpAction::Garp { vip: addr });
        assert_eq!(garps.first(), Some(&takeover), "member {member}");
        // 5 now and 5 after garp_master_delay.
        assert_eq!(garps.len(), 10, "member {member}");
    }
}

#[test]
fn the_gateway_link_down_moves_the_vip_too_and_its_return_takes_both_back() {
    let mut lan = Lan::pair(Some("VG_1"));
    lan.run_until(secs(10.0));
    lan.track(0, 1, false, secs(10.0));
    assert_eq!(lan.states(0), vec![State::Fault, State::Fault]);
    assert_eq!(lan.logged(0, "VRRP_Group(VG_1) Syncing instances to FAULT state"), 1);
    // Both members leave with a priority-0 advert and drop their address.
    for member in [0, 1] {
        let zero = lan.actions(
            0,
            member,
            |a| matches!(a, VrrpAction::SendAdvert(ad) if ad.priority == 0),
        );
        // The member that went down sends two (its leave, then its interface restore).
        assert!(
            !zero.is_empty() && zero.iter().all(|t| *t == secs(10.0)),
            "member {member}: {zero:?}"
        );
        assert_eq!(
            lan.actions(0, member, |a| matches!(a, VrrpAction::RemoveVips(_)))
                .last(),
            Some(&secs(10.0))
        );
    }
    lan.run_until(secs(12.0));
    // lvs2 takes both after its skew (priority-0 adverts on both networks).
    assert_eq!(lan.entered(1, 0, State::Master), vec![secs(10.0) + us(SKEW_100)]);
    assert_eq!(lan.entered(1, 1, State::Master), vec![secs(10.0) + us(SKEW_100)]);
    lan.track(0, 1, true, secs(12.0));
    assert_eq!(lan.states(0), vec![State::Backup, State::Backup]);
    lan.run_until(secs(20.0));
    // Preemption: lvs1 discards lvs2's lower adverts and times out on both.
    assert_eq!(lan.states(0), vec![State::Master, State::Master]);
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert_eq!(
        lan.entered(0, 0, State::Master).last(),
        lan.entered(0, 1, State::Master).last()
    );
}

#[test]
fn without_a_sync_group_the_gateway_moves_alone() {
    let mut lan = Lan::pair(None);
    lan.run_until(secs(10.0));
    lan.track(0, 1, false, secs(10.0));
    lan.run_until(secs(12.0));
    // Split: the VIP stays on lvs1, the real servers' gateway is lvs2's.
    assert_eq!(lan.states(0), vec![State::Master, State::Fault]);
    assert_eq!(lan.states(1), vec![State::Backup, State::Master]);
}

#[test]
fn a_member_that_times_out_waits_for_the_others() {
    let mut lan = Lan::pair(Some("VG_1"));
    lan.run_until(secs(10.0));
    // lvs2 hears lvs1 on the gateway network only: its VIP member wants MASTER, its gateway
    // member does not, so the group stays BACKUP (each timeout re-arms the down timer).
    lan.directors[1].blocked = vec![0];
    lan.run_until(secs(30.0));
    assert_eq!(lan.states(1), vec![State::Backup, State::Backup]);
    assert!(lan.entered(1, 0, State::Master).is_empty());
    assert_eq!(lan.group(1).member(0).wantstate(), State::Master);
    // The gateway member's adverts stop too: now the group goes MASTER, both members at once.
    lan.directors[1].blocked = vec![0, 1];
    lan.run_until(secs(40.0));
    assert_eq!(lan.states(1), vec![State::Master, State::Master]);
    assert_eq!(lan.entered(1, 0, State::Master), lan.entered(1, 1, State::Master));
}

#[test]
fn one_member_down_at_start_starts_the_group_in_fault() {
    let mut cfgs = members(11, 150);
    cfgs[1].tracks[0].ok_at_start = false;
    let (mut group, _) = Group::new(Some("VG_1"), cfgs);
    group.start(Duration::ZERO);
    assert_eq!(group.state(), State::Fault);
    assert!(group.members().iter().all(|m| m.state() == State::Fault));
    group.on_track(secs(1.0), 1, 0, true);
    assert!(group.members().iter().all(|m| m.state() == State::Backup));
}

#[test]
fn a_group_of_one_is_warned_about() {
    let (_, warnings) = Group::new(Some("G"), members(11, 150).into_iter().take(1).collect());
    assert!(warnings
        .iter()
        .any(|w| w.contains("Sync group G has only 1 virtual router(s)")));
}
