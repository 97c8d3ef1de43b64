//! lvslab: a test harness for Linux load balancing (LVS/IPVS).
//!
//! Layers, arrows pointing down only:
//! `cli` → `commands` → (`conform`, `report::outcome`) → `run`
//! → (`lab`, `director`, `realserver`, `traffic`, `observe`)
//! → (`scenario`, `ipvs`, `diagnose`, `import`, `verdict`, the rest of `report`; `health` and `vrrp`, keepalived's
//! checkers and VRRP as pure state machines)
//! → (`lvs`, the shared vocabulary: protocol, forwarding method, scheduler, service key, cause ids; `wire`, packet
//! views) → `sys`, the only module with `unsafe` code.

#![deny(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod conform;
pub mod diagnose;
pub mod director;
pub mod health;
pub mod import;
pub mod investigate;
pub mod ipvs;
pub mod lab;
pub mod lvs;
pub mod observe;
pub mod realserver;
pub mod report;
pub mod run;
pub mod scenario;
#[allow(unsafe_code)]
pub mod sys;
pub mod traffic;
pub mod verdict;
pub mod vrrp;
pub mod wire;
