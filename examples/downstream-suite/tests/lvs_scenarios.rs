//! Every `scenarios/*.toml` of this crate is one test (ignored, with the reason, without root).
fn main() {
    lvslab::testing::Suite::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).run();
}
