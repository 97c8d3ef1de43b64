//! `lvslab import` of keepalived's `virtual_server_group`: one scenario service per entry
//! address, each with the virtual server's settings and real servers.

use std::net::Ipv4Addr;

use super::to_scenario::{import_text, import_text_with_marks, ImportError};
use crate::lvs::Proto;
use crate::scenario::keywords::Mode;
use crate::scenario::{self, Scenario};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

fn checks(toml: &str) -> Scenario {
    scenario::parse(toml, "imported.toml").unwrap_or_else(|r| panic!("{}\n{toml}", r.render("imported.toml")))
}

fn said(imported: &super::to_scenario::Imported) -> Vec<String> {
    imported.warnings.iter().map(ToString::to_string).collect()
}

fn has(said: &[String], start: &str, part: &str) {
    assert!(
        said.iter().any(|w| w.starts_with(start) && w.contains(part)),
        "missing {start:?}…{part:?} in {said:#?}"
    );
}

#[test]
fn the_fixture_group_becomes_one_service_per_entry_address() {
    let text = std::fs::read_to_string(format!("{FIXTURES}/keepalived-group.conf")).unwrap();
    let imported = import_text(&text, "keepalived-group.conf").unwrap();
    let s = checks(&imported.toml);
    let names: Vec<&str> = s.services.iter().map(|svc| svc.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEB/tcp/10.20.0.10:80",
            "WEB/tcp/10.20.0.10:443",
            "WEB/tcp/10.20.0.20:80",
            "WEB/tcp/10.20.0.21:80"
        ]
    );
    let at: Vec<(Ipv4Addr, u16)> = s.services.iter().map(|svc| (svc.vip, svc.port)).collect();
    let lan = |h| Ipv4Addr::new(192, 0, 2, h);
    assert_eq!(at, [(lan(100), 80), (lan(100), 443), (lan(101), 80), (lan(102), 80)]);
    for svc in &s.services {
        assert_eq!((svc.mode, svc.protocol), (Mode::Dr, Proto::Tcp), "{}", svc.name);
        assert_eq!(
            svc.real_servers,
            ["rs1", "rs2"],
            "every entry has the group's real servers"
        );
        let health = svc.health.as_ref().expect("each entry's service is checked");
        assert_eq!(health.delay_loop, std::time::Duration::from_secs(2));
    }
    let lines: Vec<Option<u32>> = s
        .services
        .iter()
        .map(|svc| svc.origin.as_ref().and_then(|o| o.line))
        .collect();
    assert_eq!(lines, [Some(5), Some(6), Some(7), Some(7)], "the entry's line");
    let said = said(&imported);
    has(
        &said,
        "line 8: ",
        "Virtual server group range '10.20.0.30-300' end '300' too large",
    );
    has(
        &said,
        "line 11: ",
        "virtual_server_group OLD is used by no virtual_server",
    );
    has(&said, "line 15: ", "lvslab checks each of the 4 services on its own");
    has(
        &said,
        "line 21: ",
        "virtual server [WEB]:0:[10.20.0.10,443] and real server [10.30.0.11]:tcp:80 ports don't match",
    );
    // Said once, not once per entry.
    let checker_notes = said
        .iter()
        .filter(|w| w.contains("one checker per real server"))
        .count();
    assert_eq!(checker_notes, 1, "{said:#?}");
}

#[test]
fn nat_real_servers_keep_their_own_port_or_take_each_entry_s() {
    let conf = "virtual_server_group G {\n  10.0.0.1 80\n  10.0.0.1 443\n}\nvirtual_server group G {\n  lb_algo wlc\n  \
                lb_kind NAT\n  protocol TCP\n  real_server 10.1.0.1 8080 {\n  }\n  real_server 10.1.0.2 8080 {\n  }\n}\n";
    let s = checks(&import_text(conf, "nat.conf").unwrap().toml);
    assert_eq!(s.services.len(), 2);
    assert!(s.real_servers.iter().all(|r| r.port == 8080));
    assert_eq!(
        s.services[1].real_port,
        Some(8080),
        "the second entry's servers stay on 8080"
    );
    // Without a port a NAT real server is added with 0: the kernel uses each entry's port.
    let conf = conf.replace(" 8080 {", " {");
    let imported = import_text(&conf, "nat.conf").unwrap();
    let s = checks(&imported.toml);
    assert!(s.real_servers.iter().all(|r| r.port == 80), "{}", imported.toml);
    let second = &s.services[1];
    assert_eq!(second.real_port.unwrap_or(second.port), 443, "{}", imported.toml);
    // A fwmark entry (as in keepalived's own sample): IPVS may remap a NAT server's port, a
    // scenario's fwmark service cannot; dropped and said.
    let conf = "virtual_server_group G {\n  10.0.0.1 80\n  fwmark 1\n}\nvirtual_server group G {\n  lb_algo rr\n  \
                lb_kind NAT\n  protocol TCP\n  real_server 10.1.0.1 1358 {\n  }\n}\n";
    let imported = import_text(conf, "nat.conf").unwrap();
    let s = checks(&imported.toml);
    assert_eq!(s.services[1].fwmark.as_ref().map(|m| m.mark), Some(1));
    has(
        &said(&imported),
        "line 9: ",
        "real-server port 1358 dropped for `fwmark 1`",
    );
}

#[test]
fn fwmark_entries_come_after_the_addresses_with_their_marking_rules() {
    let conf = "virtual_server_group G {\n  fwmark 7\n  192.0.2.100 80\n}\nvirtual_server group G {\n  lb_algo rr\n  \
                lb_kind DR\n  protocol TCP\n  real_server 192.0.2.11 {\n  }\n  real_server 192.0.2.12 {\n  }\n}\n";
    let rules = "*mangle\n-A PREROUTING -d 192.0.2.100/32 -p tcp -m tcp --dport 8080 -j MARK --set-mark 7\nCOMMIT\n";
    let imported = import_text_with_marks(conf, "fw.conf", &[(rules, "fw.rules")]).unwrap();
    let s = checks(&imported.toml);
    let names: Vec<&str> = s.services.iter().map(|svc| svc.name.as_str()).collect();
    assert_eq!(
        names,
        ["G/tcp/192.0.2.100:80", "G/fwmark/7"],
        "keepalived adds addresses first"
    );
    let mark = s.services[1].fwmark.as_ref().expect("the fwmark entry");
    assert_eq!((mark.mark, mark.ports.clone()), (7, vec![8080]));
    assert_eq!(s.services[1].origin.as_ref().and_then(|o| o.line), Some(2));
    assert!(
        !said(&imported).iter().any(|w| w.contains("ignored: dr cannot remap")),
        "{:?}",
        said(&imported)
    );
}

#[test]
fn a_range_beyond_the_cap_is_imported_up_to_it_and_said_at_its_line() {
    let conf = "virtual_server_group BIG {\n  10.0.0.1 80\n  10.9.0.0/24 80\n  10.9.1.1 80\n}\n\
                virtual_server group BIG {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server 10.1.0.1 80 {\n  }\n}\n";
    let imported = import_text(conf, "big.conf").unwrap();
    let s = checks(&imported.toml);
    assert_eq!(s.services.len(), super::group_plan::MAX_SERVICES);
    assert_eq!(s.services[63].name, "BIG/tcp/10.9.0.62:80");
    let said = said(&imported);
    has(
        &said,
        "line 3: ",
        "`10.9.0.0/24 80` of virtual_server_group BIG is 256 services (one per address): the import makes at most 64 services from groups, so 63 of them are imported",
    );
    has(&said, "line 4: ", "not imported: the import makes at most 64 services");
}

#[test]
fn an_unknown_group_is_dropped_as_keepalived_drops_it() {
    let alone = "virtual_server group NOSUCH {\n  lb_kind DR\n  protocol TCP\n  real_server 10.1.0.1 80 {\n  }\n}\n";
    let err = import_text(alone, "k.conf").unwrap_err();
    let ImportError::Unsupported { line, message, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*line, 0);
    assert!(
        message.contains("no virtual_server block found that keepalived keeps"),
        "{message}"
    );
    let beside = format!(
        "{alone}virtual_server 192.0.2.100 80 {{\n  lb_kind DR\n  protocol TCP\n  real_server 10.1.0.1 80 {{\n  }}\n}}\n"
    );
    let imported = import_text(&beside, "k.conf").unwrap();
    assert_eq!(checks(&imported.toml).services.len(), 1);
    has(
        &said(&imported),
        "line 1: ",
        "Virtual server group NOSUCH specified but not configured - ignoring virtual server [NOSUCH]:0",
    );
}

#[test]
fn repeats_and_unrunnable_entries_are_left_out_at_their_lines() {
    let conf = "virtual_server_group G {\n  192.0.2.100 80\n  192.0.2.100 80\n  2001:db8::1 80\n  10.0.0.5 0\n  \
                192.0.2.99-100 80\n}\nvirtual_server group G {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
                persistence_timeout 60\n  real_server 10.1.0.1 80 {\n  }\n}\n";
    let imported = import_text(conf, "r.conf").unwrap();
    let s = checks(&imported.toml);
    let names: Vec<&str> = s.services.iter().map(|svc| svc.name.as_str()).collect();
    assert_eq!(
        names,
        ["G/tcp/192.0.2.100:80", "G/tcp/192.0.2.99:80"],
        "{}",
        imported.toml
    );
    let said = said(&imported);
    has(&said, "line 3: ", "TCP 192.0.2.100:80 is already a service (line 2)");
    has(&said, "line 4: ", "IPv6 services are unsupported");
    has(&said, "line 5: ", "port 0 (every port) is unsupported");
    has(&said, "line 6: ", "TCP 192.0.2.100:80 is already a service (line 2)");
}

#[test]
fn one_group_for_tcp_and_udp_makes_both_and_the_traffic_speaks_tcp() {
    let conf = "virtual_server_group DNS {\n  192.0.2.100 53\n  192.0.2.101 53\n}\n\
                virtual_server group DNS {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server 10.1.0.1 53 {\n  }\n}\n\
                virtual_server group DNS {\n  lb_algo rr\n  lb_kind DR\n  protocol UDP\n  real_server 10.1.0.1 53 {\n  }\n}\n";
    let imported = import_text(conf, "dns.conf").unwrap();
    let s = checks(&imported.toml);
    let names: Vec<&str> = s.services.iter().map(|svc| svc.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "DNS/tcp/192.0.2.100:53",
            "DNS/tcp/192.0.2.101:53",
            "DNS/udp/192.0.2.100:53",
            "DNS/udp/192.0.2.101:53"
        ]
    );
    assert_eq!(s.traffic.services, [0, 1]);
    // keepalived numbers the group's virtual servers: the second is [DNS]:1.
    assert!(
        !said(&imported).iter().any(|w| w.contains("skipped")),
        "{:?}",
        said(&imported)
    );
}

#[test]
fn a_group_with_nothing_the_lab_runs_is_refused_with_the_reasons() {
    let conf = "virtual_server_group V6 {\n  2001:db8::1 80\n}\nvirtual_server group V6 {\n  lb_kind DR\n  \
                protocol TCP\n  real_server 2001:db8:1::1 80 {\n  }\n}\n";
    let err = import_text(conf, "v6.conf").unwrap_err();
    let ImportError::Unsupported { line, message, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*line, 4);
    assert!(
        message.contains("line 2: `2001:db8::1 80` of virtual_server_group V6 not imported"),
        "{message}"
    );
}
