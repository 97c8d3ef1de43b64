//! What can go wrong writing, checking or running keepalived, saying for which director.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum KeepalivedError {
    #[error("keepalived is not installed (no /usr/sbin/keepalived, none on PATH): apt-get install --no-install-recommends keepalived")]
    NotInstalled,

    /// The scenario asks for something keepalived cannot be configured to do.
    #[error("{director}: cannot write keepalived.conf: {reason}")]
    Config { director: String, reason: String },

    /// `keepalived -t` did not exit 0: every warning counts, a generated config must be clean.
    #[error("{host}: keepalived -t -f {conf} exited with {status}:\n{}", lines.join("\n"))]
    ConfigTest {
        host: String,
        conf: String,
        status: String,
        lines: Vec<String>,
    },

    #[error("{host}: {step}: {source}")]
    Os {
        host: String,
        step: String,
        #[source]
        source: io::Error,
    },

    /// The daemon was found in another network namespace than its director's; it was killed.
    #[error(
        "{host}: keepalived (pid {pid}) runs in network namespace {found}, not the director's {expected}; killed it"
    )]
    WrongNamespace {
        host: String,
        pid: i32,
        expected: String,
        found: String,
    },

    /// keepalived ended (or never reported a state) while lvslab waited for it.
    #[error("{host}: keepalived {what}; its last log lines:\n{}", log.join("\n"))]
    Daemon {
        host: String,
        what: String,
        log: Vec<String>,
    },

    #[error("{host}: keepalived's VRRP child is not running (no pid in {path})")]
    NoVrrpChild { host: String, path: String },
}

impl KeepalivedError {
    pub(crate) fn os(host: &str, step: impl Into<String>, source: io::Error) -> KeepalivedError {
        KeepalivedError::Os {
            host: host.to_string(),
            step: step.into(),
            source,
        }
    }

    pub(crate) fn config(director: &str, reason: impl Into<String>) -> KeepalivedError {
        KeepalivedError::Config {
            director: director.to_string(),
            reason: reason.into(),
        }
    }
}
