//! Counting where requests went: filled by `run`, judged by `verdict`, drawn by `report`.

use std::collections::BTreeMap;

use serde::Serialize;

/// Requests per backend and failures per error kind, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    pub requests: u32,
    /// Backend name → requests it answered. Every known backend is present, even with 0.
    pub backends: BTreeMap<String, u32>,
    /// Error kind ("timeout", "refused", …) → count.
    pub errors: BTreeMap<String, u32>,
}

impl Tally {
    /// `known` seeds every backend with zero so a silent one still shows.
    pub fn new<'a>(known: impl IntoIterator<Item = &'a str>) -> Self {
        Tally {
            backends: known.into_iter().map(|b| (b.to_owned(), 0)).collect(),
            ..Tally::default()
        }
    }

    pub fn add_answer(&mut self, backend: &str) {
        self.requests += 1;
        *self.backends.entry(backend.to_owned()).or_default() += 1;
    }

    pub fn add_error(&mut self, kind: &str) {
        self.requests += 1;
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    pub fn answered(&self) -> u32 {
        self.backends.values().sum()
    }

    pub fn failed(&self) -> u32 {
        self.errors.values().sum()
    }

    /// Share of all requests (answered or not) that `backend` answered.
    pub fn share(&self, backend: &str) -> f64 {
        if self.requests == 0 {
            return 0.0;
        }
        f64::from(self.backends.get(backend).copied().unwrap_or(0)) / f64::from(self.requests)
    }

    /// Backends that answered at least once.
    pub fn answering(&self) -> impl Iterator<Item = &str> {
        self.backends.iter().filter(|(_, n)| **n > 0).map(|(b, _)| b.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_answers_errors_and_shares() {
        let mut t = Tally::new(["rs1", "rs2", "rs3"]);
        for b in ["rs1", "rs2", "rs1", "rs1"] {
            t.add_answer(b);
        }
        t.add_error("timeout");
        assert_eq!(t.requests, 5);
        assert_eq!(t.answered(), 4);
        assert_eq!(t.failed(), 1);
        assert_eq!(t.backends["rs3"], 0);
        assert!((t.share("rs1") - 0.6).abs() < 1e-9);
        assert_eq!(t.answering().collect::<Vec<_>>(), ["rs1", "rs2"]);
    }
}
