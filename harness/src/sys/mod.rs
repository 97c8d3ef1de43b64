//! Every `unsafe` block of the crate: thin, safe wrappers over the system calls the
//! standard library, nix and tokio do not cover (the AF_PACKET receive ring, interface
//! ioctls, socket options, poll, resource limits, signal dispositions). Each block says
//! why it is sound in a `SAFETY:` line; the rest of the crate is `#![deny(unsafe_code)]`.

pub mod capture;
pub mod netdev;
pub mod packet;
pub mod poll;
pub mod process;
pub mod rlimit;
pub mod socket;

use std::io;

/// `Err(last OS error)` for a negative return value.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// As `check`, for calls that return a byte count.
fn check_len(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
