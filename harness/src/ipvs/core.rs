//! The packet path, the kernel's `ip_vs_core.c`: a packet in from a client
//! ([`Ipvs::process_in`], `ip_vs_in`), a reply out from a real server
//! ([`Ipvs::process_out`], `ip_vs_out`), scheduling a new entry
//! (`ip_vs_schedule`), state transitions and the expiry timers.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::conn::{self, flags, Conn, Dir, InKey, OutKey};
use super::service::DestIdx;
use super::{sched, ConnId, ConnState, Forward, Ipvs, Proto, TcpFlags, TcpState};

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

/// First port handed out to FULLNAT connections.
pub(super) const FULLNAT_PORT_MIN: u16 = 1024;

impl Ipvs {
    /// Client → director, unmarked.
    pub fn process_in(&mut self, pkt: &PacketIn, now: Instant) -> InVerdict {
        self.process_in_marked(pkt, 0, now)
    }

    /// Client → director, with the packet's firewall mark (`skb->mark`, 0 = none): a new
    /// connection goes to the fwmark service of that mark before any address service.
    pub fn process_in_marked(&mut self, pkt: &PacketIn, mark: u32, now: Instant) -> InVerdict {
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
                let Some(svc) = self.find_service(mark, pkt.proto, pkt.daddr, pkt.dport) else {
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
            // A fwmark service takes every port its mark covers.
            if svc.cfg.fwmark == 0 && pkt.dport != svc.cfg.port {
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
    pub(super) fn state_transition(&mut self, slot: u32, dir: Dir, tcp: Option<TcpFlags>, now: Instant) {
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
    pub(super) fn remove_conn(&mut self, slot: u32, at: Instant) {
        let Some(c) = self.conns.remove(slot) else { return };
        self.dest_of_mut(c.svc, c.dest).unbind(c.is_template(), c.is_inactive());
        if let Some(t) = c.control.and_then(|ct| self.conns.get_mut(ct)) {
            t.n_control = t.n_control.saturating_sub(1);
            if t.n_control == 0 {
                t.children_gone_at = Some(at);
            }
        }
    }

    /// `ip_vs_expire_nodest_conn_flush`: every entry whose destination was deleted goes,
    /// unless it controls others (a busy template); a template left controlling nothing by
    /// that goes with its last entry.
    pub(super) fn expire_nodest_conns(&mut self, now: Instant) {
        let doomed: Vec<u32> = self
            .conns
            .iter()
            .filter(|(_, c)| c.n_control == 0 && !self.dest_of(c).available)
            .map(|(slot, _)| slot)
            .collect();
        for slot in doomed {
            let control = self.conns.get(slot).and_then(|c| c.control);
            self.remove_conn(slot, now);
            if let Some(t) = control {
                if self.conns.get(t).is_some_and(|t| t.n_control == 0) {
                    self.remove_conn(t, now);
                }
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
}
