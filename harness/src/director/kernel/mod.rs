//! The kernel engine: the kernel's own IPVS in the director's namespace,
//! configured over the generic netlink family "IPVS" as ipvsadm and
//! keepalived do (`shared/reference/ipvs.md` §6.1).
//!
//! * `genl` — the family's messages and attributes, typed;
//! * `objects` — services and real servers ↔ attribute lists;
//! * `client` — the blocking netlink socket (family lookup, ack, dump);
//! * `proc_conn` — `/proc/net/ip_vs_conn` rows (netlink has no connection dump);
//! * `snapshot` — all of it as the shared `ipvs::IpvsSnapshot` views;
//! * `setup` — VIP, forwarding and sysctls the namespace needs;
//! * `engine` — [`KernelEngine`], the `Engine` implementation.
//!
//! FULLNAT is refused: it is not in mainline IPVS.

pub mod client;
pub mod engine;
pub mod genl;
pub mod objects;
pub mod proc_conn;
pub mod setup;
pub mod snapshot;

#[cfg(test)]
mod wire_tests;

pub use engine::{check_supported, KernelEngine};
