//! One test per shipped scenario file: build its lab, run its traffic, and hold it to its `[expect]`.
//! Needs root (network namespaces); without it every scenario is reported as ignored, with the reason.
//! The same `lvslab::testing::Suite` that other crates use for their own scenarios.

fn main() {
    lvslab::testing::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios")).run();
}
