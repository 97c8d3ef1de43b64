//! `/proc/net/ip_vs_conn` rows (ipvs.md §6.4): the connection table, which
//! netlink does not export. Read through `/proc/thread-self/net/` from the
//! director's namespace (or a file opened there).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::ipvs::Proto;

/// One row of `/proc/net/ip_vs_conn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcConn {
    pub proto: Proto,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub dest: SocketAddrV4,
    pub state: String,
    pub expires: u64,
}

/// A malformed IPv4 row: which line, what is wrong, and the row itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ip_vs_conn line {line}: {why}: {row:?}")]
pub struct ConnRowError {
    pub line: usize,
    pub why: &'static str,
    pub row: String,
}

/// Parses the whole file. Rows lvslab does not model (IPv6, SCTP) are skipped; a fwmark
/// template (`IP`, IPPROTO_IP, the mark in the virtual address) reads as TCP, the stand-in the
/// embedded engine keys it by; a malformed IPv4 row is an error naming it.
pub fn parse(text: &str) -> Result<Vec<ProcConn>, ConnRowError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "Pro" {
            continue;
        }
        let proto = if f[0] == "IP" {
            Some(Proto::Tcp)
        } else {
            Proto::from_name(f[0])
        };
        let Some(proto) = proto else {
            continue;
        };
        // IPv6 rows print full addresses with colons in the address columns.
        if f.get(1).is_some_and(|a| a.contains(':')) {
            continue;
        }
        let bad = |why: &'static str| ConnRowError {
            line: n + 1,
            why,
            row: line.to_owned(),
        };
        if f.len() < 9 {
            return Err(bad("fewer than 9 columns"));
        }
        let addr = |i: usize| {
            u32::from_str_radix(f[i], 16)
                .map(Ipv4Addr::from)
                .map_err(|_| bad("bad address"))
        };
        let port = |i: usize| u16::from_str_radix(f[i], 16).map_err(|_| bad("bad port"));
        out.push(ProcConn {
            proto,
            from: SocketAddrV4::new(addr(1)?, port(2)?),
            to: SocketAddrV4::new(addr(3)?, port(4)?),
            dest: SocketAddrV4::new(addr(5)?, port(6)?),
            state: f[7].to_string(),
            expires: f[8].parse().map_err(|_| bad("bad expiry"))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of ipvs.md §6.4, plus an IPv6 row and a fwmark template.
    const SAMPLE: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A000002 9D78 CFAF2C6E 1F90 AC100002 1F90 ESTABLISHED     899
UDP 0A000007 14E9 0A00000A 0035 C0A80105 0035 UDP             298
UDP 0A000000 0000 0A00000A 0035 C0A80105 0035 ASSURED         359
IP  0A000000 0000 00000007 0000 C0A80109 0000 ASSURED          42
TCP 2001:0db8:0000:0000:0000:0000:0000:0001 d431 2001:0db8:0000:0000:0000:0000:0000:0064 0050 2001:0db8:0000:0000:0000:0000:0000:000b 0050 SYN_RECV 59
";

    #[test]
    fn rows_of_the_reference_example() {
        let rows = parse(SAMPLE).unwrap();
        assert_eq!(rows.len(), 4, "IPv6 row skipped: {rows:?}");
        assert_eq!(
            rows[0],
            ProcConn {
                proto: Proto::Tcp,
                from: "10.0.0.2:40312".parse().unwrap(),
                to: "207.175.44.110:8080".parse().unwrap(),
                dest: "172.16.0.2:8080".parse().unwrap(),
                state: "ESTABLISHED".into(),
                expires: 899,
            }
        );
        assert_eq!(rows[2].from, "10.0.0.0:0".parse().unwrap());
        assert_eq!(rows[2].state, "ASSURED");
        // The fwmark template: mark 7 where the VIP would be.
        assert_eq!((rows[3].proto, rows[3].to), (Proto::Tcp, "0.0.0.7:0".parse().unwrap()));
    }

    #[test]
    fn malformed_row_is_an_error_with_its_line() {
        let err = parse("TCP 0A00000Z 9D78 CFAF2C6E 1F90 AC100002 1F90 ESTABLISHED 899\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1") && err.contains("bad address"), "{err}");
        let err = parse("TCP 0A000002 9D78\n").unwrap_err().to_string();
        assert!(err.contains("fewer than 9"), "{err}");
    }
}
