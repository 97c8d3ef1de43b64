//! The operator's marking rules: the other half of a fwmark service. An IPVS table says
//! `-A -f 1` but not which packets get mark 1; that is in the director's firewall, as
//! `iptables-save` / `iptables -t mangle -S` lines (`-j MARK --set-mark N`, `--set-xmark N/MASK`)
//! or `nft list ruleset` text (`meta mark set N`). Both are read into [`MarkMatch`]es: the
//! destination addresses, protocol and ports a rule marks. A rule of another shape (a source
//! match, an interface, a negation, a named set) is a warning with its line, never a guess.

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv4Subnets};

use super::error::{ParseError, Warning};
use crate::lvs::Proto;

/// Most ports one rule's ranges may expand to.
const MAX_PORTS: usize = 1024;

/// What one marking rule marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkMatch {
    /// 1-based line of its input.
    pub line: usize,
    pub mark: u32,
    /// `None`: any protocol (no `-p`, no `meta l4proto`), or both of `{ tcp, udp }`.
    pub protocol: Option<Proto>,
    /// Empty: every destination address.
    pub addresses: Vec<Ipv4Net>,
    /// Empty: every port.
    pub ports: Vec<u16>,
}

/// The marking rules of one input, and what was read but not modelled.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarkRules {
    pub rules: Vec<MarkMatch>,
    pub warnings: Vec<Warning>,
}

impl MarkRules {
    /// The rules that set `mark`, in order.
    pub fn for_mark(&self, mark: u32) -> impl Iterator<Item = &MarkMatch> {
        self.rules.iter().filter(move |r| r.mark == mark)
    }

    /// One rule read at `line`: kept, skipped (it marks nothing), or a warning saying why not.
    fn take(&mut self, line: usize, read: Result<Option<MarkMatch>, String>) {
        match read {
            Ok(Some(rule)) => self.rules.push(rule),
            Ok(None) => {}
            Err(why) => self
                .warnings
                .push(Warning::new(line, format!("marking rule not imported: {why}"))),
        }
    }
}

/// Whether `text` looks like iptables rules (`iptables-save`, `iptables -S`, or the commands).
pub fn looks_like_iptables(first: &str) -> bool {
    let first = first.strip_prefix("iptables ").unwrap_or(first);
    let chain_rule = |rest: &str| rest.split_whitespace().next().is_some_and(|c| !c.starts_with('-'));
    first.starts_with('*')
        || first.starts_with(":PREROUTING")
        || first.starts_with("-t ")
        || first.starts_with("-P ")
        || first.starts_with("-N ")
        || first.strip_prefix("-A ").is_some_and(chain_rule)
}

/// Whether `first` (the first meaningful line) opens `nft list ruleset` text.
pub fn looks_like_nft(first: &str) -> bool {
    let words: Vec<&str> = first.split_whitespace().collect();
    matches!(
        words.as_slice(),
        ["table", ..] | ["flush", "ruleset", ..] | ["add", "table", ..]
    )
}

/// `iptables-save` (any tables; only `*mangle` rules are read) or `iptables -t mangle -S`.
pub fn parse_iptables(text: &str) -> Result<MarkRules, ParseError> {
    let mut out = MarkRules::default();
    // Without a `*table` header (`iptables -t mangle -S`), lines are taken as mangle's.
    let mut table = "mangle".to_string();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') || text == "COMMIT" || text.starts_with(':') {
            continue;
        }
        if let Some(name) = text.strip_prefix('*') {
            table = name.trim().to_string();
            continue;
        }
        let mut tokens: Vec<&str> = text.split_whitespace().collect();
        if tokens.first().is_some_and(|t| t.ends_with("iptables")) {
            tokens.remove(0);
        }
        if let Some(i) = tokens.iter().position(|t| *t == "-t") {
            if let Some(name) = tokens.get(i + 1) {
                table = name.to_string();
            }
            tokens.drain(i..(i + 2).min(tokens.len()));
        }
        match tokens.first().copied() {
            Some("-A" | "-I" | "--append" | "--insert") => {}
            Some("-P" | "-N" | "-X" | "-F" | "--policy" | "--new-chain") => continue,
            _ => {
                return Err(ParseError::new(
                    line,
                    format!("expected an iptables rule (`-A CHAIN ...`), found `{text}`"),
                ))
            }
        }
        if !tokens.contains(&"MARK") {
            continue;
        }
        if table != "mangle" {
            out.warnings.push(Warning::new(
                line,
                format!("MARK rule in table `{table}` ignored: IPVS reads marks set in mangle PREROUTING"),
            ));
            continue;
        }
        out.take(line, iptables_rule(line, &tokens));
    }
    Ok(out)
}

/// One `-A CHAIN ...` line with `-j MARK`; `Ok(None)` for a rule that marks nothing (mark 0).
fn iptables_rule(line: usize, tokens: &[&str]) -> Result<Option<MarkMatch>, String> {
    let chain = tokens.get(1).copied().unwrap_or("");
    if chain != "PREROUTING" {
        return Err(format!(
            "it is in chain {chain}: only PREROUTING marks what reaches IPVS from the clients"
        ));
    }
    let mut rule = MarkMatch {
        line,
        mark: 0,
        protocol: None,
        addresses: Vec::new(),
        ports: Vec::new(),
    };
    let mut mark = None;
    let mut i = 2;
    let value = |i: usize, option: &str| tokens.get(i + 1).copied().ok_or(format!("no value after `{option}`"));
    // `--set-mark N`, `--set-xmark N/MASK`: only a whole mark (no mask, or all ones) is the
    // mark IPVS keys on.
    let whole = |v: &str| -> Result<u32, String> {
        let (value, mask) = v.split_once('/').unwrap_or((v, "0xffffffff"));
        if number(mask) != Some(u32::MAX) {
            return Err(format!("`{v}` sets only the bits {mask}: lvslab models whole marks"));
        }
        number(value).ok_or(format!("`{v}` is not a mark number"))
    };
    while let Some(&option) = tokens.get(i) {
        match option {
            "-d" | "--destination" | "--dst" => {
                for item in value(i, option)?.split(',') {
                    rule.addresses
                        .push(ip_prefix(item).ok_or(format!("`{item}` is not an IPv4 address or prefix"))?);
                }
                i += 2;
            }
            "-p" | "--protocol" => {
                let p = value(i, option)?;
                rule.protocol = Some(Proto::from_name(p).ok_or(format!("protocol `{p}`: TCP and UDP only"))?);
                i += 2;
            }
            "-m" | "--match" => {
                let m = value(i, option)?;
                if !["tcp", "udp", "multiport", "comment"].contains(&m) {
                    return Err(format!(
                        "match `-m {m}` is not modelled (addresses, protocol and ports only)"
                    ));
                }
                i += 2;
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" => {
                for item in value(i, option)?.split(',') {
                    push_ports(&mut rule.ports, item, ':')?;
                }
                i += 2;
            }
            "--comment" => {
                // The comment may be quoted across several tokens.
                i += 1;
                if tokens.get(i).is_some_and(|t| t.starts_with('"')) {
                    while tokens.get(i).is_some_and(|t| !t.ends_with('"') || *t == "\"") {
                        i += 1;
                    }
                }
                i += 1;
            }
            "-j" | "--jump" => {
                let target = value(i, option)?;
                if target != "MARK" {
                    return Err(format!("target `{target}`"));
                }
                i += 2;
            }
            "--set-mark" | "--set-xmark" => {
                mark = Some(whole(value(i, option)?)?);
                i += 2;
            }
            "!" => return Err("a negated match (`!`) is not modelled".into()),
            other => {
                return Err(format!(
                    "`{other}` is not modelled (only -d, -p, --dport(s) and -j MARK --set-mark)"
                ))
            }
        }
    }
    let Some(mark) = mark else {
        return Err("`-j MARK` without --set-mark or --set-xmark (--and-mark/--or-mark are not modelled)".into());
    };
    if !rule.ports.is_empty() && rule.protocol.is_none() {
        return Err("ports without `-p tcp` or `-p udp`".into());
    }
    rule.mark = mark;
    Ok((mark != 0).then_some(rule))
}

/// `nft list ruleset` text (or an `nft -f` file of the same shape).
pub fn parse_nft(text: &str) -> Result<MarkRules, ParseError> {
    let mut out = MarkRules::default();
    // What each open block is: a table, a chain (with its hook once read), a set.
    let mut blocks: Vec<Block> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        // A rule whose anonymous set nft wrapped over several lines.
        let (start, text) = match pending.take() {
            Some((start, mut joined)) => {
                joined.push(' ');
                joined.push_str(text);
                (start, joined)
            }
            None => (line, text.to_string()),
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["}"] | ["};"] => {
                if blocks.pop().is_none() {
                    return Err(ParseError::new(line, "`}` closes no table, chain or set"));
                }
                continue;
            }
            ["table", .., "{"] => {
                blocks.push(Block::Table);
                continue;
            }
            ["chain", _, "{"] => {
                blocks.push(Block::Chain(None));
                continue;
            }
            ["set" | "map" | "flowtable" | "counter" | "quota" | "ct", .., "{"] => {
                blocks.push(Block::Other);
                continue;
            }
            // `nft -f` scripts: a bare `table ip t` declaration, `delete`, `flush`.
            ["flush", ..] | ["delete", ..] | ["define", ..] | ["include", ..] | ["table", _, _] => continue,
            _ => {}
        }
        if text.matches('{').count() > text.matches('}').count() {
            pending = Some((start, text));
            continue;
        }
        match blocks.last_mut() {
            Some(Block::Chain(hook)) => {
                if words.first() == Some(&"type") {
                    *hook = words
                        .iter()
                        .position(|w| *w == "hook")
                        .and_then(|i| words.get(i + 1))
                        .map(|h| h.trim_end_matches(';').to_string());
                    continue;
                }
                if words.first() == Some(&"policy") {
                    continue;
                }
                // `meta mark set` / `mark set`; `ct mark set` is the connection's, not the packet's.
                let sets_mark = (0..words.len().saturating_sub(1))
                    .any(|j| words[j] == "mark" && words[j + 1] == "set" && (j == 0 || words[j - 1] != "ct"));
                if !sets_mark {
                    continue;
                }
                if let Some(h) = hook.as_deref().filter(|h| *h != "prerouting") {
                    out.warnings.push(Warning::new(
                        start,
                        format!("marking rule in a chain of hook {h} ignored: only prerouting marks what reaches IPVS from the clients"),
                    ));
                    continue;
                }
                out.take(start, nft_rule(start, &text));
            }
            Some(_) => continue,
            None => {
                return Err(ParseError::new(
                    start,
                    format!("expected `table FAMILY NAME {{` (as `nft list ruleset` prints), found `{text}`"),
                ))
            }
        }
    }
    if let Some((start, _)) = pending {
        return Err(ParseError::new(start, "a `{` set that is never closed"));
    }
    Ok(out)
}

enum Block {
    Table,
    /// A chain and its hook, once its `type` line is read (none: a regular chain).
    Chain(Option<String>),
    Other,
}

/// One nft rule that sets a mark; `Ok(None)` for mark 0.
fn nft_rule(line: usize, text: &str) -> Result<Option<MarkMatch>, String> {
    // Strip a comment string, then make set braces and commas words of their own.
    let text = match text.find("comment \"") {
        Some(at) => {
            let after = &text[at + 9..];
            let end = after.find('"').map_or(after.len(), |e| e + 1);
            format!("{}{}", &text[..at], &after[end..])
        }
        None => text.to_string(),
    };
    let spaced = text.replace('{', " { ").replace('}', " } ").replace(',', " , ");
    let words: Vec<&str> = spaced.split_whitespace().collect();
    let mut rule = MarkMatch {
        line,
        mark: 0,
        protocol: None,
        addresses: Vec::new(),
        ports: Vec::new(),
    };
    let mut mark = None;
    let mut i = 0;
    let set_protocol = |rule: &mut MarkMatch, p: Proto| -> Result<(), String> {
        match rule.protocol {
            Some(q) if q != p => Err(format!("it matches both {} and {}", q.name(), p.name())),
            _ => {
                rule.protocol = Some(p);
                Ok(())
            }
        }
    };
    while let Some(&word) = words.get(i) {
        match (word, words.get(i + 1).copied()) {
            ("ip", Some("daddr")) => {
                let (items, next) = values(&words, i + 2)?;
                for item in items {
                    rule.addresses.extend(
                        nft_addresses(item)
                            .ok_or(format!("`ip daddr {item}` is not an IPv4 address, prefix or range"))?,
                    );
                }
                i = next;
            }
            ("tcp" | "udp" | "th", Some("dport")) => {
                if word != "th" {
                    set_protocol(&mut rule, Proto::from_name(word).expect("tcp or udp"))?;
                }
                let (items, next) = values(&words, i + 2)?;
                for item in items {
                    push_ports(&mut rule.ports, item, '-')?;
                }
                i = next;
            }
            ("meta", Some("l4proto")) | ("ip", Some("protocol")) => {
                let (items, next) = values(&words, i + 2)?;
                let protos: Vec<Proto> = items
                    .iter()
                    .map(|p| Proto::from_name(p).ok_or(format!("protocol `{p}`: TCP and UDP only")))
                    .collect::<Result<_, _>>()?;
                if let [one] = protos.as_slice() {
                    set_protocol(&mut rule, *one)?;
                }
                i = next;
            }
            ("meta", Some("mark")) if words.get(i + 2) == Some(&"set") => {
                mark = Some(nft_mark(words.get(i + 3).copied())?);
                i += 4;
            }
            ("mark", Some("set")) => {
                mark = Some(nft_mark(words.get(i + 2).copied())?);
                i += 3;
            }
            ("counter", _) => {
                i += 1;
                while matches!(words.get(i), Some(&("packets" | "bytes"))) {
                    i += 2;
                }
            }
            ("accept" | "continue", _) => i += 1,
            _ => {
                return Err(format!(
                    "`{word}` is not modelled (only ip daddr, tcp/udp/th dport, meta l4proto and meta mark set)"
                ))
            }
        }
    }
    let Some(mark) = mark else {
        return Err("no `meta mark set N`".into());
    };
    rule.mark = mark;
    Ok((mark != 0).then_some(rule))
}

/// The value after a match keyword: one word, or the items of a `{ a, b }` set; and the index
/// after it. `!=` and named sets (`@name`) are refused.
fn values<'w>(words: &[&'w str], at: usize) -> Result<(Vec<&'w str>, usize), String> {
    match words.get(at).copied() {
        None => Err("a match without a value".into()),
        Some("!=") => Err("a negated match (`!=`) is not modelled".into()),
        Some(named) if named.starts_with('@') => Err(format!(
            "named set `{named}` is not followed: list its elements in the rule"
        )),
        Some("{") => {
            let mut items = Vec::new();
            let mut i = at + 1;
            loop {
                match words.get(i).copied() {
                    None => return Err("a `{` set that is never closed".into()),
                    Some("}") => return Ok((items, i + 1)),
                    Some(",") => {}
                    Some(item) => items.push(item),
                }
                i += 1;
            }
        }
        Some(one) => Ok((vec![one], at + 1)),
    }
}

fn nft_mark(word: Option<&str>) -> Result<u32, String> {
    let word = word.ok_or("no value after `mark set`")?;
    number(word).ok_or(format!(
        "mark `{word}` is not a number (marks computed from others are not modelled)"
    ))
}

/// `0x1`, `0x00000001` or `1`.
fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// `a.b.c.d` or `a.b.c.d/n`.
fn ip_prefix(text: &str) -> Option<Ipv4Net> {
    match text.split_once('/') {
        Some(_) => text.parse::<Ipv4Net>().ok().map(|n| n.trunc()),
        None => text.parse::<Ipv4Addr>().ok().map(Ipv4Net::from),
    }
}

/// An nft address item: an address, a prefix or a range `a-b` (as the fewest prefixes).
fn nft_addresses(text: &str) -> Option<Vec<Ipv4Net>> {
    if let Some((a, b)) = text.split_once('-') {
        let (a, b) = (a.parse::<Ipv4Addr>().ok()?, b.parse::<Ipv4Addr>().ok()?);
        return (a <= b).then(|| Ipv4Subnets::new(a, b, 0).collect());
    }
    ip_prefix(text).map(|n| vec![n])
}

/// A port or a range (`a:b` in iptables, `a-b` in nft), each port once.
fn push_ports(ports: &mut Vec<u16>, item: &str, range: char) -> Result<(), String> {
    let port = |t: &str| t.parse::<u16>().ok().filter(|p| *p != 0);
    let (low, high) = match item.split_once(range) {
        Some((a, b)) => (
            port(a).ok_or(format!("`{item}` is not a port range"))?,
            port(b).ok_or(format!("`{item}` is not a port range"))?,
        ),
        None => {
            let p = port(item).ok_or(format!("`{item}` is not a port"))?;
            (p, p)
        }
    };
    if low > high || usize::from(high - low) + ports.len() >= MAX_PORTS {
        return Err(format!(
            "port range `{item}` is backwards or wider than {MAX_PORTS} ports (a scenario lists its marked ports)"
        ));
    }
    for p in low..=high {
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    #[test]
    fn iptables_save_mangle_rules_are_read_with_their_marks() {
        let text = "# Generated by iptables-save v1.8.9 (nf_tables)\n\
                    *filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n\
                    *mangle\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
                    -A PREROUTING -d 10.0.0.10/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x1/0xffffffff\n\
                    -A PREROUTING -d 10.0.0.0/24,10.9.0.1 -p udp -m udp --dport 5000:5003 -j MARK --set-mark 7\n\
                    -A PREROUTING -s 10.1.0.0/16 -d 10.0.0.10/32 -p tcp -j MARK --set-mark 2\n\
                    -A OUTPUT -d 10.0.0.10/32 -j MARK --set-mark 3\n\
                    -A PREROUTING -d 10.0.0.11/32 -j MARK --set-xmark 0x4/0xff\n\
                    COMMIT\n";
        let read = parse_iptables(text).unwrap();
        assert_eq!(
            read.rules,
            [
                MarkMatch {
                    line: 9,
                    mark: 1,
                    protocol: Some(Proto::Tcp),
                    addresses: vec![net("10.0.0.10/32")],
                    ports: vec![80, 443],
                },
                MarkMatch {
                    line: 10,
                    mark: 7,
                    protocol: Some(Proto::Udp),
                    addresses: vec![net("10.0.0.0/24"), net("10.9.0.1/32")],
                    ports: vec![5000, 5001, 5002, 5003],
                },
            ]
        );
        let lines: Vec<(usize, &str)> = read.warnings.iter().map(|w| (w.line, w.message.as_str())).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].0 == 11 && lines[0].1.contains("`-s`"), "{lines:?}");
        assert!(lines[1].0 == 12 && lines[1].1.contains("chain OUTPUT"), "{lines:?}");
        assert!(
            lines[2].0 == 13 && lines[2].1.contains("only the bits 0xff"),
            "{lines:?}"
        );
    }

    #[test]
    fn iptables_dash_s_and_commands_are_read_as_mangle() {
        let text = "-P PREROUTING ACCEPT\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xffffffff\n";
        let read = parse_iptables(text).unwrap();
        assert_eq!(read.rules[0].ports, [80]);
        let commands = "iptables -t mangle -A PREROUTING -d 192.0.2.100 -p tcp --dport 443 -j MARK --set-mark 0x1\n";
        let read = parse_iptables(commands).unwrap();
        assert_eq!((read.rules[0].mark, read.rules[0].line), (1, 1));
        let err = parse_iptables("-A PREROUTING -j MARK --set-mark 1\nhello\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(looks_like_iptables("*mangle"));
        assert!(looks_like_iptables("-A PREROUTING -d 1.2.3.4 -j MARK --set-mark 1"));
        assert!(!looks_like_iptables("-A -f 1 -s rr"), "an ipvsadm-save line");
    }

    #[test]
    fn nft_list_ruleset_rules_are_read_with_sets_and_ranges() {
        // As `nft list ruleset` printed it (nftables 1.0.9), one set wrapped by hand.
        let text = "table ip lvslab_fwmark {\n\
                    \tchain prerouting {\n\
                    \t\ttype filter hook prerouting priority mangle; policy accept;\n\
                    \t\tip daddr 192.0.2.100 tcp dport { 80, 443 } meta mark set 0x00000001\n\
                    \t\tip daddr 203.0.113.0/26 meta l4proto tcp meta mark set 0x00000002\n\
                    \t\tip daddr { 10.0.0.1,\n\t\t\t10.0.0.5-10.0.0.9 } tcp dport 8000-8003 counter packets 0 bytes 0 meta mark set 0x00000003\n\
                    \t\tiifname \"eth0\" ip daddr 10.3.0.1 meta mark set 0x00000006\n\
                    \t\tip daddr @vips meta mark set 0x00000007\n\
                    \t}\n\
                    \tchain out {\n\t\ttype filter hook output priority mangle; policy accept;\n\
                    \t\tip daddr 192.0.2.100 meta mark set 0x00000008\n\t}\n\
                    }\n\
                    table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\
                    \t\ttcp dport 22 accept\n\t}\n}\n";
        let read = parse_nft(text).unwrap();
        type Row = (usize, u32, Option<Proto>, Vec<Ipv4Net>, Vec<u16>);
        let got: Vec<Row> = read
            .rules
            .iter()
            .map(|r| (r.line, r.mark, r.protocol, r.addresses.clone(), r.ports.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (4, 1, Some(Proto::Tcp), vec![net("192.0.2.100/32")], vec![80, 443]),
                (5, 2, Some(Proto::Tcp), vec![net("203.0.113.0/26")], vec![]),
                (
                    6,
                    3,
                    Some(Proto::Tcp),
                    vec![
                        net("10.0.0.1/32"),
                        net("10.0.0.5/32"),
                        net("10.0.0.6/31"),
                        net("10.0.0.8/31")
                    ],
                    vec![8000, 8001, 8002, 8003]
                ),
            ]
        );
        let lines: Vec<(usize, &str)> = read.warnings.iter().map(|w| (w.line, w.message.as_str())).collect();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].0 == 8 && lines[0].1.contains("`iifname`"), "{lines:?}");
        assert!(lines[1].0 == 9 && lines[1].1.contains("named set `@vips`"), "{lines:?}");
        assert!(lines[2].0 == 13 && lines[2].1.contains("hook output"), "{lines:?}");
        assert!(looks_like_nft("table ip lvslab_fwmark {"));
        assert!(!looks_like_nft("virtual_server fwmark 1 {"));
    }

    #[test]
    fn nft_protocol_sets_and_th_ports_mean_any_protocol() {
        let text = "table inet t {\n chain p {\n  type filter hook prerouting priority -150; policy accept;\n  \
                    meta l4proto { tcp, udp } th dport 53 ip daddr 10.2.0.1 mark set 5\n  \
                    ip daddr 10.2.0.2 udp dport 53 tcp dport 80 meta mark set 6\n }\n}\n";
        let read = parse_nft(text).unwrap();
        assert_eq!(read.rules.len(), 1);
        assert_eq!((read.rules[0].protocol, read.rules[0].ports.clone()), (None, vec![53]));
        assert!(
            read.warnings[0].message.contains("both UDP and TCP"),
            "{:?}",
            read.warnings
        );
        let err = parse_nft("ip daddr 1.2.3.4 meta mark set 1\n").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            parse_nft("table ip t {\n chain c {\n").is_ok(),
            "an unclosed table is read as far as it goes"
        );
    }
}
