//! The `sysctl = { ... }` tables, checked as far as can be done before a lab exists: names
//! against the kernel's own tree (`tree`) and, for `net.ipv4.vs.*`, against what lvslab's
//! engines emulate; values against what each knob takes (`known`), else against the shape of
//! what the kernel holds there. What passes here is what the lab can write.

mod known;
mod tree;

use std::ops::Range;

use crate::ipvs;

use super::diagnostic::Problems;
use super::model::{Host, Role};
use super::raw::{RawSysctls, SysctlValue, S};
use super::suggest;
use super::validate::{self as v, span};
use known::{Knob, Takes, ENGINE_PREFIX};
use tree::{Node, Shape, Source, Tree};

/// The host a sysctl is written on.
pub(crate) struct Target<'a> {
    pub host: &'a str,
    pub role: Role,
    /// Devices the lab makes in the host besides `lo`: `eth0`, …, `tunl0`.
    pub devices: &'a [String],
}

/// The devices the lab makes in `host` besides `lo`, in whose names its sysctls may be set.
pub(crate) fn lab_devices(host: &Host) -> Vec<String> {
    host.interfaces
        .iter()
        .map(|i| i.name.clone())
        .chain((!host.tun_vips.is_empty()).then(|| TUN_DEVICE.to_owned()))
        .collect()
}

/// The device a TUN real server holds the VIP on (the lab makes it, or the kernel's ipip has it).
const TUN_DEVICE: &str = "tunl0";

/// Whether `name` is one of the engine's `net.ipv4.vs.*` settings rather than the kernel's.
pub(crate) fn is_engine(name: &str) -> bool {
    name.starts_with(ENGINE_PREFIX)
}

/// A director's `net.ipv4.vs.*` entries as its engine's settings (the rest are its host's).
pub(crate) fn engine_settings(p: &mut Problems<'_>, sysctls: Option<&RawSysctls>) -> ipvs::Sysctls {
    let mut settings = ipvs::Sysctls::default();
    for (text, value) in sysctls.into_iter().flatten() {
        let name = p.key_before(value.span());
        if !is_engine(text) || !v::sysctl_name(p, text, Some(name.clone())) {
            continue;
        }
        let leaf = &text[ENGINE_PREFIX.len()..];
        match known::engine_knob(leaf) {
            Some(e) => {
                if let Some(n) = typed(p, text, &e.knob, value) {
                    (e.set)(&mut settings, n);
                }
            }
            None => unknown_engine_knob(p, text, name, leaf),
        }
    }
    settings
}

fn unknown_engine_knob(p: &mut Problems<'_>, text: &str, name: Range<usize>, leaf: &str) {
    let emulated: Vec<&str> = known::ENGINE.iter().map(|e| e.knob.leaf).collect();
    if known::KERNEL_IPVS.contains(&leaf) {
        p.push(
            Some(name),
            format!("IPVS sysctl `{text}` is not emulated by lvslab's engines"),
            Some(format!("they take {}", suggest::list(&emulated))),
        );
    } else {
        let full: Vec<String> = emulated.iter().map(|l| format!("{ENGINE_PREFIX}{l}")).collect();
        p.push(
            Some(name),
            format!("unknown IPVS sysctl `{text}`"),
            suggest::did_you_mean(text, full.iter().map(String::as_str))
                .or_else(|| Some(format!("lvslab's engines take {}", suggest::list(&emulated)))),
        );
    }
}

/// One entry of a host's `sysctl` table: the value the lab will write, or `None` with the
/// problem reported.
pub(crate) fn host_value(
    p: &mut Problems<'_>,
    target: &Target<'_>,
    text: &str,
    value: &S<SysctlValue>,
) -> Option<String> {
    let name = p.key_before(value.span());
    if !v::sysctl_name(p, text, Some(name.clone())) {
        return None;
    }
    let Some(rest) = text.strip_prefix("net.") else {
        p.push(
            Some(name.clone()),
            format!("sysctl `{text}` is not a network sysctl"),
            Some("only `net.*` sysctls belong to a lab host's namespace; the others are the whole machine's".into()),
        );
        return None;
    };
    if is_engine(text) {
        p.push(
            Some(name.clone()),
            format!(
                "`{ENGINE_PREFIX}*` sysctls configure a director's IPVS, but \"{}\" is {}",
                target.host,
                role_word(target.role)
            ),
            Some("set it in the [director]'s `sysctl` table".into()),
        );
        return None;
    }
    let path = rest.replace('.', "/");
    let tree = tree::kernel();
    let lookup = lookup_path(p, tree, target, text, name.clone(), &path)?;
    if let Some(knob) = known::host_knob(text) {
        return typed(p, text, knob, value).map(|n| n.to_string());
    }
    let written = value.get_ref().to_sysctl_string();
    if written.chars().any(|c| c.is_control() && c != '\t') {
        p.push(
            span(value),
            format!("sysctl `{text}` = {written:?} holds a control character"),
            Some("write the value on one line".into()),
        );
        return None;
    }
    let Some(tree) = tree else {
        return Some(written); // nothing to check against
    };
    match tree.get(&lookup) {
        None => {
            unknown_host_knob(p, tree, text, name, &path, &lookup);
            None
        }
        Some(Node::Dir) => {
            p.push(
                Some(name.clone()),
                format!("`{text}` is a directory of sysctls, not a sysctl"),
                Some(format!("name one of the knobs under /proc/sys/net/{lookup}/")),
            );
            None
        }
        Some(Node::File { writable: false, .. }) => {
            p.push(Some(name.clone()), format!("sysctl `{text}` is read-only"), None);
            None
        }
        Some(Node::File {
            shape: Shape::Integers, ..
        }) if !matches!(value.get_ref(), SysctlValue::Int(_) | SysctlValue::Bool(_))
            && !tree::is_integers(&written) =>
        {
            p.push(
                span(value),
                format!("sysctl `{text}` = {written:?} is not a number"),
                Some("the kernel holds integers there (several are separated by spaces)".into()),
            );
            None
        }
        Some(Node::File { .. }) => Some(written),
    }
}

/// The path to look up for `path`. A device the lab makes (eth0, tunl0) is not there before
/// the lab runs, so its `conf`/`neigh` knobs are looked up on a device that is; a device it
/// does not make must be one the kernel makes in every namespace.
fn lookup_path(
    p: &mut Problems<'_>,
    tree: Option<&Tree>,
    target: &Target<'_>,
    text: &str,
    name: Range<usize>,
    path: &str,
) -> Option<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let [family @ ("ipv4" | "ipv6"), kind @ ("conf" | "neigh"), device, knob @ ..] = parts.as_slice() else {
        return Some(path.to_owned());
    };
    if knob.is_empty() {
        return Some(path.to_owned());
    }
    let lab_made = target.devices.iter().any(|d| d == device);
    let kernel_made =
        |t: &Tree| t.source == Source::FreshNamespace && t.get(&format!("{family}/{kind}/{device}")).is_some();
    let stand_in = match (*kind, *device) {
        ("conf", "all" | "default" | "lo") | ("neigh", "lo" | "default") => *device,
        // conf/default is what a new device starts from; neigh has no default in a new namespace.
        ("conf", _) if lab_made => "default",
        ("neigh", _) if lab_made => "lo",
        _ if tree.is_none_or(kernel_made) => *device,
        _ => {
            let mut devices: Vec<&str> = vec!["lo"];
            devices.extend(target.devices.iter().map(String::as_str));
            let reach_all = if *kind == "conf" {
                "; `all` and `default` reach every interface"
            } else {
                ""
            };
            p.push(
                Some(name.clone()),
                format!(
                    "host \"{}\" has no interface `{device}` for sysctl `{text}`",
                    target.host
                ),
                Some(format!("its interfaces: {}{reach_all}", suggest::list(&devices))),
            );
            return None;
        }
    };
    Some(format!("{family}/{kind}/{stand_in}/{}", knob.join("/")))
}

/// "unknown sysctl", with the nearest name under the deepest directory that exists.
fn unknown_host_knob(p: &mut Problems<'_>, tree: &Tree, text: &str, name: Range<usize>, path: &str, lookup: &str) {
    let user: Vec<&str> = path.split('/').collect();
    let parts: Vec<&str> = lookup.split('/').collect();
    let depth = (0..parts.len())
        .rev()
        .find(|&k| k == 0 || tree.get(&parts[..k].join("/")) == Some(Node::Dir))
        .unwrap_or(0);
    let dir = parts[..depth].join("/");
    let suggestion = suggest::closest(parts[depth], tree.children(&dir))
        .filter(|near| {
            let mut fixed = parts.clone();
            fixed[depth] = near;
            tree.get(&fixed.join("/")).is_some()
        })
        .map(|near| {
            let mut fixed = user.clone();
            fixed[depth] = near;
            format!("did you mean `net.{}`?", fixed.join("."))
        });
    let only_in_host =
        tree.source == Source::FreshNamespace && std::path::Path::new("/proc/sys/net").join(lookup).exists();
    let hint = suggestion.or_else(|| {
        Some(if only_in_host {
            "it exists only in the machine's first network namespace, not in a new one such as a lab host's".to_owned()
        } else {
            format!("the kernel lists its knobs under /proc/sys/net/{dir}/")
        })
    });
    p.push(
        Some(name.clone()),
        format!("unknown sysctl `{text}` (no /proc/sys/net/{path})"),
        hint,
    );
}

/// The integer a known knob is set to, or `None` with the problem reported.
fn typed(p: &mut Problems<'_>, name: &str, knob: &Knob, value: &S<SysctlValue>) -> Option<i64> {
    let takes = format!("`{}` takes {}", knob.leaf, knob.takes.describe());
    let n = match value.get_ref() {
        SysctlValue::Int(n) => *n,
        SysctlValue::Bool(b) if knob.takes == Takes::Bool => i64::from(*b),
        SysctlValue::Text(t) if t.trim().parse::<i64>().is_ok() => t.trim().parse().unwrap_or_default(),
        other => {
            let shown = match other {
                SysctlValue::Text(t) => format!("{t:?}"),
                SysctlValue::Bool(b) => b.to_string(),
                SysctlValue::Int(n) => n.to_string(),
            };
            p.push(
                span(value),
                format!("sysctl `{name}` = {shown} is not a number"),
                Some(format!("{takes}; {}", knob.meaning)),
            );
            return None;
        }
    };
    if !knob.takes.allows(n) {
        p.push(
            span(value),
            format!("sysctl `{name}` = {n} is out of range: {takes}"),
            Some(knob.meaning.to_owned()),
        );
        return None;
    }
    Some(n)
}

/// Whether `check` knows `leaf` as an engine setting (`conn_reuse_mode`, ...).
#[cfg(test)]
pub(crate) fn known_engine_leaf(leaf: &str) -> Option<&'static str> {
    known::engine_knob(leaf).map(|e| e.knob.leaf)
}

/// Checks a resolved host sysctl, lvslab's own defaults included, as a file's entry is checked.
#[cfg(test)]
pub(crate) fn vouch(host: &Host, name: &str, value: &str) -> Result<(), String> {
    let mut p = Problems::new("");
    let devices = lab_devices(host);
    let target = Target {
        host: &host.name,
        role: host.role,
        devices: &devices,
    };
    let value = S::new(0..0, SysctlValue::Text(value.to_owned()));
    match host_value(&mut p, &target, name, &value) {
        Some(_) if p.is_empty() => Ok(()),
        _ => Err(p.into_report().render("sysctl")),
    }
}

fn role_word(role: Role) -> &'static str {
    match role {
        Role::Client => "a client",
        Role::Director => "a director",
        Role::RealServer => "a real server",
        Role::Router => "a router",
    }
}

#[cfg(test)]
mod tests;
