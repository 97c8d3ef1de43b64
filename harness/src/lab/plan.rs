//! The lab as pure data, and its validation (done before the kernel is touched).

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::error::LabError;
use crate::wire::Mac;

/// Name of the namespace that holds one bridge per segment; not usable as a host name.
pub const SWITCH_NAME: &str = "switch";
/// A bridge numbers its ports in 10 bits and keeps port 0 for itself (net/bridge/br_if.c).
pub const MAX_BRIDGE_PORTS: usize = 1023;
/// Segments with more ports than this are built for scale: per-host receive rings (see
/// `offload`) and permanent neighbour entries for well-known hosts (`HostPlan::well_known`).
pub const LARGE_SEGMENT_PORTS: usize = 256;

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const IFNAME_MAX: usize = 15;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabPlan {
    pub name: String,
    pub hosts: Vec<HostPlan>,
    /// L2 segments; each is a bridge in the switch namespace.
    pub segments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    pub name: String,
    pub interfaces: Vec<IfacePlan>,
    pub loopback_addrs: Vec<Ipv4Net>,
    pub tun_devices: Vec<TunPlan>,
    pub routes: Vec<RoutePlan>,
    /// e.g. ("net.ipv4.conf.all.arp_ignore", "1"); applied in order, after interfaces exist.
    pub sysctls: Vec<(String, String)>,
    /// false = host "dead": its interfaces stay down.
    pub link_up: bool,
    /// On a large segment (more than `LARGE_SEGMENT_PORTS` ports), every other host there gets a
    /// permanent neighbour entry for this host's addresses on it (meant for clients, directors
    /// and routers, whom every real server talks to). The kernel's ARP table is one for all
    /// namespaces and refuses new entries beyond 1024 made in the last 5 s
    /// (`net.ipv4.neigh.default.gc_thresh3`, settable only for the whole machine); permanent
    /// entries do not count. A 1000-server lab learning them by ARP needed 3000 and lost
    /// packets to "neighbour table overflow".
    pub well_known: bool,
    /// nft rules loaded (`nft -f -`) into the namespace after the sysctls; they go with it.
    pub nftables: Option<String>,
}

impl Default for HostPlan {
    fn default() -> Self {
        HostPlan {
            name: String::new(),
            interfaces: Vec::new(),
            loopback_addrs: Vec::new(),
            tun_devices: Vec::new(),
            routes: Vec::new(),
            sysctls: Vec::new(),
            link_up: true,
            well_known: false,
            nftables: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfacePlan {
    /// Name inside the host, e.g. eth0.
    pub name: String,
    pub segment: String,
    pub addrs: Vec<Ipv4Net>,
    /// None: a deterministic locally administered MAC derived from host and interface position.
    pub mac: Option<Mac>,
    /// Both veth ends' MTU; `None` = the kernel's default (1500).
    pub mtu: Option<u32>,
    /// Frames reach this interface segmented to the MTU, as from a real wire: TSO off on its
    /// switch port, so GSO super-frames are cut there.
    pub segmented: bool,
}

/// A TUN device (IFF_TUN|IFF_NO_PI); the lab keeps its fd for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunPlan {
    pub name: String,
    pub addrs: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePlan {
    pub dst: Ipv4Net,
    pub via: Option<Ipv4Addr>,
    /// An interface or TUN device of the host, or "lo".
    pub dev: Option<String>,
}

fn invalid(msg: String) -> LabError {
    LabError::InvalidPlan(msg)
}

/// Names that end up in paths (/run/netns, /run/lvslab) and messages: keep them plain.
pub(crate) fn check_label(what: &str, name: &str, max: usize) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} {name:?} must be 1-{max} characters of [A-Za-z0-9._-], not starting with '.' or '-'"
        )))
    }
}

fn check_ifname(host: &str, name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "host {host}: interface name {name:?} is not a valid Linux interface name (1-{IFNAME_MAX} printable characters, no '/' or ':')"
        )))
    }
}

/// Checks a sysctl name's shape; whether it exists is only known inside the namespace.
pub(crate) fn check_sysctl_name(host: &str, name: &str) -> Result<(), LabError> {
    let parts: Vec<&str> = name.split(['.', '/']).collect();
    let ok = name.starts_with("net.") || name.starts_with("net/");
    if !ok || parts.iter().any(|p| p.is_empty() || *p == "..") {
        return Err(invalid(format!(
            "host {host}: sysctl {name:?} must be a network sysctl such as net.ipv4.conf.all.arp_ignore"
        )));
    }
    Ok(())
}

impl LabPlan {
    /// Every check that can be made without the kernel: names, duplicates, references.
    pub fn validate(&self) -> Result<(), LabError> {
        check_label("lab name", &self.name, 64)?;
        let mut segments = HashSet::new();
        for seg in &self.segments {
            check_label("segment", seg, 64)?;
            if !segments.insert(seg.as_str()) {
                return Err(invalid(format!("segment {seg:?} is declared twice")));
            }
        }
        let mut hosts = HashSet::new();
        for host in &self.hosts {
            check_label("host name", &host.name, 32)?;
            if host.name == SWITCH_NAME {
                return Err(invalid(format!(
                    "host name {SWITCH_NAME:?} is reserved for the namespace holding the bridges"
                )));
            }
            if !hosts.insert(host.name.as_str()) {
                return Err(invalid(format!("host {:?} is declared twice", host.name)));
            }
            host.validate(&segments)?;
        }
        for seg in &self.segments {
            let ports = self.ports(seg);
            if ports > MAX_BRIDGE_PORTS {
                return Err(invalid(format!(
                    "segment {seg:?} has {ports} interfaces, but a Linux bridge takes at most {MAX_BRIDGE_PORTS} ports (BR_MAX_PORTS 1024, port 0 reserved)"
                )));
            }
        }
        Ok(())
    }
}

impl LabPlan {
    /// Interfaces on `segment`.
    pub fn ports(&self, segment: &str) -> usize {
        self.hosts
            .iter()
            .flat_map(|h| &h.interfaces)
            .filter(|i| i.segment == segment)
            .count()
    }

    /// The segments with more than `LARGE_SEGMENT_PORTS` ports.
    pub fn large_segments(&self) -> Vec<&str> {
        self.segments
            .iter()
            .map(String::as_str)
            .filter(|s| self.ports(s) > LARGE_SEGMENT_PORTS)
            .collect()
    }
}

impl HostPlan {
    fn validate(&self, segments: &HashSet<&str>) -> Result<(), LabError> {
        let host = &self.name;
        let mut devs: HashSet<&str> = HashSet::from(["lo"]);
        for iface in &self.interfaces {
            check_ifname(host, &iface.name)?;
            if !devs.insert(iface.name.as_str()) {
                return Err(invalid(format!(
                    "host {host}: interface {:?} is declared twice (or clashes with lo/a TUN device)",
                    iface.name
                )));
            }
            if !segments.contains(iface.segment.as_str()) {
                return Err(invalid(format!(
                    "host {host}: interface {} is on unknown segment {:?} (segments: {})",
                    iface.name,
                    iface.segment,
                    sorted(segments).join(", ")
                )));
            }
            if let Some(mac) = iface.mac {
                if mac.is_multicast() || mac.is_unspecified() {
                    return Err(invalid(format!(
                        "host {host}: interface {} has MAC {mac} which is multicast or zero",
                        iface.name
                    )));
                }
            }
        }
        for tun in &self.tun_devices {
            check_ifname(host, &tun.name)?;
            if !devs.insert(tun.name.as_str()) {
                return Err(invalid(format!(
                    "host {host}: TUN device {:?} clashes with another interface",
                    tun.name
                )));
            }
        }
        for route in &self.routes {
            if route.via.is_none() && route.dev.is_none() {
                return Err(invalid(format!(
                    "host {host}: route to {} needs a gateway (via) or a device",
                    route.dst
                )));
            }
            if let Some(dev) = &route.dev {
                if !devs.contains(dev.as_str()) {
                    return Err(invalid(format!(
                        "host {host}: route to {} uses unknown device {dev:?}",
                        route.dst
                    )));
                }
            }
        }
        for (name, _) in &self.sysctls {
            check_sysctl_name(host, name)?;
        }
        Ok(())
    }
}

fn sorted<'a>(set: &HashSet<&'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = set.iter().copied().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, seg: &str) -> HostPlan {
        HostPlan {
            name: name.into(),
            interfaces: vec![IfacePlan {
                name: "eth0".into(),
                segment: seg.into(),
                addrs: vec!["10.0.0.1/24".parse().unwrap()],
                mac: None,
                mtu: None,
                segmented: false,
            }],
            ..Default::default()
        }
    }

    fn plan(hosts: Vec<HostPlan>) -> LabPlan {
        LabPlan {
            name: "t".into(),
            hosts,
            segments: vec!["lan".into()],
        }
    }

    fn err(p: &LabPlan) -> String {
        p.validate().unwrap_err().to_string()
    }

    #[test]
    fn a_segment_holds_no_more_hosts_than_a_bridge_has_ports() {
        let hosts = |n: usize| (0..n).map(|i| host(&format!("h{i}"), "lan")).collect();
        assert!(plan(hosts(MAX_BRIDGE_PORTS)).validate().is_ok());
        assert!(
            err(&plan(hosts(MAX_BRIDGE_PORTS + 1))).contains("segment \"lan\" has 1024 interfaces"),
            "{}",
            err(&plan(hosts(MAX_BRIDGE_PORTS + 1)))
        );
    }

    #[test]
    fn large_segments_are_those_with_more_than_256_ports() {
        let hosts = |n: usize| (0..n).map(|i| host(&format!("h{i}"), "lan")).collect();
        assert!(plan(hosts(LARGE_SEGMENT_PORTS)).large_segments().is_empty());
        assert_eq!(plan(hosts(LARGE_SEGMENT_PORTS + 1)).large_segments(), ["lan"]);
    }

    #[test]
    fn good_plan_passes() {
        plan(vec![host("a", "lan"), host("b", "lan")]).validate().unwrap();
    }

    #[test]
    fn unknown_segment_is_named() {
        let e = err(&plan(vec![host("a", "wan")]));
        assert!(e.contains("unknown segment \"wan\""), "{e}");
        assert!(e.contains("host a"), "{e}");
    }

    #[test]
    fn duplicate_iface_and_host_are_rejected() {
        let mut h = host("a", "lan");
        h.interfaces.push(h.interfaces[0].clone());
        assert!(err(&plan(vec![h])).contains("declared twice"));
        assert!(err(&plan(vec![host("a", "lan"), host("a", "lan")])).contains("host \"a\""));
    }

    #[test]
    fn bad_names_and_references_are_rejected() {
        let mut h = host("a", "lan");
        h.interfaces[0].name = "a-very-long-interface".into();
        assert!(err(&plan(vec![h])).contains("not a valid Linux interface name"));
        assert!(err(&plan(vec![host("switch", "lan")])).contains("reserved"));
        assert!(err(&plan(vec![host("../x", "lan")])).contains("host name"));
        let mut h = host("a", "lan");
        h.routes.push(RoutePlan {
            dst: "0.0.0.0/0".parse().unwrap(),
            via: None,
            dev: Some("eth9".into()),
        });
        assert!(err(&plan(vec![h])).contains("unknown device \"eth9\""));
        let mut h = host("a", "lan");
        h.sysctls.push(("kernel.panic".into(), "1".into()));
        assert!(err(&plan(vec![h])).contains("network sysctl"));
        let mut h = host("a", "lan");
        h.sysctls.push(("net.ipv4..x".into(), "1".into()));
        assert!(err(&plan(vec![h])).contains("network sysctl"));
        let mut h = host("a", "lan");
        h.interfaces[0].mac = Some(Mac([1, 0, 0, 0, 0, 1]));
        assert!(err(&plan(vec![h])).contains("multicast"));
    }
}
