//! The scenario's topology as a Mermaid flowchart: hosts, networks, addresses, the VIP.

use std::fmt::Write;

use crate::scenario::{Role, Scenario};

pub fn mermaid(scenario: &Scenario) -> String {
    let mut out = String::from("flowchart LR\n");
    for net in &scenario.networks {
        let _ = writeln!(out, "  net_{0}{{{{\"{0}<br/>{1}\"}}}}", net.name, net.subnet);
    }
    for host in scenario.hosts() {
        let role = match host.role {
            Role::Client => "client",
            Role::Director => "director",
            Role::RealServer => "real server",
            Role::Router => "router",
        };
        let mut label = format!("{}<br/><i>{role}</i>", host.name);
        for vip in host
            .loopback_vips
            .iter()
            .map(|v| ("lo", v))
            .chain(host.tun_vips.iter().map(|v| ("tunl0", v)))
        {
            let _ = write!(label, "<br/>{} on {}", vip.1, vip.0);
        }
        if host.role == Role::Director {
            let _ = write!(
                label,
                "<br/>VIP {}:{} {} {}",
                scenario.service().vip,
                scenario.service().port,
                scenario.service().mode,
                scenario.service().scheduler
            );
        }
        let _ = writeln!(out, "  host_{}[\"{label}\"]", host.name);
        for iface in &host.interfaces {
            let _ = writeln!(
                out,
                "  host_{} ---|\"{} {}\"| net_{}",
                host.name, iface.name, iface.address, iface.network
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_host_and_link_appears_once() {
        let s = crate::scenario::parse(
            "[service]\nmode = \"nat\"\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n",
            "nat.toml",
        )
        .expect("valid scenario");
        let text = super::mermaid(&s);
        assert!(text.starts_with("flowchart LR\n"));
        for host in ["client", "director", "rs1", "rs2"] {
            assert_eq!(text.matches(&format!("  host_{host}[")).count(), 1, "{text}");
        }
        // director on both networks, everyone else on one
        assert_eq!(text.matches("---|").count(), 5, "{text}");
        assert!(text.contains("VIP 192.0.2.100:80 nat wlc"), "{text}");
    }
}
