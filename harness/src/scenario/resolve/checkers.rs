//! Stage 14: `checkers`, who runs the health checkers of `[service.check]`: the real
//! keepalived (`keepalived -C` in each director's namespace, driving kernel IPVS), lvslab's own,
//! or `auto` (keepalived where it can run them: see `run::health`).

use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{CheckersChoice, EngineChoice, Mode, Service};
use crate::scenario::raw::RawScenario;
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(
    raw: &RawScenario,
    engine: EngineChoice,
    services: &[Service],
    p: &mut Problems<'_>,
) -> CheckersChoice {
    let Some(text) = raw.top.checkers.as_ref() else {
        return CheckersChoice::Auto;
    };
    let choice = v::keyword(p, Some(text), CheckersChoice::Auto);
    if services.iter().all(|s| s.health.is_none()) {
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
    if services.iter().any(|s| s.mode == Mode::FullNat) {
        p.push(
            span(text),
            "keepalived has no lb_kind for mode = \"fullnat\" (not in mainline IPVS)",
            Some("use checkers = \"embedded\"".into()),
        );
    }
    choice
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse, CheckersChoice};

    const CHECKED: &str = r#"
[service]
mode = "dr"
[service.check]
kind = "tcp"
[[real_server]]
name = "rs1"
"#;

    #[test]
    fn the_choice_is_read_and_defaults_to_auto() {
        let s = parse(CHECKED, "t.toml").unwrap();
        assert_eq!(s.checkers, CheckersChoice::Auto);
        let s = parse(&format!("checkers = \"keepalived\"\n{CHECKED}"), "t.toml").unwrap();
        assert_eq!(s.checkers, CheckersChoice::Keepalived);
        let s = parse(
            &format!("checkers = \"embedded\"\nengine = \"embedded\"\n{CHECKED}"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.checkers, CheckersChoice::Embedded);
    }

    #[test]
    fn keepalived_on_the_embedded_engine_is_refused_at_the_key() {
        let text = format!("engine = \"embedded\"\ncheckers = \"keepalived\"\n{CHECKED}");
        let report = parse(&text, "t.toml").unwrap_err().render("t.toml");
        assert!(
            report.contains("t.toml:2:") && report.contains("the embedded engine has no netlink IPVS"),
            "{report}"
        );
    }

    #[test]
    fn a_choice_without_checkers_or_a_bad_word_is_an_error() {
        let text = "checkers = \"keepalived\"\n[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n";
        let report = parse(text, "t.toml").unwrap_err().render("t.toml");
        assert!(report.contains("but the scenario has no health checker"), "{report}");
        let report = parse(&format!("checkers = \"keepalive\"\n{CHECKED}"), "t.toml")
            .unwrap_err()
            .render("t.toml");
        assert!(
            report.contains("unknown checkers `keepalive`") && report.contains("keepalived"),
            "{report}"
        );
    }
}
