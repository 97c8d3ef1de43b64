//! Scenarios for the checkers that the kernel conformance cannot run yet (a director without
//! VRRP stopped and started again: under kernel IPVS its start event fails, docs/keepalived.md),
//! each one test as in tests/scenarios.rs.
fn main() {
    lvslab::testing::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/checkers")).run();
}
