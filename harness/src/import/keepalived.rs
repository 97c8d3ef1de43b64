//! A tolerant reader for keepalived.conf: `virtual_server` blocks and their
//! `real_server`s here, their checkers in [`super::keepalived_checkers`], the VRRP side in
//! [`super::keepalived_vrrp`]. Everything else is skipped. keepalived 2.2.7's silent
//! defaults and fix-ups (check/check_data.c `validate_check_config`) are applied here, each
//! a warning in keepalived's own words at the line it concerns: no protocol = UDP, no
//! scheduler = wlc, no forwarding method = NAT, port 0 = persistence 360 s, DR/TUN
//! real-server ports reset to the service port, a duplicate real server dropped, quorum and
//! hysteresis clamped; weight 1, `persistence_timeout` without a value = 360 s.
//! `virtual_server_group` blocks are read in [`super::vs_group`] and linked to the
//! `virtual_server group NAME` that names them, as keepalived's `link_vsg_to_vs` does.

use std::net::IpAddr;

use super::error::{ParseError, Warning};
use super::ipvsadm::netmask_prefix;
use super::keepalived_checkers::{self, Checker, Level, Timing, CHECKER_NAMES};
use super::keepalived_numbers::LineReader;
use super::keepalived_vrrp::{self, VrrpConfig};
use super::table::TableProto;
use super::vs_group::{self, Target, VsGroup};

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
    /// `sorry_server_inhibit`.
    pub inhibit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeepalivedRealServer {
    pub line: usize,
    pub addr: IpAddr,
    /// `None` when omitted (fwmark services; otherwise the service port).
    pub port: Option<u16>,
    /// The port as the file gives it, before keepalived's fix-ups.
    pub written_port: Option<u16>,
    pub weight: Option<u32>,
    /// Per-server `lvs_method`, overriding the virtual server's.
    pub lb_kind: Option<LbKind>,
    /// `inhibit_on_failure` stated here (else the virtual server's).
    pub inhibit_on_failure: Option<bool>,
    /// The real server's own timing keywords (defaults for its checkers).
    pub timing: Timing,
    /// Its checker blocks, in order (those keepalived drops are not here).
    pub checkers: Vec<Checker>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub line: usize,
    pub command: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    pub line: usize,
    pub address: VsAddress,
    /// The virtual server's timing keywords (delay_loop, connect_timeout, retry, ...).
    pub timing: Timing,
    pub inhibit_on_failure: bool,
    pub omega: bool,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    /// Lines of the health-checking keywords of the virtual server itself.
    pub health_lines: Vec<(usize, String)>,
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
    /// keepalived's silent defaults applied to it: the scenario key each sets, and its words.
    pub defaults: Vec<(&'static str, String)>,
    /// `virtual_server group NAME`: the group it names, once linked.
    pub group: Option<GroupUse>,
}

/// The `virtual_server_group` a `virtual_server group NAME` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupUse {
    /// Its number among the virtual servers of this group (0 for the first): keepalived's
    /// name for it is `[NAME]:member` (ipwrapper.c `link_vsg_to_vs`).
    pub member: usize,
    pub group: VsGroup,
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

#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeepalivedConfig {
    pub virtual_servers: Vec<VirtualServer>,
    /// `vrrp_instance`s and `vrrp_script`s, keepalived's fix-ups applied.
    pub vrrp: VrrpConfig,
    /// `virtual_server_group` blocks keepalived keeps, in file order.
    pub groups: Vec<VsGroup>,
    /// What was read but is not followed or not modelled (include, groups, checkers).
    pub warnings: Vec<Warning>,
}

/// keepalived's words for a `{` after a keyword that takes no block.
const UNEXPECTED_BOB: &str = "Unexpected '{' - ignoring";

/// Deeper nesting than this is not a keepalived.conf (and would exhaust the stack).
const MAX_DEPTH: usize = 32;

/// Parses keepalived.conf text.
pub fn parse(text: &str) -> Result<KeepalivedConfig, ParseError> {
    let tokens = tokenize(text);
    let mut pos = 0;
    balanced(&tokens)?;
    let mut structure = Vec::new();
    let nodes = block(&tokens, &mut pos, 0, None, &mut structure)?;
    let mut config = KeepalivedConfig {
        warnings: structure,
        ..KeepalivedConfig::default()
    };
    note_includes(&nodes, &mut config.warnings);
    config.vrrp = keepalived_vrrp::read(&nodes, &mut config.warnings);
    for node in nodes.iter().filter(|n| n.keyword == "virtual_server_group") {
        config.groups.extend(vs_group::read(node, &mut config.warnings)?);
    }
    let mut members: Vec<(String, usize)> = Vec::new();
    for node in nodes.iter().filter(|n| n.keyword == "virtual_server") {
        let mut vs = virtual_server(node, &mut config.warnings)?;
        if let VsAddress::Group(name) = &vs.address {
            // keepalived links a group by name after reading the whole file; the first wins.
            let Some(group) = config.groups.iter().find(|g| &g.name == name) else {
                config.warnings.push(Warning::new(
                    vs.line,
                    format!(
                        "Virtual server group {name} specified but not configured - ignoring virtual server [{name}]:0"
                    ),
                ));
                continue;
            };
            let member = members.iter().filter(|(n, _)| n == name).count();
            members.push((name.clone(), vs.line));
            vs.group = Some(GroupUse {
                member,
                group: group.clone(),
            });
        }
        if fix_up(&mut vs, &mut config.warnings) {
            config.virtual_servers.push(vs);
        }
    }
    for (index, group) in config.groups.iter().enumerate() {
        let name = &group.name;
        let message = match config.groups[..index].iter().find(|g| &g.name == name) {
            Some(first) => format!(
                "virtual_server_group {name} is defined again: keepalived uses the first, at line {}; this one is not imported",
                first.line
            ),
            None if !members.iter().any(|(n, _)| n == name) => format!(
                "virtual_server_group {name} is used by no virtual_server: keepalived makes no service of it; nothing imported"
            ),
            None => continue,
        };
        config.warnings.push(Warning::new(group.line, message));
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
    /// The line of the block's closing `}` (else `line`): where keepalived reports what it
    /// finds when a block ends.
    pub(super) end_line: usize,
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

/// The braces pair up, as keepalived's reader counts them (whatever the keywords): an
/// unclosed `{` is named by its line, the outermost first.
fn balanced(tokens: &[Token]) -> Result<(), ParseError> {
    let mut open = Vec::new();
    for token in tokens {
        match token.text.as_str() {
            "{" => {
                open.push(token.line);
                if open.len() > MAX_DEPTH {
                    return Err(ParseError::new(
                        open[0],
                        format!("blocks nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
            }
            "}" if open.pop().is_none() => {
                return Err(ParseError::new(token.line, "`}` without a matching `{`"));
            }
            _ => {}
        }
    }
    match open.first() {
        Some(line) => Err(ParseError::new(*line, "`{` opened here is never closed")),
        None => Ok(()),
    }
}

/// keepalived 2.2's top-level keywords (`install_keyword_root`), `include`, and its `$NAME=`
/// definitions and `@` conditionals.
fn is_root_keyword(keyword: &str) -> bool {
    const ROOT: &[&str] = &[
        "global_defs",
        "vrrp_instance",
        "vrrp_sync_group",
        "vrrp_script",
        "virtual_server",
        "virtual_server_group",
        "include",
        "SSL",
        "bfd_instance",
        "child_wait_time",
        "garp_group",
        "instance",
        "interface_up_down_delays",
        "linkbeat_interfaces",
        "linkbeat_use_polling",
        "namespace_with_ipsets",
        "net_namespace",
        "net_namespace_ipvs",
        "static_ipaddress",
        "static_routes",
        "static_rules",
        "track_file",
        "track_group",
        "use_pid_dir",
        "vrrp_track_file",
        "vrrp_track_process",
    ];
    ROOT.contains(&keyword) || keyword.starts_with('$') || keyword.starts_with('@')
}

/// Statements until the matching `}` (or the end at depth 0).
/// Keywords below the root that open a `{ }` block in keepalived 2.2 (a sublevel, or a handler
/// that reads a value block), besides the checkers ([`CHECKER_NAMES`]). keepalived attaches a `{` to nothing else: after any other
/// keyword it says "Unexpected '{' - ignoring" and reads what follows at the same level, so
/// the block's `}` closes the enclosing block instead (lib/parser.c `process_stream`).
const BLOCK_KEYWORDS: &[&str] = &[
    "real_server",
    "url",
    "host",
    "authentication",
    "auth_hmac",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "virtual_routes",
    "virtual_rules",
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_bfd",
    "unicast_peer",
    "group",
    "notification_email",
    "interfaces",
    "interface_up_down_delays",
];

/// Statements until the matching `}` (or the end at depth 0). Blocks open as keepalived opens
/// them (see [`BLOCK_KEYWORDS`]), with its words for what it ignores.
fn block(
    tokens: &[Token],
    pos: &mut usize,
    depth: usize,
    opened_at: Option<usize>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<Node>, ParseError> {
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
                    // The braces balance, but an ignored `{` ended a block early: keepalived
                    // reads this `}` as a keyword at the top.
                    if warnings.iter().any(|w| w.message == UNEXPECTED_BOB) {
                        warnings.push(Warning::new(token.line, "Unknown keyword '}'"));
                        *pos += 1;
                        continue;
                    }
                    return Err(ParseError::new(token.line, "`}` without a matching `{`"));
                }
                *pos += 1;
                return Ok(nodes);
            }
            "{" => {
                warnings.push(Warning::new(token.line, UNEXPECTED_BOB));
                if let Some(n) = nodes.last().filter(|n| depth > 0 && n.line == token.line) {
                    let statement = std::iter::once(&n.keyword).chain(&n.args).cloned().collect::<Vec<_>>();
                    warnings.push(Warning::new(
                        token.line,
                        format!(
                            "`{}` takes no block: keepalived reads on at the same level, and the next `}}` closes the enclosing block; put each statement on a line of its own",
                            statement.join(" ")
                        ),
                    ));
                }
                *pos += 1;
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
                if depth == 0 && !is_root_keyword(&keyword) {
                    warnings.push(Warning::new(line, format!("Unknown keyword '{keyword}'")));
                }
                let opens = if depth == 0 {
                    is_root_keyword(&keyword)
                } else {
                    BLOCK_KEYWORDS.contains(&keyword.as_str()) || CHECKER_NAMES.contains(&keyword.as_str())
                };
                let children = match tokens.get(*pos) {
                    Some(t) if t.text == "{" && opens => {
                        *pos += 1;
                        Some(block(tokens, pos, depth + 1, Some(t.line), warnings)?)
                    }
                    _ => None,
                };
                let end_line = match children {
                    Some(_) => tokens[*pos - 1].line,
                    None => line,
                };
                nodes.push(Node {
                    line,
                    keyword,
                    args,
                    children,
                    end_line,
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
        timing: Timing::default(),
        inhibit_on_failure: false,
        omega: false,
        quorum_up: None,
        quorum_down: None,
        health_lines: Vec::new(),
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
        defaults: Vec::new(),
        group: None,
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
        let health = [
            "delay_loop",
            "connect_timeout",
            "retry",
            "delay_before_retry",
            "warmup",
            "alpha",
            "omega",
            "inhibit_on_failure",
            "quorum",
            "hysteresis",
            "quorum_up",
            "quorum_down",
            "sorry_server",
            "sorry_server_inhibit",
        ];
        if health.contains(&child.keyword.as_str()) {
            vs.health_lines.push((l, child.keyword.clone()));
        }
        if keepalived_checkers::timing_keyword(child, Level::VirtualServer, &mut vs.timing, warnings) {
            continue;
        }
        let script = || Script {
            line: l,
            command: unquote(&child.args.join(" ")),
        };
        match child.keyword.as_str() {
            "inhibit_on_failure" => vs.inhibit_on_failure = true,
            "omega" => vs.omega = true,
            "quorum_up" if vs.quorum_up.is_none() => vs.quorum_up = Some(script()),
            "quorum_down" if vs.quorum_down.is_none() => vs.quorum_down = Some(script()),
            "quorum_up" | "quorum_down" => warnings.push(Warning::new(
                l,
                format!(
                    "((null)) {} script already specified - ignoring {}",
                    child.keyword,
                    child.args.first().map_or("", String::as_str)
                ),
            )),
            "sorry_server_inhibit" => match vs.sorry_server.as_mut() {
                Some(sorry) => sorry.inhibit = true,
                None => warnings.push(Warning::new(
                    l,
                    "Ignoring sorry_server inhibit used before or without sorry_server",
                )),
            },
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
            "quorum" => {
                let text = arg("a number")?;
                let mut r = LineReader { line: l, warnings };
                vs.quorum = Some(r.unsigned(text, 1, u32::MAX).unwrap_or_else(|| {
                    r.warn(format!("Quorum {text} must be in [1, {}]. Setting to 1.", u32::MAX));
                    1
                }));
            }
            "hysteresis" => {
                let text = arg("a number")?;
                let mut r = LineReader { line: l, warnings };
                match r.unsigned(text, 0, u32::MAX) {
                    Some(h) => vs.hysteresis = Some(h),
                    None => r.warn(format!("Hysteresis {text} must be in [0, {}] - ignoring", u32::MAX)),
                }
            }
            "sorry_server" => {
                let addr = ip(l, arg("an address")?)?;
                let port = child.args.get(1).map(|p| port16(l, p)).transpose()?;
                vs.sorry_server = Some(SorryServer {
                    line: l,
                    addr,
                    port: port.filter(|p| *p != 0),
                    inhibit: false,
                });
            }
            "real_server" => vs.real_servers.push(real_server(child, warnings)?),
            "include" => {} // reported by note_includes
            _ => {}
        }
    }
    Ok(vs)
}

fn real_server(node: &Node, warnings: &mut Vec<Warning>) -> Result<KeepalivedRealServer, ParseError> {
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
        written_port: port,
        weight: None,
        lb_kind: None,
        inhibit_on_failure: None,
        timing: Timing::default(),
        checkers: Vec::new(),
    };
    for child in node.children.iter().flatten() {
        let l = child.line;
        if keepalived_checkers::timing_keyword(child, Level::RealServer, &mut rs.timing, warnings) {
            continue;
        }
        let first = child.args.first().map(String::as_str);
        match (child.keyword.as_str(), first) {
            ("weight", Some(v)) => rs.weight = Some(uint(l, v, "weight")?),
            ("weight", None) => return Err(ParseError::new(l, "expected a number after `weight`")),
            ("lvs_method", Some(v)) => rs.lb_kind = Some(lb_kind(l, v)?),
            ("inhibit_on_failure", v) => match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("on" | "true" | "yes") => rs.inhibit_on_failure = Some(true),
                Some("off" | "false" | "no") => rs.inhibit_on_failure = Some(false),
                Some(_) => warnings.push(Warning::new(
                    l,
                    format!("Invalid inhibit_on_failure parameter {}", v.unwrap_or("")),
                )),
            },
            (name, _) if CHECKER_NAMES.contains(&name) => {
                rs.checkers.extend(keepalived_checkers::checker(child, warnings));
            }
            (
                "uthreshold" | "lthreshold" | "notify_up" | "notify_down" | "smtp_alert" | "virtualhost" | "snmp_name"
                | "include",
                _,
            ) => {}
            (other, _) => warnings.push(Warning::new(l, format!("Unknown keyword '{other}'"))),
        }
    }
    Ok(rs)
}

/// `[ip]:proto:port` as keepalived prints a service (`inet_sockaddrtotrio`, `format_vs`).
fn trio(addr: IpAddr, proto: Option<TableProto>, port: u16) -> String {
    let proto = proto.map_or("none".to_string(), |p| p.as_str().to_ascii_lowercase());
    format!("[{addr}]:{proto}:{port}")
}

/// keepalived's `validate_check_config` on one virtual server, in its order: each default
/// it fills in and each fix it makes is applied and warned about in its words, at the line
/// of what it concerns. False when keepalived drops the virtual server.
fn fix_up(vs: &mut VirtualServer, warnings: &mut Vec<Warning>) -> bool {
    let line = vs.line;
    let describe = |vs: &VirtualServer| match &vs.address {
        VsAddress::Ip { addr, port } => trio(*addr, vs.protocol, *port),
        VsAddress::Fwmark(mark) => format!("FWM {mark}"),
        VsAddress::Group(name) => format!("[{name}]:{}", vs.group.as_ref().map_or(0, |g| g.member)),
    };
    let default_to_nat = |vs: &mut VirtualServer, line: usize, warnings: &mut Vec<Warning>| {
        let message = format!(
            "Virtual server {}: no forwarding method set, setting default NAT",
            describe(vs)
        );
        vs.defaults.push(("mode", message.clone()));
        warnings.push(Warning::new(line, message));
        vs.lb_kind = Some(LbKind::Nat);
    };
    if vs.real_servers.is_empty() {
        warnings.push(Warning::new(
            line,
            format!("Virtual server {} has no real servers - ignoring", describe(vs)),
        ));
        return false;
    }
    let port = match vs.address {
        VsAddress::Ip { port, .. } => Some(port),
        _ => None,
    };
    let group = vs.group.clone().map(|g| g.group);
    // keepalived's "specified by address" (a group with an address entry) and "by fwmark only".
    let (addressed, fwmark_only) = match (&vs.address, &group) {
        (VsAddress::Ip { .. }, _) => (true, false),
        (VsAddress::Fwmark(_), _) => (false, true),
        (VsAddress::Group(_), Some(g)) => (g.has_addresses(), !g.has_addresses() && g.has_fwmarks()),
        (VsAddress::Group(_), None) => (false, false),
    };
    if addressed {
        if vs.protocol.is_none() {
            let message = format!("Virtual server {}: no protocol set - defaulting to UDP", describe(vs));
            vs.defaults.push(("protocol", message.clone()));
            warnings.push(Warning::new(line, message));
            vs.protocol = Some(TableProto::Modelled(crate::lvs::Proto::Udp));
        }
        if vs.one_packet && vs.protocol != Some(TableProto::Modelled(crate::lvs::Proto::Udp)) {
            warnings.push(Warning::new(
                line,
                format!(
                    "Virtual server {}: one packet scheduling requires UDP - resetting",
                    describe(vs)
                ),
            ));
            vs.one_packet = false;
        }
        if vs.persistence_timeout.is_none() && port == Some(0) {
            let message = format!(
                "Virtual server {}: zero port only valid for persistent services - setting",
                describe(vs)
            );
            vs.defaults.push(("persistence", message.clone()));
            warnings.push(Warning::new(line, message));
            vs.persistence_timeout = Some(360);
        }
    }
    // A group's address entry without a port makes the whole virtual server persistent.
    let portless = group
        .iter()
        .flat_map(|g| &g.entries)
        .find(|e| matches!(e.target, Target::Addresses { port: None, .. }));
    if let (None, Some(entry)) = (vs.persistence_timeout, portless) {
        let message = format!(
            "Virtual server {}: zero port only valid for persistent services - setting",
            describe(vs)
        );
        vs.defaults.push(("persistence", message.clone()));
        warnings.push(Warning::new(entry.line, message));
        vs.persistence_timeout = Some(360);
    }
    if fwmark_only && vs.protocol.is_some() {
        warnings.push(Warning::new(
            line,
            format!(
                "Warning: Virtual server {}: protocol specified for fwmark - protocol will be ignored",
                describe(vs)
            ),
        ));
        vs.protocol = None;
    }
    if vs.scheduler.is_none() {
        let message = format!(
            "Virtual server {}: no scheduler set, setting default 'wlc'",
            describe(vs)
        );
        vs.defaults.push(("scheduler", message.clone()));
        warnings.push(Warning::new(line, message));
        vs.scheduler = Some("wlc".into());
    }
    let rs_trio = |vs: &VirtualServer, rs: &KeepalivedRealServer| trio(rs.addr, vs.protocol, rs.port.unwrap_or(0));
    let mut kept: Vec<KeepalivedRealServer> = Vec::new();
    let mut weight_sum: u64 = 0;
    for rs in std::mem::take(&mut vs.real_servers) {
        // Address and port as written, before the port fix-ups below.
        if kept
            .iter()
            .any(|k| k.addr == rs.addr && k.port.unwrap_or(0) == rs.port.unwrap_or(0))
        {
            warnings.push(Warning::new(
                rs.line,
                format!(
                    "VS {}: real server {} is duplicated - removing second rs",
                    describe(vs),
                    rs_trio(vs, &rs)
                ),
            ));
            continue;
        }
        if rs.lb_kind.is_none() && vs.lb_kind.is_none() {
            default_to_nat(vs, line, warnings);
        }
        weight_sum += u64::from(rs.weight.unwrap_or(1));
        kept.push(rs);
    }
    vs.real_servers = kept;
    if vs.sorry_server.is_some() && vs.lb_kind.is_none() {
        default_to_nat(vs, line, warnings);
    }
    let quorum = vs.quorum.unwrap_or(1);
    let weight_sum = u32::try_from(weight_sum).unwrap_or(u32::MAX);
    if u64::from(quorum) > u64::from(weight_sum) {
        warnings.push(Warning::new(
            line,
            format!(
                "Warning - quorum {quorum} for {} exceeds total weight of real servers {weight_sum}, reducing quorum to {weight_sum}",
                describe(vs)
            ),
        ));
        vs.quorum = Some(weight_sum);
    }
    let quorum = vs.quorum.unwrap_or(1);
    let hysteresis = vs.hysteresis.unwrap_or(0);
    if hysteresis >= quorum {
        let set = quorum.wrapping_sub(1);
        warnings.push(Warning::new(
            line,
            format!(
                "Virtual server {}: hysteresis {hysteresis} >= quorum {quorum}; setting hysteresis to {set}",
                describe(vs)
            ),
        ));
        vs.hysteresis = Some(set);
    }
    // Unless NAT, a real server has the service's port (fwmark: none).
    let method = |vs: &VirtualServer, rs: &KeepalivedRealServer| vs.method_of(rs);
    for i in 0..vs.real_servers.len() {
        let rs = &vs.real_servers[i];
        let nat = method(vs, rs) == LbKind::Nat;
        match (&vs.address, port) {
            (VsAddress::Group(_), _) => {}
            (_, Some(vport)) if nat && rs.port.is_none() => vs.real_servers[i].port = Some(vport),
            (_, _) if nat => {}
            (VsAddress::Fwmark(_), _) if rs.port.is_some_and(|p| p != 0) => {
                warnings.push(Warning::new(
                    rs.line,
                    format!(
                        "WARNING - fwmark virtual server {}, real server {} has port specified - clearing",
                        describe(vs),
                        rs_trio(vs, rs)
                    ),
                ));
                vs.real_servers[i].port = None;
            }
            (_, Some(vport)) => {
                if rs.port.is_some_and(|p| p != 0 && p != vport) {
                    warnings.push(Warning::new(
                        rs.line,
                        format!(
                            "WARNING - virtual server {} and real server {} ports don't match - resetting",
                            describe(vs),
                            rs_trio(vs, rs)
                        ),
                    ));
                }
                vs.real_servers[i].port = Some(vport);
            }
            _ => {}
        }
    }
    let sorry_nat = vs.lb_kind == Some(LbKind::Nat);
    if let Some(g) = &group {
        group_ports(vs, g, sorry_nat, &describe(vs), warnings);
    }
    if let (Some(sorry), false) = (vs.sorry_server.as_ref(), sorry_nat) {
        let (sline, sport) = (sorry.line, sorry.port);
        match (&vs.address, port) {
            (VsAddress::Fwmark(_), _) if sport.is_some() => {
                warnings.push(Warning::new(
                    sline,
                    format!(
                        "WARNING - virtual server {}, sorry server has port specified - clearing",
                        describe(vs)
                    ),
                ));
                vs.sorry_server.as_mut().expect("checked").port = None;
            }
            (VsAddress::Ip { .. }, Some(vport)) => {
                if sport.is_some_and(|p| p != vport) {
                    warnings.push(Warning::new(
                        sline,
                        format!(
                            "WARNING - virtual server {} and sorry server ports don't match - resetting",
                            describe(vs)
                        ),
                    ));
                }
                vs.sorry_server.as_mut().expect("checked").port = Some(vport);
            }
            _ => {}
        }
    }
    true
}

/// keepalived's port checks of a group's virtual server: unless NAT, IPVS gets each entry's
/// port for the real and sorry servers (a fwmark entry's: 0), so a port written for them that
/// differs is reported, not changed.
fn group_ports(vs: &VirtualServer, group: &VsGroup, sorry_nat: bool, describe: &str, warnings: &mut Vec<Warning>) {
    let routed: Vec<&KeepalivedRealServer> = vs
        .real_servers
        .iter()
        .filter(|rs| vs.method_of(rs) != LbKind::Nat)
        .collect();
    let rs_trio = |rs: &KeepalivedRealServer| trio(rs.addr, vs.protocol, rs.port.unwrap_or(0));
    let sorry = vs.sorry_server.as_ref().filter(|_| !sorry_nat);
    if group.has_fwmarks() {
        for rs in routed.iter().filter(|rs| rs.port.is_some_and(|p| p != 0)) {
            warnings.push(Warning::new(
                rs.line,
                format!(
                    "WARNING - fwmark virtual server {describe}, real server {} has port specified - port will be ignored",
                    rs_trio(rs)
                ),
            ));
        }
        if let Some(s) = sorry.filter(|s| s.port.is_some()) {
            warnings.push(Warning::new(
                s.line,
                format!("WARNING - fwmark virtual server {describe}, sorry server has port specified - port will be ignored"),
            ));
        }
    }
    for entry in &group.entries {
        let Target::Addresses { port, .. } = entry.target else {
            continue;
        };
        let port = port.unwrap_or(0);
        for rs in routed.iter().filter(|rs| rs.port.is_some_and(|p| p != 0 && p != port)) {
            warnings.push(Warning::new(
                rs.line,
                format!(
                    "virtual server {describe}:[{}] and real server {} ports don't match",
                    entry.describe(),
                    rs_trio(rs)
                ),
            ));
        }
        if let Some(s) = sorry.filter(|s| s.port.is_some_and(|p| p != port)) {
            warnings.push(Warning::new(
                s.line,
                format!("WARNING - virtual server {describe}, sorry server has port specified - port will be ignored"),
            ));
        }
    }
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
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
        assert_eq!(vs.real_servers[1].inhibit_on_failure, Some(true));
        assert_eq!(vs.real_servers[2].checkers.len(), 1);
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
    fn a_brace_after_a_keyword_without_a_block_is_read_as_keepalived_reads_it() {
        let config = parse(
            "virtual_server 10.0.0.1 80 {\n lb_kind DR\n protocol TCP\n\
             real_server 10.0.0.2 80 { HTTP_GET { url { path /health status_code 200 } } }\n\
             real_server 10.0.0.3 80 { weight 10 TCP_CHECK { connect_timeout 2 } }\n\
             real_server 10.0.0.4 80 { weight 3 }\n}\n",
        )
        .unwrap();
        let vs = &config.virtual_servers[0];
        // The early `}` closed the virtual_server: the last real server is outside it.
        let addrs: Vec<String> = vs.real_servers.iter().map(|r| r.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(vs.real_servers[1].weight, Some(10));
        assert!(vs.real_servers[1].checkers.is_empty());
        let said: Vec<(usize, &str)> = config.warnings.iter().map(|w| (w.line, w.message.as_str())).collect();
        for (line, start) in [
            (4, "`path /health` is followed by `status_code 200`"),
            (5, "Unexpected '{' - ignoring"),
            (5, "`weight 10 TCP_CHECK` takes no block"),
            (6, "Unknown keyword 'real_server'"),
            (7, "Unknown keyword '}'"),
        ] {
            assert!(
                said.iter().any(|(l, m)| *l == line && m.starts_with(start)),
                "{start} at {line}: {said:?}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "{".repeat(10_000);
        assert!(parse(&text).is_err());
    }
}
