//! Reader for the kernel's own views: /proc/net/ip_vs (services, hex addresses,
//! persistence in jiffies) and /proc/net/ip_vs_conn (connections). Formats:
//! ipvs.md §6.3–6.4. [`read_live`] reads this host's table, if it has IPVS.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use super::error::{ParseError, Warning};
use super::table::{IpvsTable, TableConn, TableForward, TableKey, TableProto};

/// Used when the kernel's HZ cannot be found (Debian/Ubuntu build with 250).
pub const FALLBACK_HZ: u32 = 250;

/// Reads /proc/net/ip_vs text. `hz` converts the persistence timeout, which the
/// kernel prints in jiffies.
pub fn parse_ip_vs(text: &str, hz: u32) -> Result<IpvsTable, ParseError> {
    let mut table = IpvsTable::default();
    parse_ip_vs_into(&mut table, text, hz)?;
    Ok(table)
}

pub fn parse_ip_vs_into(table: &mut IpvsTable, text: &str, hz: u32) -> Result<(), ParseError> {
    if hz == 0 {
        return Err(ParseError::new(0, "HZ must be positive"));
    }
    let mut current: Option<usize> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        let Some(first) = tokens.first().copied() else {
            continue;
        };
        if let Some(rest) = raw.trim().strip_prefix("IP Virtual Server version ") {
            table.version = rest.split_whitespace().next().map(str::to_string);
            table.conn_tab_size = rest
                .split("size=")
                .nth(1)
                .and_then(|s| s.split(')').next())
                .and_then(|s| s.parse().ok());
            continue;
        }
        if first == "Prot" || tokens.get(1) == Some(&"RemoteAddress:Port") {
            continue;
        }
        if first == "->" {
            let Some(index) = current else {
                return Err(ParseError::new(
                    line,
                    "a `->` destination row must follow its service row",
                ));
            };
            let [addr, forward, weight, active, inactive] = tokens
                .get(1..6)
                .and_then(|t| <[&str; 5]>::try_from(t).ok())
                .ok_or_else(|| {
                    ParseError::new(
                        line,
                        "expected `-> ADDRHEX:PORTHEX Forward Weight ActiveConn InActConn`",
                    )
                })?;
            let addr = hex_socket(line, addr)?;
            let service = &mut table.services[index];
            let d = service.dest_slot(line, addr.ip(), addr.port());
            let dest = &mut service.dests[d];
            dest.forward = Some(TableForward::from_column(forward));
            dest.weight = Some(number(line, weight, "weight")?);
            dest.active = Some(number(line, active, "ActiveConn")?);
            dest.inactive = Some(number(line, inactive, "InActConn")?);
            continue;
        }
        let (key, ipv6, rest) = if first == "FWM" {
            let mark = tokens
                .get(1)
                .and_then(|m| u32::from_str_radix(m, 16).ok())
                .ok_or_else(|| ParseError::new(line, "expected the mark in hex after `FWM`"))?;
            (
                TableKey::Fwmark { mark, ipv6: false },
                false,
                &tokens[2.min(tokens.len())..],
            )
        } else if let Some(proto) = TableProto::from_name(first) {
            let addr = tokens
                .get(1)
                .ok_or_else(|| ParseError::new(line, format!("expected ADDRHEX:PORTHEX after `{first}`")))?;
            let addr = hex_socket(line, addr)?;
            let key = TableKey::Addr {
                proto,
                vip: addr.ip(),
                port: addr.port(),
            };
            (key, addr.is_ipv6(), &tokens[2.min(tokens.len())..])
        } else {
            return Err(ParseError::new(
                line,
                format!("expected a service row (TCP, UDP, SCTP or FWM) or a `->` row, found `{first}`"),
            ));
        };
        let index = table.service_slot(line, key);
        current = Some(index);
        let service = &mut table.services[index];
        let Some(scheduler) = rest.first() else {
            return Err(ParseError::new(line, "expected a scheduler name after the address"));
        };
        service.scheduler = scheduler.to_string();
        let mut i = 1;
        while let Some(word) = rest.get(i) {
            i += 1;
            match *word {
                "ops" => service.one_packet = true,
                "persistent" => {
                    let (Some(jiffies), Some(mask)) = (rest.get(i), rest.get(i + 1)) else {
                        return Err(ParseError::new(line, "expected `persistent JIFFIES MASKHEX`"));
                    };
                    i += 2;
                    let jiffies: u64 = number(line, jiffies, "persistence timeout (jiffies)")?;
                    service.persistence = Some(u32::try_from(jiffies / u64::from(hz)).unwrap_or(u32::MAX));
                    let mask = u32::from_str_radix(mask, 16)
                        .map_err(|_| ParseError::new(line, format!("expected the netmask in hex, found `{mask}`")))?;
                    service.persistence_prefix = Some(if ipv6 {
                        // The kernel passes the IPv6 prefix length through ntohl.
                        if mask <= 128 {
                            mask as u8
                        } else {
                            mask.swap_bytes().min(128) as u8
                        }
                    } else {
                        if mask.leading_ones() + mask.trailing_zeros() != 32 {
                            return Err(ParseError::new(line, format!("netmask {mask:08X} is not contiguous")));
                        }
                        mask.leading_ones() as u8
                    });
                }
                other => {
                    return Err(ParseError::new(
                        line,
                        format!("unexpected `{other}` after the scheduler (expected `ops` or `persistent`)"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Reads /proc/net/ip_vs_conn (or ip_vs_conn_sync) text into `table.conns`/`templates`.
pub fn parse_ip_vs_conn_into(table: &mut IpvsTable, text: &str) -> Result<(), ParseError> {
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let tokens: Vec<&str> = raw.split_whitespace().collect();
        match tokens.first() {
            None | Some(&"Pro") => continue,
            Some(_) => {}
        }
        if tokens.len() < 9 {
            return Err(ParseError::new(
                line,
                format!(
                    "expected `Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires`, found {} columns",
                    tokens.len()
                ),
            ));
        }
        // ip_vs_conn_sync has an Origin column (LOCAL/SYNC) before Expires.
        let (expires_at, pe_at) = if tokens[8].parse::<u32>().is_err() && tokens.len() >= 10 {
            (9, 10)
        } else {
            (8, 9)
        };
        let pair = |a: usize| -> Result<SocketAddr, ParseError> {
            let ip = hex_or_full_ip(line, tokens[a])?;
            let port = u16::from_str_radix(tokens[a + 1], 16)
                .map_err(|_| ParseError::new(line, format!("expected a port in hex, found `{}`", tokens[a + 1])))?;
            Ok(SocketAddr::new(ip, port))
        };
        let conn = TableConn {
            line,
            proto: tokens[0].to_string(),
            client: pair(1)?,
            virtual_addr: pair(3)?,
            dest: pair(5)?,
            state: tokens[7].to_string(),
            expires_secs: number(line, tokens[expires_at], "Expires (seconds)")?,
            pe: match tokens.get(pe_at..) {
                Some([name, data, ..]) => Some((name.to_string(), data.to_string())),
                Some([name]) => Some((name.to_string(), String::new())),
                _ => None,
            },
        };
        table.push_conn(conn);
    }
    Ok(())
}

/// Why the live table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {error}", path.display())]
    Parse { path: PathBuf, error: ParseError },
}

/// This host's IPVS table, connections and IPVS sysctls; `None` when the kernel
/// has no IPVS (no /proc/net/ip_vs). Reads the calling process's namespace.
pub fn read_live() -> Result<Option<IpvsTable>, LiveError> {
    let hz = kernel_hz();
    let mut table = read_from(
        Path::new("/proc/net"),
        Path::new("/proc/sys/net/ipv4/vs"),
        hz.unwrap_or(FALLBACK_HZ),
    )?;
    if let (Some(table), None) = (table.as_mut(), hz) {
        if table.services.iter().any(|s| s.persistence.is_some()) {
            table.warnings.push(Warning::new(
                0,
                format!(
                    "kernel HZ unknown (no CONFIG_HZ in /boot/config-*): persistence timeouts assume HZ={FALLBACK_HZ}"
                ),
            ));
        }
    }
    Ok(table)
}

/// [`read_live`] from other directories (tests, a copied /proc snapshot).
pub fn read_from(net_dir: &Path, sysctl_dir: &Path, hz: u32) -> Result<Option<IpvsTable>, LiveError> {
    let services_path = net_dir.join("ip_vs");
    let Some(services) = read_optional(&services_path)? else {
        return Ok(None);
    };
    let mut table = IpvsTable::default();
    parse_ip_vs_into(&mut table, &services, hz).map_err(|error| LiveError::Parse {
        path: services_path,
        error,
    })?;
    let conn_path = net_dir.join("ip_vs_conn");
    if let Some(conns) = read_optional(&conn_path)? {
        parse_ip_vs_conn_into(&mut table, &conns).map_err(|error| LiveError::Parse { path: conn_path, error })?;
    }
    table.settings = read_settings(sysctl_dir)?;
    Ok(Some(table))
}

/// Every readable file of /proc/sys/net/ipv4/vs by leaf name (the directory is small).
fn read_settings(dir: &Path) -> Result<BTreeMap<String, String>, LiveError> {
    let mut settings = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(settings),
        Err(source) => {
            return Err(LiveError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    for entry in entries.flatten().take(256) {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        // Write-only entries (e.g. drop_entry on some kernels) are skipped.
        if let (Some(name), Ok(value)) = (entry.file_name().to_str(), std::fs::read_to_string(&path)) {
            settings.insert(name.to_string(), value.trim().to_string());
        }
    }
    Ok(settings)
}

fn read_optional(path: &Path) -> Result<Option<String>, LiveError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LiveError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// CONFIG_HZ of the running kernel, from /boot/config-<release>, if installed.
pub fn kernel_hz() -> Option<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let config = std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()?;
    config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .and_then(|v| v.trim().parse().ok())
        .filter(|hz| *hz > 0)
}

/// `AC100002:1F90` or `[2001:0db8:...:0001]:0050`.
fn hex_socket(line: usize, text: &str) -> Result<SocketAddr, ParseError> {
    let bad = || ParseError::new(line, format!("expected ADDRHEX:PORTHEX, found `{text}`"));
    let (addr, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port = u16::from_str_radix(port, 16).map_err(|_| bad())?;
    let ip = if let Some(v6) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        IpAddr::V6(v6.parse::<Ipv6Addr>().map_err(|_| bad())?)
    } else {
        hex_v4(addr).ok_or_else(bad)?
    };
    Ok(SocketAddr::new(ip, port))
}

fn hex_or_full_ip(line: usize, text: &str) -> Result<IpAddr, ParseError> {
    hex_v4(text)
        .or_else(|| text.parse::<Ipv6Addr>().ok().map(IpAddr::V6))
        .ok_or_else(|| ParseError::new(line, format!("expected an address in hex, found `{text}`")))
}

fn hex_v4(text: &str) -> Option<IpAddr> {
    if text.len() != 8 {
        return None;
    }
    u32::from_str_radix(text, 16)
        .ok()
        .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

fn number<T: std::str::FromStr>(line: usize, text: &str, what: &str) -> Result<T, ParseError> {
    text.parse()
        .map_err(|_| ParseError::new(line, format!("expected {what} as a number, found `{text}`")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture present")
    }

    #[test]
    fn proc_ip_vs_reads_hex_addresses_jiffies_and_masks() {
        let table = parse_ip_vs(&fixture("proc_ip_vs.txt"), 250).unwrap();
        assert_eq!(table.conn_tab_size, Some(4096));
        assert_eq!(table.services.len(), 3);
        let web = &table.services[0];
        assert_eq!(web.describe(), "TCP 198.18.7.20:443");
        assert_eq!(web.scheduler, "wrr");
        assert_eq!(web.dests.len(), 2);
        assert_eq!(web.dests[1].addr, "198.18.9.12".parse::<IpAddr>().unwrap());
        assert_eq!(web.dests[1].weight, Some(3));
        assert_eq!(web.dests[1].active, Some(17));
        assert_eq!(web.dests[1].inactive, Some(40));
        let dns = &table.services[1];
        assert!(dns.one_packet);
        assert_eq!(dns.persistence, Some(600), "150000 jiffies at HZ=250");
        assert_eq!(dns.persistence_prefix, Some(24));
        assert_eq!(
            dns.dests[0].forward,
            Some(TableForward::Method(crate::lvs::Forward::Nat))
        );
        assert_eq!(table.services[2].fwmark, Some(0x2a));
        assert_eq!(
            table.services[2].dests[0].forward,
            Some(TableForward::Method(crate::lvs::Forward::Tun))
        );
    }

    #[test]
    fn proc_ip_vs_conn_splits_templates() {
        let mut table = IpvsTable::default();
        parse_ip_vs_conn_into(&mut table, &fixture("proc_ip_vs_conn.txt")).unwrap();
        assert_eq!(table.conns.len(), 2);
        assert_eq!(table.templates.len(), 1);
        let first = &table.conns[0];
        assert_eq!(first.client, "203.0.113.77:51000".parse().unwrap());
        assert_eq!(first.dest, "198.18.9.11:443".parse().unwrap());
        assert_eq!(first.state, "ESTABLISHED");
        assert_eq!(first.expires_secs, 897);
        assert_eq!(table.templates[0].dest, "198.18.9.12:443".parse().unwrap());
    }

    #[test]
    fn proc_ip_vs_errors_name_the_line() {
        let err = parse_ip_vs("IP Virtual Server version 1.2.1 (size=4096)\nTCP  ZZZ:0050 rr\n", 250).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("ADDRHEX"), "{err}");
        let mut table = IpvsTable::default();
        let err = parse_ip_vs_conn_into(&mut table, "Pro FromIP\nTCP 0A000002 9D78\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn ipv6_service_prefix_is_unswapped() {
        let text = "TCP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0050 rr persistent 90000 80000000\n  -> [2001:0db8:0000:0000:0000:0000:0000:0002]:0050      Route   1      0          0\n";
        let table = parse_ip_vs(text, 250).unwrap();
        assert_eq!(table.services[0].persistence_prefix, Some(128));
        assert_eq!(table.services[0].persistence, Some(360));
        assert!(table.services[0].dests[0].addr.is_ipv6());
    }

    #[test]
    fn read_from_missing_directory_is_none_and_a_snapshot_is_read() {
        let empty = tempfile::tempdir().unwrap();
        assert!(read_from(empty.path(), empty.path(), 250).unwrap().is_none());

        let net = tempfile::tempdir().unwrap();
        std::fs::write(net.path().join("ip_vs"), fixture("proc_ip_vs.txt")).unwrap();
        std::fs::write(net.path().join("ip_vs_conn"), fixture("proc_ip_vs_conn.txt")).unwrap();
        let vs = tempfile::tempdir().unwrap();
        std::fs::write(vs.path().join("conn_reuse_mode"), "1\n").unwrap();
        let table = read_from(net.path(), vs.path(), 250).unwrap().expect("table present");
        assert_eq!(table.services.len(), 3);
        assert_eq!(table.conns.len(), 2);
        assert_eq!(table.settings.get("conn_reuse_mode").map(String::as_str), Some("1"));
    }

    #[test]
    fn read_live_on_a_kernel_without_ipvs_is_none() {
        if Path::new("/proc/net/ip_vs").exists() {
            eprintln!("skipped: this kernel has IPVS; read_live returns a table here");
            let table = read_live().expect("live IPVS table readable");
            assert!(table.is_some());
            return;
        }
        assert!(read_live().unwrap().is_none());
    }
}
