//! What one run produced, for the human report, `--json` and tests.

use serde::Serialize;

use crate::director::{EngineKind, EngineStats};
use crate::ipvs::IpvsSnapshot;
use crate::report::Tally;
use crate::scenario::Mode;
use crate::traffic::RequestRecord;
use crate::verdict::Verdict;

#[derive(Debug, Serialize)]
pub struct RunOutcome {
    pub scenario: String,
    #[serde(serialize_with = "as_str")]
    pub mode: Mode,
    /// `None` in direct mode.
    pub engine: Option<EngineKind>,
    pub tally: Tally,
    pub records: Vec<RequestRecord>,
    pub verdict: Verdict,
    pub ipvs: Option<IpvsSnapshot>,
    pub engine_stats: Option<EngineStats>,
    pub timings: Timings,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub bring_up_ms: f64,
    pub traffic_ms: f64,
    pub teardown_ms: f64,
    pub total_ms: f64,
}

fn as_str<S: serde::Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}
