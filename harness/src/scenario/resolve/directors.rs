//! Stage 7: the directors as the engine sees them: VIP, FULLNAT local address and the
//! `net.ipv4.vs.*` settings (the rest of a director's sysctls are its host's).

use std::net::Ipv4Addr;

use super::context::{Context, Source};
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::Director;
use crate::scenario::raw::{RawDirector, RawScenario};
use crate::scenario::sysctl;
use crate::scenario::validate::span;

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>) -> Vec<Director> {
    let mut directors = Vec::new();
    for h in &cx.hosts {
        let Source::Director(d) = h.source else { continue };
        let engine_sysctls = sysctl::engine_settings(cx.p, d.and_then(|d| d.sysctl.as_ref()));
        directors.push(Director {
            name: h.name.clone(),
            vip: h.vip.as_ref().map_or(Ipv4Addr::UNSPECIFIED, |(a, _)| *a),
            local_address: h.local_address,
            engine_sysctls,
            complete_checksums: complete_checksums(cx.p, cx.raw, d),
        });
    }
    directors
}

/// `complete_checksums`: only the embedded engine can leave them unfinished.
fn complete_checksums(p: &mut Problems<'_>, r: &RawScenario, d: Option<&RawDirector>) -> bool {
    let Some(c) = d.and_then(|d| d.complete_checksums.as_ref()) else {
        return true;
    };
    let kernel = r.top.engine.as_ref().is_some_and(|e| e.get_ref() == "kernel");
    if kernel && !*c.get_ref() {
        p.push(
            span(c),
            "engine = \"kernel\" cannot leave checksums unfinished: kernel IPVS cannot be made to forward them so",
            Some("use engine = \"auto\" or \"embedded\"".into()),
        );
    }
    *c.get_ref()
}
