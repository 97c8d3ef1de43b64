//! Sysctl tables as `check` sees them: engine settings typed, host names looked up in the
//! kernel's tree, values held to what each knob takes.

use super::tree::{self, Node, Source};
use crate::ipvs;
use crate::scenario::{parse, Scenario};

fn ok(text: &str) -> Scenario {
    match parse(text, "t.toml") {
        Ok(s) => s,
        Err(report) => panic!("unexpected problems:\n{}", report.render("t.toml")),
    }
}

fn problems(text: &str) -> String {
    match parse(text, "t.toml") {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(report) => report.render("t.toml"),
    }
}

fn director_with(sysctl: &str) -> String {
    format!("[director]\nsysctl = {{ {sysctl} }}\n[[real_server]]\nname = \"rs1\"\n")
}

fn real_server_with(mode: &str, sysctl: &str) -> String {
    format!("[service]\nmode = \"{mode}\"\n[[real_server]]\nname = \"rs1\"\nsysctl = {{ {sysctl} }}\n")
}

fn host_sysctl<'a>(s: &'a Scenario, host: &str, key: &str) -> Option<&'a str> {
    let h = s.host(host).unwrap();
    h.sysctls.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The kernel's tree, or `None` (the test is skipped) where /proc/sys/net cannot be read.
fn kernel_tree() -> Option<&'static tree::Tree> {
    let t = tree::kernel();
    if t.is_none() {
        eprintln!("skipped: /proc/sys/net cannot be read here");
    }
    t
}

#[test]
fn engine_sysctls_resolve_to_the_engines_settings() {
    let s = ok(&director_with(
        r#""net.ipv4.vs.conn_reuse_mode" = "2", "net.ipv4.vs.expire_nodest_conn" = true, "net.ipv4.vs.sloppy_tcp" = 1, "net.ipv4.vs.expire_quiescent_template" = " 1 ""#,
    ));
    assert_eq!(
        s.directors[0].engine_sysctls,
        ipvs::Sysctls {
            conn_reuse_mode: 2,
            expire_nodest_conn: true,
            expire_quiescent_template: true,
            sloppy_tcp: true,
        }
    );
    assert_eq!(
        ok(&director_with("")).directors[0].engine_sysctls,
        ipvs::Sysctls::default()
    );
    let s = ok(&director_with(r#""net.ipv4.vs.conn_reuse_mode" = 0"#));
    assert!(
        s.host("director")
            .unwrap()
            .sysctls
            .iter()
            .all(|(k, _)| !k.starts_with("net.ipv4.vs.")),
        "the engine's settings are not the kernel's"
    );
}

#[test]
fn engine_sysctl_values_are_held_to_their_range() {
    let p = problems(&director_with(r#""net.ipv4.vs.conn_reuse_mode" = "maybe""#));
    assert!(
        p.contains("t.toml:2:44: error: sysctl `net.ipv4.vs.conn_reuse_mode` = \"maybe\" is not a number"),
        "{p}"
    );
    assert!(p.contains("hint: `conn_reuse_mode` takes 0 to 3; a bitmap"), "{p}");
    let p = problems(&director_with(r#""net.ipv4.vs.conn_reuse_mode" = 256"#));
    assert!(
        p.contains("error: sysctl `net.ipv4.vs.conn_reuse_mode` = 256 is out of range: `conn_reuse_mode` takes 0 to 3"),
        "{p}"
    );
    let p = problems(&director_with(r#""net.ipv4.vs.expire_nodest_conn" = 2"#));
    assert!(p.contains("`expire_nodest_conn` takes 0 or 1"), "{p}");
    let p = problems(&director_with(r#""net.ipv4.vs.conn_reuse_mode" = true"#));
    assert!(p.contains("= true is not a number"), "{p}");
}

#[test]
fn engine_sysctl_names_are_what_the_engines_emulate() {
    let p = problems(&director_with(
        r#""net.ipv4.vs.schedule_icmp" = 1, "net.ipv4.vs.conn_reuse_mod" = 0, "net.ipv4.vs.zzz" = 0"#,
    ));
    assert!(
        p.contains("t.toml:2:12: error: IPVS sysctl `net.ipv4.vs.schedule_icmp` is not emulated by lvslab's engines"),
        "{p}"
    );
    assert!(
        p.contains(
            "hint: they take `conn_reuse_mode`, `expire_nodest_conn`, `expire_quiescent_template`, `sloppy_tcp`"
        ),
        "{p}"
    );
    assert!(
        p.contains("error: unknown IPVS sysctl `net.ipv4.vs.conn_reuse_mod`"),
        "{p}"
    );
    assert!(p.contains("hint: did you mean `net.ipv4.vs.conn_reuse_mode`?"), "{p}");
    assert!(p.contains("error: unknown IPVS sysctl `net.ipv4.vs.zzz`"), "{p}");
    assert_eq!(p.matches("error:").count(), 3, "{p}");
}

#[test]
fn only_a_director_takes_ipvs_sysctls_and_only_net_sysctls_are_per_host() {
    let p = problems(&real_server_with(
        "dr",
        r#""net.ipv4.vs.sloppy_tcp" = 1, "kernel.panic" = 1"#,
    ));
    assert!(
        p.contains("error: `net.ipv4.vs.*` sysctls configure a director's IPVS, but \"rs1\" is a real server"),
        "{p}"
    );
    assert!(
        p.contains("error: sysctl `kernel.panic` is not a network sysctl"),
        "{p}"
    );
}

#[test]
fn known_host_knobs_take_their_documented_values() {
    let p = problems(&real_server_with(
        "dr",
        r#""net.ipv4.conf.all.arp_ignore" = "banana", "net.ipv4.conf.eth0.arp_announce" = 3, "net.ipv4.conf.all.rp_filter" = "loose", "net.ipv4.ip_forward" = 2, "net.ipv4.conf.lo.arp_ignore" = 5"#,
    ));
    assert!(
        p.contains("error: sysctl `net.ipv4.conf.all.arp_ignore` = \"banana\" is not a number"),
        "{p}"
    );
    assert!(
        p.contains("hint: `arp_ignore` takes 0, 1, 2, 3 or 8; 0 answers ARP"),
        "{p}"
    );
    assert!(p.contains("`arp_announce` takes 0 to 2"), "{p}");
    assert!(p.contains("rp_filter` = \"loose\" is not a number"), "{p}");
    assert!(
        p.contains("`net.ipv4.ip_forward` = 2 is out of range: `ip_forward` takes 0 or 1"),
        "{p}"
    );
    assert!(
        p.contains("= 5 is out of range: `arp_ignore` takes 0, 1, 2, 3 or 8"),
        "{p}"
    );
    // Written as the kernel reads them, whatever the TOML type.
    let s = ok(&real_server_with(
        "dr",
        r#""net.ipv4.conf.all.arp_ignore" = " 2", "net.ipv4.conf.eth0.accept_local" = true"#,
    ));
    assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.conf.all.arp_ignore"), Some("2"));
    assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.conf.eth0.accept_local"), Some("1"));
}

#[test]
fn names_the_kernel_lacks_are_errors_with_the_nearest_name() {
    if kernel_tree().is_none() {
        return;
    }
    let p = problems(&real_server_with(
        "dr",
        r#""net.ipv4.conf.all.no_such_knob" = "1", "net.ipv4.conf.all.proxy_arpp" = 1, "net.ipv4.conff.all.proxy_arp" = 1"#,
    ));
    assert!(
        p.contains(
            "error: unknown sysctl `net.ipv4.conf.all.no_such_knob` (no /proc/sys/net/ipv4/conf/all/no_such_knob)"
        ),
        "{p}"
    );
    assert!(p.contains("hint: did you mean `net.ipv4.conf.all.proxy_arp`?"), "{p}");
    assert!(
        p.contains("error: unknown sysctl `net.ipv4.conff.all.proxy_arp` (no /proc/sys/net/ipv4/conff/all/proxy_arp)"),
        "{p}"
    );
    assert!(p.contains("hint: did you mean `net.ipv4.conf.all.proxy_arp`?"), "{p}");
    let p = problems(&real_server_with("dr", r#""net.ipv4.conf.all" = 1"#));
    assert!(
        p.contains("error: `net.ipv4.conf.all` is a directory of sysctls, not a sysctl"),
        "{p}"
    );
}

#[test]
fn a_lab_made_interface_is_looked_up_on_one_that_exists_already() {
    if kernel_tree().is_none() {
        return;
    }
    let s = ok(&real_server_with(
        "dr",
        r#""net.ipv4.conf.eth0.proxy_arp" = 1, "net.ipv4.neigh.eth0.retrans_time_ms" = 500, "net.ipv6.conf.eth0.disable_ipv6" = 1"#,
    ));
    assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.conf.eth0.proxy_arp"), Some("1"));
    assert_eq!(
        host_sysctl(&s, "rs1", "net.ipv4.neigh.eth0.retrans_time_ms"),
        Some("500")
    );
    let p = problems(&real_server_with("dr", r#""net.ipv4.conf.eth1.proxy_arp" = 1"#));
    assert!(
        p.contains("error: host \"rs1\" has no interface `eth1` for sysctl `net.ipv4.conf.eth1.proxy_arp`"),
        "{p}"
    );
    assert!(
        p.contains("hint: its interfaces: `lo`, `eth0`; `all` and `default` reach every interface"),
        "{p}"
    );
    // tunl0 is the lab's on a TUN real server.
    let s = ok(&real_server_with("tun", r#""net.ipv4.conf.tunl0.rp_filter" = 0"#));
    assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.conf.tunl0.rp_filter"), Some("0"));
}

#[test]
fn a_device_the_lab_does_not_make_must_be_one_every_namespace_has() {
    let Some(tree) = kernel_tree() else { return };
    let text = real_server_with("dr", r#""net.ipv4.conf.tunl0.rp_filter" = 0"#);
    // Where ipip is loaded its tunl0 is in every namespace; elsewhere a DR real server has none.
    let kernel_has_tunl0 = tree.source == Source::FreshNamespace && tree.get("ipv4/conf/tunl0") == Some(Node::Dir);
    match parse(&text, "t.toml") {
        Ok(_) => assert!(kernel_has_tunl0, "accepted tunl0 the lab does not make"),
        Err(r) => {
            assert!(!kernel_has_tunl0);
            assert!(
                r.render("t.toml").contains("has no interface `tunl0`"),
                "{}",
                r.render("t.toml")
            );
        }
    }
}

#[test]
fn init_namespace_only_knobs_are_not_a_lab_hosts() {
    let Some(tree) = kernel_tree() else { return };
    if tree.source != Source::FreshNamespace {
        eprintln!("skipped: needs a fresh namespace's tree (root)");
        return;
    }
    let p = problems(&real_server_with("dr", r#""net.ipv4.neigh.default.gc_thresh3" = 4096"#));
    assert!(
        p.contains("error: unknown sysctl `net.ipv4.neigh.default.gc_thresh3` (no /proc/sys/net/ipv4/neigh/default/gc_thresh3)"),
        "{p}"
    );
    if std::path::Path::new("/proc/sys/net/ipv4/neigh/default/gc_thresh3").exists() {
        assert!(
            p.contains("hint: it exists only in the machine's first network namespace"),
            "{p}"
        );
    }
}

#[test]
fn other_existing_knobs_take_what_the_kernel_holds_there() {
    let Some(tree) = kernel_tree() else { return };
    let s = ok(&real_server_with(
        "dr",
        r#""net.ipv4.tcp_rmem" = "4096 131072 6291456", "net.ipv4.tcp_syncookies" = 0, "net.core.somaxconn" = "1024""#,
    ));
    assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.tcp_rmem"), Some("4096 131072 6291456"));
    let p = problems(&real_server_with(
        "dr",
        r#""net.ipv4.tcp_syncookies" = "yes", "net.core.somaxconn" = "1 2 x""#,
    ));
    assert!(
        p.contains("error: sysctl `net.ipv4.tcp_syncookies` = \"yes\" is not a number"),
        "{p}"
    );
    assert!(
        p.contains("error: sysctl `net.core.somaxconn` = \"1 2 x\" is not a number"),
        "{p}"
    );
    // Where the kernel holds text, text goes.
    if tree.get("ipv4/tcp_congestion_control").is_some() {
        let s = ok(&real_server_with("dr", r#""net.ipv4.tcp_congestion_control" = "reno""#));
        assert_eq!(host_sysctl(&s, "rs1", "net.ipv4.tcp_congestion_control"), Some("reno"));
    }
    if matches!(
        tree.get("ipv4/tcp_available_congestion_control"),
        Some(Node::File { writable: false, .. })
    ) {
        let p = problems(&real_server_with(
            "dr",
            r#""net.ipv4.tcp_available_congestion_control" = "reno""#,
        ));
        assert!(
            p.contains("error: sysctl `net.ipv4.tcp_available_congestion_control` is read-only"),
            "{p}"
        );
    }
    let p = problems(&real_server_with(
        "dr",
        r#""net.ipv4.tcp_congestion_control" = "reno\ncubic""#,
    ));
    assert!(p.contains("holds a control character"), "{p}");
}
