//! From text to `RawScenario`: parse with toml_edit (keeps spans), then
//! deserialize each section and each `[[...]]` entry on its own, so a type
//! error in one does not hide problems in the others. Unknown keys are
//! collected with serde_ignored during that deserialization and located by
//! walking the toml_edit document along the ignored path.

use std::ops::Range;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml_edit::{Item, Value};

use super::diagnostic::Problems;
use super::raw::{self, RawScenario};
use super::suggest;

/// One step of a path inside a section.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

pub(crate) fn read(text: &str, problems: &mut Problems<'_>) -> Option<RawScenario> {
    let doc = match toml_edit::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            problems.push(
                e.span(),
                format!("invalid TOML: {}", e.message().trim_end()),
                Some(if mixes_director_forms(text) {
                    "give either one [director] table or [[director]] entries, not both".into()
                } else {
                    "see https://toml.io for the syntax".into()
                }),
            );
            return None;
        }
    };
    let mut raw = RawScenario {
        complete: true,
        ..Default::default()
    };
    let mut complete = true;
    for (key, item) in doc.as_table().iter() {
        let key_span = doc.as_table().key(key).and_then(|k| k.span());
        match key {
            "name" | "description" | "engine" | "vrrp" | "checkers" => {
                let value: Option<raw::S<String>> = section(item, key, "", key_span.clone(), problems);
                match key {
                    "name" => raw.top.name = value,
                    "description" => raw.top.description = value,
                    "vrrp" => raw.top.vrrp = value,
                    "checkers" => raw.top.checkers = value,
                    _ => raw.top.engine = value,
                }
            }
            "vrrp_instance" => {
                raw.vrrp_instance_span = item.span().or(key_span);
                match table(item, "[vrrp_instance]", "vrrp_instance", problems) {
                    Some(v) => raw.vrrp_instance = Some(v),
                    None => raw.complete = false,
                }
            }
            "vrrp_gateway" => {
                raw.vrrp_gateway_span = item.span().or(key_span);
                match table(item, "[vrrp_gateway]", "vrrp_gateway", problems) {
                    Some(v) => raw.vrrp_gateway = Some(v),
                    None => raw.complete = false,
                }
            }
            "vrrp_sync_group" => {
                raw.vrrp_sync_group_span = item.span().or(key_span);
                match table(item, "[vrrp_sync_group]", "vrrp_sync_group", problems) {
                    Some(v) => raw.vrrp_sync_group = Some(v),
                    None => raw.complete = false,
                }
            }
            "vrrp_script" => {
                for (v, span) in entries(item, "vrrp_script", &mut complete, problems) {
                    raw.vrrp_scripts.push(v);
                    raw.vrrp_script_spans.push(span);
                }
            }
            "service" => {
                // `[service]` (one) or `[[service]]` (one or more).
                if item.is_table() || item.is_inline_table() {
                    if let Some(v) = table(item, "[service]", "service", problems) {
                        raw.service = v;
                    }
                    raw.service_spans.push(item.span().or(key_span));
                } else {
                    for (v, span) in entries(item, "service", &mut complete, problems) {
                        if raw.service_spans.is_empty() {
                            raw.service = v;
                        } else {
                            raw.more_services.push(v);
                        }
                        raw.service_spans.push(span);
                    }
                }
            }
            "traffic" => {
                if let Some(v) = table(item, "[traffic]", "traffic", problems) {
                    raw.traffic = v;
                }
            }
            "expect" => {
                if let Some(v) = table(item, "[expect]", "expect", problems) {
                    raw.expect = v;
                }
            }
            "director" => {
                raw.director_span = item.span().or(key_span);
                // `[director]` (one) or `[[director]]` (one or more).
                if item.is_table() || item.is_inline_table() {
                    match table(item, "[director]", "director", problems) {
                        Some(d) => {
                            raw.directors.push(d);
                            raw.director_spans.push(item.span());
                        }
                        None => raw.complete = false,
                    }
                } else {
                    for (v, span) in entries(item, "director", &mut complete, problems) {
                        raw.directors.push(v);
                        raw.director_spans.push(span);
                    }
                }
            }
            "real_server" => {
                for (v, span) in entries(item, "real_server", &mut complete, problems) {
                    raw.real_servers.push(v);
                    raw.real_server_spans.push(span);
                }
            }
            "client" => {
                for (v, span) in entries(item, "client", &mut complete, problems) {
                    raw.clients.push(v);
                    raw.client_spans.push(span);
                }
            }
            "network" => {
                for (v, span) in entries(item, "network", &mut complete, problems) {
                    raw.networks.push(v);
                    raw.network_spans.push(span);
                }
            }
            "event" => {
                for (v, span) in entries(item, "event", &mut complete, problems) {
                    raw.events.push(v);
                    raw.event_spans.push(span);
                }
            }
            "router" => {
                for (v, span) in entries(item, "router", &mut complete, problems) {
                    raw.routers.push(v);
                    raw.router_spans.push(span);
                }
            }
            other => problems.push(
                key_span,
                format!("unknown key `{other}` at the top level"),
                suggest::did_you_mean(other, raw::known_keys("").iter().copied())
                    .or_else(|| Some(format!("known keys: {}", suggest::list(raw::known_keys(""))))),
            ),
        }
    }
    raw.complete &= complete;
    Some(raw)
}

/// TOML cannot hold `[director]` and `[[director]]` together; say so in our words.
fn mixes_director_forms(text: &str) -> bool {
    let header = |h: &str| text.lines().any(|l| l.trim_start().starts_with(h));
    header("[director]") && header("[[director]]")
}

/// A `[section]` (or `section = { ... }`).
fn table<T: DeserializeOwned>(item: &Item, label: &str, section_name: &str, problems: &mut Problems<'_>) -> Option<T> {
    if !(item.is_table() || item.is_inline_table()) {
        problems.push(
            item.span(),
            format!("`{section_name}` must be a table, found {}", item.type_name()),
            Some(format!("write it as a section: [{section_name}]")),
        );
        return None;
    }
    section(item, label, section_name, item.span(), problems)
}

/// Every `[[name]]` entry that deserializes, with its header span.
/// `complete` turns false when an entry is dropped or loses its name, since
/// references to it can then no longer be checked.
fn entries<T: DeserializeOwned>(
    item: &Item,
    name: &str,
    complete: &mut bool,
    problems: &mut Problems<'_>,
) -> Vec<(T, Option<Range<usize>>)> {
    let items: Vec<Item> = match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| Item::Table(t.clone())).collect(),
        Item::Value(Value::Array(a)) if a.iter().all(|v| v.is_inline_table()) => {
            a.iter().map(|v| Item::Value(v.clone())).collect()
        }
        other => {
            problems.push(
                other.span(),
                format!("`{name}` must be a list of tables, found {}", other.type_name()),
                Some(format!("write each entry as a [[{name}]] section")),
            );
            *complete = false;
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (index, entry) in items.iter().enumerate() {
        let label = entry_label(name, index, entry);
        if entry.get("name").is_some_and(|n| !n.is_str()) {
            *complete = false;
        }
        match section(entry, &label, name, entry.span(), problems) {
            Some(v) => out.push((v, entry.span())),
            None => *complete = false,
        }
    }
    out
}

/// `[[real_server]] "rs2"`, or `[[real_server]] #2` when it has no name.
fn entry_label(section_name: &str, index: usize, entry: &Item) -> String {
    match entry.get("name").and_then(|n| n.as_str()) {
        Some(name) => format!("[[{section_name}]] \"{name}\""),
        None => format!("[[{section_name}]] #{}", index + 1),
    }
}

/// Deserializes one item, reporting a type error (located at the offending
/// value) and every unknown key.
fn section<T: DeserializeOwned>(
    item: &Item,
    label: &str,
    section_name: &str,
    fallback_span: Option<Range<usize>>,
    problems: &mut Problems<'_>,
) -> Option<T> {
    // A type error drops only the offending key: report it, remove it, try
    // again, so every bad value in the section is reported (bounded by its key count).
    let mut current = item.clone();
    let max_attempts = item.as_table_like().map_or(1, |t| t.len() + 1);
    let mut reported_unknown = false;
    for _ in 0..max_attempts {
        let value = match current.clone() {
            Item::Table(t) => Value::InlineTable(t.into_inline_table()),
            Item::Value(v) => v,
            Item::ArrayOfTables(a) => Value::Array(a.into_array()),
            Item::None => return None,
        };
        let mut ignored: Vec<Vec<Step>> = Vec::new();
        let result = serde_ignored::deserialize(value.into_deserializer(), |path| ignored.push(steps(&path)));
        if !reported_unknown {
            reported_unknown = true;
            report_unknown(item, label, section_name, &ignored, fallback_span.clone(), problems);
        }
        let e = match result {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let span = e.span().or(fallback_span.clone());
        let field = span.as_ref().and_then(|s| key_at(item, s.start));
        let message = tidy_serde_message(e.message());
        let message = match &field {
            Some(f) => format!("wrong type for `{f}` in {label}: {message}"),
            None if section_name.is_empty() => {
                format!("wrong type for `{label}` at the top level: {message}")
            }
            None => format!("wrong type in {label}: {message}"),
        };
        problems.push(span, message, None);
        // Drop the top-level key that holds the bad value and retry without it.
        let top_key = field.as_ref().and_then(|f| f.split('.').next()).map(str::to_string);
        let removed = match (top_key, current.as_table_like_mut()) {
            (Some(k), Some(t)) => t.remove(&k).is_some(),
            _ => false,
        };
        if !removed {
            return None;
        }
    }
    None
}

fn report_unknown(
    item: &Item,
    label: &str,
    section_name: &str,
    ignored: &[Vec<Step>],
    fallback_span: Option<Range<usize>>,
    problems: &mut Problems<'_>,
) {
    for path in ignored {
        let (span, key, parent) = locate(item, path);
        let where_ = if parent.is_empty() {
            if section_name.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in {label}")
            }
        } else {
            format!("in {label} ({parent})")
        };
        let known = known_keys_at(section_name, path);
        problems.push(
            span.or(fallback_span.clone()),
            format!("unknown key `{key}` {where_}"),
            suggest::did_you_mean(&key, known.iter().copied())
                .or_else(|| (!known.is_empty()).then(|| format!("known keys: {}", suggest::list(known)))),
        );
    }
}

/// Known keys for the table a path ends in (`interfaces.0.x` → interface keys).
fn known_keys_at(section_name: &str, path: &[Step]) -> &'static [&'static str] {
    let in_interfaces = path.iter().any(|s| matches!(s, Step::Key(k) if k == "interfaces"));
    let in_check = matches!(path.first(), Some(Step::Key(k)) if k == "check");
    let in_origin = matches!(path.first(), Some(Step::Key(k)) if k == "origin");
    let in_track = |name: &str| matches!(path.first(), Some(Step::Key(k)) if k == name);
    if in_interfaces && path.len() > 1 {
        raw::known_keys("interface")
    } else if in_track("track_interface") && path.len() > 1 {
        raw::known_keys("track_interface")
    } else if in_track("track_script") && path.len() > 1 {
        raw::known_keys("track_script")
    } else if in_check && path.len() == 2 {
        raw::known_keys("check")
    } else if in_origin && path.len() == 2 {
        raw::known_keys("origin")
    } else if in_origin && path.len() == 4 {
        raw::known_keys("origin_default")
    } else if path.len() > 1 {
        &[]
    } else {
        raw::known_keys(section_name)
    }
}

fn steps(path: &serde_ignored::Path<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    let mut p = path;
    loop {
        match p {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                out.push(Step::Index(*index));
                p = parent;
            }
            serde_ignored::Path::Map { parent, key } => {
                out.push(Step::Key(key.clone()));
                p = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => p = parent,
        }
    }
    out.reverse();
    // Spanned<T> shows up as a map with private keys; drop them.
    out.retain(|s| !matches!(s, Step::Key(k) if k.starts_with("$__serde_spanned")));
    out
}

/// Span of the last key of `path` inside `item`, that key, and the path to its
/// parent written as `interfaces[1]`.
fn locate(item: &Item, path: &[Step]) -> (Option<Range<usize>>, String, String) {
    let mut current = item.clone();
    let mut span = None;
    let mut parent = String::new();
    let mut last_key = String::new();
    for (i, step) in path.iter().enumerate() {
        let is_last = i + 1 == path.len();
        match step {
            Step::Key(k) => {
                let Some(t) = current.as_table_like() else {
                    break;
                };
                let Some((key, child)) = t.get_key_value(k) else {
                    break;
                };
                span = key.span().or(span);
                last_key = k.clone();
                if !is_last {
                    if !parent.is_empty() {
                        parent.push('.');
                    }
                    parent.push_str(k);
                }
                current = child.clone();
            }
            Step::Index(n) => {
                let child = match &current {
                    Item::ArrayOfTables(a) => a.get(*n).map(|t| Item::Table(t.clone())),
                    Item::Value(Value::Array(a)) => a.get(*n).map(|v| Item::Value(v.clone())),
                    _ => None,
                };
                let Some(child) = child else { break };
                span = child.span().or(span);
                parent.push_str(&format!("[{}]", n + 1));
                current = child;
            }
        }
    }
    if last_key.is_empty() {
        last_key = path
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Key(k) => Some(k.clone()),
                Step::Index(_) => None,
            })
            .unwrap_or_default();
    }
    (span, last_key, parent)
}

/// Dotted key path of the innermost value in `item` whose span holds `offset`.
fn key_at(item: &Item, offset: usize) -> Option<String> {
    fn walk(item: &Item, offset: usize, path: &mut Vec<String>) -> bool {
        if let Some(t) = item.as_table_like() {
            for (k, child) in t.iter() {
                let inside = child
                    .span()
                    .is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1));
                let key_hit = t
                    .key(k)
                    .and_then(|key| key.span())
                    .is_some_and(|s| s.start <= offset && offset < s.end);
                if inside || key_hit {
                    path.push(k.to_string());
                    walk(child, offset, path);
                    return true;
                }
                // Tables have header spans only; look inside them too.
                if child.is_table_like() {
                    path.push(k.to_string());
                    if walk(child, offset, path) {
                        return true;
                    }
                    path.pop();
                }
            }
        }
        false
    }
    let mut path = Vec::new();
    walk(item, offset, &mut path).then(|| path.join("."))
}

/// serde's messages name Rust types; say it in TOML words.
fn tidy_serde_message(message: &str) -> String {
    message
        .trim_end()
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number")
        .replace("expected a boolean", "expected true or false")
        .replace("expected a string", "expected a string (in quotes)")
        .replace("expected a sequence", "expected a list [ ... ]")
        .replace("expected a map", "expected a table { ... }")
        .replace(
            "data did not match any variant of untagged enum RawSources",
            "expected a count or a list of addresses",
        )
        .replace(
            "data did not match any variant of untagged enum SysctlValue",
            "expected a string, integer or boolean",
        )
}
