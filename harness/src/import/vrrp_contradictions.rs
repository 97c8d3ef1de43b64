//! keepalived.conf nodes checked for contradictions (`crate::vrrp::contradictions`), as import
//! warnings at the line of the instance (or of the track, the VIP). keepalived's own fix-ups
//! of one node (nopreempt with state MASTER, ...) are not repeated: the reader already
//! reports them in keepalived's words.
//!
//! One file: the imported node against the peers lvslab invents for it, so a weight that
//! cannot move the VIP in the scenario is said. Several files: every node of every file, as
//! the real set-up is: same VRID on the same interface is one router, whose nodes must accept
//! each other's adverts.

use std::net::{IpAddr, Ipv4Addr};

use crate::vrrp::contradictions::{self, Checks, Contradiction, Member, Subject, TrackKind, Tracked};
use crate::vrrp::Auth;

use super::error::Warning;
use super::keepalived_vrrp::{VrrpConfig, VrrpInstance};

const CHECKS: Checks = Checks { fix_ups: false };

/// The imported node (director `node`) and its invented BACKUP peers (`peers`: name and
/// priority), as the scenario runs them: only its track_scripts (a lab director has none of
/// the node's other interfaces). Only what concerns the node is said.
pub(super) fn imported_pair(instance: &VrrpInstance, node: &str, peers: &[(String, u8)]) -> Vec<Warning> {
    let mut me = member(instance, node, false);
    me.address = None;
    let mut members = vec![me.clone()];
    for (name, priority) in peers {
        members.push(Member {
            name: name.clone(),
            priority: *priority,
            master: false,
            nopreempt: false,
            preempt_delay: std::time::Duration::ZERO,
            tracks: Vec::new(),
            ..me.clone()
        });
    }
    contradictions::find(&members, CHECKS)
        .into_iter()
        .filter(|c| c.member == 0)
        .map(|c| warning(instance, &c, false))
        .collect()
}

/// Every instance of every file (`origin`, config), the real set-up: contradictions between
/// files, each as `(index of the file it is reported in, warning)`.
pub fn across_files(files: &[(&str, &VrrpConfig)]) -> Vec<(usize, Warning)> {
    let mut members = Vec::new();
    let mut owners: Vec<(usize, &VrrpInstance)> = Vec::new();
    for (f, (origin, config)) in files.iter().enumerate() {
        // The file's name says which node it is; the directory adds nothing.
        let file = std::path::Path::new(origin)
            .file_name()
            .map_or(origin.to_string(), |n| n.to_string_lossy().into_owned());
        for instance in &config.instances {
            let name = if config.instances.len() == 1 {
                file.clone()
            } else {
                format!("{file} ({})", instance.name)
            };
            members.push(member(instance, &name, true));
            owners.push((f, instance));
        }
    }
    contradictions::find(&members, CHECKS)
        .into_iter()
        .map(|c| {
            let (file, instance) = owners[c.member];
            (file, warning(instance, &c, true))
        })
        .collect()
}

fn member(instance: &VrrpInstance, name: &str, with_interfaces: bool) -> Member {
    let v4 = |a: &IpAddr| match a {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    };
    let interfaces = instance
        .track_interfaces
        .iter()
        .filter(|_| with_interfaces)
        .map(|t| (TrackKind::Interface, t));
    let scripts = instance.track_scripts.iter().map(|t| (TrackKind::Script, t));
    Member {
        name: name.to_string(),
        instance: instance.name.clone(),
        address: instance.unicast_src_ip.as_ref().and_then(v4),
        link: instance.interface.clone().unwrap_or_default(),
        vrid: instance.vrid,
        priority: instance.priority,
        master: instance.master,
        nopreempt: instance.nopreempt,
        preempt_delay: instance.preempt_delay,
        strict: instance.strict,
        version: instance.version,
        advert_int: instance.advert_int,
        auth: instance.auth_pass.as_deref().map_or(Auth::None, Auth::pass),
        vips: instance
            .vips
            .iter()
            .filter_map(|v| v4(&v.addr))
            .collect::<Vec<Ipv4Addr>>(),
        tracks: interfaces
            .chain(scripts)
            .map(|(kind, t)| Tracked {
                kind,
                name: t.name.clone(),
                weight: t.weight,
            })
            .collect(),
    }
}

/// The warning at the line the contradiction is about, its hint on a line of its own.
/// `with_interfaces`: as [`member`] was made (track indices count the interfaces first).
fn warning(instance: &VrrpInstance, c: &Contradiction, with_interfaces: bool) -> Warning {
    let line = match c.subject {
        Subject::Track(t) => instance
            .track_interfaces
            .iter()
            .filter(|_| with_interfaces)
            .chain(&instance.track_scripts)
            .nth(t)
            .map(|t| t.line),
        Subject::Vips => instance.vips.first().map(|v| v.line),
        _ => None,
    };
    Warning::new(
        line.unwrap_or(instance.line),
        format!("({}) {}\n  hint: {}", instance.name, c.message, c.hint),
    )
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::import::keepalived;
    use crate::import::to_scenario::{import_files, import_text};

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    /// A DR keepalived.conf: instance VI_1 with `body`, its VIP the virtual_server's.
    fn conf(body: &str) -> String {
        format!(
            "vrrp_script chk {{\n    script \"true\"\n}}\nvrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n{body}\n    virtual_ipaddress {{\n        10.0.0.10\n    }}\n}}\nvirtual_server 10.0.0.10 80 {{\n    lb_kind DR\n    protocol TCP\n    real_server 10.0.0.21 80 {{\n    }}\n}}\n"
        )
    }

    fn import_warnings(body: &str) -> Vec<String> {
        let imported = import_text(&conf(body), "a.conf").unwrap_or_else(|e| panic!("{e}"));
        imported.warnings.iter().map(Warning::to_string).collect()
    }

    fn across(a: &str, b: &str) -> Vec<String> {
        let (a, b) = (
            keepalived::parse(&conf(a)).unwrap(),
            keepalived::parse(&conf(b)).unwrap(),
        );
        across_files(&[("a.conf", &a.vrrp), ("b.conf", &b.vrrp)])
            .into_iter()
            .map(|(file, w)| format!("{}: {w}", ["a.conf", "b.conf"][file]))
            .collect()
    }

    #[test]
    fn one_file_a_weight_that_cannot_beat_the_invented_peer_is_said_at_its_line() {
        let found =
            import_warnings("    state MASTER\n    priority 150\n    track_script {\n        chk weight -30\n    }");
        let idle: Vec<&String> = found.iter().filter(|w| w.contains("can never move the VIP")).collect();
        assert_eq!(idle.len(), 1, "{found:#?}");
        assert!(
            idle[0].starts_with(
                "line 10: (VI_1) track_script chk (weight -30) can never move the VIP: while it fails lvs1 runs at \
                 120, not below lvs2's 100"
            ),
            "{}",
            idle[0]
        );
        assert!(
            idle[0].ends_with("hint: a weight of -51 or lower would (150 - 51 = 99)"),
            "{}",
            idle[0]
        );
        let enough =
            import_warnings("    state MASTER\n    priority 150\n    track_script {\n        chk weight -60\n    }");
        assert!(!enough.iter().any(|w| w.contains("can never move")), "{enough:#?}");
    }

    #[test]
    fn one_file_keepalived_s_own_fix_ups_are_not_said_twice_and_255_is_an_owner() {
        let found = import_warnings("    state MASTER\n    priority 150\n    nopreempt");
        let nopreempt: Vec<&String> = found.iter().filter(|w| w.contains("nopreempt")).collect();
        assert_eq!(nopreempt.len(), 1, "{found:#?}");
        assert!(nopreempt[0].contains("(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing"));
        let found = import_warnings("    priority 255");
        assert!(
            found
                .iter()
                .any(|w| w.contains("priority 255 declares lvs1 the address owner")),
            "{found:#?}"
        );
    }

    #[test]
    fn several_files_a_healthy_pair_is_silent() {
        let a = "    state MASTER\n    priority 150\n    track_script {\n        chk weight -60\n    }";
        let b = "    state BACKUP\n    priority 100\n    track_script {\n        chk weight -60\n    }";
        assert_eq!(across(a, b), Vec::<String>::new());
    }

    #[test]
    fn several_files_equal_priorities_name_the_winner_by_unicast_src_ip() {
        let a = "    state MASTER\n    priority 100\n    unicast_src_ip 10.0.0.2\n    unicast_peer {\n        10.0.0.3\n    }";
        let b = "    state MASTER\n    priority 100\n    unicast_src_ip 10.0.0.3\n    unicast_peer {\n        10.0.0.2\n    }";
        let found = across(a, b);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with(
                "b.conf: line 4: (VI_1) a.conf and b.conf both run VRID 51 at priority 100 and state MASTER"
            ),
            "{}",
            found[0]
        );
        assert!(
            found[0].contains("hint: b.conf (10.0.0.3) wins whenever masters meet between them"),
            "{}",
            found[0]
        );
    }

    #[test]
    fn several_files_adverts_one_node_drops_are_split_brain_at_their_lines() {
        let found = across("    priority 150", "    priority 100\n    version 3");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].contains("wrong version. Received 2 and expect 3"),
            "{}",
            found[0]
        );
        assert!(found[0].contains("split brain"), "{}", found[0]);
        let b = "    priority 100\n    virtual_ipaddress {\n        10.0.0.11\n    }";
        let found = across("    priority 150", b);
        let vips: Vec<&String> = found
            .iter()
            .filter(|w| w.contains("different virtual_ipaddress"))
            .collect();
        assert_eq!(vips.len(), 1, "{found:#?}");
        assert!(vips[0].starts_with("b.conf: line 9: "), "at b's first VIP: {}", vips[0]);
        // Another interface is another segment: nothing is compared.
        let other = conf("    priority 100\n    version 3").replace("interface eth0", "interface eth1");
        let (a, b) = (
            keepalived::parse(&conf("    priority 150")).unwrap(),
            keepalived::parse(&other).unwrap(),
        );
        assert!(across_files(&[("a.conf", &a.vrrp), ("b.conf", &b.vrrp)]).is_empty());
    }

    #[test]
    fn several_files_make_one_scenario_whose_peer_is_the_other_file() {
        let files: Vec<PathBuf> = ["keepalived-pair-a.conf", "keepalived-pair-b.conf"]
            .iter()
            .map(|f| PathBuf::from(FIXTURES).join(f))
            .collect();
        let (toml, warnings) = import_files(&files).unwrap_or_else(|e| panic!("{e}"));
        let scenario = crate::scenario::parse(&toml, "pair.toml").unwrap();
        let vrrp = scenario.vrrp.as_ref().unwrap();
        let priorities: Vec<Option<u8>> = vrrp.nodes.iter().map(|n| n.instance.priority).collect();
        assert_eq!(priorities, vec![Some(150), Some(100)]);
        assert_eq!(vrrp.nodes[1].instance.advert_int, std::time::Duration::from_secs(2));
        assert_eq!(vrrp.nodes[1].instance.auth, Auth::pass("secret2"));
        let b = files[1].display().to_string();
        assert!(
            warnings.iter().any(|w| w.starts_with(&format!(
                "{b}: line 9: (VI_1) keepalived-pair-b.conf advertises every 2 s"
            ))),
            "{warnings:#?}"
        );
        assert!(
            warnings.iter().any(|w| w.contains("received an invalid passwd!")),
            "{warnings:#?}"
        );
        assert!(
            !warnings.iter().any(|w| w.contains("becomes director lvs2")),
            "no invented peer: {warnings:#?}"
        );
    }
}
