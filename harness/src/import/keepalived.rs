//! A tolerant reader for keepalived.conf: `virtual_server` blocks and their
//! `real_server`s here, the VRRP side in [`super::keepalived_vrrp`]. Everything
//! else is skipped; health checkers are noted, not modelled. Defaults follow keepalived
//! (check_parser.c / check_data.c): forwarding NAT, scheduler wlc, protocol TCP,
//! weight 1, `persistence_timeout` without a value = 360 s.

use std::net::IpAddr;

use super::error::{ParseError, Warning};
use super::ipvsadm::netmask_prefix;
use super::keepalived_vrrp::{self, VrrpConfig};
use super::table::TableProto;

/// Forwarding method (`lb_kind` / `lvs_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbKind {
    Dr,
    Nat,
    Tun,
}

/// What a `virtual_server` line names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VsAddress {
    Ip {
        addr: IpAddr,
        port: u16,
    },
    Fwmark(u32),
    /// `virtual_server group NAME`: addresses live in a virtual_server_group.
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SorryServer {
    pub line: usize,
    pub addr: IpAddr,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepalivedRealServer {
    pub line: usize,
    pub addr: IpAddr,
    /// `None` when omitted (fwmark services; otherwise the service port).
    pub port: Option<u16>,
    pub weight: Option<u32>,
    /// Per-server `lvs_method`, overriding the virtual server's.
    pub lb_kind: Option<LbKind>,
    pub inhibit_on_failure: bool,
    /// Health checkers configured (HTTP_GET, TCP_CHECK, ...) with their lines.
    pub checks: Vec<(usize, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    pub line: usize,
    pub address: VsAddress,
    pub delay_loop: Option<u32>,
    /// `lb_algo` / `lvs_sched` as written.
    pub scheduler: Option<String>,
    pub lb_kind: Option<LbKind>,
    pub persistence_timeout: Option<u32>,
    /// `persistence_granularity` as a prefix length.
    pub persistence_granularity: Option<u8>,
    pub protocol: Option<TableProto>,
    /// `ops`.
    pub one_packet: bool,
    /// Scheduler flag keywords: sh-port, sh-fallback, mh-port, mh-fallback, flag-N, hashed.
    pub flags: Vec<String>,
    pub quorum: Option<u32>,
    pub hysteresis: Option<u32>,
    pub sorry_server: Option<SorryServer>,
    pub real_servers: Vec<KeepalivedRealServer>,
}

impl VirtualServer {
    /// `10.0.0.1 80` / `fwmark 7` / `group NAME`, as written.
    pub fn describe(&self) -> String {
        match &self.address {
            VsAddress::Ip { addr, port } => format!("virtual_server {addr} {port}"),
            VsAddress::Fwmark(mark) => format!("virtual_server fwmark {mark}"),
            VsAddress::Group(name) => format!("virtual_server group {name}"),
        }
    }

    /// Forwarding method of a real server: its own, else the virtual server's, else NAT.
    pub fn method_of(&self, rs: &KeepalivedRealServer) -> LbKind {
        rs.lb_kind.or(self.lb_kind).unwrap_or(LbKind::Nat)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeepalivedConfig {
    pub virtual_servers: Vec<VirtualServer>,
    /// `vrrp_instance`s and `vrrp_script`s, keepalived's fix-ups applied.
    pub vrrp: VrrpConfig,
    /// What was read but is not followed or not modelled (include, groups, checkers).
    pub warnings: Vec<Warning>,
}

/// Deeper nesting than this is not a keepalived.conf (and would exhaust the stack).
const MAX_DEPTH: usize = 32;

/// Parses keepalived.conf text.
pub fn parse(text: &str) -> Result<KeepalivedConfig, ParseError> {
    let tokens = tokenize(text);
    let mut pos = 0;
    let nodes = block(&tokens, &mut pos, 0, None)?;
    let mut config = KeepalivedConfig::default();
    note_includes(&nodes, &mut config.warnings);
    config.vrrp = keepalived_vrrp::read(&nodes, &mut config.warnings);
    for node in &nodes {
        match node.keyword.as_str() {
            "virtual_server" => config.virtual_servers.push(virtual_server(node, &mut config.warnings)?),
            "virtual_server_group" => config.warnings.push(Warning::new(
                node.line,
                "virtual_server_group is not supported; its virtual servers are not imported",
            )),
            _ => {}
        }
    }
    Ok(config)
}

/// One token with the line it is on.
#[derive(Debug)]
struct Token {
    text: String,
    line: usize,
}

/// A statement: keyword, arguments on the same line, and an optional `{ }` block.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) line: usize,
    pub(super) keyword: String,
    pub(super) args: Vec<String>,
    pub(super) children: Option<Vec<Node>>,
}

/// Splits into words and braces; `#` and `!` start a comment at the start of a
/// word (not inside double quotes).
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let mut word = String::new();
        let mut in_quotes = false;
        let flush = |word: &mut String, tokens: &mut Vec<Token>| {
            if !word.is_empty() {
                tokens.push(Token {
                    text: std::mem::take(word),
                    line,
                });
            }
        };
        for c in raw.chars() {
            if in_quotes {
                word.push(c);
                if c == '"' {
                    in_quotes = false;
                }
                continue;
            }
            match c {
                '"' => {
                    in_quotes = true;
                    word.push(c);
                }
                '#' | '!' if word.is_empty() => break,
                '{' | '}' => {
                    flush(&mut word, &mut tokens);
                    tokens.push(Token {
                        text: c.to_string(),
                        line,
                    });
                }
                c if c.is_whitespace() => flush(&mut word, &mut tokens),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut tokens);
    }
    tokens
}

/// Statements until the matching `}` (or the end at depth 0).
fn block(tokens: &[Token], pos: &mut usize, depth: usize, opened_at: Option<usize>) -> Result<Vec<Node>, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::new(
            opened_at.unwrap_or(0),
            format!("blocks nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let mut nodes = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        match token.text.as_str() {
            "}" => {
                if opened_at.is_none() {
                    return Err(ParseError::new(token.line, "`}` without a matching `{`"));
                }
                *pos += 1;
                return Ok(nodes);
            }
            "{" => {
                // A block with no keyword: read it so its braces balance, keep nothing.
                *pos += 1;
                block(tokens, pos, depth + 1, Some(token.line))?;
            }
            _ => {
                let line = token.line;
                let keyword = token.text.clone();
                *pos += 1;
                let mut args = Vec::new();
                while let Some(t) = tokens.get(*pos) {
                    if t.line != line || t.text == "{" || t.text == "}" {
                        break;
                    }
                    args.push(t.text.clone());
                    *pos += 1;
                }
                let children = match tokens.get(*pos) {
                    Some(t) if t.text == "{" => {
                        *pos += 1;
                        Some(block(tokens, pos, depth + 1, Some(t.line))?)
                    }
                    _ => None,
                };
                nodes.push(Node {
                    line,
                    keyword,
                    args,
                    children,
                });
            }
        }
    }
    match opened_at {
        Some(line) => Err(ParseError::new(line, "`{` opened here is never closed")),
        None => Ok(nodes),
    }
}

fn note_includes(nodes: &[Node], warnings: &mut Vec<Warning>) {
    for node in nodes {
        if node.keyword == "include" {
            warnings.push(Warning::new(
                node.line,
                format!(
                    "`include {}` is not followed (unsupported): import the included file on its own",
                    node.args.join(" ")
                ),
            ));
        }
        if let Some(children) = &node.children {
            note_includes(children, warnings);
        }
    }
}

fn virtual_server(node: &Node, warnings: &mut Vec<Warning>) -> Result<VirtualServer, ParseError> {
    let line = node.line;
    let address = match node.args.as_slice() {
        [kind, mark] if kind == "fwmark" => VsAddress::Fwmark(uint(line, mark, "firewall mark")?),
        [kind, name] if kind == "group" => VsAddress::Group(name.clone()),
        [addr, port] => VsAddress::Ip {
            addr: ip(line, addr)?,
            port: port16(line, port)?,
        },
        _ => {
            return Err(ParseError::new(
                line,
                format!(
                    "expected `virtual_server IP PORT`, `virtual_server fwmark N` or `virtual_server group NAME`, found `virtual_server {}`",
                    node.args.join(" ")
                ),
            ))
        }
    };
    let mut vs = VirtualServer {
        line,
        address,
        delay_loop: None,
        scheduler: None,
        lb_kind: None,
        persistence_timeout: None,
        persistence_granularity: None,
        protocol: None,
        one_packet: false,
        flags: Vec::new(),
        quorum: None,
        hysteresis: None,
        sorry_server: None,
        real_servers: Vec::new(),
    };
    if node.children.is_none() {
        return Err(ParseError::new(line, "expected `{` after the virtual_server address"));
    }
    for child in node.children.iter().flatten() {
        let l = child.line;
        let arg = |what: &str| -> Result<&str, ParseError> {
            child
                .args
                .first()
                .map(String::as_str)
                .ok_or_else(|| ParseError::new(l, format!("expected {what} after `{}`", child.keyword)))
        };
        match child.keyword.as_str() {
            "delay_loop" => vs.delay_loop = Some(uint(l, arg("seconds")?, "delay_loop")?),
            "lb_algo" | "lvs_sched" => vs.scheduler = Some(arg("a scheduler name")?.to_ascii_lowercase()),
            "lb_kind" | "lvs_method" => vs.lb_kind = Some(lb_kind(l, arg("DR, NAT or TUN")?)?),
            "persistence_timeout" => {
                vs.persistence_timeout = Some(match child.args.first() {
                    Some(v) => uint(l, v, "persistence_timeout")?,
                    None => 360,
                })
            }
            "persistence_granularity" => {
                vs.persistence_granularity = Some(netmask_prefix(l, arg("a netmask")?)?);
            }
            "protocol" => {
                let name = arg("TCP, UDP or SCTP")?;
                vs.protocol = Some(TableProto::from_name(name).ok_or_else(|| {
                    ParseError::new(l, format!("unknown protocol `{name}` (expected TCP, UDP or SCTP)"))
                })?);
            }
            "ops" => vs.one_packet = true,
            "hashed" | "flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => {
                vs.flags.push(child.keyword.clone())
            }
            "quorum" => vs.quorum = Some(uint(l, arg("a number")?, "quorum")?),
            "hysteresis" => vs.hysteresis = Some(uint(l, arg("a number")?, "hysteresis")?),
            "sorry_server" => {
                let addr = ip(l, arg("an address")?)?;
                let port = child.args.get(1).map(|p| port16(l, p)).transpose()?;
                vs.sorry_server = Some(SorryServer { line: l, addr, port });
            }
            "real_server" => vs.real_servers.push(real_server(child)?),
            "include" => {} // reported by note_includes
            _ => {}
        }
    }
    let checks: Vec<String> = vs
        .real_servers
        .iter()
        .flat_map(|rs| rs.checks.iter().map(|(l, name)| format!("{name} at line {l}")))
        .collect();
    if !checks.is_empty() {
        warnings.push(Warning::new(
            line,
            format!(
                "health checks are not run ({}); every real server is taken as up",
                checks.join(", ")
            ),
        ));
    }
    Ok(vs)
}

fn real_server(node: &Node) -> Result<KeepalivedRealServer, ParseError> {
    let line = node.line;
    let (addr, port) = match node.args.as_slice() {
        [addr] => (ip(line, addr)?, None),
        [addr, port] => (ip(line, addr)?, Some(port16(line, port)?)),
        _ => {
            return Err(ParseError::new(
                line,
                format!(
                    "expected `real_server IP [PORT]`, found `real_server {}`",
                    node.args.join(" ")
                ),
            ))
        }
    };
    let mut rs = KeepalivedRealServer {
        line,
        addr,
        port,
        weight: None,
        lb_kind: None,
        inhibit_on_failure: false,
        checks: Vec::new(),
    };
    for child in node.children.iter().flatten() {
        let l = child.line;
        let first = child.args.first().map(String::as_str);
        match (child.keyword.as_str(), first) {
            ("weight", Some(v)) => rs.weight = Some(uint(l, v, "weight")?),
            ("weight", None) => return Err(ParseError::new(l, "expected a number after `weight`")),
            ("lvs_method", Some(v)) => rs.lb_kind = Some(lb_kind(l, v)?),
            ("inhibit_on_failure", v) => rs.inhibit_on_failure = !matches!(v, Some("false" | "off" | "no")),
            (name, _) if name.ends_with("_CHECK") || name.ends_with("_GET") => rs.checks.push((l, name.to_string())),
            _ => {}
        }
    }
    Ok(rs)
}

fn lb_kind(line: usize, word: &str) -> Result<LbKind, ParseError> {
    match word.to_ascii_uppercase().as_str() {
        "DR" => Ok(LbKind::Dr),
        "NAT" => Ok(LbKind::Nat),
        "TUN" => Ok(LbKind::Tun),
        _ => Err(ParseError::new(
            line,
            format!("unknown forwarding method `{word}` (expected DR, NAT or TUN)"),
        )),
    }
}

fn ip(line: usize, text: &str) -> Result<IpAddr, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected a numeric IP address, found `{text}`")))
}

fn port16(line: usize, text: &str) -> Result<u16, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected a port number (0-65535), found `{text}`")))
}

fn uint(line: usize, text: &str, what: &str) -> Result<u32, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected {what} as a whole number, found `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    #[test]
    fn own_fixture_reads_every_field() {
        let text = std::fs::read_to_string(format!("{FIXTURES}/keepalived-dr-two-services.conf")).unwrap();
        let config = parse(&text).unwrap();
        assert_eq!(config.virtual_servers.len(), 2);
        let vs = &config.virtual_servers[0];
        assert_eq!(
            vs.address,
            VsAddress::Ip {
                addr: "198.18.40.10".parse().unwrap(),
                port: 8443
            }
        );
        assert_eq!(vs.scheduler.as_deref(), Some("sh"));
        assert_eq!(vs.lb_kind, Some(LbKind::Dr));
        assert_eq!(vs.persistence_timeout, Some(120));
        assert_eq!(vs.persistence_granularity, Some(24));
        assert_eq!(vs.flags, vec!["sh-port".to_string()]);
        assert_eq!(vs.real_servers.len(), 3);
        assert_eq!(vs.real_servers[1].weight, Some(0));
        assert!(vs.real_servers[1].inhibit_on_failure);
        assert_eq!(vs.real_servers[2].checks.len(), 1);
        assert!(vs.sorry_server.is_some());
        assert!(matches!(config.virtual_servers[1].address, VsAddress::Fwmark(9)));
        assert!(
            config.warnings.iter().any(|w| w.message.contains("include")),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn braces_may_touch_words_and_comments_may_follow_values() {
        let config =
            parse("virtual_server 10.1.1.1 80{ lb_kind TUN # comment\n real_server 10.1.2.1 80 { weight 4 }\n}\n")
                .unwrap();
        let vs = &config.virtual_servers[0];
        assert_eq!(vs.lb_kind, Some(LbKind::Tun));
        assert_eq!(vs.real_servers[0].weight, Some(4));
    }

    #[test]
    fn unbalanced_braces_and_bad_values_name_their_line() {
        let err = parse("global_defs {\n  router_id x\n\nvirtual_server 10.0.0.1 80 {\n}\n").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
        assert!(err.message.contains("never closed"));
        let err = parse("}\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err =
            parse("virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    weight heavy\n  }\n}\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("weight"), "{err}");
        let err = parse("virtual_server 10.0.0.1 {\n}\n").unwrap_err();
        assert_eq!(err.line, 1);
        let err = parse("virtual_server 10.0.0.1 80 {\n lb_kind FNAT\n}\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "{".repeat(10_000);
        assert!(parse(&text).is_err());
    }
}
