//! Removal and restore times on a virtual clock, against the arithmetic of
//! reference §2.7 and the epilogs of keepalived 2.2.7.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::ipvs::Proto;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const VIP: &str = "192.0.2.1:80";
const RS1: &str = "192.0.2.11:80";

/// How a real server answers a probe started at a given time.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answer {
    Up,
    /// RST: the attempt fails at once.
    Refused,
    /// Packets vanish: the attempt fails after connect_timeout.
    Silent,
    /// HTTP only: answers with this status.
    Status(u16),
}

/// One server's behaviour: (from time, answer) steps, the last one that started applies.
struct Behaviour {
    rs: SocketAddr,
    steps: Vec<(f64, Answer)>,
}

impl Behaviour {
    fn at(&self, t: Duration) -> Answer {
        self.steps
            .iter()
            .rev()
            .find(|(from, _)| secs(*from) <= t)
            .map_or(Answer::Up, |(_, a)| *a)
    }
}

/// Runs a monitor until `end`, probing with `world`; returns every record.
fn run(
    monitor: &mut Monitor,
    world: &[Behaviour],
    end: f64,
    warmup: impl FnMut(Duration) -> Duration,
) -> Vec<HealthRecord> {
    let mut records = monitor.start(Duration::ZERO, warmup);
    let mut running: Vec<(Duration, CheckerId, CheckOutcome)> = Vec::new();
    let end = secs(end);
    for _ in 0..100_000 {
        let next_finish = running.iter().map(|r| r.0).min();
        let now = match (monitor.next_due(), next_finish) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => break,
            },
        };
        if now > end {
            break;
        }
        // Finishes first: keepalived's timer thread runs the epilog before it re-arms.
        if let Some(pos) = running.iter().position(|r| r.0 == now) {
            let (at, id, outcome) = running.remove(pos);
            records.extend(monitor.finish(id, &outcome, at));
            continue;
        }
        for due in monitor.take_due(now) {
            let behaviour = world.iter().find(|b| b.rs == due.real_server).expect("server in world");
            let (timeout, is_http) = match &due.target {
                CheckTarget::Tcp { timeout, .. } => (*timeout, false),
                CheckTarget::Http { timeout, .. } => (*timeout, true),
                CheckTarget::Misc { timeout, .. } => (*timeout, false),
            };
            let (took, outcome) = match behaviour.at(now) {
                Answer::Up if is_http => (Duration::ZERO, CheckOutcome::Success),
                Answer::Up => (Duration::ZERO, CheckOutcome::Success),
                Answer::Refused => (Duration::ZERO, CheckOutcome::Failure(FailReason::ConnectRefused)),
                Answer::Silent => (timeout, CheckOutcome::Failure(FailReason::ConnectTimeout)),
                Answer::Status(code) => (Duration::ZERO, Url::new("/").judge(Some((code, "")))),
            };
            running.push((now + took, due.id, outcome));
        }
    }
    records
}

fn tcp_settings(delay_loop: f64, connect_timeout: f64, retry: u32, delay_before_retry: f64) -> CheckerSettings {
    let mut s = CheckerSettings::defaults(&CheckerKind::Tcp);
    s.delay_loop = secs(delay_loop);
    s.connect_timeout = secs(connect_timeout);
    s.retry = retry;
    s.delay_before_retry = secs(delay_before_retry);
    s.warmup = Duration::ZERO;
    s
}

fn one_server(settings: CheckerSettings, inhibit: bool) -> VirtualServerConfig {
    let rs = RealServerConfig {
        addr: addr(RS1),
        weight: 1,
        inhibit_on_failure: inhibit,
        checkers: vec![(CheckerKind::Tcp, settings)],
    };
    VirtualServerConfig::new(VsName::Address(Trio::new(addr(VIP), Proto::Tcp)), Proto::Tcp, vec![rs])
}

fn table(records: &[HealthRecord]) -> Vec<(Duration, TableAction)> {
    records
        .iter()
        .filter_map(|r| match r.event {
            HealthEvent::Table(action) => Some((r.at, action)),
            _ => None,
        })
        .collect()
}

fn logs(records: &[HealthRecord]) -> Vec<(Duration, String)> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            HealthEvent::Log(line) => Some((r.at, line.clone())),
            _ => None,
        })
        .collect()
}

fn log_time(records: &[HealthRecord], line: &str) -> Vec<Duration> {
    logs(records)
        .into_iter()
        .filter(|(_, l)| l == line)
        .map(|(t, _)| t)
        .collect()
}

fn op_at(records: &[HealthRecord], dest: &str, op: TableOp) -> Vec<Duration> {
    table(records)
        .into_iter()
        .filter(|(_, a)| a.dest == addr(dest) && a.op == op)
        .map(|(t, _)| t)
        .collect()
}

const REMOVED: &str = "Removing service [192.0.2.11]:tcp:80 from VS [192.0.2.1]:tcp:80";
const ADDED: &str = "Adding service [192.0.2.11]:tcp:80 to VS [192.0.2.1]:tcp:80";

#[test]
fn silent_death_with_tutorial_settings_is_removed_after_retries() {
    // delay_loop 6, connect_timeout 3, retry 3, delay_before_retry 3; checks at 1, 7, ..., 97 succeed.
    let (mut monitor, warnings) = Monitor::new(&one_server(tcp_settings(6.0, 3.0, 3, 3.0), false));
    assert!(warnings.is_empty());
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(100.0, Answer::Silent)],
    }];
    let records = run(&mut monitor, &world, 125.0, |_| Duration::ZERO);
    // Attempts start at 103, 109, 115, 121 and each ends 3 s later: down at 124.
    assert_eq!(log_time(&records, REMOVED), vec![secs(124.0)]);
    assert_eq!(
        log_time(
            &records,
            "TCP_CHECK on service [192.0.2.11]:tcp:80 failed after 3 retries."
        ),
        vec![secs(124.0)]
    );
    assert_eq!(op_at(&records, RS1, TableOp::Remove), vec![secs(124.0)]);
    // §2.7: (R+1)·T + R·B ≤ detect ≤ D + (R+1)·T + R·B.
    let detect = 124.0 - 100.0;
    assert!((4.0 * 3.0 + 3.0 * 3.0..=6.0 + 4.0 * 3.0 + 3.0 * 3.0).contains(&detect));
}

#[test]
fn detection_stays_within_the_bounds_of_section_2_7_for_any_death_time() {
    for (d, t, r, b, answer) in [
        (6.0, 3.0, 3, 3.0, Answer::Silent),
        (60.0, 5.0, 1, 1.0, Answer::Refused),
        (10.0, 2.0, 0, 1.0, Answer::Silent),
    ] {
        let took = if answer == Answer::Silent { t } else { 0.0 };
        let rf = f64::from(r);
        let (low, high) = ((rf + 1.0) * took + rf * b, d + (rf + 1.0) * took + rf * b);
        for step in 0..20 {
            let death = 30.0 + step as f64 * d / 20.0 + 0.25;
            let (mut monitor, _) = Monitor::new(&one_server(tcp_settings(d, t, r, b), false));
            let world = [Behaviour {
                rs: addr(RS1),
                steps: vec![(death, answer)],
            }];
            let records = run(&mut monitor, &world, death + high + 1.0, |_| Duration::ZERO);
            let removed = log_time(&records, REMOVED);
            assert_eq!(removed.len(), 1, "D {d} death {death}");
            let detect = removed[0].as_secs_f64() - death;
            assert!(
                low <= detect + 1e-9 && detect <= high + 1e-9,
                "D {d} R {r}: death {death}, detect {detect}, bounds {low}..{high}"
            );
        }
    }
}

#[test]
fn retry_zero_removes_on_the_first_failure_and_restores_on_the_next_success() {
    // delay_loop 5, refused: checks at 1, 6, 11 succeed, 16 fails.
    let (mut monitor, _) = Monitor::new(&one_server(tcp_settings(5.0, 3.0, 0, 1.0), false));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(12.5, Answer::Refused), (20.0, Answer::Up)],
    }];
    let records = run(&mut monitor, &world, 30.0, |_| Duration::ZERO);
    assert_eq!(
        log_time(&records, "TCP_CHECK on service [192.0.2.11]:tcp:80 failed."),
        vec![secs(16.0)]
    );
    assert_eq!(log_time(&records, REMOVED), vec![secs(16.0)]);
    // retry 0 leaves the counter at 0, so the next attempt is delay_loop later: 21.
    assert_eq!(
        log_time(&records, "TCP connection to [192.0.2.11]:tcp:80 success."),
        vec![secs(1.0), secs(21.0)]
    );
    assert_eq!(log_time(&records, ADDED), vec![secs(21.0)]);
    assert_eq!(
        op_at(&records, RS1, TableOp::Add { weight: 1 }),
        vec![Duration::ZERO, secs(21.0)]
    );
}

#[test]
fn a_down_tcp_checker_keeps_counting_retries() {
    // tcp_epilog runs the retry counter while down too: after going down at 124 the next attempts
    // start at 130 (delay_loop), 136 (delay_before_retry), 142 (delay_loop). The reference's
    // "attempts every delay_loop while down" would give 130, 139.
    let (mut monitor, _) = Monitor::new(&one_server(tcp_settings(6.0, 3.0, 3, 3.0), false));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(100.0, Answer::Silent), (131.0, Answer::Up)],
    }];
    let records = run(&mut monitor, &world, 150.0, |_| Duration::ZERO);
    assert_eq!(log_time(&records, REMOVED), vec![secs(124.0)]);
    // 130 fails (ends 133), retry_it 0 < 3 so delay_before_retry: 136 succeeds.
    assert_eq!(log_time(&records, ADDED), vec![secs(136.0)]);
}

#[test]
fn at_startup_one_failure_removes_a_server_that_was_added_unchecked() {
    // Without alpha the server is in the table at 0; the first check comes at 1 s + warmup pick.
    let mut settings = tcp_settings(10.0, 3.0, 1, 1.0);
    settings.warmup = secs(10.0);
    let (mut monitor, _) = Monitor::new(&one_server(settings, false));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(0.0, Answer::Silent)],
    }];
    let records = run(&mut monitor, &world, 20.0, |w| w / 2);
    assert_eq!(op_at(&records, RS1, TableOp::Add { weight: 1 }), vec![Duration::ZERO]);
    // 1 + 5 (half the warmup) + 3 (timeout); retry is 1 but not used at startup.
    assert_eq!(
        log_time(&records, "TCP_CHECK on service [192.0.2.11]:tcp:80 failed."),
        vec![secs(9.0)]
    );
    assert_eq!(log_time(&records, REMOVED), vec![secs(9.0)]);
    assert_eq!(
        log_time(
            &records,
            "Activating healthchecker for service [192.0.2.11]:tcp:80 for VS [192.0.2.1]:tcp:80"
        ),
        vec![Duration::ZERO]
    );
}

#[test]
fn removed_at_start_within_is_reached_by_the_latest_warmup_pick_and_never_passed() {
    let mut settings = tcp_settings(10.0, 3.0, 1, 1.0);
    settings.warmup = secs(4.0);
    let bound = super::removed_at_start_within(&CheckerKind::Tcp, &settings, secs(60.0));
    assert_eq!(bound, secs(8.0), "1 s bootstrap + 4 s warmup + 3 s timeout");
    for (answer, pick) in [(Answer::Silent, 1.0), (Answer::Silent, 0.0), (Answer::Refused, 1.0)] {
        let (mut monitor, _) = Monitor::new(&one_server(settings.clone(), false));
        let world = [Behaviour {
            rs: addr(RS1),
            steps: vec![(0.0, answer)],
        }];
        let records = run(&mut monitor, &world, 20.0, |w| w.mul_f64(pick));
        let removed = log_time(&records, REMOVED);
        assert_eq!(removed.len(), 1);
        assert!(
            removed[0] <= bound,
            "{answer:?} pick {pick}: {:?} > {bound:?}",
            removed[0]
        );
        if answer == Answer::Silent && pick == 1.0 {
            assert_eq!(removed[0], bound, "the bound is tight");
        }
    }
}

#[test]
fn alpha_adds_a_server_only_after_its_first_success() {
    let mut settings = tcp_settings(6.0, 3.0, 1, 1.0);
    settings.alpha = true;
    settings.warmup = secs(4.0);
    let mut config = one_server(settings.clone(), false);
    config.real_servers.push(RealServerConfig {
        addr: addr("192.0.2.12:80"),
        weight: 1,
        inhibit_on_failure: false,
        checkers: vec![(CheckerKind::Tcp, settings)],
    });
    let (mut monitor, _) = Monitor::new(&config);
    let world = [
        Behaviour {
            rs: addr(RS1),
            steps: vec![(0.0, Answer::Up)],
        },
        Behaviour {
            rs: addr("192.0.2.12:80"),
            steps: vec![(0.0, Answer::Refused)],
        },
    ];
    let records = run(&mut monitor, &world, 20.0, |w| w);
    // Nothing in the table before the checks; RS1 joins at 1 + 4 (full warmup).
    assert!(table(&records).iter().all(|(t, _)| *t == secs(5.0)));
    assert_eq!(log_time(&records, ADDED), vec![secs(5.0)]);
    assert_eq!(op_at(&records, RS1, TableOp::Add { weight: 1 }), vec![secs(5.0)]);
    // The dead one never joins; its first failure only notifies DOWN.
    assert!(op_at(&records, "192.0.2.12:80", TableOp::Add { weight: 1 }).is_empty());
    let down: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.event {
            HealthEvent::RealServer { up: false, fifo, .. } => Some((r.at, fifo.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        down,
        vec![(secs(5.0), "RS [192.0.2.12]:tcp:80 [192.0.2.1]:tcp:80 DOWN".to_string())]
    );
    // Quorum starts down (nothing alive) and is gained with RS1.
    assert_eq!(
        log_time(&records, "Gained quorum 1+0=1 <= 1 for VS [192.0.2.1]:tcp:80"),
        vec![secs(5.0)]
    );
}

#[test]
fn inhibit_on_failure_sets_weight_zero_instead_of_removing() {
    let (mut monitor, _) = Monitor::new(&one_server(tcp_settings(5.0, 3.0, 0, 1.0), true));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(12.5, Answer::Refused), (20.0, Answer::Up)],
    }];
    let records = run(&mut monitor, &world, 30.0, |_| Duration::ZERO);
    assert_eq!(
        log_time(
            &records,
            "Disabling service [192.0.2.11]:tcp:80 of VS [192.0.2.1]:tcp:80"
        ),
        vec![secs(16.0)]
    );
    assert_eq!(
        log_time(
            &records,
            "Enabling service [192.0.2.11]:tcp:80 of VS [192.0.2.1]:tcp:80"
        ),
        vec![secs(21.0)]
    );
    assert_eq!(op_at(&records, RS1, TableOp::SetWeight { weight: 0 }), vec![secs(16.0)]);
    assert_eq!(op_at(&records, RS1, TableOp::SetWeight { weight: 1 }), vec![secs(21.0)]);
    assert!(op_at(&records, RS1, TableOp::Remove).is_empty());
    // The only server's weight 0 loses quorum: no sorry server, so only the line and the notify.
    assert_eq!(
        log_time(&records, "Lost quorum 1-0=1 > 0 for VS [192.0.2.1]:tcp:80"),
        vec![secs(16.0)]
    );
}

fn four_servers(quorum: u32, hysteresis: u32) -> VirtualServerConfig {
    let settings = tcp_settings(5.0, 3.0, 0, 1.0);
    let servers = (11..15)
        .map(|i| RealServerConfig {
            addr: addr(&format!("192.0.2.{i}:80")),
            weight: 1,
            inhibit_on_failure: false,
            checkers: vec![(CheckerKind::Tcp, settings.clone())],
        })
        .collect();
    let mut config = VirtualServerConfig::new(VsName::Address(Trio::new(addr(VIP), Proto::Tcp)), Proto::Tcp, servers);
    config.quorum = quorum;
    config.hysteresis = hysteresis;
    config.sorry_server = Some(addr("192.0.2.99:80"));
    config
}

#[test]
fn quorum_with_hysteresis_swaps_in_the_sorry_server_and_back() {
    // quorum 3, hysteresis 1: lost below 2, regained at 4. Checks at 1, 6, 11, ...
    let (mut monitor, warnings) = Monitor::new(&four_servers(3, 1));
    assert!(warnings.is_empty());
    let world: Vec<Behaviour> = [(11, 7.0, 22.0), (12, 7.0, 27.0), (13, 12.0, 32.0), (14, 1000.0, 1000.0)]
        .iter()
        .map(|&(i, die, back)| Behaviour {
            rs: addr(&format!("192.0.2.{i}:80")),
            steps: vec![(die, Answer::Refused), (back, Answer::Up)],
        })
        .collect();
    let records = run(&mut monitor, &world, 40.0, |_| Duration::ZERO);
    let vs = "[192.0.2.1]:tcp:80";
    // set_quorum_states runs before the pool is filled, so startup "gains" quorum.
    assert_eq!(
        log_time(&records, &format!("Gained quorum 3+1=4 <= 4 for VS {vs}")),
        vec![Duration::ZERO, secs(36.0)]
    );
    // RS 11 and 12 fail at 11 (weight 2, still ≥ 3-1), RS 13 at 16: weight 1 < 2.
    assert_eq!(
        log_time(&records, &format!("Lost quorum 3-1=2 > 1 for VS {vs}")),
        vec![secs(16.0)]
    );
    let at16: Vec<String> = logs(&records)
        .into_iter()
        .filter(|(t, _)| *t == secs(16.0))
        .map(|(_, l)| l)
        .collect();
    assert_eq!(
        at16,
        vec![
            "TCP_CHECK on service [192.0.2.13]:tcp:80 failed.".to_string(),
            format!("Removing service [192.0.2.13]:tcp:80 from VS {vs}"),
            format!("Lost quorum 3-1=2 > 1 for VS {vs}"),
            format!("Adding sorry server [192.0.2.99]:tcp:80 to VS {vs}"),
            format!("Removing alive servers from the pool for VS {vs}"),
        ]
    );
    assert_eq!(op_at(&records, "192.0.2.14:80", TableOp::Remove), vec![secs(16.0)]);
    assert_eq!(
        op_at(&records, "192.0.2.99:80", TableOp::Add { weight: 1 }),
        vec![secs(16.0)]
    );
    assert!(monitor.quorum_up());
    // Returns at 26 (RS 11) and 31 (RS 12) change nothing in the table while the sorry server serves.
    assert!(op_at(&records, "192.0.2.11:80", TableOp::Add { weight: 1 })
        .iter()
        .all(|t| *t == Duration::ZERO || *t == secs(36.0)));
    // RS 13 back at 36: weight 4 ≥ 3+1, sorry server out, every alive server back in.
    assert_eq!(op_at(&records, "192.0.2.99:80", TableOp::Remove), vec![secs(36.0)]);
    assert_eq!(
        log_time(
            &records,
            &format!("Removing sorry server [192.0.2.99]:tcp:80 from VS {vs}")
        ),
        vec![secs(36.0)]
    );
    assert_eq!(
        log_time(&records, &format!("Adding alive servers to the pool for VS {vs}")),
        vec![secs(36.0)]
    );
    for i in 11..15 {
        assert!(
            op_at(&records, &format!("192.0.2.{i}:80"), TableOp::Add { weight: 1 }).contains(&secs(36.0)),
            "RS {i}"
        );
    }
    let quorum: Vec<(Duration, bool)> = records
        .iter()
        .filter_map(|r| match r.event {
            HealthEvent::Quorum { up, .. } => Some((r.at, up)),
            _ => None,
        })
        .collect();
    assert_eq!(
        quorum,
        vec![(Duration::ZERO, true), (secs(16.0), false), (secs(36.0), true)]
    );
}

#[test]
fn quorum_fixups_warn_like_keepalived() {
    let (_, warnings) = Monitor::new(&four_servers(9, 9));
    assert_eq!(
        warnings,
        vec![
            "Warning - quorum 9 for [192.0.2.1]:tcp:80 exceeds total weight of real servers 4, reducing quorum to 4"
                .to_string(),
            "Virtual server [192.0.2.1]:tcp:80: hysteresis 9 >= quorum 4; setting hysteresis to 3".to_string(),
        ]
    );
}

#[test]
fn http_get_retries_then_recovers_after_one_more_clean_pass() {
    // HTTP_GET defaults but delay_loop 10: retry 1, delay_before_retry 3.
    let kind = CheckerKind::Http(HttpGet {
        urls: vec![Url::new("/")],
        fast_recovery: false,
    });
    let mut settings = CheckerSettings::defaults(&kind);
    settings.delay_loop = secs(10.0);
    settings.warmup = Duration::ZERO;
    let rs = RealServerConfig {
        addr: addr(RS1),
        weight: 1,
        inhibit_on_failure: false,
        checkers: vec![(kind, settings)],
    };
    let config = VirtualServerConfig::new(VsName::Address(Trio::new(addr(VIP), Proto::Tcp)), Proto::Tcp, vec![rs]);
    let (mut monitor, _) = Monitor::new(&config);
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(15.0, Answer::Status(500)), (30.0, Answer::Up)],
    }];
    let records = run(&mut monitor, &world, 60.0, |_| Duration::ZERO);
    // Checks at 1, 11 pass; 21 fails, retry at 24 fails: down at 24.
    assert_eq!(
        log_time(
            &records,
            "HTTP_CHECK on service [192.0.2.11]:tcp:80 failed after 1 retries."
        ),
        vec![secs(24.0)]
    );
    assert_eq!(log_time(&records, REMOVED), vec![secs(24.0)]);
    // Down: the failed URL every max(3, 10): 34 answers, one more pass 10 s later: up at 44.
    assert_eq!(
        log_time(&records, "Remote Web server [192.0.2.11]:tcp:80 succeed on service."),
        vec![secs(1.0), secs(44.0)]
    );
    assert_eq!(log_time(&records, ADDED), vec![secs(44.0)]);
}

#[test]
fn misc_check_is_scheduled_from_the_start_of_each_run() {
    let kind = CheckerKind::Misc(MiscCheck {
        command: "/bin/check-web --port 80".into(),
        timeout: Some(secs(4.0)),
        dynamic: false,
    });
    let mut settings = CheckerSettings::defaults(&kind);
    settings.delay_loop = secs(5.0);
    settings.warmup = Duration::ZERO;
    let rs = RealServerConfig {
        addr: addr(RS1),
        weight: 1,
        inhibit_on_failure: false,
        checkers: vec![(kind, settings)],
    };
    let config = VirtualServerConfig::new(VsName::Address(Trio::new(addr(VIP), Proto::Tcp)), Proto::Tcp, vec![rs]);
    let (mut monitor, _) = Monitor::new(&config);
    let mut records = monitor.start(Duration::ZERO, |_| Duration::ZERO);
    let mut starts = Vec::new();
    for (run, outcome) in [
        CheckOutcome::Success,
        CheckOutcome::Failure(FailReason::MiscExit(1)),
        CheckOutcome::Success,
    ]
    .iter()
    .enumerate()
    {
        let now = monitor.next_due().unwrap();
        starts.push(now);
        let due = monitor.take_due(now);
        assert_eq!(
            due[0].target,
            CheckTarget::Misc {
                command: "/bin/check-web --port 80".into(),
                timeout: secs(4.0)
            }
        );
        // Each run takes 2 s; run 1 (the failure) takes 0.5 s.
        let took = if run == 1 { 0.5 } else { 2.0 };
        records.extend(monitor.finish(due[0].id, outcome, now + secs(took)));
    }
    assert_eq!(starts, vec![secs(1.0), secs(6.0), secs(11.0)]);
    let lines: Vec<String> = logs(&records).into_iter().map(|(_, l)| l).collect();
    let misc = "Misc check for [[192.0.2.11]:tcp:80 VS [192.0.2.1]:tcp:80] by [/bin/check-web]";
    assert!(lines.contains(&format!("{misc} succeeded.")));
    assert!(lines.contains(&format!("{misc} failed with retry disabled (exited with status 1).")));
    assert_eq!(log_time(&records, REMOVED), vec![secs(6.5)]);
    assert_eq!(log_time(&records, ADDED), vec![secs(13.0)]);
}

#[test]
fn shutdown_takes_every_server_out_even_when_inhibited() {
    let (mut monitor, _) = Monitor::new(&one_server(tcp_settings(5.0, 3.0, 0, 1.0), true));
    monitor.start(Duration::ZERO, |_| Duration::ZERO);
    let records = monitor.shutdown(secs(2.0));
    assert_eq!(
        logs(&records),
        vec![(
            secs(2.0),
            "Shutting down service [192.0.2.11]:tcp:80 from VS [192.0.2.1]:tcp:80".into()
        )]
    );
    assert_eq!(op_at(&records, RS1, TableOp::Remove), vec![secs(2.0)]);
    assert_eq!(monitor.next_due(), None);
}

#[test]
fn alpha_with_inhibit_starts_at_weight_zero_and_is_enabled_on_success() {
    let mut settings = tcp_settings(6.0, 3.0, 1, 1.0);
    settings.alpha = true;
    let (mut monitor, _) = Monitor::new(&one_server(settings, true));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(0.0, Answer::Up)],
    }];
    let records = run(&mut monitor, &world, 5.0, |_| Duration::ZERO);
    // init_service_rs adds an inhibited server even under alpha, with weight 0 while its checker is failed.
    assert_eq!(op_at(&records, RS1, TableOp::Add { weight: 0 }), vec![Duration::ZERO]);
    assert_eq!(op_at(&records, RS1, TableOp::SetWeight { weight: 1 }), vec![secs(1.0)]);
    assert_eq!(
        log_time(
            &records,
            "Enabling service [192.0.2.11]:tcp:80 of VS [192.0.2.1]:tcp:80"
        ),
        vec![secs(1.0)]
    );
    assert_eq!(monitor.is_alive(addr(RS1)), Some(true));
}

#[test]
fn misc_dynamic_sets_the_weight_from_the_exit_status() {
    let kind = CheckerKind::Misc(MiscCheck {
        command: "/bin/load-weight".into(),
        timeout: None,
        dynamic: true,
    });
    let mut settings = CheckerSettings::defaults(&kind);
    settings.delay_loop = secs(5.0);
    settings.warmup = Duration::ZERO;
    let rs = RealServerConfig {
        addr: addr(RS1),
        weight: 1,
        inhibit_on_failure: false,
        checkers: vec![(kind, settings)],
    };
    let config = VirtualServerConfig::new(VsName::Address(Trio::new(addr(VIP), Proto::Tcp)), Proto::Tcp, vec![rs]);
    let (mut monitor, _) = Monitor::new(&config);
    let mut records = monitor.start(Duration::ZERO, |_| Duration::ZERO);
    for outcome in [
        CheckOutcome::Success,
        CheckOutcome::Failure(FailReason::MiscExit(12)),
        CheckOutcome::Failure(FailReason::MiscExit(1)),
        CheckOutcome::Success,
    ] {
        let now = monitor.next_due().unwrap();
        let due = monitor.take_due(now);
        records.extend(monitor.finish(due[0].id, &outcome, now + secs(0.5)));
    }
    // Runs start at 1, 6, 11, 16 and end half a second later.
    let vs = "[192.0.2.1]:tcp:80";
    assert_eq!(
        log_time(
            &records,
            &format!("Changing weight from 1 to 10 for active service [192.0.2.11]:tcp:80 of VS {vs}")
        ),
        vec![secs(6.5)]
    );
    assert_eq!(op_at(&records, RS1, TableOp::SetWeight { weight: 10 }), vec![secs(6.5)]);
    assert_eq!(
        log_time(&records, &format!("Misc check for [[192.0.2.11]:tcp:80 VS {vs}] by [/bin/load-weight] failed with retry disabled (exited with status 1).")),
        vec![secs(11.5)]
    );
    assert_eq!(op_at(&records, RS1, TableOp::Remove), vec![secs(11.5)]);
    // The dynamic part went with the failure: the server comes back with its configured weight.
    assert_eq!(
        op_at(&records, RS1, TableOp::Add { weight: 1 }),
        vec![Duration::ZERO, secs(16.5)]
    );
}

#[test]
fn log_all_failures_logs_each_failed_tcp_attempt_while_up() {
    let mut settings = tcp_settings(5.0, 3.0, 1, 1.0);
    settings.log_all_failures = true;
    let (mut monitor, _) = Monitor::new(&one_server(settings, false));
    let world = [Behaviour {
        rs: addr(RS1),
        steps: vec![(5.5, Answer::Refused), (6.5, Answer::Silent)],
    }];
    let records = run(&mut monitor, &world, 20.0, |_| Duration::ZERO);
    // 6 refused (retry 1 left), 7 silent until 10: the retry fails and the checker goes down.
    assert_eq!(
        log_time(&records, "TCP connection to [192.0.2.11]:tcp:80 failed."),
        vec![secs(6.0)]
    );
    assert_eq!(
        log_time(&records, "TCP connection to [192.0.2.11]:tcp:80 timeout."),
        vec![secs(10.0)]
    );
    assert_eq!(
        log_time(
            &records,
            "TCP_CHECK on service [192.0.2.11]:tcp:80 failed after 1 retries."
        ),
        vec![secs(10.0)]
    );
    // The success at 1 s, then the two failures; once down, failed attempts are not logged.
    assert_eq!(
        logs(&records)
            .iter()
            .filter(|(_, l)| l.starts_with("TCP connection to"))
            .count(),
        3
    );
}
