//! An operator's set-up (IPVS table or keepalived.conf) as a scenario file in the
//! format of scenarios/README.md. The scenario runs in the lab, so addresses are
//! mapped onto the lab's default networks (VIP .100 of `lan`; real servers .11+
//! of `lan` in dr/tun, of `private` in nat/fullnat) and the originals are kept
//! in comments. Addresses that already lie there (a table taken from a lab) are
//! kept, so such a table imports back to its own scenario. What cannot be modelled becomes a warning, or an error with the
//! line when nothing importable is left.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use crate::scenario::keywords::{Keyword, Mode, Scheduler};

use super::error::{ParseError, Warning};
use super::evidence::dominant_mode;
use super::fwmark_service::{self, Marks, PlanMark};
use super::keepalived::{self, KeepalivedConfig, LbKind, VsAddress};
use super::keepalived_vrrp::VrrpConfig;
use super::table::{IpvsTable, TableForward, TableProto, TableService};
use super::vrrp_contradictions;
use super::vrrp_scenario::{self, ServiceSide, VrrpSections};
use super::{group_plan, ipvsadm, keepalived_health, procfs};
use crate::lvs::Proto;

/// Input formats [`import_text`] recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Keepalived,
    IpvsadmSave,
    /// `ipvsadm -Ln` (any columns), possibly with `-Lnc` rows.
    IpvsadmList,
    /// /proc/net/ip_vs.
    ProcIpVs,
    /// `iptables-save` / `iptables -t mangle -S`: marking rules for fwmark services.
    Iptables,
    /// `nft list ruleset`: marking rules for fwmark services.
    Nft,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Keepalived => "keepalived.conf",
            InputFormat::IpvsadmSave => "ipvsadm-save -n",
            InputFormat::IpvsadmList => "ipvsadm -Ln",
            InputFormat::ProcIpVs => "/proc/net/ip_vs",
            InputFormat::Iptables => "iptables-save",
            InputFormat::Nft => "nft list ruleset",
        }
    }

    /// Marking rules, which go beside a table or keepalived.conf.
    pub fn is_marks(self) -> bool {
        matches!(self, InputFormat::Iptables | InputFormat::Nft)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {} input: {error}", format.name())]
    Parse {
        origin: String,
        format: InputFormat,
        error: ParseError,
    },
    #[error("{origin}: cannot tell the format: expected keepalived.conf, `ipvsadm-save -n` or `ipvsadm -Ln` output")]
    UnknownFormat { origin: String },
    #[error("{origin}: {}", render_line(*line, message))]
    Unsupported {
        origin: String,
        line: usize,
        message: String,
    },
    /// The generated scenario does not pass `scenario::parse`: an importer bug.
    #[error("the imported scenario does not check (importer bug):\n{0}")]
    Scenario(String),
}

fn render_line(line: usize, message: &str) -> String {
    if line == 0 {
        message.to_string()
    } else {
        format!("line {line}: {message}")
    }
}

/// A scenario made from an imported set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub toml: String,
    pub warnings: Vec<Warning>,
}

/// Reads `path`, recognises its format and makes a scenario; warnings are rendered
/// as `line N: ...`.
pub fn import_file(path: &Path) -> Result<(String, Vec<String>), ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let imported = import_text(&text, &path.display().to_string())?;
    Ok((
        imported.toml,
        imported.warnings.iter().map(Warning::to_string).collect(),
    ))
}

/// `lvslab import a.conf b.conf ...`: one file is [`import_file`]. Several are the
/// keepalived.conf files of one VRRP set-up, one node each: the scenario comes from the first,
/// its peers are the other files' nodes (instead of invented ones), and contradictions between
/// the files (adverts one node drops, equal priorities, weights that cannot move the VIP) are
/// warnings. Each warning is `origin: line N: ...`.
pub fn import_files(paths: &[PathBuf]) -> Result<(String, Vec<String>), ImportError> {
    let [first, peers @ ..] = paths else {
        return Err(ImportError::Unsupported {
            origin: "lvslab import".to_string(),
            line: 0,
            message: "no file given".to_string(),
        });
    };
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).map_err(|source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    if peers.is_empty() {
        return import_file(first);
    }
    // Marking rules (iptables, nft) go with the table or keepalived.conf, wherever given.
    let mut texts = Vec::new();
    for path in paths {
        texts.push((read(path)?, path.display().to_string()));
    }
    let (mark_files, texts): (Vec<_>, Vec<_>) = texts
        .into_iter()
        .partition(|(t, _)| sniff(t).is_some_and(InputFormat::is_marks));
    if !mark_files.is_empty() {
        let marks: Vec<(&str, &str)> = mark_files.iter().map(|(t, o)| (t.as_str(), o.as_str())).collect();
        let marks = Marks::parse(&marks)?;
        if let [(text, origin)] = texts.as_slice() {
            let imported = import_text_marked(text, origin, &marks)?;
            return Ok((
                imported.toml,
                imported.warnings.iter().map(Warning::to_string).collect(),
            ));
        }
        return import_vrrp_files(texts, &marks);
    }
    import_vrrp_files(texts, &Marks::default())
}

/// Several keepalived.conf files of one VRRP set-up (see [`import_files`]).
fn import_vrrp_files(texts: Vec<(String, String)>, marks: &Marks) -> Result<(String, Vec<String>), ImportError> {
    if texts.is_empty() {
        return Err(ImportError::Unsupported {
            origin: "lvslab import".to_string(),
            line: 0,
            message: "only marking rules given: add the ipvsadm-save -n output or keepalived.conf they go with"
                .to_string(),
        });
    }
    let mut files = Vec::new();
    for (text, origin) in texts {
        if sniff(&text) != Some(InputFormat::Keepalived) {
            return Err(ImportError::Unsupported {
                origin,
                line: 0,
                message:
                    "several files are the keepalived.conf files of one VRRP set-up: this is not a keepalived.conf"
                        .to_string(),
            });
        }
        let config = keepalived::parse(&text).map_err(|error| ImportError::Parse {
            origin: origin.clone(),
            format: InputFormat::Keepalived,
            error,
        })?;
        files.push((origin, config));
    }
    let peer_vrrp: Vec<(&str, &VrrpConfig)> = files[1..].iter().map(|(o, c)| (o.as_str(), &c.vrrp)).collect();
    let (origin, config) = &files[0];
    let imported = keepalived_plan(config, origin, &peer_vrrp, marks)?;
    if let Err(report) = crate::scenario::parse(&imported.toml, origin) {
        return Err(ImportError::Scenario(report.render(origin)));
    }
    let said = |origin: &str, w: &Warning| format!("{origin}: {w}");
    let mut warnings: Vec<String> = imported.warnings.iter().map(|w| said(origin, w)).collect();
    for (origin, config) in &files[1..] {
        warnings.extend(config.warnings.iter().map(|w| said(origin, w)));
    }
    let all: Vec<(&str, &VrrpConfig)> = files.iter().map(|(o, c)| (o.as_str(), &c.vrrp)).collect();
    for (file, w) in vrrp_contradictions::across_files(&all) {
        warnings.push(said(all[file].0, &w));
    }
    Ok((imported.toml, warnings))
}

/// [`import_file`] on text; `origin` names it in messages and the scenario header.
pub fn import_text(text: &str, origin: &str) -> Result<Imported, ImportError> {
    import_text_marked(text, origin, &Marks::default())
}

/// [`import_text`] with the director's marking rules beside it, each `(text, origin)`
/// (`iptables-save`, `iptables -t mangle -S` or `nft list ruleset`): they give its fwmark
/// services their `[service.mark]`.
pub fn import_text_with_marks(text: &str, origin: &str, marks: &[(&str, &str)]) -> Result<Imported, ImportError> {
    import_text_marked(text, origin, &Marks::parse(marks)?)
}

fn import_text_marked(text: &str, origin: &str, marks: &Marks) -> Result<Imported, ImportError> {
    let format = sniff(text).ok_or_else(|| ImportError::UnknownFormat {
        origin: origin.to_string(),
    })?;
    if format.is_marks() {
        return Err(ImportError::Unsupported {
            origin: origin.to_string(),
            line: 0,
            message: format!(
                "{} input holds marking rules only: give it after the ipvsadm-save -n output or keepalived.conf it goes with",
                format.name()
            ),
        });
    }
    let parse_error = |error| ImportError::Parse {
        origin: origin.to_string(),
        format,
        error,
    };
    let imported = match format {
        InputFormat::Keepalived => {
            let config = keepalived::parse(text).map_err(parse_error)?;
            keepalived_plan(&config, origin, &[], marks)?
        }
        InputFormat::IpvsadmSave | InputFormat::IpvsadmList => {
            let table = ipvsadm::parse(text).map_err(parse_error)?;
            table_plan(&table, origin, format, marks)?
        }
        InputFormat::ProcIpVs => {
            let table =
                procfs::parse_ip_vs(text, procfs::kernel_hz().unwrap_or(procfs::FALLBACK_HZ)).map_err(parse_error)?;
            table_plan(&table, origin, format, marks)?
        }
        InputFormat::Iptables | InputFormat::Nft => unreachable!("refused above"),
    };
    // The promise to callers: what we emit always checks.
    if let Err(report) = crate::scenario::parse(&imported.toml, origin) {
        return Err(ImportError::Scenario(report.render(origin)));
    }
    Ok(imported)
}

/// Which format `text` is, from its first meaningful lines.
pub fn sniff(text: &str) -> Option<InputFormat> {
    let lines = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
    };
    let first = lines().next()?;
    if let Some(marks) = fwmark_service::mark_format(text) {
        return Some(marks);
    }
    if first.starts_with("-A ") || first.starts_with("-a ") {
        return Some(InputFormat::IpvsadmSave);
    }
    let is_proc_row = |l: &str| {
        let mut words = l.split_whitespace();
        let (Some(proto), Some(addr)) = (words.next(), words.next()) else {
            return false;
        };
        let hex8 = |s: &str| s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
        (TableProto::from_name(proto).is_some() && addr.split_once(':').is_some_and(|(a, p)| hex8(a) && p.len() == 4))
            || (proto == "FWM" && hex8(addr))
    };
    if lines().take(50).any(is_proc_row) {
        return Some(InputFormat::ProcIpVs);
    }
    if first.starts_with("IP Virtual Server")
        || first == "IPVS connection entries"
        || first.starts_with("Prot ")
        || first.starts_with("->")
        || ["TCP ", "UDP ", "SCTP ", "FWM "].iter().any(|p| first.starts_with(p))
    {
        return Some(InputFormat::IpvsadmList);
    }
    if lines()
        .take(200)
        .any(|l| l.contains('{') || l.starts_with("virtual_server") || l.starts_with("include"))
    {
        return Some(InputFormat::Keepalived);
    }
    None
}

/// What to write out: the services, each with its mode (`modes[i]` is `services[i]`'s).
pub(super) struct Plan {
    source: String,
    modes: Vec<Mode>,
    services: Vec<PlanService>,
}

/// Why `svc` in `mode` cannot join `services` (in `modes`): a real server of it is in an
/// earlier service of a clashing mode. A NAT real server routes its replies through the
/// director; a DR/TUN one answers from the VIP, which that director drops as a martian.
fn mode_clash(services: &[PlanService], modes: &[Mode], svc: &PlanService, mode: Mode) -> Option<String> {
    let direct_reply = |m: Mode| matches!(m, Mode::Dr | Mode::Tun);
    services.iter().zip(modes).find_map(|(earlier, &m)| {
        let clash = (m == Mode::Nat && direct_reply(mode)) || (mode == Mode::Nat && direct_reply(m));
        let shared = svc
            .servers
            .iter()
            .find(|s| earlier.servers.iter().any(|e| e.address == s.address))?;
        clash.then(|| {
            format!(
                "it is {mode} and real server {} is also in the {m} service {}: a NAT real server routes its replies through the director, a DR/TUN one answers from the VIP, which that director drops as a martian (its own address)",
                shared.original,
                earlier.original()
            )
        })
    })
}

/// One service, mode-independent.
pub(super) struct PlanService {
    pub(super) line: usize,
    pub(super) vip: String,
    pub(super) port: u16,
    pub(super) proto: Proto,
    pub(super) scheduler: Scheduler,
    pub(super) flags: Vec<String>,
    pub(super) persistence: Option<u32>,
    pub(super) prefix: Option<u8>,
    pub(super) one_packet: bool,
    pub(super) servers: Vec<PlanServer>,
    /// `[service.check]` keys, as `key = value` TOML.
    pub(super) check: Option<PlanCheck>,
    /// The ports are the kernel's (an IPVS table): a DR/TUN destination keeps its own port, as
    /// netlink lets one add it, instead of keepalived's reset to the service port.
    pub(super) kernel_ports: bool,
    /// The source tool's silent defaults applied to it: (scenario key, the tool's words).
    pub(super) defaults: Vec<(&'static str, String)>,
    /// A firewall-mark service: its mark and match (`port` is then the traffic's port).
    pub(super) fwmark: Option<PlanMark>,
    /// Its `name` when the default would not do (a group's entries).
    pub(super) name: Option<String>,
    /// The `virtual_server_group` entry it was made from.
    pub(super) group: Option<PlanGroupEntry>,
}

/// Where a group's service comes from, for its comment and `[service.origin]`.
pub(super) struct PlanGroupEntry {
    pub(super) group: String,
    /// The entry's line (the virtual_server's is `PlanService::line`).
    pub(super) line: usize,
    pub(super) written: String,
}

impl PlanService {
    /// `TCP 10.0.0.1:80` / `FWM 1`, for comments.
    fn original(&self) -> String {
        match &self.fwmark {
            Some(m) if self.vip.is_empty() => format!("FWM {}", m.mark),
            Some(m) => format!("FWM {} marking {}", m.mark, self.vip),
            None => format!("{}:{}", self.vip, self.port),
        }
    }

    /// The scenario's name for it.
    fn default_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        match &self.fwmark {
            Some(m) => format!("fwmark/{}", m.mark),
            None => format!("{}/{}", self.proto, self.port),
        }
    }
}

/// A service's health checking: `[service.check]` and the sorry server.
pub(super) struct PlanCheck {
    pub(super) keys: Vec<(String, String)>,
    /// The sorry server's address: one of the real servers (`sorry_server = "rsN"`) or the
    /// extra real server named "sorry".
    pub(super) sorry: Option<IpAddr>,
}

pub(super) struct PlanServer {
    /// The address as given, kept in the scenario when it already fits the lab.
    pub(super) address: IpAddr,
    pub(super) original: String,
    pub(super) line: usize,
    pub(super) port: Option<u16>,
    pub(super) weight: u32,
    pub(super) note: Option<String>,
    /// The real server's `check = { ... }` keys, as TOML.
    pub(super) check: Vec<(String, String)>,
    /// Its own `inhibit_on_failure`.
    pub(super) inhibit: Option<bool>,
    /// keepalived's sorry_server, added as a real server of its own.
    pub(super) sorry: bool,
}

/// Scenario from an IPVS table: every service in its own mode (its destinations'), each on its
/// own VIP; one the lab cannot run, or whose real server is in a service of a clashing mode
/// (NAT beside DR/TUN), is skipped with a warning. Fwmark services' matches are assumed (see
/// [`table_plan`] for the rules given beside the table).
pub fn table_to_scenario(table: &IpvsTable, origin: &str, format: InputFormat) -> Result<Imported, ImportError> {
    table_plan(table, origin, format, &Marks::default())
}

/// [`table_to_scenario`] with the director's marking rules for its fwmark services.
fn table_plan(table: &IpvsTable, origin: &str, format: InputFormat, marks: &Marks) -> Result<Imported, ImportError> {
    let unsupported = |line: usize, message: String| ImportError::Unsupported {
        origin: origin.to_string(),
        line,
        message,
    };
    let mut warnings = table.warnings.clone();
    warnings.extend(marks.warnings());
    // The kernel lists FWM services after the address services; a scenario puts its fwmark
    // service first (the address services beside it are the exceptions to the mark), so the
    // import does too and the table of a lab imports back to its scenario.
    let mut ordered: Vec<&TableService> = table.services.iter().collect();
    ordered.sort_by_key(|s| s.fwmark.is_none());
    let Some(&first) = ordered.first() else {
        return Err(unsupported(
            0,
            "no virtual service found (a connection listing alone cannot make a scenario)".into(),
        ));
    };
    let (service, mode) = table_service(first, marks, &mut warnings).map_err(|(line, m)| unsupported(line, m))?;
    let mut services = vec![service];
    let mut modes = vec![mode];
    for &other in ordered.iter().filter(|s| !std::ptr::eq(**s, first)) {
        let skipped = |why: &str| {
            Warning::new(
                other.line,
                format!("{} skipped: {why} (imported {})", other.describe(), first.describe()),
            )
        };
        let mut own = Vec::new();
        match table_service(other, marks, &mut own) {
            Err((_, why)) => warnings.push(skipped(&why)),
            Ok((svc, m)) => match mode_clash(&services, &modes, &svc, m) {
                Some(why) => warnings.push(skipped(&why)),
                None => {
                    warnings.extend(own);
                    services.push(svc);
                    modes.push(m);
                }
            },
        }
    }
    let plan = Plan {
        source: format!(
            "{} of {} ({}, line {})",
            first.describe(),
            origin,
            format.name(),
            first.line
        ),
        modes,
        services,
    };
    render(plan, origin, warnings, None)
}

/// One address service of a table, and its forwarding mode; `Err` with the line and why
/// when the lab cannot run it.
fn table_service(
    svc: &TableService,
    marks: &Marks,
    warnings: &mut Vec<Warning>,
) -> Result<(PlanService, Mode), (usize, String)> {
    let (vip, proto, port, fwmark) = match svc.fwmark {
        Some(_) if svc.fwmark_ipv6 => {
            return Err((svc.line, "IPv6 fwmark service is unsupported (the lab is IPv4)".into()))
        }
        Some(mark) => {
            let planned = fwmark_service::plan(mark, svc.line, marks, warnings);
            (planned.vip, planned.proto, planned.port, Some(planned.mark))
        }
        None => {
            let (vip, proto) = service_identity(svc).map_err(|m| (svc.line, m))?;
            (vip, proto, svc.port, None)
        }
    };
    let forward_other = svc.dests.iter().find_map(|d| match &d.forward {
        Some(TableForward::Other(word)) => Some((d.line, word.clone())),
        _ => None,
    });
    let mode = match dominant_mode(svc) {
        Some(mode) => mode,
        None => match forward_other {
            Some((line, word)) => {
                return Err((
                    line,
                    format!("unknown forwarding method `{word}` (expected -g, -m or -i)"),
                ))
            }
            None => {
                warnings.push(Warning::new(
                    svc.line,
                    "forwarding method not shown: assumed DR (ipvsadm's default)",
                ));
                Mode::Dr
            }
        },
    };
    if svc.dests.iter().any(|d| d.forward == Some(TableForward::Local)) {
        warnings.push(Warning::new(
            svc.line,
            "a `Local` real server (the director serving itself) is modelled as an ordinary DR real server",
        ));
    }
    let methods: Vec<_> = svc.dests.iter().filter_map(|d| d.forward.clone()).collect();
    if methods.windows(2).any(|w| w[0] != w[1]) {
        warnings.push(Warning::new(
            svc.line,
            format!("real servers use mixed forwarding methods; all imported as {mode}"),
        ));
    }
    if let Some(d) = svc.dests.iter().find(|d| svc.fwmark.is_some() && d.port != 0) {
        warnings.push(Warning::new(
            d.line,
            format!(
                "real-server port {} dropped: a fwmark service's real servers keep each packet's port",
                d.port
            ),
        ));
    }
    let scheduler_name = if svc.scheduler.is_empty() {
        warnings.push(Warning::new(
            svc.line,
            "scheduler not shown in this listing (--stats/--rate): assumed wlc",
        ));
        "wlc"
    } else {
        svc.scheduler.as_str()
    };
    let servers = svc
        .dests
        .iter()
        .map(|d| PlanServer {
            address: d.addr,
            original: format_endpoint(d.addr, Some(d.port)),
            line: d.line,
            // A fwmark service's real servers keep each packet's port (`-r RIP:0`).
            port: Some(d.port).filter(|_| svc.fwmark.is_none()),
            weight: d.weight.unwrap_or(1),
            note: None,
            check: Vec::new(),
            inhibit: None,
            sorry: false,
        })
        .collect();
    let service = PlanService {
        line: svc.line,
        vip,
        port,
        proto,
        scheduler: scheduler(scheduler_name, svc.line).map_err(|m| (svc.line, m))?,
        flags: svc.flags.clone(),
        persistence: svc.persistence,
        prefix: svc.persistence_prefix,
        one_packet: svc.one_packet,
        servers,
        check: None,
        kernel_ports: true,
        defaults: Vec::new(),
        fwmark,
        name: None,
        group: None,
    };
    Ok((service, mode))
}

/// Scenario from keepalived.conf: every `virtual_server IP PORT` (and `fwmark N`, and each
/// address of a `virtual_server group NAME`'s entries) in its own `lb_kind`, each on its own
/// VIP; one the lab cannot run, or whose real server is in a virtual_server of a clashing
/// lb_kind (NAT beside DR/TUN), is skipped with a warning.
pub fn keepalived_to_scenario(config: &KeepalivedConfig, origin: &str) -> Result<Imported, ImportError> {
    keepalived_plan(config, origin, &[], &Marks::default())
}

/// [`keepalived_to_scenario`] with the peers' own files (see [`import_files`]).
pub fn keepalived_to_scenario_with_peers(
    config: &KeepalivedConfig,
    origin: &str,
    peers: &[(&str, &VrrpConfig)],
) -> Result<Imported, ImportError> {
    keepalived_plan(config, origin, peers, &Marks::default())
}

/// [`keepalived_to_scenario_with_peers`] with the director's marking rules for its
/// `virtual_server fwmark N` blocks.
fn keepalived_plan(
    config: &KeepalivedConfig,
    origin: &str,
    peers: &[(&str, &VrrpConfig)],
    marks: &Marks,
) -> Result<Imported, ImportError> {
    let unsupported = |line: usize, message: String| ImportError::Unsupported {
        origin: origin.to_string(),
        line,
        message,
    };
    let mut warnings = config.warnings.clone();
    warnings.extend(marks.warnings());
    let Some(first) = config.virtual_servers.first() else {
        let hint = if warnings.iter().any(|w| w.message.contains("include")) {
            " (they may be in an included file, which is not followed)"
        } else if warnings.iter().any(|w| w.message.starts_with("Virtual server group")) {
            " that keepalived keeps (see the warnings about its virtual_server group)"
        } else {
            ""
        };
        return Err(unsupported(0, format!("no virtual_server block found{hint}")));
    };
    let (planned, mode) =
        services_of(first, marks, group_plan::MAX_SERVICES, &mut warnings).map_err(|(line, m)| unsupported(line, m))?;
    let mut services: Vec<PlanService> = Vec::new();
    let mut modes: Vec<Mode> = Vec::new();
    for mut svc in planned {
        if !unique(&services, &svc, &mut warnings) {
            continue;
        }
        match services.is_empty() {
            true => keepalived_health::plan(first, &mut svc, mode, &mut warnings),
            false => keepalived_health::plan_later(first, &mut svc, mode, &mut warnings),
        }
        services.push(svc);
        modes.push(mode);
    }
    for other in config.virtual_servers.iter().skip(1) {
        let skipped = |why: &str| {
            Warning::new(
                other.line,
                format!(
                    "`{}` skipped: {why} (imported `{}`)",
                    other.describe(),
                    first.describe()
                ),
            )
        };
        let mut own = Vec::new();
        let room = group_plan::MAX_SERVICES.saturating_sub(services.len());
        match services_of(other, marks, room, &mut own) {
            Err((_, why)) => warnings.push(skipped(&why)),
            Ok((planned, m)) => match planned.iter().find_map(|svc| mode_clash(&services, &modes, svc, m)) {
                Some(why) => warnings.push(skipped(&why)),
                None => {
                    warnings.extend(own);
                    for mut svc in planned {
                        if unique(&services, &svc, &mut warnings) {
                            keepalived_health::plan_later(other, &mut svc, m, &mut warnings);
                            services.push(svc);
                            modes.push(m);
                        }
                    }
                }
            },
        }
    }
    // A fwmark service's VIP is the one its match names (the lab's default when none).
    let addr = match first.address {
        VsAddress::Ip { addr, .. } => addr,
        _ => services[0].vip.parse().unwrap_or(IpAddr::V4(lab_vip(""))),
    };
    // The VRRP sections follow the lab's layout: nat (a gateway to float) when any service is.
    let layout = if modes.contains(&Mode::Nat) { Mode::Nat } else { mode };
    let side = ServiceSide {
        vip: addr,
        lab_vip: lab_vip(&services[0].vip),
        mode: layout,
        service_vips: services.iter().filter_map(|s| s.vip.parse().ok()).collect(),
    };
    let vrrp = vrrp_scenario::sections_with_peers(&config.vrrp, &side, peers);
    let plan = Plan {
        source: format!(
            "`{}` of {} (keepalived.conf, line {})",
            first.describe(),
            origin,
            first.line
        ),
        modes,
        services,
    };
    render(plan, origin, warnings, vrrp)
}

/// The services of one virtual server (one per group entry address for `virtual_server group
/// NAME`, at most `room` of them), and their mode.
fn services_of(
    vs: &keepalived::VirtualServer,
    marks: &Marks,
    room: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<PlanService>, Mode), (usize, String)> {
    match &vs.group {
        Some(group) => group_plan::plan(vs, group, marks, room, warnings),
        None => keepalived_service(vs, marks, warnings).map(|(svc, mode)| (vec![svc], mode)),
    }
}

/// Whether `svc` is a service none of `services` already is; a repeat is a warning (IPVS
/// refuses to add a service twice, so keepalived's second add fails).
fn unique(services: &[PlanService], svc: &PlanService, warnings: &mut Vec<Warning>) -> bool {
    let same = |o: &&PlanService| match (&o.fwmark, &svc.fwmark) {
        (Some(a), Some(b)) => a.mark == b.mark,
        (None, None) => o.vip == svc.vip && o.port == svc.port && o.proto == svc.proto,
        _ => false,
    };
    let Some(earlier) = services.iter().find(same) else {
        return true;
    };
    let at = |s: &PlanService| s.group.as_ref().map_or(s.line, |g| g.line);
    warnings.push(Warning::new(
        at(svc),
        format!(
            "{} {} is already a service (line {}): IPVS refuses to add it twice, so keepalived's second add fails; imported once",
            svc.proto.as_str().to_ascii_uppercase(),
            svc.original(),
            at(earlier)
        ),
    ));
    false
}

/// One `virtual_server IP PORT`, with keepalived's defaults applied, and its mode.
fn keepalived_service(
    vs: &keepalived::VirtualServer,
    marks: &Marks,
    warnings: &mut Vec<Warning>,
) -> Result<(PlanService, Mode), (usize, String)> {
    let (vip, port, proto, fwmark) = match vs.address {
        VsAddress::Ip { addr, port } => {
            // keepalived's default, applied (and warned about) by the parser.
            let protocol = vs.protocol.unwrap_or(TableProto::Modelled(Proto::Udp));
            let (vip, proto) = identity(addr, port, protocol).map_err(|m| (vs.line, m))?;
            (vip, port, proto, None)
        }
        // keepalived ignores `protocol` for fwmark (the parser warns): the rules decide.
        VsAddress::Fwmark(mark) => {
            let planned = fwmark_service::plan(mark, vs.line, marks, warnings);
            (planned.vip, planned.port, planned.proto, Some(planned.mark))
        }
        VsAddress::Group(_) => return Err((vs.line, "a group's services are planned by group_plan".into())),
    };
    keepalived_shape(vs, vip, port, proto, fwmark, warnings)
}

/// The service `vs` describes on `vip:port` (or mark), with keepalived's defaults applied, and
/// its mode: everything but the address comes from the virtual server.
pub(super) fn keepalived_shape(
    vs: &keepalived::VirtualServer,
    vip: String,
    port: u16,
    proto: Proto,
    fwmark: Option<PlanMark>,
    warnings: &mut Vec<Warning>,
) -> Result<(PlanService, Mode), (usize, String)> {
    let kinds: Vec<LbKind> = vs.real_servers.iter().map(|r| vs.method_of(r)).collect();
    let kind = kinds.first().copied().or(vs.lb_kind).unwrap_or(LbKind::Nat);
    if kinds.iter().any(|k| *k != kind) {
        warnings.push(Warning::new(
            vs.line,
            "real servers use mixed forwarding methods; all imported as the first one's",
        ));
    }
    let mode = match kind {
        LbKind::Dr => Mode::Dr,
        LbKind::Nat => Mode::Nat,
        LbKind::Tun => Mode::Tun,
    };
    let servers = vs
        .real_servers
        .iter()
        .map(|r| PlanServer {
            address: r.addr,
            original: format_endpoint(r.addr, r.written_port),
            line: r.line,
            port: r.port,
            weight: r.weight.unwrap_or(1),
            note: None,
            check: Vec::new(),
            inhibit: None,
            sorry: false,
        })
        .collect();
    let mut persistence = vs.persistence_timeout;
    // keepalived turns persistence on (360 s) when only a granularity is given.
    if persistence.is_none() && vs.persistence_granularity.is_some() {
        persistence = Some(360);
    }
    let service = PlanService {
        line: vs.line,
        vip,
        port,
        proto,
        scheduler: scheduler(vs.scheduler.as_deref().unwrap_or("wlc"), vs.line).map_err(|m| (vs.line, m))?,
        flags: vs.flags.clone(),
        persistence,
        prefix: vs.persistence_granularity,
        one_packet: vs.one_packet,
        servers,
        check: None,
        kernel_ports: false,
        defaults: vs.defaults.clone(),
        fwmark,
        name: None,
        group: None,
    };
    Ok((service, mode))
}

/// Original VIP text and whether the service is UDP; errors for what the lab cannot run.
fn service_identity(svc: &TableService) -> Result<(String, Proto), String> {
    match (svc.vip, svc.proto) {
        (Some(vip), Some(proto)) => identity(vip, svc.port, proto),
        _ => Err("firewall-mark services are unsupported".into()),
    }
}

pub(super) fn identity(vip: IpAddr, port: u16, proto: TableProto) -> Result<(String, Proto), String> {
    if vip.is_ipv6() {
        return Err(format!("IPv6 service {vip} is unsupported (the lab is IPv4)"));
    }
    if port == 0 {
        return Err("port-0 (all ports) services are unsupported: a scenario serves one port".into());
    }
    match proto {
        TableProto::Modelled(p) => Ok((vip.to_string(), p)),
        TableProto::Sctp => Err("SCTP services are unsupported (TCP and UDP only)".into()),
    }
}

fn scheduler(name: &str, _line: usize) -> Result<Scheduler, String> {
    Scheduler::from_word(name).ok_or_else(|| {
        format!(
            "scheduler `{name}` is not one lvslab models (expected one of: {})",
            Scheduler::words().join(" ")
        )
    })
}

fn format_endpoint(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// Lab addresses real servers may take, in order: skipping the director's and routers'
/// low addresses, the VIP and the client range (.201+) on `lan`.
/// `behind`: on the private network of the nat layout, else on the clients' network.
fn lab_server_addresses(behind: bool) -> impl Iterator<Item = Ipv4Addr> {
    let nat = behind;
    (11..=250u8)
        .filter(move |h| nat || (*h != 100 && *h <= 200))
        .map(move |h| match nat {
            true => Ipv4Addr::new(198, 51, 100, h),
            false => Ipv4Addr::new(192, 0, 2, h),
        })
}

/// The original address when it already lies where the lab would put such a host (so a
/// table taken from a lab imports back to the same addresses); otherwise `None`.
fn fits_lab(addr: IpAddr, behind: bool) -> Option<Ipv4Addr> {
    let IpAddr::V4(v4) = addr else { return None };
    lab_server_addresses(behind).any(|a| a == v4).then_some(v4)
}

/// One lab address per real server: the original where it fits and is not taken, else the
/// next free one on its network (`behind[i]`: the private one). `None` when a network is full.
fn server_addresses(behind: &[bool], servers: &[&PlanServer], vips: &[Ipv4Addr]) -> Option<Vec<Ipv4Addr>> {
    let mut taken: Vec<Ipv4Addr> = vips.to_vec();
    let mut kept: Vec<Option<Ipv4Addr>> = Vec::new();
    for (s, &b) in servers.iter().zip(behind) {
        let keep = fits_lab(s.address, b).filter(|a| !taken.contains(a));
        taken.extend(keep);
        kept.push(keep);
    }
    let mut out = Vec::new();
    for (k, &b) in kept.into_iter().zip(behind) {
        let a = k.or_else(|| lab_server_addresses(b).find(|a| !taken.contains(a)))?;
        taken.push(a);
        out.push(a);
    }
    Some(out)
}

/// The VIP as given when it is a lab address the client side can reach (the `lan` network,
/// below the client range), else the default.
pub(super) fn lab_vip(original: &str) -> Ipv4Addr {
    let default: Ipv4Addr = LAB_VIP.parse().expect("a valid address");
    match original.parse::<Ipv4Addr>() {
        Ok(v) if v.octets()[..3] == [192, 0, 2] && (11..=200).contains(&v.octets()[3]) => v,
        _ => default,
    }
}

const LAB_VIP: &str = "192.0.2.100";

/// Each distinct original VIP of `services` with its lab address: the first as [`lab_vip`]
/// maps it, a later one kept where it is a free lab address, else the next free one from the
/// first's up.
fn lab_vips(services: &[PlanService]) -> Vec<(String, Ipv4Addr)> {
    let mut map: Vec<(String, Ipv4Addr)> = Vec::new();
    // A fwmark service whose match names no single address ("") goes on the VIP of the first
    // service that has one.
    let fallback = services
        .iter()
        .map(|s| s.vip.as_str())
        .find(|v| !v.is_empty())
        .unwrap_or("");
    for svc in services {
        let original = if svc.vip.is_empty() { fallback } else { svc.vip.as_str() };
        if map.iter().any(|(o, _)| o == original) {
            continue;
        }
        let svc = PlanVip {
            vip: original.to_string(),
        };
        let taken = |a: &Ipv4Addr| map.iter().any(|(_, t)| t == a);
        let picked = match map.first() {
            None => lab_vip(&svc.vip),
            Some(_) => {
                let kept = Some(lab_vip(&svc.vip)).filter(|a| a.to_string() == svc.vip && !taken(a));
                match kept {
                    Some(a) => a,
                    None => (101..=200u8)
                        .map(|h| Ipv4Addr::new(192, 0, 2, h))
                        .find(|a| !taken(a))
                        .unwrap_or_else(|| lab_vip("")),
                }
            }
        };
        map.push((svc.vip.clone(), picked));
    }
    if services.iter().any(|s| s.vip.is_empty()) && !map.iter().any(|(o, _)| o.is_empty()) {
        let at = map
            .iter()
            .find(|(o, _)| o == fallback)
            .map_or_else(|| lab_vip(""), |(_, a)| *a);
        map.push((String::new(), at));
    }
    map
}

/// The one field of a service [`lab_vips`] maps.
struct PlanVip {
    vip: String,
}

pub(super) fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Comments must stay on one line.
fn comment_safe(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The scenario text; `vrrp` sections go between the services and the real servers.
fn render(
    plan: Plan,
    origin: &str,
    mut warnings: Vec<Warning>,
    vrrp: Option<VrrpSections>,
) -> Result<Imported, ImportError> {
    let unsupported = |line: usize, message: String| ImportError::Unsupported {
        origin: origin.to_string(),
        line,
        message,
    };
    let first = &plan.services[0];
    if first.servers.is_empty() {
        return Err(unsupported(
            first.line,
            "the service has no real servers; a scenario needs at least one".into(),
        ));
    }
    let mut out = String::new();
    let source = comment_safe(&plan.source);
    let _ = writeln!(out, "# Imported by `lvslab import` from {source}.");
    let _ = writeln!(
        out,
        "# Addresses are mapped onto the lab network; the originals are in comments."
    );
    let _ = writeln!(out, "description = {}", quote(&format!("imported: {}", plan.source)));
    let vip_map = lab_vips(&plan.services);
    let vip = vip_map[0].1;
    let vips: Vec<Ipv4Addr> = vip_map.iter().map(|(_, a)| *a).collect();
    let lab_vip_of = |original: &str| vip_map.iter().find(|(o, _)| o == original).map_or(vip, |(_, a)| *a);
    let first_mode = plan.modes[0];
    let dr_like_mode = |m: Mode| matches!(m, Mode::Dr | Mode::Tun);
    let dr_like = dr_like_mode(first_mode);

    // One real server per address, in the order the services first name them.
    let mut servers: Vec<&PlanServer> = Vec::new();
    for svc in &plan.services {
        for server in &svc.servers {
            if !servers.iter().any(|s| s.address == server.address) {
                servers.push(server);
            }
        }
    }
    let name_at = |n: usize| match servers[n].sorry {
        true => "sorry".to_string(),
        false => format!("rs{}", n + 1),
    };
    let name_of = |server: &PlanServer| name_at(servers.iter().position(|s| s.address == server.address).unwrap_or(0));
    let several = plan.services.len() > 1;
    for (index, (svc, &svc_mode)) in plan.services.iter().zip(&plan.modes).enumerate() {
        let _ = writeln!(out);
        let from = match &svc.group {
            Some(g) => format!(
                "# original line {}: `{}` of virtual_server_group {}, served by the virtual_server at line {}",
                g.line,
                comment_safe(&g.written),
                comment_safe(&g.group),
                svc.line
            ),
            None => format!("# original line {}", svc.line),
        };
        if several {
            let _ = writeln!(out, "{from}");
            let _ = writeln!(out, "[[service]]");
        } else {
            if svc.group.is_some() {
                let _ = writeln!(out, "{from}");
            }
            let _ = writeln!(out, "[service]");
        }
        if let Some(name) = &svc.name {
            let _ = writeln!(out, "name = {}", quote(name));
        }
        if index == 0 || lab_vip_of(&svc.vip) != vip {
            let _ = writeln!(
                out,
                "vip = {}  # original {}",
                quote(&lab_vip_of(&svc.vip).to_string()),
                svc.original()
            );
        }
        match &svc.fwmark {
            Some(m) => {
                let _ = writeln!(out, "fwmark = {}", m.mark);
            }
            None => {
                let _ = writeln!(out, "port = {}", svc.port);
            }
        }
        let _ = writeln!(out, "protocol = {}", quote(svc.proto.as_str()));
        // A later service without `mode` is in the first one's.
        if index == 0 || svc_mode != first_mode {
            let _ = writeln!(out, "mode = {}", quote(svc_mode.as_str()));
        }
        render_scheduling(&mut out, svc, &mut warnings);
        // Its real servers by name, when not every one.
        let mine: Vec<String> = svc.servers.iter().map(&name_of).collect();
        if mine.len() < servers.len() {
            let names: Vec<String> = mine.iter().map(|n| quote(n)).collect();
            let _ = writeln!(out, "real_servers = [{}]", names.join(", "));
        }
        // Sub-tables last: every plain key of the service comes before them.
        let check_table = |out: &mut String| {
            if let Some(m) = &svc.fwmark {
                fwmark_service::render(out, m, lab_vip_of(&svc.vip));
            }
            if let Some(check) = &svc.check {
                let _ = writeln!(out);
                let _ = writeln!(out, "[service.check]");
                for (key, value) in &check.keys {
                    let _ = writeln!(out, "{key} = {value}");
                }
                if let Some(n) = check.sorry.and_then(|a| servers.iter().position(|s| s.address == a)) {
                    let _ = writeln!(out, "sorry_server = {}", quote(&name_at(n)));
                }
            }
        };
        if index == 0 {
            check_table(&mut out);
            render_origin(&mut out, origin, svc);
            continue;
        }
        // A later service: its real servers' port.
        let ports: Vec<u16> = svc.servers.iter().filter_map(|s| s.port).filter(|p| *p != 0).collect();
        match ports.first() {
            // A later fwmark service's real servers keep each packet's port (no `real_port`).
            Some(&port) if svc.fwmark.is_some() => warnings.push(Warning::new(
                svc.line,
                format!("real-server port {port} dropped: a later fwmark service's real servers keep each packet's port"),
            )),
            Some(&port) if port != svc.port && dr_like_mode(svc_mode) => warnings.push(Warning::new(
                svc.line,
                format!(
                    "real-server port {port} ignored: {svc_mode} cannot remap ports (the service port {} is used)",
                    svc.port
                ),
            )),
            Some(&port) if ports.iter().any(|p| *p != port) => warnings.push(Warning::new(
                svc.line,
                format!("real servers on several ports ({port}, ...): lvslab gives a service's real servers one port; {port} is used"),
            )),
            _ => {}
        }
        if let Some(&port) = ports
            .first()
            .filter(|p| **p != svc.port && !dr_like_mode(svc_mode) && svc.fwmark.is_none())
        {
            let _ = writeln!(out, "real_port = {port}");
        }
        check_table(&mut out);
        render_origin(&mut out, origin, svc);
        for server in &svc.servers {
            let first_weight = servers
                .iter()
                .find(|s| s.address == server.address)
                .map_or(1, |s| s.weight);
            if server.weight != first_weight {
                warnings.push(Warning::new(
                    server.line,
                    format!(
                        "{} has weight {} here and {first_weight} in an earlier service: lvslab gives a real server one weight ({first_weight})",
                        server.original, server.weight
                    ),
                ));
            }
        }
    }
    let protocols: Vec<Proto> = plan.services.iter().map(|s| s.proto).collect();
    if protocols.iter().any(|p| *p != protocols[0]) {
        let names: Vec<String> = plan
            .services
            .iter()
            .filter(|s| s.proto == protocols[0])
            .map(|s| quote(&s.default_name()))
            .collect();
        let _ = writeln!(out);
        let _ = writeln!(out, "# The traffic speaks one protocol: the first service's.");
        let _ = writeln!(out, "[traffic]");
        let _ = writeln!(out, "services = [{}]", names.join(", "));
    }

    if let Some(v) = vrrp {
        warnings.extend(v.warnings);
        out.push_str(&v.toml);
    }

    // A server of a nat/fullnat service goes on the private network, one only in dr/tun
    // services on the clients' (as the scenario's defaults place them).
    let behind: Vec<bool> = servers
        .iter()
        .map(|server| {
            plan.services.iter().zip(&plan.modes).any(|(svc, m)| {
                matches!(m, Mode::Nat | Mode::FullNat) && svc.servers.iter().any(|s| s.address == server.address)
            })
        })
        .collect();
    let Some(addresses) = server_addresses(&behind, &servers, &vips) else {
        let most = lab_server_addresses(behind.iter().any(|b| *b))
            .filter(|a| !vips.contains(a))
            .count();
        return Err(unsupported(
            servers.get(most).map_or(first.line, |s| s.line),
            format!("too many real servers for the lab network (at most {most})"),
        ));
    };
    for (n, (server, address)) in servers.iter().zip(addresses).enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "# original {} (line {})",
            comment_safe(&server.original),
            server.line
        );
        if let Some(note) = &server.note {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "[[real_server]]");
        let _ = writeln!(out, "name = {}", quote(&name_at(n)));
        let _ = writeln!(out, "address = {}", quote(&address.to_string()));
        let weight = if server.weight > 65535 {
            warnings.push(Warning::new(
                server.line,
                format!("weight {} capped at 65535", server.weight),
            ));
            65535
        } else {
            server.weight
        };
        let _ = writeln!(out, "weight = {weight}");
        if let Some(inhibit) = server.inhibit {
            let _ = writeln!(out, "inhibit_on_failure = {inhibit}");
        }
        if !server.check.is_empty() {
            let keys: Vec<String> = server.check.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            let _ = writeln!(out, "check = {{ {} }}", keys.join(", "));
        }
        // Its port in the first service (a later service states its own `real_port`).
        let in_first = first.servers.iter().find(|s| s.address == server.address);
        match in_first.and_then(|s| s.port) {
            Some(port) if port != first.port && dr_like && !first.kernel_ports => warnings.push(Warning::new(
                server.line,
                format!(
                    "real-server port {port} ignored: {first_mode} cannot remap ports (the service port {} is used)",
                    first.port
                ),
            )),
            Some(port) if port != first.port && dr_like => {
                warnings.push(Warning::new(
                    server.line,
                    format!(
                        "real-server port {port} kept as the table has it, but {first_mode} cannot remap ports: its packets still arrive at the service port {}",
                        first.port
                    ),
                ));
                let _ = writeln!(out, "port = {port}");
            }
            Some(0) => {}
            Some(port) if port != first.port => {
                let _ = writeln!(out, "port = {port}");
            }
            _ => {}
        }
    }
    warnings.sort_by_key(|w| w.line);
    // A group's services share the virtual server's settings, so they may say the same thing.
    let mut said: Vec<Warning> = Vec::new();
    warnings.retain(|w| {
        let repeat = said.contains(w);
        if !repeat {
            said.push(w.clone());
        }
        !repeat
    });
    Ok(Imported { toml: out, warnings })
}

/// A service's scheduler, flags, persistence and one-packet keys.
/// `[service.origin]` when the source's tool filled in settings the file left out: the
/// diagnosis can then say that a cause comes from a default, not from the file's own choice.
/// A group's service always has one: its line is the group entry's.
fn render_origin(out: &mut String, origin: &str, svc: &PlanService) {
    if svc.defaults.is_empty() && svc.group.is_none() {
        return;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "[service.origin]");
    let _ = writeln!(out, "file = {}", quote(origin));
    let _ = writeln!(out, "line = {}", svc.group.as_ref().map_or(svc.line, |g| g.line));
    if svc.defaults.is_empty() {
        return;
    }
    let _ = writeln!(out, "defaults = [");
    for (sets, said) in &svc.defaults {
        let _ = writeln!(
            out,
            "  {{ sets = {}, line = {}, said = {} }},",
            quote(sets),
            svc.line,
            quote(said)
        );
    }
    let _ = writeln!(out, "]");
}

fn render_scheduling(out: &mut String, svc: &PlanService, warnings: &mut Vec<Warning>) {
    let line = svc.line;
    let _ = writeln!(out, "scheduler = {}", quote(svc.scheduler.as_str()));
    let family = match svc.scheduler {
        Scheduler::Sh => Some("sh-"),
        Scheduler::Mh => Some("mh-"),
        _ => None,
    };
    let mut flags = Vec::new();
    for flag in &svc.flags {
        let known = ["sh-fallback", "sh-port", "mh-fallback", "mh-port"].contains(&flag.as_str());
        if known && family.is_some_and(|f| flag.starts_with(f)) {
            flags.push(quote(flag));
        } else {
            warnings.push(Warning::new(
                line,
                format!("scheduler flag `{flag}` dropped: not modelled for {}", svc.scheduler),
            ));
        }
    }
    if !flags.is_empty() {
        let _ = writeln!(out, "flags = [{}]", flags.join(", "));
    }
    if let Some(timeout) = svc.persistence {
        let _ = writeln!(out, "persistence = {timeout}");
        match svc.prefix {
            Some(prefix) if prefix < 32 => {
                let prefix = if prefix < 8 {
                    warnings.push(Warning::new(
                        line,
                        format!("persistence netmask /{prefix} is wider than lvslab's /8 limit; using /8"),
                    ));
                    8
                } else {
                    prefix
                };
                let mask = Ipv4Addr::from(u32::MAX << (32 - u32::from(prefix)));
                let _ = writeln!(out, "persistence_netmask = {}", quote(&mask.to_string()));
            }
            _ => {}
        }
    } else if svc.prefix.is_some_and(|p| p < 32) {
        warnings.push(Warning::new(line, "persistence netmask without persistence ignored"));
    }
    if svc.one_packet {
        if svc.proto == Proto::Udp {
            let _ = writeln!(out, "one_packet = true");
        } else {
            warnings.push(Warning::new(
                line,
                "one-packet scheduling (ops) applies to UDP only; dropped for this TCP service",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    fn checks(toml: &str) -> crate::scenario::Scenario {
        crate::scenario::parse(toml, "imported.toml")
            .unwrap_or_else(|r| panic!("{}\n{toml}", r.render("imported.toml")))
    }

    #[test]
    fn sniff_tells_the_formats_apart() {
        assert_eq!(sniff("-A -t 1.2.3.4:80 -s rr\n"), Some(InputFormat::IpvsadmSave));
        assert_eq!(sniff("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\nTCP  0A00000A:0050 rr\n"), Some(InputFormat::ProcIpVs));
        assert_eq!(
            sniff("IP Virtual Server version 1.2.1 (size=4096)\nTCP  10.0.0.10:80 rr\n"),
            Some(InputFormat::IpvsadmList)
        );
        assert_eq!(
            sniff("! Configuration\nglobal_defs {\n}\n"),
            Some(InputFormat::Keepalived)
        );
        assert_eq!(sniff("hello world\n"), None);
        assert_eq!(sniff(""), None);
    }

    #[test]
    fn save_file_becomes_a_nat_scenario_keeping_remapped_ports() {
        let (toml, warnings) = import_file(Path::new(&format!("{FIXTURES}/ipvsadm-save-nat.txt"))).unwrap();
        let scenario = checks(&toml);
        assert_eq!(scenario.service().mode, Mode::Nat);
        assert_eq!(scenario.service().scheduler, Scheduler::Wlc);
        assert_eq!(
            scenario.service().persistence,
            Some(std::time::Duration::from_secs(900))
        );
        assert_eq!(scenario.service().port, 8080);
        // The UDP service on the same VIP comes along, with its own real server, and the
        // traffic keeps to the first service's protocol.
        assert_eq!(scenario.real_servers.len(), 3);
        assert_eq!(scenario.real_servers[0].port, 9000);
        assert_eq!(scenario.real_servers[1].weight, 0);
        assert_eq!(scenario.services.len(), 2, "{toml}");
        let udp = &scenario.services[1];
        assert_eq!((udp.protocol, udp.port, udp.one_packet), (Proto::Udp, 5353, true));
        assert_eq!(udp.scheduler, Scheduler::Rr);
        assert_eq!(udp.real_servers, ["rs3"]);
        assert_eq!(scenario.services[0].real_servers, ["rs1", "rs2"]);
        assert_eq!(scenario.traffic.services, [0]);
        assert!(toml.contains("# original 10.20.0.4:9000"), "{toml}");
        assert!(toml.contains("persistence_netmask = \"255.255.0.0\""), "{toml}");
        assert!(!warnings.iter().any(|w| w.contains("skipped")), "{warnings:?}");
    }

    #[test]
    fn every_service_is_imported_each_on_its_own_vip() {
        let save = "-A -t 192.0.2.100:80 -s rr\n\
                    -a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 1\n\
                    -a -t 192.0.2.100:80 -r 192.0.2.12:80 -g -w 1\n\
                    -A -t 192.0.2.100:443 -s sh -b sh-port -p 600\n\
                    -a -t 192.0.2.100:443 -r 192.0.2.12:443 -g -w 3\n\
                    -a -t 192.0.2.100:443 -r 192.0.2.13:443 -g -w 1\n\
                    -A -t 192.0.2.101:80 -s wlc\n\
                    -a -t 192.0.2.101:80 -r 192.0.2.14:80 -g -w 1\n";
        let imported = import_text(save, "three.save").unwrap();
        let scenario = checks(&imported.toml);
        let ports: Vec<u16> = scenario.services.iter().map(|s| s.port).collect();
        assert_eq!(ports, [80, 443, 80], "{}", imported.toml);
        let vips: Vec<String> = scenario.services.iter().map(|s| s.vip.to_string()).collect();
        assert_eq!(vips, ["192.0.2.100", "192.0.2.100", "192.0.2.101"]);
        assert_eq!(scenario.services[2].name, "tcp/192.0.2.101:80");
        assert_eq!(scenario.services[2].real_servers, ["rs4"]);
        let tls = &scenario.services[1];
        assert_eq!(
            (tls.scheduler, tls.persistence),
            (Scheduler::Sh, Some(std::time::Duration::from_secs(600)))
        );
        assert_eq!(tls.real_servers, ["rs2", "rs3"]);
        assert_eq!(scenario.real_servers.len(), 4, "one real server per address");
        let rendered: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert!(!rendered.iter().any(|w| w.contains("skipped")), "{rendered:?}");
        assert!(
            rendered
                .iter()
                .any(|w| w.starts_with("line 5:") && w.contains("weight 3 here and 1")),
            "{rendered:?}"
        );
    }

    #[test]
    fn a_keepalived_pair_with_two_virtual_servers_imports_both_vips_into_its_instance() {
        let conf = "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  priority 150\n  \
                    virtual_ipaddress {\n    192.0.2.100\n    192.0.2.101\n  }\n}\n\
                    virtual_server 192.0.2.100 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
                    real_server 192.0.2.11 80 {\n  }\n  real_server 192.0.2.12 80 {\n  }\n}\n\
                    virtual_server 192.0.2.101 80 {\n  lb_algo wlc\n  lb_kind DR\n  protocol TCP\n  \
                    real_server 192.0.2.12 80 {\n  }\n}\n";
        let imported = import_text(conf, "keepalived.conf").unwrap();
        let scenario = checks(&imported.toml);
        let vips: Vec<String> = scenario.services.iter().map(|s| s.vip.to_string()).collect();
        assert_eq!(vips, ["192.0.2.100", "192.0.2.101"], "{}", imported.toml);
        assert_eq!(scenario.services[1].scheduler, Scheduler::Wlc);
        let vrrp = scenario.vrrp.as_ref().expect("the instance");
        let held: Vec<String> = vrrp.nodes[0].instance.vips.iter().map(|v| v.to_string()).collect();
        assert_eq!(held, ["192.0.2.100", "192.0.2.101"]);
        let rendered: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            !rendered
                .iter()
                .any(|w| w.contains("not modelled") || w.contains("skipped")),
            "{rendered:?}"
        );
    }

    /// Three virtual_servers of three lb_kinds: one scenario, each service in its own mode,
    /// the NAT one's servers behind the director, the DR and TUN ones beside the clients.
    const MIXED_KINDS: &str = "virtual_server 10.1.0.10 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
                    real_server 10.1.1.1 80 {\n  }\n  real_server 10.1.1.2 80 {\n  }\n}\n\
                    virtual_server 10.1.0.20 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
                    real_server 10.1.2.1 8080 {\n  }\n  real_server 10.1.2.2 8080 {\n  }\n}\n\
                    virtual_server 10.1.0.30 80 {\n  lb_algo wlc\n  lb_kind TUN\n  protocol TCP\n  \
                    real_server 10.1.1.2 80 {\n  }\n}\n";

    #[test]
    fn virtual_servers_of_different_lb_kinds_import_as_services_of_their_own_modes() {
        let imported = import_text(MIXED_KINDS, "keepalived.conf").unwrap();
        let scenario = checks(&imported.toml);
        let modes: Vec<Mode> = scenario.services.iter().map(|s| s.mode).collect();
        assert_eq!(modes, [Mode::Dr, Mode::Nat, Mode::Tun], "{}", imported.toml);
        let said: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert!(!said.iter().any(|w| w.contains("skipped")), "{said:?}");
        // The NAT service's servers on the private network with their port, the others beside the clients.
        let at = |name: &str| {
            let rs = scenario.real_server(name).unwrap();
            (rs.address.to_string(), scenario.real_port(1, rs))
        };
        assert_eq!(at("rs3"), ("198.51.100.11".to_string(), 8080), "{}", imported.toml);
        assert!(at("rs1").0.starts_with("192.0.2."), "{}", imported.toml);
        let rs2 = scenario.host("rs2").unwrap();
        assert!(!rs2.loopback_vips.is_empty() && !rs2.tun_vips.is_empty(), "{rs2:?}");
        // Each virtual_server's lb_kind comes back from the lab's table.
        let config = crate::run::director_config(&scenario, &scenario.directors[0]).unwrap();
        let mut table = crate::ipvs::Ipvs::new(config.sysctls);
        for (service, dests) in config.services {
            let id = table.add_service(service).unwrap();
            for dest in dests {
                table.add_dest(id, dest).unwrap();
            }
        }
        let save = table.snapshot(std::time::Instant::now()).save_text();
        assert!(
            save.contains(" -g ") && save.contains(" -m ") && save.contains(" -i "),
            "{save}"
        );
        let back = import_text(&save, "save").unwrap();
        let back = checks(&back.toml);
        assert_eq!(back.services.iter().map(|s| s.mode).collect::<Vec<_>>(), modes);
    }

    #[test]
    fn a_real_server_in_a_nat_and_a_dr_virtual_server_skips_the_later_one_saying_why() {
        let conf = "virtual_server 10.1.0.10 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  \
                    real_server 10.1.1.1 80 {\n  }\n}\n\
                    virtual_server 10.1.0.20 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
                    real_server 10.1.1.1 80 {\n  }\n  real_server 10.1.1.2 80 {\n  }\n}\n";
        let imported = import_text(conf, "keepalived.conf").unwrap();
        let scenario = checks(&imported.toml);
        assert_eq!(scenario.services.len(), 1, "{}", imported.toml);
        let said: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
        assert!(
            said.iter().any(|w| w.starts_with("line 8:")
                && w.contains("skipped: it is dr and real server 10.1.1.1:80 is also in the nat service 10.1.0.10:80")
                && w.contains("martian")),
            "{said:?}"
        );
        // The same from a table.
        let save = "-A -t 10.1.0.10:80 -s rr\n-a -t 10.1.0.10:80 -r 10.1.1.1:80 -m -w 1\n\
                    -A -t 10.1.0.20:80 -s rr\n-a -t 10.1.0.20:80 -r 10.1.1.1:80 -g -w 1\n";
        let imported = import_text(save, "save.txt").unwrap();
        assert_eq!(checks(&imported.toml).services.len(), 1, "{}", imported.toml);
        assert!(
            imported
                .warnings
                .iter()
                .any(|w| w.message.contains("also in the nat service")),
            "{:?}",
            imported.warnings
        );
    }

    #[test]
    fn keepalived_defaults_are_kept_as_the_service_origin() {
        let conf = "virtual_server 192.0.2.100 80 {\n  real_server 192.0.2.11 80 {\n  }\n}\n";
        let imported = import_text(conf, "keepalived.conf").unwrap();
        let scenario = checks(&imported.toml);
        let origin = scenario.service().origin.as_ref().expect("an origin");
        assert_eq!(origin.file, "keepalived.conf");
        assert_eq!(origin.line, Some(1));
        let sets: Vec<&str> = origin.defaults.iter().map(|d| d.sets.as_str()).collect();
        assert_eq!(sets, ["protocol", "scheduler", "mode"], "{}", imported.toml);
        assert!(origin.defaults[0].said.ends_with("no protocol set - defaulting to UDP"));
        // A table has no defaults to record.
        let save = "-A -t 192.0.2.100:80 -s rr\n-a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 1\n";
        assert!(checks(&import_text(save, "save").unwrap().toml)
            .service()
            .origin
            .is_none());
    }

    /// The kernel keeps a DR destination's own port (ipvsadm -S shows it): the scenario keeps
    /// it too, so the lab has the same table; keepalived resets it, and so does its import.
    #[test]
    fn a_dr_destination_on_another_port_is_kept_from_a_table_and_reset_from_keepalived() {
        let save = "-A -t 192.0.2.100:80 -s rr\n-a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 1\n-a -t 192.0.2.100:80 -r 192.0.2.12:8080 -g -w 1\n";
        let imported = import_text(save, "save.txt").unwrap();
        let scenario = checks(&imported.toml);
        assert_eq!(scenario.real_servers[1].port, 8080, "{}", imported.toml);
        assert!(
            imported.warnings.iter().any(|w| w
                .message
                .contains("kept as the table has it, but dr cannot remap ports")),
            "{:?}",
            imported.warnings
        );
        let conf = "virtual_server 192.0.2.100 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server 192.0.2.11 80 {\n  }\n  real_server 192.0.2.12 8080 {\n  }\n}\n";
        let imported = import_text(conf, "keepalived.conf").unwrap();
        assert_eq!(checks(&imported.toml).real_servers[1].port, 80, "{}", imported.toml);
    }

    #[test]
    fn listing_with_stats_becomes_a_dr_scenario_on_the_lab_network() {
        let (toml, warnings) = import_file(Path::new(&format!("{FIXTURES}/ipvsadm-list-stats.txt"))).unwrap();
        let scenario = checks(&toml);
        assert_eq!(scenario.service().mode, Mode::Dr);
        assert_eq!(scenario.service().scheduler, Scheduler::Wrr);
        assert_eq!(scenario.real_servers[0].weight, 3);
        assert_eq!(scenario.service().vip, "192.0.2.100".parse::<Ipv4Addr>().unwrap());
        assert!(toml.contains("original 198.18.60.1:80"), "{toml}");
        assert!(warnings.iter().any(|w| w.contains("rounded")), "{warnings:?}");
    }

    #[test]
    fn keepalived_fixture_imports_first_service_and_warns_about_the_rest() {
        let (toml, warnings) = import_file(Path::new(&format!("{FIXTURES}/keepalived-dr-two-services.conf"))).unwrap();
        let scenario = checks(&toml);
        assert_eq!(scenario.service().mode, Mode::Dr);
        assert_eq!(scenario.service().scheduler, Scheduler::Sh);
        assert_eq!(
            scenario.service().persistence,
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(scenario.service().persistence_prefix, 24);
        // rs1..rs3 and the sorry server.
        assert_eq!(scenario.real_servers.len(), 4);
        assert_eq!(scenario.real_servers[1].weight, 0);
        let health = scenario.service().health.as_ref().expect("rs3's TCP_CHECK");
        assert_eq!(health.delay_loop, std::time::Duration::from_secs(10));
        assert_eq!(
            health.sorry_server.as_ref().and_then(|s| s.real_server.as_deref()),
            Some("sorry")
        );
        let rs3 = health.real_servers.iter().find(|r| r.name == "rs3").unwrap();
        let (kind, settings) = rs3.checker.as_ref().unwrap();
        assert_eq!(
            (kind, settings.connect_timeout),
            (&crate::health::CheckerKind::Tcp, std::time::Duration::from_secs(2))
        );
        assert!(health.real_servers[1].inhibit_on_failure);
        let all = warnings.join("\n");
        for expected in [
            "include",
            "FWM 9: which packets get mark 9 is unknown",
            "line 20: real server 198.18.41.1 has no checker",
        ] {
            assert!(all.contains(expected), "missing {expected} in:\n{all}");
        }
        assert!(toml.contains("flags = [\"sh-port\"]"), "{toml}");
    }

    #[test]
    fn unknown_method_and_scheduler_are_refused_with_their_lines() {
        let err = import_text(
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 (null) -w 100\n",
            "fork.save",
        )
        .unwrap_err();
        assert!(matches!(err, ImportError::Unsupported { line: 2, .. }), "{err}");
        let err = import_text(
            "-A -t 10.0.0.1:80 -s xyz\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n",
            "s.save",
        )
        .unwrap_err();
        assert!(err.to_string().contains("xyz"), "{err}");
    }

    #[test]
    fn parse_errors_keep_their_line_through_import() {
        let err = import_text(
            "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r web1:80 -g -w 1\n",
            "n.save",
        )
        .unwrap_err();
        match err {
            ImportError::Parse { error, .. } => {
                assert_eq!(error.line, 2);
                assert!(error.message.contains("-n"), "{error}");
            }
            other => panic!("expected a parse error, got {other}"),
        }
    }

    #[test]
    fn many_real_servers_stay_distinct_and_skip_the_vip() {
        let mut text = String::from("-A -t 10.0.0.1:80 -s rr\n");
        for i in 0..120 {
            let _ = writeln!(text, "-a -t 10.0.0.1:80 -r 10.1.{}.{}:80 -g -w 1", i / 200, i % 200 + 1);
        }
        let imported = import_text(&text, "big.save").unwrap();
        let scenario = checks(&imported.toml);
        assert_eq!(scenario.real_servers.len(), 120);
        assert!(
            !imported.toml.contains("\"192.0.2.100\"\nweight"),
            "VIP never given to a server"
        );
    }

    #[test]
    fn lab_addresses_are_kept_and_foreign_ones_mapped_around_them() {
        // A table taken from a lab (VIP .101, servers .21, .12) and one foreign server.
        let text = "-A -t 192.0.2.101:80 -s rr\n-a -t 192.0.2.101:80 -r 192.0.2.21:80 -g -w 1\n\
                    -a -t 192.0.2.101:80 -r 10.9.9.9:80 -g -w 1\n-a -t 192.0.2.101:80 -r 192.0.2.12:80 -g -w 2\n";
        let scenario = checks(&import_text(text, "lab.save").unwrap().toml);
        assert_eq!(scenario.service().vip, Ipv4Addr::new(192, 0, 2, 101));
        let addrs: Vec<Ipv4Addr> = scenario.real_servers.iter().map(|r| r.address).collect();
        assert_eq!(
            addrs,
            [
                Ipv4Addr::new(192, 0, 2, 21),
                Ipv4Addr::new(192, 0, 2, 11),
                Ipv4Addr::new(192, 0, 2, 12)
            ],
            "kept where they fit; the foreign one takes the first free lab address"
        );
        // A foreign VIP, and a client-range one, become the default.
        let foreign = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n";
        assert_eq!(
            checks(&import_text(foreign, "f.save").unwrap().toml).service().vip,
            Ipv4Addr::new(192, 0, 2, 100)
        );
        let client_range = "-A -t 192.0.2.201:80 -s rr\n-a -t 192.0.2.201:80 -r 10.0.0.2:80 -g -w 1\n";
        assert_eq!(
            checks(&import_text(client_range, "c.save").unwrap().toml).service().vip,
            Ipv4Addr::new(192, 0, 2, 100)
        );
    }
}

#[cfg(test)]
mod snapshots {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    /// The generated file is for people to read: its layout is pinned.
    #[test]
    fn generated_scenarios_read_as_documented() {
        for name in [
            "keepalived-dr-two-services.conf",
            "ipvsadm-save-nat.txt",
            "keepalived-vrrp-dr-unicast.conf",
            "keepalived-vrrp-strict.conf",
            "keepalived-health.conf",
            "keepalived-group.conf",
        ] {
            let text = std::fs::read_to_string(format!("{FIXTURES}/{name}")).unwrap();
            let imported = import_text(&text, name).unwrap();
            let warnings: Vec<String> = imported.warnings.iter().map(Warning::to_string).collect();
            insta::assert_snapshot!(
                name,
                format!("{}\n--- warnings ---\n{}\n", imported.toml, warnings.join("\n"))
            );
        }
    }
}
