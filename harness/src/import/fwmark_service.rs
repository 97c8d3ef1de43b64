//! A firewall-mark service (`-A -f N`, `virtual_server fwmark N`) as a scenario's
//! `fwmark = N` with its `[service.mark]`. The table names only the mark; the match comes from
//! the marking rules given beside it (iptables or nft, see [`super::marks`]). Without a rule for
//! the mark the import still makes a scenario that checks: the mark is assumed to cover TCP to
//! the service's VIP on every port, and a warning at the service's line says so.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::error::Warning;
use super::marks::{self, MarkMatch, MarkRules};
use super::to_scenario::{quote, ImportError, InputFormat};
use crate::lvs::Proto;

/// The marking rules given with a table or keepalived.conf, each input with its origin.
#[derive(Debug, Default)]
pub struct Marks {
    inputs: Vec<(String, MarkRules)>,
}

impl Marks {
    /// Reads each `(text, origin)` as iptables or nft rules, by its first meaningful line.
    pub fn parse(inputs: &[(&str, &str)]) -> Result<Marks, ImportError> {
        let mut out = Marks::default();
        for (text, origin) in inputs {
            let format = mark_format(text).ok_or_else(|| ImportError::Unsupported {
                origin: origin.to_string(),
                line: 0,
                message: "expected marking rules (`iptables-save`, `iptables -t mangle -S` or `nft list ruleset`) beside the table".into(),
            })?;
            let parsed = match format {
                InputFormat::Iptables => marks::parse_iptables(text),
                _ => marks::parse_nft(text),
            };
            let rules = parsed.map_err(|error| ImportError::Parse {
                origin: origin.to_string(),
                format,
                error,
            })?;
            out.inputs.push((origin.to_string(), rules));
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// Every input's own warnings, as `origin line N: ...` (line 0: they are not the main
    /// input's lines).
    pub fn warnings(&self) -> Vec<Warning> {
        self.inputs
            .iter()
            .flat_map(|(origin, rules)| {
                rules
                    .warnings
                    .iter()
                    .map(move |w| Warning::new(0, format!("{origin} {w}")))
            })
            .collect()
    }

    fn for_mark(&self, mark: u32) -> Vec<(&str, &MarkMatch)> {
        self.inputs
            .iter()
            .flat_map(|(origin, rules)| rules.for_mark(mark).map(move |r| (origin.as_str(), r)))
            .collect()
    }
}

/// Which marking-rule format `text` is, if it is one.
pub fn mark_format(text: &str) -> Option<InputFormat> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    if marks::looks_like_iptables(first) {
        Some(InputFormat::Iptables)
    } else if marks::looks_like_nft(first) {
        Some(InputFormat::Nft)
    } else {
        None
    }
}

/// `[service.mark]` as the import writes it.
pub(super) struct PlanMark {
    pub(super) mark: u32,
    /// Marked prefixes besides the VIP, as scenario text.
    pub(super) others: Vec<String>,
    /// Whether the VIP itself is marked (it is, unless the rules mark only other prefixes).
    pub(super) vip_marked: bool,
    /// Empty: every port.
    pub(super) ports: Vec<u16>,
    /// Where the match came from, for the comment.
    pub(super) from: String,
}

/// What a fwmark service becomes: its VIP as given (empty when the rules name no single
/// address), protocol, traffic port and mark table.
pub(super) struct Planned {
    pub(super) vip: String,
    pub(super) proto: Proto,
    pub(super) port: u16,
    pub(super) mark: PlanMark,
}

/// The scenario form of mark `mark`'s service at `line`, from the rules that set the mark.
pub(super) fn plan(mark: u32, line: usize, marks: &Marks, warnings: &mut Vec<Warning>) -> Planned {
    let rules = marks.for_mark(mark);
    if rules.is_empty() {
        let said = if marks.is_empty() {
            "no marking rules were given"
        } else {
            "the marking rules given set no such mark"
        };
        warnings.push(Warning::new(
            line,
            format!(
                "FWM {mark}: which packets get mark {mark} is unknown ({said}; give the director's `iptables-save` or `nft list ruleset` as a further input): assumed TCP to the VIP (the first address service's, else the lab's) on every port - check [service.mark]"
            ),
        ));
        return Planned {
            vip: String::new(),
            proto: Proto::Tcp,
            port: 80,
            mark: PlanMark {
                mark,
                others: Vec::new(),
                vip_marked: true,
                ports: Vec::new(),
                from: format!("assumed (no marking rule for mark {mark} was given)"),
            },
        };
    }
    let at = |r: &(&str, &MarkMatch)| format!("{} line {}", r.0, r.1.line);
    let from = rules.iter().map(at).collect::<Vec<_>>().join(", ");
    let said = format!("from {from}");
    // Protocol: the rules' own; any (no -p, `{ tcp, udp }`) is TCP and UDP, one of which the
    // scenario's single protocol takes.
    let protos: Vec<Option<Proto>> = rules.iter().map(|(_, r)| r.protocol).collect();
    let proto = protos.iter().flatten().next().copied().unwrap_or(Proto::Tcp);
    if protos.iter().any(|p| p.is_some_and(|p| p != proto) || p.is_none()) {
        warnings.push(Warning::new(
            line,
            format!(
                "FWM {mark}: the rules ({from}) mark more than {}; a scenario's fwmark match is one protocol: {} imported",
                proto.name(),
                proto.name()
            ),
        ));
    }
    let mut addresses: Vec<Ipv4Net> = Vec::new();
    let mut every_address = false;
    let mut ports: Vec<u16> = Vec::new();
    let mut every_port = false;
    for (_, r) in &rules {
        every_address |= r.addresses.is_empty();
        every_port |= r.ports.is_empty();
        for a in &r.addresses {
            if !addresses.contains(a) {
                addresses.push(*a);
            }
        }
        for p in &r.ports {
            if !ports.contains(p) {
                ports.push(*p);
            }
        }
    }
    if every_address {
        warnings.push(Warning::new(
            line,
            format!("FWM {mark}: a rule ({from}) marks every destination address; the lab marks the VIP"),
        ));
        addresses.clear();
    }
    if every_port {
        ports.clear();
    }
    let same = |f: fn(&MarkMatch) -> String| rules.windows(2).all(|w| f(w[0].1) == f(w[1].1));
    if rules.len() > 1 && !same(|r| format!("{:?}", r.addresses)) && !same(|r| format!("{:?}", r.ports)) {
        warnings.push(Warning::new(
            line,
            format!(
                "FWM {mark}: its rules ({from}) mark different ports on different addresses; the scenario's one match marks every listed port on every listed address"
            ),
        ));
    }
    // The VIP: the first single address marked; the rest stay as the rules name them.
    let vip = addresses.iter().find(|a| a.prefix_len() == 32).map(|a| a.addr());
    let others: Vec<String> = addresses
        .iter()
        .filter(|a| Some(a.addr()) != vip || a.prefix_len() != 32)
        .map(|a| match a.prefix_len() {
            32 => a.addr().to_string(),
            _ => a.to_string(),
        })
        .collect();
    Planned {
        vip: vip.map(|v| v.to_string()).unwrap_or_default(),
        proto,
        port: ports.first().copied().unwrap_or(80),
        mark: PlanMark {
            mark,
            vip_marked: vip.is_some() || others.is_empty(),
            others,
            ports,
            from: said,
        },
    }
}

/// `[service.mark]` for `m`, the VIP being `vip` in the lab. Goes after the service's own keys.
pub(super) fn render(out: &mut String, m: &PlanMark, vip: Ipv4Addr) {
    let _ = writeln!(out);
    let _ = writeln!(out, "# mark {}: {}", m.mark, m.from.replace(['\n', '\r'], " "));
    let _ = writeln!(out, "[service.mark]");
    if !m.others.is_empty() {
        let mut list: Vec<String> = Vec::new();
        if m.vip_marked {
            list.push(quote(&vip.to_string()));
        }
        list.extend(m.others.iter().map(|a| quote(a)));
        let _ = writeln!(out, "addresses = [{}]", list.join(", "));
    }
    if !m.ports.is_empty() {
        let ports: Vec<String> = m.ports.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "ports = [{}]", ports.join(", "));
    }
}
