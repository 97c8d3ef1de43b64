//! Stands for the code of a crate that ships an LVS set-up; its scenarios are in `scenarios/`
//! and `tests/scenarios.rs` runs them.
