//! AF_PACKET capture sockets (`--capture`): every frame of one interface, in both directions,
//! with the kernel's timestamp, through the socket's receive queue. No TPACKET ring: setting
//! one up and tearing it down each wait for an RCU grace period (`packet_set_ring`), and a
//! socket made with protocol 0 and bound to ETH_P_ALL waits for none until it closes
//! (`packet_release`). Unlike the engine's sockets (packet.rs) they take no virtio-net header
//! and see outgoing frames too; a frame longer than [`SNAPLEN`] keeps its first bytes and its
//! original length, as tcpdump's snaplen.

use std::io;
use std::io::IoSliceMut;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, LinkAddr, MsgFlags};

use super::check;
use super::socket::{set_int_option, setsockopt, socket};

/// The longest frame `--capture` keeps whole: tcpdump's default, room for a veth's GSO frames.
pub const SNAPLEN: usize = 256 << 10;

/// One captured frame, borrowed from the socket's buffer.
#[derive(Debug)]
pub struct Captured<'a> {
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data` when the snaplen cut it).
    pub original_len: u32,
    /// CLOCK_REALTIME when the kernel saw it.
    pub timestamp: Duration,
    /// Sent by this interface's host (PACKET_OUTGOING), not received.
    pub outgoing: bool,
}

pub struct CaptureSocket {
    fd: OwnedFd,
    buffer: Vec<u8>,
    control: Vec<u8>,
}

impl CaptureSocket {
    /// Opens the socket in the calling thread's network namespace, bound to `ifindex`, with a
    /// receive queue of `queue_bytes` (the kernel's accounting: a small frame costs about
    /// 1 KiB). Frames are queued from the moment this returns. `promiscuous` puts the
    /// interface in promiscuous mode while the socket lives: a bridge then hands its tap every
    /// frame it forwards. Frames longer than `snaplen` keep their first `snaplen` bytes.
    pub fn open(ifindex: u32, queue_bytes: usize, snaplen: usize, promiscuous: bool) -> io::Result<Self> {
        // Protocol 0: the socket takes no frames (and registers no hook) until bind.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        let queue = libc::c_int::try_from(queue_bytes).unwrap_or(libc::c_int::MAX);
        // RCVBUFFORCE (root) passes net.core.rmem_max; RCVBUF is the fallback without it.
        set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, queue)
            .or_else(|_| set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, queue))?;
        set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        let ifindex = libc::c_int::try_from(ifindex).map_err(|_| io::Error::other("interface index out of range"))?;
        if promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)?;
        }
        // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` outlives the call and the length passed is its size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(CaptureSocket {
            fd,
            buffer: vec![0; snaplen],
            control: nix::cmsg_space!(libc::timespec),
        })
    }

    /// Hands the next queued frame to `f`; false when none is waiting.
    pub fn next(&mut self, f: impl FnOnce(Captured<'_>)) -> io::Result<bool> {
        let (len, timestamp, outgoing) = {
            let mut iov = [IoSliceMut::new(&mut self.buffer)];
            let msg = loop {
                match recvmsg::<LinkAddr>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut self.control),
                    // MSG_TRUNC: the length returned is the frame's, not what fitted.
                    MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_TRUNC,
                ) {
                    Ok(msg) => break msg,
                    Err(nix::errno::Errno::EAGAIN) => return Ok(false),
                    // The interface went down (a lab brings some down and up): reported once,
                    // then the socket captures on when it comes back.
                    Err(nix::errno::Errno::ENETDOWN | nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let timestamp = msg
                .cmsgs()
                .ok()
                .into_iter()
                .flatten()
                .find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                });
            let outgoing = msg.address.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
            (msg.bytes, timestamp, outgoing)
        };
        f(Captured {
            data: &self.buffer[..len.min(self.buffer.len())],
            original_len: u32::try_from(len).unwrap_or(u32::MAX),
            timestamp,
            outgoing,
        });
        Ok(true)
    }

    /// Frames the queue had no room for since the last call (PACKET_STATISTICS, which the
    /// kernel resets on every read).
    pub fn dropped(&self) -> io::Result<u32> {
        // SAFETY: tpacket_stats is plain data; all-zero is a valid value.
        let mut stats: libc::tpacket_stats = unsafe { zeroed() };
        let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` and `len` outlive the call and `len` holds the size of `stats`.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast(),
                &mut len,
            )
        })?;
        Ok(stats.tp_drops)
    }
}

impl AsFd for CaptureSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Sent and received frames are both captured, in order, with their lengths, and a frame
    /// longer than the snaplen keeps its original length.
    fn sees_both_directions() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        crate::sys::netdev::set_up("lo").expect("lo up");
        let mut cap = CaptureSocket::open(1, 1 << 20, 2048, false).expect("capture socket");
        let tx = crate::sys::packet::PacketSocket::bind(1).expect("sending socket");
        let frame = |len: usize, tag: u8| {
            let mut f = vec![tag; len];
            f[..12].fill(0);
            f[12..14].copy_from_slice(&[0x88, 0xb5]);
            f
        };
        for (k, len) in [60usize, 2000, 5000].into_iter().enumerate() {
            tx.send(Default::default(), &frame(len, k as u8)).expect("send");
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        // On lo every frame is seen going out and coming back in.
        while got.len() < 6 {
            let took = cap
                .next(|c| got.push((c.data.to_vec(), c.original_len, c.outgoing, c.timestamp)))
                .expect("receive");
            if !took {
                assert!(
                    Instant::now() < deadline,
                    "frames not captured within 2 s: {}",
                    got.len()
                );
                let _ = crate::sys::poll::PollSet::readable([cap.as_fd()]).wait(Duration::from_millis(100));
            }
        }
        assert_eq!((got[0].0.clone(), got[0].1, got[0].2), (frame(60, 0), 60, true));
        assert_eq!((got[1].0.clone(), got[1].1, got[1].2), (frame(60, 0), 60, false));
        assert_eq!((got[2].0.clone(), got[2].1), (frame(2000, 1), 2000), "kept whole");
        assert_eq!(got[4].1, 5000, "original length kept");
        assert_eq!(got[4].0[..], frame(5000, 2)[..2048], "cut to the snaplen");
        assert!(got[0].3 > Duration::from_secs(1_600_000_000), "a wall-clock timestamp");
        assert_eq!(cap.dropped().expect("statistics"), 0);
    }

    #[test]
    fn capture_socket_sees_frames_both_ways() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a private network namespace and AF_PACKET");
            return;
        }
        std::thread::spawn(sees_both_directions)
            .join()
            .expect("capture test thread");
    }
}
