//! `--capture DIR`: lvslab's own packet capture, no tcpdump. One pcapng file per host
//! interface (`<host>-<ifname>.pcapng`, lo left out) and one per segment
//! (`segment-<network>.pcapng`, the bridge's view: its tap is put in promiscuous mode, so it
//! sees every frame the bridge forwards). Each file's interface block names the host and the
//! interface. Sockets are opened inside each namespace before the traffic; one thread drains
//! every socket and streams the frames to disk; `stop` takes the last frames and flushes.

mod pcapng;

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use pcapng::{read_frames, Frame};

use crate::lab::{Lab, LabError, LabPlan, SWITCH_NAME};
use crate::sys::capture::{CaptureSocket, SNAPLEN};
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
    ifindex: u32,
    promiscuous: bool,
    if_name: String,
    description: String,
}

/// Every place of `lab` that gets a file, by namespace: the switch's bridges, then each host's
/// interfaces but lo.
fn points(lab: &Lab, plan: &LabPlan) -> Vec<(String, Vec<Point>)> {
    let lab_name = &plan.name;
    let bridges = lab
        .switch()
        .ifaces()
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
            ifindex: bridge.index,
            promiscuous: true,
            if_name: format!("{SWITCH_NAME}:{}", bridge.name),
            description: format!(
                "segment {network} of lab {lab_name}: bridge {} in the switch",
                bridge.name
            ),
        })
        .collect();
    let mut out = vec![(SWITCH_NAME.to_owned(), bridges)];
    for (host, hp) in lab.hosts().zip(&plan.hosts) {
        let host_points = host
            .ifaces()
            .iter()
            .filter(|i| i.name != "lo")
            .map(|i| {
                let tun = hp.tun_devices.iter().any(|t| t.name == i.name);
                Point {
                    file: CaptureFile {
                        file: format!("{}-{}.pcapng", host.name(), i.name),
                        host: host.name().to_owned(),
                        interface: i.name.clone(),
                        segment: None,
                        link: if tun { LinkType::RawIp } else { LinkType::Ethernet },
                        frames: 0,
                        dropped: 0,
                    },
                    ifindex: i.index,
                    promiscuous: false,
                    if_name: format!("{}:{}", host.name(), i.name),
                    description: format!("{} of host {} in lab {lab_name}", i.name, host.name()),
                }
            })
            .collect();
        out.push((host.name().to_owned(), host_points));
    }
    out
}

impl Capture {
    /// Opens every capture socket in its namespace and starts writing. Frames reach the files
    /// from the moment this returns: every socket is bound before it does.
    pub async fn start(lab: &Lab, plan: &LabPlan, dir: &Path) -> Result<Capture, CaptureError> {
        std::fs::create_dir_all(dir).map_err(io_error(format!("create {}", dir.display())))?;
        let by_namespace = points(lab, plan);
        let count: usize = by_namespace.iter().map(|(_, p)| p.len()).sum();
        let queue = (QUEUE_BUDGET / count.max(1)).clamp(MIN_QUEUE, MAX_QUEUE);
        // This thread enters each namespace in turn and opens its sockets there (a socket stays
        // in the namespace it was made in), then comes back: no other thread to wait for, which
        // on a loaded machine costs a scheduler round each.
        let mut namespaces = Vec::with_capacity(by_namespace.len());
        let mut writers = Vec::with_capacity(count);
        for (namespace, points) in by_namespace {
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
            let mut opens = Vec::with_capacity(points.len());
            for point in points {
                let path = dir.join(&point.file.file);
                let writer = pcapng::Writer::create(&path, &point.if_name, &point.description, point.file.link)
                    .map_err(io_error(format!("create {}", path.display())))?;
                opens.push((point.ifindex, point.promiscuous, point.file.location()));
                writers.push((point.file, writer));
            }
            namespaces.push((namespace, fd, opens));
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

/// A namespace's sockets to open: its name, its fd, and per socket (ifindex, promiscuous, place).
type NamespaceOpens = (String, OwnedFd, Vec<(u32, bool, String)>);

/// Every capture socket, each opened in its namespace by the calling thread, which is back in
/// its own namespace when this returns, whatever happened.
fn open_all(namespaces: Vec<NamespaceOpens>, queue: usize) -> Result<Vec<CaptureSocket>, CaptureError> {
    let _back = NamespaceGuard::here().map_err(io_error("hold this thread's namespace"))?;
    let mut sockets = Vec::new();
    for (namespace, fd, opens) in namespaces {
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| CaptureError::Io {
            what: format!("enter the namespace of {namespace}"),
            source: e.into(),
        })?;
        for (ifindex, promiscuous, place) in opens {
            sockets.push(
                CaptureSocket::open(ifindex, queue, SNAPLEN, promiscuous)
                    .map_err(io_error(format!("open a capture socket on {place}")))?,
            );
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
    mut sockets: Vec<CaptureSocket>,
    writers: Vec<(CaptureFile, pcapng::Writer)>,
    stop: OwnedFd,
    answer: std::sync::mpsc::Sender<Result<Vec<CaptureFile>, CaptureError>>,
) {
    let _ = answer.send(capture_until_stopped(&mut sockets, writers, &stop));
    std::thread::scope(|s| {
        for socket in sockets {
            s.spawn(move || drop(socket));
        }
    });
}

fn capture_until_stopped(
    sockets: &mut [CaptureSocket],
    mut writers: Vec<(CaptureFile, pcapng::Writer)>,
    stop: &OwnedFd,
) -> Result<Vec<CaptureFile>, CaptureError> {
    let mut poll = PollSet::readable(sockets.iter().map(|s| s.as_fd()).chain([stop.as_fd()]));
    loop {
        let ready = poll
            .wait(IDLE_FLUSH)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::Interrupted {
                    Ok(1)
                } else {
                    Err(e)
                }
            })
            .map_err(io_error("wait for captured frames"))?;
        let mut stopping = false;
        if ready > 0 {
            stopping = poll.is_readable(sockets.len());
            take_all(sockets, &mut writers)?;
        } else {
            for (file, w) in &mut writers {
                w.flush().map_err(io_error(format!("write {}", file.file)))?;
            }
        }
        if stopping {
            break;
        }
    }
    // Frames that arrived while the last round was written.
    take_all(sockets, &mut writers)?;
    let mut files = Vec::with_capacity(writers.len());
    for (socket, (mut file, mut w)) in sockets.iter().zip(writers) {
        w.flush().map_err(io_error(format!("write {}", file.file)))?;
        file.frames = w.frames;
        file.dropped = u64::from(
            socket
                .dropped()
                .map_err(io_error(format!("read the drop count of {}", file.file)))?,
        );
        files.push(file);
    }
    Ok(files)
}

fn take_all(sockets: &mut [CaptureSocket], writers: &mut [(CaptureFile, pcapng::Writer)]) -> Result<(), CaptureError> {
    for (socket, (file, w)) in sockets.iter_mut().zip(writers.iter_mut()) {
        let mut failed = None;
        while socket
            .next(|frame| {
                if failed.is_none() {
                    failed = w.write(&frame).err();
                }
            })
            .map_err(io_error(format!("capture for {}", file.file)))?
        {}
        if let Some(e) = failed {
            return Err(io_error(format!("write {}", file.file))(e));
        }
    }
    Ok(())
}
