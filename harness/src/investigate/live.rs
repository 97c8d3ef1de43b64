//! `lvslab diagnose --live`: the lab's checks on the host this runs on (its current
//! network namespace). A real server is checked for what makes it steal or drop VIP
//! traffic: where the VIP sits, ARP sysctls, rp_filter, a listener, routes.

use std::fmt::Write;
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::diagnose::evidence::{HostEvidence, Proto};
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
    /// Cause id (as in `diagnose::CAUSE_IDS`) a problem points to.
    pub cause: Option<&'static str>,
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

    /// Distinct cause ids of the problems, in check order.
    pub fn causes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in self.problems().filter_map(|c| c.cause) {
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
            let cause = c.cause.filter(|_| c.status == Status::Problem).map(|id| format!(" [{id}]")).unwrap_or_default();
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
    Ok(real_server_checks(&host, vip, port))
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
        checks.push(LiveCheck { status, cause, what, fix });
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
            Some("vip-not-local"),
            format!("{vip} is not an address of this host: frames for the VIP are dropped here"),
            Some(format!("set arp_ignore=1 and arp_announce=2 first, then `ip addr add {vip}/32 dev lo` (TUN: dev {TUNNEL_DEV})")),
        ),
        Some(a) if a.iface == "lo" && a.net.prefix_len() == 32 => {
            check(Status::Ok, None, format!("{vip}/32 on lo"), None)
        }
        Some(a) if a.iface == "lo" => check(
            Status::Problem,
            Some("vip-not-local"),
            format!("{} on lo: the whole /{} becomes local here, not just the VIP", a.net, a.net.prefix_len()),
            Some(format!("`ip addr del {} dev lo && ip addr add {vip}/32 dev lo`", a.net)),
        ),
        Some(a) if a.iface == TUNNEL_DEV => match tun {
            Some(l) if !l.up => check(
                Status::Problem,
                Some("tunnel-decap"),
                format!("{} on {TUNNEL_DEV}, but {TUNNEL_DEV} is down: IP-in-IP packets are not decapsulated", a.net),
                Some(format!("ip link set {TUNNEL_DEV} up")),
            ),
            _ => check(Status::Ok, None, format!("{} on {TUNNEL_DEV} (TUN)", a.net), None),
        },
        Some(a) => check(
            Status::Problem,
            Some("arp-flux"),
            format!("{} on {}, a LAN interface: this host answers ARP for the VIP whatever arp_ignore says", a.net, a.iface),
            Some(format!("`ip addr del {} dev {} && ip addr add {vip}/32 dev lo`", a.net, a.iface)),
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
                Some("arp-flux"),
                format!("{} (needs >= 1): this host answers ARP for the VIP on {iface}", explained("arp_ignore")),
                Some("sysctl -w net.ipv4.conf.all.arp_ignore=1 (persist in /etc/sysctl.d/)".to_owned()),
            );
        }
        let announce = host.effective_conf("arp_announce", iface);
        if announce == Some(2) {
            check(Status::Ok, None, explained("arp_announce"), None);
        } else {
            check(
                Status::Problem,
                Some("arp-flux"),
                format!("{} (needs 2): this host may announce the VIP as the source of its ARP requests", explained("arp_announce")),
                Some("sysctl -w net.ipv4.conf.all.arp_announce=2 (persist in /etc/sysctl.d/)".to_owned()),
            );
        }
    }

    // Reverse-path filter: decapsulated packets arrive on tunl0 from a client routed elsewhere.
    if tun.is_some() {
        match host.effective_conf("rp_filter", TUNNEL_DEV) {
            Some(1) => check(
                Status::Problem,
                Some("rp-filter"),
                format!("rp_filter on {TUNNEL_DEV} is strict (1): decapsulated packets from clients are dropped"),
                Some(format!("sysctl -w net.ipv4.conf.{TUNNEL_DEV}.rp_filter=0 net.ipv4.conf.all.rp_filter=0")),
            ),
            v => check(Status::Ok, None, format!("rp_filter on {TUNNEL_DEV} = {}", v.map_or("?".to_owned(), |v| v.to_string())), None),
        }
    }
    let rpf_drops = host.counter("IPReversePathFilter");
    if rpf_drops > 0 {
        check(
            Status::Note,
            Some("rp-filter"),
            format!("IPReversePathFilter = {rpf_drops} since boot: the reverse-path filter has dropped packets here"),
            None,
        );
    }

    // A listener for the VIP.
    match host.listens_on(Proto::Tcp, vip, port) {
        Some(true) => check(Status::Ok, None, format!("something listens on {vip}:{port} (or 0.0.0.0:{port})"), None),
        Some(false) => {
            let now: Vec<String> = host.listening.iter().flatten().filter(|l| l.proto == Proto::Tcp).map(|l| l.addr.to_string()).collect();
            check(
                Status::Problem,
                Some("server-down"),
                format!(
                    "nothing listens on {vip}:{port} or 0.0.0.0:{port} (DR/TUN traffic arrives addressed to the VIP); TCP listeners: {}",
                    if now.is_empty() { "none".to_owned() } else { now.join(", ") }
                ),
                Some(format!("bind the service to 0.0.0.0:{port} (or {vip}:{port}) and start it")),
            );
        }
        None => check(Status::Note, None, "listening sockets could not be read".to_owned(), None),
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

    LiveReport { role: "real server", host: host.name.clone(), checks }
}

/// `--role director`: the live IPVS table (or an `ipvsadm -Ln` file) is read by the
/// import module's parsers.
pub fn director_unavailable(ipvsadm: Option<&std::path::Path>) -> String {
    let proc_present = std::path::Path::new("/proc/net/ip_vs").exists();
    match (ipvsadm, proc_present) {
        (Some(file), _) => format!(
            "reading {} needs the ipvsadm parser (import module), which is not in this build yet",
            file.display()
        ),
        (None, true) => "reading /proc/net/ip_vs needs the IPVS table parser (import module), which is not in this build yet; meanwhile check the real servers with --role real-server".to_owned(),
        (None, false) => "this host has no IPVS (/proc/net/ip_vs is missing): give the director's `ipvsadm -Ln` output with --ipvsadm FILE".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::sample;

    #[test]
    fn healthy_real_server_passes_and_each_fault_names_its_cause() {
        let good = sample::healthy_dr().real_servers[0].host.clone();
        let report = real_server_checks(&good, sample::VIP, 80);
        assert_eq!(report.causes(), Vec::<&str>::new(), "{}", report.render());
        assert!(report.render().contains("ok   192.0.2.100/32 on lo"), "{}", report.render());

        let mut flux = good.clone();
        flux.sysctls.insert("net.ipv4.conf.all.arp_ignore".into(), "0".into());
        flux.sysctls.insert("net.ipv4.conf.eth0.arp_ignore".into(), "0".into());
        let report = real_server_checks(&flux, sample::VIP, 80);
        assert_eq!(report.causes(), ["arp-flux"]);
        assert!(report.render().contains("FAIL arp_ignore on eth0 = max(all 0, eth0 0) = 0 (needs >= 1)"), "{}", report.render());

        let mut no_vip = good.clone();
        no_vip.addresses.retain(|a| a.net.addr() != sample::VIP);
        no_vip.listening = Some(vec![]);
        let report = real_server_checks(&no_vip, sample::VIP, 80);
        assert_eq!(report.causes(), ["vip-not-local", "server-down"]);

        let mut wide = good;
        for a in &mut wide.addresses {
            if a.net.addr() == sample::VIP {
                a.net = "192.0.2.100/24".parse().unwrap();
            }
        }
        let report = real_server_checks(&wide, sample::VIP, 80);
        assert_eq!(report.causes(), ["vip-not-local"]);
        assert!(report.render().contains("192.0.2.100/24 on lo: the whole /24"), "{}", report.render());
    }
}
