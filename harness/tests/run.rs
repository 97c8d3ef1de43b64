//! The run pipeline through the library: every request answered, and by the server it was sent to.

use std::path::Path;

mod common;

use common::root;
use lvslab::run::{self, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_every_request_is_answered_by_the_server_it_targeted() {
    if !root() {
        return;
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/direct.toml");
    let scenario = lvslab::scenario::load(&path).expect("shipped scenario is valid");
    // Two labs of the same scenario at once must not collide.
    let opts = RunOptions::default();
    let (a, b) = tokio::join!(run::run(&scenario, &opts), run::run(&scenario, &opts));
    for outcome in [a.expect("first lab runs"), b.expect("second lab runs")] {
        assert_eq!(outcome.records.len(), 100);
        for record in &outcome.records {
            assert!(
                record.error.is_none(),
                "request {} failed: {:?}",
                record.seq,
                record.error
            );
            let owner = scenario
                .real_servers
                .iter()
                .find(|rs| rs.address == record.target.ip() && rs.port == record.target.port())
                .expect("every target is a real server in direct mode");
            assert_eq!(
                record.backend.as_deref(),
                Some(owner.name.as_str()),
                "request {}",
                record.seq
            );
            assert_eq!(
                record.seen_as, record.local,
                "no NAT between client and server in direct mode"
            );
        }
    }
}
