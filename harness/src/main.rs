//! The `lvslab` command.

use std::process::ExitCode;

use clap::Parser;

use lvslab::cli::{self, Cli};
use lvslab::commands;

fn main() -> ExitCode {
    // A closed output pipe (`lvslab run --json … | head`) ends the process quietly, as it
    // does for cat or grep, instead of a panic in print!. Labs need no unwinding for that:
    // their namespaces are held by this process's descriptors and go with it.
    lvslab::sys::process::restore_default_sigpipe();
    cli::finish(commands::main(Cli::parse()))
}
