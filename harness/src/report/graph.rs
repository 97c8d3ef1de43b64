//! The scenario's topology as text graphs: a Mermaid flowchart and a Graphviz (dot) graph,
//! with hosts, networks, addresses, the VIP. The SVG drawing is in `report::svg`.

use std::fmt::Write;

use crate::scenario::{Host, Role, Scenario};

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Client => "client",
        Role::Director => "director",
        Role::RealServer => "real server",
        Role::Router => "router",
    }
}

/// The lines that describe a host beyond its name and role: its VIPs, and on a director its services.
pub fn host_notes(scenario: &Scenario, host: &Host) -> Vec<String> {
    let mut notes: Vec<String> = host
        .loopback_vips
        .iter()
        .map(|v| format!("{v} on lo"))
        .chain(host.tun_vips.iter().map(|v| format!("{v} on tunl0")))
        .collect();
    if host.role == Role::Director {
        for svc in &scenario.services {
            notes.push(format!("VIP {}:{} {} {}", svc.vip, svc.port, svc.mode, svc.scheduler));
        }
    }
    notes
}

pub fn mermaid(scenario: &Scenario) -> String {
    let mut out = String::from("flowchart LR\n");
    for net in &scenario.networks {
        let _ = writeln!(out, "  net_{0}{{{{\"{0}<br/>{1}\"}}}}", net.name, net.subnet);
    }
    for host in scenario.hosts() {
        let role = role_name(host.role);
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
            // Every service, each with its own mode.
            for svc in &scenario.services {
                let _ = write!(
                    label,
                    "<br/>VIP {}:{} {} {}",
                    svc.vip, svc.port, svc.mode, svc.scheduler
                );
            }
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

/// The topology for Graphviz: `lvslab graph FILE --format dot | dot -Tpng > lab.png`.
/// Networks are ellipses, hosts boxes listing their role, VIPs and MACs; each link is labelled
/// with the interface and its address.
pub fn dot(scenario: &Scenario) -> String {
    let mut out = format!(
        "graph {} {{\n  layout=dot;\n  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=10];\n",
        quoted(&scenario.name)
    );
    for net in &scenario.networks {
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, style=filled, fillcolor=\"#e8eef7\", label={}];",
            quoted(&format!("net:{}", net.name)),
            quoted(&format!("{}\n{}", net.name, net.subnet))
        );
    }
    for host in scenario.hosts() {
        let mut lines = vec![host.name.clone(), role_name(host.role).to_owned()];
        lines.extend(host.interfaces.iter().map(|i| format!("{} {}", i.name, i.mac)));
        lines.extend(host_notes(scenario, host));
        let _ = writeln!(
            out,
            "  {} [shape=box, style=rounded, label={}];",
            quoted(&format!("host:{}", host.name)),
            quoted(&lines.join("\n"))
        );
    }
    for host in scenario.hosts() {
        for iface in &host.interfaces {
            let _ = writeln!(
                out,
                "  {} -- {} [label={}];",
                quoted(&format!("host:{}", host.name)),
                quoted(&format!("net:{}", iface.network)),
                quoted(&format!("{} {}", iface.name, iface.address))
            );
        }
    }
    out.push_str("}\n");
    out
}

/// A dot quoted string: `"` and `\` escaped, line breaks as dot's centred `\n`.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
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

    fn shipped(name: &str) -> crate::scenario::Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        crate::scenario::load(&path).unwrap_or_else(|_| panic!("{name} loads"))
    }

    #[test]
    fn dot_of_a_nat_lab() {
        let s = shipped("nat-rr.toml");
        let text = super::dot(&s);
        let links: usize = s.hosts().map(|h| h.interfaces.len()).sum();
        assert_eq!(text.matches(" -- ").count(), links, "{text}");
        insta::assert_snapshot!("dot_nat_rr", text);
    }

    #[test]
    fn dot_of_an_arp_flux_lab() {
        insta::assert_snapshot!("dot_why_arp_flux", super::dot(&shipped("why-arp-flux.toml")));
    }

    #[test]
    fn dot_quotes_names_and_escapes_quotes_and_backslashes() {
        assert_eq!(super::quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        let mut s = shipped("nat-rr.toml");
        s.name = "x\" -- evil".into();
        assert!(super::dot(&s).starts_with("graph \"x\\\" -- evil\" {"));
    }
}
