//! A resolved scenario turned into the lab's plan: hosts, segments, addresses, routes, sysctls.

use crate::lab::{HostPlan, IfacePlan, LabPlan, RoutePlan, TunPlan};
use crate::scenario::{Host, Role, Scenario};

/// TUN-mode real servers get this device when the kernel has no ipip (the decapsulator feeds it).
pub const TUN_DEVICE: &str = "tunl0";

pub fn lab_plan(scenario: &Scenario) -> LabPlan {
    LabPlan {
        name: scenario.name.clone(),
        hosts: scenario.hosts().map(|h| host_plan(scenario, h)).collect(),
        segments: scenario.networks.iter().map(|n| n.name.clone()).collect(),
    }
}

fn host_plan(scenario: &Scenario, host: &Host) -> HostPlan {
    let segmented = |network: &str| scenario.networks.iter().any(|n| n.name == network && !n.tso);
    HostPlan {
        name: host.name.clone(),
        interfaces: host
            .interfaces
            .iter()
            .map(|i| IfacePlan {
                name: i.name.clone(),
                segment: i.network.clone(),
                addrs: std::iter::once(i.address).chain(i.secondary.iter().copied()).collect(),
                mac: Some(i.mac),
                mtu: i.mtu,
                segmented: segmented(&i.network),
            })
            .collect(),
        loopback_addrs: host.loopback_vips.clone(),
        tun_devices: if host.tun_vips.is_empty() {
            vec![]
        } else {
            vec![TunPlan {
                name: TUN_DEVICE.to_owned(),
                addrs: host.tun_vips.clone(),
            }]
        },
        routes: host
            .routes
            .iter()
            .map(|r| RoutePlan {
                dst: r.dst,
                via: r.via,
                dev: None,
            })
            .collect(),
        sysctls: host.sysctls.clone(),
        link_up: host.link_up,
        // Everyone talks to clients, directors and routers; real servers mostly to them.
        well_known: host.role != Role::RealServer,
        nftables: host.nftables.clone(),
    }
}
