//! The open-file limit a lab needs. Each host holds about seven descriptors while the lab is up
//! (its namespace, its runtime's epoll/eventfd/timer, its netlink socket, a listener, …), so a
//! 1000-server lab needs some 7000, while shells and services often start processes with a soft
//! limit of 1024. Like Go's runtime, lab bring-up raises the soft limit towards the hard one.

use std::io;

use super::error::LabError;

/// Descriptors per host of a running lab, measured at about 7 (2130 for 303 namespaces).
const FILES_PER_HOST: u64 = 8;
/// For everything else the process holds: the CLI, traffic connections, captures.
const FILES_SPARE: u64 = 512;

/// What a lab of `namespaces` namespaces needs open at once.
pub(crate) fn files_needed(namespaces: usize) -> u64 {
    namespaces as u64 * FILES_PER_HOST + FILES_SPARE
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (bounded by fs.nr_open) when it is below
/// what `namespaces` need; an error saying what to change when the hard limit is too low.
pub(crate) fn ensure_open_files(namespaces: usize) -> Result<(), LabError> {
    let needed = files_needed(namespaces);
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(LabError::os(
            "lab",
            "read the open-file limit",
            io::Error::last_os_error(),
        ));
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let ceiling = limit.rlim_max.min(nr_open);
    if ceiling < needed {
        return Err(LabError::TooFewFiles {
            namespaces,
            needed,
            soft: limit.rlim_cur,
            hard: limit.rlim_max,
        });
    }
    let raised = libc::rlimit {
        rlim_cur: ceiling,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(LabError::os(
            "lab",
            "raise the open-file limit",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_server_lab_needs_more_than_the_usual_soft_limit() {
        assert!(files_needed(1003) > 1024);
        assert!(files_needed(6) < 1024, "the reference lab fits any limit");
    }

    #[test]
    fn the_soft_limit_is_raised_up_to_the_hard_one_and_not_beyond() {
        // Runs in the test process: lower the soft limit, then ask for a lab that needs more.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above, the calls read or write only the struct given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        let hard = limit.rlim_max;
        if hard < files_needed(300) {
            return; // nothing to raise towards on this machine
        }
        let lowered = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: hard,
        };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        ensure_open_files(300).expect("the hard limit allows it");
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert!(limit.rlim_cur >= files_needed(300), "soft limit now {}", limit.rlim_cur);
        assert_eq!(limit.rlim_max, hard);
        let too_many = (hard.min(1 << 30) / FILES_PER_HOST) as usize + 1;
        let err = ensure_open_files(too_many).unwrap_err().to_string();
        assert!(err.contains("hard limit"), "{err}");
    }
}
