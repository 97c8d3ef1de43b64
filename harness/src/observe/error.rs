//! What can go wrong gathering evidence, saying on which host and at which step.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// A netlink dump was refused or the connection is gone.
    #[error("{host}: {step}: {source}")]
    Netlink {
        host: String,
        step: String,
        #[source]
        source: rtnetlink::Error,
    },

    /// A system call or /proc read failed.
    #[error("{host}: {step}: {source}")]
    Os {
        host: String,
        step: String,
        #[source]
        source: io::Error,
    },

    /// A /proc file did not have the shape the kernel documents.
    #[error("{file}: line {line}: {message}")]
    Parse { file: String, line: usize, message: String },

    #[error("{host}: no interface named {iface}")]
    NoSuchIface { host: String, iface: String },

    /// ARP needs an Ethernet interface with an IPv4 address to send from.
    #[error("{host}: interface {iface} cannot send ARP: {why}")]
    CannotArp { host: String, iface: String, why: String },

    /// The host's namespace thread is gone (its lab was torn down). Boxed: the lab's
    /// errors are large, and this one is rare.
    #[error(transparent)]
    Lab(Box<crate::lab::LabError>),
}

impl From<crate::lab::LabError> for ObserveError {
    fn from(e: crate::lab::LabError) -> Self {
        ObserveError::Lab(Box::new(e))
    }
}

impl ObserveError {
    pub(crate) fn netlink(host: &str, step: impl Into<String>, source: rtnetlink::Error) -> Self {
        ObserveError::Netlink {
            host: host.to_string(),
            step: step.into(),
            source,
        }
    }

    pub(crate) fn os(host: &str, step: impl Into<String>, source: io::Error) -> Self {
        ObserveError::Os {
            host: host.to_string(),
            step: step.into(),
            source,
        }
    }

    pub(crate) fn parse(file: &str, line: usize, message: impl Into<String>) -> Self {
        ObserveError::Parse {
            file: file.to_string(),
            line,
            message: message.into(),
        }
    }
}
