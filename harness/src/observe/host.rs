//! A host's evidence: links, addresses, routes and neighbours from rtnetlink dumps; sysctls,
//! counters and listeners from /proc, read on a thread inside the host's namespace.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::{Stream, TryStreamExt};
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkLayerType};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::counters::read_counters;
use super::error::ObserveError;
use super::sockets::read_listeners;
use super::sysctls::{read_sysctls, sysctl_names};
use crate::diagnose::evidence::{
    HostEvidence, IfaceAddr, LinkEvidence, Listener, Mac, NeighbourEvidence, RouteEvidence,
};
use crate::lab;

/// Evidence of a lab host, gathered through its own netlink connection and namespace thread.
pub async fn host_evidence(host: &lab::Host) -> Result<HostEvidence, ObserveError> {
    let name = host.name().to_string();
    let net = NetlinkView::dump(&name, host.rtnl()).await?;
    let ifaces = net.iface_names();
    let proc_name = name.clone();
    let proc = host.exec(move || ProcView::read(&proc_name, &ifaces)).await??;
    Ok(net.into_evidence(name, proc))
}

/// The same evidence for the namespace the calling thread is in (a real host, for
/// `diagnose --live`). Runs on a short-lived thread with its own runtime and netlink
/// connection, so it may be called from inside a tokio runtime or outside one.
pub fn local_evidence(name: &str) -> Result<HostEvidence, ObserveError> {
    let owned = name.to_string();
    let gather = move || -> Result<HostEvidence, ObserveError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ObserveError::os(&owned, "start a runtime", e))?;
        let net = rt.block_on(async {
            let (conn, handle, _) =
                rtnetlink::new_connection().map_err(|e| ObserveError::os(&owned, "open netlink", e))?;
            let driver = tokio::spawn(conn);
            let net = NetlinkView::dump(&owned, &handle).await;
            driver.abort();
            net
        })?;
        // This thread was cloned from the caller's, so it is in the caller's namespace.
        let proc = ProcView::read(&owned, &net.iface_names())?;
        Ok(net.into_evidence(owned, proc))
    };
    let thread = std::thread::Builder::new()
        .name("observe-local".into())
        .spawn(gather)
        .map_err(|e| ObserveError::os(name, "spawn observer thread", e))?;
    thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// What the kernel says over rtnetlink.
#[derive(Debug, Default)]
pub(crate) struct NetlinkView {
    /// (ifindex, link), by index.
    pub(crate) links: Vec<(u32, LinkEvidence)>,
    pub(crate) addresses: Vec<(u32, IfaceAddr)>,
    pub(crate) routes: Vec<RouteEvidence>,
    pub(crate) neighbours: Vec<NeighbourEvidence>,
}

impl NetlinkView {
    pub(crate) async fn dump(host: &str, rtnl: &rtnetlink::Handle) -> Result<Self, ObserveError> {
        // One after another: a netlink socket runs a single dump at a time.
        let links = dump_links(host, rtnl).await?;
        let addrs = collect_dump(host, "dump addresses", || rtnl.address().get().execute()).await?;
        let routes = collect_dump(host, "dump routes", || {
            rtnl.route()
                .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
                .execute()
        })
        .await?;
        let neighbours = collect_dump(host, "dump neighbours", || {
            rtnl.neighbours()
                .get()
                .set_address_family(AddressFamily::Inet)
                .execute()
        })
        .await?;
        let names: BTreeMap<u32, String> = links.iter().map(|(i, l)| (*i, l.name.clone())).collect();
        let name_of = |index: u32| names.get(&index).cloned().unwrap_or_else(|| format!("if{index}"));

        let addresses = address_rows(addrs, &name_of)?;

        let mut main_routes = Vec::new();
        for msg in routes {
            let table = msg
                .attributes
                .iter()
                .find_map(|a| {
                    if let RouteAttribute::Table(t) = a {
                        Some(*t)
                    } else {
                        None
                    }
                })
                .unwrap_or(u32::from(msg.header.table));
            if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
                continue;
            }
            let mut dst = Ipv4Addr::UNSPECIFIED;
            let mut via = None;
            let mut dev = None;
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => via = Some(*ip),
                    RouteAttribute::Oif(index) => dev = Some(name_of(*index)),
                    _ => {}
                }
            }
            let len = msg.header.destination_prefix_length;
            let dst = Ipv4Net::new(dst, len)
                .map_err(|_| ObserveError::parse("netlink route dump", 0, format!("prefix /{len} out of range")))?;
            main_routes.push(RouteEvidence { dst, via, dev });
        }

        let mut neighbour_rows = Vec::new();
        for msg in neighbours {
            let mut ip = None;
            let mut mac = None;
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
                    NeighbourAttribute::LinkLayerAddress(bytes) => mac = mac_of(bytes),
                    _ => {}
                }
            }
            let Some(ip) = ip else { continue };
            let state = state_name(msg.header.state);
            // The kernel keeps the last MAC of a FAILED entry; evidence says "none" there.
            if matches!(msg.header.state, NeighbourState::Failed | NeighbourState::Incomplete) {
                mac = None;
            }
            neighbour_rows.push(NeighbourEvidence {
                ip,
                mac,
                state,
                iface: name_of(msg.header.ifindex),
            });
        }

        Ok(NetlinkView {
            links,
            addresses,
            routes: main_routes,
            neighbours: neighbour_rows,
        })
    }

    pub(crate) fn iface_names(&self) -> Vec<String> {
        self.links.iter().map(|(_, l)| l.name.clone()).collect()
    }

    fn into_evidence(self, name: String, proc: ProcView) -> HostEvidence {
        HostEvidence {
            name,
            sysctls: proc.sysctls,
            links: self.links.into_iter().map(|(_, l)| l).collect(),
            addresses: self.addresses.into_iter().map(|(_, a)| a).collect(),
            routes: self.routes,
            neighbours: self.neighbours,
            counters: proc.counters,
            listening: Some(proc.listening),
        }
    }
}

/// Attempts at a dump the kernel refuses with EBUSY, and the pause between them.
const BUSY_ATTEMPTS: u32 = 50;
const BUSY_PAUSE: Duration = Duration::from_millis(2);

/// Runs one netlink dump to the end. A netlink socket runs one dump at a time and refuses
/// another with EBUSY; the lab's connection is shared, so a refused dump is retried a
/// bounded number of times while the other one drains.
async fn collect_dump<T, S>(host: &str, step: &str, request: impl Fn() -> S) -> Result<Vec<T>, ObserveError>
where
    S: Stream<Item = Result<T, rtnetlink::Error>>,
{
    let mut attempt = 1;
    loop {
        match request().try_collect::<Vec<T>>().await {
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EBUSY && attempt < BUSY_ATTEMPTS => {
                attempt += 1;
                tokio::time::sleep(BUSY_PAUSE).await;
            }
            other => return other.map_err(|e| ObserveError::netlink(host, step, e)),
        }
    }
}

/// IPv4 addresses of every interface (lo and TUNs included), with their ifindex.
/// `links` (from [`dump_links`]) name the interfaces.
pub(crate) async fn dump_addresses(
    host: &str,
    rtnl: &rtnetlink::Handle,
    links: &[(u32, LinkEvidence)],
) -> Result<Vec<(u32, IfaceAddr)>, ObserveError> {
    let names: BTreeMap<u32, &str> = links.iter().map(|(i, l)| (*i, l.name.as_str())).collect();
    let msgs = collect_dump(host, "dump addresses", || rtnl.address().get().execute()).await?;
    address_rows(msgs, &|index| {
        names
            .get(&index)
            .map_or_else(|| format!("if{index}"), |n| n.to_string())
    })
}

fn address_rows(
    msgs: Vec<AddressMessage>,
    name_of: &dyn Fn(u32) -> String,
) -> Result<Vec<(u32, IfaceAddr)>, ObserveError> {
    let mut addresses = Vec::new();
    for msg in msgs.into_iter().filter(|m| m.header.family == AddressFamily::Inet) {
        // IFA_LOCAL is the address itself; IFA_ADDRESS is the peer on point-to-point links.
        let mut local = None;
        let mut address = None;
        for attr in &msg.attributes {
            match attr {
                AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
                AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(*ip),
                _ => {}
            }
        }
        let Some(ip) = local.or(address) else {
            continue;
        };
        let net = Ipv4Net::new(ip, msg.header.prefix_len).map_err(|_| {
            ObserveError::parse(
                "netlink address dump",
                0,
                format!("prefix /{} out of range", msg.header.prefix_len),
            )
        })?;
        addresses.push((
            msg.header.index,
            IfaceAddr {
                iface: name_of(msg.header.index),
                net,
            },
        ));
    }
    Ok(addresses)
}

pub(crate) async fn dump_links(host: &str, rtnl: &rtnetlink::Handle) -> Result<Vec<(u32, LinkEvidence)>, ObserveError> {
    let msgs = collect_dump(host, "dump links", || rtnl.link().get().execute()).await?;
    let mut links: Vec<(u32, LinkEvidence)> = msgs
        .into_iter()
        .map(|m| {
            let mut link = LinkEvidence {
                name: String::new(),
                kind: (m.header.link_layer_type == LinkLayerType::Loopback).then(|| "loopback".to_string()),
                mac: None,
                up: m.header.flags.contains(LinkFlags::Up),
                mtu: None,
            };
            for attr in m.attributes {
                match attr {
                    LinkAttribute::IfName(n) => link.name = n,
                    LinkAttribute::Address(bytes) => link.mac = mac_of(&bytes),
                    LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                    LinkAttribute::LinkInfo(infos) => {
                        if let Some(kind) =
                            infos
                                .iter()
                                .find_map(|i| if let LinkInfo::Kind(k) = i { Some(k) } else { None })
                        {
                            link.kind = Some(kind.to_string());
                        }
                    }
                    _ => {}
                }
            }
            (m.header.index, link)
        })
        .collect();
    links.sort_by_key(|(index, _)| *index);
    Ok(links)
}

/// Six bytes, not all zero (lo and TUN devices report zeros or nothing).
fn mac_of(bytes: &[u8]) -> Option<Mac> {
    let mac = Mac(bytes.try_into().ok()?);
    (!mac.is_unspecified()).then_some(mac)
}

fn state_name(state: NeighbourState) -> String {
    match state {
        NeighbourState::Incomplete => "INCOMPLETE".into(),
        NeighbourState::Reachable => "REACHABLE".into(),
        NeighbourState::Stale => "STALE".into(),
        NeighbourState::Delay => "DELAY".into(),
        NeighbourState::Probe => "PROBE".into(),
        NeighbourState::Failed => "FAILED".into(),
        NeighbourState::Noarp => "NOARP".into(),
        NeighbourState::Permanent => "PERMANENT".into(),
        NeighbourState::None => "NONE".into(),
        other => format!("0x{:02x}", u16::from(other)),
    }
}

/// What /proc says, read on a thread inside the namespace.
struct ProcView {
    sysctls: BTreeMap<String, String>,
    counters: BTreeMap<String, u64>,
    listening: Vec<Listener>,
}

impl ProcView {
    fn read(host: &str, ifaces: &[String]) -> Result<Self, ObserveError> {
        Ok(ProcView {
            sysctls: read_sysctls(host, &sysctl_names(ifaces))?,
            counters: read_counters(host)?,
            listening: read_listeners(host)?,
        })
    }
}
