//! SNMP and netstat counters of a namespace (/proc/thread-self/net/{snmp,netstat}) by the
//! names the diagnosis reads, and their increase over a run.
//!
//! Naming: `Ip`, `IpExt` and `TcpExt` fields keep their bare names (`InAddrErrors`,
//! `IPReversePathFilter`, `ListenDrops`); every other section is prefixed with its name
//! (`TcpInCsumErrors`, `UdpInCsumErrors`, `IcmpInErrors`), so nothing collides. A bare name
//! that is already taken falls back to the prefixed form. Negative values (`Tcp MaxConn -1`)
//! are limits, not counters, and are left out.

use std::collections::BTreeMap;

use super::error::ObserveError;
use crate::diagnose::evidence::HostEvidence;

/// Files read, relative to /proc/thread-self/net (the calling thread's namespace).
pub const COUNTER_FILES: [&str; 2] = ["snmp", "netstat"];

/// Sections whose field names are used bare.
const BARE_SECTIONS: [&str; 3] = ["Ip", "IpExt", "TcpExt"];

/// Reads and parses both counter files. Must run on a thread inside the namespace.
pub fn read_counters(host: &str) -> Result<BTreeMap<String, u64>, ObserveError> {
    let mut counters = BTreeMap::new();
    for file in COUNTER_FILES {
        let path = format!("/proc/thread-self/net/{file}");
        let text = std::fs::read_to_string(&path).map_err(|e| ObserveError::os(host, format!("read {path}"), e))?;
        parse_counter_table_into(&path, &text, &mut counters)?;
    }
    Ok(counters)
}

/// Parses the snmp/netstat layout: pairs of `Section: Name Name ...` / `Section: 1 2 ...`
/// lines. `file` only names the source in errors.
pub fn parse_counter_table(file: &str, text: &str) -> Result<BTreeMap<String, u64>, ObserveError> {
    let mut counters = BTreeMap::new();
    parse_counter_table_into(file, text, &mut counters)?;
    Ok(counters)
}

fn parse_counter_table_into(file: &str, text: &str, counters: &mut BTreeMap<String, u64>) -> Result<(), ObserveError> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    while let Some((header_no, header)) = lines.next() {
        let (section, names) = split_section(file, header_no + 1, header)?;
        let Some((values_no, values_line)) = lines.next() else {
            return Err(ObserveError::parse(
                file,
                header_no + 1,
                format!("section {section} has names but no values line"),
            ));
        };
        let (value_section, values) = split_section(file, values_no + 1, values_line)?;
        if value_section != section {
            return Err(ObserveError::parse(
                file,
                values_no + 1,
                format!("expected the values of section {section}, found section {value_section}"),
            ));
        }
        let names: Vec<&str> = names.split_whitespace().collect();
        let values: Vec<&str> = values.split_whitespace().collect();
        if names.len() != values.len() {
            return Err(ObserveError::parse(
                file,
                values_no + 1,
                format!(
                    "section {section} has {} names but {} values",
                    names.len(),
                    values.len()
                ),
            ));
        }
        for (name, value) in names.into_iter().zip(values) {
            let value: i128 = value.parse().map_err(|_| {
                ObserveError::parse(
                    file,
                    values_no + 1,
                    format!("{section} {name}: {value:?} is not an integer"),
                )
            })?;
            let Ok(value) = u64::try_from(value) else {
                continue;
            };
            let bare = BARE_SECTIONS.contains(&section) && !counters.contains_key(name);
            let key = if bare {
                name.to_string()
            } else {
                format!("{section}{name}")
            };
            counters.insert(key, value);
        }
    }
    Ok(())
}

fn split_section<'a>(file: &str, line_no: usize, line: &'a str) -> Result<(&'a str, &'a str), ObserveError> {
    match line.split_once(':') {
        Some((section, rest)) if !section.is_empty() && !section.contains(char::is_whitespace) => Ok((section, rest)),
        _ => Err(ObserveError::parse(
            file,
            line_no,
            format!("expected `Section: ...`, found {line:?}"),
        )),
    }
}

/// How much each counter of `after` rose since `before` (0 when it did not, or when the
/// counter wrapped or was reset). Counters absent before count from 0.
pub fn counters_delta(before: &HostEvidence, after: &HostEvidence) -> BTreeMap<String, u64> {
    counter_map_delta(&before.counters, &after.counters)
}

/// [`counters_delta`] over bare maps.
pub fn counter_map_delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(name, now)| (name.clone(), now.saturating_sub(before.get(name).copied().unwrap_or(0))))
        .collect()
}

/// `after` with its counters replaced by their increase since `before`: the form the
/// diagnosis expects for a traffic run.
pub fn with_counter_delta(before: &HostEvidence, mut after: HostEvidence) -> HostEvidence {
    after.counters = counters_delta(before, &after);
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams
Ip: 2 64 9381 3 17 0
Icmp: InMsgs InErrors InCsumErrors
Icmp: 37 1 0
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens InErrs InCsumErrors
Tcp: 1 200 120000 -1 509 0 12
Udp: InDatagrams NoPorts InErrors InCsumErrors
Udp: 631 36 2 5
";

    const NETSTAT: &str = "\
TcpExt: SyncookiesSent ListenOverflows ListenDrops IPReversePathFilter
TcpExt: 0 4 6 9
IpExt: InNoRoutes InOctets InCsumErrors
IpExt: 0 38795773 1
";

    #[test]
    fn snmp_names_follow_the_evidence_conventions() {
        let c = parse_counter_table("snmp", SNMP).unwrap();
        assert_eq!(c["InAddrErrors"], 17);
        assert_eq!(c["InHdrErrors"], 3);
        assert_eq!(c["TcpInCsumErrors"], 12);
        assert_eq!(c["UdpInCsumErrors"], 5);
        assert_eq!(c["IcmpInErrors"], 1);
        assert_eq!(c["UdpInErrors"], 2);
        assert_eq!(c["TcpActiveOpens"], 509);
        // A limit of -1 is not a counter.
        assert!(!c.contains_key("TcpMaxConn"));
        assert!(!c.contains_key("InCsumErrors"), "Tcp/Udp fields are prefixed");
    }

    #[test]
    fn netstat_extensions_are_bare_and_never_collide() {
        let mut c = parse_counter_table("snmp", SNMP).unwrap();
        parse_counter_table_into("netstat", NETSTAT, &mut c).unwrap();
        assert_eq!(c["IPReversePathFilter"], 9);
        assert_eq!(c["ListenDrops"], 6);
        assert_eq!(c["InOctets"], 38795773);
        assert_eq!(c["InCsumErrors"], 1);
        // A bare name already taken keeps its first owner; the newcomer is prefixed.
        let twice = "Ip: InDiscards\nIp: 1\nIpExt: InDiscards\nIpExt: 2\n";
        let c = parse_counter_table("x", twice).unwrap();
        assert_eq!((c["InDiscards"], c["IpExtInDiscards"]), (1, 2));
    }

    #[test]
    fn malformed_tables_name_file_and_line() {
        let cases = [
            ("Ip: A B\nIp: 1\n", "2 names but 1 values"),
            ("Ip: A B\n", "no values line"),
            ("Ip: A\nTcp: 1\n", "found section Tcp"),
            ("Ip: A\nIp: x\n", "not an integer"),
            ("garbage\n", "expected `Section: ...`"),
        ];
        for (text, want) in cases {
            let err = parse_counter_table("/proc/thread-self/net/snmp", text)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(want) && err.starts_with("/proc/thread-self/net/snmp: line "),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn delta_counts_increases_only() {
        let host = |pairs: &[(&str, u64)]| HostEvidence {
            counters: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..Default::default()
        };
        let before = host(&[("InAddrErrors", 10), ("TcpInCsumErrors", 5), ("Gone", 3)]);
        let after = host(&[("InAddrErrors", 25), ("TcpInCsumErrors", 2), ("ListenDrops", 4)]);
        let d = counters_delta(&before, &after);
        assert_eq!(d["InAddrErrors"], 15);
        assert_eq!(d["TcpInCsumErrors"], 0, "a reset counter shows no increase");
        assert_eq!(d["ListenDrops"], 4);
        assert!(!d.contains_key("Gone"));
        let run = with_counter_delta(&before, after);
        assert_eq!(run.counter("InAddrErrors"), 15);
    }
}
