//! keepalived.conf health checking through the importer: each keyword reaches the scenario's
//! checker as keepalived would run it, and what lvslab cannot run is a warning at its line.

use std::time::Duration;

use super::keepalived::{self, LbKind};
use super::keepalived_checkers::CheckerKind as KaKind;
use super::to_scenario::import_text;
use crate::health::CheckerKind;
use crate::scenario::{HealthCheck, Scenario};

fn imported(text: &str) -> (Scenario, Vec<String>, String) {
    let got = import_text(text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    let scenario =
        crate::scenario::parse(&got.toml, "t.toml").unwrap_or_else(|r| panic!("{}\n{}", r.render("t.toml"), got.toml));
    (
        scenario,
        got.warnings.iter().map(ToString::to_string).collect(),
        got.toml,
    )
}

fn health(s: &Scenario) -> &HealthCheck {
    s.service().health.as_ref().expect("a health check")
}

fn said(warnings: &[String], line: usize, text: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.starts_with(&format!("line {line}: ")) && w.contains(text))
}

/// A DR TCP service on port 80 around `body` (its real servers and keywords).
fn vs(body: &str) -> String {
    format!("virtual_server 10.0.0.1 80 {{\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n{body}}}\n")
}

#[test]
fn timing_keywords_inherit_virtual_then_real_server_then_checker() {
    let (s, warnings, toml) = imported(&vs("  delay_loop 4\n  retry 2\n  connect_timeout 3\n  \
         real_server 10.0.0.2 80 {\n    delay_before_retry 0.5\n    TCP_CHECK {\n      connect_timeout 1.5\n    }\n  }\n  \
         real_server 10.0.0.3 80 {\n    warmup 0\n    TCP_CHECK {\n      retry 0\n      delay_loop 2\n    }\n  }\n"));
    let h = health(&s);
    let (kind, rs1) = h.real_servers[0].checker.as_ref().unwrap();
    assert_eq!(*kind, CheckerKind::Tcp);
    assert_eq!(
        (rs1.delay_loop, rs1.connect_timeout, rs1.retry, rs1.delay_before_retry),
        (
            Duration::from_secs(4),
            Duration::from_millis(1500),
            2,
            Duration::from_millis(500)
        ),
        "{toml}"
    );
    let (_, rs2) = h.real_servers[1].checker.as_ref().unwrap();
    assert_eq!(
        (rs2.delay_loop, rs2.connect_timeout, rs2.retry, rs2.warmup),
        (Duration::from_secs(2), Duration::from_secs(3), 0, Duration::ZERO)
    );
    // Both are TCP_CHECK: the kind is written once, in [service.check].
    assert!(
        toml.contains("[service.check]\nkind = \"tcp\"\ndelay_loop = 4\n"),
        "{toml}"
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn keepalived_defaults_are_lvslabs_when_nothing_is_stated() {
    let (s, _, _) = imported(&vs(
        "  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      url {\n        path /\n      }\n    }\n  }\n",
    ));
    let h = health(&s);
    let (_, c) = h.real_servers[0].checker.as_ref().unwrap();
    // delay_loop 60, connect_timeout 5, retry 1, HTTP's delay_before_retry 3, warmup = delay_loop.
    assert_eq!(
        (c.delay_loop, c.connect_timeout, c.retry, c.delay_before_retry, c.warmup),
        (
            Duration::from_secs(60),
            Duration::from_secs(5),
            1,
            Duration::from_secs(3),
            Duration::from_secs(60)
        )
    );
    assert_eq!((h.quorum, h.hysteresis), (1, 0));
}

#[test]
fn http_get_keeps_path_status_codes_and_digest() {
    let (s, warnings, _) = imported(&vs("  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      url {\n        path /health\n        \
         status_code 200 301-302\n        digest 5D41402ABC4B2A76B9719D911017C592\n      }\n      url {\n        path /second\n      }\n    }\n  }\n"));
    let CheckerKind::Http(http) = &health(&s).real_servers[0].checker.as_ref().unwrap().0 else {
        panic!("HTTP_GET")
    };
    let url = &http.urls[0];
    assert_eq!(url.path, "/health");
    assert_eq!(url.status_codes, vec![200..=200, 301..=302]);
    assert_eq!(url.digest.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
    assert!(said(&warnings, 12, "url `/second` not imported"), "{warnings:?}");
}

#[test]
fn misc_check_keeps_its_command_timeout_and_dynamic_weight() {
    let (s, warnings, _) = imported(&vs("  real_server 10.0.0.2 80 {\n    MISC_CHECK {\n      \
         misc_path \"/usr/bin/check web 80\"\n      misc_timeout 4\n      misc_dynamic\n      user nobody\n    }\n  }\n"));
    let CheckerKind::Misc(misc) = &health(&s).real_servers[0].checker.as_ref().unwrap().0 else {
        panic!("MISC_CHECK")
    };
    assert_eq!(
        (misc.command.as_str(), misc.timeout, misc.dynamic),
        ("/usr/bin/check web 80", Some(Duration::from_secs(4)), true)
    );
    assert!(
        said(&warnings, 6, "MISC_CHECK runs `/usr/bin/check web 80`"),
        "{warnings:?}"
    );
    assert!(
        said(&warnings, 10, "`user` in MISC_CHECK is not modelled"),
        "{warnings:?}"
    );
}

#[test]
fn quorum_hysteresis_alpha_omega_inhibit_and_scripts_reach_the_service_check() {
    let (s, warnings, _) = imported(&vs(
        "  alpha\n  omega\n  inhibit_on_failure\n  quorum 3\n  hysteresis 1\n  \
         quorum_up \"/bin/up now\"\n  quorum_down /bin/down\n  \
         real_server 10.0.0.2 80 {\n    weight 2\n    TCP_CHECK {\n    }\n  }\n  \
         real_server 10.0.0.3 80 {\n    weight 2\n    inhibit_on_failure off\n    TCP_CHECK {\n    }\n  }\n",
    ));
    let h = health(&s);
    assert_eq!((h.quorum, h.hysteresis, h.omega), (3, 1, true));
    assert_eq!(
        (h.quorum_up.as_deref(), h.quorum_down.as_deref()),
        (Some("/bin/up now"), Some("/bin/down"))
    );
    let inhibit: Vec<bool> = h.real_servers.iter().map(|r| r.inhibit_on_failure).collect();
    assert_eq!(inhibit, [true, false]);
    assert!(h.real_servers.iter().all(|r| r.checker.as_ref().unwrap().1.alpha));
    assert!(said(&warnings, 10, "quorum_up runs `/bin/up now`"), "{warnings:?}");
}

#[test]
fn sorry_server_becomes_a_real_server_of_its_own_or_names_one() {
    let (s, _, toml) = imported(&vs("  sorry_server 10.0.0.99 80\n  sorry_server_inhibit\n  \
         real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n"));
    let h = health(&s);
    let sorry = h.sorry_server.as_ref().unwrap();
    assert_eq!(sorry.real_server.as_deref(), Some("sorry"), "{toml}");
    assert!(h.sorry_server_inhibit);
    assert_eq!(s.real_servers.len(), 2);
    // The sorry server is one of the real servers: named, not added.
    let (s, _, toml) = imported(&vs(
        "  sorry_server 10.0.0.3 80\n  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n  \
         real_server 10.0.0.3 80 {\n    TCP_CHECK {\n    }\n  }\n",
    ));
    assert_eq!(s.real_servers.len(), 2, "{toml}");
    let sorry = health(&s).sorry_server.as_ref().unwrap();
    assert_eq!(sorry.real_server.as_deref(), Some("rs2"));
}

#[test]
fn a_server_without_checker_is_never_taken_out() {
    let (s, warnings, toml) = imported(&vs(
        "  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n  real_server 10.0.0.3 80 {\n  }\n",
    ));
    let (kind, _) = health(&s).real_servers[1].checker.as_ref().unwrap();
    let CheckerKind::Misc(misc) = kind else {
        panic!("{toml}")
    };
    assert_eq!(misc.command, "true");
    assert!(
        said(&warnings, 9, "real server 10.0.0.3 has no checker"),
        "{warnings:?}"
    );
    // No checker anywhere: no [service.check], and its keywords are said to do nothing.
    let (s, warnings, _) = imported(&vs("  quorum 2\n  real_server 10.0.0.2 80 {\n  }\n"));
    assert!(!s.has_checkers());
    assert!(
        said(&warnings, 5, "`quorum`: no real server has a checker"),
        "{warnings:?}"
    );
}

#[test]
fn what_lvslab_cannot_run_is_warned_at_its_line() {
    let (s, warnings, _) = imported(&vs("  real_server 10.0.0.2 80 {\n    SSL_GET {\n      url {\n        path /\n      }\n    }\n    \
         DNS_CHECK {\n    }\n    TCP_CHECK {\n      connect_port 8080\n      connect_ip 10.0.0.9\n      bindto 10.0.0.1\n    }\n    \
         HTTP_GET {\n      url {\n        path /\n      }\n    }\n  }\n"));
    assert_eq!(health(&s).real_servers[0].checker.as_ref().unwrap().0, CheckerKind::Tcp);
    for (line, text) in [
        (6, "SSL_GET not imported"),
        (11, "DNS_CHECK not imported"),
        (14, "connect_port 8080 is not modelled"),
        (15, "connect_ip 10.0.0.9 is not modelled"),
        (16, "`bindto` in TCP_CHECK is not modelled"),
        (
            18,
            "HTTP_GET not imported: lvslab runs one checker per real server, here the TCP_CHECK at line 13",
        ),
    ] {
        assert!(
            said(&warnings, line, text),
            "missing line {line}: {text:?} in {warnings:#?}"
        );
    }
}

#[test]
fn a_tcp_checker_on_a_udp_service_is_not_imported() {
    // No protocol: keepalived's UDP, and a TCP_CHECK cannot check a lab UDP server.
    let (s, warnings, _) = imported(
        "virtual_server 10.0.0.1 53 {\n  lb_algo rr\n  lb_kind DR\n  real_server 10.0.0.2 53 {\n    TCP_CHECK {\n    }\n  }\n}\n",
    );
    assert_eq!(s.service().protocol, crate::scenario::Protocol::Udp);
    assert!(!s.has_checkers());
    assert!(
        said(&warnings, 1, "no protocol set - defaulting to UDP"),
        "{warnings:?}"
    );
    assert!(
        said(&warnings, 5, "TCP_CHECK not imported: it connects over TCP"),
        "{warnings:?}"
    );
}

#[test]
fn a_later_services_checkers_are_imported_into_its_own_check() {
    let text = format!(
        "{}virtual_server 10.0.0.1 443 {{\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  delay_loop 3\n  \
         real_server 10.0.0.2 443 {{\n    TCP_CHECK {{\n    }}\n  }}\n}}\n",
        vs("  real_server 10.0.0.2 80 {\n    TCP_CHECK {\n    }\n  }\n")
    );
    let (s, warnings, toml) = imported(&text);
    assert_eq!(s.services.len(), 2);
    let later = s.services[1].health.as_ref().expect("its checkers");
    assert_eq!(later.delay_loop, Duration::from_secs(3), "{toml}");
    assert_eq!(later.real_servers[0].checker.as_ref().unwrap().0, CheckerKind::Tcp);
    assert!(!warnings.iter().any(|w| w.contains("not imported")), "{warnings:?}");
}

#[test]
fn defaults_and_fix_ups_are_applied_as_keepalived_applies_them() {
    let config = keepalived::parse(
        "virtual_server 10.0.0.1 0 {\n  real_server 10.0.0.2 80 {\n  }\n  real_server 10.0.0.2 80 {\n  }\n}\n\
         virtual_server 10.0.0.1 80 {\n  lb_kind DR\n  protocol TCP\n  quorum 9\n  real_server 10.0.0.3 8080 {\n  }\n}\n",
    )
    .unwrap();
    let (zero, dr) = (&config.virtual_servers[0], &config.virtual_servers[1]);
    assert_eq!(zero.protocol, Some(super::TableProto::Modelled(crate::lvs::Proto::Udp)));
    assert_eq!(zero.scheduler.as_deref(), Some("wlc"));
    assert_eq!(zero.lb_kind, Some(LbKind::Nat));
    assert_eq!(zero.persistence_timeout, Some(360));
    assert_eq!(zero.real_servers.len(), 1, "the duplicate is dropped");
    assert_eq!(dr.real_servers[0].port, Some(80), "DR resets the port");
    assert_eq!((dr.quorum, dr.hysteresis), (Some(1), None));
    let rendered: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
    for expected in [
        "line 1: Virtual server [10.0.0.1]:none:0: no protocol set - defaulting to UDP",
        "line 1: Virtual server [10.0.0.1]:udp:0: zero port only valid for persistent services - setting",
        "line 1: Virtual server [10.0.0.1]:udp:0: no scheduler set, setting default 'wlc'",
        "line 1: Virtual server [10.0.0.1]:udp:0: no forwarding method set, setting default NAT",
        "line 4: VS [10.0.0.1]:udp:0: real server [10.0.0.2]:udp:80 is duplicated - removing second rs",
        "line 7: Warning - quorum 9 for [10.0.0.1]:tcp:80 exceeds total weight of real servers 1, reducing quorum to 1",
        "line 11: WARNING - virtual server [10.0.0.1]:tcp:80 and real server [10.0.0.3]:tcp:8080 ports don't match - resetting",
    ] {
        assert!(rendered.iter().any(|w| w == expected), "missing {expected:?} in {rendered:#?}");
    }
}

#[test]
fn checker_blocks_are_read_with_their_lines() {
    let config = keepalived::parse(&vs(
        "  real_server 10.0.0.2 80 {\n    HTTP_GET {\n      nb_get_retry 4\n      \
         url {\n        path /x\n      }\n    }\n    SMTP_CHECK {\n    }\n  }\n",
    ))
    .unwrap();
    let rs = &config.virtual_servers[0].real_servers[0];
    let kinds: Vec<(&KaKind, usize)> = rs.checkers.iter().map(|c| (&c.kind, c.line)).collect();
    assert_eq!(kinds, [(&KaKind::Http, 6), (&KaKind::Other("SMTP_CHECK".into()), 12)]);
    assert_eq!(rs.checkers[0].timing.retry, Some(4));
    assert!(config
        .warnings
        .iter()
        .any(|w| w.line == 7 && w.message == "nb_get_retry is deprecated - please use 'retry'"));
}

#[test]
fn a_shared_checker_delay_loop_stays_with_the_checkers() {
    // keepalived's MISC_CHECK times out at the virtual server's delay_loop (60 s here), not at
    // its own: hoisting the checkers' delay_loop 3 would change that.
    let misc = "    MISC_CHECK {\n      misc_path /bin/true\n      delay_loop 3\n    }\n";
    let (s, _, toml) = imported(&vs(&format!(
        "  real_server 10.0.0.2 80 {{\n{misc}  }}\n  real_server 10.0.0.3 80 {{\n{misc}  }}\n"
    )));
    let h = health(&s);
    assert_eq!(h.delay_loop, Duration::from_secs(60), "{toml}");
    assert!(h
        .real_servers
        .iter()
        .all(|r| r.checker.as_ref().unwrap().1.delay_loop == Duration::from_secs(3)));
    assert!(
        toml.contains("[service.check]\nkind = \"misc\"\ncommand = \"/bin/true\"\n"),
        "{toml}"
    );
}

#[test]
fn every_checked_virtual_server_keeps_its_checkers() {
    let text = "virtual_server 10.0.0.1 80 {\n  delay_loop 2\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  \
         real_server 10.0.0.2 80 {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n  \
         real_server 10.0.0.3 80 {\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n}\n\
         virtual_server 10.0.0.1 443 {\n  delay_loop 4\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  quorum 2\n  \
         sorry_server 10.0.0.9 443\n  \
         real_server 10.0.0.2 443 {\n    inhibit_on_failure\n    HTTP_GET {\n      url {\n        path /tls\n        status_code 200\n      }\n      retry 2\n    }\n  }\n  \
         real_server 10.0.0.3 443 {\n    inhibit_on_failure\n    HTTP_GET {\n      url {\n        path /tls\n        status_code 200\n      }\n      retry 5\n    }\n  }\n}\n";
    let (s, warnings, toml) = imported(text);
    let names: Vec<&str> = s.checked_services().map(|(_, svc, _)| svc.name.as_str()).collect();
    assert_eq!(names.len(), 2, "{toml}");
    let (_, _, web) = s.checked_services().next().unwrap();
    assert_eq!(web.delay_loop, Duration::from_secs(2));
    assert!(web.real_servers.iter().all(|r| r
        .checker
        .as_ref()
        .is_some_and(|(k, st)| *k == CheckerKind::Tcp && st.connect_timeout == Duration::from_secs(1))));
    let (_, tls_svc, tls) = s.checked_services().nth(1).unwrap();
    assert_eq!(tls_svc.port, 443);
    assert_eq!((tls.delay_loop, tls.quorum), (Duration::from_secs(4), 2), "{toml}");
    let sorry = tls.sorry_server.as_ref().expect("its sorry server");
    assert_eq!(sorry.addr.port(), 443);
    let pool: Vec<&str> = tls.real_servers.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(pool, ["rs1", "rs2"], "{toml}");
    for rs in &tls.real_servers {
        assert!(rs.inhibit_on_failure, "{toml}");
        let Some((CheckerKind::Http(http), settings)) = &rs.checker else {
            panic!("{toml}")
        };
        assert_eq!(http.urls[0].path, "/tls");
        // One [service.check] for the later service: the first real server's retry.
        assert_eq!(settings.retry, 2, "{toml}");
    }
    // The first service's real servers keep their TCP_CHECK: a later service's check is its own.
    assert!(toml.matches("[service.check]").count() == 2, "{toml}");
    assert!(
        said(&warnings, 34, "the checker of 10.0.0.3:443") && said(&warnings, 34, "retry = 5"),
        "{warnings:#?}"
    );
    assert!(!warnings
        .iter()
        .any(|w| w.contains("first service's health checkers only")));
}

/// The virtual_server blocks of a shared sample, as written (not copied into the repo: GPL).
fn sample_virtual_servers(file: &str) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/keepalived-samples")
        .join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not present", path.display());
        return None;
    };
    let mut out = String::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let code = line.split('!').next().unwrap_or("").split('#').next().unwrap_or("");
        if depth == 0 && !code.trim_start().starts_with("virtual_server ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
        depth += code.matches('{').count();
        depth = depth.saturating_sub(code.matches('}').count());
    }
    Some(out)
}

#[test]
fn two_sample_virtual_servers_are_both_checked() {
    // keepalived's own samples: quorum's NAT TCP_CHECKs with quorum and hysteresis, then the
    // sample's NAT HTTP_GET with its sorry server.
    let (Some(quorum), Some(sample)) = (
        sample_virtual_servers("keepalived.conf.quorum"),
        sample_virtual_servers("keepalived.conf.sample"),
    ) else {
        return;
    };
    let (s, _, toml) = imported(&format!("{quorum}{sample}"));
    let checked: Vec<(usize, &HealthCheck)> = s.checked_services().map(|(i, _, h)| (i, h)).collect();
    assert_eq!(checked.len(), 2, "{toml}");
    let (_, first) = checked[0];
    assert_eq!((first.quorum, first.hysteresis, first.omega), (7, 2, true), "{toml}");
    assert!(first.quorum_up.is_some() && first.quorum_down.is_some());
    let (i, second) = checked[1];
    assert_eq!(s.services[i].port, 1358);
    assert!(second.sorry_server.is_some(), "{toml}");
    let Some((CheckerKind::Http(http), settings)) = &second.real_servers[0].checker else {
        panic!("{toml}")
    };
    assert_eq!(http.urls[0].digest.as_deref(), Some("640205b7b0fc66c1ea91c463fac6334d"));
    assert_eq!(
        (settings.connect_timeout, settings.retry, settings.delay_before_retry),
        (Duration::from_secs(3), 3, Duration::from_secs(3))
    );
    assert_eq!(second.delay_loop, Duration::from_secs(6));
}
