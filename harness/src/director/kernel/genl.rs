//! The generic netlink family "IPVS" (`include/uapi/linux/ip_vs.h`): commands,
//! attributes and their nesting, typed, on netlink-packet-core's NLA codec.
//!
//! Wire quirks kept here and nowhere else (ipvs.md §6.1): ports and the IPv4
//! netmask travel in network byte order, addresses are sent as 16 bytes
//! (`union nf_inet_addr`), FLAGS is `{u32 flags; u32 mask}`, dumps report the
//! internal HASHED bit, and STATS carries u32 counters with u64 byte counters
//! while STATS64 is all u64 (PAD attributes may sit in between).

use std::net::Ipv4Addr;

use netlink_packet_core::{
    parse_string, parse_u16, parse_u16_be, parse_u32, parse_u64, parse_u8, DecodeError, DefaultNla, Emitable, Nla,
    NlaBuffer, NlasIterator, Parseable, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

pub const FAMILY_NAME: &str = "IPVS";
pub const FAMILY_VERSION: u8 = 1;

pub const AF_INET: u16 = 2;

/// `IPVS_CMD_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    NewService,
    SetService,
    DelService,
    GetService,
    NewDest,
    SetDest,
    DelDest,
    GetDest,
    SetConfig,
    GetConfig,
    SetInfo,
    GetInfo,
    Zero,
    Flush,
    /// Daemon commands and anything newer: carried, not interpreted.
    Other(u8),
}

impl Cmd {
    pub fn number(self) -> u8 {
        match self {
            Cmd::NewService => 1,
            Cmd::SetService => 2,
            Cmd::DelService => 3,
            Cmd::GetService => 4,
            Cmd::NewDest => 5,
            Cmd::SetDest => 6,
            Cmd::DelDest => 7,
            Cmd::GetDest => 8,
            Cmd::SetConfig => 12,
            Cmd::GetConfig => 13,
            Cmd::SetInfo => 14,
            Cmd::GetInfo => 15,
            Cmd::Zero => 16,
            Cmd::Flush => 17,
            Cmd::Other(n) => n,
        }
    }

    pub fn from_number(n: u8) -> Cmd {
        match n {
            1 => Cmd::NewService,
            2 => Cmd::SetService,
            3 => Cmd::DelService,
            4 => Cmd::GetService,
            5 => Cmd::NewDest,
            6 => Cmd::SetDest,
            7 => Cmd::DelDest,
            8 => Cmd::GetDest,
            12 => Cmd::SetConfig,
            13 => Cmd::GetConfig,
            14 => Cmd::SetInfo,
            15 => Cmd::GetInfo,
            16 => Cmd::Zero,
            17 => Cmd::Flush,
            n => Cmd::Other(n),
        }
    }

    /// GET_INFO's request and SET_INFO's reply use the `IPVS_INFO_ATTR_*` space
    /// at top level instead of `IPVS_CMD_ATTR_*`.
    fn uses_info_attrs(self) -> bool {
        matches!(self, Cmd::SetInfo | Cmd::GetInfo)
    }
}

/// One IPVS generic netlink message (the payload after `genlmsghdr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsMessage {
    pub cmd: Cmd,
    pub attrs: Vec<CmdAttr>,
}

impl IpvsMessage {
    pub fn new(cmd: Cmd, attrs: Vec<CmdAttr>) -> Self {
        IpvsMessage { cmd, attrs }
    }

    /// The SERVICE nest, if the message has one.
    pub fn service(&self) -> Option<&[SvcAttr]> {
        self.attrs.iter().find_map(|a| match a {
            CmdAttr::Service(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    pub fn dest(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|a| match a {
            CmdAttr::Dest(d) => Some(d.as_slice()),
            _ => None,
        })
    }
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        FAMILY_NAME
    }
    fn command(&self) -> u8 {
        self.cmd.number()
    }
    fn version(&self) -> u8 {
        FAMILY_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer)
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let cmd = Cmd::from_number(header.cmd);
        let attrs = NlasIterator::new(buf)
            .map(|nla| nla.and_then(|nla| CmdAttr::parse_in(&nla, cmd)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IpvsMessage { cmd, attrs })
    }
}

/// Top-level attributes: `IPVS_CMD_ATTR_*`, or `IPVS_INFO_ATTR_*` for the info commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CmdAttr {
    Service(Vec<SvcAttr>),
    Dest(Vec<DestAttr>),
    TimeoutTcp(u32),
    TimeoutTcpFin(u32),
    TimeoutUdp(u32),
    /// `IPVS_INFO_ATTR_VERSION`, e.g. 0x010201 for 1.2.1.
    InfoVersion(u32),
    /// `IPVS_INFO_ATTR_CONN_TAB_SIZE`.
    InfoConnTabSize(u32),
    Other(DefaultNla),
}

impl CmdAttr {
    fn parse_in(nla: &NlaBuffer<&[u8]>, cmd: Cmd) -> Result<Self, DecodeError> {
        let v = nla.value();
        if cmd.uses_info_attrs() {
            return Ok(match nla.kind() {
                1 => CmdAttr::InfoVersion(parse_u32(v)?),
                2 => CmdAttr::InfoConnTabSize(parse_u32(v)?),
                _ => CmdAttr::Other(DefaultNla::parse(nla)?),
            });
        }
        Ok(match nla.kind() {
            1 => CmdAttr::Service(parse_nested(v, SvcAttr::parse)?),
            2 => CmdAttr::Dest(parse_nested(v, DestAttr::parse)?),
            4 => CmdAttr::TimeoutTcp(parse_u32(v)?),
            5 => CmdAttr::TimeoutTcpFin(parse_u32(v)?),
            6 => CmdAttr::TimeoutUdp(parse_u32(v)?),
            _ => CmdAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

impl Nla for CmdAttr {
    fn value_len(&self) -> usize {
        match self {
            CmdAttr::Service(a) => a.as_slice().buffer_len(),
            CmdAttr::Dest(a) => a.as_slice().buffer_len(),
            CmdAttr::TimeoutTcp(_)
            | CmdAttr::TimeoutTcpFin(_)
            | CmdAttr::TimeoutUdp(_)
            | CmdAttr::InfoVersion(_)
            | CmdAttr::InfoConnTabSize(_) => 4,
            CmdAttr::Other(o) => o.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            CmdAttr::Service(_) => 1,
            CmdAttr::Dest(_) => 2,
            CmdAttr::TimeoutTcp(_) => 4,
            CmdAttr::TimeoutTcpFin(_) => 5,
            CmdAttr::TimeoutUdp(_) => 6,
            CmdAttr::InfoVersion(_) => 1,
            CmdAttr::InfoConnTabSize(_) => 2,
            CmdAttr::Other(o) => o.kind(),
        }
    }
    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            CmdAttr::Service(a) => a.as_slice().emit(buf),
            CmdAttr::Dest(a) => a.as_slice().emit(buf),
            CmdAttr::TimeoutTcp(n)
            | CmdAttr::TimeoutTcpFin(n)
            | CmdAttr::TimeoutUdp(n)
            | CmdAttr::InfoVersion(n)
            | CmdAttr::InfoConnTabSize(n) => buf.copy_from_slice(&n.to_ne_bytes()),
            CmdAttr::Other(o) => o.emit_value(buf),
        }
    }
    // Like ipvsadm/libnl: nests are sent with NLA_F_NESTED; the kernel does not need it.
    fn is_nested(&self) -> bool {
        matches!(self, CmdAttr::Service(_) | CmdAttr::Dest(_))
    }
}

/// `IPVS_SVC_ATTR_*`, inside SERVICE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SvcAttr {
    Af(u16),
    Protocol(u16),
    /// Up to 16 bytes; IPv4 in the first 4.
    Addr(Vec<u8>),
    /// Host-order value; network order on the wire.
    Port(u16),
    Fwmark(u32),
    SchedName(String),
    Flags {
        flags: u32,
        mask: u32,
    },
    /// Persistence timeout, seconds.
    Timeout(u32),
    /// IPv4: the mask's 4 bytes as they are (network order).
    Netmask([u8; 4]),
    Stats(Stats),
    PeName(String),
    Stats64(Stats),
    Other(DefaultNla),
}

impl SvcAttr {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let v = nla.value();
        Ok(match nla.kind() {
            1 => SvcAttr::Af(parse_u16(v)?),
            2 => SvcAttr::Protocol(parse_u16(v)?),
            3 => SvcAttr::Addr(parse_addr(v)?),
            4 => SvcAttr::Port(parse_u16_be(v)?),
            5 => SvcAttr::Fwmark(parse_u32(v)?),
            6 => SvcAttr::SchedName(parse_string(v)?),
            7 => {
                if v.len() != 8 {
                    return Err(DecodeError::from(format!(
                        "IPVS service FLAGS: {} bytes, expected 8",
                        v.len()
                    )));
                }
                SvcAttr::Flags {
                    flags: parse_u32(&v[..4])?,
                    mask: parse_u32(&v[4..])?,
                }
            }
            8 => SvcAttr::Timeout(parse_u32(v)?),
            9 => SvcAttr::Netmask(
                v.try_into()
                    .map_err(|_| DecodeError::from(format!("IPVS service NETMASK: {} bytes, expected 4", v.len())))?,
            ),
            10 => SvcAttr::Stats(Stats::parse(v)?),
            11 => SvcAttr::PeName(parse_string(v)?),
            12 => SvcAttr::Stats64(Stats::parse(v)?),
            _ => SvcAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

impl Nla for SvcAttr {
    fn value_len(&self) -> usize {
        match self {
            SvcAttr::Af(_) | SvcAttr::Protocol(_) | SvcAttr::Port(_) => 2,
            SvcAttr::Addr(a) => a.len(),
            SvcAttr::Fwmark(_) | SvcAttr::Timeout(_) | SvcAttr::Netmask(_) => 4,
            SvcAttr::SchedName(s) | SvcAttr::PeName(s) => s.len() + 1,
            SvcAttr::Flags { .. } => 8,
            SvcAttr::Stats(s) | SvcAttr::Stats64(s) => s.attrs().as_slice().buffer_len(),
            SvcAttr::Other(o) => o.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            SvcAttr::Af(_) => 1,
            SvcAttr::Protocol(_) => 2,
            SvcAttr::Addr(_) => 3,
            SvcAttr::Port(_) => 4,
            SvcAttr::Fwmark(_) => 5,
            SvcAttr::SchedName(_) => 6,
            SvcAttr::Flags { .. } => 7,
            SvcAttr::Timeout(_) => 8,
            SvcAttr::Netmask(_) => 9,
            SvcAttr::Stats(_) => 10,
            SvcAttr::PeName(_) => 11,
            SvcAttr::Stats64(_) => 12,
            SvcAttr::Other(o) => o.kind(),
        }
    }
    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            SvcAttr::Af(n) | SvcAttr::Protocol(n) => buf.copy_from_slice(&n.to_ne_bytes()),
            SvcAttr::Port(p) => buf.copy_from_slice(&p.to_be_bytes()),
            SvcAttr::Addr(a) => buf.copy_from_slice(a),
            SvcAttr::Fwmark(n) | SvcAttr::Timeout(n) => buf.copy_from_slice(&n.to_ne_bytes()),
            SvcAttr::Netmask(m) => buf.copy_from_slice(m),
            SvcAttr::SchedName(s) | SvcAttr::PeName(s) => emit_cstr(buf, s),
            SvcAttr::Flags { flags, mask } => {
                buf[..4].copy_from_slice(&flags.to_ne_bytes());
                buf[4..].copy_from_slice(&mask.to_ne_bytes());
            }
            // Emitted in the STATS64 layout (all u64); only tests emit stats.
            SvcAttr::Stats(s) | SvcAttr::Stats64(s) => s.attrs().as_slice().emit(buf),
            SvcAttr::Other(o) => o.emit_value(buf),
        }
    }
    fn is_nested(&self) -> bool {
        matches!(self, SvcAttr::Stats(_) | SvcAttr::Stats64(_))
    }
}

/// `IPVS_DEST_ATTR_*`, inside DEST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestAttr {
    Addr(Vec<u8>),
    /// Host-order value; network order on the wire.
    Port(u16),
    /// `IP_VS_CONN_F_*` forwarding method (low 3 bits).
    FwdMethod(u32),
    Weight(u32),
    UThresh(u32),
    LThresh(u32),
    ActiveConns(u32),
    InactConns(u32),
    PersistConns(u32),
    Stats(Stats),
    AddrFamily(u16),
    Stats64(Stats),
    TunType(u8),
    /// Host-order value; network order on the wire.
    TunPort(u16),
    TunFlags(u16),
    Other(DefaultNla),
}

impl DestAttr {
    fn parse(nla: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let v = nla.value();
        Ok(match nla.kind() {
            1 => DestAttr::Addr(parse_addr(v)?),
            2 => DestAttr::Port(parse_u16_be(v)?),
            3 => DestAttr::FwdMethod(parse_u32(v)?),
            4 => DestAttr::Weight(parse_u32(v)?),
            5 => DestAttr::UThresh(parse_u32(v)?),
            6 => DestAttr::LThresh(parse_u32(v)?),
            7 => DestAttr::ActiveConns(parse_u32(v)?),
            8 => DestAttr::InactConns(parse_u32(v)?),
            9 => DestAttr::PersistConns(parse_u32(v)?),
            10 => DestAttr::Stats(Stats::parse(v)?),
            11 => DestAttr::AddrFamily(parse_u16(v)?),
            12 => DestAttr::Stats64(Stats::parse(v)?),
            13 => DestAttr::TunType(parse_u8(v)?),
            14 => DestAttr::TunPort(parse_u16_be(v)?),
            15 => DestAttr::TunFlags(parse_u16(v)?),
            _ => DestAttr::Other(DefaultNla::parse(nla)?),
        })
    }
}

impl Nla for DestAttr {
    fn value_len(&self) -> usize {
        match self {
            DestAttr::Addr(a) => a.len(),
            DestAttr::Port(_) | DestAttr::AddrFamily(_) | DestAttr::TunPort(_) | DestAttr::TunFlags(_) => 2,
            DestAttr::TunType(_) => 1,
            DestAttr::FwdMethod(_)
            | DestAttr::Weight(_)
            | DestAttr::UThresh(_)
            | DestAttr::LThresh(_)
            | DestAttr::ActiveConns(_)
            | DestAttr::InactConns(_)
            | DestAttr::PersistConns(_) => 4,
            DestAttr::Stats(s) | DestAttr::Stats64(s) => s.attrs().as_slice().buffer_len(),
            DestAttr::Other(o) => o.value_len(),
        }
    }
    fn kind(&self) -> u16 {
        match self {
            DestAttr::Addr(_) => 1,
            DestAttr::Port(_) => 2,
            DestAttr::FwdMethod(_) => 3,
            DestAttr::Weight(_) => 4,
            DestAttr::UThresh(_) => 5,
            DestAttr::LThresh(_) => 6,
            DestAttr::ActiveConns(_) => 7,
            DestAttr::InactConns(_) => 8,
            DestAttr::PersistConns(_) => 9,
            DestAttr::Stats(_) => 10,
            DestAttr::AddrFamily(_) => 11,
            DestAttr::Stats64(_) => 12,
            DestAttr::TunType(_) => 13,
            DestAttr::TunPort(_) => 14,
            DestAttr::TunFlags(_) => 15,
            DestAttr::Other(o) => o.kind(),
        }
    }
    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            DestAttr::Addr(a) => buf.copy_from_slice(a),
            DestAttr::Port(p) | DestAttr::TunPort(p) => buf.copy_from_slice(&p.to_be_bytes()),
            DestAttr::AddrFamily(n) | DestAttr::TunFlags(n) => buf.copy_from_slice(&n.to_ne_bytes()),
            DestAttr::TunType(t) => buf[0] = *t,
            DestAttr::FwdMethod(n)
            | DestAttr::Weight(n)
            | DestAttr::UThresh(n)
            | DestAttr::LThresh(n)
            | DestAttr::ActiveConns(n)
            | DestAttr::InactConns(n)
            | DestAttr::PersistConns(n) => buf.copy_from_slice(&n.to_ne_bytes()),
            DestAttr::Stats(s) | DestAttr::Stats64(s) => s.attrs().as_slice().emit(buf),
            DestAttr::Other(o) => o.emit_value(buf),
        }
    }
    fn is_nested(&self) -> bool {
        matches!(self, DestAttr::Stats(_) | DestAttr::Stats64(_))
    }
}

/// `IPVS_STATS_ATTR_*` counters and rates. Parsed by width (4 or 8 bytes), so
/// STATS and STATS64 both decode here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// One stats counter as a u64 NLA (the STATS64 layout).
struct StatNla(u16, u64);

impl Nla for StatNla {
    fn value_len(&self) -> usize {
        8
    }
    fn kind(&self) -> u16 {
        self.0
    }
    fn emit_value(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.1.to_ne_bytes());
    }
}

impl Stats {
    fn parse(buf: &[u8]) -> Result<Stats, DecodeError> {
        let mut s = Stats::default();
        for nla in NlasIterator::new(buf) {
            let nla = nla?;
            let v = nla.value();
            let value = match v.len() {
                4 => u64::from(parse_u32(v)?),
                8 => parse_u64(v)?,
                // PAD (11) has no fixed size; anything else unknown is skipped too.
                _ => continue,
            };
            let slot = match nla.kind() {
                1 => &mut s.conns,
                2 => &mut s.inpkts,
                3 => &mut s.outpkts,
                4 => &mut s.inbytes,
                5 => &mut s.outbytes,
                6 => &mut s.cps,
                7 => &mut s.inpps,
                8 => &mut s.outpps,
                9 => &mut s.inbps,
                10 => &mut s.outbps,
                _ => continue,
            };
            *slot = value;
        }
        Ok(s)
    }

    fn attrs(&self) -> Vec<StatNla> {
        [
            self.conns,
            self.inpkts,
            self.outpkts,
            self.inbytes,
            self.outbytes,
            self.cps,
            self.inpps,
            self.outpps,
            self.inbps,
            self.outbps,
        ]
        .iter()
        .enumerate()
        .map(|(i, v)| StatNla(i as u16 + 1, *v))
        .collect()
    }
}

fn parse_nested<T>(buf: &[u8], parse: fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>) -> Result<Vec<T>, DecodeError> {
    NlasIterator::new(buf)
        .map(|nla| nla.and_then(|nla| parse(&nla)))
        .collect()
}

fn parse_addr(v: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if v.len() > 16 {
        return Err(DecodeError::from(format!(
            "IPVS address: {} bytes, at most 16",
            v.len()
        )));
    }
    Ok(v.to_vec())
}

fn emit_cstr(buf: &mut [u8], s: &str) {
    buf[..s.len()].copy_from_slice(s.as_bytes());
    buf[s.len()] = 0;
}

/// An IPv4 address as `union nf_inet_addr` (16 bytes, the rest zero), as ipvsadm sends it.
pub fn addr_bytes(a: Ipv4Addr) -> Vec<u8> {
    let mut v = a.octets().to_vec();
    v.resize(16, 0);
    v
}

/// The IPv4 address in the first 4 bytes of an ADDR attribute.
pub fn addr_v4(bytes: &[u8]) -> Option<Ipv4Addr> {
    let four: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(Ipv4Addr::from(four))
}
