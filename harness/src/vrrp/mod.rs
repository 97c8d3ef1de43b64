//! keepalived's VRRP, pure: timers, packets, and the instance state machine.

mod packet;
mod timers;

pub use packet::{emit_ipv4, parse_ipv4, Advert, Auth, PacketError, Received, IPPROTO_VRRP, MULTICAST_GROUP, VRRP_TTL};
pub use timers::{master_down_interval, normalise_advert_int, skew_min, skew_time, Version};
