//! The IPVS table as read from operator output (`ipvsadm -Ln`, `ipvsadm-save -n`,
//! `-Lnc`, /proc/net/ip_vs*): services with their destinations, connections and
//! persistence templates. Every importer fills this one model.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::error::Warning;
use crate::lvs::{Forward, Proto};

/// Service protocol as a listing names it: one lvslab models, or SCTP, which is read so
/// that its service can be refused by name and line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableProto {
    Modelled(Proto),
    Sctp,
}

impl TableProto {
    /// Reads `TCP`/`UDP`/`SCTP` in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        match Proto::from_name(name) {
            Some(p) => Some(TableProto::Modelled(p)),
            None => name.eq_ignore_ascii_case("SCTP").then_some(TableProto::Sctp),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TableProto::Modelled(p) => p.name(),
            TableProto::Sctp => "SCTP",
        }
    }

    /// The protocol, if lvslab models it.
    pub fn modelled(self) -> Option<Proto> {
        match self {
            TableProto::Modelled(p) => Some(p),
            TableProto::Sctp => None,
        }
    }
}

/// The `Forward` column (`-g/-m/-i` in save files): a forwarding method, or what the
/// kernel lists instead of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableForward {
    Method(Forward),
    /// localnode: the destination is an address of the director itself.
    Local,
    /// Anything else a fork printed (`(null)` from stock ipvsadm-save on a fork).
    Other(String),
}

impl TableForward {
    /// Reads the `Forward` column word of a listing.
    pub fn from_column(word: &str) -> TableForward {
        match Forward::from_column(word) {
            Some(f) => TableForward::Method(f),
            None if word == "Local" => TableForward::Local,
            None => TableForward::Other(word.to_string()),
        }
    }

    /// The method, if the column names one.
    pub fn method(&self) -> Option<Forward> {
        match self {
            TableForward::Method(f) => Some(*f),
            _ => None,
        }
    }
}

/// Which service of a listing a destination or connection belongs to. Wider than
/// [`crate::lvs::ServiceKey`]: listings also hold IPv6, SCTP and firewall-mark services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKey {
    Addr { proto: TableProto, vip: IpAddr, port: u16 },
    Fwmark { mark: u32, ipv6: bool },
}

/// Five `--stats` or `--rate` counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    pub conns: u64,
    pub in_pkts: u64,
    pub out_pkts: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// Counters of a service or destination: totals (`--stats`) and/or rates (`--rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub totals: Option<Counters>,
    pub rates: Option<Counters>,
    /// Some value was printed with a K/M/G/T suffix, so it is rounded down.
    pub approximate: bool,
}

/// One virtual service (`-A` line / service row).
#[derive(Debug, Clone, PartialEq)]
pub struct TableService {
    /// 1-based line of the input it was first read from.
    pub line: usize,
    /// `None` for fwmark services.
    pub proto: Option<TableProto>,
    /// `None` for fwmark services.
    pub vip: Option<IpAddr>,
    /// 0 for fwmark services (and port-0 "all ports" services).
    pub port: u16,
    pub fwmark: Option<u32>,
    /// fwmark service of the IPv6 family (`FWM n IPv6`, `-f n -6`).
    pub fwmark_ipv6: bool,
    pub scheduler: String,
    /// Scheduler flags: sh-fallback, sh-port, mh-fallback, mh-port, flag-1...
    pub flags: Vec<String>,
    /// Persistence timeout in seconds; `None` when not persistent.
    pub persistence: Option<u32>,
    /// Persistence granularity as a prefix length (`-M`); `None` = /32 (/128).
    pub persistence_prefix: Option<u8>,
    /// Persistence engine (`--pe sip`).
    pub pe: Option<String>,
    /// One-packet scheduling (`-o`, `ops`).
    pub one_packet: bool,
    pub stats: Option<Stats>,
    pub dests: Vec<TableDest>,
}

impl TableService {
    pub fn key(&self) -> TableKey {
        match (self.fwmark, self.proto, self.vip) {
            (Some(mark), _, _) => TableKey::Fwmark {
                mark,
                ipv6: self.fwmark_ipv6,
            },
            (None, Some(proto), Some(vip)) => TableKey::Addr {
                proto,
                vip,
                port: self.port,
            },
            // Constructors always set one of the two; keep a total function anyway.
            _ => TableKey::Fwmark { mark: 0, ipv6: false },
        }
    }

    /// `TCP 10.0.0.1:80` / `FWM 7`, as ipvsadm prints it.
    pub fn describe(&self) -> String {
        match self.key() {
            TableKey::Fwmark { mark, .. } => format!("FWM {mark}"),
            TableKey::Addr { proto, vip, port } => {
                format!("{} {}", proto.as_str(), SocketAddr::new(vip, port))
            }
        }
    }

    pub(crate) fn new(line: usize, key: TableKey) -> Self {
        let (proto, vip, port, fwmark, fwmark_ipv6) = match key {
            TableKey::Addr { proto, vip, port } => (Some(proto), Some(vip), port, None, false),
            TableKey::Fwmark { mark, ipv6 } => (None, None, 0, Some(mark), ipv6),
        };
        TableService {
            line,
            proto,
            vip,
            port,
            fwmark,
            fwmark_ipv6,
            scheduler: String::new(),
            flags: Vec::new(),
            persistence: None,
            persistence_prefix: None,
            pe: None,
            one_packet: false,
            stats: None,
            dests: Vec::new(),
        }
    }
}

/// One real server of a service (`-a` line / `->` row).
#[derive(Debug, Clone, PartialEq)]
pub struct TableDest {
    pub line: usize,
    pub addr: IpAddr,
    pub port: u16,
    /// `None` when the listing does not show it (`--stats`, `--thresholds`).
    pub forward: Option<TableForward>,
    pub weight: Option<u32>,
    /// ActiveConn / InActConn / PersistConn; `None` when not shown (save files).
    pub active: Option<u32>,
    pub inactive: Option<u32>,
    pub persist: Option<u32>,
    /// `--thresholds` Uthreshold / Lthreshold (`-x` / `-y`).
    pub upper_threshold: Option<u32>,
    pub lower_threshold: Option<u32>,
    pub stats: Option<Stats>,
}

impl TableDest {
    pub(crate) fn new(line: usize, addr: IpAddr, port: u16) -> Self {
        TableDest {
            line,
            addr,
            port,
            forward: None,
            weight: None,
            active: None,
            inactive: None,
            persist: None,
            upper_threshold: None,
            lower_threshold: None,
            stats: None,
        }
    }

    pub fn socket(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }
}

/// One row of the connection table (`-Lnc`, /proc/net/ip_vs_conn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConn {
    pub line: usize,
    /// `TCP`, `UDP`, `SCTP`, or `IP` (fwmark templates) as printed.
    pub proto: String,
    pub client: SocketAddr,
    /// Virtual address:port (for fwmark templates /proc prints the mark there).
    pub virtual_addr: SocketAddr,
    pub dest: SocketAddr,
    pub state: String,
    pub expires_secs: u32,
    /// Persistence engine name and data (`--persistent-conn`, /proc PEName PEData).
    pub pe: Option<(String, String)>,
}

impl TableConn {
    /// Persistence templates carry client port 0 (ipvs.md §3.2, §6.7).
    pub fn is_template(&self) -> bool {
        self.client.port() == 0
    }
}

/// Everything read from one or more listings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IpvsTable {
    /// `IP Virtual Server version 1.2.1` → `1.2.1`.
    pub version: Option<String>,
    /// Connection hash table size (`size=4096`).
    pub conn_tab_size: Option<u32>,
    pub services: Vec<TableService>,
    /// Connection entries, templates excluded.
    pub conns: Vec<TableConn>,
    /// Persistence templates (client port 0).
    pub templates: Vec<TableConn>,
    /// IPVS sysctls by leaf name (`conn_reuse_mode`, ...), when read live.
    pub settings: BTreeMap<String, String>,
    /// Things read but not exact (rounded counters, guessed HZ).
    pub warnings: Vec<Warning>,
}

impl IpvsTable {
    pub fn service(&self, key: TableKey) -> Option<&TableService> {
        self.services.iter().find(|s| s.key() == key)
    }

    /// Adds a connection row to `conns` or `templates`.
    pub fn push_conn(&mut self, conn: TableConn) {
        if conn.is_template() {
            self.templates.push(conn);
        } else {
            self.conns.push(conn);
        }
    }

    /// Index of the service with `key`, creating it (at `line`) if absent.
    /// Listings of the same table (`-Ln`, then `-Ln --stats`) merge this way.
    pub(crate) fn service_slot(&mut self, line: usize, key: TableKey) -> usize {
        if let Some(i) = self.services.iter().position(|s| s.key() == key) {
            return i;
        }
        self.services.push(TableService::new(line, key));
        self.services.len() - 1
    }
}

impl TableService {
    /// Index of the destination `addr:port`, creating it if absent.
    pub(crate) fn dest_slot(&mut self, line: usize, addr: IpAddr, port: u16) -> usize {
        if let Some(i) = self.dests.iter().position(|d| d.addr == addr && d.port == port) {
            return i;
        }
        self.dests.push(TableDest::new(line, addr, port));
        self.dests.len() - 1
    }
}
