//! Reader for what `ipvsadm` prints: `-Ln` (plain, `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `--tun-info`), `-Lnc` and
//! `ipvsadm-save -n`. Formats: ipvs.md §6.5–6.8.
//!
//! One input may hold several of them one after the other (an operator pasting
//! `-Ln`, `-Ln --stats` and `-Lnc`): rows of the same service merge into one
//! [`TableService`]. Columns are found by the header lines when present, else by
//! the shape of the row (excerpts often lack headers). Columns are split on
//! whitespace, never by position: long addresses break ipvsadm's alignment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::error::{ParseError, Warning};
use super::table::{Counters, IpvsTable, Stats, TableConn, TableForward, TableKey, TableProto, TableService};
use crate::lvs::{Forward, Proto};

/// Reads any mix of `ipvsadm -Ln[--stats|--rate|...]`, `-Lnc` and `ipvsadm-save -n` text.
pub fn parse(text: &str) -> Result<IpvsTable, ParseError> {
    let mut table = IpvsTable::default();
    parse_into(&mut table, text)?;
    Ok(table)
}

/// Like [`parse`], adding to an existing table (rows of known services merge).
pub fn parse_into(table: &mut IpvsTable, text: &str) -> Result<(), ParseError> {
    let mut reader = Reader {
        table,
        current: None,
        numbers: NumberColumns::Totals,
        dest_columns: DestColumns::Guess,
        approximate_noted: false,
    };
    for (index, raw) in text.lines().enumerate() {
        reader.line(index + 1, raw)?;
    }
    Ok(())
}

/// What five bare numbers on a row mean, from the last title line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NumberColumns {
    Totals,
    Rates,
}

/// Columns of a `->` row after the address, from the last `-> RemoteAddress` title.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DestColumns {
    /// No title seen: decide by the row's shape.
    Guess,
    /// Forward Weight ActiveConn InActConn
    Plain,
    /// `--tun-info`: Forward TunnelInfo Weight ActiveConn InActConn
    TunInfo,
    /// `--persistent-conn`: Weight PersistConn ActiveConn InActConn (no Forward)
    PersistConn,
    /// `--thresholds`: Uthreshold Lthreshold ActiveConn InActConn
    Thresholds,
    /// Five counters (`--stats` / `--rate`).
    Counters,
}

struct Reader<'t> {
    table: &'t mut IpvsTable,
    /// Index of the service the next `->` rows belong to.
    current: Option<usize>,
    numbers: NumberColumns,
    dest_columns: DestColumns,
    approximate_noted: bool,
}

impl Reader<'_> {
    fn line(&mut self, line: usize, raw: &str) -> Result<(), ParseError> {
        let text = raw.trim();
        if text.is_empty() {
            return Ok(());
        }
        let tokens: Vec<&str> = text.split_whitespace().collect();
        if self.title(line, text, &tokens)? {
            return Ok(());
        }
        match tokens[0] {
            "-A" | "-a" | "-E" | "-e" => self.save_line(line, &tokens),
            "->" => self.dest_row(line, &tokens[1..]),
            _ if looks_like_conn_row(&tokens) => self.conn_row(line, &tokens),
            _ => self.service_row(line, &tokens),
        }
    }

    /// Title and informational lines; true when the line was one.
    fn title(&mut self, line: usize, text: &str, tokens: &[&str]) -> Result<bool, ParseError> {
        if let Some(rest) = text.strip_prefix("IP Virtual Server version ") {
            let version = rest.split_whitespace().next().unwrap_or("");
            self.table.version = Some(version.to_string());
            if let Some(size) = rest.split("size=").nth(1).and_then(|s| s.split(')').next()) {
                let size = size
                    .trim()
                    .parse()
                    .map_err(|_| ParseError::new(line, format!("expected a number after `size=`, found `{size}`")))?;
                self.table.conn_tab_size = Some(size);
            }
            self.current = None;
            self.dest_columns = DestColumns::Guess;
            self.numbers = NumberColumns::Totals;
            return Ok(true);
        }
        // ipvsadm's `print_title` names the dest columns of `--stats`, `--rate`,
        // `--thresholds` and `--persistent-conn` on the Prot line, then prints a
        // bare `  -> RemoteAddress:Port`.
        if tokens.first() == Some(&"Prot") {
            self.numbers = if tokens.contains(&"CPS") {
                NumberColumns::Rates
            } else {
                NumberColumns::Totals
            };
            self.dest_columns = dest_columns_named(tokens).unwrap_or(DestColumns::Guess);
            return Ok(true);
        }
        if tokens.first() == Some(&"->") && tokens.get(1) == Some(&"RemoteAddress:Port") {
            let columns = &tokens[2..];
            self.dest_columns = if columns.is_empty() {
                match self.dest_columns {
                    named @ (DestColumns::Thresholds | DestColumns::PersistConn) => named,
                    _ => DestColumns::Counters,
                }
            } else if columns.contains(&"TunnelInfo") {
                DestColumns::TunInfo
            } else {
                dest_columns_named(columns).unwrap_or(DestColumns::Plain)
            };
            return Ok(true);
        }
        if text == "IPVS connection entries" || (tokens.first() == Some(&"pro") && tokens.get(1) == Some(&"expire")) {
            self.current = None;
            return Ok(true);
        }
        // `ipvsadm -L --timeout` / `--daemon`: not part of the table.
        if text.starts_with("Timeout (") || text.contains("sync daemon (") {
            return Ok(true);
        }
        Ok(false)
    }

    fn service_row(&mut self, line: usize, tokens: &[&str]) -> Result<(), ParseError> {
        let (key, rest) = service_head(line, tokens)?;
        let index = self.table.service_slot(line, key);
        self.current = Some(index);
        if rest.len() == 5 && rest.iter().all(|t| counter(t).is_some()) {
            let counters = self.counters(line, rest)?;
            let numbers = self.numbers;
            let service = &mut self.table.services[index];
            store_counters(&mut service.stats, numbers, counters);
            return Ok(());
        }
        let service = &mut self.table.services[index];
        read_service_options(line, rest, service)
    }

    fn dest_row(&mut self, line: usize, tokens: &[&str]) -> Result<(), ParseError> {
        let Some(index) = self.current else {
            return Err(ParseError::new(
                line,
                "a `->` destination row must follow its service row (`TCP  VIP:PORT sched`)",
            ));
        };
        let Some(addr_token) = tokens.first() else {
            return Err(ParseError::new(line, "expected `ADDRESS:PORT` after `->`"));
        };
        let addr = socket_addr(line, addr_token)?;
        let rest = &tokens[1..];
        let first_is_number = rest.first().is_some_and(|t| counter(t).is_some());
        let columns = match self.dest_columns {
            DestColumns::Guess if first_is_number && rest.len() == 5 => DestColumns::Counters,
            DestColumns::Guess if first_is_number && rest.len() == 4 => DestColumns::Thresholds,
            DestColumns::Guess if rest.len() == 5 && !first_is_number && rest[1].parse::<u32>().is_err() => {
                DestColumns::TunInfo
            }
            DestColumns::Guess => DestColumns::Plain,
            // A `--stats` title followed by a plain listing without its own title.
            DestColumns::Counters if !first_is_number => DestColumns::Plain,
            known => known,
        };
        if columns == DestColumns::Counters {
            let counters = self.counters(line, rest)?;
            let numbers = self.numbers;
            let service = &mut self.table.services[index];
            let d = service.dest_slot(line, addr.ip(), addr.port());
            store_counters(&mut service.dests[d].stats, numbers, counters);
            return Ok(());
        }
        let service = &mut self.table.services[index];
        let d = service.dest_slot(line, addr.ip(), addr.port());
        let dest = &mut service.dests[d];
        match columns {
            DestColumns::Thresholds => {
                let [u, l, a, i] = numbers::<4>(line, rest, "Uthreshold Lthreshold ActiveConn InActConn")?;
                dest.upper_threshold = Some(u);
                dest.lower_threshold = Some(l);
                dest.active = Some(a);
                dest.inactive = Some(i);
            }
            DestColumns::PersistConn => {
                let [w, p, a, i] = numbers::<4>(line, rest, "Weight PersistConn ActiveConn InActConn")?;
                dest.weight = Some(w);
                dest.persist = Some(p);
                dest.active = Some(a);
                dest.inactive = Some(i);
            }
            DestColumns::TunInfo => {
                let forward = forward_word(line, rest.first())?;
                // `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` or `n/a`: not kept.
                let counts = rest.get(2..).unwrap_or(&[]);
                let [w, a, i] = numbers::<3>(line, counts, "Forward TunnelInfo Weight ActiveConn InActConn")?;
                dest.forward = Some(forward);
                dest.weight = Some(w);
                dest.active = Some(a);
                dest.inactive = Some(i);
            }
            _ => {
                let forward = forward_word(line, rest.first())?;
                if rest.len() > 4 {
                    return Err(ParseError::new(
                        line,
                        format!(
                            "expected `Forward Weight ActiveConn InActConn` after the address, found {} columns",
                            rest.len()
                        ),
                    ));
                }
                let counts = rest.get(1..).unwrap_or(&[]);
                let [w, a, i] = numbers::<3>(line, counts, "Weight ActiveConn InActConn")?;
                dest.forward = Some(forward);
                dest.weight = Some(w);
                dest.active = Some(a);
                dest.inactive = Some(i);
            }
        }
        Ok(())
    }

    fn conn_row(&mut self, line: usize, tokens: &[&str]) -> Result<(), ParseError> {
        let conn = conn_row(line, tokens)?;
        self.table.push_conn(conn);
        Ok(())
    }

    /// `-A`/`-a` lines of `ipvsadm-save -n` (also accepts `-E`/`-e`).
    fn save_line(&mut self, line: usize, tokens: &[&str]) -> Result<(), ParseError> {
        let is_service = matches!(tokens[0], "-A" | "-E");
        let mut args = SaveArgs { line, tokens, pos: 1 };
        let key = args.service_spec()?;
        if is_service {
            let index = self.table.service_slot(line, key);
            self.current = Some(index);
            let service = &mut self.table.services[index];
            while let Some(option) = args.next() {
                match option {
                    "-s" | "--scheduler" => service.scheduler = args.value(option)?.to_string(),
                    "-p" | "--persistent" => {
                        // The timeout is optional on the command line (default 360 s).
                        let timeout = match args.peek() {
                            Some(v) if !v.starts_with('-') => {
                                args.pos += 1;
                                uint(line, v, "persistence timeout")?
                            }
                            _ => 360,
                        };
                        service.persistence = Some(timeout);
                    }
                    "-M" | "--netmask" => {
                        let mask = args.value(option)?;
                        service.persistence_prefix = Some(netmask_prefix(line, mask)?);
                    }
                    "--pe" => service.pe = Some(args.value(option)?.to_string()),
                    "-o" | "--ops" => service.one_packet = true,
                    "-b" | "--sched-flags" => {
                        service.flags = args
                            .value(option)?
                            .split(',')
                            .filter(|f| !f.is_empty())
                            .map(str::to_string)
                            .collect();
                    }
                    "-6" => {}
                    other => {
                        return Err(ParseError::new(
                            line,
                            format!("unknown service option `{other}` (expected -s, -p, -M, --pe, -o or -b)"),
                        ))
                    }
                }
            }
            return Ok(());
        }
        let Some(index) = self.table.services.iter().position(|s| s.key() == key) else {
            return Err(ParseError::new(
                line,
                "`-a` line for a service that no earlier `-A` line defines",
            ));
        };
        self.current = Some(index);
        let mut dest_addr: Option<SocketAddr> = None;
        let mut forward = None;
        let mut weight = None;
        let mut upper = None;
        let mut lower = None;
        while let Some(option) = args.next() {
            match option {
                "-r" | "--real-server" => dest_addr = Some(socket_addr(line, args.value(option)?)?),
                "-g" | "--gatewaying" => forward = Some(TableForward::Method(Forward::Dr)),
                "-m" | "--masquerading" => forward = Some(TableForward::Method(Forward::Nat)),
                "-i" | "--ipip" => forward = Some(TableForward::Method(Forward::Tun)),
                "-w" | "--weight" => weight = Some(uint(line, args.value(option)?, "weight")?),
                "-x" | "--u-threshold" => upper = Some(uint(line, args.value(option)?, "upper threshold")?),
                "-y" | "--l-threshold" => lower = Some(uint(line, args.value(option)?, "lower threshold")?),
                "--tun-type" | "--tun-port" => {
                    args.value(option)?;
                }
                "--tun-nocsum" | "--tun-csum" | "--tun-remcsum" => {}
                // A fork's method stock ipvsadm cannot name (sample: `(null)`).
                other if !other.starts_with('-') => forward = Some(TableForward::Other(other.to_string())),
                other => {
                    return Err(ParseError::new(
                        line,
                        format!(
                            "unknown real-server option `{other}` (expected -r, -g, -m, -i, -w, -x, -y or --tun-*)"
                        ),
                    ))
                }
            }
        }
        let Some(addr) = dest_addr else {
            return Err(ParseError::new(line, "`-a` line without `-r ADDRESS:PORT`"));
        };
        let service = &mut self.table.services[index];
        let d = service.dest_slot(line, addr.ip(), addr.port());
        let dest = &mut service.dests[d];
        // ipvsadm's defaults when an option is left out: DR, weight 1.
        dest.forward = Some(forward.unwrap_or(TableForward::Method(Forward::Dr)));
        dest.weight = Some(weight.unwrap_or(1));
        dest.upper_threshold = upper.or(dest.upper_threshold);
        dest.lower_threshold = lower.or(dest.lower_threshold);
        Ok(())
    }

    fn counters(&mut self, line: usize, tokens: &[&str]) -> Result<(Counters, bool), ParseError> {
        let mut values = [0u64; 5];
        let mut approximate = false;
        if tokens.len() != 5 {
            return Err(ParseError::new(
                line,
                format!(
                    "expected five counters (Conns InPkts OutPkts InBytes OutBytes), found {} columns",
                    tokens.len()
                ),
            ));
        }
        for (slot, token) in values.iter_mut().zip(tokens) {
            let Some((value, rounded)) = counter(token) else {
                return Err(ParseError::new(line, format!("expected a counter, found `{token}`")));
            };
            *slot = value;
            approximate |= rounded;
        }
        if approximate && !self.approximate_noted {
            self.approximate_noted = true;
            self.table.warnings.push(Warning::new(
                line,
                "counters with a K/M/G/T suffix are rounded down; collect with --exact for full values",
            ));
        }
        let [conns, in_pkts, out_pkts, in_bytes, out_bytes] = values;
        Ok((
            Counters {
                conns,
                in_pkts,
                out_pkts,
                in_bytes,
                out_bytes,
            },
            approximate,
        ))
    }
}

/// Dest columns a title line names, if it names any of the variants.
fn dest_columns_named(tokens: &[&str]) -> Option<DestColumns> {
    if tokens.contains(&"Uthreshold") {
        Some(DestColumns::Thresholds)
    } else if tokens.contains(&"PersistConn") {
        Some(DestColumns::PersistConn)
    } else if tokens.contains(&"Conns") || tokens.contains(&"CPS") {
        Some(DestColumns::Counters)
    } else {
        None
    }
}

fn store_counters(stats: &mut Option<Stats>, kind: NumberColumns, (counters, approximate): (Counters, bool)) {
    let stats = stats.get_or_insert_with(Stats::default);
    match kind {
        NumberColumns::Totals => stats.totals = Some(counters),
        NumberColumns::Rates => stats.rates = Some(counters),
    }
    stats.approximate |= approximate;
}

/// The protocol and address (or `FWM mark [IPv6]`) starting a service row.
fn service_head<'a, 'b>(line: usize, tokens: &'b [&'a str]) -> Result<(TableKey, &'b [&'a str]), ParseError> {
    let first = tokens[0];
    if first == "FWM" {
        let Some(mark) = tokens.get(1) else {
            return Err(ParseError::new(line, "expected a mark number after `FWM`"));
        };
        let mark = uint(line, mark, "firewall mark")?;
        let ipv6 = tokens.get(2) == Some(&"IPv6");
        let rest = &tokens[if ipv6 { 3 } else { 2 }..];
        return Ok((TableKey::Fwmark { mark, ipv6 }, rest));
    }
    let Some(proto) = TableProto::from_name(first) else {
        return Err(ParseError::new(
            line,
            format!("expected a service row starting with TCP, UDP, SCTP or FWM, a `->` row, an `-A`/`-a` line or a connection row; found `{first}`"),
        ));
    };
    let Some(addr) = tokens.get(1) else {
        return Err(ParseError::new(line, format!("expected `VIP:PORT` after `{first}`")));
    };
    let addr = socket_addr(line, addr)?;
    Ok((
        TableKey::Addr {
            proto,
            vip: addr.ip(),
            port: addr.port(),
        },
        &tokens[2..],
    ))
}

/// `sched [(flags)] [persistent N] [mask M] [pe NAME] [ops]` after the address.
fn read_service_options(line: usize, rest: &[&str], service: &mut TableService) -> Result<(), ParseError> {
    let Some(scheduler) = rest.first() else {
        return Err(ParseError::new(
            line,
            "expected a scheduler name (or five --stats counters) after the service address",
        ));
    };
    service.scheduler = scheduler.to_string();
    let mut i = 1;
    while let Some(word) = rest.get(i) {
        i += 1;
        match *word {
            "persistent" => {
                let value = rest.get(i).ok_or_else(|| ParseError::new(line, "expected seconds after `persistent`"))?;
                service.persistence = Some(uint(line, value, "persistence timeout")?);
                i += 1;
            }
            "mask" => {
                let value = rest.get(i).ok_or_else(|| ParseError::new(line, "expected a netmask after `mask`"))?;
                service.persistence_prefix = Some(netmask_prefix(line, value)?);
                i += 1;
            }
            "pe" => {
                let value = rest.get(i).ok_or_else(|| ParseError::new(line, "expected a name after `pe`"))?;
                service.pe = Some(value.to_string());
                i += 1;
            }
            "ops" => service.one_packet = true,
            flags if flags.starts_with('(') && flags.ends_with(')') => {
                service.flags = flags[1..flags.len() - 1]
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect();
            }
            other => {
                return Err(ParseError::new(
                    line,
                    format!("unexpected `{other}` in the service row (expected `(flags)`, `persistent N`, `mask M`, `pe NAME` or `ops`)"),
                ))
            }
        }
    }
    Ok(())
}

/// A `-Lnc` row: `pro expire state source virtual destination [pe data]`.
fn conn_row(line: usize, tokens: &[&str]) -> Result<TableConn, ParseError> {
    if tokens.len() < 6 {
        return Err(ParseError::new(
            line,
            format!(
                "expected `pro expire state source virtual destination`, found {} columns",
                tokens.len()
            ),
        ));
    }
    let expires_secs = expire(tokens[1]).ok_or_else(|| {
        ParseError::new(
            line,
            format!("expected the expire time as MM:SS, found `{}`", tokens[1]),
        )
    })?;
    let pe = match tokens.get(6..) {
        Some([name, data, ..]) => Some((name.to_string(), data.to_string())),
        Some([name]) => Some((name.to_string(), String::new())),
        _ => None,
    };
    Ok(TableConn {
        line,
        proto: tokens[0].to_string(),
        state: tokens[2].to_string(),
        client: socket_addr(line, tokens[3])?,
        virtual_addr: socket_addr(line, tokens[4])?,
        dest: socket_addr(line, tokens[5])?,
        expires_secs,
        pe,
    })
}

fn looks_like_conn_row(tokens: &[&str]) -> bool {
    // No service address looks like MM:SS, so a short row still gets the
    // connection-row message.
    tokens.len() >= 2 && expire(tokens[1]).is_some()
}

/// `MM:SS` (MM may exceed 99) → seconds.
fn expire(text: &str) -> Option<u32> {
    let (minutes, seconds) = text.split_once(':')?;
    if seconds.len() != 2 {
        return None;
    }
    let minutes: u32 = minutes.parse().ok()?;
    let seconds: u32 = seconds.parse().ok()?;
    minutes.checked_mul(60)?.checked_add(seconds)
}

/// The address part of a service/dest/conn column, with a hint for names.
pub(crate) fn socket_addr(line: usize, text: &str) -> Result<SocketAddr, ParseError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let host = text.rsplit_once(':').map_or(text, |(h, _)| h);
    let message = if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        format!("expected ADDRESS:PORT with a numeric port, found `{text}`")
    } else {
        format!(
            "expected a numeric ADDRESS:PORT, found `{text}` (names are not supported: collect the listing with -n)"
        )
    };
    Err(ParseError::new(line, message))
}

/// A counter as printed by `--stats`: plain, or `%8llu` + K/M/G/T (rounded down).
fn counter(text: &str) -> Option<(u64, bool)> {
    let (digits, factor) = match text.as_bytes().last()? {
        b'K' => (&text[..text.len() - 1], 1_000u64),
        b'M' => (&text[..text.len() - 1], 1_000_000),
        b'G' => (&text[..text.len() - 1], 1_000_000_000),
        b'T' => (&text[..text.len() - 1], 1_000_000_000_000),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some((value.checked_mul(factor)?, factor != 1))
}

fn uint(line: usize, text: &str, what: &str) -> Result<u32, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected the {what} as a whole number, found `{text}`")))
}

fn numbers<const N: usize>(line: usize, tokens: &[&str], columns: &str) -> Result<[u32; N], ParseError> {
    if tokens.len() < N {
        return Err(ParseError::new(
            line,
            format!("expected `{columns}` after the address, found {} columns", tokens.len()),
        ));
    }
    let mut out = [0u32; N];
    for (slot, token) in out.iter_mut().zip(tokens) {
        *slot = token
            .parse()
            .map_err(|_| ParseError::new(line, format!("expected a number in `{columns}`, found `{token}`")))?;
    }
    Ok(out)
}

fn forward_word(line: usize, word: Option<&&str>) -> Result<TableForward, ParseError> {
    match word {
        Some(w) if w.chars().all(|c| c.is_ascii_alphabetic() || c == '(' || c == ')') => {
            Ok(TableForward::from_column(w))
        }
        Some(w) => Err(ParseError::new(
            line,
            format!("expected the forwarding method (Route, Masq, Tunnel, Local), found `{w}`"),
        )),
        None => Err(ParseError::new(
            line,
            "expected `Forward Weight ActiveConn InActConn` after the address",
        )),
    }
}

/// `-M`/`mask` value: a dotted IPv4 netmask, or an IPv6 prefix length.
pub(crate) fn netmask_prefix(line: usize, text: &str) -> Result<u8, ParseError> {
    if let Ok(mask) = text.parse::<Ipv4Addr>() {
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err(ParseError::new(line, format!("netmask `{text}` is not contiguous")));
        }
        return Ok(bits.leading_ones() as u8);
    }
    match text.parse::<u8>() {
        Ok(plen) if plen <= 128 => Ok(plen),
        _ => Err(ParseError::new(
            line,
            format!("expected a netmask (255.255.255.0) or prefix length, found `{text}`"),
        )),
    }
}

/// Walks the options of one save line.
struct SaveArgs<'a, 'b> {
    line: usize,
    tokens: &'b [&'a str],
    pos: usize,
}

impl<'a> SaveArgs<'a, '_> {
    fn next(&mut self) -> Option<&'a str> {
        let token = self.tokens.get(self.pos).copied();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&'a str> {
        self.tokens.get(self.pos).copied()
    }

    fn value(&mut self, option: &str) -> Result<&'a str, ParseError> {
        self.next()
            .ok_or_else(|| ParseError::new(self.line, format!("expected a value after `{option}`")))
    }

    /// `-t|-u|--sctp-service ADDR:PORT` or `-f MARK [-6]`.
    fn service_spec(&mut self) -> Result<TableKey, ParseError> {
        let line = self.line;
        let Some(kind) = self.next() else {
            return Err(ParseError::new(
                line,
                "expected -t, -u, --sctp-service or -f after the command",
            ));
        };
        let proto = match kind {
            "-t" | "--tcp-service" => TableProto::Modelled(Proto::Tcp),
            "-u" | "--udp-service" => TableProto::Modelled(Proto::Udp),
            "--sctp-service" => TableProto::Sctp,
            "-f" | "--fwmark-service" => {
                let mark = uint(line, self.value(kind)?, "firewall mark")?;
                let ipv6 = self.tokens.get(self.pos..).unwrap_or(&[]).contains(&"-6");
                return Ok(TableKey::Fwmark { mark, ipv6 });
            }
            other => {
                return Err(ParseError::new(
                    line,
                    format!("expected -t, -u, --sctp-service or -f, found `{other}`"),
                ))
            }
        };
        let addr = socket_addr(line, self.value(kind)?)?;
        Ok(TableKey::Addr {
            proto,
            vip: addr.ip(),
            port: addr.port(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_suffixes_scale_and_mark_rounding() {
        assert_eq!(counter("123G"), Some((123_000_000_000, true)));
        assert_eq!(counter("13786"), Some((13786, false)));
        assert_eq!(counter("G"), None);
        assert_eq!(counter("99999999999999T"), None, "overflow is refused, not wrapped");
    }

    #[test]
    fn expire_accepts_more_than_99_minutes() {
        assert_eq!(expire("133:35"), Some(133 * 60 + 35));
        assert_eq!(expire("1:5"), None);
    }

    #[test]
    fn column_variants_are_read_by_their_titles() {
        // Titles and rows as ipvsadm 1.31's print_title / print_service_entry
        // print them for --persistent-conn, --thresholds, --rate, --tun-info.
        let text = concat!(
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.10:80 wlc persistent 60\n",
            "  -> 10.0.1.1:80                  1         7           2          5         \n",
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.10:80 wlc persistent 60\n",
            "  -> 10.0.1.1:80                  100        10         2          5         \n",
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n",
            "TCP  10.0.0.10:80                        4       40        0     3000        0\n",
            "  -> 10.0.1.1:80                         4       40        0     3000        0\n",
            "IP Virtual Server version 1.2.1 (size=4096)\n",
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
            "TCP  10.0.0.10:80 wlc persistent 60\n",
            "  -> 10.0.1.1:80                  Tunnel  ipip          3      2          5         \n",
        );
        let table = parse(text).unwrap();
        assert_eq!(table.services.len(), 1, "four listings of one service merge");
        let dest = &table.services[0].dests[0];
        assert_eq!(dest.persist, Some(7));
        assert_eq!((dest.upper_threshold, dest.lower_threshold), (Some(100), Some(10)));
        assert_eq!(dest.stats.unwrap().rates.unwrap().in_bytes, 3000);
        assert!(dest.stats.unwrap().totals.is_none());
        assert_eq!(dest.forward, Some(TableForward::Method(Forward::Tun)));
        assert_eq!(dest.weight, Some(3));
        assert_eq!((dest.active, dest.inactive), (Some(2), Some(5)));
    }

    #[test]
    fn headerless_tun_info_rows_are_recognised_by_shape() {
        let table = parse("TCP  10.0.0.10:80 rr\n  -> 10.0.1.1:80 Tunnel gue:6080:-c 2 1 0\n").unwrap();
        let dest = &table.services[0].dests[0];
        assert_eq!(
            (dest.forward.clone(), dest.weight),
            (Some(TableForward::Method(Forward::Tun)), Some(2))
        );
    }

    #[test]
    fn malformed_rows_name_their_line_and_what_was_expected() {
        let cases: &[(&str, usize, &str)] = &[
            ("  -> 10.0.0.1:80 Route 1 0 0\n", 1, "must follow its service row"),
            ("TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Route one 0 0\n", 2, "number"),
            ("TCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 Route 1 0 0 9 9\n", 2, "found 6 columns"),
            (
                "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn\n  -> RemoteAddress:Port\nTCP  10.0.0.1:80 rr\n  -> 10.0.0.2:80 1 2 3\n",
                4,
                "Weight PersistConn ActiveConn InActConn",
            ),
            ("TCP  10.0.0.1:80 rr persistent\n", 1, "seconds after `persistent`"),
            ("TCP  10.0.0.1:80 rr bogus\n", 1, "unexpected `bogus`"),
            ("TCP  10.0.0.1\n", 1, "ADDRESS:PORT"),
            ("hello there\n", 1, "expected a service row"),
            (
                "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.9:80 -r 10.0.0.2:80 -g\n",
                2,
                "no earlier `-A`",
            ),
            ("-A -t 10.0.0.1:80 -s\n", 1, "value after `-s`"),
            ("-A -t 10.0.0.1:80 -s rr -Z\n", 1, "unknown service option `-Z`"),
            ("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -g -w 1\n", 2, "without `-r"),
            ("TCP 14:59  ESTABLISHED 10.0.0.2:1 10.0.0.1:80\n", 1, "found 5 columns"),
            (
                "TCP 14:59  ESTABLISHED 10.0.0.2 10.0.0.1:80 10.0.0.3:80\n",
                1,
                "ADDRESS:PORT",
            ),
        ];
        for (text, line, needle) in cases {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, *line, "{text:?}: {err}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn netmask_must_be_contiguous() {
        assert_eq!(netmask_prefix(1, "255.255.255.0"), Ok(24));
        assert!(netmask_prefix(3, "255.0.255.0")
            .unwrap_err()
            .message
            .contains("contiguous"));
    }
}
