//! Shared by the root integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use ipnet::Ipv4Net;

/// True when the tests may build network namespaces; says why not otherwise.
pub fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: building namespaces needs root");
        false
    }
}

pub fn net(s: &str) -> Ipv4Net {
    s.parse().expect("valid network in a test")
}
