//! Pure IPVS semantics in userspace: no root, no I/O, no clock.
//!
//! The embedded director feeds every packet to [`Ipvs::process_in`] (client →
//! director) or [`Ipvs::process_out`] (real server → director) with the
//! current time, and forwards / rewrites as told. Facts come from
//! `shared/reference/ipvs.md`; the kernel's `net/netfilter/ipvs/*.c` is the
//! authority.
//!
//! Reproduced:
//! * all mainline schedulers (`sched/`), one file each, walking destinations
//!   newest-first like the kernel list; sh/dh use `hash_32`, mh uses the
//!   64-bit kernel's hsiphash (SipHash-1-3) with its fixed keys and the
//!   default 4093-slot table, so picks match a real 5.x/6.x director;
//! * OVERLOAD with upper/lower thresholds (set/cleared at bind/unbind);
//! * the connection table: TCP state tables (INPUT/OUTPUT for NAT and
//!   FullNat, INPUT-ONLY for DR/TUN), default timeouts as idle timers re-armed
//!   per packet, active/inactive counts, `conn_reuse_mode`,
//!   `expire_nodest_conn`, `sloppy_tcp`, one-packet UDP scheduling;
//! * persistence templates keyed by (proto, client & netmask, vip, vport or
//!   0 for port-zero services), `expire_quiescent_template`, the 60 s
//!   re-arm of busy templates (and its permanent 60 s timeout quirk), ASSURED;
//! * counters (conns, in/out packets and bytes) and text views in the
//!   columns of ipvsadm 1.31: `-Ln` with `--stats`, `--rate`,
//!   `--thresholds`, `--persistent-conn`, and `-Lnc`, `-S -n` (`view/ipvsadm.rs`);
//! * the lookups of ICMP errors that belong to an entry, with their
//!   counters (`related.rs`; the relaying itself is the engine's).
//!
//! Not reproduced: IPv6, SCTP, fwmark services, FTP helpers, the SIP
//! persistence engine, secure_tcp/drop_entry/drop_packet defences,
//! conntrack (so `conn_reuse_mode` never drops the SYN), rate estimators,
//! scheduling on ICMP (`schedule_icmp`), sync daemons, the trash's 120 s reclaim (a deleted
//! destination is kept until re-added), the kernel's hash-bucket listing
//! order (`-Lnc` lists in table-slot order), and twos's kernel RNG (seeded
//! SplitMix64 instead). FULLNAT is not mainline: it follows alibaba/LVS's
//! idea (local address pool, both addresses rewritten) with NAT's state
//! tables.
//!
//! The files follow the kernel's: [`core`] is the packet path (`ip_vs_core.c`:
//! `process_in`, `process_out`, `schedule`), [`ctl`] the table management
//! (`ip_vs_ctl.c`: services, destinations, thresholds, sysctls).

pub mod conn;
pub mod core;
pub mod ctl;
pub mod persist;
pub mod related;
pub mod sched;
pub mod service;
pub mod view;

pub use self::core::{DropReason, InVerdict, OutVerdict, PacketIn, PacketOut};
pub use crate::lvs::{Forward, Proto, Scheduler, ServiceKey};
pub use conn::{ConnId, ConnState, TcpState};
pub use ctl::{DestConfig, Ipvs, IpvsError, SchedFlags, ServiceConfig, ServiceId, Sysctls};
pub use service::Counters;
pub use view::{ConnSnapshot, DestSnapshot, IpvsSnapshot, Rates, ServiceSnapshot};

pub use crate::wire::TcpFlags;

#[cfg(test)]
mod tests;
