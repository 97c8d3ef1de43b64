//! `[expect] diagnosis = [...]` held against a diagnosis: one verdict check per cause.

use crate::diagnose::Diagnosis;
use crate::lvs::CauseId;
use crate::verdict::Check;

/// Each named cause must be among the findings; `healthy` means no finding and an even spread.
pub fn diagnosis_checks(expected: &[CauseId], diagnosis: &Diagnosis) -> Vec<Check> {
    let found = if diagnosis.findings.is_empty() {
        "no finding".to_owned()
    } else {
        diagnosis.ids().join(", ")
    };
    expected
        .iter()
        .map(|cause| {
            let (what, passed) = match cause {
                CauseId::Healthy => ("diagnosis: healthy".to_owned(), diagnosis.healthy),
                other => (
                    format!("diagnosis finds {}", other.as_str()),
                    diagnosis.finding(*other).is_some(),
                ),
            };
            let spread = serde_json::to_value(diagnosis.spread.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Check {
                what,
                passed,
                detail: (!passed).then(|| format!("found: {found}; spread {spread}")),
                share: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::{diagnose, sample};

    #[test]
    fn named_causes_must_be_found_and_healthy_means_healthy() {
        let persistent = diagnose(&sample::persistence());
        let checks = diagnosis_checks(&[CauseId::Persistence, CauseId::ArpFlux, CauseId::Healthy], &persistent);
        let passed: Vec<bool> = checks.iter().map(|c| c.passed).collect();
        assert_eq!(passed, [true, false, false]);
        assert_eq!(checks[0].what, "diagnosis finds persistence");
        let detail = checks[1].detail.as_deref().unwrap();
        assert!(detail.starts_with("found: persistence"), "{detail}");
        assert!(detail.ends_with("spread one-server"), "{detail}");

        let healthy = diagnose(&sample::healthy_dr());
        let checks = diagnosis_checks(&[CauseId::Healthy], &healthy);
        assert!(checks[0].passed);
        assert_eq!(checks[0].detail, None);
    }
}
