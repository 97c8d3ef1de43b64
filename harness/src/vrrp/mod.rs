//! keepalived's VRRP, pure: the timer arithmetic, the v2/v3 advertisement
//! codec, tracking weights, and the `vrrp_instance` state machine, all on a
//! caller's virtual clock. The caller owns sockets, addresses and scripts: it
//! feeds [`Instance`] received adverts, timer ticks and track changes, and
//! carries out the [`VrrpAction`]s (send an advert, add/remove VIPs, send a
//! GARP), which come with keepalived's own log lines.
//!
//! The authority is keepalived 2.2.7 (the Debian 12 package): vrrp/vrrp.c,
//! vrrp/vrrp_scheduler.c, vrrp/vrrp_track.c, include/vrrp.h. Facts and
//! measurements: shared/reference/keepalived.md §1.
//!
//! A director's instances run as a [`Group`], bound or not by a `vrrp_sync_group`
//! (vrrp/vrrp_sync.c; a director's weighted tracks are then the group's, on every member, as
//! keepalived's `sync_group_tracking_init` adds a group's tracks).
//!
//! With `sync_group_tracking_weight` the weighted tracks stay the VIP instance's.
//!
//! Not reproduced: IPv6 (VRRPv3 over IPv6), AH authentication, notifies, VMACs, strict mode's firewall rules, eVIPs, virtual routes/rules, an
//! unweighted script still in its init state holding the instance in INIT at
//! startup, the 255-owner start through a sync
//! group, `skip_check_adv_addr`, unicast source checks, and reloads.

pub mod contradictions;
mod instance;
mod packet;
mod script;
mod sync;
mod timers;
mod track;

#[cfg(test)]
mod tests;

pub use instance::{Instance, InstanceConfig, State, VrrpAction, VrrpRecord};
pub use packet::{emit_ipv4, parse_ipv4, Advert, Auth, PacketError, Received, IPPROTO_VRRP, MULTICAST_GROUP, VRRP_TTL};
pub use script::{ScriptRun, ScriptStep, VrrpScript};
pub use sync::{Group, MemberRecord};
pub use timers::{master_down_interval, normalise_advert_int, skew_min, skew_time, Version};
pub use track::{clamp_priority, TrackConfig};
