//! AF_PACKET capture sockets (`--capture`): every frame of one interface (or, bound to no
//! interface, of every interface of the namespace), with the kernel's timestamp, through the
//! socket's receive queue, read in batches (`recvmmsg`). No TPACKET ring: setting one up and
//! tearing it down each wait for an RCU grace period (`packet_set_ring`), and a socket made
//! with protocol 0 and bound to ETH_P_ALL waits for none until it closes (`packet_release`).
//! Unlike the engine's sockets (packet.rs) they take no virtio-net header and see outgoing
//! frames too, unless told to ignore them; a frame longer than [`SNAPLEN`] keeps its first
//! bytes and its original length, as tcpdump's snaplen.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use super::check;
use super::socket::{set_int_option, socket};

/// The longest frame `--capture` keeps whole: tcpdump's default, room for a veth's GSO frames.
pub const SNAPLEN: usize = 256 << 10;
/// Frames taken by one `recvmmsg`.
const BATCH: usize = 32;
/// PACKET_IGNORE_OUTGOING (linux/if_packet.h, Linux 4.20), which the libc crate lacks.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

/// One captured frame, borrowed from a [`Batch`].
#[derive(Debug)]
pub struct Captured<'a> {
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data` when the snaplen cut it).
    pub original_len: u32,
    /// CLOCK_REALTIME when the kernel saw it.
    pub timestamp: Duration,
    /// Sent by this interface's host (PACKET_OUTGOING), not received.
    pub outgoing: bool,
    /// The interface it was seen on (for a socket bound to every interface).
    pub ifindex: u32,
}

pub struct CaptureSocket {
    fd: OwnedFd,
}

impl CaptureSocket {
    /// Opens the socket in the calling thread's network namespace, bound to `ifindex` (0: every
    /// interface of the namespace), with a receive queue of `queue_bytes` (the kernel's
    /// accounting: a small frame costs about 1 KiB). Frames are queued from the moment this
    /// returns. `ingress_only` leaves out the frames the interfaces send
    /// (PACKET_IGNORE_OUTGOING). Takes no lock shared with other namespaces (no RTNL: no
    /// promiscuous mode).
    pub fn open(ifindex: u32, queue_bytes: usize, ingress_only: bool) -> io::Result<Self> {
        // Protocol 0: the socket takes no frames (and registers no hook) until bind.
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        let queue = libc::c_int::try_from(queue_bytes).unwrap_or(libc::c_int::MAX);
        // RCVBUFFORCE (root) passes net.core.rmem_max; RCVBUF is the fallback without it.
        set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, queue)
            .or_else(|_| set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, queue))?;
        set_int_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)?;
        if ingress_only {
            set_int_option(fd.as_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        }
        let ifindex = libc::c_int::try_from(ifindex).map_err(|_| io::Error::other("interface index out of range"))?;
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
        Ok(CaptureSocket { fd })
    }

    /// Takes up to a batch of the queued frames into `batch` (one `recvmmsg`); 0 when none is
    /// waiting.
    pub fn receive(&self, batch: &mut Batch) -> io::Result<usize> {
        batch.taken = 0;
        for i in 0..BATCH {
            let hdr = &mut batch.headers[i].msg_hdr;
            batch.iovs[i] = libc::iovec {
                // SAFETY: slot i lies inside `data` (BATCH slots of `snaplen` bytes).
                iov_base: unsafe { batch.data.as_mut_ptr().add(i * batch.snaplen) }.cast(),
                iov_len: batch.snaplen,
            };
            hdr.msg_iov = &raw mut batch.iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = (&raw mut batch.names[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            hdr.msg_control = (&raw mut batch.control[i]).cast();
            hdr.msg_controllen = size_of::<Control>();
            hdr.msg_flags = 0;
            batch.headers[i].msg_len = 0;
        }
        let n = loop {
            // SAFETY: every header points into `batch`'s buffers, which outlive the call, with
            // their sizes; no timeout.
            let n = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    batch.headers.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    // MSG_TRUNC: each length returned is the frame's, not what fitted.
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                break n as usize;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return Ok(0),
                // The interface went down (a lab brings some down and up): reported once,
                // then the socket captures on when it comes back.
                Some(libc::ENETDOWN | libc::EINTR) => continue,
                _ => return Err(io::Error::last_os_error()),
            }
        };
        batch.taken = n;
        Ok(n)
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

/// Room for one control message: a timespec (SO_TIMESTAMPNS), aligned as cmsghdr wants.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct Control([u8; 64]);

/// The buffers of one `recvmmsg`: [`BATCH`] frames of up to `snaplen` bytes. One is enough for
/// any number of sockets read in turn. Its pages are touched only as far as frames fill them.
pub struct Batch {
    snaplen: usize,
    data: Vec<u8>,
    iovs: Vec<libc::iovec>,
    names: Vec<libc::sockaddr_ll>,
    control: Vec<Control>,
    headers: Vec<libc::mmsghdr>,
    taken: usize,
}

// SAFETY: the raw pointers in `iovs` and `headers` point into the batch's own buffers and are
// rewritten before every use.
unsafe impl Send for Batch {}

impl Batch {
    pub fn new(snaplen: usize) -> Batch {
        Batch {
            snaplen,
            data: vec![0; BATCH * snaplen],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BATCH
            ],
            // SAFETY: sockaddr_ll and mmsghdr are plain data; all-zero is a valid value.
            names: vec![unsafe { zeroed() }; BATCH],
            control: vec![Control([0; 64]); BATCH],
            // SAFETY: as above.
            headers: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            taken: 0,
        }
    }

    /// The frames the last [`CaptureSocket::receive`] took, in the queue's order.
    pub fn frames(&self) -> impl Iterator<Item = Captured<'_>> {
        (0..self.taken).map(move |i| {
            let len = self.headers[i].msg_len as usize;
            let hdr = &self.headers[i].msg_hdr;
            let name = &self.names[i];
            let start = i * self.snaplen;
            Captured {
                data: &self.data[start..start + len.min(self.snaplen)],
                original_len: u32::try_from(len).unwrap_or(u32::MAX),
                timestamp: timestamp(hdr).unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                }),
                outgoing: name.sll_pkttype == libc::PACKET_OUTGOING,
                ifindex: u32::try_from(name.sll_ifindex).unwrap_or(0),
            }
        })
    }
}

/// The SO_TIMESTAMPNS control message of a received header.
fn timestamp(hdr: &libc::msghdr) -> Option<Duration> {
    // SAFETY: `hdr` was filled by recvmmsg: its control pointer and length describe the
    // messages the kernel wrote into the batch's control buffer, which is still alive.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                return Some(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Sent and received frames are both captured, in order, with their lengths and interface,
    /// and a frame longer than the snaplen keeps its original length; an ingress-only socket
    /// bound to no interface sees each frame once.
    fn sees_both_directions() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        crate::sys::netdev::set_up("lo").expect("lo up");
        let cap = CaptureSocket::open(1, 1 << 20, false).expect("capture socket");
        let ingress = CaptureSocket::open(0, 1 << 20, true).expect("ingress capture socket");
        let mut batch = Batch::new(2048);
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
        let take = |socket: &CaptureSocket, batch: &mut Batch, want: usize| {
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(2);
            while got.len() < want {
                let took = socket.receive(batch).expect("receive");
                got.extend(
                    batch
                        .frames()
                        .map(|c| (c.data.to_vec(), c.original_len, c.outgoing, c.timestamp, c.ifindex)),
                );
                if took == 0 {
                    assert!(
                        Instant::now() < deadline,
                        "frames not captured within 2 s: {}",
                        got.len()
                    );
                    let _ = crate::sys::poll::PollSet::readable([socket.as_fd()]).wait(Duration::from_millis(100));
                }
            }
            got
        };
        // On lo every frame is seen going out and coming back in.
        let got = take(&cap, &mut batch, 6);
        assert_eq!((got[0].0.clone(), got[0].1, got[0].2), (frame(60, 0), 60, true));
        assert_eq!((got[1].0.clone(), got[1].1, got[1].2), (frame(60, 0), 60, false));
        assert_eq!((got[2].0.clone(), got[2].1), (frame(2000, 1), 2000), "kept whole");
        assert_eq!(got[4].1, 5000, "original length kept");
        assert_eq!(got[4].0[..], frame(5000, 2)[..2048], "cut to the snaplen");
        assert!(got[0].3 > Duration::from_secs(1_600_000_000), "a wall-clock timestamp");
        assert!(got.iter().all(|g| g.4 == 1), "seen on lo");
        assert_eq!(cap.dropped().expect("statistics"), 0);
        let got = take(&ingress, &mut batch, 3);
        let lens: Vec<_> = got.iter().map(|g| (g.1, g.2, g.4)).collect();
        assert_eq!(
            lens,
            [(60, false, 1), (2000, false, 1), (5000, false, 1)],
            "once each, received"
        );
        assert_eq!(ingress.receive(&mut batch).expect("receive"), 0, "nothing more");
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
