//! The netlink and sysctl steps of bring-up, per namespace, as pipelined batches.
//!
//! Order: (1) switch: bridges with chosen ifindexes; hosts meanwhile: TUNs, lo, loopback
//! addresses. (2) each host, in one batch on its own socket: every veth pair created by one
//! RTM_NEWLINK (switch end placed in the switch namespace and enslaved to its bridge, host end
//! placed in the host namespace with a chosen ifindex), then addresses and routes on those
//! known indexes. (3) sysctls from the host's thread.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkMessage};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{AddressMessageBuilder, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::batch::{Batch, CHANGE, CREATE};
use super::error::LabError;
use super::plan::{HostPlan, IfacePlan, RoutePlan};
use crate::wire::Mac;

pub(crate) const LO_INDEX: u32 = 1;
/// Switch-side veth ends get ifindexes from here on; far above anything a host namespace
/// holds, so the index is free wherever the kernel looks it up.
const FIRST_PORT_INDEX: u32 = 1000;

/// Where each planned interface goes, decided before any request is sent.
#[derive(Debug, Clone)]
pub(crate) struct IfaceLayout {
    pub name: String,
    pub index: u32,
    pub mac: Mac,
    pub port_name: String,
    pub port_index: u32,
    pub bridge_index: u32,
    /// Both ends' MTU; `None` = the kernel's default.
    pub mtu: Option<u32>,
}

pub(crate) fn bridge_name(segment: &str, position: usize) -> String {
    let name = format!("br-{segment}");
    if name.len() <= 15 {
        name
    } else {
        format!("br{position}")
    }
}

pub(crate) fn bridge_index(position: usize) -> u32 {
    2 + position as u32
}

/// Deterministic locally administered unicast MAC: 02:4c:<host>:<host>:<iface>:<iface>.
pub(crate) fn default_mac(host_pos: usize, iface_pos: usize) -> Mac {
    let (h, i) = (host_pos as u16, iface_pos as u16);
    Mac([0x02, 0x4c, (h >> 8) as u8, h as u8, (i >> 8) as u8, i as u8])
}

/// The first switch-port ifindex of each host: ports are numbered in host order, one per interface.
pub(crate) fn first_port_indexes(hosts: &[HostPlan]) -> Vec<u32> {
    hosts
        .iter()
        .scan(FIRST_PORT_INDEX, |next, h| {
            let first = *next;
            *next += h.interfaces.len() as u32;
            Some(first)
        })
        .collect()
}

/// The MAC of interface `iface_pos` of host `host_pos`: the planned one, else the default.
pub(crate) fn iface_mac(host_pos: usize, iface_pos: usize, iface: &IfacePlan) -> Mac {
    iface.mac.unwrap_or_else(|| default_mac(host_pos, iface_pos))
}

/// Lays out one host's interfaces; `taken` are indexes already used in it (lo, TUNs) and
/// `first_port` its first switch-port index (`first_port_indexes`).
pub(crate) fn host_layout(
    host_pos: usize,
    host: &HostPlan,
    segments: &[String],
    taken: &[u32],
    first_port: u32,
) -> Vec<IfaceLayout> {
    let first_index = taken.iter().copied().max().unwrap_or(LO_INDEX).max(LO_INDEX) + 1;
    host.interfaces
        .iter()
        .enumerate()
        .map(|(i, iface)| {
            let seg_pos = segments.iter().position(|s| *s == iface.segment).unwrap_or(0);
            let port_index = first_port + i as u32;
            let port_name = {
                let n = format!("{}-{}", host.name, iface.name);
                if n.len() <= 15 {
                    n
                } else {
                    format!("p{port_index}")
                }
            };
            IfaceLayout {
                name: iface.name.clone(),
                index: first_index + i as u32,
                mac: iface_mac(host_pos, i, iface),
                port_name,
                port_index,
                bridge_index: bridge_index(seg_pos),
                mtu: iface.mtu,
            }
        })
        .collect()
}

fn set_link(index: u32, up: bool) -> RouteNetlinkMessage {
    let b = LinkUnspec::new_with_index(index);
    let b = if up { b.up() } else { b.down() };
    RouteNetlinkMessage::SetLink(b.build())
}

pub(crate) fn set_link_msg(index: u32, up: bool) -> RouteNetlinkMessage {
    set_link(index, up)
}

pub(crate) fn addr_msg(index: u32, net: &Ipv4Net) -> RouteNetlinkMessage {
    RouteNetlinkMessage::NewAddress(
        AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(net.addr(), net.prefix_len())
            .build(),
    )
}

pub(crate) fn route_msg(route: &RoutePlan, dev_index: Option<u32>) -> RouteNetlinkMessage {
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(route.dst.network(), route.dst.prefix_len());
    if let Some(via) = route.via {
        b = b.gateway(via);
    }
    if let Some(idx) = dev_index {
        b = b.output_interface(idx);
    }
    RouteNetlinkMessage::NewRoute(b.build())
}

/// The peer cannot be created up: the kernel configures it before the pair is joined
/// (veth_open then fails with ENOTCONN), so the host end is set up by the next request.
fn veth_msg(l: &IfaceLayout, switch_fd: i32, host_fd: i32) -> LinkMessage {
    let mut peer = LinkMessageBuilder::<LinkUnspec>::default()
        .name(l.name.clone())
        .index(l.index)
        .address(l.mac.octets().to_vec())
        .setns_by_fd(host_fd);
    if let Some(mtu) = l.mtu {
        peer = peer.mtu(mtu);
    }
    let port = LinkVeth::new(&l.port_name, &l.name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .index(l.port_index)
        .setns_by_fd(switch_fd)
        .controller(l.bridge_index)
        .up();
    // The switch's end takes it too: a veth drops what exceeds the MTU of the end receiving it.
    match l.mtu {
        Some(mtu) => port.mtu(mtu).build(),
        None => port.build(),
    }
}

/// lo up and one bridge per segment, in the switch namespace.
pub(crate) async fn switch_up(rtnl: &rtnetlink::Handle, segments: &[String]) -> Result<(), LabError> {
    let mut batch = Batch::new(super::plan::SWITCH_NAME, rtnl);
    batch.push("set lo up", set_link(LO_INDEX, true), CHANGE)?;
    for (pos, seg) in segments.iter().enumerate() {
        let msg = LinkBridge::new(&bridge_name(seg, pos))
            .index(bridge_index(pos))
            .up()
            .build();
        batch.push(
            format!("create bridge for segment {seg}"),
            RouteNetlinkMessage::NewLink(msg),
            CREATE,
        )?;
    }
    batch.finish().await
}

/// lo up, loopback addresses, TUN devices up with their addresses.
pub(crate) async fn host_prepare(
    rtnl: &rtnetlink::Handle,
    plan: &HostPlan,
    tun_indexes: &[u32],
) -> Result<(), LabError> {
    let mut batch = Batch::new(&plan.name, rtnl);
    batch.push("set lo up", set_link(LO_INDEX, true), CHANGE)?;
    for net in &plan.loopback_addrs {
        batch.push(format!("add {net} to lo"), addr_msg(LO_INDEX, net), CREATE)?;
    }
    for (tun, &index) in plan.tun_devices.iter().zip(tun_indexes) {
        if plan.link_up {
            batch.push(format!("set {} up", tun.name), set_link(index, true), CHANGE)?;
        }
        for net in &tun.addrs {
            batch.push(format!("add {net} to {}", tun.name), addr_msg(index, net), CREATE)?;
        }
    }
    batch.finish().await
}

/// Resolves a route's device to an index in this host.
pub(crate) fn dev_index(route: &RoutePlan, ifaces: &[(String, u32)]) -> Option<u32> {
    route
        .dev
        .as_ref()
        .and_then(|d| ifaces.iter().find(|(n, _)| n == d).map(|(_, i)| *i))
}

/// A permanent neighbour entry: `ip neigh add ADDR lladdr MAC nud permanent dev INDEX`.
pub(crate) fn neighbour_msg(index: u32, addr: Ipv4Addr, mac: Mac) -> RouteNetlinkMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.ifindex = index;
    m.header.state = NeighbourState::Permanent;
    m.header.kind = RouteType::Unspec;
    m.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(addr)));
    m.attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
    RouteNetlinkMessage::NewNeighbour(m)
}

/// Veth pairs, interface addresses, permanent neighbours, then routes: one pipelined batch on
/// the host's socket.
pub(crate) async fn host_wire(
    rtnl: &rtnetlink::Handle,
    plan: &HostPlan,
    layout: &[IfaceLayout],
    all_devs: &[(String, u32)],
    neighbours: &[(u32, Ipv4Addr, Mac)],
    switch_fd: i32,
    host_fd: i32,
) -> Result<(), LabError> {
    let mut batch = Batch::new(&plan.name, rtnl);
    for (l, iface) in layout.iter().zip(&plan.interfaces) {
        batch.push(
            format!(
                "create veth {} <-> switch {} (segment {})",
                l.name, l.port_name, iface.segment
            ),
            RouteNetlinkMessage::NewLink(veth_msg(l, switch_fd, host_fd)),
            CREATE,
        )?;
        if plan.link_up {
            batch.push(format!("set {} up", l.name), set_link(l.index, true), CHANGE)?;
        }
        for net in &iface.addrs {
            batch.push(format!("add {net} to {}", l.name), addr_msg(l.index, net), CREATE)?;
        }
    }
    // A down device takes no routes (and loses them when it goes down): a dead host gets
    // its routes when a link comes up. Neighbour entries likewise.
    if plan.link_up {
        for &(index, addr, mac) in neighbours {
            batch.push(format!("add neighbour {addr}"), neighbour_msg(index, addr, mac), CREATE)?;
        }
        for route in &plan.routes {
            batch.push(
                format!("add route {} via {:?} dev {:?}", route.dst, route.via, route.dev),
                route_msg(route, dev_index(route, all_devs)),
                CREATE,
            )?;
        }
    }
    batch.finish().await
}

/// How long the switch's ports may take to start forwarding.
const PORTS_UP_DEADLINE: Duration = Duration::from_secs(10);
const PORTS_UP_POLL: Duration = Duration::from_millis(5);

/// Waits until every port in `ports` (switch-side veth ends whose host end is up) is
/// operationally up. A switch end is created up before its peer exists, so the kernel
/// attaches its queueing discipline only when the link-watch work sees the carrier come on
/// (`linkwatch_do_dev` → `dev_activate`), which also sets the operstate. Until then the
/// port drops every frame the bridge sends it: in a 1000-server lab, the first ARP replies
/// and SYN-ACKs of the run.
pub(crate) async fn wait_ports_up(rtnl: &rtnetlink::Handle, ports: &[u32]) -> Result<(), LabError> {
    use futures::TryStreamExt;
    use rtnetlink::packet_route::link::{LinkAttribute, State};
    let started = Instant::now();
    loop {
        let links: Vec<LinkMessage> = rtnl
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| LabError::netlink(super::plan::SWITCH_NAME, "dump switch ports", e))?;
        let up: HashSet<u32> = links
            .iter()
            .filter(|m| {
                m.attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
            })
            .map(|m| m.header.index)
            .collect();
        let waiting: Vec<u32> = ports.iter().copied().filter(|p| !up.contains(p)).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > PORTS_UP_DEADLINE {
            return Err(LabError::os(
                super::plan::SWITCH_NAME,
                format!(
                    "wait for switch ports to forward ({} of {} not up, first ifindex {})",
                    waiting.len(),
                    ports.len(),
                    waiting[0]
                ),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        tokio::time::sleep(PORTS_UP_POLL).await;
    }
}
