//! TUN devices (IFF_TUN | IFF_NO_PI), created by the thread of the namespace they belong to.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// A TUN device for `name`, unless the kernel already made a device of that name in every new
/// namespace (with the `ipip` module loaded, `tunl0` exists from the start and decapsulates
/// by itself): then that device is used as it is and there is no fd. Returns the index too.
pub(crate) fn create_or_adopt(name: &str) -> io::Result<(Option<OwnedFd>, u32)> {
    if name.contains('\0') {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in TUN name"));
    }
    // Looks the name up in this thread's namespace.
    if let Ok(existing) = nix::net::if_::if_nametoindex(name) {
        return Ok((None, existing));
    }
    create_tun(name).map(|(fd, index)| (Some(fd), index))
}

/// Creates the device in the calling thread's namespace; returns its fd and interface index.
/// The device lives as long as the fd (it is not made persistent).
pub(crate) fn create_tun(name: &str) -> io::Result<(OwnedFd, u32)> {
    let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    crate::sys::netdev::tun_set_iff(file.as_fd(), name, libc::IFF_TUN | libc::IFF_NO_PI)?;
    let index = nix::net::if_::if_nametoindex(name)?;
    Ok((file.into(), index))
}
