//! IPVS objects as the kernel takes and reports them: lvslab's service and
//! real-server configuration turned into attribute lists (what `ipvsadm -A/-a`
//! sends), and dumped attribute lists read back into typed entries.

use std::net::Ipv4Addr;

use super::genl::{addr_bytes, addr_v4, Cmd, CmdAttr, DestAttr, IpvsMessage, Stats, SvcAttr, AF_INET};
use crate::director::{DirectorError, Result, ServiceKey};
use crate::ipvs::{self, Forward, Proto, Scheduler};

/// `IP_VS_SVC_F_*`.
pub mod svc_flags {
    pub const PERSISTENT: u32 = 0x1;
    /// Internal; dumps report it.
    pub const HASHED: u32 = 0x2;
    pub const ONEPACKET: u32 = 0x4;
    pub const SCHED1: u32 = 0x8;
    pub const SCHED2: u32 = 0x10;
    pub const SCHED3: u32 = 0x20;
}

/// `IP_VS_CONN_F_*` forwarding methods (FWD_METHOD attribute).
pub mod fwd {
    pub const MASQ: u32 = 0;
    pub const LOCALNODE: u32 = 1;
    pub const TUNNEL: u32 = 2;
    pub const DROUTE: u32 = 3;
    pub const MASK: u32 = 0x7;
}

/// `IP_VS_SCHEDNAME_MAXLEN` is 16 with the NUL.
const SCHED_NAME_MAX: usize = 15;

pub const FULLNAT_UNSUPPORTED: &str =
    "FULLNAT is not supported by kernel IPVS (out of mainline: alibaba/LVS and DPVS patches only); use engine = \"embedded\"";

/// AF, PROTOCOL, ADDR, PORT: what names a service in every command; AF and FWMARK alone for a
/// fwmark service, as libipvs sends it (`ip_vs_genl_parse_service` takes either, and sets a
/// fwmark service's protocol to TCP itself).
pub fn ident_attrs(key: &ServiceKey) -> Vec<SvcAttr> {
    if key.is_fwmark() {
        return vec![SvcAttr::Af(AF_INET), SvcAttr::Fwmark(key.fwmark)];
    }
    vec![
        SvcAttr::Af(AF_INET),
        SvcAttr::Protocol(key.proto.number().into()),
        SvcAttr::Addr(addr_bytes(key.vip)),
        SvcAttr::Port(key.port),
    ]
}

pub fn key_of(cfg: &ipvs::ServiceConfig) -> ServiceKey {
    cfg.key()
}

/// The complete service for NEW_SERVICE / SET_SERVICE (`ipvsadm -A`): the
/// kernel requires SCHED_NAME, FLAGS, TIMEOUT and NETMASK on both.
pub fn service_attrs(cfg: &ipvs::ServiceConfig) -> Result<Vec<SvcAttr>> {
    let key = key_of(cfg);
    let scheduler = cfg.scheduler.as_str();
    if scheduler.is_empty() || scheduler.len() > SCHED_NAME_MAX || !scheduler.is_ascii() {
        return Err(DirectorError::Config(format!(
            "service {key}: scheduler name {scheduler:?} must be 1..={SCHED_NAME_MAX} ASCII characters"
        )));
    }
    let timeout = match cfg.persistence {
        Some(d) => u32::try_from(d.as_secs()).ok().filter(|s| *s > 0).ok_or_else(|| {
            DirectorError::Config(format!(
                "service {key}: persistence timeout {d:?} must be 1 s .. 2^32 s"
            ))
        })?,
        None => 0,
    };
    let mut flags = 0;
    if cfg.persistence.is_some() {
        flags |= svc_flags::PERSISTENT;
    }
    if cfg.one_packet {
        flags |= svc_flags::ONEPACKET;
    }
    if cfg.flags.sh_fallback || cfg.flags.mh_fallback {
        flags |= svc_flags::SCHED1;
    }
    if cfg.flags.sh_port || cfg.flags.mh_port {
        flags |= svc_flags::SCHED2;
    }
    let mut attrs = ident_attrs(&key);
    attrs.extend([
        SvcAttr::SchedName(scheduler.to_owned()),
        // Mask ~0 like ipvsadm: the service's flags become exactly these.
        SvcAttr::Flags { flags, mask: u32::MAX },
        SvcAttr::Timeout(timeout),
        SvcAttr::Netmask(cfg.persistence_netmask.octets()),
    ]);
    Ok(attrs)
}

pub fn fwd_method(f: Forward) -> Result<u32> {
    match f {
        Forward::Dr => Ok(fwd::DROUTE),
        Forward::Nat => Ok(fwd::MASQ),
        Forward::Tun => Ok(fwd::TUNNEL),
        Forward::FullNat => Err(DirectorError::Config(FULLNAT_UNSUPPORTED.into())),
    }
}

/// The complete real server for NEW_DEST / SET_DEST (`ipvsadm -a`).
pub fn dest_attrs(d: &ipvs::DestConfig) -> Result<Vec<DestAttr>> {
    if d.lower_threshold > d.upper_threshold && d.upper_threshold != 0 {
        return Err(DirectorError::Config(format!(
            "real server {}:{}: lower threshold {} above upper threshold {}",
            d.addr, d.port, d.lower_threshold, d.upper_threshold
        )));
    }
    // The kernel takes the weight as a signed int and refuses negatives.
    if d.weight > i32::MAX as u32 {
        return Err(DirectorError::Config(format!(
            "real server {}:{}: weight {} too large",
            d.addr, d.port, d.weight
        )));
    }
    let method = fwd_method(d.forward)?;
    let mut attrs = vec![
        DestAttr::AddrFamily(AF_INET),
        DestAttr::Addr(addr_bytes(d.addr)),
        DestAttr::Port(d.port),
        DestAttr::FwdMethod(method),
        DestAttr::Weight(d.weight),
    ];
    if method == fwd::TUNNEL {
        attrs.push(DestAttr::TunType(0)); // ipip
    }
    attrs.extend([
        DestAttr::UThresh(d.upper_threshold),
        DestAttr::LThresh(d.lower_threshold),
    ]);
    Ok(attrs)
}

/// ADDR + PORT: enough for DEL_DEST.
pub fn dest_ident_attrs(addr: Ipv4Addr, port: u16) -> Vec<DestAttr> {
    vec![
        DestAttr::AddrFamily(AF_INET),
        DestAttr::Addr(addr_bytes(addr)),
        DestAttr::Port(port),
    ]
}

/// NEW_DEST for `key`: the service ident and the whole dest, as setup sends it and a health
/// checker's ADD_DEST does later.
pub fn new_dest_message(key: &ServiceKey, d: &ipvs::DestConfig) -> Result<IpvsMessage> {
    Ok(IpvsMessage::new(
        Cmd::NewDest,
        vec![CmdAttr::Service(ident_attrs(key)), CmdAttr::Dest(dest_attrs(d)?)],
    ))
}

/// DEL_DEST for `key`: the service ident and the dest's address and port (`ipvsadm -d`).
pub fn del_dest_message(key: &ServiceKey, addr: Ipv4Addr, port: u16) -> IpvsMessage {
    IpvsMessage::new(
        Cmd::DelDest,
        vec![
            CmdAttr::Service(ident_attrs(key)),
            CmdAttr::Dest(dest_ident_attrs(addr, port)),
        ],
    )
}

/// A service as the kernel dumps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelService {
    pub key: ServiceKey,
    pub scheduler: String,
    /// HASHED already masked out.
    pub flags: u32,
    pub timeout: u32,
    pub netmask: Ipv4Addr,
    pub pe_name: Option<String>,
    pub stats: Stats,
}

/// Why a dumped service is not shown: lvslab models IPv4 TCP/UDP and fwmark services only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmodelled {
    Family(u16),
    Protocol(u16),
}

fn missing(what: &str, field: &str) -> DirectorError {
    DirectorError::Ipvs {
        what: what.into(),
        why: format!("the kernel's dump has no {field} attribute"),
    }
}

/// Reads a dumped SERVICE nest. `Ok(Err(..))` for services lvslab does not model.
pub fn decode_service(attrs: &[SvcAttr]) -> Result<std::result::Result<KernelService, Unmodelled>> {
    let (mut af, mut proto, mut addr, mut port, mut sched) = (None, None, None, None, None);
    let mut fwmark = None;
    let (mut flags, mut timeout, mut netmask, mut pe) = (0, 0, Ipv4Addr::BROADCAST, None);
    let (mut stats, mut stats64) = (None, None);
    for a in attrs {
        match a {
            SvcAttr::Fwmark(m) => fwmark = Some(*m),
            SvcAttr::Af(v) => af = Some(*v),
            SvcAttr::Protocol(v) => proto = Some(*v),
            SvcAttr::Addr(v) => addr = addr_v4(v),
            SvcAttr::Port(v) => port = Some(*v),
            SvcAttr::SchedName(s) => sched = Some(s.clone()),
            SvcAttr::Flags { flags: f, mask } => flags = f & mask & !svc_flags::HASHED,
            SvcAttr::Timeout(t) => timeout = *t,
            SvcAttr::Netmask(m) => netmask = Ipv4Addr::from(*m),
            SvcAttr::PeName(s) if !s.is_empty() => pe = Some(s.clone()),
            SvcAttr::Stats(s) => stats = Some(*s),
            SvcAttr::Stats64(s) => stats64 = Some(*s),
            _ => {}
        }
    }
    let what = "service dump";
    let af = af.ok_or_else(|| missing(what, "AF"))?;
    if af != AF_INET {
        return Ok(Err(Unmodelled::Family(af)));
    }
    // `ip_vs_genl_fill_service`: FWMARK instead of PROTOCOL, ADDR and PORT.
    let key = match fwmark.filter(|m| *m != 0) {
        Some(mark) => ServiceKey::fwmark(mark),
        None => {
            let number = proto.ok_or_else(|| missing(what, "PROTOCOL"))?;
            let Some(proto) = u8::try_from(number).ok().and_then(Proto::from_number) else {
                return Ok(Err(Unmodelled::Protocol(number)));
            };
            ServiceKey::new(
                proto,
                addr.ok_or_else(|| missing(what, "ADDR"))?,
                port.ok_or_else(|| missing(what, "PORT"))?,
            )
        }
    };
    Ok(Ok(KernelService {
        key,
        scheduler: sched.unwrap_or_default(),
        flags,
        timeout,
        netmask,
        pe_name: pe,
        // STATS64 when the kernel has it (≥ 4.x), else the 32-bit set.
        stats: stats64.or(stats).unwrap_or_default(),
    }))
}

/// A real server as the kernel dumps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDest {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub fwd_method: u32,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats,
}

pub fn decode_dest(attrs: &[DestAttr]) -> Result<KernelDest> {
    let what = "real server dump";
    let (mut addr, mut port, mut method, mut weight) = (None, None, None, None);
    let mut d = KernelDest {
        addr: Ipv4Addr::UNSPECIFIED,
        port: 0,
        fwd_method: 0,
        weight: 0,
        u_threshold: 0,
        l_threshold: 0,
        active_conns: 0,
        inact_conns: 0,
        persist_conns: 0,
        stats: Stats::default(),
    };
    let (mut stats, mut stats64) = (None, None);
    for a in attrs {
        match a {
            DestAttr::Addr(v) => addr = addr_v4(v),
            DestAttr::Port(p) => port = Some(*p),
            DestAttr::FwdMethod(m) => method = Some(m & fwd::MASK),
            DestAttr::Weight(w) => weight = Some(*w),
            DestAttr::UThresh(v) => d.u_threshold = *v,
            DestAttr::LThresh(v) => d.l_threshold = *v,
            DestAttr::ActiveConns(v) => d.active_conns = *v,
            DestAttr::InactConns(v) => d.inact_conns = *v,
            DestAttr::PersistConns(v) => d.persist_conns = *v,
            DestAttr::Stats(s) => stats = Some(*s),
            DestAttr::Stats64(s) => stats64 = Some(*s),
            _ => {}
        }
    }
    d.addr = addr.ok_or_else(|| missing(what, "ADDR"))?;
    d.port = port.ok_or_else(|| missing(what, "PORT"))?;
    d.fwd_method = method.ok_or_else(|| missing(what, "FWD_METHOD"))?;
    d.weight = weight.ok_or_else(|| missing(what, "WEIGHT"))?;
    d.stats = stats64.or(stats).unwrap_or_default();
    Ok(d)
}

/// The Forward lvslab shows for a kernel method. LOCALNODE has no lvslab
/// equivalent; it shows as Route (what `ipvsadm-save` writes for it, `-g`).
pub fn forward_of(method: u32) -> Forward {
    match method & fwd::MASK {
        fwd::MASQ => Forward::Nat,
        fwd::TUNNEL => Forward::Tun,
        _ => Forward::Dr,
    }
}

pub fn sched_flags_of(scheduler: &str, flags: u32) -> ipvs::SchedFlags {
    let f1 = flags & svc_flags::SCHED1 != 0;
    let f2 = flags & svc_flags::SCHED2 != 0;
    let mh = scheduler.parse() == Ok(Scheduler::Mh);
    ipvs::SchedFlags {
        sh_fallback: f1 && !mh,
        sh_port: f2 && !mh,
        mh_fallback: f1 && mh,
        mh_port: f2 && mh,
    }
}

pub fn counters_of(s: &Stats) -> ipvs::Counters {
    ipvs::Counters {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
    }
}

/// The estimator's rates as the same STATS attribute reports them.
pub fn rates_of(s: &Stats) -> ipvs::Rates {
    ipvs::Rates {
        cps: s.cps,
        inpps: s.inpps,
        outpps: s.outpps,
        inbps: s.inbps,
        outbps: s.outbps,
    }
}
