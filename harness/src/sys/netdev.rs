//! Interface ioctls (`struct ifreq`): flags, MTU, hardware address, IPv4 address, TUN/TAP
//! set-up and ethtool's legacy one-value commands, in the calling thread's namespace.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use super::check;
use super::socket::socket;
use crate::wire::Mac;

/// A `struct ifreq` naming one interface.
struct Ifreq(libc::ifreq);

impl Ifreq {
    fn new(name: &str) -> io::Result<Ifreq> {
        // SAFETY: ifreq is plain data (names, integers, a union of those); all-zero is valid.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        if name.is_empty() || name.len() >= req.ifr_name.len() || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad interface name {name:?}"),
            ));
        }
        for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
            *dst = src as libc::c_char;
        }
        Ok(Ifreq(req))
    }

    /// ioctl(2) with this request; `request` must be one that takes a `struct ifreq`.
    fn ioctl(&mut self, fd: BorrowedFd<'_>, request: libc::Ioctl) -> io::Result<()> {
        // SAFETY: the request takes a `struct ifreq`, and `self.0` is a live, initialised one
        // (with any pointer it holds set by the caller to live memory) for the whole call.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), request, &mut self.0 as *mut libc::ifreq) })?;
        Ok(())
    }
}

/// Any socket answers interface ioctls.
fn control_socket() -> io::Result<OwnedFd> {
    socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
}

/// MTU of interface `name` (SIOCGIFMTU), asked through `fd` (any socket).
pub fn mtu(fd: BorrowedFd<'_>, name: &str) -> io::Result<u32> {
    let mut req = Ifreq::new(name)?;
    req.ioctl(fd, libc::SIOCGIFMTU as libc::Ioctl)?;
    // SAFETY: SIOCGIFMTU filled the union's `ifru_mtu` member.
    Ok(unsafe { req.0.ifr_ifru.ifru_mtu } as u32)
}

/// Sets IFF_UP on interface `name`.
pub fn set_up(name: &str) -> io::Result<()> {
    let sock = control_socket()?;
    let mut req = Ifreq::new(name)?;
    req.ioctl(sock.as_fd(), libc::SIOCGIFFLAGS as libc::Ioctl)?;
    // SAFETY: SIOCGIFFLAGS filled the union's `ifru_flags` member, which we update in place.
    unsafe { req.0.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    req.ioctl(sock.as_fd(), libc::SIOCSIFFLAGS as libc::Ioctl)
}

/// The Ethernet address of interface `name` (SIOCGIFHWADDR).
pub fn hw_addr(name: &str) -> io::Result<Mac> {
    let sock = control_socket()?;
    let mut req = Ifreq::new(name)?;
    req.ioctl(sock.as_fd(), libc::SIOCGIFHWADDR as libc::Ioctl)?;
    // SAFETY: SIOCGIFHWADDR filled the union's `ifru_hwaddr` member.
    let data = unsafe { req.0.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(data.iter()) {
        *m = *b as u8;
    }
    Ok(Mac(mac))
}

/// Gives interface `name` the IPv4 address `ip` (SIOCSIFADDR).
pub fn set_ipv4_addr(name: &str, ip: Ipv4Addr) -> io::Result<()> {
    let sock = control_socket()?;
    let mut req = Ifreq::new(name)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a sockaddr_in fits in the union's sockaddr slot, as in C; write does not read
    // the old bytes.
    unsafe {
        std::ptr::write(
            &mut req.0.ifr_ifru.ifru_addr as *mut libc::sockaddr as *mut libc::sockaddr_in,
            addr,
        )
    };
    req.ioctl(sock.as_fd(), libc::SIOCSIFADDR as libc::Ioctl)
}

/// TUNSETIFF on an open `/dev/net/tun`: makes it the device `name` with `flags`
/// (IFF_TUN or IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, ...).
pub fn tun_set_iff(tun: BorrowedFd<'_>, name: &str, flags: libc::c_int) -> io::Result<()> {
    let mut req = Ifreq::new(name)?;
    req.0.ifr_ifru.ifru_flags = flags as libc::c_short;
    req.ioctl(tun, libc::TUNSETIFF as libc::Ioctl)
}

/// `struct ethtool_value`: the legacy one-value commands.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// One ethtool get/set command with a single value (SIOCETHTOOL); returns the value
/// after the call (what a get command read).
pub fn ethtool(name: &str, cmd: u32, data: u32) -> io::Result<u32> {
    let sock = control_socket()?;
    let mut value = EthtoolValue { cmd, data };
    let mut req = Ifreq::new(name)?;
    req.0.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    // `value` outlives the ioctl below, which is what the pointer in `req` needs.
    req.ioctl(sock.as_fd(), libc::SIOCETHTOOL as libc::Ioctl)?;
    Ok(value.data)
}
