//! How a request failed, mapped precisely from the OS or HTTP error.

use std::error::Error as _;
use std::io;
use std::net::SocketAddr;

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
    /// ENOPROTOOPT: ICMP protocol unreachable, e.g. relayed by IPVS from a TUN real server
    /// that cannot take IP-in-IP.
    #[error("protocol unreachable")]
    ProtocolUnreachable,
    /// The server answered with this non-2xx status.
    #[error("HTTP {0}")]
    Http(u16),
    /// No free source port on the client's address: bind to ip:0 found none (EADDRINUSE)
    /// or connect found no free 4-tuple (EADDRNOTAVAIL; a UDP autobind, EAGAIN). A limit of
    /// the client host, not of the director or the servers.
    #[error("source ports exhausted")]
    SourcePortsExhausted,
    #[error("{0}")]
    Other(String),
}

impl RequestError {
    pub(crate) fn from_io(err: &io::Error) -> Self {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => Self::Refused,
            Some(libc::ECONNRESET | libc::EPIPE) => Self::Reset,
            Some(libc::EHOSTUNREACH | libc::ENETUNREACH) => Self::Unreachable,
            Some(libc::ENOPROTOOPT) => Self::ProtocolUnreachable,
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

    /// Binding the source address failed. On port 0 EADDRINUSE means every ephemeral port
    /// of that address is taken; anything else (an address not on the host) is said as is.
    pub(crate) fn from_bind(addr: SocketAddr, err: &io::Error) -> Self {
        if addr.port() == 0 && err.raw_os_error() == Some(libc::EADDRINUSE) {
            return Self::SourcePortsExhausted;
        }
        Self::Other(format!("cannot bind source {addr}: {err}"))
    }

    /// Connecting failed. Where the kernel picks the source port, EADDRNOTAVAIL (EAGAIN for
    /// UDP) means it found none free; with a pinned port it means that one 4-tuple is taken,
    /// which the port-reuse reproductions expect and report as the OS says it.
    pub(crate) fn from_connect(err: &io::Error, fixed_port: bool) -> Self {
        match err.raw_os_error() {
            Some(libc::EADDRNOTAVAIL | libc::EAGAIN) if !fixed_port => Self::SourcePortsExhausted,
            _ => Self::from_io(err),
        }
    }

    /// What the user can change when this error is the client's own limit, in the words of
    /// a scenario file; `None` where the error is about the path to the servers.
    pub fn advice(&self) -> Option<&'static str> {
        match self {
            Self::SourcePortsExhausted => Some(
                "the client ran out of source ports: every ephemeral port of its address \
                 (net.ipv4.ip_local_port_range) was held by a connection; give it more addresses \
                 with `sources = N` in [traffic], or reuse connections with `connection = \"keepalive\"`",
            ),
            _ => None,
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
    fn no_free_source_port_is_named_only_where_the_kernel_picks_the_port() {
        let os = io::Error::from_raw_os_error;
        let any_port: SocketAddr = "192.0.2.201:0".parse().unwrap();
        let pinned: SocketAddr = "192.0.2.201:40000".parse().unwrap();
        assert_eq!(
            RequestError::from_bind(any_port, &os(libc::EADDRINUSE)),
            RequestError::SourcePortsExhausted
        );
        let RequestError::Other(text) = RequestError::from_bind(pinned, &os(libc::EADDRINUSE)) else {
            panic!("a pinned port in use is not exhaustion")
        };
        assert!(text.starts_with("cannot bind source 192.0.2.201:40000: "), "{text}");
        assert!(matches!(
            RequestError::from_bind(any_port, &os(libc::EADDRNOTAVAIL)),
            RequestError::Other(_)
        ));
        for errno in [libc::EADDRNOTAVAIL, libc::EAGAIN] {
            assert_eq!(
                RequestError::from_connect(&os(errno), false),
                RequestError::SourcePortsExhausted
            );
        }
        assert!(matches!(
            RequestError::from_connect(&os(libc::EADDRNOTAVAIL), true),
            RequestError::Other(_)
        ));
        assert_eq!(
            RequestError::from_connect(&os(libc::ECONNREFUSED), false),
            RequestError::Refused
        );
        // The diagnosis reads the error as text: it must know this one is the client's limit.
        assert_eq!(
            RequestError::SourcePortsExhausted.to_string(),
            crate::diagnose::rules::server_down::SOURCE_PORTS_EXHAUSTED
        );
        assert_eq!(
            serde_json::to_string(&RequestError::SourcePortsExhausted).unwrap(),
            r#""source_ports_exhausted""#
        );
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
