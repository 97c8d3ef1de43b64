//! Snapshots (serde) and text views in the exact columns of ipvsadm 1.29+/1.31:
//! `ipvsadm -Ln`, `-Ln --stats`, `-Lnc` (ipvsadm.c print_title,
//! print_service_entry, print_largenum, print_conn).
//!
//! Call [`super::Ipvs::expire`] before [`super::Ipvs::snapshot`] for exact
//! counters: a snapshot does not mutate, so entries past their expiry that
//! nobody swept yet are left out of the rows but still counted in the dests.

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Counters, Forward, Ipvs, Proto, SchedFlags};

/// IP_VS_CONN_TAB_SIZE with the default conn_tab_bits 12.
pub const CONN_TAB_SIZE: u32 = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IpvsSnapshot {
    pub conn_tab_size: u32,
    pub services: Vec<ServiceSnapshot>,
    /// Connections and templates (table order).
    pub conns: Vec<ConnSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    pub id: u32,
    pub proto: Proto,
    pub vip: Ipv4Addr,
    pub port: u16,
    pub scheduler: String,
    pub flags: SchedFlags,
    /// Persistence timeout in seconds.
    pub persistent: Option<u64>,
    pub netmask: Ipv4Addr,
    pub one_packet: bool,
    pub stats: Counters,
    /// Kernel list order (newest first), as netlink dumps them.
    pub dests: Vec<DestSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestSnapshot {
    pub addr: Ipv4Addr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub u_threshold: u32,
    pub l_threshold: u32,
    pub active_conns: u32,
    pub inact_conns: u32,
    pub persist_conns: u32,
    /// IP_VS_DEST_F_OVERLOAD (invisible in ipvsadm; shown for diagnosis).
    pub overloaded: bool,
    pub stats: Counters,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnSnapshot {
    pub proto: Proto,
    pub from: SocketAddrV4,
    pub to: SocketAddrV4,
    pub dest: SocketAddrV4,
    /// FULLNAT local address used towards the real server.
    pub local: Option<SocketAddrV4>,
    pub forward: Forward,
    /// NONE/ESTABLISHED/…/UDP, or NONE/ASSURED for templates.
    pub state: String,
    pub template: bool,
    /// Whole seconds until expiry (the /proc column).
    pub expires: u64,
}

pub(super) fn snapshot(ipvs: &Ipvs, now: Instant) -> IpvsSnapshot {
    let services = ipvs
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
        .map(|(i, s)| ServiceSnapshot {
            id: i as u32,
            proto: s.cfg.proto,
            vip: s.cfg.vip,
            port: s.cfg.port,
            scheduler: s.cfg.scheduler.clone(),
            flags: s.cfg.flags,
            persistent: s.cfg.persistence.map(|d| d.as_secs()),
            netmask: s.cfg.persistence_netmask,
            one_packet: s.cfg.one_packet,
            stats: s.stats,
            dests: s
                .dests
                .iter()
                .map(|(_, d)| DestSnapshot {
                    addr: d.addr,
                    port: d.port,
                    forward: d.forward,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                    active_conns: d.active,
                    inact_conns: d.inactive,
                    persist_conns: d.persist,
                    overloaded: d.overloaded,
                    stats: d.stats,
                })
                .collect(),
        })
        .collect();
    let conns = ipvs
        .conns
        .iter()
        .filter(|(_, c)| c.expires > now || (c.is_template() && c.n_control > 0))
        .map(|(_, c)| ConnSnapshot {
            proto: c.proto,
            from: SocketAddrV4::new(c.caddr, c.cport),
            to: SocketAddrV4::new(c.vaddr, c.vport),
            dest: SocketAddrV4::new(c.daddr, c.dport),
            local: (c.forward == Forward::FullNat && !c.is_template()).then(|| SocketAddrV4::new(c.laddr, c.lport)),
            forward: c.forward,
            state: c.state.name().to_string(),
            template: c.is_template(),
            expires: c.expires.saturating_duration_since(now).as_secs(),
        })
        .collect();
    IpvsSnapshot {
        conn_tab_size: CONN_TAB_SIZE,
        services,
        conns,
    }
}

/// glibc qsort is a merge sort; ipvsadm's comparators are not transitive
/// (wrapping address difference), so reproduce the merge order exactly.
fn msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i64) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort(&mut v[..n1], cmp);
    msort(&mut v[n1..], cmp);
    let (mut i, mut j) = (0, n1);
    let mut out = Vec::with_capacity(n);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            out.push(v[i].clone());
            i += 1;
        } else {
            out.push(v[j].clone());
            j += 1;
        }
    }
    out.extend_from_slice(&v[i..n1]);
    out.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&out);
}

/// `(int)(ntohl(a) - ntohl(b))`.
fn addr_diff(a: Ipv4Addr, b: Ipv4Addr) -> i64 {
    u32::from(a).wrapping_sub(u32::from(b)) as i32 as i64
}

fn proto_num(p: Proto) -> i64 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    }
}

fn service_cmp(a: &ServiceSnapshot, b: &ServiceSnapshot) -> i64 {
    let r = proto_num(a.proto) - proto_num(b.proto);
    if r != 0 {
        return r;
    }
    let r = addr_diff(a.vip, b.vip);
    if r != 0 {
        return r;
    }
    a.port as i64 - b.port as i64
}

fn dest_cmp(a: &DestSnapshot, b: &DestSnapshot) -> i64 {
    let r = addr_diff(a.addr, b.addr);
    if r != 0 {
        return r;
    }
    a.port as i64 - b.port as i64
}

fn sched_flags_text(s: &ServiceSnapshot) -> Option<String> {
    let f1 = s.flags.sh_fallback || s.flags.mh_fallback;
    let f2 = s.flags.sh_port || s.flags.mh_port;
    if !f1 && !f2 {
        return None;
    }
    let (n1, n2) = match s.scheduler.as_str() {
        "sh" => ("sh-fallback", "sh-port"),
        "mh" => ("mh-fallback", "mh-port"),
        _ => ("flag-1", "flag-2"),
    };
    let names: Vec<&str> = [(f1, n1), (f2, n2)].iter().filter(|x| x.0).map(|x| x.1).collect();
    Some(names.join(","))
}

/// `print_largenum` without --exact.
fn largenum(i: u64) -> String {
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1_000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

impl IpvsSnapshot {
    fn title(&self) -> String {
        format!("IP Virtual Server version 1.2.1 (size={})\n", self.conn_tab_size)
    }

    /// Services and dests in ipvsadm's sort order.
    fn sorted(&self) -> Vec<(ServiceSnapshot, Vec<DestSnapshot>)> {
        let mut svcs = self.services.clone();
        msort(&mut svcs, &service_cmp);
        svcs.into_iter()
            .map(|s| {
                let mut d = s.dests.clone();
                msort(&mut d, &dest_cmp);
                (s, d)
            })
            .collect()
    }

    /// `ipvsadm -Ln`.
    pub fn list_text(&self) -> String {
        let mut out = self.title();
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        for (s, dests) in self.sorted() {
            let _ = write!(out, "{:<4} {}:{} {}", s.proto.name(), s.vip, s.port, s.scheduler);
            if let Some(f) = sched_flags_text(&s) {
                let _ = write!(out, " ({f})");
            }
            if let Some(p) = s.persistent {
                let _ = write!(out, " persistent {p}");
                if s.netmask != Ipv4Addr::BROADCAST {
                    let _ = write!(out, " mask {}", s.netmask);
                }
            }
            if s.one_packet {
                out.push_str(" ops");
            }
            out.push('\n');
            for d in dests {
                let _ = writeln!(
                    out,
                    "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
                    format!("{}:{}", d.addr, d.port),
                    d.forward.name(),
                    d.weight,
                    d.active_conns,
                    d.inact_conns
                );
            }
        }
        out
    }

    /// `ipvsadm -Ln --stats`.
    pub fn stats_text(&self) -> String {
        let mut out = self.title();
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
        out.push_str("  -> RemoteAddress:Port\n");
        let nums = |c: &Counters| {
            [c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes]
                .iter()
                .map(|&n| largenum(n))
                .collect::<String>()
        };
        for (s, dests) in self.sorted() {
            let name = format!("{:<4} {}:{}", s.proto.name(), s.vip, s.port);
            let _ = writeln!(out, "{:<33}{}", name, nums(&s.stats));
            for d in dests {
                let _ = writeln!(out, "  -> {:<28}{}", format!("{}:{}", d.addr, d.port), nums(&d.stats));
            }
        }
        out
    }

    /// `ipvsadm -Lnc` (templates included, as /proc/net/ip_vs_conn shows them).
    pub fn conns_text(&self) -> String {
        let mut out = String::from("IPVS connection entries\n");
        out.push_str("pro expire state       source             virtual            destination\n");
        for c in &self.conns {
            let _ = writeln!(
                out,
                "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
                c.proto.name(),
                format!("{:02}:{:02}", c.expires / 60, c.expires % 60),
                c.state,
                c.from.to_string(),
                c.to.to_string(),
                c.dest
            );
        }
        out
    }
}
