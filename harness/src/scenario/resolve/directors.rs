//! Stage 7: the directors as the engine sees them: VIP, FULLNAT local address and the
//! `net.ipv4.vs.*` settings (the rest of a director's sysctls are its host's).

use std::net::Ipv4Addr;

use super::context::{Context, Source};
use crate::scenario::model::Director;
use crate::scenario::sysctl;

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
            complete_checksums: d
                .and_then(|d| d.complete_checksums.as_ref())
                .is_none_or(|c| *c.get_ref()),
        });
    }
    directors
}
