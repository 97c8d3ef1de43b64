//! The kernel's state (netlink dumps + `/proc/net/ip_vs_conn`) as an
//! [`ipvs::IpvsSnapshot`], so `--show-ipvs` and the diagnosis read the same
//! views whichever engine ran.

use std::net::Ipv4Addr;

use super::objects::{counters_of, forward_of, fwd, rates_of, sched_flags_of, svc_flags, KernelDest, KernelService};
use super::proc_conn::ProcConn;
use crate::ipvs::{ConnSnapshot, DestSnapshot, Forward, IpvsSnapshot, ServiceSnapshot};

pub fn build(conn_tab_size: u32, services: &[(KernelService, Vec<KernelDest>)], conns: &[ProcConn]) -> IpvsSnapshot {
    let services: Vec<ServiceSnapshot> = services
        .iter()
        .enumerate()
        .map(|(i, (s, dests))| ServiceSnapshot {
            id: i as u32,
            proto: s.key.proto,
            vip: s.key.vip,
            port: s.key.port,
            scheduler: s.scheduler.clone(),
            flags: sched_flags_of(&s.scheduler, s.flags),
            persistent: (s.flags & svc_flags::PERSISTENT != 0).then_some(u64::from(s.timeout)),
            netmask: s.netmask,
            one_packet: s.flags & svc_flags::ONEPACKET != 0,
            stats: counters_of(&s.stats),
            rates: rates_of(&s.stats),
            dests: dests
                .iter()
                .map(|d| DestSnapshot {
                    addr: d.addr,
                    port: d.port,
                    forward: forward_of(d.fwd_method),
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    active_conns: d.active_conns,
                    inact_conns: d.inact_conns,
                    persist_conns: d.persist_conns,
                    // Not exported by the kernel (no attribute for it).
                    overloaded: false,
                    local_node: d.fwd_method & fwd::MASK == fwd::LOCALNODE,
                    stats: counters_of(&d.stats),
                    rates: rates_of(&d.stats),
                })
                .collect(),
            fwmark: s.key.fwmark,
        })
        .collect();
    let conns = conns
        .iter()
        .map(|c| {
            let template = is_template(c);
            ConnSnapshot {
                proto: c.proto,
                from: c.from,
                to: c.to,
                dest: c.dest,
                local: None,
                forward: forward_for(&services, c, template),
                state: c.state.clone(),
                template,
                expires: c.expires,
            }
        })
        .collect();
    IpvsSnapshot {
        conn_tab_size,
        services,
        conns,
    }
}

/// /proc does not flag templates: they are the rows with client port 0 in the
/// template states (a real connection has a port and a TCP/UDP state; ASSURED
/// only exists for templates).
fn is_template(c: &ProcConn) -> bool {
    c.state == "ASSURED" || (c.from.port() == 0 && c.state == "NONE")
}

/// /proc does not show the forwarding method either: take the destination's.
/// Templates of port-zero services carry virtual port 0, so match on the
/// address alone for them.
fn forward_for(services: &[ServiceSnapshot], c: &ProcConn, template: bool) -> Forward {
    let vip: Ipv4Addr = *c.to.ip();
    services
        .iter()
        .filter(|s| s.vip == vip && s.proto == c.proto && (s.port == c.to.port() || template))
        .flat_map(|s| &s.dests)
        .find(|d| d.addr == *c.dest.ip() && (d.port == c.dest.port() || template))
        .map(|d| d.forward)
        .unwrap_or(Forward::Dr)
}

#[cfg(test)]
mod tests {
    use super::super::genl::Stats;
    use super::*;
    use crate::director::ServiceKey;
    use crate::ipvs::Proto;

    fn service() -> KernelService {
        KernelService {
            key: ServiceKey::new(Proto::Tcp, Ipv4Addr::new(192, 0, 2, 100), 80),
            scheduler: "sh".into(),
            flags: svc_flags::PERSISTENT | svc_flags::SCHED1,
            timeout: 360,
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            pe_name: None,
            stats: Stats {
                conns: 40,
                inpkts: 612,
                inbytes: 123,
                ..Default::default()
            },
        }
    }

    fn dest(last: u8, method: u32, weight: u32, active: u32) -> KernelDest {
        KernelDest {
            addr: Ipv4Addr::new(192, 0, 2, last),
            port: 80,
            fwd_method: method,
            weight,
            u_threshold: 0,
            l_threshold: 0,
            active_conns: active,
            inact_conns: 2,
            persist_conns: 1,
            stats: Stats {
                conns: 13,
                inpkts: 204,
                inbytes: 13786,
                ..Default::default()
            },
        }
    }

    fn conn(from: &str, dest: &str, state: &str) -> ProcConn {
        ProcConn {
            proto: Proto::Tcp,
            from: from.parse().unwrap(),
            to: "192.0.2.100:80".parse().unwrap(),
            dest: dest.parse().unwrap(),
            state: state.into(),
            expires: 100,
        }
    }

    #[test]
    fn services_dests_and_conns_map_to_the_shared_views() {
        let snap = build(
            4096,
            &[(
                service(),
                vec![dest(12, fwd::DROUTE, 1, 3), dest(11, fwd::DROUTE, 2, 5)],
            )],
            &[
                conn("192.0.2.201:40000", "192.0.2.12:80", "ESTABLISHED"),
                conn("192.0.2.0:0", "192.0.2.12:80", "ASSURED"),
            ],
        );
        let s = &snap.services[0];
        assert_eq!(s.persistent, Some(360));
        assert!(s.flags.sh_fallback && !s.flags.mh_fallback && !s.flags.sh_port);
        assert_eq!(s.stats.inpkts, 612);
        // Kernel order kept (newest first); views sort by address themselves.
        assert_eq!(s.dests[0].addr, Ipv4Addr::new(192, 0, 2, 12));
        assert_eq!(
            (s.dests[1].weight, s.dests[1].active_conns, s.dests[1].forward),
            (2, 5, Forward::Dr)
        );
        assert!(!snap.conns[0].template && snap.conns[1].template);
        assert_eq!(snap.conns[0].forward, Forward::Dr);

        let list = snap.list_text();
        assert!(
            list.contains("TCP  192.0.2.100:80 sh (sh-fallback) persistent 360 mask 255.255.255.0\n"),
            "{list}"
        );
        let rows: Vec<&str> = list.lines().filter(|l| l.starts_with("  -> 192")).collect();
        assert_eq!(
            rows[0],
            "  -> 192.0.2.11:80                Route   2      5          2         "
        );
        assert!(snap.conns_text().contains("TCP 01:40  ESTABLISHED 192.0.2.201:40000"));
    }

    #[test]
    fn masq_and_tunnel_methods_show_as_nat_and_tun() {
        let mut svc = service();
        svc.flags = svc_flags::ONEPACKET;
        let snap = build(
            4096,
            &[(
                svc,
                vec![
                    dest(11, fwd::MASQ, 1, 0),
                    dest(12, fwd::TUNNEL, 1, 0),
                    dest(13, fwd::LOCALNODE, 1, 0),
                ],
            )],
            &[conn("192.0.2.201:40000", "192.0.2.11:80", "SYN_RECV")],
        );
        let s = &snap.services[0];
        assert_eq!(s.persistent, None);
        assert!(s.one_packet);
        let fwds: Vec<Forward> = s.dests.iter().map(|d| d.forward).collect();
        assert_eq!(fwds, [Forward::Nat, Forward::Tun, Forward::Dr]);
        assert_eq!(snap.conns[0].forward, Forward::Nat);
    }

    #[test]
    fn rates_and_localnode_reach_the_rate_and_list_views() {
        let mut svc = service();
        svc.stats.cps = 4;
        svc.stats.inbps = 3000;
        let mut local = dest(13, fwd::LOCALNODE, 1, 0);
        local.stats.inpps = 40;
        let snap = build(4096, &[(svc, vec![local])], &[]);
        assert_eq!((snap.services[0].rates.cps, snap.services[0].rates.inbps), (4, 3000));
        assert_eq!(snap.services[0].dests[0].rates.inpps, 40);
        assert!(snap.services[0].dests[0].local_node);
        assert!(snap.list_text().contains("  -> 192.0.2.13:80                Local   1"));
        assert!(snap.save_text().contains("-r 192.0.2.13:80 -g -w 1\n"));
        assert!(snap
            .rate_text()
            .contains("TCP  192.0.2.100:80                      4        0        0     3000        0\n"));
    }
}
