//! lab: namespaces, veth, bridges, addresses, routes, sysctls; owns cleanup.
//!
//! Every namespace is anonymous and held only by this process (a worker thread inside it and
//! an fd), so it vanishes when the process dies. Bridges live in a "switch" namespace and every
//! veth pair is born with both ends in their final namespaces: nothing is ever created in the
//! host's namespace. Kept labs are published as /run/netns symlinks (see `kept`).

mod batch;
mod bringup;
mod error;
mod kept;
mod limits;
mod netns;
mod offload;
pub mod plan;
#[cfg(test)]
mod scale_tests;
mod sysctl;
mod tun;

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

pub use error::LabError;
pub use kept::{
    clean, enter_kept, link_path, list_kept, process_start_ticks, CleanReport, KeptLab, KeptState, NETNS_DIR, STATE_DIR,
};
pub use plan::{HostPlan, IfacePlan, LabPlan, RoutePlan, TunPlan, LARGE_SEGMENT_PORTS, MAX_BRIDGE_PORTS, SWITCH_NAME};

use batch::{errno, Batch, CHANGE, CREATE};
use bringup::{IfaceLayout, LO_INDEX};
use netns::NsWorker;
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::wire::Mac;

#[derive(Debug, Clone, Default)]
pub struct LabOptions {
    /// Keep the lab visible to `ip netns exec` as lvslab-<name>-<host> while it runs.
    pub keep: Option<String>,
}

/// An interface of a host as built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    pub name: String,
    pub index: u32,
    /// All zero for TUN devices (no link layer) and for the switch's bridges and ports
    /// (their MACs are chosen by the kernel).
    pub mac: Mac,
    /// The addresses from the plan (not those added later with `add_address`).
    pub addrs: Vec<Ipv4Net>,
}

pub struct Host {
    name: String,
    worker: NsWorker,
    ifaces: Vec<IfaceInfo>,
    tuns: Mutex<HashMap<String, OwnedFd>>,
    routes: Vec<RoutePlan>,
}

/// One interface's addresses, changed over its namespace's netlink connection.
#[derive(Clone)]
pub struct AddressControl {
    host: String,
    iface: String,
    index: u32,
    handle: rtnetlink::Handle,
}

impl AddressControl {
    /// Adds `addr`; one already there is no error.
    pub async fn add(&self, addr: Ipv4Net) -> Result<(), LabError> {
        let mut batch = Batch::new(&self.host, &self.handle);
        batch.push(
            format!("add {addr} to {}", self.iface),
            bringup::addr_msg(self.index, &addr),
            CREATE,
        )?;
        match batch.finish().await {
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Removes `addr`; one that is not there is no error.
    pub async fn remove(&self, addr: Ipv4Net) -> Result<(), LabError> {
        let mut batch = Batch::new(&self.host, &self.handle);
        let msg = match bringup::addr_msg(self.index, &addr) {
            RouteNetlinkMessage::NewAddress(m) => RouteNetlinkMessage::DelAddress(m),
            other => other,
        };
        batch.push(format!("remove {addr} from {}", self.iface), msg, CHANGE)?;
        match batch.finish().await {
            Err(e) if errno(&e) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            other => other,
        }
    }
}

pub struct Lab {
    run_id: String,
    switch: Host,
    hosts: Vec<Host>,
    kept: Option<KeptState>,
    torn_down: bool,
    timings: BuildTimings,
}

/// When each phase of `Lab::build` had finished, from its start (for benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildTimings {
    /// Every namespace created, with its thread and netlink connection.
    pub namespaces: Duration,
    /// Bridges, lo, loopback addresses, TUN devices.
    pub prepared: Duration,
    /// veth pairs, addresses, routes.
    pub wired: Duration,
    /// Host sysctls written.
    pub sysctls: Duration,
    /// Every switch port forwarding (see `bringup::wait_ports_up`).
    pub ports_up: Duration,
}

/// Where a run keeps its files: `/run/lvslab/runs/<run id>` (tmpfs, root's).
pub fn run_dir(run_id: &str) -> std::path::PathBuf {
    std::path::Path::new(kept::STATE_DIR).join("runs").join(run_id)
}

fn remove_run_dir(run_id: &str) -> std::io::Result<()> {
    match std::fs::remove_dir_all(run_dir(run_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn new_run_id() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("lvslab-{}-{seq}-{:04x}", std::process::id(), nanos & 0xffff)
}

impl Lab {
    pub async fn build(plan: &LabPlan, opts: LabOptions) -> Result<Lab, LabError> {
        let started = Instant::now();
        plan.validate()?;
        limits::ensure_open_files(plan.hosts.len() + 1)?;
        if let Some(name) = &opts.keep {
            kept::check_free(name)?;
        }
        let run_id = new_run_id();
        let mut timings = BuildTimings::default();

        // Every namespace thread starts now, so they are created in parallel. Each host then
        // goes through its phases as soon as its own namespace exists (and, to wire, the
        // switch's bridges do): the namespaces still being created overlap with the netlink
        // work of the hosts already made, which is where most of a large lab's time goes.
        let starting_switch =
            NsWorker::start(SWITCH_NAME).map_err(|e| LabError::os(SWITCH_NAME, "spawn namespace thread", e))?;
        let mut starting = Vec::with_capacity(plan.hosts.len());
        for h in &plan.hosts {
            starting.push(NsWorker::start(&h.name).map_err(|e| LabError::os(&h.name, "spawn namespace thread", e))?);
        }
        let switch = starting_switch
            .wait()
            .await
            .map_err(|e| LabError::os(SWITCH_NAME, "create namespace", e))?;

        let (bridges_tx, bridges_rx) = tokio::sync::watch::channel(false);
        // Sysctls first: the bridges must be born without IPv6.
        let switch_up = async {
            switch
                .try_exec(sysctl::plain_bridges)
                .await
                .ok_or_else(|| LabError::WorkerGone {
                    host: SWITCH_NAME.into(),
                })??;
            bringup::switch_up(switch.rtnl(), &plan.segments).await?;
            let _ = bridges_tx.send(true);
            Ok::<_, LabError>(())
        };
        let known = well_known_addresses(plan);
        let large = plan.large_segments();
        let first_ports = bringup::first_port_indexes(&plan.hosts);
        let hosts = try_join_all(starting.into_iter().zip(&plan.hosts).enumerate().map(|(pos, (s, h))| {
            let (switch, known, large, mut bridges_rx) = (&switch, &known, &large, bridges_rx.clone());
            let first_port = first_ports[pos];
            async move {
                let w = s
                    .wait()
                    .await
                    .map_err(|e| LabError::os(&h.name, "create namespace", e))?;
                let mut done = BuildTimings {
                    namespaces: started.elapsed(),
                    ..BuildTimings::default()
                };
                let tuns = prepare_host(&w, h).await?;
                done.prepared = started.elapsed();
                let taken: Vec<u32> = tuns.iter().map(|t| t.2).collect();
                let layout = bringup::host_layout(pos, h, &plan.segments, &taken, first_port);
                let mut devs = vec![("lo".to_string(), LO_INDEX)];
                devs.extend(layout.iter().map(|i| (i.name.clone(), i.index)));
                devs.extend(tuns.iter().map(|x| (x.0.clone(), x.2)));
                let neighbours = neighbours_of(pos, h, &layout, known);
                if bridges_rx.wait_for(|up| *up).await.is_err() {
                    // The switch failed; its error is the one reported.
                    return Err(LabError::WorkerGone {
                        host: SWITCH_NAME.into(),
                    });
                }
                bringup::host_wire(w.rtnl(), h, &layout, &devs, &neighbours, switch.raw_fd(), w.raw_fd()).await?;
                ports_ready(switch, &w, h, &layout, large).await?;
                done.wired = started.elapsed();
                let host = h.name.clone();
                let sysctls = h.sysctls.clone();
                w.try_exec(move || sysctls.iter().try_for_each(|(k, v)| sysctl::write_sysctl(&host, k, v)))
                    .await
                    .ok_or_else(|| LabError::WorkerGone { host: h.name.clone() })??;
                if let Some(script) = h.nftables.clone() {
                    w.try_exec(move || crate::nft::load(&script))
                        .await
                        .ok_or_else(|| LabError::WorkerGone { host: h.name.clone() })?
                        .map_err(|message| LabError::Firewall {
                            host: h.name.clone(),
                            message,
                        })?;
                }
                done.sysctls = started.elapsed();
                Ok::<_, LabError>((w, tuns, layout, done))
            }
        }));
        let ((), hosts) = futures::try_join!(switch_up, hosts)?;
        let mut workers = Vec::with_capacity(hosts.len());
        let mut tuns = Vec::with_capacity(hosts.len());
        let mut layouts = Vec::with_capacity(hosts.len());
        for (w, t, l, done) in hosts {
            timings.namespaces = timings.namespaces.max(done.namespaces);
            timings.prepared = timings.prepared.max(done.prepared);
            timings.wired = timings.wired.max(done.wired);
            timings.sysctls = timings.sysctls.max(done.sysctls);
            workers.push(w);
            tuns.push(t);
            layouts.push(l);
        }
        let ports: Vec<u32> = plan
            .hosts
            .iter()
            .zip(&layouts)
            .filter(|(h, _)| h.link_up)
            .flat_map(|(_, l)| l.iter().map(|i| i.port_index))
            .collect();
        bringup::wait_ports_up(switch.rtnl(), &ports).await?;
        timings.ports_up = started.elapsed();

        let switch_ifaces = switch_ifaces(plan, &layouts);
        let hosts: Vec<Host> = workers
            .into_iter()
            .zip(&plan.hosts)
            .zip(layouts)
            .zip(tuns)
            .map(|(((worker, h), layout), tuns)| {
                let mut ifaces: Vec<IfaceInfo> = layout
                    .iter()
                    .zip(&h.interfaces)
                    .map(|(l, p)| IfaceInfo {
                        name: l.name.clone(),
                        index: l.index,
                        mac: l.mac,
                        addrs: p.addrs.clone(),
                    })
                    .collect();
                ifaces.extend(tuns.iter().zip(&h.tun_devices).map(|((name, _, idx), p)| IfaceInfo {
                    name: name.clone(),
                    index: *idx,
                    mac: Mac::UNSPECIFIED,
                    addrs: p.addrs.clone(),
                }));
                ifaces.push(IfaceInfo {
                    name: "lo".into(),
                    index: LO_INDEX,
                    mac: Mac::UNSPECIFIED,
                    addrs: h.loopback_addrs.clone(),
                });
                Host {
                    name: h.name.clone(),
                    worker,
                    ifaces,
                    tuns: Mutex::new(tuns.into_iter().filter_map(|(n, fd, _)| Some((n, fd?))).collect()),
                    routes: h.routes.clone(),
                }
            })
            .collect();
        let switch = Host {
            name: SWITCH_NAME.to_string(),
            worker: switch,
            ifaces: switch_ifaces,
            tuns: Mutex::new(HashMap::new()),
            routes: Vec::new(),
        };
        let mut lab = Lab {
            run_id,
            switch,
            hosts,
            kept: None,
            torn_down: false,
            timings,
        };
        if let Some(name) = &opts.keep {
            let namespaces: Vec<(String, i32)> = std::iter::once(&lab.switch)
                .chain(&lab.hosts)
                .map(|h| (h.name.clone(), h.worker.raw_fd()))
                .collect();
            lab.kept = Some(kept::publish(name, &lab.run_id, &namespaces)?);
        }
        Ok(lab)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    /// The namespace holding one bridge per segment (bridges `br-<segment>`, ports `<host>-<iface>`).
    pub fn switch(&self) -> &Host {
        &self.switch
    }

    pub fn build_timings(&self) -> BuildTimings {
        self.timings
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// A directory of this run's own for `host` (daemon configs, pid files, FIFOs, files that
    /// scripts test), created on first use and removed with the lab.
    pub fn host_dir(&self, host: &str) -> Result<std::path::PathBuf, LabError> {
        let dir = run_dir(&self.run_id).join(host);
        std::fs::create_dir_all(&dir).map_err(|e| LabError::os(host, "create the run directory", e))?;
        Ok(dir)
    }

    /// The kept-lab record, when built with `keep`.
    pub fn kept(&self) -> Option<&KeptState> {
        self.kept.as_ref()
    }

    /// Removes kept-lab links, stops every namespace worker (dropping its tasks and sockets)
    /// and closes the namespace fds; the kernel then frees the namespaces and their devices.
    pub async fn teardown(mut self) -> Result<(), LabError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), LabError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let mut first_err = None;
        if let Some(state) = self.kept.take() {
            let problems = kept::unpublish(&state);
            if !problems.is_empty() {
                first_err = Some(LabError::kept(&state.name, problems.join("; ")));
            }
        }
        if let Err(e) = remove_run_dir(&self.run_id) {
            first_err.get_or_insert(LabError::os(&self.run_id, "remove the run directory", e));
        }
        // Signal everyone first so the workers wind down in parallel.
        for h in std::iter::once(&self.switch).chain(&self.hosts) {
            h.worker.signal_stop();
        }
        for h in std::iter::once(&mut self.switch).chain(self.hosts.iter_mut()) {
            h.tuns.lock().unwrap_or_else(|p| p.into_inner()).clear();
            if !h.worker.stop() && first_err.is_none() {
                first_err = Some(LabError::os(
                    &h.name,
                    "stop namespace worker",
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "a task on its runtime does not yield; left detached",
                    ),
                ));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

type HostTun = (String, Option<OwnedFd>, u32);

/// IPv4 only, TUN devices, lo and loopback addresses: what a host needs before its veths.
async fn prepare_host(w: &NsWorker, h: &HostPlan) -> Result<Vec<HostTun>, LabError> {
    let names: Vec<String> = h.tun_devices.iter().map(|t| t.name.clone()).collect();
    let host = h.name.clone();
    let tuns = w
        .try_exec(move || {
            sysctl::ipv4_only(&host)?;
            names
                .iter()
                .map(|n| {
                    tun::create_or_adopt(n)
                        .map(|(fd, idx)| (n.clone(), fd, idx))
                        .map_err(|e| LabError::os(&host, format!("create TUN {n}"), e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .ok_or_else(|| LabError::WorkerGone { host: h.name.clone() })??;
    let indexes: Vec<u32> = tuns.iter().map(|t| t.2).collect();
    bringup::host_prepare(w.rtnl(), h, &indexes).await?;
    Ok(tuns)
}

/// Once a host's veths are up: its switch ports take their carrier change at once (see
/// `offload::sync_link_state`), and on large segments every host receives on a ring of its own
/// (see `offload`): TSO off on the host's switch ports, GRO on at its own ends.
async fn ports_ready(
    switch: &NsWorker,
    w: &NsWorker,
    h: &HostPlan,
    layout: &[IfaceLayout],
    large: &[&str],
) -> Result<(), LabError> {
    let ports: Vec<(String, bool, bool)> = layout
        .iter()
        .zip(&h.interfaces)
        .map(|(l, i)| (l.port_name.clone(), large.contains(&i.segment.as_str()), i.segmented))
        .collect();
    let ifaces: Vec<String> = h
        .interfaces
        .iter()
        .filter(|i| large.contains(&i.segment.as_str()))
        .map(|i| i.name.clone())
        .collect();
    let link_up = h.link_up;
    let switch_ports = async {
        switch
            .try_exec(move || {
                ports.iter().try_for_each(|(p, large, segmented)| {
                    if link_up {
                        offload::sync_link_state(p)
                            .map_err(|e| LabError::os(SWITCH_NAME, format!("read the link state of {p}"), e))?;
                    }
                    if *large || *segmented {
                        offload::send_unsegmented(p)
                            .map_err(|e| LabError::os(SWITCH_NAME, format!("turn TSO off on {p}"), e))?;
                    }
                    Ok(())
                })
            })
            .await
            .ok_or_else(|| LabError::WorkerGone {
                host: SWITCH_NAME.into(),
            })?
    };
    let host = h.name.clone();
    let host_ends = async {
        if ifaces.is_empty() {
            return Ok(());
        }
        w.try_exec(move || {
            ifaces.iter().try_for_each(|i| {
                offload::receive_on_own_ring(i).map_err(|e| LabError::os(&host, format!("turn GRO on on {i}"), e))
            })
        })
        .await
        .ok_or_else(|| LabError::WorkerGone { host: h.name.clone() })?
    };
    futures::try_join!(switch_ports, host_ends).map(|_| ())
}

/// (segment, owner, address, MAC) of every well-known host's interface on a large segment
/// (see `HostPlan::well_known`).
fn well_known_addresses(plan: &LabPlan) -> Vec<(String, usize, Ipv4Addr, Mac)> {
    let large = plan.large_segments();
    plan.hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| h.well_known)
        .flat_map(|(owner, h)| {
            h.interfaces.iter().enumerate().flat_map(move |(i, iface)| {
                let mac = bringup::iface_mac(owner, i, iface);
                iface
                    .addrs
                    .iter()
                    .map(move |a| (iface.segment.clone(), owner, a.addr(), mac))
            })
        })
        .filter(|(seg, ..)| large.contains(&seg.as_str()))
        .collect()
}

/// The permanent neighbour entries host `me` gets (interface index, address, MAC): the
/// addresses of every other well-known host on its large segments.
fn neighbours_of(
    me: usize,
    h: &HostPlan,
    layout: &[IfaceLayout],
    known: &[(String, usize, Ipv4Addr, Mac)],
) -> Vec<(u32, Ipv4Addr, Mac)> {
    h.interfaces
        .iter()
        .zip(layout)
        .flat_map(|(i, l)| {
            known
                .iter()
                .filter(move |(seg, owner, ..)| *seg == i.segment && *owner != me)
                .map(move |(_, _, addr, mac)| (l.index, *addr, *mac))
        })
        .collect()
}

fn switch_ifaces(plan: &LabPlan, layouts: &[Vec<IfaceLayout>]) -> Vec<IfaceInfo> {
    let mut v: Vec<IfaceInfo> = plan
        .segments
        .iter()
        .enumerate()
        .map(|(pos, seg)| IfaceInfo {
            name: bringup::bridge_name(seg, pos),
            index: bringup::bridge_index(pos),
            mac: Mac::UNSPECIFIED,
            addrs: Vec::new(),
        })
        .collect();
    v.extend(layouts.iter().flatten().map(|l| IfaceInfo {
        name: l.port_name.clone(),
        index: l.port_index,
        mac: Mac::UNSPECIFIED,
        addrs: Vec::new(),
    }));
    v
}

impl Host {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A current-thread runtime driven by a worker thread inside this namespace: sockets made
    /// by tasks spawned here belong to the namespace. Do not use `spawn_blocking` on it.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        self.worker.runtime()
    }

    /// Runs a sync closure on the namespace's thread (sysctl files, raw sockets). Keep it short:
    /// it blocks every task of this namespace meanwhile.
    ///
    /// [`LabError::WorkerGone`] once the namespace's worker has stopped; a panic in `f` is
    /// resumed here.
    pub async fn exec<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R, LabError> {
        self.worker.try_exec(f).await.ok_or_else(|| LabError::WorkerGone {
            host: self.name.clone(),
        })
    }

    /// A new OS thread that has entered this namespace before `f` runs (for packet loops).
    pub fn spawn_thread<F, R>(&self, name: &str, f: F) -> std::io::Result<std::thread::JoinHandle<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.worker.spawn_thread(name, f)
    }

    pub fn netns_fd(&self) -> BorrowedFd<'_> {
        self.worker.fd()
    }

    /// The namespace's one netlink connection (its socket lives in the namespace).
    pub fn rtnl(&self) -> &rtnetlink::Handle {
        self.worker.rtnl()
    }

    pub fn iface(&self, name: &str) -> Option<&IfaceInfo> {
        self.ifaces.iter().find(|i| i.name == name)
    }

    pub fn ifaces(&self) -> &[IfaceInfo] {
        &self.ifaces
    }

    /// The fd of a planned TUN device, once. Closing it deletes the device. None when the
    /// kernel already had a device of that name (ipip's own tunl0, which needs no decapsulator).
    pub fn take_tun(&self, name: &str) -> Option<OwnedFd> {
        self.tuns.lock().unwrap_or_else(|p| p.into_inner()).remove(name)
    }

    fn index_of(&self, iface: &str) -> Result<u32, LabError> {
        self.iface(iface).map(|i| i.index).ok_or_else(|| LabError::NoSuchIface {
            host: self.name.clone(),
            iface: iface.to_string(),
        })
    }

    /// Sets a link up or down. Bringing a link up also installs the planned routes through it
    /// (a down link holds no routes).
    pub async fn set_link_up(&self, iface: &str, up: bool) -> Result<(), LabError> {
        let index = self.index_of(iface)?;
        let mut batch = Batch::new(&self.name, self.rtnl());
        batch.push(
            format!("set {iface} {}", if up { "up" } else { "down" }),
            bringup::set_link_msg(index, up),
            CHANGE,
        )?;
        batch.finish().await?;
        if !up {
            return Ok(());
        }
        let nets: Vec<Ipv4Net> = self.iface(iface).map(|i| i.addrs.clone()).unwrap_or_default();
        let devs: Vec<(String, u32)> = self.ifaces.iter().map(|i| (i.name.clone(), i.index)).collect();
        for route in &self.routes {
            let through_this = match (&route.dev, route.via) {
                (Some(dev), _) => dev == iface,
                (None, Some(via)) => nets.iter().any(|n| n.contains(&via)),
                (None, None) => false,
            };
            if !through_this {
                continue;
            }
            let mut batch = Batch::new(&self.name, self.rtnl());
            batch.push(
                format!("add route {} via {:?} dev {:?}", route.dst, route.via, route.dev),
                bringup::route_msg(route, bringup::dev_index(route, &devs)),
                CREATE,
            )?;
            match batch.finish().await {
                Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Adds an address to an interface ("lo" included), e.g. extra client source addresses.
    pub async fn add_address(&self, iface: &str, addr: Ipv4Net) -> Result<(), LabError> {
        let index = self.index_of(iface)?;
        let mut batch = Batch::new(&self.name, self.rtnl());
        batch.push(
            format!("add {addr} to {iface}"),
            bringup::addr_msg(index, &addr),
            CREATE,
        )?;
        batch.finish().await
    }

    /// Adds and removes addresses of one interface from any task (a VRRP node's VIPs).
    pub fn addresses_of(&self, iface: &str) -> Result<AddressControl, LabError> {
        Ok(AddressControl {
            host: self.name.clone(),
            iface: iface.to_string(),
            index: self.index_of(iface)?,
            handle: self.rtnl().clone(),
        })
    }

    /// Writes a network sysctl in this namespace (clear error for an unknown name).
    pub async fn set_sysctl(&self, name: &str, value: &str) -> Result<(), LabError> {
        plan::check_sysctl_name(&self.name, name)?;
        let (host, name, value) = (self.name.clone(), name.to_string(), value.to_string());
        self.exec(move || sysctl::write_sysctl(&host, &name, &value)).await?
    }

    /// Reads a network sysctl in this namespace.
    pub async fn sysctl(&self, name: &str) -> Result<String, LabError> {
        plan::check_sysctl_name(&self.name, name)?;
        let n = name.to_string();
        let host = self.name.clone();
        self.exec(move || sysctl::read_sysctl(&n).map_err(|e| LabError::os(&host, format!("read sysctl {n}"), e)))
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host's nftables rules are in its namespace once the lab is built, and a script nft
    /// refuses fails the build naming the host.
    #[tokio::test(flavor = "current_thread")]
    async fn a_host_gets_its_nftables_rules() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for network namespaces");
            return;
        }
        let host = |script: &str| HostPlan {
            name: "fw".into(),
            interfaces: vec![IfacePlan {
                name: "eth0".into(),
                segment: "lan".into(),
                addrs: vec!["10.8.1.1/24".parse().unwrap()],
                mac: None,
                mtu: None,
                segmented: false,
            }],
            nftables: Some(script.into()),
            ..Default::default()
        };
        let plan = |script: &str| LabPlan {
            name: "nft".into(),
            hosts: vec![host(script)],
            segments: vec!["lan".into()],
        };
        let rules = "table inet lvslab_test {\n chain in {\n type filter hook input priority 0\n iif eth0 tcp dport 80 counter drop\n }\n}\n";
        let lab = Lab::build(&plan(rules), LabOptions::default())
            .await
            .expect("lab builds");
        let listed = lab
            .host("fw")
            .unwrap()
            .exec(crate::nft::ruleset::read_drops)
            .await
            .unwrap();
        let listed = listed.expect("nft lists the ruleset");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].text, "iif \"eth0\" tcp dport 80 counter drop");
        lab.teardown().await.expect("teardown");

        let refused = Lab::build(&plan("table inet t { chain c { dorp; } }"), LabOptions::default()).await;
        match refused {
            Err(LabError::Firewall { host, message }) => {
                assert_eq!(host, "fw");
                assert!(message.contains("syntax error"), "{message}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(lab) => {
                lab.teardown().await.expect("teardown");
                panic!("nft accepted a bad script");
            }
        }
    }

    /// A host whose namespace thread has stopped answers with an error, not a panic.
    #[tokio::test(flavor = "current_thread")]
    async fn a_stopped_host_answers_worker_gone() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for network namespaces");
            return;
        }
        let plan = LabPlan {
            name: "worker-gone".into(),
            hosts: vec![HostPlan {
                name: "a".into(),
                interfaces: vec![IfacePlan {
                    name: "eth0".into(),
                    segment: "lan".into(),
                    addrs: vec!["10.8.0.1/24".parse().unwrap()],
                    mac: None,
                    mtu: None,
                    segmented: false,
                }],
                ..Default::default()
            }],
            segments: vec!["lan".into()],
        };
        let mut lab = Lab::build(&plan, LabOptions::default()).await.expect("lab builds");
        assert_eq!(lab.hosts[0].exec(|| 7).await.expect("worker runs"), 7);
        assert!(lab.hosts[0].worker.stop(), "worker stops");
        let a = lab.host("a").unwrap();
        assert!(matches!(a.exec(|| 7).await, Err(LabError::WorkerGone { host }) if host == "a"));
        assert!(matches!(
            a.sysctl("net.ipv4.ip_forward").await,
            Err(LabError::WorkerGone { .. })
        ));
        lab.teardown().await.expect("teardown");
    }
}
