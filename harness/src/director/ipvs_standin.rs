//! TEMPORARY stand-in for `crate::ipvs` with the agreed API, so the director
//! compiles and its tests run before the ipvs branch lands. Round robin only,
//! a flat connection table, no TCP states. Delete once `crate::ipvs` is on main.
#![allow(dead_code, clippy::type_complexity)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Dr,
    Nat,
    Tun,
    FullNat,
}
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedFlags {
    pub sh_fallback: bool,
    pub sh_port: bool,
    pub mh_fallback: bool,
    pub mh_port: bool,
}
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
pub struct DestConfig {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub weight: u32,
    pub forward: Forward,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
}
#[derive(Clone, Debug, Default)]
pub struct Sysctls {
    pub conn_reuse_mode: u8,
    pub expire_nodest_conn: bool,
    pub expire_quiescent_template: bool,
    pub sloppy_tcp: bool,
}
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}
#[derive(Clone, Debug)]
pub struct PacketIn {
    pub proto: Proto,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    pub tcp: Option<TcpFlags>,
    pub len: u32,
}
pub type PacketOut = PacketIn;
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(u64);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    NoDestination,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceId(usize);
#[derive(Debug)]
pub enum IpvsError {
    NoSuchService,
    NoSuchDest,
}
impl std::fmt::Display for IpvsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
impl std::error::Error for IpvsError {}
#[derive(Debug)]
pub enum InVerdict {
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
#[derive(Debug)]
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
#[derive(Clone, Debug, Default)]
pub struct IpvsSnapshot {
    pub services: Vec<(Ipv4Addr, u16, Vec<(Ipv4Addr, u16, u32, u64)>)>,
}

struct Conn {
    client: (Ipv4Addr, u16),
    vip: (Ipv4Addr, u16),
    dest: (Ipv4Addr, u16),
    forward: Forward,
    snat: Option<(Ipv4Addr, u16)>,
    id: ConnId,
}
struct Service {
    cfg: ServiceConfig,
    dests: Vec<(DestConfig, u64)>,
    next: usize,
}

pub struct Ipvs {
    services: Vec<Service>,
    conns: HashMap<(Proto, Ipv4Addr, u16, Ipv4Addr, u16), usize>,
    table: Vec<Conn>,
    out: HashMap<(Proto, Ipv4Addr, u16, Ipv4Addr, u16), usize>,
    laddrs: Vec<Ipv4Addr>,
    next_lport: u16,
}

impl Ipvs {
    pub fn new(_: Sysctls) -> Self {
        Ipvs {
            services: vec![],
            conns: HashMap::new(),
            table: vec![],
            out: HashMap::new(),
            laddrs: vec![],
            next_lport: 40000,
        }
    }
    pub fn set_fullnat_local_addrs(&mut self, a: Vec<Ipv4Addr>) {
        self.laddrs = a;
    }
    pub fn add_service(&mut self, cfg: ServiceConfig) -> Result<ServiceId, IpvsError> {
        self.services.push(Service {
            cfg,
            dests: vec![],
            next: 0,
        });
        Ok(ServiceId(self.services.len() - 1))
    }
    pub fn add_dest(&mut self, s: ServiceId, d: DestConfig) -> Result<(), IpvsError> {
        self.services
            .get_mut(s.0)
            .ok_or(IpvsError::NoSuchService)?
            .dests
            .push((d, 0));
        Ok(())
    }
    pub fn edit_dest(&mut self, s: ServiceId, d: DestConfig) -> Result<(), IpvsError> {
        let svc = self.services.get_mut(s.0).ok_or(IpvsError::NoSuchService)?;
        let slot = svc
            .dests
            .iter_mut()
            .find(|(x, _)| x.addr == d.addr && x.port == d.port)
            .ok_or(IpvsError::NoSuchDest)?;
        slot.0 = d;
        Ok(())
    }
    pub fn is_vip(&self, a: Ipv4Addr) -> bool {
        self.services.iter().any(|s| s.cfg.vip == a)
    }
    pub fn process_in(&mut self, p: &PacketIn, _: Instant) -> InVerdict {
        let key = (p.proto, p.saddr, p.sport, p.daddr, p.dport);
        if let Some(&i) = self.conns.get(&key) {
            let c = &self.table[i];
            return InVerdict::Forward {
                dest: c.dest.0,
                dport: c.dest.1,
                forward: c.forward,
                conn: c.id,
                new: false,
                snat: c.snat,
            };
        }
        let Some(svc) = self
            .services
            .iter_mut()
            .find(|s| s.cfg.vip == p.daddr && s.cfg.port == p.dport && s.cfg.proto == p.proto)
        else {
            return InVerdict::NotService;
        };
        let n = svc.dests.len();
        let Some(pick) = (0..n)
            .map(|k| (svc.next + k) % n)
            .find(|&i| svc.dests[i].0.weight > 0)
        else {
            return InVerdict::Drop(DropReason::NoDestination);
        };
        svc.next = pick + 1;
        svc.dests[pick].1 += 1;
        let d = svc.dests[pick].0.clone();
        let snat = if d.forward == Forward::FullNat {
            self.next_lport += 1;
            self.laddrs.first().map(|&a| (a, self.next_lport))
        } else {
            None
        };
        let id = ConnId(self.table.len() as u64);
        self.table.push(Conn {
            client: (p.saddr, p.sport),
            vip: (p.daddr, p.dport),
            dest: (d.addr, d.port),
            forward: d.forward,
            snat,
            id,
        });
        self.conns.insert(key, self.table.len() - 1);
        let (rd, rp) = snat.unwrap_or((p.saddr, p.sport));
        self.out
            .insert((p.proto, d.addr, d.port, rd, rp), self.table.len() - 1);
        InVerdict::Forward {
            dest: d.addr,
            dport: d.port,
            forward: d.forward,
            conn: id,
            new: true,
            snat,
        }
    }
    pub fn process_out(&mut self, p: &PacketOut, _: Instant) -> OutVerdict {
        match self.out.get(&(p.proto, p.saddr, p.sport, p.daddr, p.dport)) {
            Some(&i) => {
                let c = &self.table[i];
                OutVerdict::Rewrite {
                    saddr: c.vip.0,
                    sport: c.vip.1,
                    daddr: c.client.0,
                    dport: c.client.1,
                    conn: c.id,
                }
            }
            None => OutVerdict::NotOurs,
        }
    }
    pub fn expire(&mut self, _: Instant) {}
    pub fn snapshot(&self, _: Instant) -> IpvsSnapshot {
        IpvsSnapshot {
            services: self
                .services
                .iter()
                .map(|s| {
                    (
                        s.cfg.vip,
                        s.cfg.port,
                        s.dests
                            .iter()
                            .map(|(d, c)| (d.addr, d.port, d.weight, *c))
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}
