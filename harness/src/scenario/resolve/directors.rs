//! Stage 7: the directors as the engine sees them: VIP, FULLNAT local address and the
//! `net.ipv4.vs.*` settings (the rest of a director's sysctls are its host's).

use std::net::Ipv4Addr;

use super::context::{Context, Source};
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Director, Mode};
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
            complete_checksums: complete_checksums(cx.p, cx.raw, &cx.modes, d),
        });
    }
    directors
}

/// `complete_checksums`: kernel IPVS leaves them unfinished in TUN mode only (its TX offload on,
/// the real servers' userspace decapsulator sees the raw bytes); in DR and NAT the real server's
/// kernel gets the partial skb with its offload state and trusts it (FULLNAT is refused on its own).
fn complete_checksums(p: &mut Problems<'_>, r: &RawScenario, modes: &[Mode], d: Option<&RawDirector>) -> bool {
    let Some(c) = d.and_then(|d| d.complete_checksums.as_ref()) else {
        return true;
    };
    let kernel = r.top.engine.as_ref().is_some_and(|e| e.get_ref() == "kernel");
    // One service in dr or nat is enough: the director has one offload setting for all.
    let dr_or_nat = modes.iter().find(|m| matches!(m, Mode::Dr | Mode::Nat));
    if let (true, false, Some(mode)) = (kernel, *c.get_ref(), dr_or_nat) {
        p.push(
            span(c),
            format!(
                "engine = \"kernel\" cannot leave checksums unfinished with mode = \"{}\": kernel IPVS hands \
                 the partial checksum to the real server's kernel with its offload state, which trusts it",
                mode.as_str()
            ),
            Some("use mode = \"tun\" (the real servers decapsulate in userspace and see the unfinished sum), or engine = \"auto\" or \"embedded\"".into()),
        );
    }
    *c.get_ref()
}
