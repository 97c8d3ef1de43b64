//! The directors' VRRP set-up checked for contradictions (`crate::vrrp::contradictions`): each
//! is a warning at the key it is about, with a hint. A warning never refuses the file: the
//! mistake is what a scenario may want to reproduce.

use crate::scenario::model::VrrpNode;
use crate::scenario::raw::{RawDirector, RawVrrpInstance};
use crate::scenario::resolve::context::{Context, Source, Span};
use crate::scenario::validate::span;
use crate::vrrp::contradictions::{self, Checks, Member, Subject, TrackKind, Tracked};

const PRIO_OWNER: u8 = 255;
const PRIO_DEFAULT: u8 = 100;

/// Looked for only in a file without errors: contradictions among wrong values are noise.
pub(in crate::scenario::resolve) fn warn(cx: &mut Context<'_, '_, '_>, shared: &RawVrrpInstance, nodes: &[VrrpNode]) {
    if !cx.p.is_empty() {
        return;
    }
    let members: Vec<Member> = nodes.iter().map(member).collect();
    for found in contradictions::find(&members, Checks { fix_ups: true }) {
        let node = &nodes[found.member];
        let (raw, name_span) = cx
            .hosts
            .iter()
            .find(|h| h.name == node.director)
            .map(|h| match h.source {
                Source::Director(d) => (d, h.name_span.clone()),
                _ => (None, h.name_span.clone()),
            })
            .unwrap_or((None, None));
        let at = place(found.subject, raw, shared, node).or(name_span);
        cx.p.warn(at, found.message, Some(found.hint));
    }
}

/// A node as keepalived completes it: priority from the state, the state from the priority.
fn member(node: &VrrpNode) -> Member {
    let cfg = &node.instance;
    let priority = cfg.priority.unwrap_or(if cfg.initial_master == Some(true) {
        PRIO_OWNER
    } else {
        PRIO_DEFAULT
    });
    let tracks = node
        .track_interfaces
        .iter()
        .map(|(name, weight)| (TrackKind::Interface, name, weight))
        .chain(
            node.track_scripts
                .iter()
                .map(|(name, weight)| (TrackKind::Script, name, weight)),
        )
        .map(|(kind, name, weight)| Tracked {
            kind,
            name: name.clone(),
            weight: *weight,
        })
        .collect();
    Member {
        name: node.director.clone(),
        instance: cfg.name.clone(),
        address: Some(cfg.address),
        // Every director of the instance is on the VIP's network.
        link: String::new(),
        vrid: cfg.vrid,
        priority,
        master: cfg.initial_master.unwrap_or(priority == PRIO_OWNER),
        nopreempt: cfg.nopreempt,
        preempt_delay: cfg.preempt_delay,
        strict: node.strict,
        version: cfg.version,
        advert_int: cfg.advert_int,
        auth: cfg.auth,
        vips: cfg.vips.clone(),
        tracks,
    }
}

/// The key a contradiction is about: the director's own, else `[vrrp_instance]`'s.
fn place(subject: Subject, raw: Option<&RawDirector>, shared: &RawVrrpInstance, node: &VrrpNode) -> Span {
    let d = raw?;
    let instance_key = |own: Span, common: Span| own.or(common);
    match subject {
        Subject::Priority => d.priority.as_ref().and_then(span),
        Subject::State => d.state.as_ref().and_then(span),
        Subject::Nopreempt => d.nopreempt.as_ref().and_then(span),
        Subject::PreemptDelay => d.preempt_delay.as_ref().and_then(span),
        Subject::Track(t) => {
            let interfaces = node.track_interfaces.len();
            if t < interfaces {
                let name = &node.track_interfaces[t].0;
                let entry = d
                    .track_interface
                    .as_ref()?
                    .get_ref()
                    .iter()
                    .find(|e| e.get_ref().interface.as_ref().is_some_and(|i| i.get_ref() == name))?;
                entry.get_ref().weight.as_ref().and_then(span).or(span(entry))
            } else {
                let name = &node.track_scripts.get(t - interfaces)?.0;
                let entry = d
                    .track_script
                    .as_ref()?
                    .get_ref()
                    .iter()
                    .find(|e| e.get_ref().script.as_ref().is_some_and(|s| s.get_ref() == name))?;
                entry.get_ref().weight.as_ref().and_then(span).or(span(entry))
            }
        }
        Subject::Vrid => instance_key(
            d.virtual_router_id.as_ref().and_then(span),
            shared.virtual_router_id.as_ref().and_then(span),
        ),
        Subject::AdvertInt => instance_key(
            d.advert_int.as_ref().and_then(span),
            shared.advert_int.as_ref().and_then(span),
        ),
        Subject::Auth => instance_key(
            d.auth_pass.as_ref().and_then(span),
            shared.auth_pass.as_ref().and_then(span),
        ),
        Subject::Version => instance_key(
            d.version.as_ref().and_then(span),
            shared.version.as_ref().and_then(span),
        ),
        // Every director serves the service VIP.
        Subject::Vips => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::{parse_checked, Severity};

    fn pair(lvs1: &str, lvs2: &str) -> String {
        format!(
            r#"
[service]
vip = "192.0.2.100"
mode = "dr"
[vrrp_instance]
virtual_router_id = 51
[[director]]
name = "lvs1"
{lvs1}
[[director]]
name = "lvs2"
{lvs2}
[[vrrp_script]]
name = "maint"
script = "test ! -e {{dir}}/maintenance"
[[real_server]]
name = "rs1"
"#
        )
    }

    /// Each warning as `line: message`.
    fn warnings(text: &str) -> Vec<String> {
        let (_, report) = parse_checked(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
        assert!(report.problems.iter().all(|p| p.severity == Severity::Warning));
        report
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.line, p.message))
            .collect()
    }

    #[test]
    fn a_healthy_pair_has_no_warning() {
        let text = pair(
            "state = \"MASTER\"\npriority = 150\ntrack_script = [{ script = \"maint\", weight = -60 }]",
            "state = \"BACKUP\"\npriority = 100",
        );
        assert_eq!(warnings(&text), Vec::<String>::new());
    }

    #[test]
    fn both_master_at_one_priority_is_a_warning_at_the_second_priority() {
        let text = pair(
            "state = \"MASTER\"\npriority = 120",
            "state = \"MASTER\"\npriority = 120",
        );
        let found = warnings(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("14: lvs1 and lvs2 both run VRID 51 at priority 120 and state MASTER"),
            "{found:?}"
        );
        // Defaults tie too (100 each): the warning goes to the director's name.
        let found = warnings(&pair("", "state = \"BACKUP\""));
        assert!(
            found[0].starts_with("11: lvs1 and lvs2 both run VRID 51 at priority 100"),
            "{found:?}"
        );
    }

    #[test]
    fn an_idle_weight_is_named_at_its_weight() {
        let text = pair(
            "state = \"MASTER\"\npriority = 150\ntrack_script = [{ script = \"maint\", weight = -30 }]",
            "priority = 100",
        );
        let found = warnings(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("11: track_script maint (weight -30) can never move the VIP"),
            "{found:?}"
        );
    }

    #[test]
    fn nopreempt_on_a_master_and_an_owner_priority_are_warnings() {
        let text = pair("state = \"MASTER\"\npriority = 150\nnopreempt = true", "priority = 255");
        let found = warnings(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("11: `nopreempt` on lvs1 does nothing"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("14: priority 255 declares lvs2 the address owner"),
            "{found:?}"
        );
    }

    #[test]
    fn a_per_director_override_that_splits_the_pair_is_a_warning_at_the_override() {
        let text = pair("priority = 150", "auth_pass = \"pw\"\nadvert_int = 2");
        let found = warnings(&text);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("12: lvs2 and lvs1 authenticate differently"),
            "{found:?}"
        );
        assert!(found[1].starts_with("13: lvs2 advertises every 2 s"), "{found:?}");
    }

    #[test]
    fn another_vrid_on_one_director_is_a_second_router_at_its_override() {
        let found = warnings(&pair("priority = 150", "virtual_router_id = 52"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("12: lvs2 runs VRID 52 and lvs1 VRID 51 for the same VIP 192.0.2.100"),
            "{found:?}"
        );
    }

    #[test]
    fn a_file_with_errors_gets_no_contradiction_warnings() {
        let text = pair(
            "state = \"MASTER\"\npriority = 120\nbogus = 1",
            "state = \"MASTER\"\npriority = 120",
        );
        let report = parse_checked(&text, "t.toml").unwrap_err();
        assert!(report.warnings().next().is_none(), "{}", report.render("t.toml"));
    }
}
