//! Sockets and their options, for the families and options nix does not wrap
//! (AF_PACKET, NETLINK_GENERIC, IPPROTO_IPIP raw sockets; SO_ATTACH_FILTER, ...).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{check, check_len};

/// socket(2); the descriptor is owned by the caller.
pub fn socket(domain: libc::c_int, ty: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; any arguments are sound.
    let fd = check(unsafe { libc::socket(domain, ty, protocol) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt(2) with `value` as the option's bytes. `T` must be the C type the
/// option expects (an int, a `timeval`, a `sock_fprog`, ...).
pub fn setsockopt<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` for the whole call and the length passed is its size,
    // so the kernel reads only memory we own.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

pub fn set_int_option(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

/// SO_RCVTIMEO: a blocking receive fails with EAGAIN after `timeout`.
pub fn set_recv_timeout(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
}

/// send(2) on a connected or bound socket; returns the bytes sent.
pub fn send(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a live slice and its length is passed with it.
    check_len(unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) })
}

/// recv(2) into `buf`; returns the bytes received.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable slice and its length is passed with it.
    check_len(unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// Registers a socket with the tokio reactor for readiness to read.
pub fn register_readable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes the OwnedFd itself, so the descriptor stays open and the
    // same for as long as it is registered.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// sendto(2) to an IPv4 address (port 0: raw sockets); returns the bytes sent.
pub fn send_to_ipv4(fd: BorrowedFd<'_>, bytes: &[u8], to: std::net::Ipv4Addr) -> io::Result<usize> {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(to).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `bytes` is a live slice passed with its length, and `addr` is a live
    // sockaddr_in passed with its size.
    check_len(unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })
}

/// `PACKET_RX_RING` as `req` asks for it on the AF_PACKET socket `fd`, mapped into memory:
/// the mapping's start and length (the caller unmaps it).
pub fn map_packet_ring(fd: BorrowedFd<'_>, req: &libc::tpacket_req) -> io::Result<(*mut u8, usize)> {
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, req)?;
    let map_len = req.tp_block_size as usize * req.tp_block_nr as usize;
    // SAFETY: a fresh shared mapping of the ring the kernel just set up for this socket;
    // no Rust object aliases it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok((base.cast(), map_len))
}
