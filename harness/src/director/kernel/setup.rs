//! What the director's namespace needs before kernel IPVS can serve:
//!
//! * every VIP as a local address, /32 on the client-facing interface (as
//!   keepalived's `virtual_ipaddress` puts it): IPVS only sees packets that
//!   reach LOCAL_IN, and the director must answer ARP for the VIP;
//! * NAT: `ip_forward=1`, since the replies are forwarded traffic that IPVS
//!   rewrites on the FORWARD hook;
//! * TUN: `accept_local=1` and `rp_filter=0`, so replies routed back through
//!   the director with the VIP as source are not dropped as martians; and TX
//!   checksum offload off on the server-facing interface. A veth keeps the
//!   client's partial TCP checksum inside the IPIP packet; a kernel `ipip`
//!   receiver copes, but lvslab's userspace decapsulator (raw socket → TUN,
//!   for kernels without ipip) hands on a packet whose checksum was never
//!   completed, and the real server drops it (TcpInCsumErrors). With the
//!   offload off, the director's kernel completes it before sending. With
//!   `complete_checksums = false` the offload is left on, to show that drop
//!   (`why-checksum-offload`);
//! * the `net.ipv4.vs.*` settings the scenario gives. Conntrack is not needed
//!   (`net.ipv4.vs.conntrack` stays 0);
//! * fwmark services: `ip rule add fwmark N lookup T` and `ip route add local 0.0.0.0/0 dev lo
//!   table T` per mark, the LVS transparent-cache recipe: a marked packet to an address the
//!   director does not hold is delivered locally, where IPVS's LOCAL_IN hook takes it. (The
//!   nft rules that set the marks are loaded by the run, for both engines.)
//!
//! Real servers are set up by the lab as for the embedded engine.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::packet_route::rule::RuleAction;
use rtnetlink::RouteMessageBuilder;

use crate::director::{DirectorConfig, DirectorError, Result};
use crate::ipvs::Forward;
use crate::lab::Host;
use crate::nft::mark::ROUTE_TABLE_BASE;

/// `lo` is interface 1 in every namespace.
const LOOPBACK_INDEX: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceSetup {
    /// (interface, address) pairs to add.
    pub addresses: Vec<(String, Ipv4Net)>,
    /// Written in order, after ip_vs is present (its sysctls exist only then).
    pub sysctls: Vec<(String, String)>,
    /// Interfaces whose TX checksum offload is switched off (`ethtool -K IF tx off`).
    pub tx_checksum_off: Vec<String>,
    /// (mark, routing table): `ip rule fwmark MARK lookup TABLE`, TABLE holding `local 0/0 dev lo`.
    pub mark_routes: Vec<(u32, u32)>,
}

pub fn plan(cfg: &DirectorConfig) -> NamespaceSetup {
    let mut addresses: Vec<(String, Ipv4Net)> = Vec::new();
    // With VRRP, the VIP is the master's alone: VRRP adds and removes it.
    let vrrp_holds_vips = cfg.vip_gate.is_some();
    for (svc, _) in cfg.services.iter().filter(|_| !vrrp_holds_vips) {
        let vip = Ipv4Net::from(svc.vip);
        if !addresses.iter().any(|(_, a)| *a == vip) {
            addresses.push((cfg.client_iface.clone(), vip));
        }
    }
    let uses = |f: Forward| cfg.services.iter().flat_map(|(_, d)| d).any(|d| d.forward == f);
    let mut sysctls: Vec<(String, String)> = Vec::new();
    let mut set = |k: String, v: &str| sysctls.push((k, v.to_string()));
    if uses(Forward::Nat) {
        set("net.ipv4.ip_forward".into(), "1");
    }
    if uses(Forward::Tun) {
        for scope in ["all", cfg.client_iface.as_str()] {
            set(format!("net.ipv4.conf.{scope}.accept_local"), "1");
            set(format!("net.ipv4.conf.{scope}.rp_filter"), "0");
        }
    }
    // `complete_checksums = false`: the offload stays on and the partial sums reach the real servers.
    let mut tx_checksum_off = if uses(Forward::Tun) && cfg.complete_checksums {
        vec![cfg.server_iface.clone()]
    } else {
        vec![]
    };
    // TUN beside a NAT/FULLNAT service: the tunnel servers may sit on the clients' side.
    if !tx_checksum_off.is_empty()
        && (uses(Forward::Nat) || uses(Forward::FullNat))
        && cfg.client_iface != cfg.server_iface
    {
        tx_checksum_off.push(cfg.client_iface.clone());
    }
    let s = &cfg.sysctls;
    set("net.ipv4.vs.conn_reuse_mode".into(), &s.conn_reuse_mode.to_string());
    set("net.ipv4.vs.expire_nodest_conn".into(), bit(s.expire_nodest_conn));
    set(
        "net.ipv4.vs.expire_quiescent_template".into(),
        bit(s.expire_quiescent_template),
    );
    set("net.ipv4.vs.sloppy_tcp".into(), bit(s.sloppy_tcp));
    let mut mark_routes: Vec<(u32, u32)> = Vec::new();
    for rule in &cfg.marks {
        let route = (rule.mark, ROUTE_TABLE_BASE.saturating_add(rule.mark));
        if !mark_routes.contains(&route) {
            mark_routes.push(route);
        }
    }
    NamespaceSetup {
        addresses,
        sysctls,
        tx_checksum_off,
        mark_routes,
    }
}

fn bit(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Applies the plan in the director's namespace. Call after the IPVS socket
/// is open there (that is what makes `net.ipv4.vs.*` appear).
pub async fn apply(host: &Host, setup: &NamespaceSetup) -> Result<()> {
    // Lab errors name the host and the step (`director: add 192.0.2.100/32 to eth0: ...`).
    // Idempotent: a director started again after a `stop` event finds its VIP still there.
    for (iface, addr) in &setup.addresses {
        host.addresses_of(iface)?.add(*addr).await?;
    }
    for iface in &setup.tx_checksum_off {
        let name = iface.clone();
        host.exec(move || tx_checksum_off(&name))
            .await?
            .map_err(|e| DirectorError::io(format!("TX checksum offload off on the director's {iface}"), e))?;
    }
    for (name, value) in &setup.sysctls {
        host.set_sysctl(name, value).await?;
    }
    for &(mark, table) in &setup.mark_routes {
        local_table_for_mark(host, mark, table).await?;
    }
    Ok(())
}

/// `ip route add local 0.0.0.0/0 dev lo table TABLE; ip rule add fwmark MARK lookup TABLE`.
async fn local_table_for_mark(host: &Host, mark: u32, table: u32) -> Result<()> {
    let fail = |step: &str, e: rtnetlink::Error| DirectorError::Ipvs {
        what: format!("fwmark {mark} delivery ({step})"),
        why: e.to_string(),
    };
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
        .kind(RouteType::Local)
        // As `ip route add local` sets it: the kernel refuses a local route wider in scope
        // than host (fib_props[RTN_LOCAL].scope) with EINVAL.
        .scope(RouteScope::Host)
        .table_id(table)
        .output_interface(LOOPBACK_INDEX)
        .build();
    // Already there (a director started again) is no error.
    let exists = |r: &std::result::Result<(), rtnetlink::Error>| matches!(r, Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EEXIST);
    let added = host.rtnl().route().add(route).execute().await;
    if !exists(&added) {
        added.map_err(|e| fail(&format!("local 0.0.0.0/0 dev lo table {table}"), e))?;
    }
    let added = host
        .rtnl()
        .rule()
        .add()
        .v4()
        .fw_mark(mark)
        .table_id(table)
        .action(RuleAction::ToTable)
        .execute()
        .await;
    if exists(&added) {
        return Ok(());
    }
    added.map_err(|e| fail(&format!("rule fwmark {mark} lookup {table}"), e))
}

/// `ethtool -K IFACE tx off` (ETHTOOL_STXCSUM), in the calling thread's namespace.
fn tx_checksum_off(iface: &str) -> std::io::Result<()> {
    const ETHTOOL_STXCSUM: u32 = 0x17;
    crate::sys::netdev::ethtool(iface, ETHTOOL_STXCSUM, 0).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::{DestConfig, ServiceConfig, Sysctls};
    use std::net::Ipv4Addr;

    fn cfg(forward: Forward) -> DirectorConfig {
        let vip = Ipv4Addr::new(192, 0, 2, 100);
        DirectorConfig {
            services: vec![(
                ServiceConfig::new(crate::ipvs::Proto::Tcp, vip, 80, crate::ipvs::Scheduler::Rr),
                vec![DestConfig::new(Ipv4Addr::new(192, 0, 2, 11), 80, 1, forward)],
            )],
            sysctls: Sysctls {
                expire_nodest_conn: true,
                ..Sysctls::default()
            },
            client_iface: "eth0".into(),
            server_iface: "eth1".into(),
            fullnat_local_addrs: vec![],
            vip_gate: None,
            marks: Vec::new(),
            complete_checksums: true,
        }
    }

    fn has(s: &NamespaceSetup, k: &str, v: &str) -> bool {
        s.sysctls.iter().any(|(a, b)| a == k && b == v)
    }

    #[test]
    fn tun_beside_nat_switches_the_offload_off_on_both_sides() {
        let mut c = cfg(Forward::Tun);
        assert_eq!(plan(&c).tx_checksum_off, ["eth1"]);
        let nat = ServiceConfig::new(
            crate::ipvs::Proto::Tcp,
            Ipv4Addr::new(192, 0, 2, 101),
            80,
            crate::ipvs::Scheduler::Rr,
        );
        let dest = DestConfig::new(Ipv4Addr::new(198, 51, 100, 11), 80, 1, Forward::Nat);
        c.services.push((nat, vec![dest]));
        let s = plan(&c);
        assert_eq!(s.tx_checksum_off, ["eth1", "eth0"]);
        assert!(has(&s, "net.ipv4.ip_forward", "1"), "the NAT destination");
        assert!(has(&s, "net.ipv4.conf.all.rp_filter", "0"), "the TUN destination");
    }

    #[test]
    fn vip_goes_on_the_client_interface_once() {
        let mut c = cfg(Forward::Dr);
        let second = ServiceConfig::new(
            crate::ipvs::Proto::Udp,
            Ipv4Addr::new(192, 0, 2, 100),
            53,
            crate::ipvs::Scheduler::Rr,
        );
        c.services.push((second, vec![]));
        let s = plan(&c);
        assert_eq!(
            s.addresses,
            vec![("eth0".to_string(), "192.0.2.100/32".parse().unwrap())]
        );
        assert!(
            !s.sysctls.iter().any(|(k, _)| k == "net.ipv4.ip_forward"),
            "DR leaves forwarding alone"
        );
        assert!(has(&s, "net.ipv4.vs.expire_nodest_conn", "1"));
        assert!(has(&s, "net.ipv4.vs.conn_reuse_mode", "1"));
    }

    #[test]
    fn each_mark_gets_a_local_table_for_policy_routing() {
        let mut c = cfg(Forward::Dr);
        assert!(plan(&c).mark_routes.is_empty());
        let rule = |mark: u32, port: u16| crate::nft::mark::MarkRule {
            mark,
            protocol: crate::ipvs::Proto::Tcp,
            addresses: vec!["203.0.113.0/26".parse().unwrap()],
            ports: vec![port],
        };
        c.marks = vec![rule(1, 80), rule(1, 443), rule(7, 80)];
        assert_eq!(plan(&c).mark_routes, vec![(1, 1001), (7, 1007)]);
    }

    #[test]
    fn nat_forwards_and_tun_accepts_local_sources() {
        assert!(has(&plan(&cfg(Forward::Nat)), "net.ipv4.ip_forward", "1"));
        let tun = plan(&cfg(Forward::Tun));
        assert!(has(&tun, "net.ipv4.conf.all.accept_local", "1"));
        assert!(has(&tun, "net.ipv4.conf.eth0.rp_filter", "0"));
        assert!(!has(&tun, "net.ipv4.ip_forward", "1"));
        assert_eq!(tun.tx_checksum_off, vec!["eth1".to_string()]);
        assert!(plan(&cfg(Forward::Dr)).tx_checksum_off.is_empty());
    }

    #[test]
    fn tun_leaves_tx_offload_on_when_told_not_to_complete_checksums() {
        let mut c = cfg(Forward::Tun);
        c.complete_checksums = false;
        let tun = plan(&c);
        assert!(tun.tx_checksum_off.is_empty(), "{tun:?}");
        assert!(
            has(&tun, "net.ipv4.conf.all.accept_local", "1"),
            "the rest of TUN's setup stays"
        );
    }

    #[test]
    fn tx_checksum_off_on_a_missing_interface_is_an_error() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root for SIOCETHTOOL");
            return;
        }
        let err = tx_checksum_off("lvslab-none0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
        assert!(tx_checksum_off("").is_err());
    }
}
