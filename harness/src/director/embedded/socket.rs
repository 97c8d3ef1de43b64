//! AF_PACKET socket bound to one interface, with a virtio-net header on every
//! frame (PACKET_VNET_HDR). The header tells us what PACKET_AUXDATA's
//! TP_STATUS_CSUMNOTREADY would (the L4 checksum is only a pseudo-header seed)
//! and also describes GSO super-frames, which we can hand back to the kernel
//! for segmentation on send. Outgoing frames (ours and the kernel's) are not
//! delivered to us (PACKET_IGNORE_OUTGOING).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct virtio_net_hdr` (little-endian fields on every host we run on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

pub const VNET_HDR_LEN: usize = 10;
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;

impl VnetHdr {
    fn from_bytes(b: &[u8; VNET_HDR_LEN]) -> Self {
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16::from_le_bytes([b[2], b[3]]),
            gso_size: u16::from_le_bytes([b[4], b[5]]),
            csum_start: u16::from_le_bytes([b[6], b[7]]),
            csum_offset: u16::from_le_bytes([b[8], b[9]]),
        }
    }
    fn to_bytes(self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
    pub fn needs_csum(&self) -> bool {
        self.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0
    }
    pub fn is_gso(&self) -> bool {
        self.gso_type != VIRTIO_NET_HDR_GSO_NONE
    }
}

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
    fd: OwnedFd,
    pub ifindex: u32,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn set_int_opt(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as u32,
        )
    })?;
    Ok(())
}

impl PacketSocket {
    /// Opens the socket in the calling thread's network namespace.
    pub fn bind(ifindex: u32) -> io::Result<Self> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        })?;
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        set_int_opt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
        set_int_opt(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            1,
        )?;
        // Room for bursts while the loop is busy (best effort: capped by rmem_max).
        set_int_opt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, 4 << 20)?;
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex as i32;
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })?;
        Ok(PacketSocket { fd, ifindex })
    }

    /// Non-blocking receive; `Ok(None)` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<Received>> {
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
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&mut sll as *mut libc::sockaddr_ll).cast();
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
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
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov.as_ptr() as *mut _;
        msg.msg_iovlen = iov.len();
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &msg, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
