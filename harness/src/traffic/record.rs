//! One record per request: where it went and what came back.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};

use super::RequestError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    pub seq: u32,
    pub client: String,
    pub target: SocketAddr,
    /// Name of the server that answered (also set for HTTP errors).
    pub backend: Option<String>,
    #[serde(rename = "latency_us", serialize_with = "as_micros")]
    pub latency: Duration,
    /// Local address of the client socket.
    pub local: Option<SocketAddr>,
    /// Client address as the server saw it (from the reply JSON).
    pub seen_as: Option<SocketAddr>,
    /// Ordinal, within the run, of the TCP connection attempt (UDP: socket) used.
    pub connection: u32,
    /// When the request went out, since the traffic started.
    #[serde(rename = "sent_at_us", serialize_with = "as_micros")]
    pub sent_at: Duration,
    pub error: Option<RequestError>,
}

impl RequestRecord {
    pub(crate) fn failed(seq: u32, client: &str, target: Option<SocketAddr>, error: RequestError) -> Self {
        Self {
            seq,
            client: client.to_owned(),
            target: target.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            backend: None,
            latency: Duration::ZERO,
            local: None,
            seen_as: None,
            connection: 0,
            sent_at: Duration::ZERO,
            error: Some(error),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

fn as_micros<S: Serializer>(span: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(span.as_micros()).unwrap_or(u64::MAX))
}
