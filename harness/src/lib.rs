//! lvslab: a test harness for Linux load balancing (LVS/IPVS).
//!
//! Layers, arrows pointing down only:
//! `cli` → `conform` → `run` → (`lab`, `director`, `realserver`, `traffic`, `observe`) → (`scenario`, `ipvs`, `diagnose`, `report`).

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
pub mod observe;
pub mod realserver;
pub mod report;
pub mod run;
pub mod scenario;
pub mod traffic;
pub mod verdict;
pub mod vrrp;
