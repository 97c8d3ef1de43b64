//! keepalived's `virtual_server_group NAME { ... }`: the VIP:port pairs, address ranges and
//! firewall marks one `virtual_server group NAME` serves, each an IPVS service of its own with
//! the virtual server's settings and real servers. Read as keepalived 2.2.7 reads them
//! (check/check_data.c `alloc_vsg_entry`, check_parser.c `vsg_handler`, lib/utils.c
//! `inet_stor`), each entry it skips a warning in `keepalived -t`'s words at its line:
//!
//! - `IP [PORT]`: one address; a port of 0 (or none) is "no port".
//! - `A.B.C.D-E PORT`: the last octet runs from D to E (E at most 255, above D); IPv6
//!   `X::Y-Z` runs the last 16-bit group, in hex.
//! - `FIRST-LAST PORT`: a full range (LAST not below FIRST).
//! - `NET/LEN PORT`: every address of the prefix (no host bits set).
//! - `fwmark N [inet|inet6]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::{ParseError, Warning};
use super::keepalived::Node;
use super::keepalived_numbers::LineReader;

/// One `virtual_server_group` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsGroup {
    pub name: String,
    pub line: usize,
    pub entries: Vec<GroupEntry>,
}

/// One line of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub line: usize,
    /// The line's words, as written.
    pub written: String,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The addresses `first..=last` (the same for one address), each on `port` (`None`: 0).
    Addresses {
        first: IpAddr,
        last: IpAddr,
        port: Option<u16>,
    },
    /// `fwmark N`, with its family when given (`inet` is true, `inet6` false).
    Fwmark { mark: u32, inet: Option<bool> },
}

impl GroupEntry {
    /// How many IPVS services keepalived makes of it (one per address of a range).
    pub fn size(&self) -> u128 {
        match self.target {
            Target::Addresses { first, last, .. } => ordinal(last) - ordinal(first) + 1,
            Target::Fwmark { .. } => 1,
        }
    }

    /// The `n`th address of the entry (`n < size()`); `None` for a fwmark entry.
    pub fn address(&self, n: u128) -> Option<IpAddr> {
        match self.target {
            Target::Addresses { first, .. } => Some(match first {
                IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(n as u32))),
                IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(n))),
            }),
            Target::Fwmark { .. } => None,
        }
    }

    /// keepalived's `format_vsge`: `10.0.0.1,80`, `10.0.0.1-10.0.0.3,80`, `FWM 5`.
    pub fn describe(&self) -> String {
        match self.target {
            Target::Fwmark { mark, .. } => format!("FWM {mark}"),
            Target::Addresses { first, last, port } if first != last => {
                format!("{first}-{last},{}", port.unwrap_or(0))
            }
            Target::Addresses { first, port, .. } => format!("{first},{}", port.unwrap_or(0)),
        }
    }
}

impl VsGroup {
    pub fn has_addresses(&self) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e.target, Target::Addresses { .. }))
    }

    pub fn has_fwmarks(&self) -> bool {
        self.entries.iter().any(|e| matches!(e.target, Target::Fwmark { .. }))
    }

    /// The address entries in order, then the fwmark entries: the order keepalived adds
    /// their services in (ipvswrapper.c `ipvs_group_cmd`).
    pub fn in_ipvs_order(&self) -> impl Iterator<Item = &GroupEntry> {
        let addresses = self
            .entries
            .iter()
            .filter(|e| matches!(e.target, Target::Addresses { .. }));
        addresses.chain(
            self.entries
                .iter()
                .filter(|e| matches!(e.target, Target::Fwmark { .. })),
        )
    }
}

fn ordinal(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// `virtual_server_group NAME { ... }`; `None` when keepalived removes it (no entries left,
/// or IPv4, IPv6 and a fwmark without family together). `Err` where `keepalived -t` stops.
pub(super) fn read(node: &Node, warnings: &mut Vec<Warning>) -> Result<Option<VsGroup>, ParseError> {
    let Some(name) = node.args.first().cloned() else {
        return Err(ParseError::new(node.line, "expected `virtual_server_group NAME {`"));
    };
    let mut group = VsGroup {
        name,
        line: node.line,
        entries: Vec::new(),
    };
    let (mut v4, mut v6, mut fwmark_no_family) = (false, false, false);
    for child in node.children.iter().flatten() {
        let mut words = vec![child.keyword.as_str()];
        words.extend(child.args.iter().map(String::as_str));
        let target = if child.keyword == "fwmark" {
            fwmark(child, &group.name, warnings)?
        } else {
            addresses(child.line, &words, warnings)
        };
        let Some(target) = target else { continue };
        match target {
            Target::Fwmark { inet: None, .. } => fwmark_no_family = true,
            Target::Fwmark { inet: Some(true), .. } => v4 = true,
            Target::Fwmark { inet: Some(false), .. } => v6 = true,
            Target::Addresses { first, .. } => match first {
                IpAddr::V4(_) => v4 = true,
                IpAddr::V6(_) => v6 = true,
            },
        }
        group.entries.push(GroupEntry {
            line: child.line,
            written: words.join(" "),
            target,
        });
    }
    let name = &group.name;
    if group.entries.is_empty() {
        warnings.push(Warning::new(
            node.end_line,
            format!("virtual server group {name} has no entries - removing"),
        ));
        return Ok(None);
    }
    if v4 && v6 && fwmark_no_family {
        warnings.push(Warning::new(
            node.end_line,
            format!("virtual server group {name} cannot have IPv4, IPv6 and fwmark without family - removing"),
        ));
        return Ok(None);
    }
    Ok(Some(group))
}

/// `fwmark N [inet|inet6]`.
fn fwmark(child: &Node, group: &str, warnings: &mut Vec<Warning>) -> Result<Option<Target>, ParseError> {
    let Some(value) = child.args.first() else {
        return Err(ParseError::new(
            child.line,
            "*** Configuration line starting `fwmark` is missing a parameter after keyword `fwmark` at word position 2 (keepalived -t stops here)",
        ));
    };
    let mut r = LineReader {
        line: child.line,
        warnings,
    };
    let Some(mark) = r.unsigned(value, 0, u32::MAX) else {
        r.warn(format!(
            "({group}): fwmark '{value}' must be in [0, {}] - ignoring",
            u32::MAX
        ));
        return Ok(None);
    };
    let inet = match child.args.get(1).map(String::as_str) {
        None => None,
        Some("inet") => Some(true),
        Some("inet6") => Some(false),
        Some(other) => {
            r.warn(format!("({group}): fwmark '{mark}' family {other} unknown - ignoring"));
            return Ok(None);
        }
    };
    Ok(Some(Target::Fwmark { mark, inet }))
}

/// `IP[-END|/LEN] [PORT]`, as `alloc_vsg_entry` reads it under `keepalived -t`.
fn addresses(line: usize, words: &[&str], warnings: &mut Vec<Warning>) -> Option<Target> {
    let text = words[0];
    // A port of 0 (any number of zeros) is no port.
    let port_text = words.get(1).copied().filter(|p| !p.bytes().all(|b| b == b'0'));
    let mut r = LineReader { line, warnings };
    let invalid = |r: &mut LineReader| {
        let port = port_text.map_or(String::new(), |p| format!("/port/{p}"));
        r.warn(format!(
            "Invalid virtual server group IP address {text} {port} - skipping"
        ));
    };
    let port = match port_text {
        Some(p) => match r.unsigned(p, 1, 65535) {
            Some(p) => Some(p as u16),
            None => {
                invalid(&mut r);
                return None;
            }
        },
        None => None,
    };
    let v6 = text.contains(':');
    let base = text.split(['-', '/']).next().unwrap_or("");
    let Some(first) = parse_family(base, v6) else {
        invalid(&mut r);
        return None;
    };
    let single = Target::Addresses {
        first,
        last: first,
        port,
    };
    if let Some((_, mask)) = text.split_once('/') {
        let max = if v6 { 128 } else { 32 };
        let len = match mask.parse::<u32>() {
            Ok(l) if l > 0 && l <= max && mask.bytes().all(|b| b.is_ascii_digit()) => l,
            _ => {
                r.warn(format!("Invalid netmask - {text} - skipping"));
                return None;
            }
        };
        let host_bits = max - len;
        let host_mask: u128 = if host_bits == 0 { 0 } else { (1u128 << host_bits) - 1 };
        let start = ordinal(first);
        if start & host_mask != 0 {
            r.warn(format!("Address mask bits not empty - {text} - skipping"));
            return None;
        }
        let last = from_ordinal(start | host_mask, v6);
        return Some(Target::Addresses { first, last, port });
    }
    let Some((_, end)) = text.split_once('-') else {
        return Some(single);
    };
    // A full range when the end is an address of the family (it has a `.` or a `:`).
    if (!v6 && end.contains('.')) || (v6 && end.contains(':')) {
        let Some(last) = end.parse::<IpAddr>().ok() else {
            r.warn(format!("Invalid range end {text} - skipping"));
            return None;
        };
        if last.is_ipv6() != v6 {
            r.warn(format!("Range address families do not match {text} - skipping"));
            return None;
        }
        if ordinal(last) < ordinal(first) {
            r.warn(format!(
                "Address range end is less than address range start - {text} - skipping"
            ));
            return None;
        }
        return Some(Target::Addresses { first, last, port });
    }
    // The last octet (IPv4, decimal) or 16-bit group (IPv6, hex), as strtoul reads it.
    let radix = if v6 { 16 } else { 10 };
    let digits = end.len() - end.trim_start_matches(|c: char| c.is_digit(radix)).len();
    let (number, rest) = end.split_at(digits);
    if !rest.is_empty() {
        r.warn(format!(
            "Virtual server group range '{text}' has extra characters at end '{rest}'"
        ));
        return None;
    }
    let limit = if v6 { 0xffff } else { 255 };
    let range = match u128::from_str_radix(if number.is_empty() { "0" } else { number }, radix) {
        Ok(v) if v <= limit => v,
        _ => {
            r.warn(format!("Virtual server group range '{text}' end '{end}' too large"));
            return None;
        }
    };
    let start = ordinal(first);
    let low = start & limit;
    if low >= range {
        r.warn(format!(
            "Address range end is not greater than address range start - {text} - skipping"
        ));
        return None;
    }
    let last = from_ordinal(start - low + range, v6);
    Some(Target::Addresses { first, last, port })
}

fn parse_family(text: &str, v6: bool) -> Option<IpAddr> {
    match v6 {
        true => text.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        false => text.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

fn from_ordinal(n: u128, v6: bool) -> IpAddr {
    match v6 {
        true => IpAddr::V6(Ipv6Addr::from(n)),
        false => IpAddr::V4(Ipv4Addr::from(n as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::keepalived;
    use super::*;

    fn group(body: &str) -> (Option<VsGroup>, Vec<String>) {
        let text = format!("virtual_server_group G {{\n{body}}}\n");
        let config = keepalived::parse(&text).unwrap();
        let said = config.warnings.iter().map(|w| w.to_string()).collect();
        (config.groups.into_iter().next(), said)
    }

    fn v4(a: &str) -> IpAddr {
        a.parse().unwrap()
    }

    #[test]
    fn every_entry_form_reads_to_its_addresses() {
        let (g, said) = group(
            "  192.168.1.10 80\n  192.168.1.20-22 443\n  10.0.2.1-10.0.2.3 81\n  10.0.1.0/30 8080\n  \
             10.0.0.9 000\n  10.0.0.8\n  fwmark 5\n  fwmark 6 inet\n",
        );
        let g = g.expect("a group");
        assert!(said.iter().all(|w| w.contains("used by no virtual_server")), "{said:?}");
        let sizes: Vec<u128> = g.entries.iter().map(GroupEntry::size).collect();
        assert_eq!(sizes, [1, 3, 3, 4, 1, 1, 1, 1]);
        assert_eq!(
            g.entries[1].target,
            Target::Addresses {
                first: v4("192.168.1.20"),
                last: v4("192.168.1.22"),
                port: Some(443)
            }
        );
        assert_eq!(g.entries[3].address(3), Some(v4("10.0.1.3")));
        assert_eq!(g.entries[1].describe(), "192.168.1.20-192.168.1.22,443");
        assert_eq!(g.entries[4].describe(), "10.0.0.9,0");
        assert_eq!(g.entries[6].describe(), "FWM 5");
        assert_eq!(
            g.entries[7].target,
            Target::Fwmark {
                mark: 6,
                inet: Some(true)
            }
        );
        let order: Vec<usize> = g.in_ipvs_order().map(|e| e.line).collect();
        assert_eq!(order, [2, 3, 4, 5, 6, 7, 8, 9]);
        // IPv6: the last group's range is hex; a prefix counts every address.
        let (g, _) =
            group("  fwmark 9\n  2001:db8::1-1f 80\n  2001:db8::100/120 80\n  2001:db8::1:1-2001:db8::1:3 80\n");
        let g = g.expect("an IPv6 group");
        let sizes: Vec<u128> = g.entries.iter().map(GroupEntry::size).collect();
        assert_eq!(sizes, [1, 31, 256, 3]);
        assert_eq!(g.entries[1].address(30), Some(v4("2001:db8::1f")));
        let order: Vec<usize> = g.in_ipvs_order().map(|e| e.line).collect();
        assert_eq!(order, [3, 4, 5, 2], "addresses first, then fwmarks");
    }

    #[test]
    fn bad_entries_are_skipped_in_keepalived_words() {
        let (g, said) = group(
            "  192.168.1.30-20 80\n  192.168.1.30-300 80\n  192.168.1.30-5x 80\n  192.168.1.40 70000\n  \
             bogus\n  fwmark -1\n  fwmark 6 inet7\n  10.0.3.1/33 80\n  10.0.3.1/24 80\n  10.0.4.9-10.0.4.2 80\n  \
             10.0.0.6-bogus.1 80\n  10.0.0.7-::1 80\n  10.0.0.1 80\n",
        );
        assert_eq!(g.unwrap().entries.len(), 1);
        for expected in [
            "line 2: Address range end is not greater than address range start - 192.168.1.30-20 - skipping",
            "line 3: Virtual server group range '192.168.1.30-300' end '300' too large",
            "line 4: Virtual server group range '192.168.1.30-5x' has extra characters at end 'x'",
            "line 5: number '70000' outside range [1, 65535]",
            "line 5: Invalid virtual server group IP address 192.168.1.40 /port/70000 - skipping",
            "line 6: Invalid virtual server group IP address bogus  - skipping",
            "line 7: negative number '-1'",
            "line 7: (G): fwmark '-1' must be in [0, 4294967295] - ignoring",
            "line 8: (G): fwmark '6' family inet7 unknown - ignoring",
            "line 9: Invalid netmask - 10.0.3.1/33 - skipping",
            "line 10: Address mask bits not empty - 10.0.3.1/24 - skipping",
            "line 11: Address range end is less than address range start - 10.0.4.9-10.0.4.2 - skipping",
            "line 12: Invalid range end 10.0.0.6-bogus.1 - skipping",
            "line 13: Invalid virtual server group IP address 10.0.0.7-::1 /port/80 - skipping",
        ] {
            assert!(said.iter().any(|w| w == expected), "missing {expected:?} in {said:#?}");
        }
    }

    #[test]
    fn an_empty_or_mixed_group_is_removed_and_a_bare_fwmark_stops_keepalived() {
        let (g, said) = group("  bogus\n");
        assert!(g.is_none());
        assert!(
            said.contains(&"line 3: virtual server group G has no entries - removing".to_string()),
            "{said:?}"
        );
        let (g, said) = group("  10.0.0.1 80\n  2001:db8::1 80\n  fwmark 3\n");
        assert!(g.is_none());
        assert!(
            said.contains(
                &"line 5: virtual server group G cannot have IPv4, IPv6 and fwmark without family - removing"
                    .to_string()
            ),
            "{said:?}"
        );
        let err = keepalived::parse("virtual_server_group G {\n  fwmark\n}\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }
}
