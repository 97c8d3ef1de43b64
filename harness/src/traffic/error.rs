//! How a request failed, mapped precisely from the OS or HTTP error.

use std::error::Error as _;
use std::io;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum RequestError {
    /// No answer (connect or response) within the request timeout, or ETIMEDOUT.
    #[error("timeout")]
    Timeout,
    /// ECONNREFUSED: RST to our SYN, or ICMP port unreachable for UDP.
    #[error("connection refused")]
    Refused,
    /// ECONNRESET (or EPIPE: writing after the peer's RST).
    #[error("connection reset")]
    Reset,
    /// EHOSTUNREACH / ENETUNREACH.
    #[error("unreachable")]
    Unreachable,
    /// The server answered with this non-2xx status.
    #[error("HTTP {0}")]
    Http(u16),
    #[error("{0}")]
    Other(String),
}

impl RequestError {
    pub(crate) fn from_io(err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => Self::Refused,
            Some(libc::ECONNRESET | libc::EPIPE) => Self::Reset,
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => Self::Unreachable,
            Some(libc::ETIMEDOUT) => Self::Timeout,
            _ => match err.kind() {
                io::ErrorKind::ConnectionRefused => Self::Refused,
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => Self::Reset,
                io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => Self::Unreachable,
                io::ErrorKind::TimedOut => Self::Timeout,
                _ => Self::Other(err.to_string()),
            },
        }
    }

    /// hyper wraps socket errors; the io::Error underneath says what happened.
    pub(crate) fn from_hyper(err: &hyper::Error) -> Self {
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(io_err) = cause.downcast_ref::<io::Error>() {
                return Self::from_io(io_err);
            }
            source = cause.source();
        }
        if err.is_incomplete_message() {
            return Self::Other("connection closed before a complete response".into());
        }
        Self::Other(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_precisely() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(RequestError::from_io(&os(libc::ECONNREFUSED)), RequestError::Refused);
        assert_eq!(RequestError::from_io(&os(libc::ECONNRESET)), RequestError::Reset);
        assert_eq!(RequestError::from_io(&os(libc::EPIPE)), RequestError::Reset);
        assert_eq!(
            RequestError::from_io(&os(libc::EHOSTUNREACH)),
            RequestError::Unreachable
        );
        assert_eq!(RequestError::from_io(&os(libc::ENETUNREACH)), RequestError::Unreachable);
        assert_eq!(RequestError::from_io(&os(libc::ETIMEDOUT)), RequestError::Timeout);
        assert!(matches!(
            RequestError::from_io(&os(libc::EADDRNOTAVAIL)),
            RequestError::Other(_)
        ));
    }

    #[test]
    fn displays_and_serializes_readably() {
        assert_eq!(RequestError::Http(500).to_string(), "HTTP 500");
        assert_eq!(serde_json::to_string(&RequestError::Refused).unwrap(), r#""refused""#);
        assert_eq!(
            serde_json::to_string(&RequestError::Http(503)).unwrap(),
            r#"{"http":503}"#
        );
    }
}
