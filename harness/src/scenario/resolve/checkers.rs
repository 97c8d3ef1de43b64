//! Stage 14: `checkers`, who runs the health checkers of `[service.check]`: the real
//! keepalived (`keepalived -C` in each director's namespace, driving kernel IPVS), lvslab's own,
//! or `auto` (keepalived where it can run them: see `run::health`).

use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{CheckersChoice, EngineChoice, HealthCheck, Mode};
use crate::scenario::raw::RawScenario;
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(
    raw: &RawScenario,
    engine: EngineChoice,
    mode: Mode,
    health: Option<&HealthCheck>,
    p: &mut Problems<'_>,
) -> CheckersChoice {
    let Some(text) = raw.top.checkers.as_ref() else {
        return CheckersChoice::Auto;
    };
    let choice = v::keyword(p, Some(text), CheckersChoice::Auto);
    if health.is_none() {
        p.push(
            span(text),
            format!(
                "`checkers = \"{}\"` but the scenario has no health checker",
                text.get_ref()
            ),
            Some("add a [service.check] table (or a real server's `check`)".into()),
        );
        return CheckersChoice::Auto;
    }
    if choice != CheckersChoice::Keepalived {
        return choice;
    }
    if engine == EngineChoice::Embedded {
        p.push(
            span(text),
            "keepalived's checkers drive kernel IPVS; the embedded engine has no netlink IPVS",
            Some("use engine = \"kernel\" (or \"auto\"), or checkers = \"embedded\"".into()),
        );
    }
    if mode == Mode::FullNat {
        p.push(
            span(text),
            "keepalived has no lb_kind for mode = \"fullnat\" (not in mainline IPVS)",
            Some("use checkers = \"embedded\"".into()),
        );
    }
    choice
}
