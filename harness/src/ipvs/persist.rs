//! Persistence templates (`ip_vs_core.c: ip_vs_sched_persist`,
//! `ip_vs_conn.c: ip_vs_check_template`).
//!
//! A template is a table entry keyed `(proto, client & netmask, 0, vip,
//! vport)` — vport 0 for port-zero services — bound to a destination. While
//! it lives and its destination is usable, new connections from that client
//! network go to the same destination without asking the scheduler.

use std::net::Ipv4Addr;

use super::conn::{flags, Conn, ConnState, InKey};
use super::sched::SchedInput;
use super::service::DestIdx;
use super::{DropReason, Ipvs, Proto};

/// vport/dport given to an invalidated template so it never matches again.
const INVALID_PORT: u16 = 0xFFFF;

/// Client network used as the template key.
pub fn client_net(saddr: Ipv4Addr, netmask: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(saddr) & u32::from(netmask))
}

impl Ipvs {
    /// Returns (destination, destination port, template slot).
    pub(super) fn sched_persist(
        &mut self,
        svc_id: u32,
        pkt: &SchedInput,
    ) -> Result<(DestIdx, u16, Option<u32>), DropReason> {
        let (netmask, svc_port, timeout, fwmark) = {
            let cfg = &self.services[svc_id as usize].as_ref().expect("svc").cfg;
            (
                cfg.persistence_netmask,
                cfg.port,
                cfg.persistence.expect("persistent service"),
                cfg.fwmark,
            )
        };
        let snet = client_net(pkt.saddr, netmask);
        // Packet to the service port: per-port template; port-zero service: vport 0.
        let same_port = pkt.dport == svc_port;
        let tvport = if same_port { pkt.dport } else { 0 };
        // fwmark template `<IPPROTO_IP, caddr, 0, fwmark, 0>`: one per client network whatever
        // the protocol, port or destination address. Proto has no IPPROTO_IP: TCP stands for it
        // (the service's own protocol in the kernel's key), and the mark stands as the address.
        let (tproto, tvaddr) = match fwmark {
            0 => (pkt.proto, pkt.daddr),
            mark => (Proto::Tcp, Ipv4Addr::from(mark)),
        };
        let key = InKey::new(tproto, true, snet, 0, tvaddr, tvport);

        let mut found = self.conns.lookup_in(&key);
        if found.is_some_and(|s| self.conns.get(s).is_some_and(|t| t.expires <= pkt.now)) {
            self.expire(pkt.now);
            found = self.conns.lookup_in(&key);
        }
        let usable = found.filter(|&s| self.template_usable(s));
        if let (Some(slot), None) = (found, usable) {
            self.conns.rekey(slot, |t| {
                t.vport = INVALID_PORT;
                t.dport = INVALID_PORT;
                t.cport = 0;
            });
        }

        let (dest, ct) = match usable {
            Some(slot) => (self.conns.get(slot).expect("template").dest, slot),
            None => {
                let svc = self.services[svc_id as usize].as_mut().expect("svc");
                let dest = svc.sched.schedule(&svc.dests, pkt).ok_or(DropReason::NoDestination)?;
                let d = svc.dests.get_mut(dest);
                d.bind(true, false);
                let template = Conn {
                    proto: tproto,
                    caddr: snet,
                    cport: 0,
                    vaddr: tvaddr,
                    vport: tvport,
                    daddr: d.addr,
                    dport: if same_port { d.port } else { 0 },
                    laddr: Ipv4Addr::UNSPECIFIED,
                    lport: 0,
                    forward: d.forward,
                    flags: flags::TEMPLATE,
                    state: ConnState::Template { assured: false },
                    svc: svc_id,
                    dest,
                    timeout,
                    expires: pkt.now + timeout,
                    control: None,
                    n_control: 0,
                    children_gone_at: None,
                    in_pkts: 0,
                };
                (dest, self.conns.insert(template).slot)
            }
        };
        let dest_port = self.services[svc_id as usize]
            .as_ref()
            .expect("svc")
            .dests
            .get(dest)
            .port;
        let dport = if same_port && dest_port != 0 {
            dest_port
        } else {
            pkt.dport
        };
        Ok((dest, dport, Some(ct)))
    }

    /// `ip_vs_check_template`: the template's destination still takes traffic.
    fn template_usable(&self, slot: u32) -> bool {
        let Some(t) = self.conns.get(slot) else { return false };
        let d = self.services[t.svc as usize].as_ref().expect("svc").dests.get(t.dest);
        d.available && !(self.sysctls.expire_quiescent_template && d.weight == 0)
    }
}
