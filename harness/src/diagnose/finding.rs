//! What the diagnosis says: ranked findings (cause, evidence, fix) and the spread.

use serde::Serialize;

use super::spread::SpreadSummary;
use crate::lvs::CauseId;

/// One cause that holds for the evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The cause, by its stable id.
    pub id: CauseId,
    /// One line saying what is wrong.
    pub title: String,
    /// Share of the observed skew this cause explains, 0..=1; ranks the findings.
    /// Latent risks (the spread is fine now) stay at or below [`LATENT`].
    pub explains: f64,
    /// Concrete observations, one per line, naming hosts, addresses and values.
    pub evidence: Vec<String>,
    /// What to change, in ipvsadm / sysctl / keepalived terms.
    pub fix: Vec<String>,
    /// The service it is about (`TCP 192.0.2.100:443`), when the diagnosis read several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The director whose table it reads, when the evidence holds several directors.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub director: Option<String>,
}

/// Ceiling of `explains` for a finding while the spread is healthy.
pub const LATENT: f64 = 0.1;

/// The answer to "why does every request go to one real server?".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    /// Most likely first.
    pub findings: Vec<Finding>,
    pub spread: SpreadSummary,
    /// The spread is even and no rule fired.
    pub healthy: bool,
}

impl Finding {
    pub fn new(id: CauseId, title: impl Into<String>, explains: f64) -> Self {
        Finding {
            id,
            title: title.into(),
            explains: explains.clamp(0.0, 1.0),
            evidence: Vec::new(),
            fix: Vec::new(),
            service: None,
            director: None,
        }
    }

    pub fn evidence(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.evidence.extend(lines);
        self
    }

    pub fn fix(mut self, lines: impl IntoIterator<Item = String>) -> Self {
        self.fix.extend(lines);
        self
    }
}

impl Diagnosis {
    pub fn finding(&self, id: CauseId) -> Option<&Finding> {
        self.findings.iter().find(|f| f.id == id)
    }

    /// The findings' cause ids as spelled, most likely first.
    pub fn ids(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.id.as_str()).collect()
    }
}
