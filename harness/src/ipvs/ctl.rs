//! Table management, the kernel's `ip_vs_ctl.c`: services and their
//! destinations (add, edit, delete), thresholds, the `net.ipv4.vs.*` sysctls
//! and the FULLNAT local addresses.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::conn::{Conn, ConnTable};
use super::core::FULLNAT_PORT_MIN;
use super::service::{self, DestAdded, DestIdx, Service};
use super::{sched, view, ConnId, Counters, Forward, IpvsSnapshot, Proto, Scheduler, ServiceKey};
use crate::lvs::SchedFlag;

/// `-b` scheduler flags (SCHED1 = *-fallback, SCHED2 = *-port).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedFlags {
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub mh_fallback: bool,
    pub mh_port: bool,
}

impl FromIterator<SchedFlag> for SchedFlags {
    fn from_iter<I: IntoIterator<Item = SchedFlag>>(flags: I) -> Self {
        let mut out = SchedFlags::default();
        for flag in flags {
            match flag {
                SchedFlag::ShFallback => out.sh_fallback = true,
                SchedFlag::ShPort => out.sh_port = true,
                SchedFlag::MhFallback => out.mh_fallback = true,
                SchedFlag::MhPort => out.mh_port = true,
            }
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub scheduler: Scheduler,
    pub flags: SchedFlags,
    pub persistence: Option<Duration>,
    pub persistence_netmask: Ipv4Addr,
    pub one_packet: bool,
    /// `ipvsadm -f`: 0 for an address service. A fwmark service is keyed by the mark alone;
    /// its `vip` is then only the address the director holds for it (0.0.0.0: none).
    #[serde(default)]
    pub fwmark: u32,
}

impl ServiceConfig {
    /// `ipvsadm -A -f MARK -s SCHED`: protocol TCP, port 0, as the kernel stores it.
    pub fn fwmark(mark: u32, scheduler: Scheduler) -> Self {
        ServiceConfig {
            fwmark: mark,
            ..ServiceConfig::new(Proto::Tcp, Ipv4Addr::UNSPECIFIED, 0, scheduler)
        }
    }

    /// The key the kernel finds it by.
    pub fn key(&self) -> ServiceKey {
        match self.fwmark {
            0 => ServiceKey::new(self.proto, self.vip, self.port),
            mark => ServiceKey::fwmark(mark),
        }
    }

    /// A service with ipvsadm's defaults (no persistence, mask /32).
    pub fn new(proto: Proto, vip: Ipv4Addr, port: u16, scheduler: Scheduler) -> Self {
        ServiceConfig {
            vip,
            port,
            proto,
            scheduler,
            flags: SchedFlags::default(),
            persistence: None,
            persistence_netmask: Ipv4Addr::BROADCAST,
            one_packet: false,
            fwmark: 0,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServiceId(pub u32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpvsError {
    #[error("service {0} already exists")]
    ServiceExists(ServiceKey),
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

/// The whole IPVS state of one director.
#[derive(Debug)]
pub struct Ipvs {
    pub(super) sysctls: Sysctls,
    pub(super) services: Vec<Option<Service>>,
    pub(super) by_addr: HashMap<ServiceKey, u32>,
    pub(super) conns: ConnTable,
    pub(super) local_addrs: Vec<Ipv4Addr>,
    pub(super) next_laddr: usize,
    pub(super) next_lport: u16,
    pub(super) seed: u64,
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
        let key = cfg.key();
        if self.by_addr.contains_key(&key) {
            return Err(IpvsError::ServiceExists(key));
        }
        if cfg.port == 0 && cfg.fwmark == 0 && cfg.persistence.is_none() {
            return Err(IpvsError::PortZeroNotPersistent);
        }
        if cfg.persistence.is_some_and(|p| p.as_secs() == 0) {
            return Err(IpvsError::BadPersistence);
        }
        let dests = service::DestList::default();
        let sched = sched::new_scheduler(cfg.scheduler, cfg.flags, &dests, self.seed);
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

    pub(super) fn svc_mut(&mut self, id: ServiceId) -> Result<&mut Service, IpvsError> {
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

    /// `ipvsadm -d`. With expire_nodest_conn, the entries of every deleted destination go too
    /// (`ip_vs_expire_nodest_conn_flush`, queued by `__ip_vs_del_dest` since Linux 5.10), so a
    /// client that reuses a source port is scheduled anew instead of dropped.
    pub fn del_dest(&mut self, svc: ServiceId, addr: Ipv4Addr, port: u16, now: Instant) -> Result<(), IpvsError> {
        let s = self.svc_mut(svc)?;
        let (idx, pos) = s.unlink_dest(addr, port).ok_or(IpvsError::NoSuchDest(addr, port))?;
        s.sched.del_dest(&s.dests, idx, pos);
        if self.sysctls.expire_nodest_conn {
            self.expire_nodest_conns(now);
        }
        Ok(())
    }

    /// Whether a service is on `addr`: an address service's VIP, or the address the director
    /// holds for a fwmark service.
    pub fn is_vip(&self, addr: Ipv4Addr) -> bool {
        !addr.is_unspecified() && self.services.iter().flatten().any(|s| s.cfg.vip == addr)
    }

    /// Whether a fwmark service has `mark` (the embedded engine's stand-in for a marked skb).
    pub fn has_fwmark(&self, mark: u32) -> bool {
        mark != 0 && self.by_addr.contains_key(&ServiceKey::fwmark(mark))
    }

    /// Number of entries (connections + templates) in the table.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// `ip_vs_service_find`: the fwmark table first, then address:port, then port zero.
    pub(super) fn find_service(&self, mark: u32, proto: Proto, vaddr: Ipv4Addr, vport: u16) -> Option<u32> {
        let by_mark = (mark != 0)
            .then(|| self.by_addr.get(&ServiceKey::fwmark(mark)))
            .flatten();
        by_mark
            .or_else(|| self.by_addr.get(&ServiceKey::new(proto, vaddr, vport)))
            .or_else(|| self.by_addr.get(&ServiceKey::new(proto, vaddr, 0)))
            .copied()
    }

    pub(super) fn dest_of(&self, c: &Conn) -> &service::Dest {
        self.services[c.svc as usize]
            .as_ref()
            .expect("conn of live service")
            .dests
            .get(c.dest)
    }

    pub(super) fn dest_of_mut(&mut self, svc: u32, d: DestIdx) -> &mut service::Dest {
        self.services[svc as usize]
            .as_mut()
            .expect("conn of live service")
            .dests
            .get_mut(d)
    }

    /// Look up an entry by handle.
    pub fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns.by_id(id)
    }

    pub fn snapshot(&self, now: Instant) -> IpvsSnapshot {
        view::snapshot(self, now)
    }
}
