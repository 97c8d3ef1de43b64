//! poll(2) over a fixed set of descriptors, waiting for any to become readable.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use super::check;

pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// Watches `fds` for input. They must stay open while the set is used (a closed one
    /// reports POLLNVAL, which wakes the wait).
    pub fn readable<'a>(fds: impl IntoIterator<Item = BorrowedFd<'a>>) -> PollSet {
        PollSet {
            fds: fds
                .into_iter()
                .map(|fd| libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
        }
    }

    /// Sleeps until one descriptor is readable or `timeout` passes; returns how many are ready.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        for p in &mut self.fds {
            p.revents = 0;
        }
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: the pointer and length describe `self.fds`, which lives through the call.
        let n = check(unsafe { libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, ms) })?;
        Ok(n as usize)
    }

    /// After `wait`: whether the `index`th descriptor (in the order given) woke it.
    pub fn is_readable(&self, index: usize) -> bool {
        self.fds.get(index).is_some_and(|p| p.revents != 0)
    }
}
