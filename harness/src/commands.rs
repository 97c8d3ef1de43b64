//! What each CLI command does, with the exit codes: 0 ok, 1 expectations failed, 2 bad input or setup error.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::{Command, ConformArgs, DiagnoseArgs, EngineArg, RoleArg, RunArgs};
use crate::conform::{self, AllowList, ConformOptions, Status};
use crate::diagnose;
use crate::investigate::live;
use crate::lab::{self, Lab, LabOptions};
use crate::report;
use crate::run::{self, DiagnoseWhen, RunOptions, RunOutcome};
use crate::scenario::{self, EngineChoice, Scenario};

const EXIT_FAILED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

pub async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Run(args) => run_files(args).await,
        Command::Check { files } => check_files(&files),
        Command::Up { file, name, foreground } => up(&file, name, foreground).await,
        Command::Down { name } => down(&name).await,
        Command::List => list(),
        Command::Clean => clean(),
        Command::Import { file, output } => import(&file, output.as_deref()),
        Command::Graph { file } => graph(&file),
        Command::Diagnose(args) => diagnose(args).await,
        Command::Conform(args) => conform(args).await,
        Command::Exec { .. } | Command::Shell { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// Loads every file first, printing all problems, so a typo in the third file is not found after two long runs.
fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, ExitCode> {
    let mut scenarios = Vec::new();
    let mut bad = false;
    for file in files {
        match scenario::load(file) {
            Ok(s) => scenarios.push(s),
            Err(report) => {
                eprint!("{}", report.render(&file.display().to_string()));
                bad = true;
            }
        }
    }
    if bad {
        Err(ExitCode::from(EXIT_BAD_INPUT))
    } else {
        Ok(scenarios)
    }
}

fn check_files(files: &[PathBuf]) -> ExitCode {
    match load_all(files) {
        Ok(scenarios) => {
            for s in &scenarios {
                println!(
                    "{}: ok ({} mode, {} real servers)",
                    s.name,
                    s.service.mode,
                    s.real_servers.len()
                );
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

async fn run_files(args: RunArgs) -> ExitCode {
    let scenarios = match load_all(&args.files) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let opts = RunOptions {
        engine: args.engine.map(engine_choice),
        progress: !args.json,
        diagnose: DiagnoseWhen::Auto,
        // Counters are shown: they must be exact, not lagging IPVS's estimator.
        settle_stats: args.show_ipvs || args.json,
        witness: false,
    };
    let mut worst = ExitCode::SUCCESS;
    for scenario in &scenarios {
        let outcome = tokio::select! {
            outcome = run::run(scenario, &opts) => outcome,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the run's future dropped its lab: namespaces are gone with it.
                eprintln!("lvslab: interrupted; lab torn down");
                return ExitCode::from(130);
            }
        };
        match outcome {
            Ok(outcome) => {
                print_report(args.json, &outcome, || human_report(&outcome, args.show_ipvs));
                if !outcome.verdict.passed {
                    worst = ExitCode::from(EXIT_FAILED);
                }
            }
            Err(e) => {
                eprintln!("lvslab: {}: {e}", scenario.name);
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        }
    }
    worst
}

pub fn human_report(outcome: &RunOutcome, show_ipvs: bool) -> String {
    let mut out = String::new();
    let engine = match outcome.engine {
        Some(crate::director::EngineKind::Embedded) => "embedded",
        Some(crate::director::EngineKind::Kernel) => "kernel",
        None => "none (direct)",
    };
    out.push_str(&format!(
        "{} — {} mode, engine {engine}, {} requests in {:.0} ms (lab up in {:.1} ms)\n\n",
        outcome.scenario, outcome.mode, outcome.tally.requests, outcome.timings.traffic_ms, outcome.timings.bring_up_ms
    ));
    out.push_str(&report::render_spread(&outcome.tally));
    if show_ipvs {
        // One director: as before; several: each under its name and VIP.
        let several = outcome.directors.len() > 1;
        for d in &outcome.directors {
            if several {
                out.push_str(&format!("\n== director {} (VIP {}) ==\n", d.name, d.vip));
            }
            out.push_str("\n$ ipvsadm -Ln\n");
            out.push_str(&d.ipvs.list_text());
            out.push_str("\n$ ipvsadm -Ln --stats\n");
            out.push_str(&d.ipvs.stats_text());
            out.push_str("\n$ ipvsadm -Ln --rate\n");
            out.push_str(&d.ipvs.rate_text());
            out.push_str("\n$ ipvsadm -Ln --persistent-conn\n");
            out.push_str(&d.ipvs.persistent_conn_text());
            out.push_str("\n$ ipvsadm -Lnc\n");
            out.push_str(&d.ipvs.conns_text());
            out.push_str("\n$ ipvsadm -S -n\n");
            out.push_str(&d.ipvs.save_text());
        }
    }
    out.push('\n');
    out.push_str(&report::render_checks(&outcome.verdict.checks));
    let verdict = if outcome.verdict.passed { "PASS" } else { "FAIL" };
    out.push_str(&format!("verdict: {verdict}\n"));
    if let Some(diagnosis) = &outcome.diagnosis {
        if outcome.verdict.passed {
            let ids = if diagnosis.healthy {
                "healthy".to_owned()
            } else {
                diagnosis.ids().join(", ")
            };
            out.push_str(&format!(
                "diagnosis: {ids} (`lvslab diagnose` shows the evidence and fixes)\n"
            ));
        } else {
            out.push_str("\nWhy (diagnosis):\n");
            out.push_str(&diagnose::render(diagnosis));
            out.push_str(&problems_text(&outcome.investigation_problems));
        }
    }
    out
}

fn problems_text(problems: &[String]) -> String {
    problems.iter().map(|p| format!("(not gathered: {p})\n")).collect()
}

/// `lvslab diagnose`: the spread, then the causes ranked, with evidence and fixes.
pub fn diagnosis_report(outcome: &RunOutcome) -> String {
    let mut out = format!(
        "{} — {} mode, {} requests\n\n",
        outcome.scenario, outcome.mode, outcome.tally.requests
    );
    out.push_str(&report::render_spread(&outcome.tally));
    out.push('\n');
    match &outcome.diagnosis {
        Some(d) => out.push_str(&diagnose::render(d)),
        None => out.push_str("no diagnosis was made\n"),
    }
    out.push_str(&problems_text(&outcome.investigation_problems));
    out
}

/// Exit 0 healthy, 1 findings, 2 bad input or setup error.
async fn diagnose(args: DiagnoseArgs) -> ExitCode {
    if args.live {
        return diagnose_live(&args);
    }
    let Some(file) = &args.file else {
        eprintln!("lvslab diagnose: give a scenario file, or --live --role real-server|director");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let scenario = match load_all(std::slice::from_ref(file)) {
        Ok(mut s) => s.remove(0),
        Err(code) => return code,
    };
    let opts = RunOptions {
        engine: args.engine.map(engine_choice),
        progress: !args.json,
        diagnose: DiagnoseWhen::Always,
        // Rules read the counters (connections scheduled per real server).
        settle_stats: true,
        witness: false,
    };
    let outcome = tokio::select! {
        outcome = run::run(&scenario, &opts) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("lvslab: interrupted; lab torn down");
            return ExitCode::from(130);
        }
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("lvslab diagnose: {}: {e}", scenario.name);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    print_report(args.json, &outcome, || diagnosis_report(&outcome));
    match &outcome.diagnosis {
        Some(d) if d.healthy => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_FAILED),
    }
}

/// Exit 0 when every scenario agrees under both engines (or as the allow-list says), 1 otherwise.
async fn conform(args: ConformArgs) -> ExitCode {
    let scenarios = match load_all(&args.files) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let allow = match args.allow.as_deref().map(AllowList::load).transpose() {
        Ok(a) => a.unwrap_or_else(AllowList::empty),
        Err(e) => {
            eprintln!("lvslab conform: allow-list {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if !crate::director::kernel_has_ipvs() {
        eprintln!("lvslab conform: this kernel has no IPVS (no genetlink family IPVS): nothing to compare with; run it where `modprobe ip_vs` works, or under ci/kernel-vm.sh");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let opts = ConformOptions {
        runs: args.runs,
        allow,
        witness: !args.no_witness,
    };
    let mut reports = Vec::new();
    for scenario in &scenarios {
        let report = tokio::select! {
            r = conform::conform_retrying(scenario, &opts) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("lvslab: interrupted; lab torn down");
                return ExitCode::from(130);
            }
        };
        print!("{}", report.render());
        reports.push(report);
    }
    print!("{}", conform::summary(&reports));
    if reports.iter().any(|r| r.status == Status::Different) {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}

fn diagnose_live(args: &DiagnoseArgs) -> ExitCode {
    match args.role {
        Some(RoleArg::RealServer) => {
            let Some(vip) = args.vip else {
                eprintln!("lvslab diagnose --live --role real-server: give the VIP with --vip");
                return ExitCode::from(EXIT_BAD_INPUT);
            };
            let report = match live::check_real_server(vip, args.port) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("lvslab diagnose --live: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            };
            print_report(args.json, &report, || report.render());
            if report.problems().next().is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Some(RoleArg::Director) => {
            let select = args.vip.map(|vip| std::net::SocketAddrV4::new(vip, args.port));
            let report = match live::check_director(args.ipvsadm.as_deref(), select) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("lvslab diagnose --live --role director: {e}");
                    return ExitCode::from(EXIT_BAD_INPUT);
                }
            };
            print_report(args.json, &report, || report.render());
            if report.diagnosis.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        None => {
            eprintln!("lvslab diagnose --live: give --role real-server or --role director");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// One JSON object on a line for machines, or the human text.
fn print_report<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string(value) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("lvslab: cannot encode the report as JSON: {e}"),
        }
    } else {
        print!("{}", human());
    }
}

fn engine_choice(arg: EngineArg) -> EngineChoice {
    match arg {
        EngineArg::Auto => EngineChoice::Auto,
        EngineArg::Embedded => EngineChoice::Embedded,
        EngineArg::Kernel => EngineChoice::Kernel,
    }
}

/// `lvslab up`: detaches a copy of itself that holds the lab (`--foreground`), and returns once it is up.
async fn up(file: &Path, name: Option<String>, foreground: bool) -> ExitCode {
    let scenario = match load_all(&[file.to_path_buf()]) {
        Ok(mut s) => s.remove(0),
        Err(code) => return code,
    };
    let name = name.unwrap_or_else(|| scenario.name.clone());
    if foreground {
        return hold_lab(&scenario, &name).await;
    }
    detach_holder(file, &name)
}

async fn hold_lab(scenario: &Scenario, name: &str) -> ExitCode {
    let lab = match Lab::build(
        &run::lab_plan(scenario),
        LabOptions {
            keep: Some(name.to_owned()),
        },
    )
    .await
    {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("lvslab up: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let held = match run::Held::start(scenario, &lab).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("lvslab up: {e}");
            let _ = lab.teardown().await;
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let hosts: Vec<&str> = scenario.hosts().map(|h| h.name.as_str()).collect();
    println!("lab {name} is up: hosts {}", hosts.join(", "));
    println!("  lvslab exec {name} <host> -- <command>   (or: ip netns exec lvslab-{name}-<host> ...)");
    println!("  lvslab down {name}");
    // The detaching parent waits for this line.
    println!("ready");
    wait_for_stop_signal().await;
    held.stop().await;
    match lab.teardown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lvslab up: teardown: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn detach_holder(file: &Path, name: &str) -> ExitCode {
    use std::io::BufRead;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("lvslab up: cannot find my own executable: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["up", "--foreground", "--name", name]).arg(file);
    cmd.stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    // The holder leaves our session so a closed terminal does not end it.
    crate::sys::process::new_session_in_child(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lvslab up: cannot start the lab holder: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let Some(stdout) = child.stdout.take() else {
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    for line in std::io::BufReader::new(stdout).lines() {
        match line {
            Ok(l) if l == "ready" => return ExitCode::SUCCESS,
            Ok(l) => println!("{l}"),
            Err(_) => break,
        }
    }
    // The holder ended before it was ready: its stderr already said why.
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(2);
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_BAD_INPUT))
}

async fn down(name: &str) -> ExitCode {
    let Some(kept) = lab::list_kept().into_iter().find(|k| k.name == name) else {
        eprintln!("lvslab down: no kept lab named {name} (see `lvslab list`)");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    if !kept.alive {
        eprintln!(
            "lvslab down: the owner of {name} (pid {}) is gone; removing what it left",
            kept.pid
        );
        return clean();
    }
    let pid = nix::unistd::Pid::from_raw(kept.pid as i32);
    if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
        eprintln!("lvslab down: cannot signal pid {}: {e}", kept.pid);
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    // The owner removes its own links and state file; wait for that, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab::list_kept().iter().any(|k| k.name == name && k.alive) {
        if Instant::now() > deadline {
            eprintln!("lvslab down: {name} (pid {}) did not stop within 10 s", kept.pid);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("lab {name} is down");
    ExitCode::SUCCESS
}

fn list() -> ExitCode {
    let kept = lab::list_kept();
    if kept.is_empty() {
        println!("no kept labs");
    }
    for k in kept {
        let state = if k.alive {
            "up"
        } else {
            "dead owner (run `lvslab clean`)"
        };
        println!("{}  pid {}  {state}  hosts: {}", k.name, k.pid, k.hosts.join(", "));
    }
    ExitCode::SUCCESS
}

fn clean() -> ExitCode {
    match lab::clean() {
        Ok(report) => {
            for l in &report.removed_labs {
                println!("removed leftovers of dead lab {l}");
            }
            for (l, pid) in &report.live {
                println!("left {l} alone: its owner (pid {pid}) is alive; use `lvslab down {l}`");
            }
            for p in &report.problems {
                eprintln!("problem: {p}");
            }
            if report.removed_labs.is_empty() && report.live.is_empty() {
                println!("nothing to clean");
            }
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        }
        Err(e) => {
            eprintln!("lvslab clean: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn import(file: &Path, output: Option<&Path>) -> ExitCode {
    match crate::import::import_file(file) {
        Ok((toml, warnings)) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            match output {
                Some(path) => {
                    if let Err(e) = std::fs::write(path, toml) {
                        eprintln!("lvslab import: cannot write {}: {e}", path.display());
                        return ExitCode::from(EXIT_BAD_INPUT);
                    }
                    println!("wrote {}", path.display());
                }
                None => print!("{toml}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("lvslab import: {}: {e}", file.display());
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn graph(file: &Path) -> ExitCode {
    match load_all(&[file.to_path_buf()]) {
        Ok(scenarios) => {
            print!("{}", report::mermaid(&scenarios[0]));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Enters the host's namespace on this (only) thread and replaces the process with the command.
pub fn exec_in_kept(name: &str, host: &str, command: &[String]) -> ExitCode {
    let Some(kept) = lab::list_kept().into_iter().find(|k| k.name == name) else {
        eprintln!("lvslab: no kept lab named {name} (see `lvslab list`; start one with `lvslab up FILE`)");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    if !kept.hosts.iter().any(|h| h == host) {
        eprintln!(
            "lvslab: lab {name} has no host {host}; its hosts: {}",
            kept.hosts.join(", ")
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let fd = match lab::enter_kept(name, host) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("lvslab: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    if let Err(e) = nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET) {
        eprintln!("lvslab: cannot enter {name}/{host}: {e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let Some((program, args)) = command.split_first() else {
        eprintln!("lvslab: no command given");
        return ExitCode::from(EXIT_BAD_INPUT);
    };
    let err = std::process::Command::new(program).args(args).exec();
    eprintln!("lvslab: cannot run {program}: {err}");
    ExitCode::from(127)
}
