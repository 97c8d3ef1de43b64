//! What each CLI command does. Each returns its exit code (0 ok, 1 expectations failed) or a
//! [`CliError`], which `cli::finish` prints and maps to its code (2 bad input or setup error,
//! 130 Ctrl-C).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cli::{
    CheckFormat, CheckersArg, Cli, CliError, Command, ConformArgs, DiagnoseArgs, EngineArg, GraphFormat, RoleArg,
    RunArgs, TraceArgs, VrrpArg, EXIT_BAD_INPUT, EXIT_FAILED,
};
use crate::conform::{self, AllowList, ConformOptions, Status};
use crate::investigate::live;
use crate::lab::{self, Lab, LabOptions};
use crate::report::{self, diagnosis_report, human_report};
use crate::run::{self, DiagnoseWhen, RunOptions};
use crate::scenario::{self, CheckersChoice, EngineChoice, Scenario, VrrpChoice};

/// Runs the parsed command line: `exec` and `shell` on this thread, the rest on a runtime.
pub fn main(cli: Cli) -> Result<ExitCode, CliError> {
    // exec and shell replace this process inside a namespace: no runtime, no other threads.
    match cli.command {
        Command::Exec { name, host, command } => exec_in_kept(&name, &host, &command),
        // Blocking socket and netlink work on threads of its own: no runtime either.
        Command::Ipvsadm { name, director, args } => crate::ipvsadm::run(&name, director.as_deref(), &args),
        Command::Shell { name, host } => {
            let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
            exec_in_kept(&name, &host, &[shell])
        }
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| CliError::bad_input(format!("lvslab: cannot start the async runtime: {e}")))?;
            runtime.block_on(dispatch(command))
        }
    }
}

pub async fn dispatch(command: Command) -> Result<ExitCode, CliError> {
    match command {
        Command::Run(args) => run_files(args).await,
        Command::Check {
            files,
            format: CheckFormat::Text,
        } => check_files(&files),
        Command::Check {
            files,
            format: CheckFormat::Json,
        } => check_files_json(&files),
        Command::Schema => {
            print!("{}", crate::schema::scenario_schema_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Up {
            file,
            name,
            foreground,
            capture,
        } => up(&file, name, foreground, capture.as_deref()).await,
        Command::Down { name } => down(&name).await,
        Command::List => Ok(list()),
        Command::Clean => clean(),
        Command::Import { files, output } => import(&files, output.as_deref()),
        Command::Graph { file, format } => graph(&file, format),
        Command::Diagnose(args) => diagnose(args).await,
        Command::Conform(args) => conform(args).await,
        Command::Trace(args) => trace(args).await,
        Command::Exec { .. } | Command::Shell { .. } | Command::Ipvsadm { .. } => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// Loads every file first, printing all problems, so a typo in the third file is not found after two long runs.
fn load_all(files: &[PathBuf]) -> Result<Vec<Scenario>, CliError> {
    let mut scenarios = Vec::new();
    let mut bad = false;
    for file in files {
        match scenario::load_checked(file) {
            Ok((s, warnings)) => {
                if !warnings.is_empty() {
                    eprint!("{}", warnings.render(&file.display().to_string()));
                }
                // nft's own verdict on the hosts' rules, at their lines, before any lab is built.
                let refused = s
                    .hosts
                    .iter()
                    .any(|h| h.nftables.is_some())
                    .then(|| scenario::firewall::check_rules_in(file, &s))
                    .filter(|report| !report.is_empty());
                match refused {
                    Some(report) => {
                        eprint!("{}", report.render(&file.display().to_string()));
                        bad = true;
                    }
                    None => scenarios.push(s),
                }
            }
            Err(report) => {
                eprint!("{}", report.render(&file.display().to_string()));
                bad = true;
            }
        }
    }
    if bad {
        Err(CliError::Reported(EXIT_BAD_INPUT))
    } else {
        Ok(scenarios)
    }
}

fn load_one(file: &Path) -> Result<Scenario, CliError> {
    Ok(load_all(&[file.to_path_buf()])?.remove(0))
}

fn check_files(files: &[PathBuf]) -> Result<ExitCode, CliError> {
    for s in &load_all(files)? {
        let vrrp = match &s.vrrp {
            Some(v) => format!(", {} VRRP directors ({})", v.nodes.len(), v.choice),
            None => String::new(),
        };
        println!(
            "{}: ok ({}, {} real servers{vrrp})",
            s.name,
            s.modes_phrase(),
            s.real_servers.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `future`, or [`CliError::Interrupted`] on Ctrl-C. Dropping the future drops its lab: the
/// namespaces go with it.
async fn unless_interrupted<T>(future: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    tokio::select! {
        out = future => Ok(out),
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
    }
}

/// Ctrl-C over a command's several runs: one listener from the start, so a Ctrl-C that comes
/// between two runs stops the next one instead of being lost (a fresh `ctrl_c()` only sees
/// signals after its first poll, and the handler installed by the first one keeps SIGINT from
/// ending the process).
struct Interrupt(Option<tokio::signal::unix::Signal>);

impl Interrupt {
    fn listen() -> Interrupt {
        Interrupt(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
    }

    async fn guard<T>(&mut self, future: impl std::future::Future<Output = T>) -> Result<T, CliError> {
        match &mut self.0 {
            Some(sigint) => tokio::select! {
                out = future => Ok(out),
                _ = sigint.recv() => Err(CliError::Interrupted),
            },
            None => unless_interrupted(future).await,
        }
    }
}

/// `check --format json`: the document on stdout; exit 2 when a file has an error.
fn check_files_json(files: &[PathBuf]) -> Result<ExitCode, CliError> {
    let output = crate::check_json::check(files);
    let json = serde_json::to_string_pretty(&output)
        .map_err(|e| CliError::bad_input(format!("lvslab check: cannot encode the problems as JSON: {e}")))?;
    println!("{json}");
    Ok(if output.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

async fn run_files(args: RunArgs) -> Result<ExitCode, CliError> {
    if let Some(junit) = &args.junit {
        return run_files_junit(&args, junit).await;
    }
    let scenarios = load_all(&args.files)?;
    if let Some(path) = &args.html {
        html_destination_exists(path, "lvslab run")?;
    }
    let opts = run_options(&args);
    let mut worst = ExitCode::SUCCESS;
    let mut outcomes = Vec::new();
    // A run that errors or is interrupted ends the command, but the report still shows
    // the scenarios that finished before it.
    let mut stopped = None;
    let mut interrupt = Interrupt::listen();
    for scenario in &scenarios {
        let outcome = match interrupt
            .guard(run::run_capturing(scenario, &opts, args.capture.as_deref()))
            .await
        {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => {
                stopped = Some(CliError::bad_input(format!("lvslab: {}: {e}", scenario.name)));
                break;
            }
            Err(interrupted) => {
                stopped = Some(interrupted);
                break;
            }
        };
        print_report(args.json, &outcome, || human_report(&outcome, args.show_ipvs));
        if !outcome.verdict.passed {
            worst = ExitCode::from(EXIT_FAILED);
        }
        outcomes.push(outcome);
    }
    if let Some(path) = &args.html {
        finish_html(path, &scenarios[..outcomes.len()], &outcomes, stopped.as_ref())?;
    }
    match stopped {
        Some(e) => Err(e),
        None => Ok(worst),
    }
}

/// `run --html` after the runs: written when a scenario finished; with the runs `stopped`,
/// a failure to write is only told, and the stop is the command's error.
fn finish_html(
    path: &Path,
    scenarios: &[Scenario],
    outcomes: &[run::RunOutcome],
    stopped: Option<&CliError>,
) -> Result<(), CliError> {
    if stopped.is_some() && outcomes.is_empty() {
        return Ok(());
    }
    match write_html(path, "lvslab run", scenarios, outcomes) {
        Err(e) if stopped.is_some() => {
            if let Some(m) = e.message() {
                eprintln!("{m}");
            }
            Ok(())
        }
        other => other,
    }
}

/// `run --junit`: every file gets its testcase, so one bad file does not hide the others'
/// results. Exit 2 when a file or a run was bad, else 1 when an expectation failed.
async fn run_files_junit(args: &RunArgs, junit: &Path) -> Result<ExitCode, CliError> {
    use crate::junit::{Case, JunitReport};
    let opts = run_options(args);
    let mut report = JunitReport::default();
    let mut checked = Vec::new();
    for file in &args.files {
        let (scenario, problems) = crate::check_json::check_file(file);
        let shown = file.display().to_string();
        if !problems.is_empty() {
            eprint!("{}", problems.render(&shown));
        }
        checked.push((
            file,
            shown,
            scenario.filter(|_| problems.errors().next().is_none()),
            problems,
        ));
    }
    if let Some(path) = &args.html {
        html_destination_exists(path, "lvslab run")?;
    }
    let mut worst = ExitCode::SUCCESS;
    let mut bad = false;
    let mut interrupted = None;
    let mut interrupt = Interrupt::listen();
    let mut finished: (Vec<Scenario>, Vec<run::RunOutcome>) = (Vec::new(), Vec::new());
    for (file, shown, scenario, problems) in checked {
        let Some(scenario) = scenario else {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let count = problems.errors().count();
            let message = format!("{count} problem{} in {shown}", if count == 1 { "" } else { "s" });
            report.push(Case::error(
                &shown,
                &stem,
                &message,
                &problems.render(&shown),
                Duration::ZERO,
            ));
            bad = true;
            continue;
        };
        let started = Instant::now();
        let result = match interrupt
            .guard(run::run_capturing(&scenario, &opts, args.capture.as_deref()))
            .await
        {
            Ok(result) => result,
            Err(e) => {
                // What finished is written; the run Ctrl-C stopped is an error testcase.
                let message = format!(
                    "lvslab: {}: interrupted (Ctrl-C) after {:.1} s",
                    scenario.name,
                    started.elapsed().as_secs_f64()
                );
                report.push(Case::error(
                    &shown,
                    &scenario.name,
                    &message,
                    &message,
                    started.elapsed(),
                ));
                interrupted = Some(e);
                break;
            }
        };
        match result {
            Ok(outcome) => {
                print_report(args.json, &outcome, || human_report(&outcome, args.show_ipvs));
                if !outcome.verdict.passed {
                    worst = ExitCode::from(EXIT_FAILED);
                }
                report.push(Case::from_outcome(&shown, &outcome));
                finished.0.push(scenario);
                finished.1.push(outcome);
            }
            Err(e) => {
                let message = format!("lvslab: {}: {e}", scenario.name);
                eprintln!("{message}");
                report.push(Case::error(
                    &shown,
                    &scenario.name,
                    &message,
                    &message,
                    started.elapsed(),
                ));
                bad = true;
            }
        }
    }
    std::fs::write(junit, report.to_xml())
        .map_err(|e| CliError::bad_input(format!("lvslab run: cannot write {}: {e}", junit.display())))?;
    if let Some(path) = &args.html {
        finish_html(path, &finished.0, &finished.1, interrupted.as_ref())?;
    }
    if let Some(e) = interrupted {
        return Err(e);
    }
    Ok(if bad { ExitCode::from(EXIT_BAD_INPUT) } else { worst })
}

fn run_options(args: &RunArgs) -> RunOptions {
    RunOptions {
        engine: args.engine.map(engine_choice),
        progress: !args.json,
        diagnose: DiagnoseWhen::Auto,
        // Counters are shown: they must be exact, not lagging IPVS's estimator.
        settle_stats: args.show_ipvs || args.json || args.html.is_some(),
        witness: false,
        vrrp: args.vrrp.map(vrrp_choice),
        checkers: args.checkers.map(checkers_choice),
    }
}

/// Exit 0 healthy, 1 findings, 2 bad input or setup error.
async fn diagnose(args: DiagnoseArgs) -> Result<ExitCode, CliError> {
    if args.live {
        return diagnose_live(&args);
    }
    let Some(file) = &args.file else {
        return Err(CliError::bad_input(
            "lvslab diagnose: give a scenario file, or --live --role real-server|director",
        ));
    };
    let scenario = load_one(file)?;
    if let Some(path) = &args.html {
        html_destination_exists(path, "lvslab diagnose")?;
    }
    let opts = RunOptions {
        engine: args.engine.map(engine_choice),
        progress: !args.json,
        diagnose: DiagnoseWhen::Always,
        // Rules read the counters (connections scheduled per real server).
        settle_stats: true,
        witness: false,
        vrrp: args.vrrp.map(vrrp_choice),
        checkers: args.checkers.map(checkers_choice),
    };
    let outcome = unless_interrupted(run::run_capturing(&scenario, &opts, args.capture.as_deref()))
        .await?
        .map_err(|e| CliError::bad_input(format!("lvslab diagnose: {}: {e}", scenario.name)))?;
    print_report(args.json, &outcome, || diagnosis_report(&outcome));
    if let Some(path) = &args.html {
        write_html(
            path,
            "lvslab diagnose",
            std::slice::from_ref(&scenario),
            std::slice::from_ref(&outcome),
        )?;
    }
    Ok(match &outcome.diagnosis {
        Some(d) if d.healthy => ExitCode::SUCCESS,
        _ => ExitCode::from(EXIT_FAILED),
    })
}

/// `lvslab trace`: a capture directory's request, or a scenario run with captures first.
async fn trace(args: TraceArgs) -> Result<ExitCode, CliError> {
    let bad = |e: String| CliError::bad_input(format!("lvslab trace: {e}"));
    let path = if args.file.is_dir() {
        crate::trace::trace_dir(&args.file, args.request).map_err(bad)?
    } else {
        let scenario = load_one(&args.file)?;
        let (root, temporary) = match &args.capture {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("lvslab-trace-{}", std::process::id())),
                true,
            ),
        };
        let opts = RunOptions {
            progress: !args.json,
            diagnose: DiagnoseWhen::Never,
            ..RunOptions::default()
        };
        let ran = unless_interrupted(run::run_capturing(&scenario, &opts, Some(&root))).await;
        let traced = match ran {
            Ok(Ok(_)) => crate::trace::trace_dir(&root.join(&scenario.name), args.request).map_err(bad),
            Ok(Err(e)) => Err(CliError::bad_input(format!("lvslab trace: {}: {e}", scenario.name))),
            Err(e) => Err(e),
        };
        if temporary {
            let _ = std::fs::remove_dir_all(&root);
        }
        traced?
    };
    print_report(args.json, &path, || crate::trace::render(&path));
    Ok(ExitCode::SUCCESS)
}

/// Exit 0 when every scenario agrees under both engines (or as the allow-list says), 1 otherwise.
async fn conform(args: ConformArgs) -> Result<ExitCode, CliError> {
    let scenarios = load_all(&args.files)?;
    let allow = args
        .allow
        .as_deref()
        .map(AllowList::load)
        .transpose()
        .map_err(|e| CliError::bad_input(format!("lvslab conform: allow-list {e}")))?
        .unwrap_or_else(AllowList::empty);
    if !crate::director::kernel_has_ipvs() {
        return Err(CliError::bad_input("lvslab conform: this kernel has no IPVS (no genetlink family IPVS): nothing to compare with; run it where `modprobe ip_vs` works, or under ci/kernel-vm.sh"));
    }
    let opts = ConformOptions {
        runs: args.runs,
        allow,
        witness: !args.no_witness,
        kernel_checkers: checkers_choice(args.checkers),
    };
    let mut reports = Vec::new();
    for scenario in &scenarios {
        let report = unless_interrupted(conform::conform_retrying(scenario, &opts)).await?;
        print!("{}", report.render());
        reports.push(report);
    }
    print!("{}", conform::summary(&reports));
    Ok(if reports.iter().any(|r| r.status == Status::Different) {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

fn diagnose_live(args: &DiagnoseArgs) -> Result<ExitCode, CliError> {
    match args.role {
        Some(RoleArg::RealServer) => {
            let Some(vip) = args.vip else {
                return Err(CliError::bad_input(
                    "lvslab diagnose --live --role real-server: give the VIP with --vip",
                ));
            };
            let report = live::check_real_server(vip, args.port)
                .map_err(|e| CliError::bad_input(format!("lvslab diagnose --live: {e}")))?;
            print_report(args.json, &report, || report.render());
            Ok(if report.problems().next().is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            })
        }
        Some(RoleArg::Director) => {
            let select = args.vip.map(|vip| std::net::SocketAddrV4::new(vip, args.port));
            let report = live::check_director(args.ipvsadm.as_deref(), select)
                .map_err(|e| CliError::bad_input(format!("lvslab diagnose --live --role director: {e}")))?;
            print_report(args.json, &report, || report.render());
            Ok(if report.diagnosis.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            })
        }
        None => Err(CliError::bad_input(
            "lvslab diagnose --live: give --role real-server or --role director",
        )),
    }
}

/// Refuses `--html` into a directory that is not there before the runs, not after them.
fn html_destination_exists(path: &Path, command: &str) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::bad_input(format!(
            "{command}: --html {}: no directory {}",
            path.display(),
            dir.display()
        )))
    }
}

/// The HTML report of these runs, a section each (`--html`).
fn write_html(
    path: &Path,
    command: &str,
    scenarios: &[Scenario],
    outcomes: &[run::RunOutcome],
) -> Result<(), CliError> {
    // The request paths of a run with --capture, as the report draws them.
    let paths: Vec<Option<Vec<report::RequestPath>>> = outcomes
        .iter()
        .map(|o| {
            o.capture
                .as_ref()
                .map(|c| c.paths.iter().map(report::html_path_from_trace).collect())
        })
        .collect();
    let sections: Vec<report::ReportSection> = scenarios
        .iter()
        .zip(outcomes)
        .zip(&paths)
        .map(|((scenario, outcome), paths)| report::ReportSection {
            scenario,
            outcome,
            paths: paths.as_deref(),
        })
        .collect();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    let title = format!("{command}: {}", names.join(", "));
    std::fs::write(path, report::html_report(&title, &sections))
        .map_err(|e| CliError::bad_input(format!("{command}: cannot write {}: {e}", path.display())))?;
    eprintln!("wrote {}", path.display());
    Ok(())
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

fn checkers_choice(arg: CheckersArg) -> CheckersChoice {
    match arg {
        CheckersArg::Auto => CheckersChoice::Auto,
        CheckersArg::Keepalived => CheckersChoice::Keepalived,
        CheckersArg::Embedded => CheckersChoice::Embedded,
    }
}

fn vrrp_choice(arg: VrrpArg) -> VrrpChoice {
    match arg {
        VrrpArg::Auto => VrrpChoice::Auto,
        VrrpArg::Keepalived => VrrpChoice::Keepalived,
        VrrpArg::Embedded => VrrpChoice::Embedded,
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
async fn up(file: &Path, name: Option<String>, foreground: bool, capture: Option<&Path>) -> Result<ExitCode, CliError> {
    let scenario = load_one(file)?;
    let name = name.unwrap_or_else(|| scenario.name.clone());
    // The holder may run from elsewhere: the directory as this shell means it.
    let capture = capture
        .map(std::path::absolute)
        .transpose()
        .map_err(|e| CliError::bad_input(format!("lvslab up: --capture: {e}")))?;
    if foreground {
        return hold_lab(&scenario, &name, capture.as_deref()).await;
    }
    detach_holder(file, &name, capture.as_deref())
}

async fn hold_lab(scenario: &Scenario, name: &str, capture: Option<&Path>) -> Result<ExitCode, CliError> {
    let plan = run::lab_plan(scenario);
    let lab = Lab::build(
        &plan,
        LabOptions {
            keep: Some(name.to_owned()),
        },
    )
    .await
    .map_err(|e| CliError::bad_input(format!("lvslab up: {e}")))?;
    // From before the servers start until `lvslab down`; the lab's Drop tears it down on error.
    let capturing = match capture {
        Some(dir) => Some(
            crate::capture::Capture::start(&lab, &plan, &dir.join(name))
                .await
                .map_err(|e| CliError::bad_input(format!("lvslab up: capture: {e}")))?,
        ),
        None => None,
    };
    let mut held = match run::Held::start(scenario, &lab).await {
        Ok(h) => h,
        Err(e) => {
            let error = CliError::bad_input(format!("lvslab up: {e}"));
            let _ = lab.teardown().await;
            return Err(error);
        }
    };
    let hosts: Vec<&str> = scenario.hosts().map(|h| h.name.as_str()).collect();
    println!("lab {name} is up: hosts {}", hosts.join(", "));
    println!("  lvslab exec {name} <host> -- <command>   (or: ip netns exec lvslab-{name}-<host> ...)");
    println!("  lvslab down {name}");
    if let Some(dir) = capture {
        println!("  capturing into {} until then", dir.join(name).display());
    }
    // `lvslab ipvsadm` asks the live engines through it until `lvslab down`.
    let control = match crate::ipvsadm::control::ControlSocket::bind(&lab::run_dir(lab.run_id())) {
        Ok(c) => c,
        Err(e) => {
            held.stop().await;
            let _ = lab.teardown().await;
            return Err(CliError::bad_input(format!("lvslab up: control socket: {e}")));
        }
    };
    // The detaching parent waits for this line.
    println!("ready");
    let stop = wait_for_stop_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = control.answer_next(held.engines_mut()) => {}
        }
    }
    drop(control);
    held.stop().await;
    if let Some(capturing) = capturing {
        // The parent is gone: a failure can only go to stderr, and the lab still comes down.
        let written = capturing.stop().map_err(|e| e.to_string()).and_then(|summary| {
            crate::trace::CaptureIndex {
                scenario: scenario.name.clone(),
                capture: summary,
                requests: Vec::new(),
            }
            .write()
        });
        if let Err(e) = written {
            eprintln!("lvslab up: capture: {e}");
        }
    }
    lab.teardown()
        .await
        .map_err(|e| CliError::bad_input(format!("lvslab up: teardown: {e}")))?;
    Ok(ExitCode::SUCCESS)
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

fn detach_holder(file: &Path, name: &str, capture: Option<&Path>) -> Result<ExitCode, CliError> {
    use std::io::BufRead;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::bad_input(format!("lvslab up: cannot find my own executable: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["up", "--foreground", "--name", name]).arg(file);
    if let Some(dir) = capture {
        cmd.arg("--capture").arg(dir);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    // The holder leaves our session so a closed terminal does not end it.
    crate::sys::process::new_session_in_child(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::bad_input(format!("lvslab up: cannot start the lab holder: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(CliError::Reported(EXIT_BAD_INPUT));
    };
    for line in std::io::BufReader::new(stdout).lines() {
        match line {
            Ok(l) if l == "ready" => return Ok(ExitCode::SUCCESS),
            Ok(l) => println!("{l}"),
            Err(_) => break,
        }
    }
    // The holder ended before it was ready: its stderr already said why.
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(2);
    Err(CliError::Reported(u8::try_from(code).unwrap_or(EXIT_BAD_INPUT)))
}

async fn down(name: &str) -> Result<ExitCode, CliError> {
    let Some(kept) = lab::list_kept().into_iter().find(|k| k.name == name) else {
        return Err(CliError::bad_input(format!(
            "lvslab down: no kept lab named {name} (see `lvslab list`)"
        )));
    };
    if !kept.alive {
        eprintln!(
            "lvslab down: the owner of {name} (pid {}) is gone; removing what it left",
            kept.pid
        );
        return clean();
    }
    let pid = nix::unistd::Pid::from_raw(kept.pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
        .map_err(|e| CliError::bad_input(format!("lvslab down: cannot signal pid {}: {e}", kept.pid)))?;
    // The owner removes its own links and state file; wait for that, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab::list_kept().iter().any(|k| k.name == name && k.alive) {
        if Instant::now() > deadline {
            return Err(CliError::bad_input(format!(
                "lvslab down: {name} (pid {}) did not stop within 10 s",
                kept.pid
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("lab {name} is down");
    Ok(ExitCode::SUCCESS)
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
        println!("{}  pid {}  {state}  hosts: {}", k.name, k.pid, host_list(&k.hosts));
    }
    ExitCode::SUCCESS
}

/// Beyond this many hosts `list` names the first ones and counts the rest.
const LISTED_HOSTS: usize = 12;

fn host_list(hosts: &[String]) -> String {
    if hosts.len() <= LISTED_HOSTS {
        return hosts.join(", ");
    }
    format!(
        "{}, … and {} more ({} in all; `lvslab exec NAME HOST -- …` reaches any of them)",
        hosts[..LISTED_HOSTS].join(", "),
        hosts.len() - LISTED_HOSTS,
        hosts.len()
    )
}

fn clean() -> Result<ExitCode, CliError> {
    let report = lab::clean().map_err(|e| CliError::bad_input(format!("lvslab clean: {e}")))?;
    for l in &report.removed_labs {
        println!("removed leftovers of dead lab {l}");
    }
    for (l, pid) in &report.live {
        println!("left {l} alone: its owner (pid {pid}) is alive; use `lvslab down {l}`");
    }
    let daemons = crate::keepalived::clean_leftovers();
    for (dir, pid) in &daemons.killed {
        println!("killed keepalived pid {pid} left by a dead run ({})", dir.display());
    }
    for dir in &daemons.removed_dirs {
        println!("removed run directory {}", dir.display());
    }
    for p in report.problems.iter().chain(&daemons.problems) {
        eprintln!("problem: {p}");
    }
    if report.removed_labs.is_empty()
        && report.live.is_empty()
        && daemons.killed.is_empty()
        && daemons.removed_dirs.is_empty()
    {
        println!("nothing to clean");
    }
    Ok(if report.problems.is_empty() && daemons.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn import(files: &[PathBuf], output: Option<&Path>) -> Result<ExitCode, CliError> {
    let (toml, warnings) = crate::import::import_files(files).map_err(|e| match files {
        [file] => CliError::bad_input(format!("lvslab import: {}: {e}", file.display())),
        _ => CliError::bad_input(format!("lvslab import: {e}")),
    })?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    match output {
        Some(path) => {
            std::fs::write(path, toml)
                .map_err(|e| CliError::bad_input(format!("lvslab import: cannot write {}: {e}", path.display())))?;
            println!("wrote {}", path.display());
        }
        None => print!("{toml}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn graph(file: &Path, format: GraphFormat) -> Result<ExitCode, CliError> {
    // Drawing builds nothing: the hosts' nftables need not pass nft here.
    let scenario = scenario::load(file).map_err(|report| {
        eprint!("{}", report.render(&file.display().to_string()));
        CliError::Reported(EXIT_BAD_INPUT)
    })?;
    print!(
        "{}",
        match format {
            GraphFormat::Mermaid => report::mermaid(&scenario),
            GraphFormat::Dot => report::dot(&scenario),
            GraphFormat::Svg => report::topology_svg(&scenario),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Enters the host's namespace on this (only) thread and replaces the process with the command.
pub fn exec_in_kept(name: &str, host: &str, command: &[String]) -> Result<ExitCode, CliError> {
    let Some(kept) = lab::list_kept().into_iter().find(|k| k.name == name) else {
        return Err(CliError::bad_input(format!(
            "lvslab: no kept lab named {name} (see `lvslab list`; start one with `lvslab up FILE`)"
        )));
    };
    if !kept.hosts.iter().any(|h| h == host) {
        return Err(CliError::bad_input(format!(
            "lvslab: lab {name} has no host {host}; its hosts: {}",
            kept.hosts.join(", ")
        )));
    }
    let fd = lab::enter_kept(name, host).map_err(|e| CliError::bad_input(format!("lvslab: {e}")))?;
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| CliError::bad_input(format!("lvslab: cannot enter {name}/{host}: {e}")))?;
    let Some((program, args)) = command.split_first() else {
        return Err(CliError::bad_input("lvslab: no command given"));
    };
    let source = std::process::Command::new(program).args(args).exec();
    Err(CliError::CannotRun {
        program: program.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_host_list_names_the_first_hosts_and_counts_the_rest() {
        let hosts: Vec<String> = (1..=1002).map(|i| format!("rs{i}")).collect();
        let line = host_list(&hosts);
        assert!(line.starts_with("rs1, rs2, "), "{line}");
        assert!(line.contains("rs12, … and 990 more (1002 in all;"), "{line}");
        assert_eq!(host_list(&hosts[..3]), "rs1, rs2, rs3");
    }
}
