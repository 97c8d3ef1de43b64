//! Real-world inputs read in place (never copied into the repo): the ipvsadm
//! samples of the shared reference and keepalived's upstream sample configs.
//! Each test skips with a message when the shared directory is absent.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::keepalived::{self, LbKind, VsAddress};
use super::table::{IpvsTable, TableForward, TableKey, TableProto};
use super::to_scenario::{import_text, ImportError};
use super::{ipvsadm, procfs};
use crate::lvs::{Forward, Proto};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/import");

/// Sample number → the listing text of that block.
pub(super) fn ipvsadm_samples() -> Option<BTreeMap<u32, String>> {
    let path = Path::new(SHARED).join("reference/ipvsadm-samples.txt");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not present", path.display());
        return None;
    };
    let mut samples = BTreeMap::new();
    let mut current: Option<(u32, String, bool)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# Sample ") {
            if let Some((n, _)) = rest.split_once(':') {
                if let Ok(n) = n.trim().parse() {
                    current = Some((n, String::new(), false));
                    continue;
                }
            }
        }
        if line.starts_with("=====") {
            if let Some((n, body, _)) = current.take() {
                samples.insert(n, body);
            }
            continue;
        }
        if let Some((_, body, in_body)) = current.as_mut() {
            if !*in_body {
                *in_body = line.starts_with("-----");
            } else {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    if let Some((n, body, _)) = current {
        samples.insert(n, body);
    }
    Some(samples)
}

fn sock(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn tcp(addr: &str) -> TableKey {
    let a = sock(addr);
    TableKey::Addr {
        proto: TableProto::Modelled(Proto::Tcp),
        vip: a.ip(),
        port: a.port(),
    }
}

fn parsed(samples: &BTreeMap<u32, String>, n: u32) -> IpvsTable {
    let text = samples.get(&n).unwrap_or_else(|| panic!("sample {n} missing"));
    ipvsadm::parse(text).unwrap_or_else(|e| panic!("sample {n}: {e}\n{text}"))
}

fn dest<'t>(table: &'t IpvsTable, svc: &str, addr: &str) -> &'t super::TableDest {
    let s = table.service(tcp(svc)).unwrap_or_else(|| panic!("service {svc}"));
    s.dests
        .iter()
        .find(|d| d.socket() == sock(addr))
        .unwrap_or_else(|| panic!("dest {addr}"))
}

#[test]
fn ipvsadm_sample_listings_read_to_the_posted_numbers() {
    let Some(s) = ipvsadm_samples() else { return };
    assert!(s.len() >= 20, "expected 20 samples, found {}", s.len());

    let t1 = parsed(&s, 1);
    let svc = t1.service(tcp("172.16.10.30:3128")).unwrap();
    assert_eq!((svc.scheduler.as_str(), svc.persistence), ("wrr", Some(5)));
    assert_eq!(dest(&t1, "172.16.10.30:3128", "172.128.10.32:3128").active, Some(3));
    assert_eq!(dest(&t1, "172.16.10.30:3128", "172.128.10.31:3128").active, Some(0));

    let t2 = parsed(&s, 2);
    assert_eq!(t2.services.len(), 2);
    let held = dest(&t2, "10.249.159.12:443", "172.30.215.81:443");
    assert_eq!(
        (held.forward.clone(), held.active),
        (Some(TableForward::Method(Forward::Nat)), Some(1))
    );
    assert_eq!(t2.services[1].persistence, Some(1800));

    let t3 = parsed(&s, 3);
    assert_eq!(t3.templates.len(), 1);
    assert_eq!(t3.templates[0].state, "ASSURED");
    assert_eq!(t3.templates[0].expires_secs, 29 * 60 + 25);
    assert_eq!(t3.conns.len(), 1);
    assert_eq!((t3.conns[0].state.as_str(), t3.conns[0].expires_secs), ("SYN_RECV", 57));

    let t4 = parsed(&s, 4);
    assert_eq!(dest(&t4, "10.6.172.104:40007", "172.29.104.129:80").weight, Some(100));
    assert_eq!(t4.services[0].persistence, Some(299));

    let t5 = parsed(&s, 5);
    assert_eq!(t5.services.len(), 2);
    assert_eq!(t5.services[1].fwmark, Some(7));
    assert_eq!(t5.services[0].dests[0].forward, Some(TableForward::Local));
    assert_eq!(t5.services[0].dests[1].forward, Some(TableForward::Method(Forward::Dr)));

    let t7 = parsed(&s, 7);
    let udp = &t7.services[0];
    assert_eq!(
        (udp.proto, udp.one_packet, udp.dests.len()),
        (Some(TableProto::Modelled(Proto::Udp)), true, 8)
    );

    let t9 = parsed(&s, 9);
    let busy = t9.service(tcp("10.3.0.42:80")).unwrap();
    let totals = busy.stats.unwrap().totals.unwrap();
    assert_eq!(
        (totals.conns, totals.in_pkts, totals.out_bytes),
        (14209, 111769, 8334358)
    );
    let last = dest(&t9, "10.3.0.42:80", "10.2.1.25:80").stats.unwrap().totals.unwrap();
    assert_eq!((last.conns, last.in_bytes), (3, 1161));

    let t10 = parsed(&s, 10);
    assert_eq!(t10.conns.len(), 4);
    assert_eq!(t10.conns[0].expires_secs, 133 * 60 + 35);
    assert_eq!(t10.conns[0].client, sock("10.142.81.39:49715"));

    let t11 = parsed(&s, 11);
    assert_eq!(t11.conns.len(), 6);
    let answered = t11.conns.iter().filter(|c| c.state == "ESTABLISHED").count();
    assert_eq!(answered, 2);
    assert!(t11
        .conns
        .iter()
        .filter(|c| c.state == "ESTABLISHED")
        .all(|c| c.dest.ip() == ip("10.178.104.8")));

    let t12 = parsed(&s, 12);
    let svc = &t12.services[0];
    assert_eq!(
        (svc.scheduler.as_str(), svc.persistence, svc.dests.len()),
        ("rr", Some(9600), 2)
    );
    assert_eq!(svc.dests[1].forward, Some(TableForward::Method(Forward::Dr)));

    let t13 = parsed(&s, 13);
    let fork = &t13.services[0].dests[0];
    assert_eq!(
        (fork.forward.clone(), fork.weight),
        (Some(TableForward::Other("(null)".into())), Some(100))
    );

    let t14 = parsed(&s, 14);
    let forwards: Vec<_> = t14.services[0]
        .dests
        .iter()
        .map(|d| (d.port, d.forward.clone().unwrap()))
        .collect();
    assert_eq!(
        forwards,
        vec![
            (80, TableForward::Method(Forward::Dr)),
            (80, TableForward::Method(Forward::Tun)),
            (12, TableForward::Method(Forward::Nat))
        ]
    );

    let t15 = parsed(&s, 15);
    assert_eq!(
        dest(&t15, "192.168.175.100:80", "192.168.175.103:80").inactive,
        Some(10)
    );
    assert_eq!(t15.services[0].scheduler, "sh");

    // Save file then listing of the same table: one merged service.
    let t16 = parsed(&s, 16);
    assert_eq!(t16.services.len(), 1);
    assert_eq!(t16.services[0].persistence, Some(300));
    let pinned = dest(&t16, "192.168.175.100:80", "192.168.175.103:80");
    assert_eq!((pinned.weight, pinned.inactive), (Some(1), Some(210)));

    let t17 = parsed(&s, 17);
    assert_eq!(t17.templates.len(), 1);
    assert_eq!(
        (t17.templates[0].state.as_str(), t17.templates[0].expires_secs),
        ("NONE", 296)
    );
    assert_eq!(t17.conns.iter().filter(|c| c.state == "FIN_WAIT").count(), 3);

    let t19 = parsed(&s, 19);
    assert_eq!(t19.services[0].scheduler, "lc");
    assert_eq!(dest(&t19, "10.104.56.238:80", "10.244.3.137:8080").active, Some(1));
}

#[test]
fn ipvsadm_samples_with_names_fail_on_the_named_line_with_a_hint() {
    let Some(s) = ipvsadm_samples() else { return };
    // (sample, 1-based line within the block)
    for (n, line) in [(6, 4), (8, 4), (18, 1), (20, 2)] {
        let err = ipvsadm::parse(&s[&n]).expect_err(&format!("sample {n} has names"));
        assert_eq!(err.line, line, "sample {n}: {err}");
        assert!(err.message.contains("numeric"), "sample {n}: {err}");
    }
    // Sample 18's numeric half reads.
    let numeric = s[&18].split("\n\n").nth(1).unwrap();
    assert_eq!(ipvsadm::parse(numeric).unwrap().services[0].dests.len(), 2);
}

#[test]
fn every_importable_ipvsadm_sample_becomes_a_scenario_that_checks() {
    let Some(s) = ipvsadm_samples() else { return };
    let mut imported = 0;
    for (n, text) in &s {
        let Ok(table) = ipvsadm::parse(text) else {
            continue;
        };
        if table.services.is_empty() {
            continue;
        }
        match import_text(text, &format!("sample{n}.txt")) {
            Ok(got) => {
                crate::scenario::parse(&got.toml, "imported.toml").unwrap_or_else(|r| panic!("sample {n}: {r}"));
                imported += 1;
            }
            // Sample 13 uses a fork's forwarding method.
            Err(ImportError::Unsupported { line, .. }) if [13].contains(n) => assert!(line > 0),
            Err(e) => panic!("sample {n}: {e}"),
        }
    }
    assert!(imported >= 10, "only {imported} samples imported");
}

fn keepalived_samples() -> Option<Vec<PathBuf>> {
    let dir = Path::new(SHARED).join("keepalived-samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: {} not present", dir.display());
        return None;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("keepalived.conf"))
        })
        .collect();
    files.sort();
    Some(files)
}

#[test]
fn keepalived_samples_parse_and_import_or_refuse_fwmark_by_line() {
    let Some(files) = keepalived_samples() else {
        return;
    };
    assert!(
        files.len() >= 6,
        "expected the six upstream samples, found {}",
        files.len()
    );
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let config = keepalived::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.virtual_servers.len(), 1, "{name}");
        match import_text(&text, name) {
            Ok(imported) => {
                crate::scenario::parse(&imported.toml, "imported.toml")
                    .unwrap_or_else(|r| panic!("{name}: {r}\n{}", imported.toml));
                let unplaced: Vec<&super::Warning> = imported.warnings.iter().filter(|w| w.line == 0).collect();
                assert!(unplaced.is_empty(), "{name}: warnings without a line: {unplaced:?}");
            }
            Err(ImportError::Unsupported { line, message, .. }) if name.ends_with(".fwmark") => {
                assert_eq!(line, 7, "{message}");
                assert!(message.contains("fwmark"), "{message}");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn keepalived_samples_read_to_their_values() {
    let Some(files) = keepalived_samples() else {
        return;
    };
    let read = |suffix: &str| {
        let path = files.iter().find(|p| p.to_str().unwrap().ends_with(suffix)).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        (keepalived::parse(&text).unwrap(), path.clone())
    };

    let (sample, path) = read("keepalived.conf.sample");
    let vi = &sample.vrrp.instances[0];
    assert_eq!(
        (
            vi.name.as_str(),
            vi.vrid,
            vi.priority,
            vi.nopreempt,
            vi.master,
            vi.vips.len()
        ),
        ("VI_1", 50, 100, true, false, 3),
        "nopreempt kept: no state given and priority 100 means BACKUP"
    );
    let vs = &sample.virtual_servers[0];
    assert_eq!(
        vs.address,
        VsAddress::Ip {
            addr: ip("10.10.10.2"),
            port: 1358
        }
    );
    assert_eq!(
        (vs.scheduler.as_deref(), vs.lb_kind, vs.persistence_timeout),
        (Some("rr"), Some(LbKind::Nat), Some(50))
    );
    assert_eq!(vs.sorry_server.as_ref().map(|s| s.line), Some(33));
    let checker = &vs.real_servers[0].checkers[0];
    assert_eq!((checker.line, checker.name()), (37, "HTTP_GET"));
    let (toml, warnings) = super::import_file(&path).unwrap();
    let scenario = crate::scenario::parse(&toml, "sample.toml").unwrap();
    let health = scenario.service().health.as_ref().expect("the HTTP_GETs are imported");
    let sorry = health.sorry_server.as_ref().expect("the sorry server is imported");
    assert_eq!(sorry.real_server.as_deref(), Some("sorry"), "{toml}");
    let rs1 = &health.real_servers[0];
    let (kind, settings) = rs1.checker.as_ref().unwrap();
    let crate::health::CheckerKind::Http(http) = kind else {
        panic!("HTTP_GET expected: {toml}")
    };
    assert_eq!(http.urls[0].path, "/testurl3/test.jsp");
    assert_eq!(http.urls[0].digest.as_deref(), Some("640205b7b0fc66c1ea91c463fac6334d"));
    assert_eq!(
        (
            settings.delay_loop.as_secs(),
            settings.connect_timeout.as_secs(),
            settings.retry
        ),
        (6, 3, 3)
    );
    assert!(!warnings.iter().any(|w| w.contains("sorry_server")), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "line 13: (VI_1) no virtual_ipaddress (192.168.200.11, 192.168.200.12, 192.168.200.13) is the virtual_server address 10.10.10.2"
        )),
        "{warnings:?}"
    );

    let (udp, _) = read("keepalived.conf.UDP_CHECK");
    assert_eq!(udp.virtual_servers[0].protocol, Some(TableProto::Modelled(Proto::Udp)));

    let (inhibit, _) = read("keepalived.conf.inhibit");
    assert_eq!(
        inhibit.virtual_servers[0].real_servers[0].inhibit_on_failure,
        Some(true)
    );

    let (quorum, path) = read("keepalived.conf.quorum");
    let vs = &quorum.virtual_servers[0];
    assert_eq!(
        (vs.quorum, vs.hysteresis, vs.real_servers.len()),
        (Some(7), Some(2), 10)
    );
    let (toml, warnings) = super::import_file(&path).unwrap();
    let scenario = crate::scenario::parse(&toml, "q.toml").unwrap();
    assert!(
        scenario.real_servers.iter().all(|r| r.port == 8080),
        "NAT keeps the remapped port"
    );
    let health = scenario.service().health.as_ref().expect("the TCP_CHECKs are imported");
    assert_eq!((health.quorum, health.hysteresis, health.omega), (7, 2, true));
    assert_eq!(health.quorum_up.as_deref(), Some("/usr/local/sbin/quorum-up.sh"));
    assert!(health
        .real_servers
        .iter()
        .all(|r| r.checker.as_ref().is_some_and(|(_, s)| s.alpha)));
    // connect_port 80 differs from the server's 8080: warned at its line.
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("line 39:") && w.contains("connect_port 80 is not modelled")),
        "{warnings:?}"
    );

    let (syncd, path) = read("keepalived.conf.vrrp.lvs_syncd");
    assert_eq!(syncd.virtual_servers[0].timing.delay_loop, Some(20.0));
    assert_eq!(syncd.virtual_servers[0].real_servers[0].port, Some(80));
    let names: Vec<&str> = syncd.vrrp.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["VI_1", "VI_2", "VI_3"]);
    let vi1 = &syncd.vrrp.instances[0];
    assert_eq!(
        (vi1.master, vi1.priority, vi1.vrid, vi1.auth_pass.as_deref()),
        (true, 150, 51, Some("grr02"))
    );
    assert_eq!(syncd.vrrp.sync_groups, [(3, "VG1".to_string())]);
    let imported = import_text(&std::fs::read_to_string(&path).unwrap(), "syncd").unwrap();
    assert!(
        imported
            .toml
            .contains("[vrrp_instance]\nname = \"VI_2\"\nvirtual_router_id = 52\n"),
        "VI_2 carries the virtual_server 192.168.200.19:\n{}",
        imported.toml
    );
    let warnings: Vec<String> = imported.warnings.iter().map(ToString::to_string).collect();
    // A NAT sync group: VI_3 holds the real servers' side (192.168.201.x), so the pair runs
    // with the gateway floating beside the VIP, as VG1 binds them.
    assert_eq!(syncd.vrrp.sync_members, [vec!["VI_2".to_string(), "VI_3".to_string()]]);
    for kept in [
        "[vrrp_gateway]\nname = \"VI_3\"\nvirtual_router_id = 53\naddress = \"198.51.100.254\"  # original 192.168.201.19\n",
        "[vrrp_sync_group]\nname = \"VG1\"\ngroup = [\"VI_2\", \"VI_3\"]\n",
        "\n[[director]]\nname = \"lvs2\"\n",
    ] {
        assert!(imported.toml.contains(kept), "missing {kept:?} in\n{}", imported.toml);
    }
    let s =
        crate::scenario::parse(&imported.toml, "syncd.toml").unwrap_or_else(|e| panic!("{}", e.render("syncd.toml")));
    let vrrp = s.vrrp.as_ref().unwrap();
    assert_eq!((vrrp.nodes.len(), vrrp.sync_group.as_deref()), (2, Some("VG1")));
    for expected in [
        "line 8: vrrp_instance VI_1 skipped",
        "line 38: (VI_3) virtual_ipaddress 192.168.201.20, 192.168.201.21 not modelled",
        "line 26: (VI_2) the peer is not in this file: lvslab adds director lvs2 with priority 50",
    ] {
        assert!(
            warnings.iter().any(|w| w.starts_with(expected)),
            "missing {expected:?} in {warnings:#?}"
        );
    }

    let (fwmark, _) = read("keepalived.conf.fwmark");
    assert_eq!(fwmark.virtual_servers[0].address, VsAddress::Fwmark(1));
    assert_eq!(fwmark.virtual_servers[0].real_servers[1].port, None);
}

/// Tiny deterministic generator: the test must be reproducible without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every reader and the importer on every prefix of every input, and on mangled
/// lines: errors are fine, panics are not.
#[test]
fn truncated_and_mangled_input_never_panics() {
    let mut inputs: Vec<String> = Vec::new();
    if let Some(s) = ipvsadm_samples() {
        inputs.extend(s.into_values());
    }
    if let Some(files) = keepalived_samples() {
        inputs.extend(files.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    }
    for entry in std::fs::read_dir(FIXTURES).unwrap().flatten() {
        inputs.push(std::fs::read_to_string(entry.path()).unwrap());
    }
    let exercise = |text: &str| {
        let _ = ipvsadm::parse(text);
        let _ = procfs::parse_ip_vs(text, 250);
        let _ = procfs::parse_ip_vs_conn_into(&mut IpvsTable::default(), text);
        let _ = keepalived::parse(text);
        let _ = import_text(text, "fuzz");
    };
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    const NOISE: &[&str] = &[
        "{",
        "}",
        ":",
        "->",
        "-a",
        "-A",
        "[",
        "]",
        "0",
        "FFFFFFFF",
        "999999999999",
        " ",
        "\t",
        "#",
        "!",
        "(",
        "é",
    ];
    for text in &inputs {
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        // Every prefix of short inputs; a sample of cut points for long ones.
        let step = (boundaries.len() / 400).max(1);
        for &cut in boundaries.iter().step_by(step) {
            exercise(&text[..cut]);
        }
        for _ in 0..100 {
            let mut mangled = text.clone();
            let at = boundaries[(rng.next() as usize) % boundaries.len()];
            mangled.insert_str(at, NOISE[(rng.next() as usize) % NOISE.len()]);
            exercise(&mangled);
        }
    }
}
