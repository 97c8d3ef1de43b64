//! The library's public surface: load or build a scenario, run it, read and assert on the
//! outcome. Everything else in the crate is internal and may change between versions.

use std::path::Path;

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table};

use crate::lvs::{Mode, Scheduler};
use crate::report::human_report;
use crate::run::{RunOptions, RunOutcome};
use crate::scenario::{self, Scenario};
use crate::verdict::Check;

/// Why a scenario could not be loaded or run. A run whose expectations fail is not an
/// error: it is an [`Outcome`] that did not pass.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario has problems; `report` lists each at its `file:line:column`, as
    /// `lvslab check` prints them.
    #[error("{report}")]
    Invalid { report: String },
    /// The lab could not be built or the run could not be set up (not root, no IPVS for
    /// `engine = "kernel"`, ...).
    #[error("{scenario}: {message}")]
    Run { scenario: String, message: String },
    /// The async runtime for a blocking [`run`] could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl Scenario {
    /// Reads, checks and resolves a scenario file; the file stem is the default name.
    ///
    /// ```
    /// let scenario = lvslab::Scenario::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/dr-rr.toml"))?;
    /// assert_eq!(scenario.name, "dr-rr");
    /// # Ok::<(), lvslab::Error>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Scenario, Error> {
        let path = path.as_ref();
        scenario::load(path).map_err(|report| Error::Invalid {
            report: report.render(&path.display().to_string()),
        })
    }

    /// Checks and resolves scenario text, as in a file; `name` is the default scenario name.
    pub fn from_toml(text: &str, name: &str) -> Result<Scenario, Error> {
        scenario::parse(text, name).map_err(|report| Error::Invalid {
            report: report.render(name),
        })
    }

    /// Starts a scenario in Rust code. It is written as scenario TOML and checked like a file,
    /// so every default and every message is a file's.
    ///
    /// ```
    /// use lvslab::{Mode, Scenario, Scheduler};
    ///
    /// let scenario = Scenario::builder("web")
    ///     .service(Mode::Dr, Scheduler::Wrr)
    ///     .real_server("web1", 1)
    ///     .real_server("web2", 3)
    ///     .requests(40)
    ///     .expect_share("web1", 0.25)
    ///     .expect_share("web2", 0.75)
    ///     .expect_errors(0)
    ///     .build()?;
    /// assert_eq!(scenario.real_servers.len(), 2);
    /// # Ok::<(), lvslab::Error>(())
    /// ```
    pub fn builder(name: &str) -> ScenarioBuilder {
        ScenarioBuilder::new(name)
    }
}

/// A scenario written in Rust: each method sets the file key of the same name.
/// [`ScenarioBuilder::to_toml`] shows the file it writes.
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    doc: DocumentMut,
}

impl ScenarioBuilder {
    pub fn new(name: &str) -> Self {
        let mut doc = DocumentMut::new();
        doc["name"] = value(name);
        ScenarioBuilder { doc }
    }

    /// `[service] mode` and `scheduler`.
    pub fn service(mut self, mode: Mode, scheduler: Scheduler) -> Self {
        let service = self.table("service");
        service["mode"] = value(mode.as_str());
        service["scheduler"] = value(scheduler.as_str());
        self
    }

    /// `[service] vip` (default: the lab's first free address).
    pub fn vip(mut self, vip: std::net::Ipv4Addr) -> Self {
        self.table("service")["vip"] = value(vip.to_string());
        self
    }

    /// `[service] port` (default 80).
    pub fn port(mut self, port: u16) -> Self {
        self.table("service")["port"] = value(i64::from(port));
        self
    }

    /// One `[[real_server]]` with its weight; its address comes from the lab's network.
    pub fn real_server(mut self, name: &str, weight: u32) -> Self {
        let mut server = Table::new();
        server["name"] = value(name);
        server["weight"] = value(i64::from(weight));
        let servers = self
            .doc
            .entry("real_server")
            .or_insert(Item::ArrayOfTables(ArrayOfTables::new()));
        if let Some(servers) = servers.as_array_of_tables_mut() {
            servers.push(server);
        }
        self
    }

    /// `[traffic] requests`.
    pub fn requests(mut self, requests: u32) -> Self {
        self.table("traffic")["requests"] = value(i64::from(requests));
        self
    }

    /// `[expect] backends`: exactly these real servers answer.
    pub fn expect_backends<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.table("expect")["backends"] = value(names.into_iter().collect::<Array>());
        self
    }

    /// `[expect] even = true`: every answering server gets the same share.
    pub fn expect_even(mut self) -> Self {
        self.table("expect")["even"] = value(true);
        self
    }

    /// One entry of `[expect] share`: `backend` answers this fraction of the requests.
    pub fn expect_share(mut self, backend: &str, share: f64) -> Self {
        let expect = self.table("expect");
        let shares = expect
            .entry("share")
            .or_insert(value(InlineTable::new()))
            .as_inline_table_mut();
        if let Some(shares) = shares {
            shares.insert(backend, share.into());
        }
        self
    }

    /// `[expect] tolerance`, relative to each expected share.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.table("expect")["tolerance"] = value(tolerance);
        self
    }

    /// `[expect] errors`: this many requests fail.
    pub fn expect_errors(mut self, errors: u32) -> Self {
        self.table("expect")["errors"] = value(i64::from(errors));
        self
    }

    /// The scenario file this builder has written so far.
    pub fn to_toml(&self) -> String {
        self.doc.to_string()
    }

    /// Checks and resolves the scenario as [`Scenario::from_toml`] does.
    pub fn build(&self) -> Result<Scenario, Error> {
        let name = self.doc.get("name").and_then(Item::as_str).unwrap_or("scenario");
        Scenario::from_toml(&self.to_toml(), name)
    }

    fn table(&mut self, name: &str) -> &mut Table {
        let item = self.doc.entry(name).or_insert(Item::Table(Table::new()));
        if !item.is_table() {
            *item = Item::Table(Table::new());
        }
        item.as_table_mut().expect("made a table above")
    }
}

/// What a run saw, and whether the scenario's `[expect]` held.
#[derive(Debug)]
pub struct Outcome {
    inner: RunOutcome,
}

impl Outcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.inner.verdict.passed
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.inner.scenario
    }

    /// Requests sent.
    pub fn requests(&self) -> u32 {
        self.inner.tally.requests
    }

    /// Requests that got no answer.
    pub fn errors(&self) -> u32 {
        self.inner.tally.failed()
    }

    /// Requests answered by the real server `backend` (0 for a name not in the scenario).
    pub fn answered_by(&self, backend: &str) -> u32 {
        self.inner.tally.backends.get(backend).copied().unwrap_or(0)
    }

    /// `backend`'s share of the answered requests, 0.0 to 1.0.
    pub fn share(&self, backend: &str) -> f64 {
        self.inner.tally.share(backend)
    }

    /// Every real server with its count of answered requests, by name.
    pub fn backends(&self) -> impl Iterator<Item = (&str, u32)> {
        self.inner.tally.backends.iter().map(|(name, n)| (name.as_str(), *n))
    }

    /// Every expectation checked, held or not.
    pub fn checks(&self) -> &[Check] {
        &self.inner.verdict.checks
    }

    /// The expectations that did not hold.
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.inner.verdict.failures()
    }

    /// The report `lvslab run` prints: the spread, the checks, the diagnosis when one ran.
    pub fn report(&self) -> String {
        human_report(&self.inner, false)
    }

    /// Panics with [`Outcome::report`] unless every expectation held.
    #[track_caller]
    pub fn assert_expectations(&self) {
        assert!(self.passed(), "scenario {} failed:\n{}", self.name(), self.report());
    }

    /// Everything the run recorded. Its shape is internal and may change between versions.
    #[doc(hidden)]
    pub fn details(&self) -> &RunOutcome {
        &self.inner
    }
}

/// Builds the scenario's lab, runs its traffic and checks its expectations, then tears the
/// lab down; blocking. Needs root (network namespaces). Inside an async runtime use [`run_async`].
///
/// ```no_run
/// let scenario = lvslab::Scenario::load("scenarios/dr-rr.toml")?;
/// let outcome = lvslab::run(&scenario)?;
/// assert!(outcome.answered_by("rs1") > 0);
/// outcome.assert_expectations();
/// # Ok::<(), lvslab::Error>(())
/// ```
pub fn run(scenario: &Scenario) -> Result<Outcome, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(run_async(scenario))
}

/// [`run`] on the caller's tokio runtime.
pub async fn run_async(scenario: &Scenario) -> Result<Outcome, Error> {
    crate::run::run(scenario, &RunOptions::default())
        .await
        .map(|inner| Outcome { inner })
        .map_err(|e| Error::Run {
            scenario: scenario.name.clone(),
            message: e.to_string(),
        })
}
