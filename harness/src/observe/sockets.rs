//! Listening sockets of a namespace (`ss -ltnu`), from /proc/thread-self/net/{tcp,tcp6,udp,udp6}.
//!
//! TCP listeners are the rows in state 0A (LISTEN). UDP has no listen state: a bound,
//! unconnected socket is state 07 (CLOSE) with a zero remote address, which is what `ss -lu`
//! shows as UNCONN.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::ObserveError;
use crate::diagnose::evidence::{Listener, Proto};

const TCP_LISTEN: u8 = 0x0A;
const UDP_UNCONNECTED: u8 = 0x07;

/// (file under /proc/thread-self/net, protocol) pairs read.
pub const SOCKET_FILES: [(&str, Proto); 4] = [
    ("tcp", Proto::Tcp),
    ("tcp6", Proto::Tcp),
    ("udp", Proto::Udp),
    ("udp6", Proto::Udp),
];

/// TCP states in which this end's packets may not all have passed a director yet: open,
/// opening, or closing with our FIN not yet acknowledged (SYN_SENT, ESTABLISHED, FIN_WAIT1,
/// CLOSE_WAIT, LAST_ACK, CLOSING). FIN_WAIT2 and TIME_WAIT mean our FIN was answered.
const TCP_IN_FLIGHT: [u8; 6] = [0x02, 0x01, 0x04, 0x08, 0x09, 0x0B];

/// How many IPv4 TCP connections of the calling thread's namespace to `remote` addresses are
/// still in flight (see [`TCP_IN_FLIGHT`]). Must run on a thread inside the namespace.
pub fn tcp_in_flight(host: &str, remote: &[IpAddr]) -> Result<usize, ObserveError> {
    let path = "/proc/thread-self/net/tcp";
    let text = std::fs::read_to_string(path).map_err(|e| ObserveError::os(host, format!("read {path}"), e))?;
    count_in_flight(path, &text, remote)
}

/// [`tcp_in_flight`] over one /proc/net/tcp text.
pub fn count_in_flight(file: &str, text: &str, remote: &[IpAddr]) -> Result<usize, ObserveError> {
    let mut n = 0;
    for (no, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let bad = |what: &str| ObserveError::parse(file, no + 1, format!("{what} in {line:?}"));
        let (Some(peer), Some(state)) = (fields.get(2), fields.get(3)) else {
            return Err(bad("short row"));
        };
        let peer = parse_hex_socket(peer).ok_or_else(|| bad("bad remote address"))?;
        let state = u8::from_str_radix(state, 16).map_err(|_| bad("state is not hex"))?;
        if TCP_IN_FLIGHT.contains(&state) && remote.contains(&peer.ip()) {
            n += 1;
        }
    }
    Ok(n)
}

/// Every listener of the calling thread's namespace. A missing tcp6/udp6 file (IPv6 off)
/// is not an error. Must run on a thread inside the namespace.
pub fn read_listeners(host: &str) -> Result<Vec<Listener>, ObserveError> {
    let mut listeners = Vec::new();
    for (file, proto) in SOCKET_FILES {
        let path = format!("/proc/thread-self/net/{file}");
        match std::fs::read_to_string(&path) {
            Ok(text) => listeners.extend(parse_listeners(&path, &text, proto)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.ends_with('6') => {}
            Err(e) => return Err(ObserveError::os(host, format!("read {path}"), e)),
        }
    }
    Ok(listeners)
}

/// Listeners in one /proc/net/{tcp,udp}[6] text (header line first). `file` names the
/// source in errors.
pub fn parse_listeners(file: &str, text: &str, proto: Proto) -> Result<Vec<Listener>, ObserveError> {
    let mut listeners = Vec::new();
    for (no, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| ObserveError::parse(file, no + 1, format!("{what} in {line:?}"));
        let mut fields = line.split_whitespace();
        let _slot = fields.next();
        let local = fields.next().ok_or_else(|| bad("no local address"))?;
        let remote = fields.next().ok_or_else(|| bad("no remote address"))?;
        let state = fields.next().ok_or_else(|| bad("no state"))?;
        let state = u8::from_str_radix(state, 16).map_err(|_| bad("state is not hex"))?;
        let local = parse_hex_socket(local).ok_or_else(|| bad("bad local address"))?;
        let listening = match proto {
            Proto::Tcp => state == TCP_LISTEN,
            Proto::Udp => {
                let remote = parse_hex_socket(remote).ok_or_else(|| bad("bad remote address"))?;
                state == UDP_UNCONNECTED && remote.ip().is_unspecified() && remote.port() == 0
            }
        };
        if listening {
            listeners.push(Listener { proto, addr: local });
        }
    }
    Ok(listeners)
}

/// `0100007F:1F90` → 127.0.0.1:8080. The address is the kernel's network-order bytes printed
/// as native-endian 32-bit words (one word for IPv4, four for IPv6); the port is plain hex.
fn parse_hex_socket(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |hex: &str| -> Option<Vec<u8>> {
        if !hex.len().is_multiple_of(8) {
            return None;
        }
        let mut bytes = Vec::with_capacity(hex.len() / 2);
        for chunk in hex.as_bytes().chunks(8) {
            let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        Some(bytes)
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(words(addr)?).ok()?)),
        32 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(words(addr)?).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

// The samples were printed by a little-endian kernel.
#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1054 1 0000000055724bca 100 0 0 10 0
   1: 0B00000A:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1055 1 0000000055724bca 100 0 0 10 0
   2: 0B00000A:0050 0200000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 1056 1 0000000055724bca 20 4 30 10 -1
";

    #[test]
    fn in_flight_counts_open_and_unacknowledged_closes_to_the_given_peers() {
        // 10.0.0.2:54321 -> 10.0.0.11:80 ESTABLISHED, LAST_ACK, FIN_WAIT2, TIME_WAIT; one to another peer.
        let text = "  sl  local_address rem_address   st
   0: 0200000A:D431 0B00000A:0050 01 0
   1: 0200000A:D432 0B00000A:0050 09 0
   2: 0200000A:D433 0B00000A:0050 05 0
   3: 0200000A:D434 0B00000A:0050 06 0
   4: 0200000A:D435 0C00000A:0050 01 0
";
        let peer: IpAddr = "10.0.0.11".parse().unwrap();
        assert_eq!(count_in_flight("tcp", text, &[peer]).unwrap(), 2);
        assert_eq!(
            count_in_flight("tcp", text, &[peer, "10.0.0.12".parse().unwrap()]).unwrap(),
            3
        );
        assert!(count_in_flight("tcp", "hdr\n 0: 0200000A:D431\n", &[peer]).is_err());
    }

    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 6400A8C0:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2001 2 0000000000000000 0
  101: 0200000A:9C40 0B00000A:0035 01 00000000:00000000 00:00000000 00000000     0        0 2002 2 0000000000000000 0
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3001 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3002 1 0000000000000000 100 0 0 10 0
";

    fn addrs(listeners: &[Listener]) -> Vec<String> {
        listeners.iter().map(|l| l.addr.to_string()).collect()
    }

    #[test]
    fn tcp_listeners_are_rows_in_listen_state() {
        let l = parse_listeners("tcp", TCP, Proto::Tcp).unwrap();
        assert_eq!(addrs(&l), ["0.0.0.0:8080", "10.0.0.11:80"]);
        assert!(l.iter().all(|l| l.proto == Proto::Tcp));
    }

    #[test]
    fn udp_listeners_are_bound_unconnected_sockets() {
        let l = parse_listeners("udp", UDP, Proto::Udp).unwrap();
        assert_eq!(addrs(&l), ["192.168.0.100:53"]);
        assert_eq!(l[0].proto, Proto::Udp);
    }

    #[test]
    fn ipv6_words_are_native_endian() {
        let l = parse_listeners("tcp6", TCP6, Proto::Tcp).unwrap();
        assert_eq!(addrs(&l), ["[::]:22", "[::1]:631"]);
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let header = TCP.lines().next().unwrap();
        for (row, want) in [
            ("   0: 00000000:1F90", "no remote address"),
            ("   0: 0000:1F90 00000000:0000 0A", "bad local address"),
            ("   0: 00000000:1F90 00000000:0000 ZZ", "state is not hex"),
        ] {
            let err = parse_listeners("/proc/thread-self/net/tcp", &format!("{header}\n{row}\n"), Proto::Tcp)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want) && err.contains("line 2"), "{row}: {err}");
        }
        assert!(parse_listeners("tcp", header, Proto::Tcp).unwrap().is_empty());
    }
}
