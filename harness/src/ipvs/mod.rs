//! Pure IPVS semantics in userspace: no root, no I/O, no clock.
//!
//! The embedded director feeds every packet to [`Ipvs::process_in`] (client →
//! director) or [`Ipvs::process_out`] (real server → director) with the
//! current time, and forwards / rewrites as told. Facts come from
//! `shared/reference/ipvs.md`; the kernel's `net/netfilter/ipvs/*.c` is the
//! authority.
//!
//! Reproduced:
//! * all mainline schedulers (`sched/`), one file each, walking destinations
//!   newest-first like the kernel list; sh/dh use `hash_32`, mh uses the
//!   64-bit kernel's hsiphash (SipHash-1-3) with its fixed keys and the
//!   default 4093-slot table, so picks match a real 5.x/6.x director;
//! * OVERLOAD with upper/lower thresholds (set/cleared at bind/unbind);
//! * the connection table: TCP state tables (INPUT/OUTPUT for NAT and
//!   FullNat, INPUT-ONLY for DR/TUN), default timeouts as idle timers re-armed
//!   per packet, active/inactive counts, `conn_reuse_mode`,
//!   `expire_nodest_conn`, `sloppy_tcp`, one-packet UDP scheduling;
//! * persistence templates keyed by (proto, client & netmask, vip, vport or
//!   0 for port-zero services), `expire_quiescent_template`, the 60 s
//!   re-arm of busy templates (and its permanent 60 s timeout quirk), ASSURED;
//! * counters (conns, in/out packets and bytes) and text views in the
//!   columns of ipvsadm 1.31: `-Ln` with `--stats`, `--rate`,
//!   `--thresholds`, `--persistent-conn`, and `-Lnc`, `-S -n` (`view/ipvsadm.rs`);
//! * the lookups of ICMP errors that belong to an entry, with their
//!   counters (`related.rs`; the relaying itself is the engine's).
//!
//! Not reproduced: IPv6, SCTP, fwmark services, FTP helpers, the SIP
//! persistence engine, secure_tcp/drop_entry/drop_packet defences,
//! conntrack (so `conn_reuse_mode` never drops the SYN), rate estimators,
//! scheduling on ICMP (`schedule_icmp`), sync daemons, the trash's 120 s reclaim (a deleted
//! destination is kept until re-added), the kernel's hash-bucket listing
//! order (`-Lnc` lists in table-slot order), and twos's kernel RNG (seeded
//! SplitMix64 instead). FULLNAT is not mainline: it follows alibaba/LVS's
//! idea (local address pool, both addresses rewritten) with NAT's state
//! tables.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub mod conn;
pub mod persist;
pub mod related;
pub mod sched;
pub mod service;
pub mod view;

pub use conn::{ConnId, ConnState, TcpState};
pub use service::Counters;
pub use view::{ConnSnapshot, DestSnapshot, IpvsSnapshot, Rates, ServiceSnapshot};

use conn::{flags, Conn, ConnTable, Dir, InKey, OutKey};
use service::{DestAdded, DestIdx, Service};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    Dr,
    Nat,
    Tun,
    FullNat,
}

impl Forward {
    /// The Forward column of `ipvsadm -L`.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Dr => "Route",
            Forward::Nat => "Masq",
            Forward::Tun => "Tunnel",
            Forward::FullNat => "FullNat",
        }
    }
    /// The director sees the replies (NAT-style state tables).
    fn sees_replies(self) -> bool {
        matches!(self, Forward::Nat | Forward::FullNat)
    }
}

/// `-b` scheduler flags (SCHED1 = *-fallback, SCHED2 = *-port).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedFlags {
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub mh_fallback: bool,
    pub mh_port: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub scheduler: String,
    pub flags: SchedFlags,
    pub persistence: Option<Duration>,
    pub persistence_netmask: Ipv4Addr,
    pub one_packet: bool,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults (no persistence, mask /32).
    pub fn new(proto: Proto, vip: Ipv4Addr, port: u16, scheduler: &str) -> Self {
        ServiceConfig {
            vip,
            port,
            proto,
            scheduler: scheduler.to_string(),
            flags: SchedFlags::default(),
            persistence: None,
            persistence_netmask: Ipv4Addr::BROADCAST,
            one_packet: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub forward: Forward,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}

impl DestConfig {
    pub fn new(addr: Ipv4Addr, port: u16, weight: u32, forward: Forward) -> Self {
        DestConfig {
            addr,
            port,
            weight,
            forward,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }
}

/// `/proc/sys/net/ipv4/vs/*` that change behaviour here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctls {
    pub conn_reuse_mode: u8,
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub sloppy_tcp: bool,
}

impl Default for Sysctls {
    fn default() -> Self {
        Sysctls {
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
        }
    }
}

pub use crate::wire::TcpFlags;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketIn {
    pub proto: Proto,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub tcp: Option<TcpFlags>,
    /// IP length in bytes (for InBytes).
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketOut {
    pub proto: Proto,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub tcp: Option<TcpFlags>,
    pub len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InVerdict {
    /// Not for IPVS: no service, or a TCP non-SYN without an entry (the
    /// kernel hands those to the local stack).
    NotService,
    Forward {
        dest: Ipv4Addr,
        dport: u16,
        forward: Forward,
        conn: ConnId,
        new: bool,
        snat: Option<(Ipv4Addr, u16)>,
    },
    Drop(DropReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// The scheduler found nothing (`ip_vs_leave`: ICMP port unreachable + drop).
    NoDestination,
    /// The entry's destination was deleted and expire_nodest_conn is off.
    DestUnavailable,
    /// Non-persistent service on port 0 cannot schedule.
    PortZeroNotPersistent,
    /// FULLNAT without a free local address/port.
    NoLocalAddress,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::NoDestination => "no destination available (ICMP port unreachable, drop)",
            DropReason::DestUnavailable => "connection's real server was deleted (expire_nodest_conn=0: drop)",
            DropReason::PortZeroNotPersistent => "port zero only supported in persistent services",
            DropReason::NoLocalAddress => "no free FULLNAT local address/port",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutVerdict {
    NotOurs,
    Rewrite {
        saddr: Ipv4Addr,
        sport: u16,
        daddr: Ipv4Addr,
        dport: u16,
        conn: ConnId,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpvsError {
    #[error("unknown scheduler {0:?} (known: {known})", known = sched::SCHEDULER_NAMES.join(", "))]
    UnknownScheduler(String),
    #[error("service {0} {1}:{2} already exists")]
    ServiceExists(&'static str, Ipv4Addr, u16),
    #[error("no such service (id {0})")]
    NoSuchService(u32),
    #[error("destination {0}:{1} already exists in this service")]
    DestExists(Ipv4Addr, u16),
    #[error("no destination {0}:{1} in this service")]
    NoSuchDest(Ipv4Addr, u16),
    #[error("lower threshold {lower} is above upper threshold {upper}")]
    ThresholdRange { lower: u32, upper: u32 },
    #[error("port zero is only supported in persistent services")]
    PortZeroNotPersistent,
    #[error("persistence timeout must be at least one second")]
    BadPersistence,
}

/// First port handed out to FULLNAT connections.
const FULLNAT_PORT_MIN: u16 = 1024;

/// The whole IPVS state of one director.
#[derive(Debug)]
pub struct Ipvs {
    sysctls: Sysctls,
    services: Vec<Option<Service>>,
    by_addr: HashMap<(Proto, u32, u16), u32>,
    conns: ConnTable,
    local_addrs: Vec<Ipv4Addr>,
    next_laddr: usize,
    next_lport: u16,
    seed: u64,
}

impl Ipvs {
    pub fn new(sysctls: Sysctls) -> Self {
        Ipvs {
            sysctls,
            services: Vec::new(),
            by_addr: HashMap::new(),
            conns: ConnTable::default(),
            local_addrs: Vec::new(),
            next_laddr: 0,
            next_lport: FULLNAT_PORT_MIN,
            seed: 0x5EED,
        }
    }

    pub fn sysctls(&self) -> Sysctls {
        self.sysctls
    }

    pub fn set_sysctls(&mut self, sysctls: Sysctls) {
        self.sysctls = sysctls;
    }

    /// Seed for randomised schedulers (twos), existing and future.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        for s in self.services.iter_mut().flatten() {
            s.sched.set_seed(seed);
        }
    }

    pub fn set_fullnat_local_addrs(&mut self, addrs: Vec<Ipv4Addr>) {
        self.local_addrs = addrs;
        self.next_laddr = 0;
    }

    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<ServiceId, IpvsError> {
        let key = (cfg.proto, u32::from(cfg.vip), cfg.port);
        if self.by_addr.contains_key(&key) {
            return Err(IpvsError::ServiceExists(cfg.proto.name(), cfg.vip, cfg.port));
        }
        if cfg.port == 0 && cfg.persistence.is_none() {
            return Err(IpvsError::PortZeroNotPersistent);
        }
        if cfg.persistence.is_some_and(|p| p.as_secs() == 0) {
            return Err(IpvsError::BadPersistence);
        }
        let dests = service::DestList::default();
        let sched = sched::new_scheduler(&cfg.scheduler, cfg.flags, &dests, self.seed)
            .ok_or_else(|| IpvsError::UnknownScheduler(cfg.scheduler.clone()))?;
        let id = self.services.len() as u32;
        self.services.push(Some(Service {
            cfg,
            dests,
            sched,
            stats: Counters::default(),
        }));
        self.by_addr.insert(key, id);
        Ok(ServiceId(id))
    }

    /// Services by id (None entries never occur today; kept for deletion later).
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id.0 as usize)?.as_ref()
    }

    fn svc_mut(&mut self, id: ServiceId) -> Result<&mut Service, IpvsError> {
        self.services
            .get_mut(id.0 as usize)
            .and_then(|s| s.as_mut())
            .ok_or(IpvsError::NoSuchService(id.0))
    }

    fn check_thresholds(cfg: &DestConfig) -> Result<(), IpvsError> {
        if cfg.upper_threshold != 0 && cfg.lower_threshold > cfg.upper_threshold {
            return Err(IpvsError::ThresholdRange {
                lower: cfg.lower_threshold,
                upper: cfg.upper_threshold,
            });
        }
        Ok(())
    }

    pub fn add_dest(&mut self, svc: ServiceId, cfg: DestConfig) -> Result<(), IpvsError> {
        Self::check_thresholds(&cfg)?;
        let s = self.svc_mut(svc)?;
        if let Some(i) = s.dests.find_slot(cfg.addr, cfg.port) {
            if s.dests.position(i).is_some() {
                return Err(IpvsError::DestExists(cfg.addr, cfg.port));
            }
        }
        let idx = match s.link_dest(&cfg) {
            DestAdded::New(i) | DestAdded::Revived(i) => i,
        };
        s.sched.add_dest(&s.dests, idx);
        Ok(())
    }

    pub fn edit_dest(&mut self, svc: ServiceId, cfg: DestConfig) -> Result<(), IpvsError> {
        Self::check_thresholds(&cfg)?;
        let s = self.svc_mut(svc)?;
        let idx = s.update_dest(&cfg).ok_or(IpvsError::NoSuchDest(cfg.addr, cfg.port))?;
        s.sched.upd_dest(&s.dests, idx);
        Ok(())
    }

    pub fn del_dest(&mut self, svc: ServiceId, addr: Ipv4Addr, port: u16) -> Result<(), IpvsError> {
        let s = self.svc_mut(svc)?;
        let (idx, pos) = s.unlink_dest(addr, port).ok_or(IpvsError::NoSuchDest(addr, port))?;
        s.sched.del_dest(&s.dests, idx, pos);
        Ok(())
    }

    pub fn is_vip(&self, addr: Ipv4Addr) -> bool {
        let a = u32::from(addr);
        self.by_addr.keys().any(|&(_, v, _)| v == a)
    }

    /// Number of entries (connections + templates) in the table.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    fn find_service(&self, proto: Proto, vaddr: Ipv4Addr, vport: u16) -> Option<u32> {
        let a = u32::from(vaddr);
        self.by_addr
            .get(&(proto, a, vport))
            .or_else(|| self.by_addr.get(&(proto, a, 0)))
            .copied()
    }

    fn dest_of(&self, c: &Conn) -> &service::Dest {
        self.services[c.svc as usize]
            .as_ref()
            .expect("conn of live service")
            .dests
            .get(c.dest)
    }

    fn dest_of_mut(&mut self, svc: u32, d: DestIdx) -> &mut service::Dest {
        self.services[svc as usize]
            .as_mut()
            .expect("conn of live service")
            .dests
            .get_mut(d)
    }

    /// Client → director.
    pub fn process_in(&mut self, pkt: &PacketIn, now: Instant) -> InVerdict {
        let key = InKey::new(pkt.proto, false, pkt.saddr, pkt.sport, pkt.daddr, pkt.dport);
        let mut cp = self.conns.lookup_in(&key);
        if let Some(slot) = cp {
            if self.conns.get(slot).is_some_and(|c| c.expires <= now) {
                let at = self.conns.get(slot).map(|c| c.expires).unwrap_or(now);
                self.remove_conn(slot, at);
                cp = None;
            }
        }
        let tcp = pkt.tcp.unwrap_or_default();
        let is_syn = pkt.proto == Proto::Tcp && tcp.syn;

        if let (Some(slot), true) = (cp, is_syn) {
            if self.should_reschedule(slot) {
                self.remove_conn(slot, now);
                cp = None;
            }
        }
        if let Some(slot) = cp {
            let c = self.conns.get(slot).expect("looked up");
            if !self.dest_of(c).available {
                if self.sysctls.expire_nodest_conn {
                    self.remove_conn(slot, now);
                    cp = None;
                } else {
                    return InVerdict::Drop(DropReason::DestUnavailable);
                }
            }
        }

        let (slot, new) = match cp {
            Some(slot) => (slot, false),
            None => {
                if pkt.proto == Proto::Tcp && (tcp.rst || !(tcp.syn || self.sysctls.sloppy_tcp)) {
                    return InVerdict::NotService;
                }
                let Some(svc) = self.find_service(pkt.proto, pkt.daddr, pkt.dport) else {
                    return InVerdict::NotService;
                };
                match self.schedule(svc, pkt, now) {
                    Ok(slot) => (slot, true),
                    Err(r) => return InVerdict::Drop(r),
                }
            }
        };

        let (svc, dest_idx) = {
            let c = self.conns.get(slot).expect("live");
            (c.svc, c.dest)
        };
        let available = self.dest_of_mut(svc, dest_idx).available;
        if available {
            let d = self.dest_of_mut(svc, dest_idx);
            d.stats.inpkts += 1;
            d.stats.inbytes += pkt.len as u64;
            let s = &mut self.services[svc as usize].as_mut().expect("live").stats;
            s.inpkts += 1;
            s.inbytes += pkt.len as u64;
        }
        let dir = if self.conns.get(slot).expect("live").flags & flags::NOOUTPUT != 0 {
            Dir::InputOnly
        } else {
            Dir::Input
        };
        self.state_transition(slot, dir, pkt.tcp, now);
        let id = self.conns.id_of(slot);
        let c = self.conns.get_mut(slot).expect("live");
        c.in_pkts = c.in_pkts.saturating_add(1);
        let verdict = InVerdict::Forward {
            dest: c.daddr,
            dport: c.dport,
            forward: c.forward,
            conn: id,
            new,
            snat: (c.forward == Forward::FullNat).then_some((c.laddr, c.lport)),
        };
        if c.flags & flags::ONE_PACKET != 0 {
            self.remove_conn(slot, now);
        }
        verdict
    }

    /// `is_new_conn` handling: reschedule a SYN that hits an old entry?
    fn should_reschedule(&self, slot: u32) -> bool {
        let c = self.conns.get(slot).expect("looked up");
        let d = self.dest_of(c);
        if self.sysctls.expire_nodest_conn && d.weight == 0 {
            return true;
        }
        if self.sysctls.conn_reuse_mode == 0 || c.control.is_some() {
            return false;
        }
        match c.state {
            ConnState::Tcp(TcpState::TimeWait | TcpState::Close) => true,
            ConnState::Tcp(TcpState::FinWait) => {
                self.sysctls.conn_reuse_mode & 2 != 0 && c.flags & flags::NOOUTPUT != 0
            }
            _ => false,
        }
    }

    /// Pick a destination and create the entry (`ip_vs_schedule`).
    fn schedule(&mut self, svc_id: u32, pkt: &PacketIn, now: Instant) -> Result<u32, DropReason> {
        let svc = self.services[svc_id as usize].as_ref().expect("found service");
        let input = sched::SchedInput {
            proto: pkt.proto,
            saddr: pkt.saddr,
            sport: pkt.sport,
            daddr: pkt.daddr,
            dport: pkt.dport,
            now,
        };
        let (dest, dport, template) = if svc.cfg.persistence.is_some() {
            self.sched_persist(svc_id, &input)?
        } else {
            if pkt.dport != svc.cfg.port {
                return Err(DropReason::PortZeroNotPersistent);
            }
            let svc = self.services[svc_id as usize].as_mut().expect("found service");
            let d = svc
                .sched
                .schedule(&svc.dests, &input)
                .ok_or(DropReason::NoDestination)?;
            let port = svc.dests.get(d).port;
            (d, if port != 0 { port } else { pkt.dport }, None)
        };
        let one_packet = {
            let svc = self.services[svc_id as usize].as_ref().expect("found service");
            svc.cfg.one_packet && pkt.proto == Proto::Udp
        };
        let slot = self.new_conn(svc_id, dest, pkt, dport, one_packet, now)?;
        if let Some(ct) = template {
            self.conns.get_mut(slot).expect("new").control = Some(ct);
            let t = self.conns.get_mut(ct).expect("template");
            t.n_control += 1;
            t.expires = now + t.timeout;
        }
        let svc = self.services[svc_id as usize].as_mut().expect("found service");
        svc.stats.conns += 1;
        svc.dests.get_mut(dest).stats.conns += 1;
        Ok(slot)
    }

    /// `ip_vs_conn_new` + `ip_vs_bind_dest` for a connection.
    fn new_conn(
        &mut self,
        svc_id: u32,
        dest: DestIdx,
        pkt: &PacketIn,
        dport: u16,
        one_packet: bool,
        now: Instant,
    ) -> Result<u32, DropReason> {
        let d = self.services[svc_id as usize].as_ref().expect("svc").dests.get(dest);
        let (daddr, forward) = (d.addr, d.forward);
        let (laddr, lport) = if forward == Forward::FullNat {
            self.alloc_local(pkt.proto, daddr, dport)
                .ok_or(DropReason::NoLocalAddress)?
        } else {
            (Ipv4Addr::UNSPECIFIED, 0)
        };
        let mut fl = flags::INACTIVE;
        if !forward.sees_replies() {
            fl |= flags::NOOUTPUT;
        }
        if one_packet {
            fl |= flags::ONE_PACKET;
        }
        let conn = Conn {
            proto: pkt.proto,
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
            daddr,
            dport,
            laddr,
            lport,
            forward,
            flags: fl,
            state: match pkt.proto {
                Proto::Tcp => ConnState::Tcp(TcpState::None),
                Proto::Udp => ConnState::Udp,
            },
            svc: svc_id,
            dest,
            timeout: conn::NEW_CONN_TIMEOUT,
            expires: now + conn::NEW_CONN_TIMEOUT,
            control: None,
            n_control: 0,
            children_gone_at: None,
            in_pkts: 0,
        };
        self.dest_of_mut(svc_id, dest).bind(false, true);
        Ok(self.conns.insert(conn).slot)
    }

    /// FULLNAT source: next local address round-robin, first free port.
    fn alloc_local(&mut self, proto: Proto, raddr: Ipv4Addr, rport: u16) -> Option<(Ipv4Addr, u16)> {
        if self.local_addrs.is_empty() {
            return None;
        }
        let laddr = self.local_addrs[self.next_laddr % self.local_addrs.len()];
        self.next_laddr = self.next_laddr.wrapping_add(1);
        let span = (u16::MAX - FULLNAT_PORT_MIN) as u32 + 1;
        for _ in 0..span {
            let port = self.next_lport;
            self.next_lport = if port == u16::MAX { FULLNAT_PORT_MIN } else { port + 1 };
            if !self.conns.out_key_taken(&OutKey::new(proto, raddr, rport, laddr, port)) {
                return Some((laddr, port));
            }
        }
        None
    }

    /// `set_tcp_state` / `udp_state_transition`, then re-arm the idle timer.
    fn state_transition(&mut self, slot: u32, dir: Dir, tcp: Option<TcpFlags>, now: Instant) {
        let c = self.conns.get_mut(slot).expect("live");
        if dir == Dir::Output {
            c.flags &= !flags::NOOUTPUT;
        }
        let (svc, dest, control) = (c.svc, c.dest, c.control);
        let mut assure = false;
        match c.state {
            ConnState::Tcp(cur) => {
                let new = conn::tcp_next_state(cur, dir, tcp.unwrap_or_default());
                if new != cur {
                    let was_inactive = c.is_inactive();
                    let now_inactive = !new.is_active();
                    if now_inactive {
                        c.flags |= flags::INACTIVE;
                    } else {
                        c.flags &= !flags::INACTIVE;
                    }
                    self.dest_of_mut(svc, dest).set_activity(was_inactive, now_inactive);
                    assure = new == TcpState::Established;
                }
                let c = self.conns.get_mut(slot).expect("live");
                c.state = ConnState::Tcp(new);
                c.timeout = new.timeout();
            }
            ConnState::Udp => {
                c.timeout = conn::UDP_TIMEOUT;
                assure = dir == Dir::Output;
            }
            ConnState::Template { .. } => {}
        }
        if assure {
            if let Some(t) = control.and_then(|ct| self.conns.get_mut(ct)) {
                t.state = ConnState::Template { assured: true };
            }
        }
        let c = self.conns.get_mut(slot).expect("live");
        c.expires = now + c.timeout;
    }

    /// Real server → director (replies of NAT / FULLNAT entries).
    pub fn process_out(&mut self, pkt: &PacketOut, now: Instant) -> OutVerdict {
        let key = OutKey::new(pkt.proto, pkt.saddr, pkt.sport, pkt.daddr, pkt.dport);
        let Some(slot) = self.conns.lookup_out(&key) else {
            return OutVerdict::NotOurs;
        };
        let c = self.conns.get(slot).expect("indexed");
        if c.expires <= now {
            let at = c.expires;
            self.remove_conn(slot, at);
            return OutVerdict::NotOurs;
        }
        let (svc, dest) = (c.svc, c.dest);
        let d = self.dest_of_mut(svc, dest);
        if d.available {
            d.stats.outpkts += 1;
            d.stats.outbytes += pkt.len as u64;
            let s = &mut self.services[svc as usize].as_mut().expect("live").stats;
            s.outpkts += 1;
            s.outbytes += pkt.len as u64;
        }
        self.state_transition(slot, Dir::Output, pkt.tcp, now);
        let c = self.conns.get(slot).expect("live");
        let (daddr, dport) = if c.forward == Forward::FullNat {
            (c.caddr, c.cport)
        } else {
            (pkt.daddr, pkt.dport)
        };
        OutVerdict::Rewrite {
            saddr: c.vaddr,
            sport: c.vport,
            daddr,
            dport,
            conn: self.conns.id_of(slot),
        }
    }

    /// Unlink an entry, uncount it, release its template (`ip_vs_conn_expire`
    /// success path). `at` = when the kernel would have dropped it.
    fn remove_conn(&mut self, slot: u32, at: Instant) {
        let Some(c) = self.conns.remove(slot) else { return };
        self.dest_of_mut(c.svc, c.dest).unbind(c.is_template(), c.is_inactive());
        if let Some(t) = c.control.and_then(|ct| self.conns.get_mut(ct)) {
            t.n_control = t.n_control.saturating_sub(1);
            if t.n_control == 0 {
                t.children_gone_at = Some(at);
            }
        }
    }

    /// Drop expired entries. Connections first, then templates, so a
    /// template sees its children's fate (the kernel's timers fire in time
    /// order; this reconstructs the same outcome from the recorded times).
    pub fn expire(&mut self, now: Instant) {
        let due: Vec<(u32, Instant)> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.is_template() && c.expires <= now)
            .map(|(s, c)| (s, c.expires))
            .collect();
        for (slot, at) in due {
            self.remove_conn(slot, at);
        }
        let templates: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_template() && c.expires <= now)
            .map(|(s, _)| s)
            .collect();
        for slot in templates {
            self.expire_template(slot, now);
        }
    }

    fn expire_template(&mut self, slot: u32, now: Instant) {
        let t = self.conns.get_mut(slot).expect("template");
        let step = conn::CONTROL_REARM;
        if t.n_control > 0 {
            // Busy at every firing: re-armed with 60 s, timeout stays 60 s.
            t.timeout = step;
            t.expires = sched::lblc::next_after(t.expires, now, step);
            return;
        }
        let gone = t.children_gone_at.unwrap_or(t.expires);
        let mut death = t.expires;
        if gone > t.expires {
            // First firing at or after the last child went away.
            t.timeout = step;
            let behind = gone.duration_since(t.expires).as_nanos();
            death += step * behind.div_ceil(step.as_nanos()) as u32;
        }
        if death <= now {
            self.remove_conn(slot, death);
        } else {
            t.expires = death;
        }
    }

    /// Look up an entry by handle.
    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.by_id(id)
    }

    pub fn snapshot(&self, now: Instant) -> IpvsSnapshot {
        view::snapshot(self, now)
    }
}

#[cfg(test)]
mod tests;
