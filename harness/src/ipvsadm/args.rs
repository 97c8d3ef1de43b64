//! ipvsadm 1.31's command line, for the commands `lvslab ipvsadm` answers: `-L`/`-l` (with
//! `-n`, `-c`, `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--exact`, one
//! service), `-S` (`-n`), and `-a`/`-e`/`-d` with `-t`/`-u`/`-f`, `-r`, `-w`, `-x`, `-y` and
//! `-g`/`-m`/`-i`. Parsed as ipvsadm's popt table reads it (short options clustered, values
//! attached or following, `--long=value`), checked as its `commands_v_options` table checks
//! them, and refused in its own words (`fail(2, …)`).

use std::net::Ipv4Addr;

use crate::director::kernel::engine::DestCmd;
use crate::director::ServiceKey;
use crate::ipvs::{DestConfig, Forward, Proto};

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-L`: one view of the table (all services, or the one of `-t`/`-u`/`-f`).
    List { view: View, service: Option<ServiceKey> },
    /// `-S`: `ipvsadm-save` lines.
    Save,
    /// `-a`, `-e`, `-d`: the real server as ipvsadm sends it (its defaults filled in).
    Dest {
        cmd: DestCmd,
        service: ServiceKey,
        dest: DestConfig,
    },
}

/// Which listing `-L` prints (`print_service_entry`'s precedence: stats, rate, thresholds,
/// persistent-conn, plain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Plain,
    Stats {
        exact: bool,
    },
    Rate {
        exact: bool,
    },
    Thresholds,
    PersistentConn,
    /// `-c`: the connection entries.
    Conns,
}

/// A refusal before anything is asked of IPVS, with ipvsadm's exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    pub message: String,
    pub exit: u8,
}

impl ArgError {
    /// `fail(2, …)`.
    fn fail(message: impl Into<String>) -> Self {
        ArgError {
            message: message.into(),
            exit: 2,
        }
    }
}

/// ipvsadm's `tryhelp_exit(argv[0], -1)`: no command first.
pub const TRY_HELP: &str = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cmd {
    List,
    AddDest,
    DelDest,
    EditDest,
    Save,
}

impl Cmd {
    /// ipvsadm's `cmdnames`.
    fn name(self) -> &'static str {
        match self {
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Save => "save",
        }
    }
}

/// The options this parser knows, in ipvsadm's `OPTC_*` order (its checks walk that order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    Exact,
}

const OPTS: [Opt; 13] = [
    Opt::Numeric,
    Opt::Connection,
    Opt::Service,
    Opt::Server,
    Opt::Forward,
    Opt::Weight,
    Opt::UThreshold,
    Opt::LThreshold,
    Opt::Stats,
    Opt::Rate,
    Opt::Thresholds,
    Opt::PersistentConn,
    Opt::Exact,
];

impl Opt {
    /// ipvsadm's `optnames`.
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::Exact => "exact",
        }
    }

    /// `commands_v_options[cmd][opt]`: '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional.
    fn rule(self, cmd: Cmd) -> u8 {
        use Opt::*;
        match (cmd, self) {
            (Cmd::List, Numeric | Stats | Rate | Thresholds | PersistentConn | Exact) => b' ',
            (Cmd::List, Connection | Service) => b'1',
            (Cmd::Save, Numeric) => b' ',
            (Cmd::AddDest | Cmd::EditDest | Cmd::DelDest, Service | Server) => b'+',
            (Cmd::AddDest | Cmd::EditDest, Forward | Weight | UThreshold | LThreshold) => b' ',
            _ => b'x',
        }
    }
}

#[derive(Default)]
struct Parsed {
    cmd: Option<Cmd>,
    options: Vec<Opt>,
    service: Option<(ServiceKey, bool)>,
    server: Option<(Ipv4Addr, Option<u16>)>,
    forward: Option<Forward>,
    weight: Option<u32>,
    upper: Option<u32>,
    lower: Option<u32>,
}

impl Parsed {
    fn set_command(&mut self, cmd: Cmd) -> Result<(), ArgError> {
        if self.cmd.is_some() {
            return Err(ArgError::fail("multiple commands specified"));
        }
        self.cmd = Some(cmd);
        Ok(())
    }

    fn set_option(&mut self, opt: Opt) -> Result<(), ArgError> {
        if self.options.contains(&opt) {
            return Err(ArgError::fail(format!("multiple '{}' options specified", opt.name())));
        }
        self.options.push(opt);
        Ok(())
    }

    fn has(&self, opt: Opt) -> bool {
        self.options.contains(&opt)
    }
}

/// One option as popt hands it over: its name as typed, and its value if it takes one.
enum Token<'a> {
    Opt(String, Option<&'a str>),
    Arg(&'a str),
}

/// Short options that take a value (popt `POPT_ARG_STRING`).
fn short_takes_value(c: char) -> bool {
    matches!(c, 't' | 'u' | 'f' | 's' | 'p' | 'M' | 'r' | 'w' | 'x' | 'y')
}

fn long_name(name: &str) -> Option<&'static str> {
    Some(match name {
        "list" => "L",
        "save" => "S",
        "add-server" => "a",
        "edit-server" => "e",
        "delete-server" => "d",
        "numeric" => "n",
        "connection" => "c",
        "tcp-service" => "t",
        "udp-service" => "u",
        "fwmark-service" => "f",
        "real-server" => "r",
        "gatewaying" => "g",
        "masquerading" => "m",
        "ipip" => "i",
        "weight" => "w",
        "u-threshold" => "x",
        "l-threshold" => "y",
        "stats" => "stats",
        "rate" => "rate",
        "thresholds" => "thresholds",
        "persistent-conn" => "persistent-conn",
        "exact" => "exact",
        _ => return None,
    })
}

fn long_takes_value(key: &str) -> bool {
    key.len() == 1 && short_takes_value(key.chars().next().unwrap_or(' '))
}

/// Splits the command line into options (canonical keys: the short letter, or the long name
/// of a long-only option) and plain arguments.
fn tokens<'a>(args: &'a [String]) -> Result<Vec<Token<'a>>, ArgError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(key) = long_name(name) else {
                return Err(unsupported_or_unknown(arg, name));
            };
            let value = if long_takes_value(key) {
                match attached {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).map(String::as_str);
                        i += 1;
                        Some(v.ok_or_else(|| missing_value(arg))?)
                    }
                }
            } else {
                None
            };
            out.push(Token::Opt(key.to_string(), value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            let cluster = &arg[1..];
            for (pos, c) in cluster.char_indices() {
                if short_takes_value(c) {
                    let rest = &cluster[pos + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args.get(i).map(String::as_str);
                        i += 1;
                        v.ok_or_else(|| missing_value(&format!("-{c}")))?
                    } else {
                        rest
                    };
                    out.push(Token::Opt(c.to_string(), Some(value)));
                    break;
                }
                out.push(Token::Opt(c.to_string(), None));
            }
        } else {
            out.push(Token::Arg(arg));
        }
    }
    Ok(out)
}

/// popt's "missing argument" (ipvsadm prints it and exits with -1).
fn missing_value(option: &str) -> ArgError {
    ArgError {
        message: format!("{option}: missing argument"),
        exit: 255,
    }
}

/// A long option ipvsadm has but this command does not answer gets lvslab's own word;
/// anything else is popt's "unknown option".
fn unsupported_or_unknown(arg: &str, name: &str) -> ArgError {
    const IPVSADM_ONLY: &[&str] = &[
        "add-service",
        "edit-service",
        "delete-service",
        "clear",
        "restore",
        "zero",
        "set",
        "start-daemon",
        "stop-daemon",
        "scheduler",
        "persistent",
        "netmask",
        "sched-flags",
        "pe",
        "ops",
        "timeout",
        "daemon",
        "nosort",
        "tun-info",
        "tun-type",
        "tun-port",
        "tun-nocsum",
        "tun-csum",
        "tun-remcsum",
        "sctp-service",
        "mcast-interface",
        "syncid",
        "help",
        "version",
    ];
    if IPVSADM_ONLY.contains(&name) {
        return unsupported(arg);
    }
    ArgError {
        message: format!("{arg}: unknown option"),
        exit: 255,
    }
}

fn unsupported(option: &str) -> ArgError {
    ArgError::fail(format!(
        "lvslab ipvsadm answers -L/-l, -S, -a, -e and -d (with -t/-u/-f, -r, -w, -x, -y, -g/-m/-i, -n, -c, \
         --stats, --rate, --thresholds, --persistent-conn, --exact); not {option}"
    ))
}

/// ipvsadm's `parse_service` for IPv4: `ADDR[:PORT]`, numeric (lvslab resolves no names).
fn addr_port(text: &str) -> Option<(Ipv4Addr, Option<u16>)> {
    match text.rsplit_once(':') {
        Some((addr, port)) => Some((addr.parse().ok()?, Some(port.parse().ok()?))),
        None => Some((text.parse().ok()?, None)),
    }
}

/// `string_to_number(s, 0, 65535)`.
fn number(text: &str, max: u32) -> Option<u32> {
    text.parse::<u32>().ok().filter(|n| *n <= max)
}

/// Parses ipvsadm's arguments (without the program name).
pub fn parse(args: &[String]) -> Result<Command, ArgError> {
    let tokens = tokens(args)?;
    let mut p = Parsed::default();
    let mut iter = tokens.into_iter();
    // popt's first option must be the command, else `tryhelp_exit`.
    let first = match iter.next() {
        Some(Token::Opt(key, _)) => key,
        _ => return Err(try_help()),
    };
    p.set_command(match first.as_str() {
        "L" | "l" => Cmd::List,
        "S" => Cmd::Save,
        "a" => Cmd::AddDest,
        "e" => Cmd::EditDest,
        "d" => Cmd::DelDest,
        "A" | "E" | "D" | "C" | "Z" | "R" | "h" | "v" => return Err(unsupported(&format!("-{first}"))),
        _ => return Err(try_help()),
    })?;
    for token in iter {
        let (key, value) = match token {
            Token::Arg(a) => return Err(ArgError::fail(format!("unexpected argument {a}"))),
            Token::Opt(key, value) => (key, value),
        };
        let value = value.unwrap_or("");
        match key.as_str() {
            "L" | "l" => p.set_command(Cmd::List)?,
            "S" => p.set_command(Cmd::Save)?,
            "a" => p.set_command(Cmd::AddDest)?,
            "e" => p.set_command(Cmd::EditDest)?,
            "d" => p.set_command(Cmd::DelDest)?,
            "n" => p.set_option(Opt::Numeric)?,
            "c" => p.set_option(Opt::Connection)?,
            "t" | "u" => {
                p.set_option(Opt::Service)?;
                let proto = if key == "t" { Proto::Tcp } else { Proto::Udp };
                let (vip, port) = addr_port(value)
                    .ok_or_else(|| ArgError::fail("illegal virtual server address[:port] specified"))?;
                p.service = Some((ServiceKey::new(proto, vip, port.unwrap_or(0)), false));
            }
            "f" => {
                p.set_option(Opt::Service)?;
                let mark = value
                    .parse::<u32>()
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or_else(|| ArgError::fail(format!("invalid fwmark value `{value}' specified")))?;
                p.service = Some((ServiceKey::fwmark(mark), true));
            }
            "r" => {
                p.set_option(Opt::Server)?;
                p.server = Some(
                    addr_port(value).ok_or_else(|| ArgError::fail("illegal real server address[:port] specified"))?,
                );
            }
            "g" | "m" | "i" => {
                p.set_option(Opt::Forward)?;
                p.forward = Some(match key.as_str() {
                    "g" => Forward::Dr,
                    "m" => Forward::Nat,
                    _ => Forward::Tun,
                });
            }
            "w" => {
                p.set_option(Opt::Weight)?;
                p.weight = Some(number(value, 65535).ok_or_else(|| ArgError::fail("illegal weight specified"))?);
            }
            "x" => {
                p.set_option(Opt::UThreshold)?;
                p.upper = Some(
                    number(value, i32::MAX as u32).ok_or_else(|| ArgError::fail("illegal u_threshold specified"))?,
                );
            }
            "y" => {
                p.set_option(Opt::LThreshold)?;
                p.lower = Some(
                    number(value, i32::MAX as u32).ok_or_else(|| ArgError::fail("illegal l_threshold specified"))?,
                );
            }
            "stats" => p.set_option(Opt::Stats)?,
            "rate" => p.set_option(Opt::Rate)?,
            "thresholds" => p.set_option(Opt::Thresholds)?,
            "persistent-conn" => p.set_option(Opt::PersistentConn)?,
            "exact" => p.set_option(Opt::Exact)?,
            other if other.len() == 1 && "sMpbo6".contains(other) => return Err(unsupported(&format!("-{other}"))),
            "A" | "E" | "D" | "C" | "Z" | "R" | "h" | "v" => return Err(unsupported(&format!("-{key}"))),
            other => {
                return Err(ArgError::fail(format!("invalid option `-{other}'")));
            }
        }
    }
    let cmd = p.cmd.expect("the first token set it");
    generic_opt_check(cmd, &p)?;
    Ok(match cmd {
        Cmd::List => {
            let listing = [Opt::Stats, Opt::Rate, Opt::Thresholds];
            if p.has(Opt::Connection) && listing.iter().any(|o| p.has(*o)) {
                return Err(ArgError::fail("options conflicts in the list command"));
            }
            let exact = p.has(Opt::Exact);
            let view = if p.has(Opt::Connection) {
                View::Conns
            } else if p.has(Opt::Stats) {
                View::Stats { exact }
            } else if p.has(Opt::Rate) {
                View::Rate { exact }
            } else if p.has(Opt::Thresholds) {
                View::Thresholds
            } else if p.has(Opt::PersistentConn) {
                View::PersistentConn
            } else {
                View::Plain
            };
            Command::List {
                view,
                service: p.service.map(|(k, _)| k),
            }
        }
        Cmd::Save => Command::Save,
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let (service, fwmark) = p.service.expect("checked compulsory");
            let (addr, port) = p.server.expect("checked compulsory");
            // ipvsadm's defaults: weight 1, direct routing.
            let forward = p.forward.unwrap_or(Forward::Dr);
            // No port on -r: the service's. DR and TUN cannot translate ports: the service's.
            let port = match (fwmark, forward) {
                (false, Forward::Dr | Forward::Tun) => service.port,
                _ => port.unwrap_or(service.port),
            };
            Command::Dest {
                cmd: match cmd {
                    Cmd::AddDest => DestCmd::Add,
                    Cmd::EditDest => DestCmd::Edit,
                    _ => DestCmd::Delete,
                },
                service,
                dest: DestConfig {
                    addr,
                    port,
                    weight: p.weight.unwrap_or(1),
                    forward,
                    upper_threshold: p.upper.unwrap_or(0),
                    lower_threshold: p.lower.unwrap_or(0),
                },
            }
        }
    })
}

fn try_help() -> ArgError {
    ArgError {
        message: TRY_HELP.into(),
        exit: 255,
    }
}

/// ipvsadm's `generic_opt_check`, in its option order and words.
fn generic_opt_check(cmd: Cmd, p: &Parsed) -> Result<(), ArgError> {
    let mut exclusive: Option<Opt> = None;
    for opt in OPTS {
        let rule = opt.rule(cmd);
        if !p.has(opt) {
            if rule == b'+' {
                return Err(ArgError::fail(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    opt.name(),
                    cmd.name()
                )));
            }
            continue;
        }
        match rule {
            b'x' => {
                return Err(ArgError::fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt.name(),
                    cmd.name()
                )))
            }
            b'1' => match exclusive {
                None => exclusive = Some(opt),
                Some(first) => {
                    return Err(ArgError::fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt.name(),
                        first.name(),
                        cmd.name()
                    )))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    fn ok(line: &str) -> Command {
        parse(&args(line)).unwrap_or_else(|e| panic!("{line}: {}", e.message))
    }

    fn err(line: &str) -> (String, u8) {
        match parse(&args(line)) {
            Ok(c) => panic!("{line}: parsed as {c:?}"),
            Err(e) => (e.message, e.exit),
        }
    }

    #[test]
    fn listings_cluster_short_options_and_pick_ipvsadm_precedence() {
        assert_eq!(
            ok("-Ln"),
            Command::List {
                view: View::Plain,
                service: None
            }
        );
        assert_eq!(
            ok("-Lnc"),
            Command::List {
                view: View::Conns,
                service: None
            }
        );
        assert_eq!(
            ok("-L -n --stats --rate"),
            Command::List {
                view: View::Stats { exact: false },
                service: None
            }
        );
        assert_eq!(
            ok("-l --rate --exact -n"),
            Command::List {
                view: View::Rate { exact: true },
                service: None
            }
        );
        assert_eq!(
            ok("-Ln --persistent-conn -t 192.0.2.100:80"),
            Command::List {
                view: View::PersistentConn,
                service: Some(ServiceKey::new(Proto::Tcp, Ipv4Addr::new(192, 0, 2, 100), 80))
            }
        );
        assert_eq!(
            ok("-Ln -f3"),
            Command::List {
                view: View::Plain,
                service: Some(ServiceKey::fwmark(3))
            }
        );
        assert_eq!(ok("-S -n"), Command::Save);
        assert_eq!(ok("--save"), Command::Save);
    }

    #[test]
    fn dest_commands_fill_in_ipvsadm_defaults_and_ports() {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        let rip = Ipv4Addr::new(10, 0, 0, 11);
        // -e without -g/-m/-i is DR and weight 1, as ipvsadm sends it; DR takes the VIP's port.
        assert_eq!(
            ok("-e -t 192.0.2.100:80 -r 10.0.0.11:8080"),
            Command::Dest {
                cmd: DestCmd::Edit,
                service: ServiceKey::new(Proto::Tcp, vip, 80),
                dest: DestConfig::new(rip, 80, 1, Forward::Dr),
            }
        );
        assert_eq!(
            ok("-a -u 192.0.2.100:53 -r 10.0.0.11:5353 -m -w 0 -x 10 -y 2"),
            Command::Dest {
                cmd: DestCmd::Add,
                service: ServiceKey::new(Proto::Udp, vip, 53),
                dest: DestConfig {
                    addr: rip,
                    port: 5353,
                    weight: 0,
                    forward: Forward::Nat,
                    upper_threshold: 10,
                    lower_threshold: 2,
                },
            }
        );
        // NAT without a port on -r: the service's.
        let Command::Dest { dest, .. } = ok("--add-server --tcp-service=192.0.2.100:80 --real-server 10.0.0.11 -m")
        else {
            panic!()
        };
        assert_eq!(dest.port, 80);
        let Command::Dest { cmd, dest, .. } = ok("-d -t 192.0.2.100:80 -r 10.0.0.11:80") else {
            panic!()
        };
        assert_eq!((cmd, dest.addr), (DestCmd::Delete, rip));
    }

    #[test]
    fn refusals_are_ipvsadm_own_words_and_exit_codes() {
        assert_eq!(err("-n -L"), (TRY_HELP.to_string(), 255));
        assert_eq!(err(""), (TRY_HELP.to_string(), 255));
        assert_eq!(err("-L -S"), ("multiple commands specified".to_string(), 2));
        assert_eq!(
            err("-e -t 192.0.2.100:80 -r 10.0.0.11 -w 1 -w 2"),
            ("multiple 'weight' options specified".to_string(), 2)
        );
        assert_eq!(
            err("-e -t 192.0.2.100:80 -w 0"),
            (
                "You need to supply the 'real-server' option for the 'edit-server' command".to_string(),
                2
            )
        );
        assert_eq!(
            err("-d -r 10.0.0.11"),
            (
                "You need to supply the 'service-address' option for the 'delete-server' command".to_string(),
                2
            )
        );
        assert_eq!(
            err("-d -t 192.0.2.100:80 -r 10.0.0.11 -w 3"),
            (
                "Illegal 'weight' option with the 'delete-server' command".to_string(),
                2
            )
        );
        assert_eq!(
            err("-Lnc -t 192.0.2.100:80"),
            (
                "The option 'service-address' conflicts with the 'connection' option in the 'list' command".to_string(),
                2
            )
        );
        assert_eq!(
            err("-Lc --stats"),
            ("options conflicts in the list command".to_string(), 2)
        );
        assert_eq!(
            err("-S -t 192.0.2.100:80"),
            (
                "Illegal 'service-address' option with the 'save' command".to_string(),
                2
            )
        );
        assert_eq!(
            err("-e -t 192.0.2.100:80 -r 10.0.0.11 -w 70000"),
            ("illegal weight specified".to_string(), 2)
        );
        assert_eq!(
            err("-e -t 192.0.2.100:80 -r 10.0.0.11 -w heavy"),
            ("illegal weight specified".to_string(), 2)
        );
        assert_eq!(
            err("-e -t vip.example:80 -r 10.0.0.11"),
            ("illegal virtual server address[:port] specified".to_string(), 2)
        );
        assert_eq!(
            err("-e -t 192.0.2.100:80 -r 10.0.0"),
            ("illegal real server address[:port] specified".to_string(), 2)
        );
        assert_eq!(
            err("-a -f 0 -r 10.0.0.11"),
            ("invalid fwmark value `0' specified".to_string(), 2)
        );
        assert_eq!(err("-Ln extra"), ("unexpected argument extra".to_string(), 2));
        assert_eq!(
            err("-L --frobnicate"),
            ("--frobnicate: unknown option".to_string(), 255)
        );
        assert_eq!(
            err("-e -t 192.0.2.100:80 -r"),
            ("-r: missing argument".to_string(), 255)
        );
        // What ipvsadm has and this command does not do says so.
        assert!(err("-A -t 192.0.2.100:80").0.contains("not -A"));
        assert!(err("-L --nosort").0.contains("not --nosort"));
    }
}
