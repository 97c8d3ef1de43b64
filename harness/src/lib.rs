//! lvslab: a test harness for Linux load balancing (LVS/IPVS).
//!
//! Layers of the library code, arrows pointing down only (a module uses only modules below it;
//! tests may reach up, e.g. to `run::director_config`):
//! `commands` → (`conform`, `report`) → `run` → `investigate` → `verdict`
//! → (`director`, `observe`, `traffic`, `keepalived`, the real keepalived in a lab namespace) → (`lab`, `realserver`, `import`)
//! → (`scenario`, `diagnose`; `health` and `vrrp`, keepalived's checkers and VRRP as pure state machines)
//! → `ipvs` → (`lvs`, the shared vocabulary: protocol, forwarding method, scheduler and its flags, service key,
//! cause ids; `tally`, requests counted per backend; `sys`, the only module with `unsafe` code) → `wire`, packet
//! views. `cli`, the clap definitions and the exit codes, uses none of them; `commands` and `main` use it.

#![deny(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod commands;
pub mod conform;
pub mod diagnose;
pub mod director;
pub mod ha;
pub mod health;
pub mod import;
pub mod investigate;
pub mod ipvs;
pub mod keepalived;
pub mod lab;
pub mod lvs;
pub mod nft;
pub mod observe;
pub mod realserver;
pub mod report;
pub mod run;
pub mod scenario;
#[allow(unsafe_code)]
pub mod sys;
pub mod tally;
pub mod trace;
pub mod traffic;
pub mod verdict;
pub mod vrrp;
pub mod wire;
