//! One file per cause; each exposes `ID` and `check(evidence, spread) -> Option<Finding>`.
//! Causes are numbered as in the research note `why-one-backend.md`.

use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;

pub mod common;

pub mod arp_flux;

/// A rule: evidence and the spread in, a finding out if the cause holds.
pub type Rule = fn(&Evidence, &SpreadSummary) -> Option<Finding>;

/// Every rule, in the order causes are listed (the tie-break when ranking).
pub const RULES: &[Rule] = &[
    arp_flux::check,
];

/// Stable ids of every cause the diagnosis knows, in the same order as [`RULES`].
pub const CAUSE_IDS: &[&str] = &[
    arp_flux::ID,
];
