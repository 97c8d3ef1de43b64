//! Userspace IPIP decapsulator for TUN-mode real servers on kernels without `ipip`.
//!
//! A raw socket of protocol IPPROTO_IPIP receives the encapsulated packets
//! (outer IPv4 header included) and, by taking them, stops the kernel from
//! answering "protocol unreachable". Each packet is checked, stripped of its
//! outer header, and the inner IPv4 packet is written into the TUN device
//! (`tunl0`, IFF_TUN|IFF_NO_PI, holding the VIP), where the kernel receives it
//! as if it had arrived on that interface.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ServerError;

/// Large enough for any IPv4 packet, so nothing is ever cut short.
const RECV_BUFFER: usize = 65_536;
/// Packets handled per readiness wake-up before giving `stop` a chance.
const BATCH: usize = 64;

pub use crate::wire::ipip::{decapsulate, DecapError};

/// Counters of a running decapsulator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecapStats {
    /// Inner packets written into the TUN device.
    pub decapsulated: u64,
    /// Packets dropped as malformed (truncated, not IPIP, bad inner header).
    pub dropped: u64,
    /// Well-formed packets the TUN device refused (e.g. device down).
    pub write_failed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    decapsulated: AtomicU64,
    dropped: AtomicU64,
    write_failed: AtomicU64,
}

/// A running decapsulator; dropping it stops it too.
#[derive(Debug)]
pub struct Decap {
    counters: Arc<Counters>,
    stop_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Decap {
    pub fn stats(&self) -> DecapStats {
        DecapStats {
            decapsulated: self.counters.decapsulated.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            write_failed: self.counters.write_failed.load(Ordering::Relaxed),
        }
    }

    /// Stops, waits until the raw socket and the TUN fd are closed, and
    /// returns the final counters.
    pub async fn stop(mut self) -> DecapStats {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }
}

/// Starts decapsulating on `rt` (the real server's namespace runtime): the raw
/// socket is created there. `tun` is the fd of the TUN device holding the VIP.
/// Returns once the raw socket is open, so IPIP packets sent afterwards are taken.
pub async fn start_decap(rt: &Handle, tun: OwnedFd) -> Result<Decap, ServerError> {
    let counters = Arc::new(Counters::default());
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = rt.spawn(run(tun, counters.clone(), ready_tx, stop_rx));
    match ready_rx.await {
        Ok(Ok(())) => Ok(Decap {
            counters,
            stop_tx: Some(stop_tx),
            task: Some(task),
        }),
        Ok(Err(err)) => Err(err),
        Err(_) => Err(ServerError::RuntimeGone("decapsulator".into())),
    }
}

async fn run(
    tun: OwnedFd,
    counters: Arc<Counters>,
    ready: oneshot::Sender<Result<(), ServerError>>,
    mut stop: oneshot::Receiver<()>,
) {
    let (raw, tun) = match open(tun) {
        Ok(fds) => fds,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        tokio::select! {
            _ = &mut stop => break,
            guard = raw.readable() => {
                let Ok(mut guard) = guard else { break };
                for _ in 0..BATCH {
                    match guard.try_io(|fd| recv(fd.get_ref(), &mut buf)) {
                        Ok(Ok(len)) => forward(&buf[..len], &tun, &counters),
                        // A receive error (e.g. ENOBUFS) loses one packet, not the socket.
                        Ok(Err(_)) => { counters.dropped.fetch_add(1, Ordering::Relaxed); }
                        Err(_would_block) => break,
                    }
                }
            }
        }
    }
}

fn open(tun: OwnedFd) -> Result<(AsyncFd<OwnedFd>, OwnedFd), ServerError> {
    let raw = raw_ipip_socket().map_err(|source| ServerError::Decap {
        what: "open raw IPIP socket",
        source,
    })?;
    // Writes only, never waited on: a full TUN queue drops and counts instead of stalling receive.
    set_nonblocking(&tun).map_err(|source| ServerError::Decap {
        what: "make the TUN fd non-blocking",
        source,
    })?;
    let raw = crate::sys::socket::register_readable(raw).map_err(|source| ServerError::Decap {
        what: "register raw socket",
        source,
    })?;
    Ok((raw, tun))
}

fn raw_ipip_socket() -> io::Result<OwnedFd> {
    // nix's SockProtocol has no IPIP variant, hence libc's constants.
    crate::sys::socket::socket(
        libc::AF_INET,
        libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        libc::IPPROTO_IPIP,
    )
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn recv(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    Ok(nix::sys::socket::recv(
        fd.as_raw_fd(),
        buf,
        nix::sys::socket::MsgFlags::empty(),
    )?)
}

fn forward(packet: &[u8], tun: &OwnedFd, counters: &Counters) {
    let counter = match decapsulate(packet) {
        Ok(inner) => match nix::unistd::write(tun, inner) {
            Ok(written) if written == inner.len() => &counters.decapsulated,
            _ => &counters.write_failed,
        },
        Err(_) => &counters.dropped,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn inner_udp(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 98, 0, 5], [10, 99, 0, 1], 64)
            .udp(5555, 9999)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    /// End to end in a throw-away namespace: IPIP sent to ourselves over lo is
    /// taken by the raw socket, stripped, and the inner datagram reaches a
    /// socket bound to the VIP held by a TUN device named tunl0.
    #[tokio::test]
    async fn decapsulated_packets_reach_a_socket_on_the_vip() {
        use crate::realserver::test_support::{add_address, create_tun, is_root, set_up, sysctl, TestNetns};
        use std::net::Ipv4Addr;
        if !is_root() {
            eprintln!("skipped: creating a namespace and a TUN device needs root");
            return;
        }
        let ns = TestNetns::new().unwrap();
        let vip = Ipv4Addr::new(10, 99, 0, 1);
        let (tun, receiver, sender) = ns
            .run(move || -> io::Result<_> {
                let tun = create_tun("tunl0")?;
                add_address("tunl0", vip)?;
                set_up("tunl0")?;
                sysctl("net/ipv4/conf/all/rp_filter", "0")?;
                sysctl("net/ipv4/conf/tunl0/rp_filter", "0")?;
                let receiver = std::net::UdpSocket::bind((vip, 9999))?;
                receiver.set_nonblocking(true)?;
                Ok((tun, receiver, raw_ipip_socket()?))
            })
            .await
            .unwrap();
        let decap = start_decap(ns.handle(), tun).await.unwrap();
        let receiver = tokio::net::UdpSocket::from_std(receiver).unwrap();

        // The kernel adds the outer header (protocol 4, 127.0.0.1 -> 127.0.0.1).
        let to_self = nix::sys::socket::SockaddrIn::new(127, 0, 0, 1, 0);
        let send = |payload: &[u8]| {
            nix::sys::socket::sendto(
                sender.as_raw_fd(),
                payload,
                &to_self,
                nix::sys::socket::MsgFlags::empty(),
            )
            .unwrap();
        };
        send(&[0x45, 0, 0]); // truncated inner header: dropped
        send(&inner_udp(b"hello"));

        let mut buf = [0u8; 64];
        let (len, from) = tokio::time::timeout(std::time::Duration::from_secs(5), receiver.recv_from(&mut buf))
            .await
            .expect("inner datagram delivered")
            .unwrap();
        assert_eq!(&buf[..len], b"hello");
        assert_eq!(from, "10.98.0.5:5555".parse().unwrap());
        // The datagram may arrive before the counter moves; after stop the counters are final.
        assert_eq!(
            decap.stop().await,
            DecapStats {
                decapsulated: 1,
                dropped: 1,
                write_failed: 0
            }
        );
    }
}
