//! AF_PACKET capture sockets (`--capture`): every frame of one interface, in both directions,
//! with the kernel's timestamp, through a TPACKET_V2 ring of their own. Unlike the engine's
//! sockets (packet.rs) they take no virtio-net header and see outgoing frames too; a frame
//! longer than a ring slot keeps its first bytes and its original length, as tcpdump's snaplen.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::check;
use super::socket::{map_packet_ring, set_int_option, setsockopt, socket};

/// One ring slot: a whole 1500-byte-MTU Ethernet frame and the ring's headers.
pub const SLOT_SIZE: usize = 2048;
const BLOCK_SIZE: usize = 64 << 10;
const SLOTS_PER_BLOCK: usize = BLOCK_SIZE / SLOT_SIZE;
const TPACKET_V2: libc::c_int = libc::tpacket_versions::TPACKET_V2 as libc::c_int;

/// One captured frame, borrowed from its ring slot.
#[derive(Debug)]
pub struct Captured<'a> {
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data` when the slot cut it).
    pub original_len: u32,
    /// CLOCK_REALTIME when the kernel saw it.
    pub timestamp: Duration,
    /// Sent by this interface's host (PACKET_OUTGOING), not received.
    pub outgoing: bool,
}

pub struct CaptureSocket {
    /// Declared before `fd`: unmapped before the socket closes.
    ring: Ring,
    fd: OwnedFd,
}

struct Ring {
    base: *mut u8,
    map_len: usize,
    slots: usize,
    next: usize,
}

// SAFETY: the mapping belongs to the socket and moves with it; only the thread owning the
// socket touches it.
unsafe impl Send for Ring {}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are the mapping made in `CaptureSocket::open`, unmapped once, here.
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
    }
}

impl Ring {
    fn slot(&self, i: usize) -> *mut u8 {
        // SAFETY: i < slots, so the offset stays inside the mapping; slots never straddle
        // blocks (BLOCK_SIZE is a multiple of SLOT_SIZE).
        unsafe { self.base.add(i * SLOT_SIZE) }
    }
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: tp_status is the slot's first u32 (slots are page-aligned), written by the
        // kernel and handed back by us, so it is accessed atomically; the mapping outlives `&self`.
        unsafe { &*(self.slot(i) as *const AtomicU32) }
    }
}

impl CaptureSocket {
    /// Opens the socket in the calling thread's network namespace, bound to `ifindex`, with
    /// room for about `slots` frames (rounded up to whole 64 KiB blocks). Frames reach the
    /// ring from the moment this returns. `promiscuous` puts the interface in promiscuous
    /// mode while the socket lives: a bridge then hands its tap every frame it forwards.
    pub fn open(ifindex: u32, slots: usize, promiscuous: bool) -> io::Result<Self> {
        let fd = socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0)?;
        set_int_option(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_VERSION, TPACKET_V2)?;
        let blocks = slots.div_ceil(SLOTS_PER_BLOCK).max(1);
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: SLOT_SIZE as u32,
            tp_frame_nr: (blocks * SLOTS_PER_BLOCK) as u32,
        };
        let (base, map_len) = map_packet_ring(fd.as_fd(), &req)?;
        let ring = Ring {
            base: base.cast(),
            map_len,
            slots: blocks * SLOTS_PER_BLOCK,
            next: 0,
        };
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
        Ok(CaptureSocket { ring, fd })
    }

    /// Hands the next frame waiting in the ring to `f`; false when none is waiting.
    pub fn next(&mut self, f: impl FnOnce(Captured<'_>)) -> bool {
        let ring = &mut self.ring;
        let i = ring.next;
        if ring.status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        ring.next = (i + 1) % ring.slots;
        let slot = ring.slot(i);
        // SAFETY: TP_STATUS_USER says the kernel finished writing this slot, which starts with
        // a tpacket2_hdr (slots are aligned for it) and holds a sockaddr_ll after it.
        let hdr = unsafe { std::ptr::read(slot as *const libc::tpacket2_hdr) };
        // SAFETY: as above; read unaligned, as the kernel places it at TPACKET_ALIGN.
        let sll = unsafe {
            std::ptr::read_unaligned(
                slot.add(libc::TPACKET_ALIGN(size_of::<libc::tpacket2_hdr>())) as *const libc::sockaddr_ll
            )
        };
        let mac = usize::from(hdr.tp_mac);
        let snap = (hdr.tp_snaplen as usize).min(SLOT_SIZE.saturating_sub(mac));
        // SAFETY: mac + snap <= SLOT_SIZE (clamped above), so the slice stays inside the slot,
        // which the kernel does not touch until we hand it back below, after `f` returns.
        let data = unsafe { std::slice::from_raw_parts(slot.add(mac.min(SLOT_SIZE)), snap) };
        f(Captured {
            data,
            original_len: hdr.tp_len,
            timestamp: Duration::new(u64::from(hdr.tp_sec), hdr.tp_nsec),
            outgoing: sll.sll_pkttype == libc::PACKET_OUTGOING,
        });
        ring.status(i).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        true
    }

    /// Frames the ring had no room for since the last call (PACKET_STATISTICS, which the
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

    /// Sent and received frames both reach the ring, in order, with their lengths, and a
    /// frame longer than a slot keeps its original length.
    fn sees_both_directions() {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        crate::sys::netdev::set_up("lo").expect("lo up");
        let mut cap = CaptureSocket::open(1, 64, false).expect("capture socket");
        let tx = crate::sys::packet::PacketSocket::bind(1).expect("sending socket");
        let frame = |len: usize, tag: u8| {
            let mut f = vec![tag; len];
            f[..12].fill(0);
            f[12..14].copy_from_slice(&[0x88, 0xb5]);
            f
        };
        for (k, len) in [60usize, 5000].into_iter().enumerate() {
            tx.send(Default::default(), &frame(len, k as u8)).expect("send");
        }
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(2);
        // On lo every frame is seen going out and coming back in.
        while got.len() < 4 {
            let took = cap.next(|c| got.push((c.data.to_vec(), c.original_len, c.outgoing, c.timestamp)));
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
        assert_eq!(got[2].1, 5000, "original length kept");
        assert!(got[2].0.len() < 5000, "cut to the slot");
        assert_eq!(got[2].0[..], frame(5000, 1)[..got[2].0.len()]);
        assert!(got[0].3 > Duration::from_secs(1_600_000_000), "a wall-clock timestamp");
        assert_eq!(cap.dropped().expect("statistics"), 0);
    }

    #[test]
    fn capture_ring_sees_frames_both_ways() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for a private network namespace and AF_PACKET");
            return;
        }
        std::thread::spawn(sees_both_directions)
            .join()
            .expect("capture test thread");
    }
}
