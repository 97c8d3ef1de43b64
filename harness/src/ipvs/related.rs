//! ICMP errors that belong to a connection (`ip_vs_in_icmp`, `ip_vs_out_icmp`):
//! finding the entry from the packet an error quotes, and the counters the
//! kernel bumps for them. An error changes no TCP state and re-arms no timer
//! (the kernel drops its reference with `__ip_vs_conn_put`).

use std::net::Ipv4Addr;
use std::time::Instant;

use super::conn::{InKey, OutKey};
use super::{Forward, Ipvs, Proto};

/// Addresses and ports of the packet an ICMP error quotes, as they appear there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted {
    pub proto: Proto,
    pub saddr: Ipv4Addr,
    pub sport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
}

/// The entry an error belongs to: everything a relay needs to rewrite and route it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Related {
    pub forward: Forward,
    pub caddr: Ipv4Addr,
    pub cport: u16,
    pub vaddr: Ipv4Addr,
    pub vport: u16,
    pub daddr: Ipv4Addr,
    pub dport: u16,
    /// FULLNAT source towards the real server (0.0.0.0:0 otherwise).
    pub laddr: Ipv4Addr,
    pub lport: u16,
}

/// Which counters an error is added to (`ip_vs_in_stats` / `ip_vs_out_stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Count {
    In,
    Out,
}

impl Ipvs {
    /// An error from the client side about one of our replies: the quoted
    /// packet is `VIP:vport → client:cport`, looked up reversed as the
    /// kernel's `conn_in_get` with `inverse`. Counted as incoming.
    pub fn related_to_reply(&mut self, q: &Quoted, len: u32, now: Instant) -> Option<Related> {
        let key = InKey::new(q.proto, false, q.daddr, q.dport, q.saddr, q.sport);
        let slot = self.conns.lookup_in(&key)?;
        self.related(slot, Count::In, len, now)
    }

    /// An error about a request this director tunnelled to a real server: the
    /// quoted packet is the inner one, `client:cport → VIP:vport`, looked up
    /// as it is. The kernel counts these as outgoing ("ICMP can be shorter but
    /// anyways, account it").
    pub fn related_to_tunnelled(&mut self, q: &Quoted, len: u32, now: Instant) -> Option<Related> {
        let key = InKey::new(q.proto, false, q.saddr, q.sport, q.daddr, q.dport);
        let slot = self.conns.lookup_in(&key)?;
        self.related(slot, Count::Out, len, now)
    }

    /// An error from a NAT / FULLNAT real server about a packet it received
    /// from us (`client:cport → RIP:rport`, or `LIP:lport → RIP:rport`),
    /// looked up reversed as the kernel's `conn_out_get`. Counted as outgoing.
    pub fn related_to_forwarded(&mut self, q: &Quoted, len: u32, now: Instant) -> Option<Related> {
        let key = OutKey::new(q.proto, q.daddr, q.dport, q.saddr, q.sport);
        let slot = self.conns.lookup_out(&key)?;
        self.related(slot, Count::Out, len, now)
    }

    /// True when `addr` is a live real server reached by IP-in-IP
    /// (`ip_vs_find_tunnel`): only errors about packets to such a server are
    /// taken for errors about our tunnel.
    pub fn is_tunnel_dest(&self, addr: Ipv4Addr) -> bool {
        self.services
            .iter()
            .flatten()
            .any(|s| s.dests.iter().any(|(_, d)| d.addr == addr && d.forward == Forward::Tun))
    }

    fn related(&mut self, slot: u32, count: Count, len: u32, now: Instant) -> Option<Related> {
        let c = self.conns.get(slot)?;
        if c.expires <= now {
            let at = c.expires;
            self.remove_conn(slot, at);
            return None;
        }
        let related = Related {
            forward: c.forward,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
            laddr: c.laddr,
            lport: c.lport,
        };
        let (svc, dest) = (c.svc, c.dest);
        let d = self.dest_of_mut(svc, dest);
        if d.available {
            let bump = |s: &mut super::Counters| match count {
                Count::In => {
                    s.inpkts += 1;
                    s.inbytes += u64::from(len);
                }
                Count::Out => {
                    s.outpkts += 1;
                    s.outbytes += u64::from(len);
                }
            };
            bump(&mut d.stats);
            bump(&mut self.services[svc as usize].as_mut().expect("live").stats);
        }
        Some(related)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{DestConfig, InVerdict, PacketIn, ServiceConfig, Sysctls, TcpFlags};
    use std::time::Duration;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 21);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 200);

    fn ipvs_with(forward: Forward) -> Ipvs {
        let mut ipvs = Ipvs::new(Sysctls::default());
        ipvs.set_fullnat_local_addrs(vec![LIP]);
        let svc = ipvs
            .add_service(ServiceConfig::new(Proto::Tcp, VIP, 80, crate::lvs::Scheduler::Rr))
            .unwrap();
        ipvs.add_dest(svc, DestConfig::new(RIP, 8080, 1, forward)).unwrap();
        ipvs
    }

    fn syn(now: Instant, ipvs: &mut Ipvs) -> (Ipv4Addr, u16) {
        let pkt = PacketIn {
            proto: Proto::Tcp,
            saddr: CLIENT,
            sport: 40000,
            daddr: VIP,
            dport: 80,
            tcp: Some(TcpFlags {
                syn: true,
                ..TcpFlags::default()
            }),
            len: 60,
        };
        match ipvs.process_in(&pkt, now) {
            InVerdict::Forward { snat, .. } => snat.unwrap_or((CLIENT, 40000)),
            other => panic!("not forwarded: {other:?}"),
        }
    }

    fn counters(ipvs: &Ipvs) -> crate::ipvs::Counters {
        ipvs.snapshot(Instant::now()).services[0].stats
    }

    #[test]
    fn an_error_about_a_reply_finds_the_entry_reversed_and_counts_in() {
        let now = Instant::now();
        let mut ipvs = ipvs_with(Forward::Nat);
        syn(now, &mut ipvs);
        let before = counters(&ipvs);
        let reply = Quoted {
            proto: Proto::Tcp,
            saddr: VIP,
            sport: 80,
            daddr: CLIENT,
            dport: 40000,
        };
        let r = ipvs.related_to_reply(&reply, 56, now).expect("entry found");
        assert_eq!((r.forward, r.daddr, r.dport), (Forward::Nat, RIP, 8080));
        assert_eq!((r.caddr, r.cport, r.vaddr, r.vport), (CLIENT, 40000, VIP, 80));
        let after = counters(&ipvs);
        assert_eq!((after.inpkts, after.inbytes), (before.inpkts + 1, before.inbytes + 56));
        assert_eq!(after.outpkts, before.outpkts);
        // Not reversed, the same tuple is a request nobody sent.
        let as_request = Quoted {
            saddr: CLIENT,
            sport: 40000,
            daddr: VIP,
            dport: 80,
            ..reply
        };
        assert!(ipvs.related_to_reply(&as_request, 56, now).is_none());
        assert!(ipvs.related_to_tunnelled(&as_request, 56, now).is_some());
    }

    #[test]
    fn an_error_from_a_fullnat_server_finds_the_entry_by_its_local_address() {
        let now = Instant::now();
        let mut ipvs = ipvs_with(Forward::FullNat);
        let (laddr, lport) = syn(now, &mut ipvs);
        assert_eq!(laddr, LIP);
        let received = Quoted {
            proto: Proto::Tcp,
            saddr: LIP,
            sport: lport,
            daddr: RIP,
            dport: 8080,
        };
        let r = ipvs.related_to_forwarded(&received, 56, now).expect("entry found");
        assert_eq!((r.laddr, r.lport, r.caddr, r.cport), (LIP, lport, CLIENT, 40000));
        assert_eq!(counters(&ipvs).outpkts, 1);
        let other_port = Quoted {
            sport: lport + 1,
            ..received
        };
        assert!(ipvs.related_to_forwarded(&other_port, 56, now).is_none());
    }

    #[test]
    fn expired_entries_have_no_errors_and_tunnel_dests_are_known() {
        let now = Instant::now();
        let mut ipvs = ipvs_with(Forward::Tun);
        syn(now, &mut ipvs);
        assert!(ipvs.is_tunnel_dest(RIP));
        assert!(!ipvs.is_tunnel_dest(CLIENT));
        let request = Quoted {
            proto: Proto::Tcp,
            saddr: CLIENT,
            sport: 40000,
            daddr: VIP,
            dport: 80,
        };
        let later = now + Duration::from_secs(3600);
        assert!(ipvs.related_to_tunnelled(&request, 56, later).is_none());
        assert_eq!(ipvs.conn_count(), 0, "the expired entry is gone");
        assert!(!ipvs_with(Forward::Dr).is_tunnel_dest(RIP));
    }
}
