//! observe: evidence gathered from lab hosts (or the host this runs on) for the diagnosis:
//! links, addresses, routes, neighbour tables, sysctls, SNMP counters, listening sockets,
//! and who answers ARP for an address. Everything is read in the host's own namespace:
//! over its netlink connection, or on a thread inside it (/proc/thread-self/net, /proc/sys).

mod arp_probe;
mod counters;
mod error;
mod host;
mod ipvsadm;
mod sockets;
mod sysctls;
mod vip_counter;

pub use arp_probe::{arp_probe, arp_reply_sender, arp_request_frame};
pub use counters::{counter_map_delta, counters_delta, parse_counter_table, read_counters, with_counter_delta};
pub use error::ObserveError;
pub use host::{host_evidence, local_evidence};
pub use ipvsadm::{ipvsadm_views, mark_rules, IpvsadmView, IPVSADM_VIEWS};
pub use sockets::{count_in_flight, parse_listeners, read_listeners, tcp_in_flight};
pub use sysctls::{read_sysctls, sysctl_names, sysctl_path, CONF_KNOBS, GLOBAL_KNOBS};
pub use vip_counter::VipCounter;
