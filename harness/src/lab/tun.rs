//! TUN devices (IFF_TUN | IFF_NO_PI), created by the thread of the namespace they belong to.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// A TUN device for `name`, unless the kernel already made a device of that name in every new
/// namespace (with the `ipip` module loaded, `tunl0` exists from the start and decapsulates
/// by itself): then that device is used as it is and there is no fd. Returns the index too.
pub(crate) fn create_or_adopt(name: &str) -> io::Result<(Option<OwnedFd>, u32)> {
    let cname = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in TUN name"))?;
    // SAFETY: valid C string; looks the name up in this thread's namespace.
    let existing = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if existing != 0 {
        return Ok((None, existing));
    }
    create_tun(name).map(|(fd, index)| (Some(fd), index))
}

/// Creates the device in the calling thread's namespace; returns its fd and interface index.
/// The device lives as long as the fd (it is not made persistent).
pub(crate) fn create_tun(name: &str) -> io::Result<(OwnedFd, u32)> {
    let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "TUN name too long"));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: valid fd and a properly initialised ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let cname = CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in TUN name"))?;
    // SAFETY: valid C string; looks the name up in this thread's namespace.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((file.into(), index))
}
