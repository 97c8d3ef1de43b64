//! Process-wide settings: the SIGPIPE disposition, and session setup in a child.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Puts SIGPIPE back to its default (the Rust runtime ignores it): writing to a closed pipe
/// then ends the process quietly, as it does for cat or grep. Call before any thread exists.
pub fn restore_default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler, so no Rust code runs in signal
    // context; called at start-up before other threads.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Makes the child `cmd` spawns start a new session (setsid), so that closing our terminal
/// does not end it.
pub fn new_session_in_child(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and the closure touches nothing else, so it is
    // sound between fork and exec.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
}

/// Makes the child `cmd` spawns get SIGKILL when the thread that spawned it ends (lvslab
/// killed, even with SIGKILL): a check command never outlives the lab.
pub fn die_with_parent_in_child(cmd: &mut Command) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and the closure touches nothing
    // else, so it is sound between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Makes the child `cmd` spawns run in a network namespace of its own, empty and gone when it
/// exits (`nft -c` there can never touch a real ruleset). Root unshares the network namespace
/// alone; anyone else gets a user namespace with it.
pub fn new_netns_in_child(cmd: &mut Command) {
    // SAFETY: unshare(2) is a plain system call, async-signal-safe, and the closure touches
    // nothing else (the error is read from errno), so it is sound between fork and exec. The
    // child is single-threaded, as unsharing a user namespace requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNET) == 0 || libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0 {
                return Ok(());
            }
            Err(std::io::Error::last_os_error())
        });
    }
}
