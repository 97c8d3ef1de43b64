//! Root tests: the real keepalived in throw-away labs built from scenarios (VRRPv3 with
//! advert_int 0.1 keeps them fast: start 0.34 s, failover 0.36 s, §4.7 EXP-6).

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;

use super::{config, config_test, installed, Daemon, KeepalivedError, Mode};
use crate::lab::{Host, Lab};
use crate::scenario::{parse, Scenario};
use crate::vrrp::{master_down_interval, skew_time, State, Version};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const ADVERT: Duration = Duration::from_millis(100);
/// Scheduling and netlink on 2 shared cores; measured jitter here is ~20 ms.
const TOLERANCE: Duration = Duration::from_millis(250);
/// Far more than a start takes (0.34 s as master, BACKUP at once).
const START: Duration = Duration::from_secs(5);

const PAIR: &str = r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[vrrp_instance]
version = 3
advert_int = 0.1
[[director]]
name = "lvs1"
state = "MASTER"
priority = 150
[[director]]
name = "lvs2"
priority = 100
[[real_server]]
name = "rs1"
"#;

fn skip() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: labs need root");
        return true;
    }
    if !installed() {
        eprintln!("skipped: keepalived is not installed (ci/install.sh installs it)");
        return true;
    }
    false
}

async fn build_lab(text: &str) -> (Scenario, Lab) {
    let scenario = parse(text, "t.toml").unwrap_or_else(|e| panic!("{}", e.render("t.toml")));
    let lab = Lab::build(&crate::run::lab_plan(&scenario), Default::default())
        .await
        .expect("lab");
    (scenario, lab)
}

async fn start(scenario: &Scenario, lab: &Lab, director: &str) -> Result<Daemon, KeepalivedError> {
    let host = lab.host(director).expect("director host");
    let dir = lab.host_dir(director).expect("run directory");
    let text = config(scenario, director, &dir, Mode::VrrpOnly)?;
    Daemon::start(host, &dir, &text, Mode::VrrpOnly, Arc::new(|_| {})).await
}

/// Both directors started at once, lvs1 (priority 150) MASTER and lvs2 BACKUP.
async fn master_and_backup(scenario: &Scenario, lab: &Lab) -> (Daemon, Daemon) {
    let (a, b) = tokio::join!(start(scenario, lab, "lvs1"), start(scenario, lab, "lvs2"));
    let (a, b) = (a.expect("lvs1 starts"), b.expect("lvs2 starts"));
    a.wait_for_state(State::Master, START)
        .await
        .expect("lvs1 becomes MASTER");
    // Started first on a busy machine, lvs2 may have become MASTER alone; lvs1's first advert
    // (priority 150) then sends it back to BACKUP.
    b.wait_for_state(State::Backup, Duration::from_secs(2))
        .await
        .unwrap_or_else(|e| panic!("one master only: {e}: {:?}", b.transitions()));
    assert_eq!(a.state(), Some(State::Master), "{:?}", a.transitions());
    (a, b)
}

async fn has_vip(host: &Host) -> bool {
    let index = host.iface("eth0").expect("eth0").index;
    let addrs: Vec<_> = host
        .rtnl()
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .expect("address dump");
    addrs.iter().any(|m| {
        m.attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) if *ip == VIP))
    })
}

/// keepalived adds or removes the VIP around its FIFO line; wait (bounded) for the kernel.
async fn vip_becomes(host: &Host, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while has_vip(host).await != present {
        assert!(
            Instant::now() < deadline,
            "{}: VIP still {}",
            host.name(),
            if present { "absent" } else { "present" }
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn backup_down_interval() -> Duration {
    master_down_interval(Version::V3, 100, ADVERT, 3)
}

#[tokio::test]
async fn a_killed_master_hands_the_vip_to_the_backup_after_master_down_interval() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let (mut a, b) = master_and_backup(&scenario, &lab).await;
    let (h1, h2) = (lab.host("lvs1").unwrap(), lab.host("lvs2").unwrap());
    vip_becomes(h1, true).await;
    assert!(!has_vip(h2).await);

    let killed = Instant::now();
    a.kill();
    let took = b
        .wait_for_state(State::Master, backup_down_interval() + TOLERANCE)
        .await
        .expect("lvs2 takes over")
        .at
        - killed;
    eprintln!(
        "kill: lvs2 MASTER {took:?} after SIGKILL (master_down_interval {:?})",
        backup_down_interval()
    );
    // The last advert came at most one advert_int before the kill.
    assert!(
        took + ADVERT + Duration::from_millis(20) >= backup_down_interval(),
        "{took:?}"
    );
    vip_becomes(h2, true).await;
    // A power cut removes nothing: the dead master's namespace still has the address.
    assert!(has_vip(h1).await);
    assert!(a.exit().is_some_and(|e| e.contains("signal: 9")), "{:?}", a.exit());
    assert!(
        !a.log().iter().any(|(_, l)| l.contains("sent 0 priority")),
        "a killed keepalived sends no priority 0"
    );

    // Back after the power cut, in the same directory: a new keepalived removes the VIP it
    // finds, starts as BACKUP and preempts lvs2 (150 > 100) after its master_down_interval.
    drop(a);
    let a = start(&scenario, &lab, "lvs1").await.expect("lvs1 starts again");
    a.wait_for_state(State::Master, START).await.expect("lvs1 preempts");
    b.wait_for_state(State::Backup, Duration::from_secs(2))
        .await
        .expect("lvs2 steps down");
    vip_becomes(h2, false).await;
    assert!(has_vip(h1).await);
}

#[tokio::test]
async fn a_stopped_master_sends_priority_0_and_the_backup_takes_over_after_the_skew_time() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let (mut a, b) = master_and_backup(&scenario, &lab).await;
    let stopped = Instant::now();
    a.stop().await.expect("graceful stop");
    let took = b
        .wait_for_state(State::Master, backup_down_interval())
        .await
        .expect("lvs2 takes over")
        .at
        - stopped;
    let skew = skew_time(Version::V3, 100, ADVERT);
    eprintln!("stop: lvs2 MASTER {took:?} after SIGTERM (skew {skew:?})");
    // Sooner than a silent master could be noticed at all (master_down_interval − one advert).
    assert!(took < backup_down_interval() - ADVERT, "{took:?}");
    assert_eq!(a.state(), Some(State::Stop));
    assert!(a.log().iter().any(|(_, l)| l.contains("(VI_1) sent 0 priority")));
    assert!(b
        .log()
        .iter()
        .any(|(_, l)| l.contains("Backup received priority 0 advertisement")));
    assert!(
        !has_vip(lab.host("lvs1").unwrap()).await,
        "a stopping keepalived removes its VIPs"
    );
    vip_becomes(lab.host("lvs2").unwrap(), true).await;
}

#[tokio::test]
async fn a_frozen_master_keeps_the_vip_while_the_backup_takes_it_too() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let (a, b) = master_and_backup(&scenario, &lab).await;
    let (h1, h2) = (lab.host("lvs1").unwrap(), lab.host("lvs2").unwrap());
    let frozen = Instant::now();
    a.freeze().expect("freeze");
    let took = b
        .wait_for_state(State::Master, backup_down_interval() + TOLERANCE)
        .await
        .expect("lvs2 takes over")
        .at
        - frozen;
    eprintln!("freeze: lvs2 MASTER {took:?} after SIGSTOP");
    vip_becomes(h2, true).await;
    assert!(has_vip(h1).await, "the frozen master still holds the VIP: split brain");
    assert_eq!(a.state(), Some(State::Master), "a frozen keepalived reports nothing");

    let thawed = Instant::now();
    a.thaw().expect("thaw");
    // Priority 150 re-asserts at once ("forcing new election") and lvs2 steps down.
    let back = b
        .wait_for_state(State::Backup, Duration::from_secs(2))
        .await
        .expect("lvs2 steps down")
        .at
        - thawed;
    eprintln!("thaw: lvs2 BACKUP {back:?} after SIGCONT");
    vip_becomes(h2, false).await;
    assert!(has_vip(h1).await);

    // A graceful stop of a frozen node thaws it first, so it can send priority 0.
    let mut a = a;
    a.freeze().unwrap();
    a.stop().await.expect("a frozen keepalived stops");
    assert_eq!(a.exit().as_deref(), Some("exit status: 0"));
    assert!(a.log().iter().any(|(_, l)| l.contains("(VI_1) sent 0 priority")));
}

fn alive(pid: i32) -> bool {
    // Gone, or a zombie that init has not reaped yet: either way it runs no more.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn pgrep_keepalived() -> Vec<i32> {
    let out = std::process::Command::new("pgrep")
        .args(["-x", "keepalived"])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|p| alive(*p))
        .collect()
}

async fn none_left(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<i32> = pgrep_keepalived().into_iter().filter(|p| pids.contains(p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "keepalived still running: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn no_keepalived_outlives_its_daemon_and_lab_even_after_a_panic() {
    if skip() {
        return;
    }
    // Dropped normally, one of them frozen (a stopped process ignores all but SIGKILL).
    let (scenario, lab) = build_lab(PAIR).await;
    let (a, b) = master_and_backup(&scenario, &lab).await;
    a.freeze().unwrap();
    let pids = vec![a.pid(), a.vrrp_pid().unwrap(), b.pid(), b.vrrp_pid().unwrap()];
    assert!(pids.iter().all(|p| pgrep_keepalived().contains(p)), "{pids:?}");
    drop((a, b, lab));
    none_left(&pids).await;

    // A panic in the body: the daemons and the lab are dropped while unwinding.
    let (tx, rx) = std::sync::mpsc::channel();
    let body = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let (scenario, lab) = build_lab(PAIR).await;
            let (a, b) = master_and_backup(&scenario, &lab).await;
            tx.send(vec![a.pid(), a.vrrp_pid().unwrap(), b.pid(), b.vrrp_pid().unwrap()])
                .unwrap();
            panic!("test body fails with keepalived running");
        })
    });
    assert!(body.join().is_err(), "the body panicked");
    let pids = rx.recv().unwrap();
    none_left(&pids).await;
}

#[tokio::test]
async fn a_dead_owners_frozen_keepalived_is_killed_by_clean() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let runs = tempfile::tempdir().unwrap();
    let dir = runs.path().join("lvslab-dead-run").join("lvs1");
    let text = config(&scenario, "lvs1", &dir, Mode::VrrpOnly).unwrap();
    let d = Daemon::start(lab.host("lvs1").unwrap(), &dir, &text, Mode::VrrpOnly, Arc::new(|_| {}))
        .await
        .unwrap();
    d.freeze().unwrap();
    let pids = [d.pid(), d.vrrp_pid().unwrap()];

    let live = super::leftovers::clean_leftovers_in(runs.path());
    assert_eq!(live.live, vec![dir.clone()], "a live owner's keepalived is left alone");
    assert!(live.killed.is_empty() && pids.iter().all(|p| alive(*p)));

    // As if lvslab had died: an owner that is no process any more.
    std::fs::write(super::owner_path(&dir), "999999999 1\n").unwrap();
    let report = super::leftovers::clean_leftovers_in(runs.path());
    let killed: Vec<i32> = report.killed.iter().map(|(_, p)| *p).collect();
    assert_eq!(killed, pids, "{report:?}");
    assert_eq!(report.removed_dirs, vec![runs.path().join("lvslab-dead-run")]);
    none_left(&pids).await;
}

/// Scenario texts whose every director's config must pass `keepalived -t`: the scenarios/
/// files with VRRP directors, and these.
const CLEAN_CONFIGS: &[&str] = &[
    PAIR,
    r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[[network]]
name = "lan"
subnet = "192.0.2.0/24"
[[network]]
name = "sync"
subnet = "203.0.113.0/24"
[vrrp_instance]
name = "VI_LB"
virtual_router_id = 7
advert_int = 2
auth_pass = "secret"
unicast = true
garp_master_delay = 1
garp_master_repeat = 2
garp_master_refresh = 30
down_timer_adverts = 4
[[director]]
name = "lvs1"
interfaces = [{ network = "lan" }, { network = "sync" }]
state = "BACKUP"
priority = 120
nopreempt = true
track_interface = [{ interface = "eth1", weight = -50 }]
track_script = [{ script = "chk_maint", weight = -60 }, { script = "chk_up" }]
[[director]]
name = "lvs2"
interfaces = [{ network = "lan" }, { network = "sync" }]
preempt_delay = 2.5
[[vrrp_script]]
name = "chk_maint"
script = "test ! -e {dir}/maintenance"
interval = 2
timeout = 1
rise = 2
fall = 3
[[vrrp_script]]
name = "chk_up"
script = "grep -q \"up\" {dir}/state || exit 1"
weight = 10
init_fail = true
[[real_server]]
name = "rs1"
"#,
    r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[vrrp_instance]
vrrp_strict = true
[[director]]
name = "lvs1"
state = "MASTER"
priority = 255
accept = true
[[director]]
name = "lvs2"
[[real_server]]
name = "rs1"
"#,
    // Last: the tests above take the others by index.
    super::config::tests::NAT_PAIR,
];

/// Full mode (virtual_server and checkers): `-t` reads it without initialising IPVS, so it is
/// checked here although only a kernel with IPVS can run it.
const FULL_CONFIGS: &[&str] = &[super::config::tests::CHECKED];
/// Likewise, checkers only (`-C`, no VRRP).
const CHECKER_CONFIGS: &[&str] = &[super::config::tests::FWMARK_CHECKED];

fn scenario_files_with_vrrp() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .filter(|(_, text)| text.contains("[vrrp_instance]"))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_generated_config_passes_keepalived_t_in_its_namespace() {
    if skip() {
        return;
    }
    let mut texts: Vec<(String, String, Mode)> = scenario_files_with_vrrp()
        .into_iter()
        .map(|(n, t)| (n, t, Mode::VrrpOnly))
        .collect();
    texts.extend(
        CLEAN_CONFIGS
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("clean-config-{i}.toml"), t.to_string(), Mode::VrrpOnly)),
    );
    texts.extend(
        FULL_CONFIGS
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("full-config-{i}.toml"), t.to_string(), Mode::Full)),
    );
    texts.extend(
        CHECKER_CONFIGS
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("checker-config-{i}.toml"), t.to_string(), Mode::CheckersOnly)),
    );
    let mut checked = 0;
    for (name, text, mode) in &texts {
        let scenario = parse(text, name).unwrap_or_else(|e| panic!("{}", e.render(name)));
        let lab = Lab::build(&crate::run::lab_plan(&scenario), Default::default())
            .await
            .unwrap();
        for director in &scenario.directors {
            let dir = lab.host_dir(&director.name).unwrap();
            let conf = super::conf_path(&dir);
            let text = config(&scenario, &director.name, &dir, *mode).unwrap();
            std::fs::write(&conf, &text).unwrap();
            let host = lab.host(&director.name).unwrap();
            if let Err(e) = config_test(host, &conf).await {
                panic!("{name}, {}:\n{text}\n{e}", director.name);
            }
            checked += 1;
        }
    }
    assert!(checked >= 2 * (CLEAN_CONFIGS.len() + FULL_CONFIGS.len()) + CHECKER_CONFIGS.len());
}

#[tokio::test]
async fn a_config_keepalived_warns_about_is_refused_with_its_words() {
    if skip() {
        return;
    }
    // Strict mode refuses authentication (a warning: keepalived -t exits 5).
    let text = PAIR.replace(
        "version = 3\nadvert_int = 0.1",
        "vrrp_strict = true\nauth_pass = \"pw\"",
    );
    let (scenario, lab) = build_lab(&text).await;
    let err = start(&scenario, &lab, "lvs2").await.err().expect("refused").to_string();
    assert!(err.starts_with("lvs2: keepalived -t -f "), "{err}");
    assert!(err.contains("exit status: 5"), "{err}");
    assert!(err.contains("Strict mode does not support authentication"), "{err}");
    assert!(
        !super::pid_path(&lab.host_dir("lvs2").unwrap()).exists(),
        "nothing was started"
    );

    // Without notify_fifo lvslab would see no state: refused before anything runs.
    let dir = lab.host_dir("lvs1").unwrap();
    let conf = config(&scenario, "lvs1", &dir, Mode::VrrpOnly).unwrap();
    let without: String = conf
        .lines()
        .filter(|l| !l.contains("notify_fifo"))
        .collect::<Vec<_>>()
        .join("\n");
    let err = Daemon::start(
        lab.host("lvs1").unwrap(),
        &dir,
        &without,
        Mode::VrrpOnly,
        Arc::new(|_| {}),
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("must name notify_fifo"), "{err}");
}

#[tokio::test]
async fn transitions_reach_the_callback_as_they_are_read() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let dir = lab.host_dir("lvs1").unwrap();
    let text = config(&scenario, "lvs1", &dir, Mode::VrrpOnly).unwrap();
    let started = Instant::now();
    let mut d = Daemon::start(
        lab.host("lvs1").unwrap(),
        &dir,
        &text,
        Mode::VrrpOnly,
        Arc::new(move |t| sink.lock().unwrap().push((t.state, t.priority))),
    )
    .await
    .unwrap();
    let master = d.wait_for_state(State::Master, START).await.unwrap();
    // Alone, priority 150: MASTER after master_down_interval from the init BACKUP.
    let alone = master.at - d.transitions()[0].at;
    eprintln!(
        "start: BACKUP {:?} after spawn, MASTER {alone:?} later",
        d.transitions()[0].at - started
    );
    assert!(alone + Duration::from_millis(20) >= master_down_interval(Version::V3, 150, ADVERT, 3));
    d.stop().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(State::Backup, 150), (State::Master, 150), (State::Stop, 150)]
    );
    assert_eq!(d.transitions().len(), 3);
    assert!(d.log().iter().any(|(_, l)| l == "(VI_1) Entering MASTER STATE"));
}

const CHILD_ENV: &str = "LVSLAB_KEEPALIVED_CHILD";

/// Run as a child process by the tests below: holds a keepalived pair (lvs1 frozen when the
/// variable says "freeze") until killed, or until its stdin closes should the parent die first.
#[tokio::test]
#[ignore = "a helper that the killed-lvslab tests run in a child process"]
async fn child_holds_a_keepalived_pair_until_killed() {
    let Some(how) = std::env::var_os(CHILD_ENV) else { return };
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let (a, b) = master_and_backup(&scenario, &lab).await;
    if how == "freeze" {
        a.freeze().unwrap();
    }
    println!("RUN {}", lab.run_id());
    println!(
        "PIDS {} {} {} {}",
        a.pid(),
        a.vrrp_pid().unwrap(),
        b.pid(),
        b.vrrp_pid().unwrap()
    );
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

/// Starts the helper above in a child process, SIGKILLs it once its keepalived pair runs and
/// returns the pair's pids (parent and VRRP child of lvs1, then of lvs2) and the run id of the
/// lab it left behind.
fn kill_a_child_lvslab(how: &str) -> (Vec<i32>, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "keepalived::tests::child_holds_a_keepalived_pair_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, how)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut run = String::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(id) = line.strip_prefix("RUN ") {
                run = id.to_string();
            } else if let Some(pids) = line.strip_prefix("PIDS ") {
                let pids: Vec<i32> = pids.split(' ').filter_map(|p| p.parse().ok()).collect();
                let _ = tx.send((pids, run.clone()));
            }
        }
    });
    let pids = rx.recv_timeout(Duration::from_secs(30));
    let running = pids
        .as_ref()
        .is_ok_and(|(p, _)| p.len() == 4 && p.iter().all(|p| pgrep_keepalived().contains(p)));
    // SIGKILL: nothing of lvslab runs any more, only the kernel's PDEATHSIG acts.
    child.kill().unwrap();
    child.wait().unwrap();
    let pids = pids.expect("the child started keepalived");
    assert!(running, "the child's keepalived ran: {pids:?}");
    pids
}

/// What a killed lvslab leaves is its run directory (nothing ran its teardown): `lvslab
/// clean` removes it, the owner being dead.
fn clean_the_dead_run(run: &str) {
    let dir = crate::lab::run_dir(run);
    assert!(dir.is_dir(), "{}", dir.display());
    // The other killed-lvslab test may clean at the same time: either removes it.
    let report = super::clean_leftovers();
    assert!(!dir.exists(), "{report:?}");
}

#[tokio::test]
async fn keepalived_dies_with_a_killed_lvslab() {
    if skip() {
        return;
    }
    let (pids, run) = kill_a_child_lvslab("run");
    none_left(&pids).await;
    clean_the_dead_run(&run);
}

#[tokio::test]
async fn a_frozen_vrrp_child_dies_with_a_killed_lvslab_too() {
    if skip() {
        return;
    }
    // A stopped process keeps the SIGTERM of its PDEATHSIG pending, but its process group is
    // orphaned when the keepalived parent dies, and the kernel then sends the group SIGHUP and
    // SIGCONT (POSIX orphaned process groups): it wakes and stops.
    let (pids, run) = kill_a_child_lvslab("freeze");
    none_left(&pids).await;
    clean_the_dead_run(&run);
}

#[tokio::test]
async fn strict_mode_without_accept_drops_the_vip_with_nftables_in_the_namespace() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(CLEAN_CONFIGS[2]).await;
    let (a, b) = tokio::join!(start(&scenario, &lab, "lvs1"), start(&scenario, &lab, "lvs2"));
    let (mut a, b) = (a.expect("lvs1 starts"), b.expect("lvs2 starts"));
    // The address owner (priority 255) goes MASTER at once.
    a.wait_for_state(State::Master, START).await.expect("lvs1 MASTER");
    b.wait_for_state(State::Backup, START).await.expect("lvs2 BACKUP");
    a.kill();
    b.wait_for_state(State::Master, Duration::from_secs(10))
        .await
        .expect("lvs2 takes over");
    // no_accept (strict mode's default for a non-owner): keepalived's nft table drops the VIP.
    // Its log comes over stderr, which may lag the notify FIFO's MASTER: wait for the line.
    let mut tap = b.tap();
    let line = "(VI_1) setting firewall drop rule";
    let seen = tokio::time::timeout(Duration::from_secs(5), async {
        while !b.log().iter().any(|(_, l)| l.contains(line)) {
            tap.changed().await;
        }
    })
    .await;
    assert!(seen.is_ok(), "{:?}", b.log());
    // Read in the director's namespace: the table is there, not in the host's.
    let listing = lab
        .host("lvs2")
        .unwrap()
        .exec(|| {
            std::process::Command::new("nft")
                .args(["list", "table", "ip", "keepalived"])
                .output()
        })
        .await
        .unwrap()
        .expect("nft runs");
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains("192.0.2.100") && text.contains("drop"), "{text}");
}

/// A keepalived started again after a stop goes on in the first one's record: a tap taken
/// before the stop is woken by the new run's lines and reads them after its restart mark,
/// and the new run waits for its own first state, not the old one's.
#[tokio::test]
async fn a_tap_follows_a_keepalived_started_again() {
    if skip() {
        return;
    }
    let (scenario, lab) = build_lab(PAIR).await;
    let mut first = start(&scenario, &lab, "lvs1").await.expect("lvs1 starts");
    first
        .wait_for_state(State::Master, START)
        .await
        .expect("lvs1 becomes MASTER");
    let mut tap = first.tap();
    first.stop().await.expect("graceful stop");
    assert!(tap.exit().is_some());
    let before = tap.lines_from(0).len();
    assert!(tap.restarts().is_empty());

    let host = lab.host("lvs1").unwrap();
    let dir = lab.host_dir("lvs1").unwrap();
    let text = config(&scenario, "lvs1", &dir, Mode::VrrpOnly).unwrap();
    let again = Daemon::start_again(&first, host, &dir, &text, Mode::VrrpOnly, Arc::new(|_| {}))
        .await
        .expect("started again");
    drop(first);
    // It waited for a state of its own: the stopped run's last was STOP.
    let states: Vec<State> = again.transitions().iter().map(|t| t.state).collect();
    let stop = states
        .iter()
        .position(|s| *s == State::Stop)
        .expect("the first run's STOP");
    assert_eq!(states.get(stop + 1), Some(&State::Backup), "{states:?}");
    again.wait_for_state(State::Master, START).await.expect("MASTER again");
    assert!(tap.exit().is_none(), "the tap sees the running keepalived");
    assert_eq!(tap.restarts(), vec![before]);
    // The notify FIFO can say MASTER before the log line is read: wait for the line itself.
    let deadline = tokio::time::Instant::now() + START;
    while !tap
        .lines_from(before)
        .iter()
        .any(|(_, l)| l.contains("Entering MASTER STATE"))
    {
        if tokio::time::timeout_at(deadline, tap.changed()).await.is_err() {
            panic!(
                "the tap never read the new run's MASTER line: {:?}",
                tap.lines_from(before)
            );
        }
    }
    assert_eq!(again.log().len(), tap.lines_from(0).len(), "one record, both runs");
    // A keepalived still running cannot be started again.
    let err = Daemon::start_again(&again, host, &dir, &text, Mode::VrrpOnly, Arc::new(|_| {}))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("still runs"), "{err}");
}
