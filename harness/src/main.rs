//! The `lvslab` command.

use std::process::ExitCode;

use clap::Parser;

use lvslab::cli::{Cli, Command};
use lvslab::commands;

fn main() -> ExitCode {
    // A closed output pipe (`lvslab run --json … | head`) ends the process quietly, as it
    // does for cat or grep, instead of a panic in print!. Labs need no unwinding for that:
    // their namespaces are held by this process's descriptors and go with it.
    lvslab::sys::process::restore_default_sigpipe();
    let cli = Cli::parse();
    // exec and shell replace this process inside a namespace: no runtime, no other threads.
    match cli.command {
        Command::Exec { name, host, command } => return commands::exec_in_kept(&name, &host, &command),
        Command::Shell { name, host } => {
            let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
            return commands::exec_in_kept(&name, &host, &[shell]);
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lvslab: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(commands::dispatch(cli.command))
}
