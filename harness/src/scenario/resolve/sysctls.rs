//! Stage 8: each host's sysctls. First what the role needs (forwarding on routers, ARP and
//! rp_filter on real servers), then the file's own `sysctl` tables, each checked for this host.

use super::context::{Context, HostDraft};
use crate::scenario::model::{Host, Role};
use crate::scenario::sysctl;

pub(super) fn apply(cx: &mut Context<'_, '_, '_>, hosts: &mut [Host]) {
    for (h, host) in cx.hosts.iter().zip(hosts.iter_mut()) {
        role_defaults(h, host);
        let devices = sysctl::lab_devices(host);
        let name = host.name.clone();
        let target = sysctl::Target {
            host: &name,
            role: h.role(),
            devices: &devices,
        };
        for (k, val) in h.sysctls().into_iter().flatten() {
            if h.role() == Role::Director && sysctl::is_engine(k) {
                continue; // the engine's, collected by the `directors` stage
            }
            if let Some(value) = sysctl::host_value(cx.p, &target, k, val) {
                set_sysctl(&mut host.sysctls, k, value);
            }
        }
    }
}

fn role_defaults(h: &HostDraft<'_>, host: &mut Host) {
    match h.role() {
        Role::Director => host.sysctls.push(("net.ipv4.ip_forward".into(), "0".into())),
        Role::Router => host.sysctls.push(("net.ipv4.ip_forward".into(), "1".into())),
        Role::RealServer => {
            let Some(x) = &h.real_server else { return };
            let ifnames: Vec<String> = host.interfaces.iter().map(|i| i.name.clone()).collect();
            for (key, value) in [("arp_ignore", x.arp_ignore), ("arp_announce", x.arp_announce)] {
                if let Some(value) = value {
                    host.sysctls
                        .push((format!("net.ipv4.conf.all.{key}"), value.to_string()));
                    for ifname in &ifnames {
                        host.sysctls
                            .push((format!("net.ipv4.conf.{ifname}.{key}"), value.to_string()));
                    }
                }
            }
            if let Some(value) = x.rp_filter {
                // The kernel uses max(all, interface); `default` covers tunl0,
                // which is created after the sysctls are applied.
                for scope in ["all", "default"]
                    .into_iter()
                    .map(String::from)
                    .chain(ifnames.iter().cloned())
                {
                    host.sysctls
                        .push((format!("net.ipv4.conf.{scope}.rp_filter"), value.to_string()));
                }
            }
        }
        Role::Client => {}
    }
}

/// Replaces `key` in place, or appends it.
fn set_sysctl(list: &mut Vec<(String, String)>, key: &str, value: String) {
    match list.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value,
        None => list.push((key.to_string(), value)),
    }
}
