//! Every ipvsadm view of one hand-made table. The expected texts were
//! written with ipvsadm.c 1.31's own printf formats (shell `printf` with the
//! same conversions), not with this module's code: `print_title`,
//! `print_service_entry`, `print_largenum`, `print_tunnel_rule`, `list_conn`,
//! `print_conn`.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{ConnSnapshot, DestSnapshot, IpvsSnapshot, Rates, ServiceSnapshot};
use crate::ipvs::{Counters, Forward, Proto, SchedFlags};

fn counters(conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) -> Counters {
    Counters {
        conns,
        inpkts,
        outpkts,
        inbytes,
        outbytes,
    }
}

fn rates(cps: u64, inpps: u64, outpps: u64, inbps: u64, outbps: u64) -> Rates {
    Rates {
        cps,
        inpps,
        outpps,
        inbps,
        outbps,
    }
}

fn service(proto: Proto, vip: [u8; 4], port: u16, scheduler: &str) -> ServiceSnapshot {
    ServiceSnapshot {
        id: 0,
        proto,
        vip: Ipv4Addr::from(vip),
        port,
        scheduler: scheduler.into(),
        flags: SchedFlags::default(),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST,
        one_packet: false,
        stats: Counters::default(),
        rates: Rates::default(),
        dests: vec![],
        fwmark: 0,
    }
}

/// `(active, inactive, persist)` connection counts.
fn dest(addr: [u8; 4], port: u16, forward: Forward, weight: u32, conns: (u32, u32, u32)) -> DestSnapshot {
    DestSnapshot {
        addr: Ipv4Addr::from(addr),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
        active_conns: conns.0,
        inact_conns: conns.1,
        persist_conns: conns.2,
        overloaded: false,
        local_node: false,
        stats: Counters::default(),
        rates: Rates::default(),
    }
}

fn conn(proto: Proto, expires: u64, state: &str, from: &str, to: &str, dest: &str, template: bool) -> ConnSnapshot {
    let addr = |s: &str| s.parse::<SocketAddrV4>().unwrap();
    ConnSnapshot {
        proto,
        from: addr(from),
        to: addr(to),
        dest: addr(dest),
        local: None,
        forward: Forward::Dr,
        state: state.into(),
        template,
        expires,
    }
}

/// Four services in an order ipvsadm's sort must change (10.1.0.1 sorts after
/// 207.175.44.110: the comparator's wrapping difference), dests newest-first
/// as the kernel lists them.
pub(crate) fn table() -> IpvsSnapshot {
    let mut web = service(Proto::Tcp, [207, 175, 44, 110], 80, "wlc");
    web.persistent = Some(300);
    web.netmask = Ipv4Addr::new(255, 255, 255, 0);
    web.stats = counters(14209, 123_456_789, 0, 123_456_789_012, 99_999_999);
    web.rates = rates(12, 340, 0, 123_456_789, 0);
    let mut drained = dest([172, 16, 0, 3], 80, Forward::Dr, 0, (0, 4, 0));
    // Past 2^32: ipvsadm reads a dest's counts with its 32-bit decoder.
    drained.stats = counters((1 << 32) + 7, 12, 0, 1_000_000_000, 0);
    let mut busy = dest([172, 16, 0, 2], 80, Forward::Dr, 2, (3, 12, 2));
    busy.u_threshold = 100;
    busy.l_threshold = 10;
    busy.stats = counters(13, 204, 0, 13786, 100_000_000_000_000);
    busy.rates = rates(123_456_789, 40, 0, 2_500_000_000, 0);
    web.dests = vec![drained, busy];

    let mut dns = service(Proto::Udp, [10, 0, 0, 10], 53, "rr");
    dns.one_packet = true;
    dns.stats = counters(7, 7, 7, 420, 560);
    let mut resolver = dest([192, 168, 1, 5], 53, Forward::Nat, 1, (0, 7, 0));
    resolver.stats = dns.stats;
    dns.dests = vec![resolver];

    let mut hashed = service(Proto::Tcp, [10, 1, 0, 1], 8080, "sh");
    hashed.flags.sh_fallback = true;
    hashed.flags.sh_port = true;
    let mut itself = dest([10, 1, 0, 1], 8080, Forward::Dr, 1, (0, 0, 0));
    itself.local_node = true;
    hashed.dests = vec![
        dest([10, 2, 0, 1], 9000, Forward::Nat, 1, (1, 0, 0)),
        dest([10, 3, 0, 1], 8080, Forward::Tun, 65535, (0, 0, 0)),
        itself,
    ];

    // A scheduler flag on a scheduler ipvsadm has no names for, and FULLNAT.
    let mut fullnat = service(Proto::Tcp, [198, 51, 100, 1], 443, "rr");
    fullnat.flags.sh_port = true;
    fullnat.dests = vec![dest([198, 51, 100, 20], 443, Forward::FullNat, 1, (1, 0, 0))];

    let mut services = vec![web, dns, hashed, fullnat];
    for (i, s) in services.iter_mut().enumerate() {
        s.id = i as u32;
    }
    IpvsSnapshot {
        conn_tab_size: 4096,
        services,
        conns: vec![
            conn(
                Proto::Tcp,
                296,
                "NONE",
                "192.168.175.0:0",
                "207.175.44.110:80",
                "172.16.0.2:80",
                true,
            ),
            conn(
                Proto::Tcp,
                8015,
                "ESTABLISHED",
                "10.142.81.39:49715",
                "207.175.44.110:80",
                "172.16.0.2:80",
                false,
            ),
            conn(
                Proto::Tcp,
                115,
                "FIN_WAIT",
                "192.168.175.30:41724",
                "207.175.44.110:80",
                "172.16.0.2:80",
                false,
            ),
            conn(
                Proto::Udp,
                298,
                "UDP",
                "10.0.0.7:5353",
                "10.0.0.10:53",
                "192.168.1.5:53",
                false,
            ),
            conn(
                Proto::Tcp,
                5,
                "SYN_RECV",
                "203.0.113.200:65535",
                "10.1.0.1:8080",
                "10.2.0.1:9000",
                false,
            ),
        ],
    }
}

#[test]
fn list_is_ipvsadm_ln() {
    // Sort quirk, (flags), persistent + mask, ops, Local, Tunnel, weight 0 and 65535.
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.1:443 rr (flag-2)
  -> 198.51.100.20:443            FullNat 1      1          0         
TCP  207.175.44.110:80 wlc persistent 300 mask 255.255.255.0
  -> 172.16.0.2:80                Route   2      3          12        
  -> 172.16.0.3:80                Route   0      0          4         
TCP  10.1.0.1:8080 sh (sh-fallback,sh-port)
  -> 10.1.0.1:8080                Local   1      0          0         
  -> 10.2.0.1:9000                Masq    1      1          0         
  -> 10.3.0.1:8080                Tunnel  65535  0          0         
UDP  10.0.0.10:53 rr ops
  -> 192.168.1.5:53               Masq    1      0          7         
";
    assert_eq!(table().list_text(), expected);
}

#[test]
fn stats_cut_large_numbers_and_read_dest_counts_as_32_bit() {
    // K/M/G/T cuts; the dest past 2^32 shows its low half (7).
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.51.100.1:443                    0        0        0        0        0
  -> 198.51.100.20:443                   0        0        0        0        0
TCP  207.175.44.110:80               14209  123456K        0     123G 99999999
  -> 172.16.0.2:80                      13      204        0    13786     100T
  -> 172.16.0.3:80                       7       12        0    1000M        0
TCP  10.1.0.1:8080                       0        0        0        0        0
  -> 10.1.0.1:8080                       0        0        0        0        0
  -> 10.2.0.1:9000                       0        0        0        0        0
  -> 10.3.0.1:8080                       0        0        0        0        0
UDP  10.0.0.10:53                        7        7        7      420      560
  -> 192.168.1.5:53                      7        7        7      420      560
";
    assert_eq!(table().stats_text(), expected);
}

#[test]
fn stats_exact_widens_instead_of_cutting() {
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.51.100.1:443                    0        0        0        0        0
  -> 198.51.100.20:443                   0        0        0        0        0
TCP  207.175.44.110:80               14209 123456789        0 123456789012 99999999
  -> 172.16.0.2:80                      13      204        0    13786 100000000000000
  -> 172.16.0.3:80                       7       12        0 1000000000        0
TCP  10.1.0.1:8080                       0        0        0        0        0
  -> 10.1.0.1:8080                       0        0        0        0        0
  -> 10.2.0.1:9000                       0        0        0        0        0
  -> 10.3.0.1:8080                       0        0        0        0        0
UDP  10.0.0.10:53                        7        7        7      420      560
  -> 192.168.1.5:53                      7        7        7      420      560
";
    assert_eq!(table().stats_text_exact(), expected);
}

#[test]
fn rate_prints_dest_cps_and_pps_uncut() {
    // A dest's CPS/InPPS/OutPPS are `%8llu`: 123456789 pushes the row right.
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.51.100.1:443                    0        0        0        0        0
  -> 198.51.100.20:443                   0        0        0        0        0
TCP  207.175.44.110:80                  12      340        0  123456K        0
  -> 172.16.0.2:80                123456789       40        0    2500M        0
  -> 172.16.0.3:80                       0        0        0        0        0
TCP  10.1.0.1:8080                       0        0        0        0        0
  -> 10.1.0.1:8080                       0        0        0        0        0
  -> 10.2.0.1:9000                       0        0        0        0        0
  -> 10.3.0.1:8080                       0        0        0        0        0
UDP  10.0.0.10:53                        0        0        0        0        0
  -> 192.168.1.5:53                      0        0        0        0        0
";
    assert_eq!(table().rate_text(), expected);
}

#[test]
fn rate_exact() {
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.51.100.1:443                    0        0        0        0        0
  -> 198.51.100.20:443                   0        0        0        0        0
TCP  207.175.44.110:80                  12      340        0 123456789        0
  -> 172.16.0.2:80                123456789       40        0 2500000000        0
  -> 172.16.0.3:80                       0        0        0        0        0
TCP  10.1.0.1:8080                       0        0        0        0        0
  -> 10.1.0.1:8080                       0        0        0        0        0
  -> 10.2.0.1:9000                       0        0        0        0        0
  -> 10.3.0.1:8080                       0        0        0        0        0
UDP  10.0.0.10:53                        0        0        0        0        0
  -> 192.168.1.5:53                      0        0        0        0        0
";
    assert_eq!(table().rate_text_exact(), expected);
}

#[test]
fn persistent_conn_has_no_forward_column() {
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.51.100.1:443 rr (flag-2)
  -> 198.51.100.20:443            1         0           1          0         
TCP  207.175.44.110:80 wlc persistent 300 mask 255.255.255.0
  -> 172.16.0.2:80                2         2           3          12        
  -> 172.16.0.3:80                0         0           0          4         
TCP  10.1.0.1:8080 sh (sh-fallback,sh-port)
  -> 10.1.0.1:8080                1         0           0          0         
  -> 10.2.0.1:9000                1         0           1          0         
  -> 10.3.0.1:8080                65535     0           0          0         
UDP  10.0.0.10:53 rr ops
  -> 192.168.1.5:53               1         0           0          7         
";
    assert_eq!(table().persistent_conn_text(), expected);
}

#[test]
fn thresholds_show_upper_and_lower() {
    let expected = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.51.100.1:443 rr (flag-2)
  -> 198.51.100.20:443            0          0          1          0         
TCP  207.175.44.110:80 wlc persistent 300 mask 255.255.255.0
  -> 172.16.0.2:80                100        10         3          12        
  -> 172.16.0.3:80                0          0          0          4         
TCP  10.1.0.1:8080 sh (sh-fallback,sh-port)
  -> 10.1.0.1:8080                0          0          0          0         
  -> 10.2.0.1:9000                0          0          1          0         
  -> 10.3.0.1:8080                0          0          0          0         
UDP  10.0.0.10:53 rr ops
  -> 192.168.1.5:53               0          0          0          7         
";
    assert_eq!(table().thresholds_text(), expected);
}

#[test]
fn save_is_ipvsadm_save_n() {
    // No thresholds; Local saves as -g, FULLNAT as (null), tunnels with --tun-type ipip.
    let expected = "\
-A -t 198.51.100.1:443 -s rr -b flag-2
-a -t 198.51.100.1:443 -r 198.51.100.20:443 (null) -w 1
-A -t 207.175.44.110:80 -s wlc -p 300 -M 255.255.255.0
-a -t 207.175.44.110:80 -r 172.16.0.2:80 -g -w 2
-a -t 207.175.44.110:80 -r 172.16.0.3:80 -g -w 0
-A -t 10.1.0.1:8080 -s sh -b sh-fallback,sh-port
-a -t 10.1.0.1:8080 -r 10.1.0.1:8080 -g -w 1
-a -t 10.1.0.1:8080 -r 10.2.0.1:9000 -m -w 1
-a -t 10.1.0.1:8080 -r 10.3.0.1:8080 -i -w 65535 --tun-type ipip
-A -u 10.0.0.10:53 -s rr -o
-a -u 10.0.0.10:53 -r 192.168.1.5:53 -m -w 1
";
    assert_eq!(table().save_text(), expected);
}

#[test]
fn conns_are_ipvsadm_lnc() {
    // MM:SS with MM past 99; long sources push later columns right.
    let expected = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 04:56  NONE        192.168.175.0:0    207.175.44.110:80  172.16.0.2:80
TCP 133:35 ESTABLISHED 10.142.81.39:49715 207.175.44.110:80  172.16.0.2:80
TCP 01:55  FIN_WAIT    192.168.175.30:41724 207.175.44.110:80  172.16.0.2:80
UDP 04:58  UDP         10.0.0.7:5353      10.0.0.10:53       192.168.1.5:53
TCP 00:05  SYN_RECV    203.0.113.200:65535 10.1.0.1:8080      10.2.0.1:9000
";
    assert_eq!(table().conns_text(), expected);
}

#[test]
fn empty_table_prints_only_the_headers() {
    let empty = IpvsSnapshot {
        conn_tab_size: 4096,
        services: vec![],
        conns: vec![],
    };
    assert_eq!(empty.save_text(), "");
    assert_eq!(
        empty.list_text(),
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    );
}

#[test]
fn snapshots_without_rates_or_local_node_still_load() {
    // Snapshots saved before the rate and LOCALNODE fields existed.
    let mut json = serde_json::to_value(table()).unwrap();
    for s in json["services"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("rates");
        for d in s["dests"].as_array_mut().unwrap() {
            d.as_object_mut().unwrap().remove("rates");
            d.as_object_mut().unwrap().remove("local_node");
        }
    }
    let back: IpvsSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back.services[0].rates, Rates::default());
    assert!(!back.services[2].dests[2].local_node);
}

/// ipvsadm-samples.txt sample 5's shape (both dests Route here): fwmark services after address
/// services, named `FWM  <mark>`, saved as `-f <mark>`.
#[test]
fn fwmark_services_list_and_save_as_ipvsadm_does() {
    let fwm = |mark: u32| ServiceSnapshot {
        fwmark: mark,
        vip: Ipv4Addr::UNSPECIFIED,
        dests: vec![
            dest([10, 0, 88, 215], 0, Forward::Dr, 1, (0, 0, 0)),
            dest([10, 0, 88, 214], 0, Forward::Dr, 1, (0, 0, 0)),
        ],
        ..service(Proto::Tcp, [0, 0, 0, 0], 0, "wrr")
    };
    let snap = IpvsSnapshot {
        conn_tab_size: 4096,
        services: vec![fwm(7), fwm(3), service(Proto::Tcp, [10, 0, 0, 1], 80, "rr")],
        conns: vec![],
    };
    assert_eq!(
        snap.list_text(),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.1:80 rr\n\
         FWM  3 wrr\n  \
         -> 10.0.88.214:0                Route   1      0          0         \n  \
         -> 10.0.88.215:0                Route   1      0          0         \n\
         FWM  7 wrr\n  \
         -> 10.0.88.214:0                Route   1      0          0         \n  \
         -> 10.0.88.215:0                Route   1      0          0         \n"
    );
    let save = snap.save_text();
    assert!(
        save.starts_with("-A -t 10.0.0.1:80 -s rr\n-A -f 3 -s wrr\n-a -f 3 -r 10.0.88.214:0 -g -w 1\n"),
        "{save}"
    );
}
