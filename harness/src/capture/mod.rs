//! `--capture DIR`: lvslab's own packet capture, no tcpdump. One pcapng file per host
//! interface (`<host>-<ifname>.pcapng`, lo left out) and one per segment
//! (`segment-<network>.pcapng`: every frame as a port of the segment's bridge receives it, so
//! each frame the segment carries once). Each file's interface block names the host and the
//! interface. Sockets are opened inside each namespace before the traffic; one thread drains
//! every socket in batches and streams the frames to disk; `stop` takes the last frames and
//! flushes.

mod pcapng;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use pcapng::{read_frames, Frame};

use crate::lab::{Lab, LabError, LabPlan, SWITCH_NAME};
use crate::sys::capture::{Batch, CaptureSocket, SNAPLEN};
use crate::sys::poll::PollSet;
use crate::wire::Mac;

/// The index of a capture directory: what was captured where, and the run's requests.
pub const INDEX_FILE: &str = "index.json";

/// What a capture file's frames start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkType {
    Ethernet,
    /// A TUN device's frames: bare IPv4 packets.
    RawIp,
}

/// One file of a capture directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureFile {
    /// The file's name inside the directory.
    pub file: String,
    /// The host whose interface it is (`switch` for a segment).
    pub host: String,
    pub interface: String,
    /// The network, for a segment's file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    pub link: LinkType,
    /// Frames written to the file.
    pub frames: u64,
    /// Frames the kernel could not hand over (its queue was full): missing from the file.
    pub dropped: u64,
}

impl CaptureFile {
    /// How the reports name this place: `client eth0`, `segment lan`.
    pub fn location(&self) -> String {
        match &self.segment {
            Some(network) => format!("segment {network}"),
            None => format!("{} {}", self.host, self.interface),
        }
    }
}

/// A finished capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSummary {
    pub dir: PathBuf,
    pub files: Vec<CaptureFile>,
    /// Every lab interface's MAC with its place (`rs2 eth0`), to name the MACs in the frames.
    pub macs: Vec<(Mac, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{0}")]
    Lab(#[from] LabError),
    #[error("a capture thread panicked")]
    Panicked,
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> CaptureError {
    let what = what.into();
    move |source| CaptureError::Io { what, source }
}

/// A capture running beside the lab.
pub struct Capture {
    dir: PathBuf,
    macs: Vec<(Mac, String)>,
    wake: OwnedFd,
    done: std::sync::mpsc::Receiver<Result<Vec<CaptureFile>, CaptureError>>,
    /// Joined only if it ends without an answer (a panic): closing its sockets is left to it.
    thread: JoinHandle<()>,
}

/// Receive queue memory of all the capture sockets together (the kernel's accounting, about
/// 1 KiB a small frame); each gets its share within the bounds below.
const QUEUE_BUDGET: usize = 64 << 20;
const MIN_QUEUE: usize = 1 << 20;
const MAX_QUEUE: usize = 16 << 20;
/// With nothing to take for this long, the files are flushed: a kept lab's files stay readable.
const IDLE_FLUSH: Duration = Duration::from_millis(200);

struct Point {
    file: CaptureFile,
    if_name: String,
    description: String,
}

/// Where a socket's frames go.
enum Route {
    /// All to one file.
    One(usize),
    /// By the interface they were seen on (a bridge port) to its segment's file; frames of any
    /// other interface (the bridges themselves, lo) are left out.
    ByPort(HashMap<u32, usize>),
}

impl Route {
    fn file(&self, ifindex: u32) -> Option<usize> {
        match self {
            Route::One(i) => Some(*i),
            Route::ByPort(ports) => ports.get(&ifindex).copied(),
        }
    }
}

/// One socket to open: on `ifindex` (0: every interface of the namespace), and where its
/// frames go (indexes into the list of files).
struct SocketPlan {
    ifindex: u32,
    ingress_only: bool,
    place: String,
    route: Route,
}

/// Every file of `lab` and the sockets that fill them, by namespace. The switch has one socket
/// for all its segments: bound to every interface, it takes each frame as a bridge port
/// receives it (ingress only: the same frame leaving by another port is left out), so each
/// frame a segment carries is in its file once, and no bridge is put in promiscuous mode (which
/// takes the RTNL lock, contended by every lab's bring-up and namespace clean-up). Then each
/// host's interfaces but lo, one socket each.
fn points(lab: &Lab, plan: &LabPlan) -> (Vec<Point>, Vec<(String, Vec<SocketPlan>)>) {
    let lab_name = &plan.name;
    let bridges = &lab.switch().ifaces()[..plan.segments.len()];
    let mut files: Vec<Point> = bridges
        .iter()
        .zip(&plan.segments)
        .map(|(bridge, network)| Point {
            file: CaptureFile {
                file: format!("segment-{network}.pcapng"),
                host: SWITCH_NAME.to_owned(),
                interface: bridge.name.clone(),
                segment: Some(network.clone()),
                link: LinkType::Ethernet,
                frames: 0,
                dropped: 0,
            },
            if_name: format!("{SWITCH_NAME}:{}", bridge.name),
            description: format!(
                "segment {network} of lab {lab_name}: frames as the ports of bridge {} in the switch receive them",
                bridge.name
            ),
        })
        .collect();
    // The switch's ports follow its bridges, one per host interface in the plan's order.
    let ports = lab.switch().ifaces()[plan.segments.len()..]
        .iter()
        .zip(plan.hosts.iter().flat_map(|h| &h.interfaces))
        .filter_map(|(port, iface)| Some((port.index, plan.segments.iter().position(|s| *s == iface.segment)?)))
        .collect();
    let switch = SocketPlan {
        ifindex: 0,
        ingress_only: true,
        place: "the switch's bridge ports".into(),
        route: Route::ByPort(ports),
    };
    let mut out = vec![(SWITCH_NAME.to_owned(), vec![switch])];
    for (host, hp) in lab.hosts().zip(&plan.hosts) {
        let mut sockets = Vec::new();
        for i in host.ifaces().iter().filter(|i| i.name != "lo") {
            let tun = hp.tun_devices.iter().any(|t| t.name == i.name);
            let file = CaptureFile {
                file: format!("{}-{}.pcapng", host.name(), i.name),
                host: host.name().to_owned(),
                interface: i.name.clone(),
                segment: None,
                link: if tun { LinkType::RawIp } else { LinkType::Ethernet },
                frames: 0,
                dropped: 0,
            };
            sockets.push(SocketPlan {
                ifindex: i.index,
                ingress_only: false,
                place: file.location(),
                route: Route::One(files.len()),
            });
            files.push(Point {
                file,
                if_name: format!("{}:{}", host.name(), i.name),
                description: format!("{} of host {} in lab {lab_name}", i.name, host.name()),
            });
        }
        out.push((host.name().to_owned(), sockets));
    }
    (files, out)
}

impl Capture {
    /// Opens every capture socket in its namespace and starts writing. Frames reach the files
    /// from the moment this returns: every socket is bound before it does.
    pub async fn start(lab: &Lab, plan: &LabPlan, dir: &Path) -> Result<Capture, CaptureError> {
        std::fs::create_dir_all(dir).map_err(io_error(format!("create {}", dir.display())))?;
        let (files, by_namespace) = points(lab, plan);
        let count: usize = by_namespace.iter().map(|(_, p)| p.len()).sum();
        let queue = (QUEUE_BUDGET / count.max(1)).clamp(MIN_QUEUE, MAX_QUEUE);
        let mut writers = Vec::with_capacity(files.len());
        for point in files {
            let path = dir.join(&point.file.file);
            let writer = pcapng::Writer::create(&path, &point.if_name, &point.description, point.file.link)
                .map_err(io_error(format!("create {}", path.display())))?;
            writers.push((point.file, writer));
        }
        // This thread enters each namespace in turn and opens its sockets there (a socket stays
        // in the namespace it was made in), then comes back: no other thread to wait for, which
        // on a loaded machine costs a scheduler round each.
        let mut namespaces = Vec::with_capacity(by_namespace.len());
        for (namespace, sockets) in by_namespace {
            let host = if namespace == SWITCH_NAME {
                lab.switch()
            } else {
                lab.host(&namespace).ok_or_else(|| LabError::WorkerGone {
                    host: namespace.clone(),
                })?
            };
            let fd = host
                .netns_fd()
                .try_clone_to_owned()
                .map_err(io_error(format!("hold the namespace of {namespace}")))?;
            namespaces.push((namespace, fd, sockets));
        }
        let macs = lab
            .hosts()
            .flat_map(|h| {
                h.ifaces()
                    .iter()
                    .filter(|i| !i.mac.is_unspecified())
                    .map(|i| (i.mac, format!("{} {}", h.name(), i.name)))
            })
            .collect();
        let (wait, wake) = nix::unistd::pipe().map_err(|e| CaptureError::Io {
            what: "make the capture's stop pipe".into(),
            source: e.into(),
        })?;
        let (answer, done) = std::sync::mpsc::channel();
        let sockets = open_all(namespaces, queue)?;
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || drain(sockets, writers, wait, answer))
            .map_err(io_error("start the capture thread"))?;
        Ok(Capture {
            dir: dir.to_path_buf(),
            macs,
            wake,
            done,
            thread,
        })
    }

    /// Takes the frames still waiting, flushes every file and says what each holds.
    pub fn stop(self) -> Result<CaptureSummary, CaptureError> {
        // A capture thread that already ended on an error has closed the pipe: its answer
        // says why, which the failed write would not.
        let woken = nix::unistd::write(&self.wake, &[1]);
        let files = match self.done.recv() {
            Ok(files) if woken.is_err() && files.is_ok() => {
                return Err(CaptureError::Io {
                    what: "stop the capture".into(),
                    source: woken.unwrap_err().into(),
                })
            }
            Ok(files) => files?,
            Err(_) => {
                let _ = self.thread.join();
                return Err(CaptureError::Panicked);
            }
        };
        Ok(CaptureSummary {
            dir: self.dir,
            files,
            macs: self.macs,
        })
    }
}

/// A namespace's sockets to open: its name, its fd, and the sockets.
type NamespaceOpens = (String, OwnedFd, Vec<SocketPlan>);

/// Every capture socket with its route, each opened in its namespace by the calling thread,
/// which is back in its own namespace when this returns, whatever happened.
fn open_all(namespaces: Vec<NamespaceOpens>, queue: usize) -> Result<Vec<(CaptureSocket, Route)>, CaptureError> {
    let _back = NamespaceGuard::here().map_err(io_error("hold this thread's namespace"))?;
    let mut sockets = Vec::new();
    for (namespace, fd, plans) in namespaces {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| CaptureError::Io {
            what: format!("enter the namespace of {namespace}"),
            source: e.into(),
        })?;
        for p in plans {
            let socket = CaptureSocket::open(p.ifindex, queue, p.ingress_only)
                .map_err(io_error(format!("open a capture socket on {}", p.place)))?;
            sockets.push((socket, p.route));
        }
    }
    Ok(sockets)
}

/// Puts the thread back into the network namespace it was in when made.
struct NamespaceGuard(OwnedFd);

impl NamespaceGuard {
    fn here() -> io::Result<Self> {
        // thread-self: /proc/self would name the main thread's namespace.
        Ok(NamespaceGuard(std::fs::File::open("/proc/thread-self/ns/net")?.into()))
    }
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        // Entering a namespace held open, as root, does not fail; if it ever did, this thread
        // must not go on in a lab's namespace.
        if let Err(e) = nix::sched::setns(&self.0, nix::sched::CloneFlags::CLONE_NEWNET) {
            eprintln!("lvslab: cannot return to the own network namespace: {e}");
            std::process::abort();
        }
    }
}

/// The capture thread: waits for frames on every socket, writes them, and on a byte from
/// `stop` takes what is left and answers each file's counts. Then it closes the sockets, all at
/// once: each close waits for an RCU grace period (packet_release), which the run need not wait for.
fn drain(
    sockets: Vec<(CaptureSocket, Route)>,
    writers: Vec<(CaptureFile, pcapng::Writer)>,
    stop: OwnedFd,
    answer: std::sync::mpsc::Sender<Result<Vec<CaptureFile>, CaptureError>>,
) {
    let mut writers = writers;
    let _ = answer.send(capture_until_stopped(&sockets, &mut writers, &stop));
    // Flushed already; closing a file that replaced an older one of the same name starts its
    // writeback (ext4's auto_da_alloc), which the run need not wait for either.
    drop(writers);
    std::thread::scope(|s| {
        for socket in sockets {
            s.spawn(move || drop(socket));
        }
    });
}

fn capture_until_stopped(
    sockets: &[(CaptureSocket, Route)],
    writers: &mut [(CaptureFile, pcapng::Writer)],
    stop: &OwnedFd,
) -> Result<Vec<CaptureFile>, CaptureError> {
    let mut batch = Batch::new(SNAPLEN);
    let mut poll = PollSet::readable(sockets.iter().map(|(s, _)| s.as_fd()).chain([stop.as_fd()]));
    let mut stop_only = PollSet::readable([stop.as_fd()]);
    loop {
        let ready = wait(&mut poll, IDLE_FLUSH)?;
        if ready == 0 {
            for (file, w) in writers.iter_mut() {
                w.flush().map_err(|e| write_error(file, e))?;
            }
            continue;
        }
        // Frames come one at a time: let them gather before taking them, so that one wake-up
        // and one recvmmsg take many (a wake-up a frame costs the lab's cores more than the
        // frames themselves). A stop ends the wait at once.
        let stopping = poll.is_readable(sockets.len()) || wait(&mut stop_only, GATHER)? > 0;
        take_all(sockets, &mut batch, writers)?;
        if stopping {
            break;
        }
    }
    // Frames that arrived while the last round was written.
    take_all(sockets, &mut batch, writers)?;
    let mut dropped = vec![0u64; writers.len()];
    for (socket, route) in sockets {
        let lost = u64::from(
            socket
                .dropped()
                .map_err(io_error("read the drop count of a capture socket"))?,
        );
        // The switch's socket serves every segment: what it lost may be any segment's.
        match route {
            Route::One(i) => dropped[*i] += lost,
            Route::ByPort(ports) => {
                let mut files: Vec<usize> = ports.values().copied().collect();
                files.sort_unstable();
                files.dedup();
                for i in files {
                    dropped[i] += lost;
                }
            }
        }
    }
    let mut files = Vec::with_capacity(writers.len());
    for ((file, w), dropped) in writers.iter_mut().zip(dropped) {
        w.flush().map_err(|e| write_error(file, e))?;
        files.push(CaptureFile {
            frames: w.frames,
            dropped,
            ..file.clone()
        });
    }
    Ok(files)
}

/// How long the first frame of a round waits for others before the round is taken.
const GATHER: Duration = Duration::from_millis(2);

/// `poll.wait`, a signal counting as a wake-up.
fn wait(poll: &mut PollSet, timeout: Duration) -> Result<usize, CaptureError> {
    match poll.wait(timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(1),
        other => other.map_err(io_error("wait for captured frames")),
    }
}

fn write_error(file: &CaptureFile, e: io::Error) -> CaptureError {
    io_error(format!("write {}", file.file))(e)
}

/// Takes every frame waiting on every socket, a batch at a time, into its file.
fn take_all(
    sockets: &[(CaptureSocket, Route)],
    batch: &mut Batch,
    writers: &mut [(CaptureFile, pcapng::Writer)],
) -> Result<(), CaptureError> {
    for (socket, route) in sockets {
        loop {
            let taken = socket.receive(batch).map_err(io_error("read a capture socket"))?;
            for frame in batch.frames() {
                if let Some(i) = route.file(frame.ifindex) {
                    let (file, w) = &mut writers[i];
                    w.write(&frame).map_err(|e| write_error(file, e))?;
                }
            }
            if taken == 0 {
                break;
            }
        }
    }
    Ok(())
}
