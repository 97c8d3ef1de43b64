//! AF_PACKET sockets. The engine's: bound to one interface, with a virtio-net header on every
//! frame (PACKET_VNET_HDR). The header tells us what PACKET_AUXDATA's
//! TP_STATUS_CSUMNOTREADY would (the L4 checksum is only a pseudo-header seed)
//! and also describes GSO super-frames, which we can hand back to the kernel
//! for segmentation on send. Outgoing frames (ours and the kernel's) are not
//! delivered to us (PACKET_IGNORE_OUTGOING). Frames arrive through a mapped
//! TPACKET_V2 ring (no syscall per frame); sending is one `sendmsg` per frame.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::socket::{map_packet_ring, set_int_option as set_int_opt, setsockopt, socket};
use super::{check, check_len};
use crate::wire::vnet::{VnetHdr, VNET_HDR_LEN};

/// One received frame's metadata; the bytes are in the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    pub len: usize,
    /// PACKET_HOST, PACKET_BROADCAST, PACKET_OTHERHOST, ...
    pub pkttype: u8,
    pub vnet: VnetHdr,
}

/// Big enough for a 64 KiB GSO super-frame plus its Ethernet header.
pub const RECV_BUF_LEN: usize = 65536 + 64;

pub struct PacketSocket {
    /// Declared before `fd`: unmapped before the socket closes.
    ring: RxRing,
    fd: OwnedFd,
    pub ifindex: u32,
}

/// TPACKET_V2 receive ring shared with the kernel: it copies each frame into a
/// slot during its softirq, so taking a frame costs no syscall. (V3 hands out
/// whole blocks only when full or after a timeout, which delays single frames.)
struct RxRing {
    base: *mut u8,
    map_len: usize,
    next: usize,
}

// SAFETY: the mapping belongs to the socket and moves with it; only the thread owning the
// socket touches it.
unsafe impl Send for RxRing {}

const RING_FRAME_SIZE: usize = 2048;
const RING_BLOCK_SIZE: usize = 128 << 10;
const RING_FRAMES_PER_BLOCK: usize = RING_BLOCK_SIZE / RING_FRAME_SIZE;
/// 1024 slots of 2 KiB: a full MTU frame each; GSO super-frames take the copy path.
const RING_BLOCKS: usize = 16;
const RING_FRAMES: usize = RING_BLOCKS * RING_FRAMES_PER_BLOCK;
const TPACKET_V2: libc::c_int = libc::tpacket_versions::TPACKET_V2 as libc::c_int;

impl RxRing {
    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY: i < RING_FRAMES, so the offset stays inside the mapping; frames never
        // straddle blocks (RING_BLOCK_SIZE is a multiple of RING_FRAME_SIZE).
        unsafe { self.base.add(i * RING_FRAME_SIZE) }
    }
    fn status(&self, i: usize) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: tp_status is the slot's first u32 (slots are page-aligned), written by the
        // kernel and handed back by us, so it is accessed atomically; the mapping outlives `&self`.
        unsafe { &*(self.slot(i) as *const std::sync::atomic::AtomicU32) }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are the mapping made in `map_rx_ring`, unmapped once, here.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

fn map_rx_ring(fd: BorrowedFd<'_>) -> io::Result<RxRing> {
    set_int_opt(fd, libc::SOL_PACKET, libc::PACKET_VERSION, TPACKET_V2)?;
    // Frames too big for a slot also go, whole, to the socket's queue.
    set_int_opt(fd, libc::SOL_PACKET, libc::PACKET_COPY_THRESH, 1)?;
    let req = libc::tpacket_req {
        tp_block_size: RING_BLOCK_SIZE as u32,
        tp_block_nr: RING_BLOCKS as u32,
        tp_frame_size: RING_FRAME_SIZE as u32,
        tp_frame_nr: RING_FRAMES as u32,
    };
    let (base, map_len) = map_packet_ring(fd, &req)?;
    Ok(RxRing {
        base: base.cast(),
        map_len,
        next: 0,
    })
}

impl PacketSocket {
    /// Opens the socket in the calling thread's network namespace.
    pub fn bind(ifindex: u32) -> io::Result<Self> {
        let proto = libc::ETH_P_ALL as u16;
        // Protocol 0: the socket receives nothing until bound to `ifindex` (with ETH_P_ALL,
        // it would first take frames from every interface).
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        set_int_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
        set_int_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
        // Room for bursts while the loop is busy (best effort: capped by rmem_max).
        set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
        // Before bind, so no frame lands in the plain queue first.
        let ring = map_rx_ring(fd.as_fd())?;
        bind_raw(fd.as_fd(), ifindex, proto)?;
        Ok(PacketSocket { ring, fd, ifindex })
    }

    /// Non-blocking receive into `buf`; `Ok(None)` when nothing is waiting.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let ring = &mut self.ring;
        let i = ring.next;
        let status = ring.status(i).load(std::sync::atomic::Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return Ok(None);
        }
        ring.next = (i + 1) % RING_FRAMES;
        let slot = ring.slot(i);
        // SAFETY: TP_STATUS_USER says the kernel finished writing this slot, which starts with
        // a tpacket2_hdr (slots are aligned for it) and holds a sockaddr_ll after it.
        let hdr = unsafe { std::ptr::read(slot as *const libc::tpacket2_hdr) };
        // SAFETY: as above; read unaligned, as the kernel places it at TPACKET_ALIGN.
        let sll = unsafe {
            std::ptr::read_unaligned(
                slot.add(libc::TPACKET_ALIGN(std::mem::size_of::<libc::tpacket2_hdr>())) as *const libc::sockaddr_ll
            )
        };
        let mac = usize::from(hdr.tp_mac);
        let snap = hdr.tp_snaplen as usize;
        let whole = snap == hdr.tp_len as usize && mac >= VNET_HDR_LEN && mac + snap <= RING_FRAME_SIZE;
        let got = if whole {
            let mut vnet = [0u8; VNET_HDR_LEN];
            let len = snap.min(buf.len());
            // SAFETY: `whole` checked mac >= VNET_HDR_LEN and mac + snap <= RING_FRAME_SIZE, so
            // both copies read inside the slot, and `len` fits `buf`.
            unsafe {
                // The kernel writes the virtio-net header right before the MAC header.
                std::ptr::copy_nonoverlapping(slot.add(mac - VNET_HDR_LEN), vnet.as_mut_ptr(), VNET_HDR_LEN);
                std::ptr::copy_nonoverlapping(slot.add(mac), buf.as_mut_ptr(), len);
            }
            Some(Received {
                len,
                pkttype: sll.sll_pkttype,
                vnet: VnetHdr::from_bytes(&vnet),
            })
        } else {
            None
        };
        ring.status(i)
            .store(libc::TP_STATUS_KERNEL, std::sync::atomic::Ordering::Release);
        match got {
            Some(rx) => Ok(Some(rx)),
            // Too big for a slot (a GSO super-frame): PACKET_COPY_THRESH queued the whole
            // frame on the socket as well, in order.
            None if status & libc::TP_STATUS_COPY != 0 => match self.recv_queued(buf)? {
                Some(rx) => Ok(Some(rx)),
                None => Err(io::Error::other("ring frame marked as copied, but none queued")),
            },
            None => Err(io::Error::other("frame truncated in the receive ring")),
        }
    }

    /// Receive from the socket's queue: a frame too big for a ring slot.
    fn recv_queued(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut hdr = [0u8; VNET_HDR_LEN];
        let mut iov = [
            libc::iovec {
                iov_base: hdr.as_mut_ptr().cast(),
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: buf.len(),
            },
        ];
        // SAFETY: sockaddr_ll and msghdr are plain data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        // SAFETY: msg points at `sll` and the two iovecs over `hdr` and `buf`, all live and
        // writable for the call, with their true lengths.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n < VNET_HDR_LEN {
            return Ok(Some(Received {
                len: 0,
                pkttype: sll.sll_pkttype,
                vnet: VnetHdr::default(),
            }));
        }
        // MSG_TRUNC is set when the frame did not fit; report what we hold.
        let len = (n - VNET_HDR_LEN).min(buf.len());
        Ok(Some(Received {
            len,
            pkttype: sll.sll_pkttype,
            vnet: VnetHdr::from_bytes(&hdr),
        }))
    }

    /// Sends one frame out of the bound interface.
    pub fn send(&self, vnet: VnetHdr, frame: &[u8]) -> io::Result<()> {
        let hdr = vnet.to_bytes();
        let iov = [
            libc::iovec {
                iov_base: hdr.as_ptr() as *mut _,
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut _,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: msghdr is plain data; all-zero is a valid value.
        let mut msg: libc::msghdr = unsafe { zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut _;
        msg.msg_iovlen = iov.len();
        // SAFETY: the iovecs point at `hdr` and `frame`, live for the call; sendmsg only reads them.
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// MTU of the interface named `name` (SIOCGIFMTU, answered for any socket).
    pub fn interface_mtu(&self, name: &str) -> io::Result<u32> {
        super::netdev::mtu(self.fd.as_fd(), name)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn bind_raw(fd: BorrowedFd<'_>, ifindex: u32, ethertype: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = ethertype.to_be();
    addr.sll_ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("interface index out of range"))?;
    // SAFETY: `addr` outlives the call and the length passed is its size.
    check(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Binds an AF_PACKET socket to one interface and one ethertype.
pub fn bind(fd: &OwnedFd, ifindex: u32, ethertype: u16) -> io::Result<()> {
    bind_raw(fd.as_fd(), ifindex, ethertype)
}

/// One frame from a packet socket, with its packet type (PACKET_HOST, PACKET_OUTGOING, ...).
pub fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<(usize, u8)> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut from: libc::sockaddr_ll = unsafe { zeroed() };
    let mut from_len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: `buf`, `from` and `from_len` are live and writable for the call, and the
    // lengths passed are theirs, so recvfrom writes only into them.
    let n = check_len(unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            0,
            (&raw mut from).cast(),
            &mut from_len,
        )
    })?;
    Ok((n, from.sll_pkttype))
}

/// Attaches a classic BPF program (SO_ATTACH_FILTER); the kernel copies it.
pub fn attach_filter(fd: &OwnedFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| io::Error::other("BPF program too long"))?,
        filter: program.as_ptr().cast_mut(),
    };
    // The kernel only reads the program, which outlives the call.
    setsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)
}

/// PACKET_STATISTICS: frames the filter passed and those dropped since the last read (the
/// kernel resets them on every read).
pub fn statistics(fd: &OwnedFd) -> io::Result<libc::tpacket_stats> {
    // SAFETY: tpacket_stats is plain data; all-zero is a valid value.
    let mut stats: libc::tpacket_stats = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `stats` and `len` outlive the call and `len` holds the size of `stats`.
    check(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut stats).cast(),
            &mut len,
        )
    })?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vnet::VIRTIO_NET_HDR_F_NEEDS_CSUM;
    use std::time::{Duration, Instant};

    const ETHERTYPE_LOCAL: [u8; 2] = [0x88, 0xb5];

    /// Brings up `lo` of the calling thread's (private) namespace.
    fn loopback_up() {
        crate::sys::netdev::set_up("lo").expect("lo up");
    }

    /// An Ethernet frame to lo's all-zero MAC, `len` bytes, payload all `tag`.
    fn frame(len: usize, tag: u8) -> Vec<u8> {
        let mut f = vec![tag; len];
        f[..12].fill(0);
        f[12..14].copy_from_slice(&ETHERTYPE_LOCAL);
        f
    }

    /// Next frame, waiting (bounded) for the kernel to deliver it.
    fn next(sock: &mut PacketSocket, buf: &mut [u8]) -> (Vec<u8>, Received) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(rx) = sock.recv(buf).expect("recv") {
                return (buf[..rx.len].to_vec(), rx);
            }
            assert!(Instant::now() < deadline, "frame not delivered within 2 s");
            let _ = crate::sys::poll::PollSet::readable([sock.as_fd()]).wait(Duration::from_millis(100));
        }
    }

    fn ring_keeps_order_sizes_and_vnet_headers() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        loopback_up();
        let lo = 1;
        let mut rx = PacketSocket::bind(lo).expect("receiving socket");
        let tx = PacketSocket::bind(lo).expect("sending socket");
        let mut buf = vec![0u8; RECV_BUF_LEN];
        assert!(rx.recv(&mut buf).unwrap().is_none(), "nothing before we send");

        // Small frames fit a ring slot; the big ones (lo's MTU is 64 KiB) take the copy path.
        // Each asks for a checksum from byte 34, which must come back in the vnet header.
        let partial = VnetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHdr::default()
        };
        let sizes = [60, 9000, 1514, 60000, 61];
        for (k, &len) in sizes.iter().enumerate() {
            tx.send(partial, &frame(len, k as u8)).expect("send");
        }
        for (k, &len) in sizes.iter().enumerate() {
            let (got, meta) = next(&mut rx, &mut buf);
            assert_eq!(got, frame(len, k as u8), "frame {k} ({len} B) intact and in order");
            assert_eq!(meta.pkttype, libc::PACKET_HOST);
            assert_eq!(
                (meta.vnet.needs_csum(), meta.vnet.csum_start, meta.vnet.csum_offset),
                (true, 34, 6),
                "frame {k}"
            );
        }

        // Past the end of the ring and round again, without partial checksums.
        for round in 0..3u8 {
            for k in 0..700u16 {
                let mut f = frame(64, round);
                f[14..16].copy_from_slice(&k.to_be_bytes());
                tx.send(VnetHdr::default(), &f).expect("send");
            }
            for k in 0..700u16 {
                let (got, meta) = next(&mut rx, &mut buf);
                assert_eq!((got[14..16].to_vec(), got[16]), (k.to_be_bytes().to_vec(), round));
                assert!(!meta.vnet.needs_csum());
            }
        }
        assert!(rx.recv(&mut buf).unwrap().is_none(), "nothing left over");
    }

    #[test]
    fn rx_ring_delivers_small_and_oversize_frames_in_order() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a private network namespace and AF_PACKET");
            return;
        }
        // unshare() changes only this thread's namespace; keep it off the test runner's threads.
        std::thread::spawn(ring_keeps_order_sizes_and_vnet_headers)
            .join()
            .expect("ring test thread");
    }
}
