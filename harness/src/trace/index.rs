//! `index.json` of a capture directory: the capture's files and MACs and the run's requests,
//! so that `lvslab trace DIR` can find a request's packets after the lab is gone.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::capture::{CaptureSummary, INDEX_FILE};
use crate::lvs::Proto;
use crate::traffic::RequestRecord;

/// What `lvslab trace` needs of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedRequest {
    /// 1-based, in the run's order of requests.
    pub number: usize,
    pub client: String,
    pub proto: Proto,
    pub target: SocketAddr,
    /// The client socket's address, when the request got that far.
    pub local: Option<SocketAddr>,
    /// The run's ordinal of the connection attempt (UDP: socket) that carried it.
    pub connection: u32,
    pub backend: Option<String>,
    pub error: Option<String>,
}

impl TracedRequest {
    pub fn from_records(records: &[RequestRecord], proto: Proto) -> Vec<TracedRequest> {
        records
            .iter()
            .enumerate()
            .map(|(i, r)| TracedRequest {
                number: i + 1,
                client: r.client.clone(),
                proto,
                target: r.target,
                local: r.local,
                connection: r.connection,
                backend: r.backend.clone(),
                error: r.error.as_ref().map(|e| e.to_string()),
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureIndex {
    pub scenario: String,
    pub capture: CaptureSummary,
    /// Empty for a kept lab's capture (`lvslab up`): its traffic is the user's own.
    pub requests: Vec<TracedRequest>,
}

impl CaptureIndex {
    pub fn write(&self) -> Result<(), String> {
        let path = self.capture.dir.join(INDEX_FILE);
        let json = serde_json::to_string_pretty(self).map_err(|e| format!("encode {}: {e}", path.display()))?;
        std::fs::write(&path, json).map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// Reads `dir`'s index; a relative `dir` in the file is taken as `dir` itself (the
    /// directory may have moved since).
    pub fn read(dir: &Path) -> Result<CaptureIndex, String> {
        let path = dir.join(INDEX_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e} (a capture directory is DIR/<scenario> of `--capture DIR`)",
                path.display()
            )
        })?;
        let mut index: CaptureIndex =
            serde_json::from_str(&text).map_err(|e| format!("{}: not lvslab's capture index: {e}", path.display()))?;
        index.capture.dir = dir.to_path_buf();
        Ok(index)
    }
}
