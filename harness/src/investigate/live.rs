//! `lvslab diagnose --live`: the lab's checks on the host this runs on (its current
//! network namespace). A real server is checked for what makes it steal or drop VIP
//! traffic: where the VIP sits, ARP sysctls, rp_filter, a listener, routes. A director is
//! checked through its IPVS table (live, or `ipvsadm` output read by `import`).

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::Serialize;

use crate::diagnose::evidence::{Evidence, FirewallRule, HostEvidence, Mode, Proto};
use crate::diagnose::{self, Diagnosis};
use crate::import;
use crate::lvs::CauseId;
use crate::observe::{self, ObserveError};

/// How one live check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth knowing, not a cause by itself.
    Note,
    Problem,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCheck {
    pub status: Status,
    /// The diagnosis cause a problem points to.
    pub cause: Option<CauseId>,
    /// What was seen, naming interfaces and values.
    pub what: String,
    pub fix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveReport {
    pub role: &'static str,
    pub host: String,
    pub checks: Vec<LiveCheck>,
}

impl LiveReport {
    pub fn problems(&self) -> impl Iterator<Item = &LiveCheck> {
        self.checks.iter().filter(|c| c.status == Status::Problem)
    }

    /// Distinct cause ids of the problems, as spelled, in check order.
    pub fn causes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in self.problems().filter_map(|c| c.cause.map(CauseId::as_str)) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    pub fn render(&self) -> String {
        let mut out = format!("{} checks on {}:\n", self.role, self.host);
        for c in &self.checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Note => "note",
                Status::Problem => "FAIL",
            };
            let cause = c
                .cause
                .filter(|_| c.status == Status::Problem)
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {mark} {}{cause}", c.what);
            if let (Status::Problem, Some(fix)) = (c.status, &c.fix) {
                let _ = writeln!(out, "       fix: {fix}");
            }
        }
        let problems = self.problems().count();
        if problems == 0 {
            out.push_str("no problem found\n");
        } else {
            let _ = writeln!(out, "{problems} problem(s): {}", self.causes().join(", "));
        }
        out
    }
}

/// Checks this host (the calling thread's namespace) as a DR/TUN real server for `vip:port`.
pub fn check_real_server(vip: Ipv4Addr, port: u16) -> Result<LiveReport, ObserveError> {
    let name = hostname();
    let host = observe::local_evidence(&name)?;
    let mut report = real_server_checks(&host, vip, port);
    report
        .checks
        .extend(firewall_checks(crate::nft::ruleset::read_drops(), vip, port));
    Ok(report)
}

/// This host's firewall against TCP to `vip:port`: each drop or reject rule that would catch
/// it, a problem once its counter counted; a note when the ruleset could not be read.
pub fn firewall_checks(drops: Result<Vec<FirewallRule>, String>, vip: Ipv4Addr, port: u16) -> Vec<LiveCheck> {
    let drops = match drops {
        Ok(drops) => drops,
        Err(e) => {
            return vec![LiveCheck {
                status: Status::Note,
                cause: None,
                what: format!("the firewall was not read: {e}"),
                fix: None,
            }]
        }
    };
    let none = std::collections::BTreeSet::new();
    let catching: Vec<&FirewallRule> = drops
        .iter()
        .filter(|r| diagnose::rules::firewall::drops_service_traffic(r, Proto::Tcp, vip, port, &none))
        .collect();
    if catching.is_empty() {
        return vec![LiveCheck {
            status: Status::Ok,
            cause: None,
            what: format!("no nftables rule drops TCP to {vip}:{port}"),
            fix: None,
        }];
    }
    catching
        .into_iter()
        .map(|r| {
            let counted = r.packets.is_some_and(|n| n > 0);
            LiveCheck {
                status: if counted { Status::Problem } else { Status::Note },
                cause: Some(CauseId::Firewall),
                what: format!("nftables {} TCP to {vip}:{port}: {}", r.verdict_verb(), r.cited()),
                fix: Some(format!(
                    "`nft insert rule {} {} ip daddr {vip} tcp dport {port} accept`, or delete the rule",
                    r.table, r.chain
                )),
            }
        })
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

const TUNNEL_DEV: &str = "tunl0";

/// The real-server checks over gathered host evidence (pure: testable with hand-made hosts).
pub fn real_server_checks(host: &HostEvidence, vip: Ipv4Addr, port: u16) -> LiveReport {
    let mut checks = Vec::new();
    let mut check = |status, cause, what: String, fix: Option<String>| {
        checks.push(LiveCheck {
            status,
            cause,
            what,
            fix,
        });
    };
    // LAN interfaces: up, not lo/tunl0, with an address other than the VIP.
    let lan: Vec<String> = host
        .links
        .iter()
        .filter(|l| l.up && l.kind.as_deref() != Some("loopback") && l.name != "lo" && l.name != TUNNEL_DEV)
        .filter(|l| host.addresses.iter().any(|a| a.iface == l.name && a.net.addr() != vip))
        .map(|l| l.name.clone())
        .collect();

    // Where the VIP is.
    let tun = host.link(TUNNEL_DEV);
    match host.address_of(vip) {
        None => check(
            Status::Problem,
            Some(CauseId::VipNotLocal),
            format!("{vip} is not an address of this host: frames for the VIP are dropped here"),
            Some(format!(
                "set arp_ignore=1 and arp_announce=2 first, then `ip addr add {vip}/32 dev lo` (TUN: dev {TUNNEL_DEV})"
            )),
        ),
        Some(a) if a.iface == "lo" && a.net.prefix_len() == 32 => {
            check(Status::Ok, None, format!("{vip}/32 on lo"), None)
        }
        Some(a) if a.iface == "lo" => check(
            Status::Problem,
            Some(CauseId::VipPrefix),
            format!(
                "{} on lo: the whole /{} becomes local here, not just the VIP",
                a.net,
                a.net.prefix_len()
            ),
            Some(format!("`ip addr del {} dev lo && ip addr add {vip}/32 dev lo`", a.net)),
        ),
        Some(a) if a.iface == TUNNEL_DEV => match tun {
            Some(l) if !l.up => check(
                Status::Problem,
                Some(CauseId::TunnelDecap),
                format!(
                    "{} on {TUNNEL_DEV}, but {TUNNEL_DEV} is down: IP-in-IP packets are not decapsulated",
                    a.net
                ),
                Some(format!("ip link set {TUNNEL_DEV} up")),
            ),
            _ => check(Status::Ok, None, format!("{} on {TUNNEL_DEV} (TUN)", a.net), None),
        },
        Some(a) => check(
            Status::Problem,
            Some(CauseId::VipPrefix),
            format!(
                "{} on {}, a LAN interface: this host answers ARP for the VIP whatever arp_ignore says (arp-flux follows)",
                a.net, a.iface
            ),
            Some(format!(
                "`ip addr del {} dev {} && ip addr add {vip}/32 dev lo`",
                a.net, a.iface
            )),
        ),
    }

    // ARP sysctls on every LAN interface: the kernel uses max(all, iface).
    for iface in &lan {
        let explained = |name: &str| {
            let show = |v: Option<i64>| v.map_or("?".to_owned(), |v| v.to_string());
            format!(
                "{name} on {iface} = max(all {}, {iface} {}) = {}",
                show(host.sysctl(&format!("net.ipv4.conf.all.{name}"))),
                show(host.sysctl(&format!("net.ipv4.conf.{iface}.{name}"))),
                show(host.effective_conf(name, iface))
            )
        };
        let ignore = host.effective_conf("arp_ignore", iface);
        if ignore.is_some_and(|v| v >= 1) {
            check(Status::Ok, None, explained("arp_ignore"), None);
        } else {
            check(
                Status::Problem,
                Some(CauseId::ArpFlux),
                format!(
                    "{} (needs >= 1): this host answers ARP for the VIP on {iface}",
                    explained("arp_ignore")
                ),
                Some("sysctl -w net.ipv4.conf.all.arp_ignore=1 (persist in /etc/sysctl.d/)".to_owned()),
            );
        }
        let announce = host.effective_conf("arp_announce", iface);
        if announce == Some(2) {
            check(Status::Ok, None, explained("arp_announce"), None);
        } else {
            check(
                Status::Problem,
                Some(CauseId::ArpFlux),
                format!(
                    "{} (needs 2): this host may announce the VIP as the source of its ARP requests",
                    explained("arp_announce")
                ),
                Some("sysctl -w net.ipv4.conf.all.arp_announce=2 (persist in /etc/sysctl.d/)".to_owned()),
            );
        }
    }

    // Reverse-path filter: decapsulated packets arrive on tunl0 from a client routed elsewhere.
    if tun.is_some() {
        match host.effective_conf("rp_filter", TUNNEL_DEV) {
            Some(1) => check(
                Status::Problem,
                Some(CauseId::RpFilter),
                format!("rp_filter on {TUNNEL_DEV} is strict (1): decapsulated packets from clients are dropped"),
                Some(format!(
                    "sysctl -w net.ipv4.conf.{TUNNEL_DEV}.rp_filter=0 net.ipv4.conf.all.rp_filter=0"
                )),
            ),
            v => check(
                Status::Ok,
                None,
                format!(
                    "rp_filter on {TUNNEL_DEV} = {}",
                    v.map_or("?".to_owned(), |v| v.to_string())
                ),
                None,
            ),
        }
    }
    let rpf_drops = host.counter("IPReversePathFilter");
    if rpf_drops > 0 {
        check(
            Status::Note,
            Some(CauseId::RpFilter),
            format!("IPReversePathFilter = {rpf_drops} since boot: the reverse-path filter has dropped packets here"),
            None,
        );
    }

    // A listener for the VIP.
    match host.listens_on(Proto::Tcp, vip, port) {
        Some(true) => check(
            Status::Ok,
            None,
            format!("something listens on {vip}:{port} (or 0.0.0.0:{port})"),
            None,
        ),
        Some(false) => {
            let now: Vec<String> = host
                .listening
                .iter()
                .flatten()
                .filter(|l| l.proto == Proto::Tcp)
                .map(|l| l.addr.to_string())
                .collect();
            check(
                Status::Problem,
                Some(CauseId::ServerDown),
                format!(
                    "nothing listens on {vip}:{port} or 0.0.0.0:{port} (DR/TUN traffic arrives addressed to the VIP); TCP listeners: {}",
                    if now.is_empty() { "none".to_owned() } else { now.join(", ") }
                ),
                Some(format!("bind the service to 0.0.0.0:{port} (or {vip}:{port}) and start it")),
            );
            // A service on another port of every address (or the VIP) is the classic remap.
            let elsewhere: Vec<u16> = host
                .listening
                .iter()
                .flatten()
                .filter(|l| l.proto == Proto::Tcp && l.addr.port() != port)
                .filter(|l| l.addr.ip().is_unspecified() || l.addr.ip() == std::net::IpAddr::V4(vip))
                .map(|l| l.addr.port())
                .collect();
            if !elsewhere.is_empty() {
                let ports: Vec<String> = elsewhere.iter().map(u16::to_string).collect();
                check(
                    Status::Note,
                    Some(CauseId::PortRemap),
                    format!(
                        "the service listens on port {}: if the director lists this host there, DR/TUN still deliver {vip}:{port} (they cannot remap ports)",
                        ports.join(", ")
                    ),
                    None,
                );
            }
        }
        None => check(
            Status::Note,
            None,
            "listening sockets could not be read".to_owned(),
            None,
        ),
    }

    // Replies leave by the default route (DR/TUN: straight to the client, not via the director).
    match host.routes.iter().find(|r| r.dst.prefix_len() == 0) {
        Some(r) => check(
            Status::Ok,
            None,
            format!(
                "default route via {} dev {}",
                r.via.map_or("(on-link)".to_owned(), |v| v.to_string()),
                r.dev.as_deref().unwrap_or("?")
            ),
            None,
        ),
        None => check(
            Status::Note,
            None,
            "no default route: replies reach only clients on the directly connected networks".to_owned(),
            None,
        ),
    }

    LiveReport {
        role: "real server",
        host: host.name.clone(),
        checks,
    }
}

/// `--role director`: what the director's IPVS table says about its services, diagnosed
/// without traffic (persistence, hash schedulers, weight 0, one destination, UDP without
/// ops, stuck handshakes, conn_reuse_mode).
#[derive(Debug, Clone, Serialize)]
pub struct DirectorReport {
    /// Where the table came from: a file, or /proc/net/ip_vs.
    pub source: String,
    /// Things the table reader could not read exactly.
    pub warnings: Vec<String>,
    /// The first service's (the one `--vip` picked, or the table's first).
    pub evidence: Evidence,
    /// The table's other services, each diagnosed on its own (without `--vip`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_services: Vec<Evidence>,
    pub diagnosis: Diagnosis,
}

impl DirectorReport {
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ev in std::iter::once(&self.evidence).chain(&self.other_services) {
            let Some(svc) = &ev.service else { continue };
            let dests = ev.ipvs.as_ref().map_or(0, |i| i.dests.len());
            let proto = svc.proto.name();
            let _ = writeln!(
                out,
                "director table from {}: {proto} {}:{} scheduler {}, {dests} destination(s)",
                self.source, svc.vip, svc.port, svc.scheduler
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "(reader: {w})");
        }
        out.push_str(&diagnose::render(&self.diagnosis));
        out
    }
}

/// Reads the director's table from `ipvsadm` output in `file`, else from this host's
/// /proc/net/ip_vs (+ ip_vs_conn and IPVS sysctls), and diagnoses the service at
/// `select`, or every service. Errors are messages for the operator.
pub fn check_director(file: Option<&std::path::Path>, select: Option<SocketAddrV4>) -> Result<DirectorReport, String> {
    let (table, source, live) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let table = import::ipvsadm::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            (table, path.display().to_string(), false)
        }
        None => match import::procfs::read_live().map_err(|e| e.to_string())? {
            Some(table) => (table, "/proc/net/ip_vs".to_owned(), true),
            None => {
                return Err("this host has no IPVS (/proc/net/ip_vs is missing): give the director's `ipvsadm -Ln` (and -Lnc) output with --ipvsadm FILE".to_owned())
            }
        },
    };
    let mut warnings: Vec<String> = table.warnings.iter().map(ToString::to_string).collect();
    // `--vip` picks one service; without it, every service lvslab models, each on its own.
    let imported = match select {
        Some(_) => vec![import::evidence::service_evidence(&table, select).map_err(|e| e.to_string())?],
        None if table.services.len() <= 1 => {
            vec![import::evidence::service_evidence(&table, None).map_err(|e| e.to_string())?]
        }
        None => {
            let mut all = Vec::new();
            for svc in &table.services {
                match import::evidence::evidence_of(&table, svc) {
                    Ok(imported) => all.push(imported),
                    Err(e) => warnings.push(format!("{} not diagnosed: {e}", svc.describe())),
                }
            }
            if all.is_empty() {
                return Err(format!(
                    "no service in the table can be diagnosed: {}",
                    warnings.join("; ")
                ));
            }
            all
        }
    };
    // The host's own state only describes the director when the table is this host's.
    let director = if live {
        Some(observe::local_evidence(&hostname()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let mut services: Vec<Evidence> = imported
        .into_iter()
        .map(|imported| Evidence {
            director: director.clone(),
            service: Some(imported.service),
            ipvs: Some(imported.ipvs),
            ..Evidence::empty(imported.mode.unwrap_or(Mode::Dr))
        })
        .collect();
    let diagnosis = diagnose::diagnose_services(&services);
    let evidence = services.remove(0);
    Ok(DirectorReport {
        source,
        warnings,
        evidence,
        other_services: services,
        diagnosis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` as an `ipvsadm -Ln` output file, with the directory that holds it.
    fn ipvsadm_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ipvsadm.txt");
        std::fs::write(&file, text).unwrap();
        (dir, file)
    }
    use crate::diagnose::sample;

    #[test]
    fn a_counted_drop_of_the_vip_is_a_firewall_problem() {
        let rule = |packets| FirewallRule {
            table: "inet filter".into(),
            chain: "input".into(),
            hook: Some("input".into()),
            text: "ip daddr 192.0.2.100 tcp dport 80 counter drop".into(),
            verdict: "drop".into(),
            packets,
            matches: vec![crate::diagnose::evidence::RuleMatch {
                field: "ip daddr".into(),
                equal: true,
                values: vec![crate::diagnose::evidence::MatchValue::Net(sample::VIP.into())],
            }],
        };
        let checks = firewall_checks(Ok(vec![rule(Some(3))]), sample::VIP, 80);
        assert_eq!(checks[0].status, Status::Problem);
        assert_eq!(checks[0].cause, Some(CauseId::Firewall));
        assert!(checks[0].what.ends_with("(3 packets dropped)"), "{}", checks[0].what);
        assert_eq!(
            firewall_checks(Ok(vec![rule(Some(0))]), sample::VIP, 80)[0].status,
            Status::Note
        );
        let other = firewall_checks(Ok(vec![rule(Some(3))]), Ipv4Addr::new(192, 0, 2, 7), 80);
        assert_eq!((other[0].status, other[0].cause), (Status::Ok, None));
        let unread = firewall_checks(Err("nft is not installed".into()), sample::VIP, 80);
        assert_eq!(unread[0].what, "the firewall was not read: nft is not installed");
    }

    #[test]
    fn healthy_real_server_passes_and_each_fault_names_its_cause() {
        let good = sample::healthy_dr().real_servers[0].host.clone();
        let report = real_server_checks(&good, sample::VIP, 80);
        assert_eq!(report.causes(), Vec::<&str>::new(), "{}", report.render());
        assert!(
            report.render().contains("ok   192.0.2.100/32 on lo"),
            "{}",
            report.render()
        );

        let mut flux = good.clone();
        flux.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), "0".into());
        flux.sysctls.insert("net.ipv4.conf.eth0.arp_ignore".into(), "0".into());
        let report = real_server_checks(&flux, sample::VIP, 80);
        assert_eq!(report.causes(), ["arp-flux"]);
        assert!(
            report
                .render()
                .contains("FAIL arp_ignore on eth0 = max(all 0, eth0 0) = 0 (needs >= 1)"),
            "{}",
            report.render()
        );

        let mut no_vip = good.clone();
        no_vip.addresses.retain(|a| a.net.addr() != sample::VIP);
        no_vip.listening = Some(vec![]);
        let report = real_server_checks(&no_vip, sample::VIP, 80);
        assert_eq!(report.causes(), ["vip-not-local", "server-down"]);

        let mut remapped = good.clone();
        remapped.listening = Some(vec![crate::diagnose::evidence::Listener {
            proto: Proto::Tcp,
            addr: "0.0.0.0:8080".parse().unwrap(),
        }]);
        let report = real_server_checks(&remapped, sample::VIP, 80);
        assert_eq!(report.causes(), ["server-down"], "a note, not a second problem");
        assert!(
            report.render().contains("note the service listens on port 8080: if the director lists this host there, DR/TUN still deliver 192.0.2.100:80"),
            "{}",
            report.render()
        );

        let mut wide = good;
        for a in &mut wide.addresses {
            if a.net.addr() == sample::VIP {
                a.net = "192.0.2.100/24".parse().unwrap();
            }
        }
        let report = real_server_checks(&wide, sample::VIP, 80);
        assert_eq!(report.causes(), ["vip-prefix"]);
        assert!(
            report.render().contains("192.0.2.100/24 on lo: the whole /24"),
            "{}",
            report.render()
        );

        let mut on_lan = wide;
        for a in &mut on_lan.addresses {
            if a.net.addr() == sample::VIP {
                *a = sample::addr("eth0", "192.0.2.100/32");
            }
        }
        let report = real_server_checks(&on_lan, sample::VIP, 80);
        assert_eq!(report.causes(), ["vip-prefix"], "{}", report.render());
    }

    #[test]
    fn without_a_vip_every_service_of_the_table_is_diagnosed_and_named() {
        let (_dir, file) = ipvsadm_file(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  192.0.2.100:80 rr\n\
             \x20 -> 192.0.2.11:80                Route   1      3          0\n\
             \x20 -> 192.0.2.12:80                Route   1      3          0\n\
             TCP  192.0.2.100:443 rr persistent 360\n\
             \x20 -> 192.0.2.11:443               Route   1      3          0\n\
             \x20 -> 192.0.2.12:443               Route   1      0          0\n\
             FWM  9 rr\n\
             \x20 -> 192.0.2.11:0                 Route   1      0          0\n",
        );
        let report = check_director(Some(&file), None).unwrap();
        assert_eq!(report.other_services.len(), 1, "the fwmark service is left out");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("FWM") || w.contains("fwmark") || w.contains("firewall-mark")),
            "{:?}",
            report.warnings
        );
        let persistence = report
            .diagnosis
            .findings
            .iter()
            .find(|f| f.id == CauseId::Persistence)
            .expect("persistence found");
        assert_eq!(persistence.service.as_deref(), Some("TCP 192.0.2.100:443"));
        assert!(report.diagnosis.findings.iter().all(|f| f.service.is_some()));
        let text = report.render();
        assert!(
            text.contains("TCP 192.0.2.100:80 scheduler rr") && text.contains("TCP 192.0.2.100:443 scheduler rr"),
            "{text}"
        );
        // --vip still picks one.
        let one = check_director(Some(&file), Some("192.0.2.100:80".parse().unwrap())).unwrap();
        assert!(one.other_services.is_empty());
        assert!(one.diagnosis.findings.iter().all(|f| f.id != CauseId::Persistence));
    }

    #[test]
    fn director_table_from_ipvsadm_output_is_diagnosed() {
        let (dir, file) = ipvsadm_file(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  192.0.2.100:80 rr persistent 360\n\
             \x20 -> 192.0.2.11:80                Route   1      3          0\n\
             \x20 -> 192.0.2.12:80                Route   0      0          0\n",
        );
        let report = check_director(Some(&file), None).unwrap();
        let ids = report.diagnosis.ids();
        assert!(ids.contains(&"persistence") && ids.contains(&"weight-zero"), "{ids:?}");
        let text = report.render();
        assert!(text.starts_with("director table from "), "{text}");
        assert!(
            text.contains("TCP 192.0.2.100:80 scheduler rr, 2 destination(s)"),
            "{text}"
        );

        let wanted = "192.0.2.200:80".parse().unwrap();
        let err = check_director(Some(&file), Some(wanted)).unwrap_err();
        assert!(err.contains("192.0.2.200:80"), "{err}");
        let err = check_director(Some(&dir.path().join("missing")), None).unwrap_err();
        assert!(err.starts_with("cannot read "), "{err}");
    }

    #[test]
    fn a_route_destination_on_another_port_is_a_port_remap() {
        let (_dir, file) = ipvsadm_file(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
             TCP  192.0.2.100:80 rr\n\
             \x20 -> 192.0.2.11:80                Route   1      0          0\n\
             \x20 -> 192.0.2.12:8080              Route   1      0          3\n",
        );
        let report = check_director(Some(&file), None).unwrap();
        let finding = report.diagnosis.finding(CauseId::PortRemap).expect("port-remap");
        assert!(
            finding.evidence[0].starts_with("the table lists 192.0.2.12:8080 under TCP DR"),
            "{:?}",
            finding.evidence
        );
    }
}
