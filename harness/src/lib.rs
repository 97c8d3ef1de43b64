//! lvslab: a test harness for Linux load balancing (LVS/IPVS). It builds a lab of network
//! namespaces from a scenario (clients, directors, real servers), runs an IPVS director in it,
//! fires requests, and reports where they went and why.
//!
//! The public surface is small: load a scenario ([`Scenario::load`]) or build one
//! ([`Scenario::builder`]), [`run`] it, and read or assert on the [`Outcome`]. [`testing`] turns
//! a directory of scenario files into cargo tests. Runs need root (network namespaces).
//!
//! ```no_run
//! use lvslab::{Mode, Scenario, Scheduler};
//!
//! let scenario = Scenario::builder("web")
//!     .service(Mode::Dr, Scheduler::Rr)
//!     .real_server("web1", 1)
//!     .real_server("web2", 1)
//!     .requests(20)
//!     .expect_even()
//!     .build()?;
//! let outcome = lvslab::run(&scenario)?;
//! assert_eq!(outcome.answered_by("web1"), 10);
//! outcome.assert_expectations();
//! # Ok::<(), lvslab::Error>(())
//! ```
//!
//! Every other module is internal (hidden from the docs; used by lvslab's own binary and
//! tests) and may change in any version.
//!
//! Internal layers, arrows pointing down only (a module uses only modules below it;
//! tests may reach up, e.g. to `run::director_config`):
//! (`api`, `testing`) → `commands` → (`conform`, `report`, `junit`, `check_json`) → `run` → `investigate` → `verdict`
//! → (`director`, `observe`, `traffic`, `keepalived`, the real keepalived in a lab namespace) → (`lab`, `realserver`, `import`)
//! → (`scenario`, `schema`, `diagnose`; `health` and `vrrp`, keepalived's checkers and VRRP as pure state machines)
//! → `ipvs` → (`lvs`, the shared vocabulary: protocol, forwarding method, scheduler and its flags, service key,
//! cause ids; `tally`, requests counted per backend; `sys`, the only module with `unsafe` code) → `wire`, packet
//! views. `cli`, the clap definitions and the exit codes, uses none of them; `commands` and `main` use it.

#![deny(unsafe_code)]

#[doc(hidden)]
pub mod capture;
pub mod cli;
#[doc(hidden)]
pub mod commands;
#[doc(hidden)]
pub mod conform;
#[doc(hidden)]
pub mod diagnose;
#[doc(hidden)]
pub mod director;
#[doc(hidden)]
pub mod ha;
#[doc(hidden)]
pub mod health;
#[doc(hidden)]
pub mod import;
#[doc(hidden)]
pub mod investigate;
#[doc(hidden)]
pub mod ipvs;
/// `lvslab ipvsadm`: a kept lab's director listed and edited with ipvsadm's options.
#[doc(hidden)]
pub mod ipvsadm;
#[doc(hidden)]
pub mod keepalived;
#[doc(hidden)]
pub mod lab;
#[doc(hidden)]
pub mod locality;
#[doc(hidden)]
pub mod lvs;
#[doc(hidden)]
pub mod nft;
#[doc(hidden)]
pub mod observe;
#[doc(hidden)]
pub mod realserver;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod run;
#[doc(hidden)]
pub mod scenario;
#[allow(unsafe_code)]
#[doc(hidden)]
pub mod sys;
#[doc(hidden)]
pub mod tally;
#[doc(hidden)]
pub mod trace;
pub mod traffic;
#[doc(hidden)]
pub mod verdict;
#[doc(hidden)]
pub mod vrrp;
#[doc(hidden)]
pub mod wire;

mod api;
#[doc(hidden)]
pub mod check_json;
#[doc(hidden)]
pub mod junit;
#[doc(hidden)]
pub mod schema;
pub mod testing;

pub use api::{run, run_async, Error, Outcome, ScenarioBuilder};
pub use lvs::{Mode, Scheduler};
pub use scenario::Scenario;
pub use verdict::Check;
