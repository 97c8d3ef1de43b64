//! Services of different modes in one scenario: each real server set up for its own services'.

use std::net::Ipv4Addr;

use super::*;

fn ok(text: &str) -> Scenario {
    parse(text, "t.toml").unwrap_or_else(|r| panic!("unexpected problems:\n{}", r.render("t.toml")))
}

fn problems(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(report) => report.render("t.toml"),
    }
}

fn sysctl<'a>(h: &'a Host, key: &str) -> Option<&'a str> {
    h.sysctls.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn default_via(h: &Host) -> Option<Ipv4Addr> {
    h.routes.iter().find(|r| r.dst.prefix_len() == 0).and_then(|r| r.via)
}

fn nets(list: &[ipnet::Ipv4Net]) -> Vec<String> {
    list.iter().map(|n| n.to_string()).collect()
}

const DR_AND_NAT: &str = r#"
[[service]]
name = "web"
mode = "dr"
real_servers = ["rs1", "rs2"]
[[service]]
name = "api"
mode = "nat"
vip = "192.0.2.101"
real_port = 8080
real_servers = ["rs3"]
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
[[real_server]]
name = "rs3"
"#;

#[test]
fn a_dr_and_a_nat_service_each_set_up_their_own_real_servers() {
    let s = ok(DR_AND_NAT);
    let modes: Vec<Mode> = s.services.iter().map(|s| s.mode).collect();
    assert_eq!(modes, [Mode::Dr, Mode::Nat]);
    // The NAT layout: the director on both networks.
    let names: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["public", "private"]);
    assert_eq!(s.host("director").unwrap().interfaces.len(), 2);
    for dr in ["rs1", "rs2"] {
        let h = s.host(dr).unwrap();
        assert_eq!(h.interfaces[0].network, "public", "{dr}: L2 with the director");
        assert_eq!(
            nets(&h.loopback_vips),
            ["192.0.2.100/32"],
            "{dr}: its own service's VIP only"
        );
        assert!(h.tun_vips.is_empty());
        assert_eq!(default_via(h), None, "{dr}: answers the client straight");
        assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_ignore"), Some("1"));
        assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_announce"), Some("2"));
    }
    let rs3 = s.host("rs3").unwrap();
    assert_eq!(rs3.interfaces[0].network, "private");
    assert!(rs3.loopback_vips.is_empty() && rs3.tun_vips.is_empty());
    assert_eq!(default_via(rs3), Some("198.51.100.1".parse().unwrap()));
    assert_eq!(sysctl(rs3, "net.ipv4.conf.all.arp_ignore"), None);
    // Each destination forwards by its own service's method.
    let config = crate::run::director_config(&s, s.director().unwrap()).unwrap();
    let forwards: Vec<Vec<crate::lvs::Forward>> = config
        .services
        .iter()
        .map(|(_, d)| d.iter().map(|d| d.forward).collect())
        .collect();
    use crate::lvs::Forward;
    assert_eq!(forwards, [vec![Forward::Dr, Forward::Dr], vec![Forward::Nat]]);
    assert_eq!(config.server_iface, "eth1", "the NAT servers' side");
}

#[test]
fn a_later_service_without_mode_keeps_the_firsts() {
    let s = ok("[[service]]\nmode = \"tun\"\n[[service]]\nport = 443\n[[real_server]]\nname = \"rs1\"\n");
    assert_eq!(s.services[1].mode, Mode::Tun);
}

#[test]
fn dr_and_tun_on_one_real_server_get_both_set_ups() {
    let s = ok(r#"
[[service]]
mode = "dr"
[[service]]
name = "far"
mode = "tun"
vip = "192.0.2.101"
[[real_server]]
name = "rs1"
"#);
    let h = s.host("rs1").unwrap();
    assert_eq!(nets(&h.loopback_vips), ["192.0.2.100/32"]);
    assert_eq!(nets(&h.tun_vips), ["192.0.2.101/32"]);
    assert_eq!(sysctl(h, "net.ipv4.conf.all.arp_ignore"), Some("1"));
    assert_eq!(sysctl(h, "net.ipv4.conf.all.rp_filter"), Some("0"));
    assert_eq!(s.networks.len(), 1, "no NAT service, no private network");
}

#[test]
fn nat_and_fullnat_on_one_real_server_are_fine() {
    let s = ok(r#"
[[service]]
mode = "nat"
[[service]]
name = "full"
mode = "fullnat"
vip = "192.0.2.101"
[[real_server]]
name = "rs1"
"#);
    let h = s.host("rs1").unwrap();
    assert_eq!(h.interfaces[0].network, "private");
    assert_eq!(
        default_via(h),
        Some("198.51.100.1".parse().unwrap()),
        "the NAT service's gateway"
    );
    assert!(h.loopback_vips.is_empty() && h.tun_vips.is_empty());
    assert!(
        s.director().unwrap().local_address.is_some(),
        "the FULLNAT service's local address"
    );
}

#[test]
fn an_explicit_network_is_kept_and_a_dr_server_cut_off_from_the_clients_said() {
    let text = DR_AND_NAT.replace("name = \"rs2\"", "name = \"rs2\"\nnetwork = \"private\"");
    let (s, report) = parse_checked(&text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
    let h = s.host("rs2").unwrap();
    assert_eq!(h.interfaces[0].network, "private");
    assert_eq!(nets(&h.loopback_vips), ["192.0.2.100/32"]);
    let said = report.render("t.toml");
    assert!(
        said.contains("t.toml:16:11: warning: real server \"rs2\" is only in dr services")
            && said.contains("network \"private\" has no client and it has no route out"),
        "{said}"
    );
    // On the clients' network, or with a way out, nothing to say.
    let (_, report) = parse_checked(&text.replace("\"private\"", "\"public\""), "t.toml").unwrap();
    assert!(report.warnings().next().is_none(), "{}", report.render("t.toml"));
}

#[test]
fn a_real_server_in_a_nat_and_a_dr_service_is_refused_on_the_later_mode() {
    let text = r#"
[[service]]
name = "web"
mode = "nat"
[[service]]
name = "api"
mode = "dr"
vip = "192.0.2.101"
[[real_server]]
name = "rs1"
"#;
    insta::assert_snapshot!("nat_and_dr_on_one_real_server", problems(text));
    // A later service without `mode` that inherits DR beside an earlier NAT one: on its header.
    let text = r#"
[[service]]
mode = "tun"
real_servers = ["rs2"]
[[service]]
name = "api"
mode = "nat"
port = 81
real_servers = ["rs1"]
[[service]]
name = "third"
port = 82
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
"#;
    let p = problems(text);
    assert!(
        p.contains("t.toml:10:1: error: real server \"rs1\" is in service \"api\" (mode nat) and in service \"third\" (mode tun)")
            && p.contains("1 problem in t.toml"),
        "{p}"
    );
}

#[test]
fn direct_does_not_mix_with_director_modes() {
    let p = problems(
        "[[service]]\nmode = \"direct\"\n[[service]]\nport = 81\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n",
    );
    assert!(
        p.contains("t.toml:5:8: error: service \"tcp/81\" has mode dr, but the first service has direct"),
        "{p}"
    );
}

#[test]
fn fullnat_beside_dr_on_one_real_server_is_a_warning() {
    let text = "[[service]]\nmode = \"fullnat\"\n[[service]]\nname = \"web\"\nmode = \"dr\"\nvip = \"192.0.2.101\"\n[[real_server]]\nname = \"rs1\"\n";
    let (s, report) = parse_checked(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")));
    let said = report.render("t.toml");
    assert!(
        said.contains("t.toml:5:8: warning: real server \"rs1\" is in service \"tcp/80\" (mode fullnat) and in service \"web\" (mode dr)"),
        "{said}"
    );
    assert_eq!(s.host("rs1").unwrap().interfaces[0].network, "private");
}
