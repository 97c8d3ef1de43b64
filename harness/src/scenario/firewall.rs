//! A host's `nftables` rules: the placeholder lvslab fills in (`{vip}`), and the way back from
//! a place in the rules nft reads to the place in the scenario file, so that `check` reports
//! nft's complaint at the line the user wrote.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::Path;

use super::diagnostic::{CheckReport, Problems};
use super::document;
use super::model::{Role, Scenario};
use super::raw::{RawScenario, S};
use crate::nft;

/// Stands for the service VIP in a host's rules.
pub const VIP_PLACEHOLDER: &str = "{vip}";

/// Rules with the placeholder filled in, and where each piece came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub script: String,
    /// (start in `script`, length there, start in the written rules, length written) of each
    /// filled placeholder.
    filled: Vec<(usize, usize, usize, usize)>,
}

impl Filled {
    /// Where byte `at` of the script was written in the rules (a filled placeholder: its start).
    pub fn written_offset(&self, at: usize) -> usize {
        let mut shift: isize = 0;
        for &(script_start, script_len, written_start, written_len) in &self.filled {
            if at < script_start {
                break;
            }
            if at < script_start + script_len {
                return written_start;
            }
            shift += written_len as isize - script_len as isize;
        }
        (at as isize + shift).max(0) as usize
    }
}

/// `rules` with every `{vip}` replaced by `vip`.
pub fn fill(rules: &str, vip: Ipv4Addr) -> Filled {
    let vip = vip.to_string();
    let mut script = String::with_capacity(rules.len());
    let mut filled = Vec::new();
    let mut rest = 0;
    for (at, _) in rules.match_indices(VIP_PLACEHOLDER) {
        script.push_str(&rules[rest..at]);
        filled.push((script.len(), vip.len(), at, VIP_PLACEHOLDER.len()));
        script.push_str(&vip);
        rest = at + VIP_PLACEHOLDER.len();
    }
    script.push_str(&rules[rest..]);
    Filled { script, filled }
}

/// Byte offset in `script` of nft's 1-based `line` and `column` (clamped to the script).
pub fn script_offset(script: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match script[start..].find('\n') {
            Some(nl) => start += nl + 1,
            None => return script.len(),
        }
    }
    let line_len = script[start..].find('\n').unwrap_or(script.len() - start);
    start + column.saturating_sub(1).min(line_len)
}

/// For each byte of a TOML string's value, where it sits in the file: `raw` is the string as
/// written (quotes included) starting at byte `at` of the file, `value` what it means. `None`
/// when the written form does not decode to `value` here (the caller then points at the string).
pub fn value_positions(raw: &str, at: usize, value: &str) -> Option<Vec<usize>> {
    let (delim, literal) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", false)
    } else if raw.starts_with("'''") {
        ("'''", true)
    } else if raw.starts_with('"') {
        ("\"", false)
    } else if raw.starts_with('\'') {
        ("'", true)
    } else {
        return None;
    };
    let mut body = raw.get(delim.len()..raw.len().checked_sub(delim.len())?)?;
    let mut base = at + delim.len();
    if delim.len() == 3 {
        // A newline right after the opening quotes is not part of the value.
        for nl in ["\r\n", "\n"] {
            if let Some(b) = body.strip_prefix(nl) {
                body = b;
                base += nl.len();
                break;
            }
        }
    }
    let mut decoded = String::with_capacity(body.len());
    let mut positions = Vec::with_capacity(body.len());
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if literal || c != '\\' {
            decoded.push(c);
            positions.extend(std::iter::repeat_n(base + i, c.len_utf8()));
            continue;
        }
        let (_, e) = chars.next()?;
        let out = match e {
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            '"' => '"',
            '\\' => '\\',
            'u' | 'U' => {
                let digits = if e == 'u' { 4 } else { 8 };
                let hex: String = (0..digits).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            // A line-ending backslash: the newline and the whitespace after it vanish.
            w if w.is_whitespace() => {
                while chars.peek().is_some_and(|(_, n)| n.is_whitespace()) {
                    chars.next();
                }
                continue;
            }
            _ => return None,
        };
        decoded.push(out);
        positions.extend(std::iter::repeat_n(base + i, out.len_utf8()));
    }
    (decoded == value).then_some(positions)
}

/// One host's rules as written in the file, filled in.
#[derive(Debug, Clone)]
pub struct RulesSource {
    pub host: String,
    /// The interfaces the host will have (nft refuses `iif` on one that does not exist).
    pub interfaces: Vec<String>,
    pub filled: Filled,
    /// The `nftables` value's span in the file, and the file offset of each byte of its value.
    span: Range<usize>,
    positions: Option<Vec<usize>>,
}

impl RulesSource {
    /// The file offset of nft's line and column in the filled script.
    pub fn file_offset(&self, line: usize, column: usize) -> usize {
        let at = self
            .filled
            .written_offset(script_offset(&self.filled.script, line, column));
        match &self.positions {
            Some(p) => p.get(at).or(p.last()).copied().unwrap_or(self.span.start),
            None => self.span.start,
        }
    }
}

/// Every host's `nftables` in `text`, paired with the resolved hosts by role and order.
pub fn sources(text: &str, scenario: &Scenario) -> Vec<RulesSource> {
    let mut ignored = Problems::new(text);
    let Some(raw) = document::read(text, &mut ignored) else {
        return Vec::new();
    };
    written_rules(&raw)
        .into_iter()
        .filter_map(|(role, index, rules)| {
            let host = scenario.hosts.iter().filter(|h| h.role == role).nth(index)?;
            let span = rules.span();
            let filled = fill(rules.get_ref(), scenario.service().vip);
            let positions = text
                .get(span.clone())
                .and_then(|raw| value_positions(raw, span.start, rules.get_ref()));
            Some(RulesSource {
                host: host.name.clone(),
                interfaces: host.interfaces.iter().map(|i| i.name.clone()).collect(),
                filled,
                span,
                positions,
            })
        })
        .collect()
}

/// (role, index among the hosts of that role, rules) for every host whose table has `nftables`.
fn written_rules(raw: &RawScenario) -> Vec<(Role, usize, &S<String>)> {
    let clients = raw.clients.iter().map(|c| (Role::Client, c.nftables.as_ref()));
    let directors = raw.directors.iter().map(|d| (Role::Director, d.nftables.as_ref()));
    let servers = raw.real_servers.iter().map(|r| (Role::RealServer, r.nftables.as_ref()));
    let routers = raw.routers.iter().map(|r| (Role::Router, r.nftables.as_ref()));
    let mut seen: std::collections::HashMap<Role, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (role, rules) in clients.chain(directors).chain(servers).chain(routers) {
        let index = seen.entry(role).or_default();
        if let Some(rules) = rules {
            out.push((role, *index, rules));
        }
        *index += 1;
    }
    out
}

/// nft's verdict on every host's rules (`nft -c` in a namespace of its own), each complaint
/// at its place in `text`; empty when every host's rules load.
pub fn check_rules(text: &str, scenario: &Scenario) -> CheckReport {
    check_rules_with(text, scenario, nft::check)
}

/// [`check_rules`] with `nft` standing for `nft::check`.
fn check_rules_with(
    text: &str,
    scenario: &Scenario,
    nft: impl Fn(&str, &[String]) -> Result<Vec<nft::NftError>, String>,
) -> CheckReport {
    let mut p = Problems::new(text);
    for source in sources(text, scenario) {
        match nft(&source.filled.script, &source.interfaces) {
            Ok(errors) => {
                for e in errors {
                    let at = source.file_offset(e.line, e.column);
                    p.push(
                        Some(at..at),
                        format!("nft rejects the nftables of host \"{}\": {}", source.host, e.message),
                        e.source_line.map(|l| format!("nft read: {}", l.trim())),
                    );
                }
            }
            Err(unavailable) => {
                let key = p.key_before(source.span.clone());
                p.push(
                    Some(key),
                    format!("cannot check the nftables of host \"{}\": {unavailable}", source.host),
                    Some("lvslab checks and applies host firewalls with the nft command".into()),
                );
            }
        }
    }
    p.into_report()
}

/// [`check_rules`] on the file `path` was loaded from.
pub fn check_rules_in(path: &Path, scenario: &Scenario) -> CheckReport {
    match std::fs::read_to_string(path) {
        Ok(text) => check_rules(&text, scenario),
        Err(e) => CheckReport::single(format!("cannot read {}: {e}", path.display()), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    const SCENARIO: &str = r#"[service]
vip = "192.0.2.100"
mode = "dr"

[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
nftables = """
table inet filter {
  chain input {
    type filter hook input priority filter;
    ip daddr {vip} tcp dport 80 counter dorp
  }
}
"""

[[client]]
name = "c1"
[[client]]
name = "c2"
nftables = "table ip out { chain o { type filter hook output priority 0; ip daddr 10.9.9.9 drop; }; }"
"#;

    #[test]
    fn hosts_carry_their_rules_with_the_vip_filled_in() {
        let s = crate::scenario::parse(SCENARIO, "fw.toml").unwrap_or_else(|r| panic!("{r}"));
        let rs2 = s.host("rs2").unwrap();
        let rules = rs2.nftables.as_deref().unwrap();
        assert!(rules.contains("ip daddr 192.0.2.100 tcp dport 80"), "{rules}");
        assert_eq!(s.host("rs1").unwrap().nftables, None);
        // Paired with the model's hosts by role and position among them.
        let sources = sources(SCENARIO, &s);
        let hosts: Vec<&str> = sources.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["c2", "rs2"]);
        assert_eq!(sources[1].interfaces, ["eth0"]);
    }

    #[test]
    fn empty_rules_are_refused_at_the_key() {
        let text = SCENARIO.replacen("nftables = \"\"\"", "nftables = \"   \"\nx = \"\"\"", 1);
        let text = text.replacen("x = \"\"\"", "description2 = \"\"\"", 1);
        let report = crate::scenario::parse(&text, "fw.toml").unwrap_err();
        let p = report
            .problems
            .iter()
            .find(|p| p.message.contains("is empty"))
            .unwrap_or_else(|| panic!("{report}"));
        assert_eq!((p.line, p.message.as_str()), (9, "`nftables` of host \"rs2\" is empty"));
    }

    #[test]
    fn check_reports_nft_at_the_line_written() {
        // Needs nft (ci/install.sh installs it).
        let s = crate::scenario::parse(SCENARIO, "fw.toml").unwrap();
        let report = check_rules(SCENARIO, &s);
        assert_eq!(report.problems.len(), 1, "{report}");
        let p = &report.problems[0];
        // nft stops at the newline after `dorp`: the end of line 13 as the file has it,
        // `{vip}` and not the filled address.
        let line13 = SCENARIO.lines().nth(12).unwrap();
        assert_eq!((p.line, p.column), (13, line13.len() + 1), "{report}");
        assert_eq!(
            p.message,
            "nft rejects the nftables of host \"rs2\": syntax error, unexpected newline"
        );
        assert_eq!(
            p.hint.as_deref(),
            Some("nft read: ip daddr 192.0.2.100 tcp dport 80 counter dorp")
        );
        let good = SCENARIO.replace("dorp", "drop");
        let s = crate::scenario::parse(&good, "fw.toml").unwrap();
        assert!(check_rules(&good, &s).is_empty());
    }

    #[test]
    fn without_nft_check_says_so_at_the_key() {
        let s = crate::scenario::parse(SCENARIO, "fw.toml").unwrap();
        let report = check_rules_with(SCENARIO, &s, |_, _| Err("nft is not installed".into()));
        let at: Vec<(usize, usize)> = report.problems.iter().map(|p| (p.line, p.column)).collect();
        // rs2's `nftables = """` and c2's `nftables = "..."`.
        assert_eq!(at, [(9, 1), (22, 1)], "{report}");
        assert_eq!(
            report.problems[0].message,
            "cannot check the nftables of host \"rs2\": nft is not installed"
        );
    }

    #[test]
    fn the_vip_is_filled_in_and_offsets_map_back() {
        let f = fill("ip daddr {vip} drop; ip saddr {vip} accept", VIP);
        assert_eq!(f.script, "ip daddr 192.0.2.100 drop; ip saddr 192.0.2.100 accept");
        // Before, inside and after the first filled address; after the second.
        assert_eq!(f.written_offset(3), 3);
        assert_eq!(f.written_offset(12), 9);
        assert_eq!(f.written_offset(f.script.find("drop").unwrap()), 15);
        assert_eq!(f.written_offset(f.script.find("accept").unwrap()), 36);
    }

    #[test]
    fn nft_lines_and_columns_are_script_offsets() {
        let script = "table ip t {\n  chain c {\n}";
        assert_eq!(script_offset(script, 1, 1), 0);
        assert_eq!(script_offset(script, 2, 3), 15);
        // Past the line's end: its end; past the last line: the script's end.
        assert_eq!(script_offset(script, 1, 99), 12);
        assert_eq!(script_offset(script, 9, 1), script.len());
    }

    #[test]
    fn string_forms_map_each_byte_to_the_file() {
        // Multi-line basic: the first newline is dropped; escapes are one byte of value.
        let raw = "\"\"\"\nab\\\"c\"\"\"";
        let p = value_positions(raw, 10, "ab\"c").unwrap();
        assert_eq!(p, vec![14, 15, 16, 18]);
        // Literal: verbatim.
        let p = value_positions("'a\\b'", 0, "a\\b").unwrap();
        assert_eq!(p, vec![1, 2, 3]);
        // A line-ending backslash swallows the newline and the indentation.
        let raw = "\"\"\"a \\\n   b\"\"\"";
        let p = value_positions(raw, 0, "a b").unwrap();
        assert_eq!(p, vec![3, 4, 10]);
        // A form this does not understand falls back to the string's start.
        assert_eq!(value_positions("\"a\"", 0, "b"), None);
    }
}
