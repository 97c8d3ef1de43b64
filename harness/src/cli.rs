//! Command line: the clap definitions, and the one place where a command's error becomes
//! a message and an exit code. Each command's work lives in its layer.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "lvslab",
    version,
    about = "Build LVS labs in network namespaces, fire requests, see where they went and why"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build each scenario's lab, fire its traffic, report the spread, check expectations, tear down.
    /// Exit 0 when every expectation holds, 1 when one fails, 2 for bad input.
    Run(RunArgs),
    /// Validate scenario files and print every problem with file:line:column. Exit 2 on problems.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `json`: one JSON document with every problem's file, line, column, severity, message and hint.
        #[arg(long, value_enum, default_value = "text")]
        format: CheckFormat,
    },
    /// Explain the spread: build the lab, run probes, gather evidence, print ranked findings.
    Diagnose(DiagnoseArgs),
    /// Run each scenario under kernel IPVS and under the embedded engine and compare verdicts,
    /// tallies, sequences, tables, connection states and diagnoses; on the kernel run, compare
    /// lvslab's views with the real `ipvsadm`'s. Needs a kernel with IPVS.
    /// Exit 0 when everything agrees (or differs only as the allow-list says), 1 otherwise.
    Conform(ConformArgs),
    /// Build a lab and keep it up (in the background) so you can exec/shell into its hosts.
    Up {
        file: PathBuf,
        /// Name of the kept lab (default: the scenario's name).
        #[arg(long)]
        name: Option<String>,
        /// Stay in the foreground until Ctrl-C instead of detaching.
        #[arg(long)]
        foreground: bool,
        /// Capture every interface and segment into DIR/<name>/ as pcapng until `lvslab down`.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
    },
    /// Tear down a lab kept up by `lvslab up`.
    Down { name: String },
    /// List labs kept up by `lvslab up`.
    List,
    /// Run a command inside one host of a kept lab, e.g. `lvslab exec dr-rr client -- curl -s 192.0.2.100`.
    Exec {
        name: String,
        host: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Read or change a kept lab's director with ipvsadm's options, on either engine:
    /// `lvslab ipvsadm NAME -Ln`, `--stats`, `--rate`, `-Lnc`, `-S -n`, and
    /// `-e -t VIP:PORT -r RIP:PORT -w 0` (drain), `-d`, `-a`. Refusals are ipvsadm's.
    #[command(allow_hyphen_values = true)]
    Ipvsadm {
        name: String,
        /// The director to ask (default: the lab's first).
        #[arg(long)]
        director: Option<String>,
        /// ipvsadm's arguments, e.g. `-Ln` or `-e -t 192.0.2.100:80 -r 10.0.0.11:80 -w 0`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Open a shell inside one host of a kept lab.
    Shell { name: String, host: String },
    /// Turn a keepalived.conf, `ipvsadm-save -n`, `ipvsadm -Ln` or /proc/net/ip_vs into a scenario
    /// (printed on stdout, or written to --output). Addresses are mapped onto the lab's networks;
    /// the originals are kept in comments.
    Import {
        /// One file; or several keepalived.conf files, one node each of one VRRP set-up; plus,
        /// for fwmark services, the director's marking rules (`iptables-save`, `nft list ruleset`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Print the scenario's topology: a Mermaid graph, Graphviz dot, or an SVG drawing.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "mermaid")]
        format: GraphFormat,
    },
    /// Print the JSON Schema of scenario files (shipped as schema/scenario.schema.json).
    Schema,
    /// Remove what dead lvslab runs left behind (state files, /run/netns links). Never touches anything it did not create.
    Clean,
    /// The path of one request through the lab, from `--capture`'s files: each hop with its
    /// MACs, addresses and ports and what it rewrote; for a failed request, where it stopped.
    Trace(TraceArgs),
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// A capture directory (DIR/<scenario> of `--capture DIR`), or a scenario to run with captures.
    pub file: PathBuf,
    /// The request, numbered from 1 in the run's order (the order of `--json`'s records).
    #[arg(long)]
    pub request: usize,
    /// Print the path as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// For a scenario: keep its captures in DIR/<scenario>/ (by default a temporary directory).
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON object per scenario instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also print the director's state as `ipvsadm -Ln`, `-Ln --stats`, `-Ln --rate`,
    /// `-Ln --persistent-conn`, `-Lnc` and `-S -n` print it (counters settled first).
    #[arg(long)]
    pub show_ipvs: bool,
    /// Override the scenario's director engine.
    #[arg(long, value_enum)]
    pub engine: Option<EngineArg>,
    /// Override who runs the directors' VRRP (scenarios with a [vrrp_instance]).
    #[arg(long, value_enum)]
    pub vrrp: Option<VrrpArg>,
    /// Override who runs the health checkers (scenarios with a [service.check]).
    #[arg(long, value_enum)]
    pub checkers: Option<CheckersArg>,
    /// Also write a JUnit XML report: one testcase per scenario. Files with problems and runs
    /// that cannot be set up become `<error>` testcases, and the other scenarios still run.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write one self-contained HTML report (topology, spread, timeline, checks,
    /// diagnosis, ipvsadm views), a section per scenario.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Capture every interface and segment into DIR/<scenario>/ as pcapng; the report adds
    /// request paths (see `lvslab trace`).
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConformArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Differences that are not bugs, each with its reason (TOML `[[allow]]` entries).
    #[arg(long)]
    pub allow: Option<PathBuf>,
    /// Runs per engine: the first is compared; the rest count passes and must repeat its facts.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Do not run the real `ipvsadm` beside lvslab's views.
    #[arg(long)]
    pub no_witness: bool,
    /// Who runs the kernel run's health checkers. By default lvslab's, as in the embedded run,
    /// so that only the engines differ; `keepalived` (or `auto`) compares the real keepalived's
    /// checkers on kernel IPVS with lvslab's on the embedded engine.
    #[arg(long, value_enum, default_value = "embedded")]
    pub checkers: CheckersArg,
}

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// Scenario to build and diagnose (omit with --live).
    pub file: Option<PathBuf>,
    /// Print one JSON object (findings with their cause ids, evidence) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Check the host this runs on instead of a lab.
    #[arg(long, requires = "role")]
    pub live: bool,
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
    /// The virtual IP: the one to check for (--role real-server), or the service to pick (--role director; without it, every service).
    #[arg(long)]
    pub vip: Option<std::net::Ipv4Addr>,
    /// The service port, with --vip.
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    /// `ipvsadm -Ln` output to read instead of the kernel's /proc/net/ip_vs (for --role director).
    #[arg(long)]
    pub ipvsadm: Option<PathBuf>,
    /// Override the scenario's director engine (not with --live).
    #[arg(long, value_enum, conflicts_with = "live")]
    pub engine: Option<EngineArg>,
    /// Override who runs the directors' VRRP (not with --live).
    #[arg(long, value_enum, conflicts_with = "live")]
    pub vrrp: Option<VrrpArg>,
    /// Override who runs the health checkers (not with --live).
    #[arg(long, value_enum, conflicts_with = "live")]
    pub checkers: Option<CheckersArg>,
    /// Also write the diagnosis as a self-contained HTML report (not with --live).
    #[arg(long, value_name = "FILE", conflicts_with = "live")]
    pub html: Option<PathBuf>,
    /// Capture every interface and segment into DIR/<scenario>/ as pcapng (not with --live).
    #[arg(long, value_name = "DIR", conflicts_with = "live")]
    pub capture: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EngineArg {
    Auto,
    Embedded,
    Kernel,
}

/// `vrrp` as the command line takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum VrrpArg {
    /// The real keepalived when installed, else lvslab's own.
    Auto,
    /// The real keepalived (`keepalived -P` in each director's namespace).
    Keepalived,
    /// lvslab's own VRRP.
    Embedded,
}

/// `checkers` as the command line takes it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CheckersArg {
    /// The real keepalived where it can run them (installed, kernel engine), else lvslab's own.
    Auto,
    /// The real keepalived (`keepalived -C` in each director's namespace; kernel engine only).
    Keepalived,
    /// lvslab's own checkers.
    Embedded,
}

/// `check --format`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
}

/// `graph --format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid flowchart (Markdown viewers draw it).
    Mermaid,
    /// Graphviz: `lvslab graph FILE --format dot | dot -Tpng -o lab.png`.
    Dot,
    /// An SVG drawing made by lvslab itself.
    Svg,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RoleArg {
    RealServer,
    Director,
}

/// Some expectation failed (or `diagnose` found something, or `clean` met a problem).
pub const EXIT_FAILED: u8 = 1;
/// Bad input or a setup error; also clap's code for bad usage.
pub const EXIT_BAD_INPUT: u8 = 2;
/// `exec`/`shell`: the command could not be started (as a shell says it).
pub const EXIT_CANNOT_RUN: u8 = 127;
/// Ctrl-C, as a shell reports SIGINT (128 + 2).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command stopped before it could give its answer. A finished command's answer,
/// failed expectations included, is an `Ok(ExitCode)`.
///
/// A closed output pipe is not among these: the process keeps SIGPIPE's default action
/// (`main`), so a write to a pipe nobody reads ends it quietly, as it ends cat or grep.
#[derive(Debug)]
pub enum CliError {
    /// Bad input or a setup error, with the line to print (`lvslab up: …`).
    BadInput(String),
    /// Already said on stderr (the files' check reports, or the lab holder's own words):
    /// exit with this code and print nothing more.
    Reported(u8),
    /// Ctrl-C: the run's future was dropped, and its lab with it.
    Interrupted,
    /// `exec`/`shell`: the program could not be run inside the namespace.
    CannotRun { program: String, source: std::io::Error },
}

impl CliError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        CliError::BadInput(message.into())
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::BadInput(_) => EXIT_BAD_INPUT,
            CliError::Reported(code) => *code,
            CliError::Interrupted => EXIT_INTERRUPTED,
            CliError::CannotRun { .. } => EXIT_CANNOT_RUN,
        })
    }

    /// The line for stderr, if this error has not been told yet.
    pub fn message(&self) -> Option<String> {
        match self {
            CliError::BadInput(message) => Some(message.clone()),
            CliError::Reported(_) => None,
            CliError::Interrupted => Some("lvslab: interrupted; lab torn down".to_owned()),
            CliError::CannotRun { program, source } => Some(format!("lvslab: cannot run {program}: {source}")),
        }
    }
}

/// The exit code of a command's result, after printing its error (the one place that does).
pub fn finish(result: Result<ExitCode, CliError>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            if let Some(message) = e.message() {
                eprintln!("{message}");
            }
            e.exit_code()
        }
    }
}
