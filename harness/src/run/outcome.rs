//! What one run produced, for the human report, `--json` and tests.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::diagnose::{Diagnosis, Evidence};
use crate::director::{EngineKind, EngineStats};
use crate::ipvs::IpvsSnapshot;
use crate::observe::IpvsadmView;
use crate::report::Timeline;
use crate::scenario::Mode;
use crate::tally::Tally;
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
    /// Each service's own spread, when the scenario has several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<super::ServiceSpread>,
    pub records: Vec<RequestRecord>,
    pub verdict: Verdict,
    /// The first director's table and counters (every director's are in `directors`).
    pub ipvs: Option<IpvsSnapshot>,
    pub engine_stats: Option<EngineStats>,
    /// Each director's table and counters, in scenario order.
    pub directors: Vec<DirectorOutcome>,
    /// Why the spread is what it is: present when the run investigated (an expectation
    /// failed, the scenario expects a diagnosis, or `lvslab diagnose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<Diagnosis>,
    /// What the diagnosis read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Evidence the investigation could not gather.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub investigation_problems: Vec<String>,
    /// What keepalived's checkers did (`[service.check]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<super::HealthOutcome>,
    /// Answers and errors per time slice, with the events: when the scenario has events or a rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
    /// Checked real servers that events took down (and brought back): what the checkers took.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<super::Outage>,
    /// What the directors' VRRP did (`[vrrp_instance]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<super::VrrpOutcome>,
    pub timings: Timings,
    /// Answers per destination address and backend, with `[traffic] destinations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destinations: Option<crate::locality::DestinationTally>,
    /// `--capture`: the files written and the paths of the first and the first failed requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<crate::trace::CaptureReport>,
}

/// One director's view after the traffic.
#[derive(Debug, Clone, Serialize)]
pub struct DirectorOutcome {
    pub name: String,
    pub vip: Ipv4Addr,
    pub ipvs: IpvsSnapshot,
    pub engine_stats: EngineStats,
    /// The real `ipvsadm`'s views taken with `ipvs` (kernel engine, `RunOptions::witness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Vec<IpvsadmView>>,
    /// `nft list table ip lvslab_fwmark` taken with the witness (scenarios with fwmark
    /// services): the marking rules an import of the table needs beside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark_rules: Option<Result<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub bring_up_ms: f64,
    pub traffic_ms: f64,
    /// Evidence, probes and diagnosis, when the run investigated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub investigate_ms: Option<f64>,
    /// The lab's teardown (with `--capture`, the capture report is timed apart).
    pub teardown_ms: f64,
    /// With `--capture`: its own start, stop and report, inside `total_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureTimings>,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CaptureTimings {
    /// Files created and sockets opened, before the servers start.
    pub start_ms: f64,
    /// Sockets drained and closed, files written, after the traffic.
    pub stop_ms: f64,
    /// `index.json` written and the files read back for the requests' paths.
    pub report_ms: f64,
}

fn as_str<S: serde::Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mode.as_str())
}
