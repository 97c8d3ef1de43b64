//! Reading what operators already have: `ipvsadm` listings and save files,
//! /proc/net/ip_vs*, keepalived.conf. Used by `diagnose --live` (the live table
//! as evidence) and by `lvslab import` (a scenario from an existing set-up).

pub mod compare;
pub mod error;
pub mod evidence;
pub mod fwmark_service;
mod group_plan;
pub mod ipvsadm;
pub mod keepalived;
pub mod keepalived_checkers;
mod keepalived_health;
mod keepalived_numbers;
pub mod keepalived_vrrp;
pub mod marks;
pub mod procfs;
pub mod table;
pub mod to_scenario;
pub mod vrrp_contradictions;
pub mod vrrp_scenario;
pub mod vs_group;

pub use compare::same_service;
pub use error::{ParseError, Warning};
pub use table::{Counters, IpvsTable, Stats, TableConn, TableDest, TableForward, TableKey, TableProto, TableService};
pub use to_scenario::{import_file, import_files, import_text, import_text_with_marks, ImportError, InputFormat};

#[cfg(test)]
mod fwmark_import_tests;
#[cfg(test)]
mod group_import_tests;
#[cfg(test)]
mod keepalived_check_tests;
#[cfg(test)]
mod keepalived_health_tests;
#[cfg(test)]
mod keepalived_vrrp_tests;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod samples_tests;
