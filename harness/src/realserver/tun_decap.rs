//! Userspace IPIP decapsulator for TUN-mode real servers on kernels without `ipip`.
//!
//! A raw socket of protocol IPPROTO_IPIP receives the encapsulated packets
//! (outer IPv4 header included) and, by taking them, stops the kernel from
//! answering "protocol unreachable". Each packet is checked, stripped of its
//! outer header, and the inner IPv4 packet is written into the TUN device
//! (`tunl0`, IFF_TUN|IFF_NO_PI, holding the VIP), where the kernel receives it
//! as if it had arrived on that interface.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use etherparse::{IpNumber, Ipv4Slice};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ServerError;

/// Large enough for any IPv4 packet, so nothing is ever cut short.
const RECV_BUFFER: usize = 65_536;
/// Packets handled per readiness wake-up before giving `stop` a chance.
const BATCH: usize = 64;

/// Why a received packet was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    #[error("outer IPv4 header invalid: {0}")]
    Outer(String),
    #[error("outer protocol is {0}, not IPIP (4)")]
    NotIpip(u8),
    #[error("outer packet is a fragment")]
    Fragment,
    #[error("inner IPv4 packet invalid: {0}")]
    Inner(String),
}

/// Checks an IPIP packet (outer IPv4 header included) and returns the inner
/// IPv4 packet, trimmed to its own total length. The inner header checksum is
/// left to the kernel, which verifies it when the packet comes in on tunl0.
pub fn decapsulate(packet: &[u8]) -> Result<&[u8], DecapError> {
    let outer = Ipv4Slice::from_slice(packet).map_err(|err| DecapError::Outer(err.to_string()))?;
    let protocol = outer.header().protocol();
    if protocol != IpNumber::IPV4 {
        return Err(DecapError::NotIpip(protocol.0));
    }
    // The kernel reassembles before raw delivery; a fragment here is not whole.
    if outer.is_payload_fragmented() {
        return Err(DecapError::Fragment);
    }
    let payload = outer.payload().payload;
    let inner = Ipv4Slice::from_slice(payload).map_err(|err| DecapError::Inner(err.to_string()))?;
    let inner_len = usize::from(inner.header().total_len());
    Ok(&payload[..inner_len])
}

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
    // SAFETY: the OwnedFd is moved into the AsyncFd, so the fd stays open and the same while registered.
    let raw = unsafe { AsyncFd::register_with_interest(raw, Interest::READABLE) }.map_err(|err| {
        let (_, source) = err.into_parts();
        ServerError::Decap {
            what: "register raw socket",
            source,
        }
    })?;
    Ok((raw, tun))
}

fn raw_ipip_socket() -> io::Result<OwnedFd> {
    // nix's SockProtocol has no IPIP variant, hence libc.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::IPPROTO_IPIP,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

    fn ipip(inner: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 2], [192, 0, 2, 11], 64)
            .write(&mut out, IpNumber::IPV4, inner)
            .unwrap();
        out
    }

    #[test]
    fn strips_the_outer_header() {
        let inner = inner_udp(b"hello");
        let packet = ipip(&inner);
        assert_eq!(decapsulate(&packet).unwrap(), &inner[..]);
    }

    #[test]
    fn trims_padding_after_the_inner_packet() {
        let inner = inner_udp(b"hello");
        let mut padded = inner.clone();
        padded.extend_from_slice(&[0u8; 6]);
        assert_eq!(decapsulate(&ipip(&padded)).unwrap(), &inner[..]);
    }

    #[test]
    fn rejects_malformed_input() {
        let inner = inner_udp(b"hello");
        let packet = ipip(&inner);
        assert!(matches!(decapsulate(&[]), Err(DecapError::Outer(_))));
        assert!(matches!(decapsulate(&packet[..10]), Err(DecapError::Outer(_))));
        // Outer total length says more than was received.
        assert!(matches!(
            decapsulate(&packet[..packet.len() - 1]),
            Err(DecapError::Outer(_))
        ));
        // Inner packet cut short (outer header rebuilt around the stub).
        assert!(matches!(
            decapsulate(&ipip(&inner[..inner.len() - 3])),
            Err(DecapError::Inner(_))
        ));
        assert!(matches!(decapsulate(&ipip(&inner[..8])), Err(DecapError::Inner(_))));
        // Inner is not IPv4 at all.
        assert!(matches!(decapsulate(&ipip(&[0x60; 40])), Err(DecapError::Inner(_))));
        // Outer carries UDP, not IPIP.
        assert!(matches!(decapsulate(&inner), Err(DecapError::NotIpip(17))));
        // Outer is a first fragment (MF set).
        let mut fragment = packet.clone();
        fragment[6] |= 0x20;
        assert!(matches!(decapsulate(&fragment), Err(DecapError::Fragment)));
        // Bad outer version nibble.
        let mut v6 = packet.clone();
        v6[0] = 0x65;
        assert!(matches!(decapsulate(&v6), Err(DecapError::Outer(_))));
    }

    #[test]
    fn never_panics_on_any_prefix_or_byte_flip() {
        let packet = ipip(&inner_udp(b"hello world"));
        for len in 0..=packet.len() {
            let _ = decapsulate(&packet[..len]);
        }
        for index in 0..packet.len() {
            let mut flipped = packet.clone();
            flipped[index] ^= 0xff;
            let _ = decapsulate(&flipped);
        }
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
