//! Failover scenarios on a virtual LAN: every advert goes through the codec
//! (emit_ipv4 → parse_ipv4) to every other running node at the instant it is
//! sent. Times are checked exactly against keepalived's µs arithmetic.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 10);

fn node_config(name: &str, host: u8, priority: u8, master: bool) -> InstanceConfig {
    let mut cfg = InstanceConfig::new(name, "eth0", Ipv4Addr::new(10, 99, 0, host), 51, vec![VIP]);
    cfg.priority = Some(priority);
    cfg.initial_master = Some(master);
    cfg.auth = Auth::pass("kalab");
    cfg
}

struct Node {
    config: InstanceConfig,
    instance: Option<Instance>,
    /// Adverts to and from this node are dropped (a firewall, a cut cable that keeps carrier).
    isolated: bool,
    records: Vec<VrrpRecord>,
}

struct Lan {
    nodes: Vec<Node>,
    ip_id: u16,
}

impl Lan {
    fn new(configs: Vec<InstanceConfig>) -> Lan {
        let nodes = configs
            .into_iter()
            .map(|config| Node {
                config,
                instance: None,
                isolated: false,
                records: Vec::new(),
            })
            .collect();
        Lan { nodes, ip_id: 0 }
    }

    fn start(&mut self, index: usize, now: Duration) {
        let (mut instance, _) = Instance::new(self.nodes[index].config.clone());
        let records = instance.start(now);
        self.nodes[index].instance = Some(instance);
        self.handle(index, records);
    }

    /// A power cut: no advert, no timer, nothing.
    fn kill(&mut self, index: usize) {
        self.nodes[index].instance = None;
    }

    fn stop(&mut self, index: usize, now: Duration) {
        let records = self.nodes[index].instance.as_mut().unwrap().shutdown(now);
        self.handle(index, records);
        self.nodes[index].instance = None;
    }

    fn track(&mut self, index: usize, track: usize, ok: bool, now: Duration) {
        let records = self.nodes[index].instance.as_mut().unwrap().on_track(now, track, ok);
        self.handle(index, records);
    }

    fn instance(&self, index: usize) -> &Instance {
        self.nodes[index].instance.as_ref().unwrap()
    }

    /// Keeps the records and delivers every advert they send, breadth first.
    fn handle(&mut self, from: usize, records: Vec<VrrpRecord>) {
        let mut queue = vec![(from, records)];
        for _ in 0..1000 {
            let Some((sender, records)) = queue.pop() else { return };
            for record in &records {
                let VrrpAction::SendAdvert(advert) = &record.action else {
                    continue;
                };
                let src = self.nodes[sender].config.address;
                self.ip_id = self.ip_id.wrapping_add(1);
                let packet = emit_ipv4(advert, src, MULTICAST_GROUP, self.ip_id);
                if self.nodes[sender].isolated {
                    continue;
                }
                for target in 0..self.nodes.len() {
                    if target == sender || self.nodes[target].isolated {
                        continue;
                    }
                    let Some(instance) = self.nodes[target].instance.as_mut() else {
                        continue;
                    };
                    let received = parse_ipv4(&packet).expect("our own packets parse");
                    let answer = instance.on_advert(record.at, &received);
                    queue.insert(0, (target, answer));
                }
            }
            self.nodes[sender].records.extend(records);
        }
        panic!("advert storm");
    }

    /// Runs every timer up to and including `end`, earliest first, lower index first on ties.
    fn run_until(&mut self, end: Duration) {
        for _ in 0..100_000 {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| n.instance.as_ref().and_then(|inst| inst.next_timer()).map(|t| (t, i)))
                .min();
            let Some((at, index)) = next.filter(|(at, _)| *at <= end) else {
                return;
            };
            let records = self.nodes[index].instance.as_mut().unwrap().on_timer(at);
            self.handle(index, records);
        }
        panic!("timers do not advance");
    }

    fn transitions(&self, index: usize) -> Vec<(Duration, State)> {
        self.nodes[index]
            .records
            .iter()
            .filter_map(|r| match r.action {
                VrrpAction::Transition { to, .. } => Some((r.at, to)),
                _ => None,
            })
            .collect()
    }

    fn became_master(&self, index: usize) -> Vec<Duration> {
        self.transitions(index)
            .into_iter()
            .filter(|(_, s)| *s == State::Master)
            .map(|(t, _)| t)
            .collect()
    }

    fn logged(&self, index: usize, line: &str) -> Vec<Duration> {
        self.nodes[index]
            .records
            .iter()
            .filter(|r| r.action == VrrpAction::Log(line.to_string()))
            .map(|r| r.at)
            .collect()
    }

    fn garps(&self, index: usize) -> Vec<Duration> {
        self.nodes[index]
            .records
            .iter()
            .filter(|r| r.action == VrrpAction::Garp { vip: VIP })
            .map(|r| r.at)
            .collect()
    }

    fn adverts_sent(&self, index: usize) -> Vec<(Duration, u8)> {
        self.nodes[index]
            .records
            .iter()
            .filter_map(|r| match &r.action {
                VrrpAction::SendAdvert(a) => Some((r.at, a.priority)),
                _ => None,
            })
            .collect()
    }
}

/// d1 "state MASTER" priority 150, d2 BACKUP 100, advert 1 s, v2 (the reference's EXP-1 pair).
fn pair() -> Lan {
    let mut lan = Lan::new(vec![
        node_config("VI_1", 11, 150, true),
        node_config("VI_1", 12, 100, false),
    ]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan
}

/// 3 × 1 s + (256 − 150)/256 s, truncated to µs.
const DOWN_150: u64 = 3_414_062;
const DOWN_100: u64 = 3_609_375;
const SKEW_100: u64 = 609_375;

#[test]
fn cold_start_elects_the_higher_priority_after_its_down_interval() {
    let mut lan = pair();
    lan.run_until(secs(9.0));
    assert_eq!(
        lan.logged(0, "(VI_1) Entering BACKUP STATE (init)"),
        vec![Duration::ZERO]
    );
    assert_eq!(lan.became_master(0), vec![us(DOWN_150)]);
    assert!(lan.became_master(1).is_empty());
    assert_eq!(lan.instance(1).state(), State::Backup);
    assert_eq!(
        lan.instance(1).known_master(),
        Some((Ipv4Addr::new(10, 99, 0, 11), 150))
    );
    // 5 GARPs at once, 5 more garp_master_delay (5 s) later.
    let garps = lan.garps(0);
    assert_eq!(garps.len(), 10);
    assert!(garps[..5].iter().all(|t| *t == us(DOWN_150)) && garps[5..].iter().all(|t| *t == us(DOWN_150 + 5_000_000)));
    // The advert precedes the VIPs, which precede the GARPs.
    let at_master: Vec<&VrrpAction> = lan.nodes[0]
        .records
        .iter()
        .filter(|r| r.at == us(DOWN_150))
        .map(|r| &r.action)
        .take(5)
        .collect();
    assert!(matches!(at_master[0], VrrpAction::Log(l) if l == "(VI_1) Receive advertisement timeout"));
    assert!(matches!(at_master[1], VrrpAction::SendAdvert(a) if a.priority == 150));
    assert!(matches!(at_master[2], VrrpAction::Log(l) if l == "(VI_1) Entering MASTER STATE"));
    assert!(matches!(at_master[4], VrrpAction::AddVips(v) if v == &vec![VIP]));
    let fifo = lan.nodes[0].records.iter().find_map(|r| match &r.action {
        VrrpAction::Transition {
            from,
            to: State::Master,
            fifo,
            ..
        } => Some((*from, fifo.clone())),
        _ => None,
    });
    // From the state last reported, although keepalived sets MASTER before its notice.
    assert_eq!(fifo, Some((State::Backup, "INSTANCE \"VI_1\" MASTER 150".to_string())));
}

#[test]
fn master_dies_and_the_backup_takes_over_after_master_down_interval() {
    let mut lan = pair();
    lan.run_until(secs(10.2));
    // d1's adverts: at 3.414062 + k s; the last before the power cut is 9.414062.
    lan.kill(0);
    lan.run_until(secs(20.0));
    assert_eq!(lan.became_master(1), vec![us(9_414_062 + DOWN_100)]);
    assert_eq!(
        lan.logged(1, "(VI_1) Receive advertisement timeout"),
        vec![us(9_414_062 + DOWN_100)]
    );
    assert_eq!(lan.garps(1).len(), 10);
}

/// d1 comes back at 20 s after a power cut at 10.2 s; d2 is master since 13.023437.
fn old_master_returns(config: InstanceConfig) -> Lan {
    let mut lan = Lan::new(vec![config, node_config("VI_1", 12, 100, false)]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(10.2));
    lan.kill(0);
    lan.run_until(secs(20.0));
    lan.start(0, secs(20.0));
    lan.run_until(secs(40.0));
    lan
}

#[test]
fn preempt_takes_a_full_down_interval_then_the_old_master_wins() {
    let lan = old_master_returns(node_config("VI_1", 11, 150, true));
    // d1 discards d2's lower adverts and its own down timer runs out: 20 + 3.414062.
    let back = us(20_000_000 + DOWN_150);
    assert_eq!(lan.became_master(0), vec![us(DOWN_150), back]);
    assert_eq!(
        lan.logged(
            0,
            "(VI_1) received lower priority (100) advert from 10.99.0.12 - discarding"
        )
        .len(),
        4 // 20.023437, 21.023437, 22.023437, 23.023437
    );
    assert_eq!(
        lan.logged(
            1,
            "(VI_1) Master received advert from 10.99.0.11 with higher priority 150, ours 100"
        ),
        vec![back]
    );
    assert_eq!(lan.transitions(1).last(), Some(&(back, State::Backup)));
    assert!(lan.logged(1, "(VI_1) removing VIPs.").contains(&back));
}

#[test]
fn nopreempt_leaves_the_new_master_in_place() {
    let mut config = node_config("VI_1", 11, 150, false);
    config.nopreempt = true;
    let lan = old_master_returns(config);
    assert_eq!(lan.became_master(0), vec![us(DOWN_150)]);
    assert_eq!(lan.instance(0).state(), State::Backup);
    assert_eq!(lan.instance(1).state(), State::Master);
}

#[test]
fn nopreempt_is_cleared_with_initial_state_master() {
    let mut config = node_config("VI_1", 11, 150, true);
    config.nopreempt = true;
    let (_, warnings) = Instance::new(config.clone());
    assert_eq!(
        warnings,
        vec!["(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing".to_string()]
    );
    // So it preempts like the default.
    let lan = old_master_returns(config);
    assert_eq!(lan.became_master(0), vec![us(DOWN_150), us(20_000_000 + DOWN_150)]);
}

#[test]
fn preempt_delay_holds_the_takeover_back() {
    let mut config = node_config("VI_1", 11, 150, false);
    config.preempt_delay = Duration::from_secs(2);
    let lan = old_master_returns(config);
    // d2 adverts at 13.023437 + k. The first lower one (20.023437) starts the delay until 22.023437;
    // 21.023437 is still accepted and restarts the down timer; 22.023437 is not (the delay is over).
    assert_eq!(
        lan.logged(0, "(VI_1) start preempt delay (2.000000)"),
        vec![us(20_023_437)]
    );
    assert_eq!(lan.became_master(0), vec![us(DOWN_150), us(21_023_437 + DOWN_150)]);
    assert_eq!(
        lan.logged(
            0,
            "(VI_1) received lower priority (100) advert from 10.99.0.12 - discarding"
        )
        .first(),
        Some(&us(22_023_437))
    );
}

#[test]
fn equal_priority_is_decided_by_the_higher_address_when_a_split_heals() {
    let mut lan = Lan::new(vec![
        node_config("VI_1", 11, 100, false),
        node_config("VI_1", 12, 100, false),
    ]);
    lan.nodes[0].isolated = true;
    lan.start(0, Duration::ZERO);
    lan.start(1, secs(0.3));
    lan.run_until(secs(10.0));
    // Split brain: both masters.
    assert_eq!(
        (lan.instance(0).state(), lan.instance(1).state()),
        (State::Master, State::Master)
    );
    lan.nodes[0].isolated = false;
    lan.run_until(secs(15.0));
    // d1's next advert (10.609375) reaches d2, which answers; d1 hears the higher address and steps down.
    let healed = us(10_609_375);
    assert_eq!(
        lan.logged(
            1,
            "(VI_1) Received advert from 10.99.0.11 with lower priority 100, ours 100, forcing new election"
        ),
        vec![healed]
    );
    assert_eq!(
        lan.logged(
            0,
            "(VI_1) Master received advert from 10.99.0.12 with same priority 100 but higher IP address than ours"
        ),
        vec![healed]
    );
    assert_eq!(
        (lan.instance(0).state(), lan.instance(1).state()),
        (State::Backup, State::Master)
    );
    // The winner re-sends GARPs (garp_lower_prio_repeat) so caches follow it.
    assert!(lan.garps(1).contains(&healed));
}

fn pair_with_track(weight: i32) -> Lan {
    let mut d1 = node_config("VI_1", 11, 150, true);
    d1.tracks = vec![TrackConfig::new("chk", weight)];
    let mut lan = Lan::new(vec![d1, node_config("VI_1", 12, 100, false)]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(10.5));
    lan.track(0, 0, false, secs(10.5));
    lan.run_until(secs(20.0));
    lan
}

#[test]
fn a_track_script_weight_drop_makes_the_backup_take_over() {
    let lan = pair_with_track(-60);
    assert_eq!(
        lan.logged(0, "(VI_1) Changing effective priority from 150 to 90"),
        vec![secs(10.5)]
    );
    // d1 keeps advertising at 90; d2 discards them, so its timer runs from the last 150 (10.414062).
    assert!(lan.adverts_sent(0).contains(&(us(11_414_062), 90)));
    let takeover = us(10_414_062 + DOWN_100);
    assert_eq!(lan.became_master(1), vec![takeover]);
    assert_eq!(
        lan.logged(
            0,
            "(VI_1) Master received advert from 10.99.0.12 with higher priority 100, ours 90"
        ),
        vec![takeover]
    );
    assert_eq!(lan.instance(0).state(), State::Backup);
}

#[test]
fn an_unweighted_track_failure_faults_the_master_and_hands_over_after_skew() {
    let lan = pair_with_track(0);
    assert_eq!(lan.logged(0, "(VI_1) Entering FAULT STATE"), vec![secs(10.5)]);
    assert_eq!(lan.logged(0, "(VI_1) sent 0 priority"), vec![secs(10.5)]);
    assert_eq!(
        lan.logged(1, "(VI_1) Backup received priority 0 advertisement").first(),
        Some(&secs(10.5))
    );
    assert_eq!(lan.became_master(1), vec![secs(10.5) + us(SKEW_100)]);
    assert_eq!(lan.instance(0).state(), State::Fault);
}

#[test]
fn graceful_stop_sends_priority_zero_and_the_backup_takes_over_after_skew() {
    let mut lan = pair();
    lan.run_until(secs(10.5));
    lan.stop(0, secs(10.5));
    lan.run_until(secs(20.0));
    assert_eq!(lan.adverts_sent(0).last(), Some(&(secs(10.5), 0)));
    assert_eq!(lan.logged(0, "(VI_1) removing VIPs.").last(), Some(&secs(10.5)));
    assert_eq!(lan.transitions(0).last(), Some(&(secs(10.5), State::Stop)));
    // (256 − 100)/256 s: 0.609 s (EXP-2 measured 0.624 s).
    assert_eq!(lan.became_master(1), vec![secs(10.5) + us(SKEW_100)]);
}

#[test]
fn vrrp_v3_backup_adopts_the_masters_interval() {
    let mut d1 = node_config("VI_1", 11, 150, true);
    let mut d2 = node_config("VI_1", 12, 100, false);
    for (cfg, adv) in [(&mut d1, 100), (&mut d2, 1000)] {
        cfg.version = Version::V3;
        cfg.auth = Auth::None;
        cfg.advert_int = Duration::from_millis(adv);
    }
    let mut lan = Lan::new(vec![d1, d2]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(2.05));
    // d1: 0.3 + 106 × 10 × 625 / 16 µs = 0.341406 s; adverts every 0.1 s after.
    assert_eq!(lan.became_master(0), vec![us(341_406)]);
    assert_eq!(
        lan.logged(
            1,
            "(VI_1) advertisement interval updated from 1000ms to 100ms by master"
        ),
        vec![us(341_406)]
    );
    lan.kill(0);
    lan.run_until(secs(5.0));
    // Last advert at 2.041406; the backup's down interval is now 0.3 + 0.060937.
    assert_eq!(lan.became_master(1), vec![us(2_041_406 + 360_937)]);
}

#[test]
fn a_mismatched_advert_interval_or_vip_list_splits_the_brain() {
    let mut d2 = node_config("OTHER", 12, 100, false);
    d2.advert_int = Duration::from_secs(2);
    let mut lan = Lan::new(vec![node_config("VI_1", 11, 150, true), d2]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(12.0));
    assert_eq!(
        lan.logged(1, "(OTHER) advertisement interval mismatch mine=2 sec rcv'd=1 sec")
            .first(),
        Some(&us(DOWN_150))
    );
    assert_eq!(
        (lan.instance(0).state(), lan.instance(1).state()),
        (State::Master, State::Master)
    );

    let mut d3 = node_config("OTHER", 13, 90, false);
    d3.vips = vec![Ipv4Addr::new(10, 99, 0, 20)];
    let mut lan = Lan::new(vec![node_config("VI_1", 11, 150, true), d3]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(12.0));
    // EXP-12: the same VRID with another VIP list.
    let line = "(OTHER) ip address associated with VRID 51 not present in MASTER advert: 10.99.0.20";
    assert_eq!(lan.logged(1, line).first(), Some(&us(DOWN_150)));
    assert_eq!(lan.instance(1).state(), State::Master);
}

#[test]
fn garp_refresh_rides_on_the_first_advert_after_the_refresh_interval() {
    let mut d1 = node_config("VI_1", 11, 150, true);
    d1.garp_master_refresh = Duration::from_secs(10);
    d1.garp_master_delay = Duration::ZERO;
    let mut lan = Lan::new(vec![d1]);
    lan.start(0, Duration::ZERO);
    lan.run_until(secs(30.0));
    // Burst of 5 at 3.414062; refresh due after 13.414062, i.e. with the advert at 14.414062, then 25.414062.
    let garps = lan.garps(0);
    assert_eq!(garps.len(), 7);
    assert_eq!(&garps[5..], &[us(14_414_062), us(25_414_062)]);
}

#[test]
fn wrong_password_is_dropped_and_logged() {
    let mut d2 = node_config("VI_1", 12, 100, false);
    d2.auth = Auth::pass("other");
    let mut lan = Lan::new(vec![node_config("VI_1", 11, 150, true), d2]);
    lan.start(0, Duration::ZERO);
    lan.start(1, Duration::ZERO);
    lan.run_until(secs(5.0));
    assert_eq!(
        lan.logged(1, "(VI_1) received an invalid passwd!").first(),
        Some(&us(DOWN_150))
    );
    assert_eq!(lan.became_master(1), vec![us(DOWN_100)]);
}

#[test]
fn an_address_owner_starts_as_master_at_once_and_the_owner_that_hears_another_backs_off() {
    let mut lan = Lan::new(vec![
        node_config("VI_1", 11, 255, true),
        node_config("VI_1", 12, 255, true),
    ]);
    lan.start(0, Duration::ZERO);
    lan.run_until(secs(0.5));
    // "become master is to timeout from the backup state very quickly (1usec)".
    assert_eq!(lan.became_master(0), vec![us(1)]);
    assert!(lan.logged(0, "(VI_1) Entering BACKUP STATE (init)").is_empty());
    lan.start(1, secs(0.5));
    lan.run_until(secs(3.0));
    // d2 becomes master at 0.5 s + 1 µs and advertises 255. In 2.2.7 the owner that *hears* an
    // equal owner first (here d1) drops to 254, then steps down to the now higher advert.
    let owner_error = "(VI_1) CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority";
    assert_eq!(lan.logged(0, owner_error), vec![us(500_001)]);
    assert_eq!(
        lan.logged(
            0,
            "(VI_1) Master received advert from 10.99.0.12 with higher priority 255, ours 254"
        ),
        vec![us(500_001)]
    );
    assert_eq!(
        (lan.instance(0).state(), lan.instance(1).state()),
        (State::Backup, State::Master)
    );
    assert_eq!(lan.instance(0).effective_priority(), 254);
}

#[test]
fn a_fault_at_start_leaves_to_backup_with_a_full_down_timer() {
    let mut d1 = node_config("VI_1", 11, 150, true);
    d1.tracks = vec![TrackConfig {
        ok_at_start: false,
        ..TrackConfig::new("eth0", 0)
    }];
    let mut lan = Lan::new(vec![d1]);
    lan.start(0, Duration::ZERO);
    lan.run_until(secs(10.0));
    assert_eq!(
        lan.logged(0, "(VI_1) Entering FAULT STATE (init)"),
        vec![Duration::ZERO]
    );
    assert_eq!(lan.instance(0).next_timer(), None);
    lan.track(0, 0, true, secs(10.0));
    lan.run_until(secs(20.0));
    assert_eq!(lan.logged(0, "(VI_1) Entering BACKUP STATE"), vec![secs(10.0)]);
    assert_eq!(lan.became_master(0), vec![secs(10.0) + us(DOWN_150)]);
}
