//! What can go wrong building or cleaning a lab, saying where.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The plan is wrong; nothing was touched.
    #[error("invalid lab plan: {0}")]
    InvalidPlan(String),

    /// A system call failed for one host (or "switch") at one step.
    #[error("{host}: {step}: {source}")]
    Os {
        host: String,
        step: String,
        #[source]
        source: io::Error,
    },

    /// A netlink request was refused.
    #[error("{host}: {step}: {source}")]
    Netlink {
        host: String,
        step: String,
        #[source]
        source: rtnetlink::Error,
    },

    #[error("{host}: unknown sysctl {name} (no {path})")]
    UnknownSysctl { host: String, name: String, path: String },

    #[error("{host}: no interface named {iface}")]
    NoSuchIface { host: String, iface: String },

    /// The namespace worker thread of a host is gone (panicked or torn down).
    #[error("{host}: namespace worker is not running")]
    WorkerGone { host: String },

    /// The process may not hold as many open files as the lab needs.
    #[error(
        "a lab of {namespaces} namespaces needs about {needed} open files, but this process may hold at most {hard} (soft limit {soft}); raise the hard limit (`ulimit -Hn {needed}` as root, or LimitNOFILE= for a service)"
    )]
    TooFewFiles {
        namespaces: usize,
        needed: u64,
        soft: u64,
        hard: u64,
    },

    /// Kept-lab state (/run/lvslab, /run/netns) problems.
    #[error("kept lab {name}: {message}")]
    Kept { name: String, message: String },
    /// A host's nftables rules could not be loaded.
    #[error("{host}: nftables: {message}")]
    Firewall { host: String, message: String },
}

impl LabError {
    pub(crate) fn os(host: &str, step: impl Into<String>, source: io::Error) -> Self {
        LabError::Os {
            host: host.to_string(),
            step: step.into(),
            source,
        }
    }

    pub(crate) fn netlink(host: &str, step: impl Into<String>, source: rtnetlink::Error) -> Self {
        LabError::Netlink {
            host: host.to_string(),
            step: step.into(),
            source,
        }
    }

    pub(crate) fn kept(name: &str, message: impl Into<String>) -> Self {
        LabError::Kept {
            name: name.to_string(),
            message: message.into(),
        }
    }
}
