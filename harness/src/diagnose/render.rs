//! The human report of a diagnosis.

use super::finding::Diagnosis;

pub fn render(d: &Diagnosis) -> String {
    format!("{d:?}")
}
