//! The JSON body every real server answers with; traffic parses it back.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// `{"backend":"rs1","client":"192.0.2.201:40000","local":"192.0.2.100:80"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendReply {
    /// Name of the server that answered.
    pub backend: String,
    /// Peer address as the server saw it (after any NAT on the way).
    pub client: SocketAddr,
    /// Local address the request arrived on: the VIP in DR/TUN.
    pub local: SocketAddr,
    /// Set when the server answers with an error (`Behaviour::Error`): 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// UDP only: the request datagram echoed back, so a client can match a
    /// reply to its request on a reused socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl BackendReply {
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and addresses cannot fail.
        serde_json::to_vec(self).expect("BackendReply serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_documented_one() {
        let reply = BackendReply {
            backend: "rs1".into(),
            client: "192.0.2.201:40000".parse().unwrap(),
            local: "192.0.2.100:80".parse().unwrap(),
            status: None,
            request: None,
        };
        assert_eq!(
            String::from_utf8(reply.to_json()).unwrap(),
            r#"{"backend":"rs1","client":"192.0.2.201:40000","local":"192.0.2.100:80"}"#
        );
    }
}
