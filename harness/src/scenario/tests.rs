//! Unit tests: defaults per forwarding mode, explicit topologies, and the
//! rendered `check` output for the broken files in fixtures/check/.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::wire::Mac;

fn ok(text: &str) -> Scenario {
    match parse(text, "scenarios/test.toml") {
        Ok(s) => s,
        Err(report) => panic!("unexpected problems:\n{}", report.render("test.toml")),
    }
}

fn problems(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(report) => report.render("t.toml"),
    }
}

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn sysctl<'a>(h: &'a Host, key: &str) -> Option<&'a str> {
    h.sysctls.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

const DR_SMALL: &str = r#"
# Healthy LVS-DR: round robin over three real servers.
[service]
mode = "dr"
scheduler = "rr"

[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"

[expect]
even = true
"#;

#[test]
fn small_dr_scenario_gets_dr_defaults() {
    let s = ok(DR_SMALL);
    assert_eq!(s.name, "test", "name defaults to the file stem");
    assert_eq!(s.engine, EngineChoice::Auto);
    assert_eq!(s.service().vip, addr("192.0.2.100"));
    assert_eq!(s.service().port, 80);
    assert_eq!(s.service().protocol, Protocol::Tcp);
    assert_eq!(s.service().scheduler, Scheduler::Rr);
    assert_eq!(
        s.networks,
        vec![Network {
            name: "lan".into(),
            subnet: "192.0.2.0/24".parse().unwrap(),
            mtu: None,
            tso: true,
        }]
    );

    let names: Vec<(&str, Role)> = s.hosts().map(|h| (h.name.as_str(), h.role)).collect();
    assert_eq!(
        names,
        [
            ("client", Role::Client),
            ("director", Role::Director),
            ("rs1", Role::RealServer),
            ("rs2", Role::RealServer),
            ("rs3", Role::RealServer)
        ]
    );
    let client = s.host("client").unwrap();
    assert_eq!(client.interfaces[0].address, "192.0.2.201/24".parse().unwrap());
    let director = s.host("director").unwrap();
    assert_eq!(director.interfaces.len(), 1);
    assert_eq!(director.interfaces[0].address, "192.0.2.1/24".parse().unwrap());
    assert_eq!(
        sysctl(director, "net.ipv4.ip_forward"),
        Some("0"),
        "the engine forwards, not the kernel"
    );
    assert!(director.loopback_vips.is_empty());

    for (i, rs) in s.real_servers.iter().enumerate() {
        assert_eq!(rs.address, Ipv4Addr::new(192, 0, 2, 11 + i as u8));
        assert_eq!((rs.port, rs.weight, rs.state), (80, 1, ServerState::Up));
        let h = s.host(&rs.name).unwrap();
        assert_eq!(h.interfaces[0].name, "eth0");
        assert_eq!(h.interfaces[0].network, "lan");
        assert_eq!(h.loopback_vips, vec!["192.0.2.100/32".parse().unwrap()]);
        assert!(h.tun_vips.is_empty());
        assert!(h.routes.is_empty());
        for key in ["all", "eth0"] {
            assert_eq!(sysctl(h, &format!("net.ipv4.conf.{key}.arp_ignore")), Some("1"));
            assert_eq!(sysctl(h, &format!("net.ipv4.conf.{key}.arp_announce")), Some("2"));
        }
        assert_eq!(
            sysctl(h, "net.ipv4.conf.all.rp_filter"),
            None,
            "rp_filter stays at the kernel default in DR"
        );
    }
    assert_eq!(s.traffic.requests, 100);
    assert_eq!(
        s.traffic.clients,
        vec![TrafficClient {
            name: "client".into(),
            sources: vec![addr("192.0.2.201")]
        }]
    );
    assert_eq!(s.traffic.timeout, Duration::from_millis(2000));
    assert!(s.expect.even);
    assert_eq!(s.expect.tolerance, 0.1);
    assert_eq!(s.expect.errors, 0);
}

#[test]
fn macs_are_locally_administered_unique_and_stable() {
    let a = ok(DR_SMALL);
    let b = ok(DR_SMALL);
    let macs: Vec<Mac> = a.hosts().flat_map(|h| h.interfaces.iter().map(|i| i.mac)).collect();
    assert!(macs.iter().all(|m| m.0[0] == 0x02));
    let mut unique = macs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), macs.len());
    assert_eq!(a.hosts, b.hosts);
}

#[test]
fn a_mac_is_six_colon_separated_two_digit_unicast_bytes() {
    let with_mac = |mac: &str| format!("[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\nmac = \"{mac}\"\n");
    let s = ok(&with_mac("02:00:00:00:01:0A"));
    assert_eq!(s.host("rs1").unwrap().interfaces[0].mac, Mac([2, 0, 0, 0, 1, 0x0a]));
    // Looser spellings that `Mac::from_str` reads are still not scenario syntax.
    for bad in [
        "2:0:0:0:1:2",
        "02-00-00-00-01-02",
        "02:00:00:00:01",
        "02:00:00:00:01:02:03",
    ] {
        assert!(problems(&with_mac(bad)).contains("is not a MAC address"), "{bad}");
    }
    assert!(problems(&with_mac("03:00:00:00:01:02")).contains("is a multicast address"));
}

#[test]
fn nat_defaults_two_networks_and_director_as_gateway() {
    let s = ok(r#"
[service]
mode = "nat"
[[real_server]]
name = "web1"
port = 8080
[[real_server]]
name = "web2"
"#);
    assert_eq!(s.service().scheduler, Scheduler::Wlc, "ipvsadm's default scheduler");
    let nets: Vec<(&str, String)> = s
        .networks
        .iter()
        .map(|n| (n.name.as_str(), n.subnet.to_string()))
        .collect();
    assert_eq!(
        nets,
        [
            ("public", "192.0.2.0/24".to_string()),
            ("private", "198.51.100.0/24".to_string())
        ]
    );
    let d = s.host("director").unwrap();
    let ifaces: Vec<(&str, &str, String)> = d
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.network.as_str(), i.address.to_string()))
        .collect();
    assert_eq!(
        ifaces,
        [
            ("eth0", "public", "192.0.2.1/24".into()),
            ("eth1", "private", "198.51.100.1/24".into())
        ]
    );
    assert_eq!(s.director().unwrap().local_address, None);
    assert_eq!(
        s.host("client").unwrap().interfaces[0].address.to_string(),
        "192.0.2.201/24"
    );
    assert_eq!(s.service().vip, addr("192.0.2.100"));
    assert_eq!(s.real_servers[0].port, 8080, "NAT may remap the port");
    assert_eq!(s.real_servers[1].port, 80);
    for rs in &s.real_servers {
        let h = s.host(&rs.name).unwrap();
        assert_eq!(h.interfaces[0].network, "private");
        assert!(
            h.loopback_vips.is_empty() && h.tun_vips.is_empty(),
            "NAT real servers do not hold the VIP"
        );
        assert_eq!(
            h.routes,
            vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                via: Some(addr("198.51.100.1"))
            }]
        );
        assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_ignore"), None);
    }
    assert_eq!(s.real_servers[0].address, addr("198.51.100.11"));
}

#[test]
fn fullnat_local_address_is_a_free_private_address_not_the_directors_own() {
    let s = ok("[service]\nmode = \"fullnat\"\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(s.director().unwrap().local_address, Some(addr("198.51.100.2")));
    assert!(s.host_by_address(addr("198.51.100.2")).is_none());
    assert!(s.host("rs1").unwrap().routes.is_empty());
}

#[test]
fn tun_puts_vip_on_tunl0_and_relaxes_rp_filter() {
    let s = ok("[service]\nmode = \"tun\"\nvip = \"192.0.2.50\"\n[[real_server]]\nname = \"rs1\"\n");
    let h = s.host("rs1").unwrap();
    assert_eq!(h.tun_vips, vec!["192.0.2.50/32".parse().unwrap()]);
    assert!(h.loopback_vips.is_empty());
    for scope in ["all", "default", "eth0"] {
        assert_eq!(
            sysctl(h, &format!("net.ipv4.conf.{scope}.rp_filter")),
            Some("0"),
            "{scope}"
        );
    }
    assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_ignore"), Some("1"));
    assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_announce"), Some("2"));
}

#[test]
fn real_server_overrides_replace_mode_defaults() {
    let s = ok(r#"
[service]
vip = "192.0.2.100"
[[real_server]]
name = "rs1"
address = "192.0.2.21"
arp_ignore = 0
weight = 0
state = "slow"
vip_prefix = 24
sysctl = { "net.ipv4.conf.all.arp_announce" = 0, "net.core.somaxconn" = "64" }
[[real_server]]
name = "rs2"
state = "down"
vip_on = "none"
"#);
    let h = s.host("rs1").unwrap();
    assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_ignore"), Some("0"));
    assert_eq!(sysctl(h, "net.ipv4.conf.eth0.arp_ignore"), Some("0"));
    assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_announce"), Some("0"));
    assert_eq!(sysctl(h, "net.core.somaxconn"), Some("64"));
    assert_eq!(
        h.sysctls
            .iter()
            .filter(|(k, _)| k == "net.ipv4.conf.all.arp_announce")
            .count(),
        1,
        "overrides replace in place"
    );
    assert_eq!(h.loopback_vips, vec!["192.0.2.100/24".parse().unwrap()]);
    let rs1 = s.real_server("rs1").unwrap();
    assert_eq!(
        (rs1.address, rs1.weight, rs1.delay),
        (addr("192.0.2.21"), 0, Duration::from_millis(500))
    );
    let rs2 = s.host("rs2").unwrap();
    assert!(!rs2.link_up);
    assert!(rs2.loopback_vips.is_empty());
    assert_eq!(rs2.interfaces[0].address.addr(), addr("192.0.2.11"));
}

#[test]
fn default_addresses_skip_explicit_ones() {
    let s = ok("[[real_server]]\nname = \"a\"\n[[real_server]]\nname = \"b\"\naddress = \"192.0.2.12\"\n[[real_server]]\nname = \"c\"\n");
    let got: Vec<Ipv4Addr> = s.real_servers.iter().map(|r| r.address).collect();
    assert_eq!(got, [addr("192.0.2.11"), addr("192.0.2.12"), addr("192.0.2.13")]);
}

#[test]
fn explicit_networks_router_and_clients() {
    let s = ok(r#"
name = "routed"
[service]
mode = "dr"
scheduler = "sh"
flags = ["sh-port"]
persistence = 300
persistence_netmask = "255.255.255.0"

[[network]]
name = "lan"
subnet = "10.1.0.0/24"
[[network]]
name = "far"
subnet = "10.2.0.0/16"

[[router]]
name = "r1"
interfaces = [{ network = "lan", address = "10.1.0.254" }, { network = "far" }]

[[client]]
name = "near"
[[client]]
name = "remote"
network = "far"

[director]
name = "lb1"
address = "10.1.0.2"
sysctl = { "net.ipv4.vs.conn_reuse_mode" = "0", "net.ipv4.vs.expire_nodest_conn" = 1 }

[[real_server]]
name = "rs1"

[traffic]
clients = ["remote"]
sources = 3
connection = "keepalive"
"#);
    assert_eq!(s.name, "routed");
    assert_eq!(s.service().vip, addr("10.1.0.100"));
    assert_eq!(s.service().persistence, Some(Duration::from_secs(300)));
    assert_eq!(s.service().persistence_prefix, 24);
    assert_eq!(s.service().persistence_netmask(), addr("255.255.255.0"));
    assert_eq!(s.service().flags, vec![SchedFlag::ShPort]);

    let r1 = s.host("r1").unwrap();
    assert_eq!(r1.role, Role::Router);
    let r1_ifaces: Vec<(&str, String)> = r1
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.address.to_string()))
        .collect();
    assert_eq!(
        r1_ifaces,
        [
            ("eth0", "10.1.0.254/24".to_string()),
            ("eth1", "10.2.0.254/16".to_string())
        ]
    );
    assert_eq!(sysctl(r1, "net.ipv4.ip_forward"), Some("1"));

    let remote = s.host("remote").unwrap();
    assert_eq!(remote.interfaces[0].address.to_string(), "10.2.0.201/16");
    assert_eq!(
        remote.routes,
        vec![Route {
            dst: Default::default(),
            via: Some(addr("10.2.0.254"))
        }]
    );
    let near = s.host("near").unwrap();
    assert_eq!(near.interfaces[0].address.to_string(), "10.1.0.201/24");
    assert_eq!(
        near.routes,
        vec![Route {
            dst: Default::default(),
            via: Some(addr("10.1.0.254"))
        }]
    );
    assert_eq!(s.host("rs1").unwrap().routes[0].via, Some(addr("10.1.0.254")));

    let lb1 = s.host("lb1").unwrap();
    assert_eq!(lb1.interfaces[0].address.to_string(), "10.1.0.2/24");
    let d = s.director().unwrap();
    assert_eq!(d.name, "lb1");
    assert_eq!(
        d.engine_sysctls,
        crate::ipvs::Sysctls {
            conn_reuse_mode: 0,
            expire_nodest_conn: true,
            ..Default::default()
        }
    );
    assert!(
        lb1.sysctls.iter().all(|(k, _)| !k.starts_with("net.ipv4.vs.")),
        "vs sysctls go to the engine"
    );

    assert_eq!(s.traffic.connection, ConnectionMode::Keepalive);
    assert_eq!(s.traffic.clients.len(), 1);
    assert_eq!(
        s.traffic.clients[0].sources,
        [addr("10.2.0.201"), addr("10.2.0.150"), addr("10.2.0.149")]
    );
    let secondaries: Vec<String> = remote.interfaces[0].secondary.iter().map(|n| n.to_string()).collect();
    assert_eq!(secondaries, ["10.2.0.150/16", "10.2.0.149/16"]);
    assert_eq!(
        s.host_by_address(addr("10.2.0.149")).map(|h| h.name.as_str()),
        Some("remote")
    );
}

#[test]
fn direct_mode_has_no_director() {
    let s = ok("[service]\nmode = \"direct\"\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n");
    assert!(s.directors.is_empty());
    assert_eq!(s.hosts_with_role(Role::Director).count(), 0);
    assert!(s.host("rs1").unwrap().loopback_vips.is_empty());
    let p = problems("[service]\nmode = \"direct\"\n[director]\nname = \"lb\"\n[[real_server]]\nname = \"rs1\"\n");
    assert!(p.contains("t.toml:3:1: error: `direct` mode has no director"), "{p}");
}

#[test]
fn expectations_resolve_in_declaration_order() {
    let s = ok(r#"
[[real_server]]
name = "a"
[[real_server]]
name = "b"
[expect]
backends = ["b", "a"]
share = { b = 0.75, a = 0.25 }
sequence = ["b", "a", "b"]
answering = 2
diagnosis = ["arp-flux", "healthy"]
tolerance = 0.05
"#);
    assert_eq!(s.expect.backends, Some(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(
        s.expect.share,
        Some(vec![("a".to_string(), 0.25), ("b".to_string(), 0.75)])
    );
    assert_eq!(
        s.expect.sequence,
        Some(vec!["b".to_string(), "a".to_string(), "b".to_string()])
    );
    assert_eq!(s.expect.answering, Some(2));
    assert_eq!(s.expect.diagnosis, vec![Cause::ArpFlux, Cause::Healthy]);
    assert_eq!(s.expect.tolerance, 0.05);
}

#[test]
fn sources_as_a_list() {
    let s = ok("[[real_server]]\nname = \"rs1\"\n[traffic]\nsources = [\"192.0.2.201\", \"192.0.2.77\"]\nsource_port = 40000\n");
    assert_eq!(s.traffic.clients[0].sources, [addr("192.0.2.201"), addr("192.0.2.77")]);
    assert_eq!(s.traffic.source_port, Some(40000));
    assert_eq!(
        s.host("client").unwrap().interfaces[0].secondary,
        vec!["192.0.2.77/24".parse().unwrap()]
    );
}

#[test]
fn every_problem_is_reported_with_position() {
    let p = problems("[service]\nport = \"x\"\nscheduler = \"wrrr\"\n[[real_server]]\nnmae = \"a\"\nweight = -1\n");
    assert!(
        p.contains("t.toml:2:8: error: wrong type for `port` in [service]"),
        "{p}"
    );
    assert!(p.contains("t.toml:3:13: error: unknown scheduler `wrrr`"), "{p}");
    assert!(p.contains("hint: did you mean `wrr`?"), "{p}");
    assert!(p.contains("t.toml:5:1: error: unknown key `nmae`"), "{p}");
    assert!(p.contains("hint: did you mean `name`?"), "{p}");
    assert!(p.contains("t.toml:6:10: error: `weight` = -1 is out of range"), "{p}");
}

#[test]
fn the_vip_cannot_be_a_host_address() {
    let p = problems("[service]\nvip = \"192.0.2.11\"\n[[real_server]]\nname = \"rs1\"\naddress = \"192.0.2.11\"\n");
    assert!(
        p.contains("t.toml:2:7: error: the VIP 192.0.2.11 is also the address of \"rs1\""),
        "{p}"
    );
    // A default address steps over the VIP instead.
    let s = ok("[service]\nvip = \"192.0.2.11\"\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(s.real_servers[0].address, addr("192.0.2.12"));
}

#[test]
fn load_reports_unreadable_files() {
    let err = load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(err.render("x.toml").contains("cannot read /nonexistent/x.toml"));
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/check")
}

/// Each broken file in fixtures/check/ renders to a reviewed snapshot.
#[test]
fn check_output_for_broken_fixtures() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures/check exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "expected the broken fixtures, found {files:?}");
    for file in files {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
        let origin = format!("fixtures/check/{stem}.toml");
        let rendered = match load(&file) {
            Ok(_) => panic!("{origin} should not pass check"),
            Err(report) => report.render(&origin),
        };
        insta::assert_snapshot!(stem, rendered);
    }
}

#[test]
fn sections_of_the_wrong_shape_say_how_to_write_them() {
    let p = problems("[real_server]\nname = \"rs1\"\n[[traffic]]\nrequests = 80\n");
    assert!(
        p.contains("t.toml:1:1: error: `real_server` must be a list of tables, found table"),
        "{p}"
    );
    assert!(p.contains("hint: write each entry as a [[real_server]] section"), "{p}");
    assert!(
        p.contains("t.toml:3:1: error: `traffic` must be a table, found array of tables"),
        "{p}"
    );
}

#[test]
fn duplicate_keys_are_syntax_errors_with_position() {
    let p = problems("[service]\nport = 80\nport = 81\n");
    assert!(p.starts_with("t.toml:3:1: error: invalid TOML"), "{p}");
}

#[test]
fn several_clients_each_get_their_extra_sources() {
    let s = ok(
        "[[client]]\nname = \"a\"\n[[client]]\nname = \"b\"\n[[real_server]]\nname = \"rs1\"\n[traffic]\nsources = 2\n",
    );
    let got: Vec<Vec<Ipv4Addr>> = s.traffic.clients.iter().map(|c| c.sources.clone()).collect();
    assert_eq!(
        got,
        [
            vec![addr("192.0.2.201"), addr("192.0.2.150")],
            vec![addr("192.0.2.202"), addr("192.0.2.149")]
        ]
    );
}

const TWO_DIRECTORS: &str = r#"
[service]
mode = "dr"
scheduler = "rr"

[[director]]
name = "lvs1"
[[director]]
name = "lvs2"

[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
"#;

#[test]
fn several_directors_get_the_service_vip_then_the_next_free_ones() {
    let s = ok(TWO_DIRECTORS);
    let got: Vec<(&str, Ipv4Addr)> = s.directors.iter().map(|d| (d.name.as_str(), d.vip)).collect();
    assert_eq!(got, [("lvs1", addr("192.0.2.100")), ("lvs2", addr("192.0.2.101"))]);
    assert_eq!(s.service().vip, addr("192.0.2.100"));
    assert_eq!(s.director().unwrap().name, "lvs1");
    let addrs: Vec<Ipv4Addr> = s
        .hosts_with_role(Role::Director)
        .map(|h| h.primary_address().unwrap())
        .collect();
    assert_eq!(addrs, [addr("192.0.2.1"), addr("192.0.2.2")]);
    // Every real server holds every director's VIP on lo.
    let lo: Vec<String> = s
        .host("rs2")
        .unwrap()
        .loopback_vips
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(lo, ["192.0.2.100/32", "192.0.2.101/32"]);
}

#[test]
fn unnamed_directors_are_numbered_and_a_single_table_still_works() {
    let s = ok("[service]\nmode = \"tun\"\n[[director]]\n[[director]]\nvip = \"192.0.2.120\"\n[[real_server]]\nname = \"rs1\"\n");
    let got: Vec<(&str, Ipv4Addr)> = s.directors.iter().map(|d| (d.name.as_str(), d.vip)).collect();
    assert_eq!(
        got,
        [("director1", addr("192.0.2.100")), ("director2", addr("192.0.2.120"))]
    );
    let tun: Vec<String> = s.host("rs1").unwrap().tun_vips.iter().map(|n| n.to_string()).collect();
    assert_eq!(tun, ["192.0.2.100/32", "192.0.2.120/32"]);

    let s = ok("[director]\nname = \"lvs\"\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(s.directors.len(), 1);
    assert_eq!(
        (s.directors[0].name.as_str(), s.directors[0].vip),
        ("lvs", addr("192.0.2.100"))
    );
}

#[test]
fn a_default_director_vip_skips_taken_addresses() {
    let s = ok(
        "[[director]]\n[[director]]\n[[director]]\nvip = \"192.0.2.101\"\n[[real_server]]\naddress = \"192.0.2.102\"\n",
    );
    let vips: Vec<Ipv4Addr> = s.directors.iter().map(|d| d.vip).collect();
    assert_eq!(vips, [addr("192.0.2.100"), addr("192.0.2.103"), addr("192.0.2.101")]);
}

#[test]
fn fullnat_directors_get_distinct_local_addresses() {
    let s = ok("[service]\nmode = \"fullnat\"\n[[director]]\n[[director]]\n[[real_server]]\nname = \"rs1\"\n");
    let locals: Vec<Option<Ipv4Addr>> = s.directors.iter().map(|d| d.local_address).collect();
    assert_eq!(locals, [Some(addr("198.51.100.3")), Some(addr("198.51.100.4"))]);
}

#[test]
fn duplicate_director_vips_are_split_brain() {
    let p = problems(
        "[[director]]\nvip = \"192.0.2.100\"\n[[director]]\nvip = \"192.0.2.100\"\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:4:7: error: directors \"director1\" and \"director2\" both have the VIP 192.0.2.100"),
        "{p}"
    );
    assert!(p.contains("VRRP split-brain"), "{p}");
}

#[test]
fn nat_takes_one_director() {
    let p = problems("[service]\nmode = \"nat\"\n[[director]]\n[[director]]\n[[real_server]]\nname = \"rs1\"\n");
    assert!(
        p.contains("t.toml:4:1: error: nat mode takes one director, but 2 are given"),
        "{p}"
    );
}

#[test]
fn a_director_vip_may_not_be_a_host_address() {
    let p = problems(
        "[[director]]\n[[director]]\nvip = \"192.0.2.11\"\n[[real_server]]\nname = \"rs1\"\naddress = \"192.0.2.11\"\n",
    );
    assert!(
        p.contains("t.toml:3:7: error: the VIP 192.0.2.11 of director \"director2\" is also the address of \"rs1\""),
        "{p}"
    );
}

#[test]
fn first_director_vip_must_agree_with_the_service_vip() {
    let s = ok("[[director]]\nvip = \"192.0.2.50\"\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(s.service().vip, addr("192.0.2.50"));
    let p = problems(
        "[service]\nvip = \"192.0.2.100\"\n[[director]]\nvip = \"192.0.2.50\"\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:4:7: error: the first director's vip 192.0.2.50 differs from [service] vip 192.0.2.100"),
        "{p}"
    );
}

#[test]
fn mixing_director_table_and_array_is_explained() {
    let p = problems("[director]\nname = \"a\"\n[[director]]\nname = \"b\"\n[[real_server]]\nname = \"rs1\"\n");
    assert!(p.contains("error: invalid TOML"), "{p}");
    assert!(
        p.contains("hint: give either one [director] table or [[director]] entries, not both"),
        "{p}"
    );
}

// --- scale: the default plan never collides and fills a network -----------------

/// `header` followed by `n` unnamed real servers.
fn with_servers(header: &str, n: usize) -> String {
    let mut text = header.to_owned();
    for _ in 0..n {
        text.push_str("[[real_server]]\n");
    }
    text
}

/// Every address the lab configures, in the model: interfaces, secondaries, VIPs, FULLNAT
/// local addresses. The VIP appears once however many real servers hold it on lo/tunl0.
fn assert_no_address_collides(s: &Scenario) {
    let mut seen: std::collections::HashMap<Ipv4Addr, String> = std::collections::HashMap::new();
    let mut claim = |a: Ipv4Addr, who: String| {
        if let Some(first) = seen.insert(a, who.clone()) {
            panic!("{a} is given to {first} and to {who}");
        }
    };
    for h in s.hosts() {
        for i in &h.interfaces {
            claim(i.address.addr(), format!("{} {}", h.name, i.name));
            for extra in &i.secondary {
                claim(extra.addr(), format!("{} {} (secondary)", h.name, i.name));
            }
            let net = s.network(&i.network).unwrap().subnet;
            assert!(net.contains(&i.address.addr()), "{} outside {net}", i.address);
            assert_ne!(i.address.addr(), net.network());
            assert_ne!(i.address.addr(), net.broadcast());
        }
    }
    for d in &s.directors {
        claim(d.vip, format!("VIP of {}", d.name));
        if let Some(local) = d.local_address {
            claim(local, format!("local address of {}", d.name));
        }
    }
}

#[test]
fn the_ninetieth_real_server_steps_over_the_vip() {
    let s = ok(&with_servers("[service]\nmode = \"dr\"\n", 100));
    assert_no_address_collides(&s);
    assert_eq!(s.service().vip, addr("192.0.2.100"));
    assert_eq!(s.real_server("rs89").unwrap().address, addr("192.0.2.99"));
    assert_eq!(s.real_server("rs90").unwrap().address, addr("192.0.2.101"));
}

#[test]
fn a_default_24_holds_as_many_real_servers_as_it_has_free_addresses() {
    // 254 addresses: the director, the client and the VIP leave 251 for real servers.
    for n in [250, 251] {
        let s = ok(&with_servers("[service]\nmode = \"tun\"\n", n));
        assert_no_address_collides(&s);
        assert_eq!(s.networks[0].subnet, "192.0.2.0/24".parse().unwrap(), "{n} servers");
        assert_eq!(s.host("client").unwrap().primary_address(), Some(addr("192.0.2.201")));
        assert_eq!(s.host("director").unwrap().primary_address(), Some(addr("192.0.2.1")));
        // Past .254 the plan wraps to the low addresses the director leaves free.
        assert_eq!(
            s.real_server(&format!("rs{n}")).unwrap().address,
            addr(&format!("192.0.2.{}", n - 241))
        );
    }
    let s = ok(&with_servers("[service]\nmode = \"tun\"\n", 252));
    assert_eq!(s.networks[0].subnet, "192.0.2.0/23".parse().unwrap());
}

#[test]
fn a_thousand_real_servers_grow_the_default_network_around_its_24() {
    let s = ok(&with_servers("[service]\nmode = \"dr\"\nscheduler = \"rr\"\n", 1000));
    assert_no_address_collides(&s);
    assert_eq!(s.real_servers.len(), 1000);
    assert_eq!(s.networks[0].subnet, "192.0.0.0/22".parse().unwrap());
    // The first 254 addresses are what a /24 would give; the rest spill over.
    assert_eq!(s.service().vip, addr("192.0.2.100"));
    assert_eq!(s.host("director").unwrap().primary_address(), Some(addr("192.0.2.1")));
    assert_eq!(s.host("client").unwrap().primary_address(), Some(addr("192.0.2.201")));
    assert_eq!(s.real_server("rs1").unwrap().address, addr("192.0.2.11"));
    assert_eq!(s.real_server("rs1000").unwrap().address.octets()[..2], [192, 0]);
    let rs = s.host("rs1000").unwrap();
    assert_eq!(rs.interfaces[0].address.prefix_len(), 22);
    assert_eq!(rs.loopback_vips, vec!["192.0.2.100/32".parse().unwrap()]);
    let mut macs: Vec<Mac> = s.hosts().flat_map(|h| h.interfaces.iter().map(|i| i.mac)).collect();
    macs.sort();
    macs.dedup();
    assert_eq!(macs.len(), 1002, "every interface its own MAC");
}

#[test]
fn a_declared_network_that_is_too_small_is_one_clear_error() {
    let header = "[[network]]\nname = \"lan\"\nsubnet = \"10.0.0.0/24\"\n";
    let p = problems(&with_servers(header, 1000));
    assert_eq!(p.matches("error:").count(), 1, "{p}");
    assert!(
        p.contains(
            "t.toml:3:10: error: network \"lan\" (10.0.0.0/24) is full: 749 hosts get no address (rs252, rs253, rs254, …); \
             it holds 254 addresses, the scenario needs 1003 (1000 real servers, 1 director, 1 client, 1 VIP)"
        ),
        "{p}"
    );
    assert!(
        p.contains("hint: give [[network]] \"lan\" a larger subnet, e.g. subnet = \"10.0.0.0/22\" (1022 addresses)"),
        "{p}"
    );
    let s = ok(&with_servers(&header.replace("/24", "/22"), 1000));
    assert_no_address_collides(&s);
    assert_eq!(s.service().vip, addr("10.0.0.100"));
}

#[test]
fn routers_and_extra_sources_keep_clear_of_a_crowd_of_real_servers() {
    let header = r#"
[[network]]
name = "lan"
subnet = "192.0.2.0/24"
[[network]]
name = "far"
subnet = "203.0.113.0/24"
[[router]]
name = "r1"
interfaces = [{ network = "lan" }, { network = "far" }]
[traffic]
sources = 16
"#;
    let s = ok(&with_servers(header, 230));
    assert_no_address_collides(&s);
    assert_eq!(s.host("r1").unwrap().primary_address(), Some(addr("192.0.2.254")));
    // .150 down to .11 is all real servers: the sources take .10 to .2, then wrap round to
    // the free top of the subnet below the router.
    let sources = &s.traffic.clients[0].sources;
    assert_eq!(sources.len(), 16);
    assert_eq!((sources[1], sources[9]), (addr("192.0.2.10"), addr("192.0.2.2")));
    assert_eq!(
        sources[10..],
        [253, 252, 251, 250, 249, 248].map(|h| Ipv4Addr::new(192, 0, 2, h))
    );
}

#[test]
fn fullnat_keeps_its_local_address_when_the_private_network_grows() {
    let s = ok(&with_servers("[service]\nmode = \"fullnat\"\n", 300));
    assert_no_address_collides(&s);
    assert_eq!(s.networks[0].subnet, "192.0.2.0/24".parse().unwrap());
    assert_eq!(s.networks[1].subnet, "198.51.100.0/23".parse().unwrap());
    assert_eq!(s.directors[0].local_address, Some(addr("198.51.100.2")));
}

#[test]
fn a_default_vip_steps_over_an_explicit_host_address() {
    let s = ok("[[real_server]]\naddress = \"192.0.2.100\"\n[[real_server]]\n");
    assert_eq!(s.service().vip, addr("192.0.2.101"));
    assert_no_address_collides(&s);
}

#[test]
fn a_network_cannot_join_more_hosts_than_a_bridge_has_ports() {
    let p = problems(&with_servers(
        "[[network]]\nname = \"lan\"\nsubnet = \"10.0.0.0/16\"\n",
        1022,
    ));
    assert!(
        p.contains("t.toml:3:10: error: network \"lan\" joins 1024 interfaces, but its lab bridge takes at most 1023"),
        "{p}"
    );
    assert_eq!(p.matches("error:").count(), 1, "{p}");
    ok(&with_servers(
        "[[network]]\nname = \"lan\"\nsubnet = \"10.0.0.0/16\"\n",
        1021,
    ));
}

/// DR/TUN cannot remap ports, but the mistake must be reproducible: a warning at the
/// line, the port kept as written.
#[test]
fn a_dr_tun_port_remap_is_a_warning_that_keeps_the_port() {
    let text = "# remap\n[service]\nmode = \"tun\"\nport = 80\n\n[[real_server]]\nname = \"rs1\"\nport = 8080\n\n[[real_server]]\nname = \"rs2\"\nport = 80\n";
    let (s, report) = parse_checked(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
    assert_eq!(s.real_servers.iter().map(|r| r.port).collect::<Vec<_>>(), [8080, 80]);
    let shown = report.render("t.toml");
    assert!(
        shown.starts_with(
            "t.toml:8:8: warning: real server \"rs1\" port 8080 differs from the service port 80, but tun cannot remap ports: its packets still arrive at the VIP's port 80\n  hint: "
        ),
        "{shown}"
    );
    assert!(shown.ends_with("1 warning in t.toml\n"), "{shown}");
    // NAT may remap: no warning.
    let (_, nat) = parse_checked(&text.replace("tun", "nat"), "t.toml").unwrap();
    assert_eq!(nat.warnings().count(), 0);
}

#[test]
fn several_services_resolve_each_with_its_own_servers_ports_and_expect() {
    let s = ok(r#"
[[service]]
name = "web"
port = 80
scheduler = "rr"
[[service]]
name = "tls"
port = 443
persistence = 300
real_servers = ["rs3", "rs2"]
real_port = 8443
[service.expect]
sticky = true
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"
[traffic]
services = ["tls"]
"#);
    let names: Vec<&str> = s.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "tls"]);
    assert_eq!(s.services[0].real_servers, ["rs1", "rs2", "rs3"]);
    assert_eq!(
        s.services[1].real_servers,
        ["rs2", "rs3"],
        "scenario order, whatever the list's"
    );
    assert_eq!(s.services[1].vip, s.services[0].vip);
    assert_eq!(s.services[1].persistence, Some(std::time::Duration::from_secs(300)));
    assert!(s.services[1].expect.as_ref().is_some_and(|e| e.sticky));
    assert!(s.services[0].expect.is_none());
    assert_eq!(s.traffic.services, [1]);
    let rs2 = s.real_server("rs2").unwrap();
    assert_eq!(s.real_port(0, rs2), 80);
    assert_eq!(s.real_port(1, rs2), 8443);
    assert_eq!(s.listeners(rs2), [(80, Protocol::Tcp), (8443, Protocol::Tcp)]);
    assert_eq!(s.listeners(s.real_server("rs1").unwrap()), [(80, Protocol::Tcp)]);
    // One [service] is the one service, named after its protocol and port.
    let one = ok("[service]\nport = 8080\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(one.services.len(), 1);
    assert_eq!(one.service().name, "tcp/8080");
    assert_eq!(one.traffic.services, [0]);
}

#[test]
fn services_of_two_protocols_need_the_traffic_to_pick_one() {
    let p = problems(
        "[[service]]\nport = 80\n[[service]]\nprotocol = \"udp\"\nport = 53\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains(
            "t.toml:3:1: error: service \"udp/53\" is udp, service \"tcp/80\" tcp: the traffic speaks one protocol"
        ),
        "{p}"
    );
}

#[test]
fn a_real_server_may_send_the_traffic_but_a_director_may_not() {
    let s = ok(
        "[service]\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n[traffic]\nclients = [\"rs2\"]\n",
    );
    assert_eq!(s.traffic.clients.len(), 1);
    assert_eq!(s.traffic.clients[0].name, "rs2");
    assert_eq!(s.traffic.clients[0].sources, [s.real_server("rs2").unwrap().address]);

    let p = problems(
        "[service]\n[director]\nname = \"lvs\"\n[[real_server]]\nname = \"rs1\"\n[traffic]\nclients = [\"lvs\"]\n",
    );
    assert!(
        p.contains("t.toml:7:12: error: traffic client \"lvs\" is a director"),
        "{p}"
    );
    let p = problems("[service]\n[[real_server]]\nname = \"rs1\"\n[traffic]\nclients = [\"rs1\"]\nsources = 3\n");
    assert!(
        p.contains("t.toml:6:11: error: `sources` adds addresses to clients, and \"rs1\" is a real server"),
        "{p}"
    );
}

#[test]
fn a_later_service_may_have_a_vip_of_its_own_which_the_real_servers_hold_too() {
    let s = ok(r#"
[[service]]
name = "www"
vip = "192.0.2.100"
[[service]]
name = "api"
vip = "192.0.2.101"
port = 80
[[real_server]]
name = "rs1"
"#);
    assert_eq!(s.services[0].vip, addr("192.0.2.100"));
    assert_eq!(s.services[1].vip, addr("192.0.2.101"));
    let lvs = &s.directors[0];
    assert_eq!(s.director_vips(lvs), [addr("192.0.2.100"), addr("192.0.2.101")]);
    let target = |a: &str| std::net::SocketAddr::from((addr(a), 80));
    assert_eq!(s.service_index_of(target("192.0.2.100")), Some(0));
    assert_eq!(s.service_index_of(target("192.0.2.101")), Some(1));
    let rs1 = s.host("rs1").unwrap();
    let held: Vec<Ipv4Addr> = rs1.loopback_vips.iter().map(|n| n.addr()).collect();
    assert_eq!(held, [addr("192.0.2.100"), addr("192.0.2.101")], "DR: every VIP on lo");
}

#[test]
fn a_vrrp_pair_holds_every_service_vip_in_one_instance() {
    let s = ok(r#"
[[service]]
vip = "192.0.2.100"
[[service]]
name = "api"
vip = "192.0.2.101"
[[director]]
name = "lvs1"
priority = 150
[[director]]
name = "lvs2"
priority = 100
[[real_server]]
name = "rs1"
"#);
    let vrrp = s.vrrp.as_ref().unwrap();
    for node in &vrrp.nodes {
        assert_eq!(node.instance.vips, [addr("192.0.2.100"), addr("192.0.2.101")]);
    }
    for d in &s.directors {
        assert_eq!(s.service_vip(1, d), addr("192.0.2.101"));
    }
}

#[test]
fn a_service_vip_of_its_own_is_refused_where_it_cannot_be_served() {
    // Independent directors each serve every service on their own VIP.
    let p = problems(
        "[[service]]\n[[service]]\nname = \"api\"\nvip = \"192.0.2.120\"\n[[director]]\nname = \"a\"\n[[director]]\nname = \"b\"\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:4:7: error: service \"api\" is on 192.0.2.120, but independent directors each serve every service on their own VIP"),
        "{p}"
    );
    let p = problems(
        "[[service]]\nvip = \"192.0.2.100\"\n[[service]]\nname = \"api\"\nvip = \"198.51.100.7\"\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:5:7: error: service \"api\" is on 198.51.100.7, outside 192.0.2.0/24, the network of the first service's VIP 192.0.2.100"),
        "{p}"
    );
    let p = problems(
        "[[service]]\n[[service]]\nname = \"api\"\nvip = \"192.0.2.11\"\n[[real_server]]\nname = \"rs1\"\naddress = \"192.0.2.11\"\n",
    );
    assert!(
        p.contains("error: the VIP 192.0.2.11 of service \"api\" is also the address of \"rs1\""),
        "{p}"
    );
    // One port twice on one VIP is still refused; on two VIPs it is two services.
    let p = problems("[[service]]\n[[service]]\nname = \"b\"\n[[real_server]]\nname = \"rs1\"\n");
    assert!(p.contains("are both tcp/80"), "{p}");
}

#[test]
fn mtu_per_network_and_interface_tso_body_and_unfinished_checksums_resolve() {
    let s = ok(r#"
[service]
vip = "192.0.2.100"
mode = "tun"
[[network]]
name = "lan"
subnet = "192.0.2.0/24"
mtu = 1400
[[network]]
name = "far"
subnet = "203.0.113.0/24"
tso = false
[[router]]
name = "r1"
interfaces = [{ network = "lan", mtu = 9000 }, { network = "far" }]
[[client]]
name = "c"
network = "far"
[director]
complete_checksums = false
[[real_server]]
name = "rs1"
[traffic]
body_bytes = 4000
"#);
    let tso: Vec<(&str, Option<u32>, bool)> = s.networks.iter().map(|n| (n.name.as_str(), n.mtu, n.tso)).collect();
    assert_eq!(tso, [("lan", Some(1400), true), ("far", None, false)]);
    let mtus = |host: &str| -> Vec<Option<u32>> { s.host(host).unwrap().interfaces.iter().map(|i| i.mtu).collect() };
    assert_eq!(mtus("r1"), [Some(9000), None], "the interface's own over its network's");
    assert_eq!(mtus("rs1"), [Some(1400)]);
    assert_eq!(mtus("c"), [None]);
    assert!(!s.directors[0].complete_checksums);
    assert_eq!(s.traffic.body_bytes, 4000);
    assert_eq!(ok(DR_SMALL).traffic.body_bytes, 0);
    assert!(ok(DR_SMALL).directors[0].complete_checksums);
}

#[test]
fn an_mtu_out_of_range_and_a_udp_body_are_reported_at_their_lines() {
    let text = r#"
[service]
vip = "192.0.2.100"
protocol = "udp"
[[network]]
name = "lan"
subnet = "192.0.2.0/24"
mtu = 40
[[real_server]]
name = "rs1"
[traffic]
body_bytes = 100
"#;
    let p = problems(text);
    assert!(
        p.contains("t.toml:8:7: error: `mtu` = 40 is out of range 68..=65535"),
        "{p}"
    );
    assert!(
        p.contains("t.toml:12:14: error: `body_bytes` needs a TCP service: requests with a body are HTTP POSTs"),
        "{p}"
    );
}

#[test]
fn the_kernel_engine_cannot_leave_checksums_unfinished() {
    let p = problems(
        "engine = \"kernel\"\n[service]\nvip = \"192.0.2.100\"\n[director]\ncomplete_checksums = false\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:5:22: error: engine = \"kernel\" cannot leave checksums unfinished with mode = \"dr\""),
        "{p}"
    );
    assert!(p.contains("use mode = \"tun\""), "{p}");
    // Through a tunnel it can: the real servers' userspace decapsulator reads the raw bytes.
    let tun = ok("engine = \"kernel\"\n[service]\nvip = \"192.0.2.100\"\nmode = \"tun\"\n[director]\ncomplete_checksums = false\n[[real_server]]\nname = \"rs1\"\n");
    assert!(!tun.directors[0].complete_checksums);
}

#[test]
fn a_vip_on_no_network_is_routed_to_its_director() {
    let s = ok("[service]\nvip = \"10.20.30.40\"\nmode = \"nat\"\n[[real_server]]\nname = \"rs1\"\n");
    let director = s.host("director").unwrap().primary_address().unwrap();
    let vip_route = Route {
        dst: "10.20.30.40/32".parse().unwrap(),
        via: Some(director),
    };
    assert_eq!(s.host("client").unwrap().routes, vec![vip_route]);
    // The real servers' replies go back through the director anyway (their default route).
    assert!(!s.host("rs1").unwrap().routes.iter().any(|r| r.dst.prefix_len() == 32));

    // Behind a router, the router gets the host route; the far client keeps its default.
    let s = ok(r#"
[service]
vip = "172.16.0.1"
mode = "dr"
[[network]]
name = "lan"
subnet = "10.1.0.0/24"
[[network]]
name = "far"
subnet = "10.2.0.0/16"
[[router]]
name = "r1"
interfaces = [{ network = "lan", address = "10.1.0.254" }, { network = "far" }]
[[client]]
name = "remote"
network = "far"
[director]
name = "lb1"
address = "10.1.0.2"
[[real_server]]
name = "rs1"
"#);
    let routed = |host: &str| {
        s.host(host)
            .unwrap()
            .routes
            .iter()
            .filter(|r| r.dst == "172.16.0.1/32".parse().unwrap())
            .map(|r| r.via)
            .collect::<Vec<_>>()
    };
    assert_eq!(routed("r1"), vec![Some(addr("10.1.0.2"))]);
    assert!(routed("remote").is_empty());
    // A VIP on the lab's network stays on-link: no host route.
    let s = ok("[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n");
    assert!(s.host("client").unwrap().routes.is_empty());
}

#[test]
fn a_vrrp_vip_must_be_on_a_network() {
    let text = problems(
        "[service]\nvip = \"10.20.30.40\"\nmode = \"dr\"\n[vrrp_instance]\nvirtual_router_id = 51\n\
         [[director]]\nname = \"lvs1\"\nstate = \"MASTER\"\npriority = 150\n\
         [[director]]\nname = \"lvs2\"\npriority = 100\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        text.contains("the VIP 10.20.30.40 is on none of the lab's networks (192.0.2.0/24)"),
        "{text}"
    );
    assert!(text.contains("t.toml:2:7"), "{text}");
}
