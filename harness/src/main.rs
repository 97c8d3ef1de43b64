//! The `lvslab` command.

use std::process::ExitCode;

use clap::Parser;

use lvslab::cli::{self, Cli};
use lvslab::commands;

fn main() -> ExitCode {
    // A closed output pipe (`lvslab run --json … | head`) ends the process quietly, as it
    // does for cat or grep, instead of a panic in print!. Labs need no unwinding for that:
    // their namespaces are held by this process's descriptors and go with it.
    // SAFETY: called before any thread exists; SIG_DFL is always a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::finish(commands::main(Cli::parse()))
}
