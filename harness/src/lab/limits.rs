//! The open-file limit a lab needs. Each host holds about seven descriptors while the lab is up
//! (its namespace, its runtime's epoll/eventfd/timer, its netlink socket, a listener, …), so a
//! 1000-server lab needs some 7000, while shells and services often start processes with a soft
//! limit of 1024. Like Go's runtime, lab bring-up raises the soft limit towards the hard one.

use super::error::LabError;

/// Descriptors per host of a running lab, measured at about 7 (2130 for 303 namespaces).
const FILES_PER_HOST: u64 = 8;
/// For everything else the process holds: the CLI, traffic connections, captures.
const FILES_SPARE: u64 = 512;

/// What a lab of `namespaces` namespaces needs open at once.
pub(crate) fn files_needed(namespaces: usize) -> u64 {
    namespaces as u64 * FILES_PER_HOST + FILES_SPARE
}

/// The soft limit to set so that `needed` files fit, if it must change: up to the hard limit,
/// bounded by fs.nr_open. `Err` when even that is too low.
fn raised_soft_limit(soft: u64, hard: u64, nr_open: u64, needed: u64) -> Result<Option<u64>, ()> {
    if soft >= needed {
        return Ok(None);
    }
    let ceiling = hard.min(nr_open);
    if ceiling < needed {
        return Err(());
    }
    Ok(Some(ceiling))
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (bounded by fs.nr_open) when it is below
/// what `namespaces` need; an error saying what to change when the hard limit is too low.
pub(crate) fn ensure_open_files(namespaces: usize) -> Result<(), LabError> {
    let needed = files_needed(namespaces);
    let (soft_now, hard) =
        crate::sys::rlimit::open_files().map_err(|e| LabError::os("lab", "read the open-file limit", e))?;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let soft = match raised_soft_limit(soft_now, hard, nr_open, needed) {
        Ok(None) => return Ok(()),
        Ok(Some(soft)) => soft,
        Err(()) => {
            return Err(LabError::TooFewFiles {
                namespaces,
                needed,
                soft: soft_now,
                hard,
            })
        }
    };
    crate::sys::rlimit::set_open_files(soft, hard).map_err(|e| LabError::os("lab", "raise the open-file limit", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thousand_server_lab_needs_more_than_the_usual_soft_limit() {
        let needed = files_needed(1003);
        assert!(needed > 1024);
        assert!(files_needed(6) < 1024, "the reference lab fits any limit");
        assert_eq!(raised_soft_limit(1024, 524_288, 1_048_576, needed), Ok(Some(524_288)));
        assert_eq!(
            raised_soft_limit(1024, u64::MAX, 1_048_576, needed),
            Ok(Some(1_048_576))
        );
        assert_eq!(raised_soft_limit(20_000, 524_288, 1_048_576, needed), Ok(None));
        assert_eq!(raised_soft_limit(1024, 4096, 1_048_576, needed), Err(()));
    }

    #[test]
    fn too_few_files_says_what_to_raise() {
        let e = LabError::TooFewFiles {
            namespaces: 1003,
            needed: files_needed(1003),
            soft: 1024,
            hard: 4096,
        };
        assert_eq!(
            e.to_string(),
            "a lab of 1003 namespaces needs about 8536 open files, but this process may hold at most 4096 (soft limit 1024); raise the hard limit (`ulimit -Hn 8536` as root, or LimitNOFILE= for a service)"
        );
    }
}
