//! The health-checking side of a keepalived.conf `virtual_server`: the timing keywords a
//! virtual server, a real server and a checker may each state, and the checker blocks
//! (TCP_CHECK, HTTP_GET / SSL_GET with their `url`s, MISC_CHECK; the others are recognised
//! by name), read the way keepalived 2.2.7 reads them (check/check_api.c, check_tcp.c,
//! check_http.c, check_misc.c). A value keepalived refuses is refused here with its words.

use super::error::Warning;
use super::keepalived::Node;
use super::keepalived_numbers::LineReader;

const US: u64 = 1_000_000;

/// The timing keywords shared by the three levels; `None` = not stated at this level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timing {
    /// Seconds.
    pub delay_loop: Option<f64>,
    pub connect_timeout: Option<f64>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<f64>,
    pub warmup: Option<f64>,
    pub alpha: Option<bool>,
    pub log_all_failures: Option<bool>,
}

impl Timing {
    /// `self` where stated, else `base`.
    pub fn over(&self, base: &Timing) -> Timing {
        Timing {
            delay_loop: self.delay_loop.or(base.delay_loop),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            retry: self.retry.or(base.retry),
            delay_before_retry: self.delay_before_retry.or(base.delay_before_retry),
            warmup: self.warmup.or(base.warmup),
            alpha: self.alpha.or(base.alpha),
            log_all_failures: self.log_all_failures.or(base.log_all_failures),
        }
    }
}

/// Which checker a block is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckerKind {
    Tcp,
    /// HTTP_GET.
    Http,
    /// SSL_GET: HTTP_GET over TLS.
    Ssl,
    Misc,
    /// SMTP_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, FILE_CHECK, BFD_CHECK: recognised, not modelled.
    Other(String),
}

/// Checker block names keepalived 2.2.7 knows (`install_checkers_keyword`).
pub const CHECKER_NAMES: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "MISC_CHECK",
    "SMTP_CHECK",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "FILE_CHECK",
    "BFD_CHECK",
];

/// One `url { }` of HTTP_GET / SSL_GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub line: usize,
    pub path: String,
    /// Inclusive ranges; empty = keepalived's default 200-299.
    pub status_codes: Vec<(u16, u16)>,
    /// MD5 of the body, lower-case hex.
    pub digest: Option<String>,
}

/// One checker block of a real server.
#[derive(Debug, Clone, PartialEq)]
pub struct Checker {
    pub line: usize,
    pub kind: CheckerKind,
    /// The block's own timing keywords.
    pub timing: Timing,
    pub connect_ip: Option<(usize, String)>,
    pub connect_port: Option<(usize, u16)>,
    pub urls: Vec<Url>,
    /// `misc_path`, quotes removed.
    pub misc_path: Option<String>,
    /// Whole seconds, as keepalived reads it.
    pub misc_timeout: Option<u32>,
    pub misc_dynamic: bool,
    /// Keywords read but not modelled (bindto, virtualhost, regex, user, ...), with their lines.
    pub unmodelled: Vec<(usize, String)>,
}

impl Checker {
    /// keepalived's name of the block.
    pub fn name(&self) -> &str {
        match &self.kind {
            CheckerKind::Tcp => "TCP_CHECK",
            CheckerKind::Http => "HTTP_GET",
            CheckerKind::Ssl => "SSL_GET",
            CheckerKind::Misc => "MISC_CHECK",
            CheckerKind::Other(name) => name,
        }
    }
}

/// Which level a timing keyword is read at: each has its own wording for a bad value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    VirtualServer,
    RealServer,
    Checker,
}

/// `on`/`off` style argument of a flag keyword; `None` (with keepalived's warning) when invalid.
fn true_false(arg: Option<&str>) -> Option<bool> {
    match arg.map(str::to_ascii_lowercase).as_deref() {
        None | Some("on" | "true" | "yes") => Some(true),
        Some("off" | "false" | "no") => Some(false),
        Some(_) => None,
    }
}

/// Reads a timing keyword of `level` into `timing`; false when `node` is not one.
pub(super) fn timing_keyword(node: &Node, level: Level, timing: &mut Timing, warnings: &mut Vec<Warning>) -> bool {
    let arg = node.args.first().map(String::as_str);
    let mut r = LineReader {
        line: node.line,
        warnings,
    };
    let seconds = |r: &mut LineReader, min: u64| -> Option<f64> {
        let micros = r.micros(arg?, min, u64::MAX)?;
        Some(micros as f64 / US as f64)
    };
    let (vs, rs) = (level == Level::VirtualServer, level == Level::RealServer);
    match node.keyword.as_str() {
        "delay_loop" => match seconds(&mut r, 1) {
            Some(v) => timing.delay_loop = Some(v),
            None if vs => r.warn(format!(
                "virtual server delay loop '{}' invalid - ignoring",
                arg.unwrap_or("")
            )),
            None if rs => r.warn(format!(
                "real server delay_loop '{}' invalid - ignoring",
                arg.unwrap_or("")
            )),
            None => r.warn(format!("delay_loop '{}' is invalid - ignoring", arg.unwrap_or(""))),
        },
        "connect_timeout" => match seconds(&mut r, 1) {
            Some(v) => timing.connect_timeout = Some(v),
            None => {
                let who = match level {
                    Level::VirtualServer => "virtual server ",
                    Level::RealServer => "real server ",
                    Level::Checker => "",
                };
                r.warn(format!("{who}connect_timeout {} invalid - ignoring", arg.unwrap_or("")))
            }
        },
        "delay_before_retry" => match seconds(&mut r, 0) {
            Some(v) => timing.delay_before_retry = Some(v),
            None if vs => r.warn(format!(
                "virtual server delay before retry '{}' invalid - ignoring",
                arg.unwrap_or("")
            )),
            None if rs => r.warn(format!(
                "real server delay_before_retry '{}' invalid - ignoring",
                arg.unwrap_or("")
            )),
            None => r.warn(format!(
                "Invalid delay_before_retry connection value '{}'",
                arg.unwrap_or("")
            )),
        },
        "warmup" => match seconds(&mut r, 0) {
            Some(v) => timing.warmup = Some(v),
            None if vs => r.warn(format!(
                "virtual server warmup '{}' invalid - ignoring",
                arg.unwrap_or("")
            )),
            None if rs => r.warn(format!("real server warmup '{}' invalid - ignoring", arg.unwrap_or(""))),
            None => r.warn(format!("Invalid warmup connection value '{}'", arg.unwrap_or(""))),
        },
        "retry" => {
            // The virtual and real server levels take 1 and up, a checker 0 and up.
            let min = if level == Level::Checker { 0 } else { 1 };
            match arg.and_then(|a| r.unsigned(a, min, u32::MAX)) {
                Some(v) => timing.retry = Some(v),
                None if level == Level::Checker => {
                    r.warn(format!("Invalid retry connection value '{}'", arg.unwrap_or("")))
                }
                None => r.warn(format!("retry value invalid - {}", arg.unwrap_or(""))),
            }
        }
        "alpha" if vs => timing.alpha = Some(true),
        "alpha" => match true_false(arg) {
            Some(v) => timing.alpha = Some(v),
            None => r.warn(format!("Invalid alpha parameter {}", arg.unwrap_or(""))),
        },
        "log_all_failures" if level == Level::Checker => match true_false(arg) {
            Some(v) => timing.log_all_failures = Some(v),
            None => r.warn(format!("Invalid log_all_failures parameter {}", arg.unwrap_or(""))),
        },
        _ => return false,
    }
    true
}

/// A checker block of a real server; `None` when keepalived drops it (with its warning).
pub(super) fn checker(node: &Node, warnings: &mut Vec<Warning>) -> Option<Checker> {
    let kind = match node.keyword.as_str() {
        "TCP_CHECK" => CheckerKind::Tcp,
        "HTTP_GET" => CheckerKind::Http,
        "SSL_GET" => CheckerKind::Ssl,
        "MISC_CHECK" => CheckerKind::Misc,
        other => CheckerKind::Other(other.to_string()),
    };
    let mut c = Checker {
        line: node.line,
        kind,
        timing: Timing::default(),
        connect_ip: None,
        connect_port: None,
        urls: Vec::new(),
        misc_path: None,
        misc_timeout: None,
        misc_dynamic: false,
        unmodelled: Vec::new(),
    };
    if matches!(c.kind, CheckerKind::Other(_)) {
        return Some(c);
    }
    let http = matches!(c.kind, CheckerKind::Http | CheckerKind::Ssl);
    let misc = c.kind == CheckerKind::Misc;
    for child in node.children.iter().flatten() {
        let l = child.line;
        let arg = child.args.first().map(String::as_str);
        if timing_keyword(child, Level::Checker, &mut c.timing, warnings) {
            if misc && child.keyword == "connect_timeout" {
                // MISC_CHECK has no connection keywords.
                c.timing.connect_timeout = None;
                warnings.push(Warning::new(l, format!("Unknown keyword '{}'", child.keyword)));
            }
            continue;
        }
        let mut r = LineReader { line: l, warnings };
        match (child.keyword.as_str(), misc) {
            ("connect_ip", false) => c.connect_ip = arg.map(|a| (l, a.to_string())),
            ("connect_port", false) => match arg.and_then(|a| r.unsigned(a, 1, 65535)) {
                Some(p) => c.connect_port = Some((l, p as u16)),
                None => r.warn(format!("Invalid checker connect_port '{}'", arg.unwrap_or(""))),
            },
            ("bindto" | "bind_port" | "bind_if" | "fwmark", false) => c.unmodelled.push((l, child.keyword.clone())),
            ("nb_get_retry", false) if http => {
                r.warn("nb_get_retry is deprecated - please use 'retry'");
                match arg.and_then(|a| r.unsigned(a, 0, u32::MAX)) {
                    Some(v) => c.timing.retry = Some(v),
                    None => r.warn(format!("Invalid nb_get_retry value '{}'", arg.unwrap_or(""))),
                }
            }
            ("virtualhost" | "http_protocol" | "enable_sni" | "fast_recovery", false) if http => {
                c.unmodelled.push((l, child.keyword.clone()))
            }
            ("url", false) if http => {
                if let Some(url) = url(child, &mut c.unmodelled, warnings) {
                    c.urls.push(url);
                }
            }
            ("misc_path", true) => c.misc_path = Some(unquote(&child.args.join(" "))),
            ("misc_timeout", true) => match arg.and_then(|a| r.unsigned(a, 0, u32::MAX / US as u32)) {
                Some(v) => c.misc_timeout = Some(v),
                None => r.warn(format!("Invalid misc_timeout value '{}'", arg.unwrap_or(""))),
            },
            ("misc_dynamic", true) => c.misc_dynamic = true,
            ("user", true) => c.unmodelled.push((l, child.keyword.clone())),
            (keyword, _) => r.warn(format!("Unknown keyword '{keyword}'")),
        }
    }
    if http && c.urls.is_empty() {
        warnings.push(Warning::new(
            node.end_line,
            "HTTP/SSL_GET checker has no urls specified - ignoring",
        ));
        return None;
    }
    if misc && c.misc_path.is_none() {
        warnings.push(Warning::new(
            node.end_line,
            "No script path has been specified for MISC_CHECKER - skipping",
        ));
        return None;
    }
    Some(c)
}

/// One `url { path; status_code; digest }`; `None` without a path, as keepalived drops it.
fn url(node: &Node, unmodelled: &mut Vec<(usize, String)>, warnings: &mut Vec<Warning>) -> Option<Url> {
    let mut url = Url {
        line: node.line,
        path: String::new(),
        status_codes: Vec::new(),
        digest: None,
    };
    let mut path = None;
    for child in node.children.iter().flatten() {
        let l = child.line;
        match child.keyword.as_str() {
            // keepalived keeps the first word (`set_value`); the rest it drops without a word.
            "path" => {
                if let [first, rest @ ..] = child.args.as_slice() {
                    if !rest.is_empty() {
                        warnings.push(Warning::new(
                            l,
                            format!(
                                "`path {first}` is followed by `{}`, which keepalived ignores: put each statement on a line of its own",
                                rest.join(" ")
                            ),
                        ));
                    }
                    path = Some(first.clone());
                }
            }
            "status_code" => {
                for code in &child.args {
                    match status_range(code) {
                        Some(range) => url.status_codes.push(range),
                        None => warnings.push(Warning::new(l, format!("Invalid HTTP_GET status code '{code}'"))),
                    }
                }
            }
            "digest" => {
                let hex = child.args.first().cloned().unwrap_or_default();
                if url.digest.is_some() {
                    warnings.push(Warning::new(l, format!("Digest '{hex}' is a duplicate")));
                } else if hex.len() != 32 {
                    warnings.push(Warning::new(
                        l,
                        format!("digest '{hex}' character length should be 32 rather than {}", hex.len()),
                    ));
                } else if let Some(i) = (0..16)
                    .rev()
                    .find(|i| !hex.as_bytes()[2 * i..2 * i + 2].iter().all(u8::is_ascii_hexdigit))
                {
                    // keepalived reads the pairs from the end, cutting the text as it goes.
                    warnings.push(Warning::new(
                        l,
                        format!(
                            "Unable to interpret hex digit in '{}' at offset {}/{}",
                            &hex[..2 * i + 2],
                            2 * i,
                            2 * i + 1
                        ),
                    ));
                } else {
                    url.digest = Some(hex.to_ascii_lowercase());
                }
            }
            "virtualhost" | "regex" | "regex_no_match" | "regex_options" | "regex_min_offset" | "regex_max_offset"
            | "regex_stack" => unmodelled.push((l, child.keyword.clone())),
            other => warnings.push(Warning::new(l, format!("Unknown keyword '{other}'"))),
        }
    }
    match path {
        Some(p) => {
            url.path = p;
            Some(url)
        }
        None => {
            warnings.push(Warning::new(
                node.end_line,
                "HTTP/SSL_GET checker url has no path - ignoring",
            ));
            None
        }
    }
}

/// `200` or `200-299`, within keepalived's 100..=599.
fn status_range(text: &str) -> Option<(u16, u16)> {
    let (a, b) = text.split_once('-').unwrap_or((text, text));
    let (a, b): (u16, u16) = (a.parse().ok()?, b.parse().ok()?);
    let ok = |c: u16| (100..=599).contains(&c);
    (ok(a) && ok(b) && a <= b).then_some((a, b))
}

fn unquote(text: &str) -> String {
    let t = text.trim();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
        .to_string()
}
