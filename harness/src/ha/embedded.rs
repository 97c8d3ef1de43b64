//! lvslab's own VRRP node: a director's `crate::vrrp::Group` (its instances, bound or not by a
//! `vrrp_sync_group`) driven by real sockets in its namespace, as keepalived's VRRP child
//! drives its instances. Each instance has its own interface, sockets and address hold.
//!
//! * adverts: a raw IPv4 socket of protocol 112 with `IP_HDRINCL`, bound to the instance's
//!   interface, in the group 224.0.0.18 with multicast loop off (keepalived's `vrrp_if.c`);
//! * gratuitous ARPs: broadcast ARP requests on a packet socket (`vrrp_arp.c`);
//! * the VIP: held through a [`VipHold`] (the embedded engine's gate, or an address of the
//!   interface for kernel IPVS);
//! * `vrrp_script`s: `sh -c` in the namespace, every `interval`, killed after their timeout.
//!
//! The task runs on the namespace's runtime; it ends on `kill` (nothing more is sent, the VIP
//! stays where it is, like a power cut) or after a graceful `stop` (priority 0, VIP removed).

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

use super::journal::{Journal, What};
use crate::director::VipGate;
use crate::lab::AddressControl;
use crate::sys::{packet, socket};
use crate::vrrp::{self, Group, InstanceConfig, MemberRecord, ScriptRun, State, VrrpAction, VrrpScript};
use crate::wire::{arp, ethernet, Mac};

/// How the node's VIPs become the director's.
#[derive(Clone)]
pub enum VipHold {
    /// The embedded engine serves a VIP while the gate holds it.
    Gate(VipGate),
    /// Kernel IPVS: the VIP is an address of the interface (/32), as keepalived sets it.
    Address(AddressControl),
}

impl VipHold {
    async fn set(&self, vip: Ipv4Addr, held: bool) -> Result<(), String> {
        match self {
            VipHold::Gate(gate) => {
                gate.set(vip, held);
                Ok(())
            }
            VipHold::Address(control) => {
                let net = Ipv4Net::from(vip);
                let done = if held {
                    control.add(net).await
                } else {
                    control.remove(net).await
                };
                done.map_err(|e| e.to_string())
            }
        }
    }
}

/// One `vrrp_script` tracked by the node's instances.
#[derive(Clone, Debug)]
pub struct ScriptSpec {
    /// The tracks that follow it, as (member, index in the member's `tracks`): the VIP
    /// instance's, and in a sync group the gateway's too when the track is weighted.
    pub tracks: Vec<(usize, usize)>,
    pub name: String,
    /// With `{dir}` replaced.
    pub command: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// One instance of the node, with its interface.
#[derive(Clone)]
pub struct MemberSpec {
    pub instance: InstanceConfig,
    pub unicast_peers: Vec<Ipv4Addr>,
    pub ifindex: u32,
    pub mac: Mac,
    pub hold: VipHold,
}

/// Everything the node needs, resolved by the caller in the director's namespace.
pub struct NodeSpec {
    pub director: String,
    /// The VIP's instance first; the real servers' gateway's next (NAT).
    pub members: Vec<MemberSpec>,
    /// `vrrp_sync_group`: the members move together.
    pub sync_group: Option<String>,
    pub scripts: Vec<ScriptSpec>,
    /// keepalived's no_accept (`vrrp_strict` without `accept`): while MASTER, nftables drops
    /// traffic to and from the VIPs, as keepalived's own table does.
    pub no_accept: bool,
}

/// What the run asks of a node.
enum Order {
    Kill,
    Stop(oneshot::Sender<()>),
    Freeze,
    Thaw,
    Track { member: usize, index: usize, ok: bool },
}

/// A running node; dropping it kills it.
pub struct EmbeddedNode {
    commands: mpsc::UnboundedSender<Order>,
    state: Arc<Mutex<State>>,
    ended: Option<oneshot::Receiver<()>>,
}

impl EmbeddedNode {
    /// Opens the node's sockets on `runtime` (the director's namespace runtime) and starts it.
    pub async fn start(
        runtime: &tokio::runtime::Handle,
        spec: NodeSpec,
        journal: Journal,
    ) -> Result<EmbeddedNode, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (opened_tx, opened_rx) = oneshot::channel();
        let (ended_tx, ended_rx) = oneshot::channel();
        let state = Arc::new(Mutex::new(State::Init));
        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            let mut sockets = Vec::new();
            for m in &spec.members {
                match Sockets::open(m) {
                    Ok(s) => sockets.push(s),
                    Err(e) => {
                        let _ = opened_tx.send(Err(format!("VRRP sockets on {}: {e}", m.instance.interface)));
                        return;
                    }
                }
            }
            let _ = opened_tx.send(Ok(()));
            Node::new(spec, sockets, journal, shared).run(rx).await;
            let _ = ended_tx.send(());
        });
        match opened_rx.await {
            Ok(Ok(())) => Ok(EmbeddedNode {
                commands: tx,
                state,
                ended: Some(ended_rx),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the director's namespace runtime is gone".into()),
        }
    }

    pub fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Power cut: nothing more is sent and nothing is cleaned up.
    pub async fn kill(&mut self) {
        let _ = self.commands.send(Order::Kill);
        if let Some(ended) = self.ended.take() {
            let _ = ended.await;
        }
    }

    /// keepalived's SIGTERM: a master sends priority 0 and removes its VIPs.
    pub async fn stop(&mut self) {
        let (ack, done) = oneshot::channel();
        if self.commands.send(Order::Stop(ack)).is_ok() {
            let _ = done.await;
        }
        if let Some(ended) = self.ended.take() {
            let _ = ended.await;
        }
    }

    pub fn freeze(&self) {
        let _ = self.commands.send(Order::Freeze);
    }

    pub fn thaw(&self) {
        let _ = self.commands.send(Order::Thaw);
    }

    /// A tracked interface of instance `member` went up or down.
    pub fn track(&self, member: usize, index: usize, ok: bool) {
        let _ = self.commands.send(Order::Track { member, index, ok });
    }
}

impl Drop for EmbeddedNode {
    fn drop(&mut self) {
        let _ = self.commands.send(Order::Kill);
    }
}

struct Sockets {
    vrrp: AsyncFd<OwnedFd>,
    arp: OwnedFd,
}

impl Sockets {
    /// Must run inside the director's namespace (on its runtime).
    fn open(spec: &MemberSpec) -> std::io::Result<Sockets> {
        let fd = socket::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            i32::from(vrrp::IPPROTO_VRRP),
        )?;
        socket::set_int_option(fd.as_fd(), libc::IPPROTO_IP, libc::IP_HDRINCL, 1)?;
        let mut name = [0u8; libc::IFNAMSIZ];
        for (slot, b) in name
            .iter_mut()
            .zip(spec.instance.interface.bytes().take(libc::IFNAMSIZ - 1))
        {
            *slot = b;
        }
        socket::setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_BINDTODEVICE, &name)?;
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr {
                s_addr: u32::from(vrrp::MULTICAST_GROUP).to_be(),
            },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: spec.ifindex as libc::c_int,
        };
        socket::setsockopt(fd.as_fd(), libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
        socket::setsockopt(fd.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
        socket::set_int_option(fd.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, 0)?;
        socket::set_int_option(fd.as_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0)?;
        let vrrp = socket::register_readable(fd)?;
        let arp = socket::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        packet::bind(&arp, spec.ifindex, ethernet::EtherType::ARP.0)?;
        Ok(Sockets { vrrp, arp })
    }
}

struct RunningScript {
    spec: ScriptSpec,
    counter: VrrpScript,
    next: Instant,
    child: Option<(Child, Instant)>,
}

struct Node {
    spec: NodeSpec,
    /// Parallel to `spec.members`.
    sockets: Vec<Sockets>,
    journal: Journal,
    /// The VIP instance's state: what the run calls the director's.
    state: Arc<Mutex<State>>,
    group: Group,
    base: Instant,
    ip_id: u16,
    scripts: Vec<RunningScript>,
}

/// While a script runs, its exit is looked for this often.
const SCRIPT_POLL: Duration = Duration::from_millis(10);

impl Node {
    fn new(spec: NodeSpec, sockets: Vec<Sockets>, journal: Journal, state: Arc<Mutex<State>>) -> Node {
        let configs = spec.members.iter().map(|m| m.instance.clone()).collect();
        let (group, warnings) = Group::new(spec.sync_group.as_deref(), configs);
        for w in warnings {
            journal.add(&spec.director, What::Log(w));
        }
        let now = Instant::now();
        let scripts = spec
            .scripts
            .iter()
            .map(|s| RunningScript {
                counter: VrrpScript::new(&s.name, s.interval, s.rise, s.fall, s.init_fail),
                spec: s.clone(),
                next: now,
                child: None,
            })
            .collect();
        Node {
            spec,
            sockets,
            journal,
            state,
            group,
            base: now,
            ip_id: 0,
            scripts,
        }
    }

    fn now(&self) -> Duration {
        self.base.elapsed()
    }

    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Order>) {
        let records = self.group.start(self.now());
        self.carry_out(records).await;
        let mut frozen = false;
        let mut held_back: Vec<(usize, usize, bool)> = Vec::new();
        let mut buf = vec![0u8; 2048];
        loop {
            let timer = self.group.next_timer().map(|d| self.base + d);
            let script_due = self.next_script_moment();
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Order::Kill) => return self.abandon_scripts(),
                    Some(Order::Stop(ack)) => {
                        let records = self.group.shutdown(self.now());
                        self.carry_out(records).await;
                        self.abandon_scripts();
                        let _ = ack.send(());
                        return;
                    }
                    Some(Order::Freeze) => frozen = true,
                    Some(Order::Thaw) => {
                        frozen = false;
                        for (member, index, ok) in std::mem::take(&mut held_back) {
                            let records = self.group.on_track(self.now(), member, index, ok);
                            self.carry_out(records).await;
                        }
                    }
                    Some(Order::Track { member, index, ok }) if frozen => held_back.push((member, index, ok)),
                    Some(Order::Track { member, index, ok }) => {
                        let records = self.group.on_track(self.now(), member, index, ok);
                        self.carry_out(records).await;
                    }
                },
                member = any_readable(&self.sockets), if !frozen => {
                    // Readiness is kept by the wait above; this guard reads it.
                    let Ok(mut guard) = self.sockets[member].vrrp.readable().await else {
                        return self.abandon_scripts();
                    };
                    let mut packets = Vec::new();
                    while let Ok(Ok(n)) = guard.try_io(|fd| socket::recv(fd.get_ref().as_fd(), &mut buf)) {
                        packets.push(buf[..n].to_vec());
                    }
                    for packet in packets {
                        self.receive(member, &packet).await;
                    }
                }
                _ = sleep_until(timer), if !frozen && timer.is_some() => {
                    let records = self.group.on_timer(self.now());
                    self.carry_out(records).await;
                }
                _ = sleep_until(script_due), if !frozen && script_due.is_some() => self.tend_scripts().await,
            }
        }
    }

    async fn receive(&mut self, member: usize, packet: &[u8]) {
        match vrrp::parse_ipv4(packet) {
            Ok(rx) => {
                let records = self.group.on_advert(self.now(), member, &rx);
                self.carry_out(records).await;
            }
            Err(e) => {
                let line = e.log_line(&self.group.member(member).config().name);
                self.journal.add(&self.spec.director, What::Log(line));
            }
        }
    }

    async fn carry_out(&mut self, records: Vec<MemberRecord>) {
        for (member, record) in records {
            let m = &self.spec.members[member];
            match record.action {
                VrrpAction::Log(line) => self.journal.add(&self.spec.director, What::Log(line)),
                VrrpAction::Transition { from, to, priority, .. } if member == 0 => {
                    *self.state.lock().unwrap_or_else(|p| p.into_inner()) = to;
                    self.journal
                        .add(&self.spec.director, What::Transition { from, to, priority });
                }
                // The other instances' states are the log's, as keepalived's FIFO would say them.
                VrrpAction::Transition { fifo, .. } => {
                    self.journal
                        .add(&self.spec.director, What::Log(format!("notify_fifo: {fifo}")));
                }
                VrrpAction::SendAdvert(advert) => {
                    let source = m.instance.address;
                    let destinations = if m.unicast_peers.is_empty() {
                        vec![vrrp::MULTICAST_GROUP]
                    } else {
                        m.unicast_peers.clone()
                    };
                    for to in destinations {
                        self.ip_id = self.ip_id.wrapping_add(1);
                        let bytes = vrrp::emit_ipv4(&advert, source, to, self.ip_id);
                        let fd = self.sockets[member].vrrp.get_ref().as_fd();
                        if let Err(e) = socket::send_to_ipv4(fd, &bytes, to) {
                            // keepalived's own words (vrrp.c `vrrp_send_pkt`).
                            let line = format!(
                                "({}) send advert error {} ({e})",
                                m.instance.name,
                                e.raw_os_error().unwrap_or(0)
                            );
                            self.journal.add(&self.spec.director, What::Log(line));
                        }
                    }
                }
                VrrpAction::AddVips(vips) => self.hold(member, &vips, true).await,
                VrrpAction::RemoveVips(vips) => self.hold(member, &vips, false).await,
                VrrpAction::Garp { vip } => {
                    let mut frame = arp::gratuitous(m.mac, vip);
                    ethernet::pad_to_minimum(&mut frame);
                    let _ = socket::send(self.sockets[member].arp.as_fd(), &frame);
                }
            }
        }
    }

    async fn hold(&mut self, member: usize, vips: &[Ipv4Addr], held: bool) {
        let hold = self.spec.members[member].hold.clone();
        for vip in vips {
            if let Err(e) = hold.set(*vip, held).await {
                let line = format!("lvslab: cannot {} VIP {vip}: {e}", if held { "set" } else { "remove" });
                self.journal.add(&self.spec.director, What::Log(line));
            }
        }
        if self.spec.no_accept && !vips.is_empty() {
            // keepalived's words (vrrp_firewall.c); its table goes with the namespace.
            let name = &self.spec.members[member].instance.name;
            let line = match super::no_accept::drop_rule(vips, held) {
                Ok(()) if held => format!("({name}) setting firewall drop rule"),
                Ok(()) => format!("({name}) removing firewall drop rule"),
                Err(e) => format!("lvslab: ({name}) cannot set the no_accept drop rule: {e}"),
            };
            self.journal.add(&self.spec.director, What::Log(line));
        }
    }

    fn next_script_moment(&self) -> Option<Instant> {
        self.scripts
            .iter()
            .map(|s| match &s.child {
                Some(_) => Instant::now() + SCRIPT_POLL,
                None => s.next,
            })
            .min()
    }

    /// Starts the scripts that are due and counts those that ended.
    async fn tend_scripts(&mut self) {
        let now = Instant::now();
        let mut flips = Vec::new();
        let mut logs = Vec::new();
        for s in &mut self.scripts {
            if let Some((child, deadline)) = &mut s.child {
                let run = match child.try_wait() {
                    Ok(Some(status)) => Some(exit_of(status)),
                    Ok(None) if now >= *deadline => {
                        kill_group(child);
                        Some(ScriptRun::TimedOut)
                    }
                    Ok(None) => None,
                    Err(_) => Some(ScriptRun::Signal(0)),
                };
                if let Some(run) = run {
                    s.child = None;
                    let step = s.counter.record(run);
                    logs.extend(step.logs);
                    if let Some(ok) = step.flip {
                        flips.push((s.spec.tracks.clone(), ok));
                    }
                }
            } else if now >= s.next {
                // Runs start `interval` apart, from the start of the last (vrrp_scheduler.c).
                s.next = now + s.spec.interval;
                match spawn_script(&s.spec.command) {
                    Ok(child) => {
                        let timeout = if s.spec.timeout.is_zero() {
                            s.spec.interval
                        } else {
                            s.spec.timeout
                        };
                        s.child = Some((child, now + timeout));
                    }
                    Err(_) => {
                        let step = s.counter.record(ScriptRun::Exit(127));
                        logs.extend(step.logs);
                        if let Some(ok) = step.flip {
                            flips.push((s.spec.tracks.clone(), ok));
                        }
                    }
                }
            }
        }
        for line in logs {
            self.journal.add(&self.spec.director, What::Log(line));
        }
        for (tracks, ok) in flips {
            for (member, index) in tracks {
                let records = self.group.on_track(self.now(), member, index, ok);
                self.carry_out(records).await;
            }
        }
    }

    fn abandon_scripts(&mut self) {
        for s in &mut self.scripts {
            if let Some((child, _)) = &mut s.child {
                kill_group(child);
            }
        }
    }
}

/// The index of a member socket with something to read (readiness stays set for the reader).
async fn any_readable(sockets: &[Sockets]) -> usize {
    let waits = sockets.iter().enumerate().map(|(i, s)| {
        Box::pin(async move {
            let _ = s.vrrp.readable().await;
            i
        })
    });
    futures::future::select_all(waits).await.0
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => futures::future::pending().await,
    }
}

fn spawn_script(command: &str) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    crate::sys::process::die_with_parent_in_child(&mut cmd);
    cmd.spawn()
}

fn exit_of(status: std::process::ExitStatus) -> ScriptRun {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ScriptRun::Exit(code),
        (None, Some(signal)) => ScriptRun::Signal(signal),
        (None, None) => ScriptRun::Signal(0),
    }
}

fn kill_group(child: &mut Child) {
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
}
