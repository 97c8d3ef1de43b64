//! [`IpvsSnapshot`] as ipvsadm 1.31 (Debian 12) prints it, byte for byte:
//! `-Ln` and its `--stats`, `--rate`, `--thresholds`, `--persistent-conn`
//! variants, `-Lnc`, and `-S -n` (`ipvsadm-save -n`).
//!
//! Each printf below is ipvsadm.c's (release commit a0e3834): `list_all`
//! (title line), `print_title` (column headers), `print_service_entry`
//! (service and dest rows, save lines), `print_tunnel_rule`,
//! `print_sched_flags`, `print_largenum`, `list_conn` and `print_conn`;
//! sorting is libipvs.c's `ipvs_cmp_services` / `ipvs_cmp_dests`.
//!
//! Only IPv4 services exist here (address and fwmark; no IPv6, no SCTP, no
//! persistence engine), so the `[v6]`, `pe` and `--sctp-service` branches of
//! those functions have nothing to print. The 33/28-character
//! cuts of the service and dest names never bite: `TCP  255.255.255.255:65535`
//! is 26 characters.

use std::fmt::Write;
use std::net::Ipv4Addr;

use super::{DestSnapshot, IpvsSnapshot, Rates, ServiceSnapshot};
use crate::ipvs::{Counters, Forward, Proto, Scheduler};

/// `print_largenum`: plain, or (no `--exact`) cut to a K/M/G/T suffix.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbers {
    Abbreviated,
    Exact,
}

/// Which `print_title` / `print_service_entry` branch a listing takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listing {
    Plain,
    Stats(Numbers),
    Rate(Numbers),
    Thresholds,
    PersistentConn,
}

impl IpvsSnapshot {
    /// `ipvsadm -Ln`.
    pub fn list_text(&self) -> String {
        self.listing(Listing::Plain)
    }

    /// `ipvsadm -Ln --stats`: totals, large ones cut to K/M/G/T.
    pub fn stats_text(&self) -> String {
        self.listing(Listing::Stats(Numbers::Abbreviated))
    }

    /// `ipvsadm -Ln --stats --exact`.
    pub fn stats_text_exact(&self) -> String {
        self.listing(Listing::Stats(Numbers::Exact))
    }

    /// `ipvsadm -Ln --rate`: CPS InPPS OutPPS InBPS OutBPS. The embedded
    /// engine estimates no rates, so its rows are zeros; the kernel engine
    /// reports the estimator's values.
    pub fn rate_text(&self) -> String {
        self.listing(Listing::Rate(Numbers::Abbreviated))
    }

    /// `ipvsadm -Ln --rate --exact`.
    pub fn rate_text_exact(&self) -> String {
        self.listing(Listing::Rate(Numbers::Exact))
    }

    /// `ipvsadm -Ln --thresholds`: Uthreshold Lthreshold ActiveConn InActConn.
    pub fn thresholds_text(&self) -> String {
        self.listing(Listing::Thresholds)
    }

    /// `ipvsadm -Ln --persistent-conn`: Weight PersistConn ActiveConn
    /// InActConn, PersistConn being the persistence templates bound to the
    /// dest. ipvsadm prints no Forward column in this view.
    pub fn persistent_conn_text(&self) -> String {
        self.listing(Listing::PersistentConn)
    }

    /// `ipvsadm -S -n` (= `ipvsadm-save -n`): the commands that rebuild the
    /// table. ipvsadm saves neither thresholds (`-x`/`-y`) nor counters;
    /// LOCALNODE dests save as `-g`, tunnel dests get `--tun-type ipip`, and
    /// a method ipvsadm cannot name (FULLNAT) prints as `(null)`, as stock
    /// ipvsadm does on a FULLNAT kernel.
    pub fn save_text(&self) -> String {
        let mut out = String::new();
        for (s, dests) in self.sorted() {
            let svc = match s.fwmark {
                0 => format!("{} {}:{}", s.proto.switch(), s.vip, s.port),
                mark => format!("-f {mark}"),
            };
            let _ = write!(out, "-A {svc} -s {}", s.scheduler);
            if let Some(timeout) = s.persistent {
                let _ = write!(out, " -p {timeout}");
                if s.netmask != Ipv4Addr::BROADCAST {
                    let _ = write!(out, " -M {}", s.netmask);
                }
            }
            if s.one_packet {
                out.push_str(" -o");
            }
            if let Some(flags) = sched_flags_text(s) {
                let _ = write!(out, " -b {flags}");
            }
            out.push('\n');
            for d in dests {
                let _ = write!(
                    out,
                    "-a {svc} -r {}:{} {} -w {}",
                    d.addr,
                    d.port,
                    forward_switch(d),
                    d.weight
                );
                if d.forward == Forward::Tun {
                    // 1.31 reads TUN_TYPE (zeroed = IPIP when absent), so every
                    // tunnel dest carries it; lvslab tunnels are IPIP.
                    out.push_str(" --tun-type ipip");
                }
                out.push('\n');
            }
        }
        out
    }

    /// `ipvsadm -Lnc` (templates included, as /proc/net/ip_vs_conn shows them).
    pub fn conns_text(&self) -> String {
        let mut out = String::from("IPVS connection entries\n");
        // "pro expire %-11s %-18s %-18s %s\n" of state, source, virtual, destination.
        out.push_str("pro expire state       source             virtual            destination\n");
        for c in &self.conns {
            // A fwmark service's template is keyed <client, 0, mark as 0.0.0.N, 0> with protocol
            // IPPROTO_IP (ip_vs_sched_persist), which ipvsadm names "IP". One whose server left
            // the table has its ports set to 0xffff (ip_vs_check_template invalidates it).
            let fwmark_template =
                c.template && matches!(c.to.port(), 0 | 0xffff) && c.to.ip().octets()[..3] == [0, 0, 0];
            let proto = if fwmark_template { "IP" } else { c.proto.name() };
            let _ = writeln!(
                out,
                "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
                proto,
                format!("{:02}:{:02}", c.expires / 60, c.expires % 60),
                c.state,
                c.from.to_string(),
                c.to.to_string(),
                c.dest
            );
        }
        out
    }

    /// `list_all` without FMT_RULE: version line, `print_title`, then every
    /// service with its dests.
    fn listing(&self, kind: Listing) -> String {
        let mut out = format!("IP Virtual Server version 1.2.1 (size={})\n", self.conn_tab_size);
        out.push_str(title(kind));
        for (s, dests) in self.sorted() {
            let name = match s.fwmark {
                0 => format!("{:<4} {}:{}", s.proto.name(), s.vip, s.port),
                mark => format!("FWM  {mark}"),
            };
            match kind {
                Listing::Stats(numbers) => {
                    let _ = writeln!(out, "{name:<33}{}", counters(&s.stats, numbers));
                }
                Listing::Rate(numbers) => {
                    let r = &s.rates;
                    let values = [r.cps, r.inpps, r.outpps, r.inbps, r.outbps];
                    let _ = writeln!(out, "{name:<33}{}", largenums(&values, numbers));
                }
                _ => {
                    let _ = writeln!(out, "{name} {}", service_options(s));
                }
            }
            for d in dests {
                let addr = format!("{}:{}", d.addr, d.port);
                let _ = match kind {
                    Listing::Plain => writeln!(
                        out,
                        "  -> {addr:<28} {:<7} {:<6} {:<10} {:<10}",
                        forward_name(d),
                        d.weight,
                        d.active_conns,
                        d.inact_conns
                    ),
                    Listing::Stats(numbers) => {
                        writeln!(out, "  -> {addr:<28}{}", counters(&dest_counters(&d.stats), numbers))
                    }
                    Listing::Rate(numbers) => {
                        let r = dest_rates(&d.rates);
                        // CPS/InPPS/OutPPS are plain `%8llu` here, never cut.
                        writeln!(
                            out,
                            "  -> {addr:<28} {:>8} {:>8} {:>8}{}",
                            r.cps,
                            r.inpps,
                            r.outpps,
                            largenums(&[r.inbps, r.outbps], numbers)
                        )
                    }
                    Listing::Thresholds => writeln!(
                        out,
                        "  -> {addr:<28} {:<10} {:<10} {:<10} {:<10}",
                        d.u_threshold, d.l_threshold, d.active_conns, d.inact_conns
                    ),
                    Listing::PersistentConn => writeln!(
                        out,
                        "  -> {addr:<28} {:<9} {:<11} {:<10} {:<10}",
                        d.weight, d.persist_conns, d.active_conns, d.inact_conns
                    ),
                };
            }
        }
        out
    }

    /// Services and dests in ipvsadm's sort order.
    pub fn sorted(&self) -> Vec<(&ServiceSnapshot, Vec<&DestSnapshot>)> {
        let mut svcs: Vec<&ServiceSnapshot> = self.services.iter().collect();
        msort(&mut svcs, &|a, b| service_cmp(a, b));
        svcs.into_iter()
            .map(|s| {
                let mut d: Vec<&DestSnapshot> = s.dests.iter().collect();
                msort(&mut d, &|a, b| dest_cmp(a, b));
                (s, d)
            })
            .collect()
    }
}

/// `print_title`: the header lines after the version line.
fn title(kind: Listing) -> &'static str {
    match kind {
        Listing::Plain => concat!(
            "Prot LocalAddress:Port Scheduler Flags\n",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        ),
        // "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
        Listing::Stats(_) => concat!(
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
            "  -> RemoteAddress:Port\n"
        ),
        Listing::Rate(_) => concat!(
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n",
            "  -> RemoteAddress:Port\n"
        ),
        // "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
        Listing::Thresholds => concat!(
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n"
        ),
        // "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
        Listing::PersistentConn => concat!(
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n",
            "  -> RemoteAddress:Port\n"
        ),
    }
}

/// After `PROTO VIP:PORT` on a service row: `sched [(flags)] [persistent N
/// [mask M]] [ops]`.
fn service_options(s: &ServiceSnapshot) -> String {
    let mut out = s.scheduler.clone();
    if let Some(flags) = sched_flags_text(s) {
        let _ = write!(out, " ({flags})");
    }
    if let Some(timeout) = s.persistent {
        let _ = write!(out, " persistent {timeout}");
        if s.netmask != Ipv4Addr::BROADCAST {
            let _ = write!(out, " mask {}", s.netmask);
        }
    }
    if s.one_packet {
        out.push_str(" ops");
    }
    out
}

/// `print_sched_flags`: SCHED1/SCHED2 named after sh or mh, else flag-N.
fn sched_flags_text(s: &ServiceSnapshot) -> Option<String> {
    // One kernel bit each: IP_VS_SVC_F_SCHED1 is both *-fallback, SCHED2 both *-port.
    let sched1 = s.flags.sh_fallback || s.flags.mh_fallback;
    let sched2 = s.flags.sh_port || s.flags.mh_port;
    let (name1, name2) = flag_names(&s.scheduler);
    let names: Vec<&str> = [(sched1, name1), (sched2, name2)]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// The names of SCHED1/SCHED2 for a scheduler the kernel reported; ipvsadm's flag-N for
/// one lvslab does not know.
fn flag_names(scheduler: &str) -> (&'static str, &'static str) {
    scheduler
        .parse::<Scheduler>()
        .map_or(("flag-1", "flag-2"), |s| s.info().flag_names)
}

/// `fwd_name`; FULLNAT as the forks that have it name it.
fn forward_name(d: &DestSnapshot) -> &'static str {
    if d.local_node {
        "Local"
    } else {
        d.forward.name()
    }
}

/// `fwd_switch`: NULL (printed `(null)` by glibc) for FULLNAT.
fn forward_switch(d: &DestSnapshot) -> &'static str {
    match d.forward {
        _ if d.local_node => "-g",
        Forward::Dr => "-g",
        Forward::Nat => "-m",
        Forward::Tun => "-i",
        Forward::FullNat => "(null)",
    }
}

fn counters(c: &Counters, numbers: Numbers) -> String {
    largenums(&[c.conns, c.inpkts, c.outpkts, c.inbytes, c.outbytes], numbers)
}

fn largenums(values: &[u64], numbers: Numbers) -> String {
    values.iter().map(|&v| largenum(v, numbers)).collect()
}

/// `print_largenum`. `--exact` prints `%*llu` with width max(9, digits + 1),
/// which is a blank and then `%8llu`.
fn largenum(i: u64, numbers: Numbers) -> String {
    if numbers == Numbers::Exact {
        return format!(" {i:>8}");
    }
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

/// libipvs 1.31 decodes a dest's STATS64 with its 32-bit decoder
/// (`ipvs_dests_parse_cb` calls `ipvs_parse_stats`): `nla_get_u32` on the
/// 8-byte counts keeps their low half (x86 is little-endian); the byte
/// counts are read whole. Services use the 64-bit decoder.
fn dest_counters(c: &Counters) -> Counters {
    Counters {
        conns: low32(c.conns),
        inpkts: low32(c.inpkts),
        outpkts: low32(c.outpkts),
        inbytes: c.inbytes,
        outbytes: c.outbytes,
    }
}

/// The same 32-bit read of a dest's rates (all five are `nla_get_u32` there).
fn dest_rates(r: &Rates) -> Rates {
    Rates {
        cps: low32(r.cps),
        inpps: low32(r.inpps),
        outpps: low32(r.outpps),
        inbps: low32(r.inbps),
        outbps: low32(r.outbps),
    }
}

fn low32(v: u64) -> u64 {
    v & u64::from(u32::MAX)
}

/// glibc qsort is a merge sort; ipvsadm's comparators are not transitive
/// (wrapping address difference), so reproduce the merge order exactly.
fn msort<T: Copy>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i64) {
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
            out.push(v[i]);
            i += 1;
        } else {
            out.push(v[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&v[i..n1]);
    out.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&out);
}

/// `(int)(ntohl(a) - ntohl(b))`.
fn addr_diff(a: Ipv4Addr, b: Ipv4Addr) -> i64 {
    u32::from(a).wrapping_sub(u32::from(b)) as i32 as i64
}

fn proto_num(p: Proto) -> i64 {
    i64::from(p.number())
}

/// `ipvs_cmp_services` (fwmark and af are equal for every service here).
fn service_cmp(a: &ServiceSnapshot, b: &ServiceSnapshot) -> i64 {
    // `s1->fwmark - s2->fwmark` first: address services (mark 0) before fwmark ones.
    let r = a.fwmark as i64 - b.fwmark as i64;
    if r != 0 {
        return r;
    }
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

/// `ipvs_cmp_dests`.
fn dest_cmp(a: &DestSnapshot, b: &DestSnapshot) -> i64 {
    let r = addr_diff(a.addr, b.addr);
    if r != 0 {
        return r;
    }
    a.port as i64 - b.port as i64
}
