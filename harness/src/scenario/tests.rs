//! Unit tests: defaults per mode and explicit topologies.

use std::net::Ipv4Addr;

use super::*;

fn ok(text: &str) -> Scenario {
    match parse(text, "scenarios/test.toml") {
        Ok(s) => s,
        Err(report) => panic!("unexpected problems:\n{}", report.render("test.toml")),
    }
}

fn errs(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(_) => panic!("expected problems"),
        Err(report) => report.render("t.toml"),
    }
}

#[test]
fn debug_dump() {
    for f in ["/tmp/sc/dr-rr.toml", "/tmp/sc/broken.toml"] {
        match load(std::path::Path::new(f)) {
            Ok(s) => println!("{s:#?}"),
            Err(r) => println!("{}", r.render(f)),
        }
    }
}
