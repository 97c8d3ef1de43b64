//! Reading one host interface from the file (`network`/`address`/`mac` keys or an
//! `interfaces` entry), checked against the networks; and the default MAC.

use std::net::Ipv4Addr;

use super::context::{Context, IfaceDraft, Span};
use crate::scenario::raw::{RawInterface, S};
use crate::scenario::suggest;
use crate::scenario::validate::{self as v, span};
use crate::wire::Mac;

impl Context<'_, '_, '_> {
    fn network_index(&mut self, name: &S<String>) -> Option<usize> {
        let found = self.networks.iter().position(|n| n.name == *name.get_ref());
        if found.is_none() {
            let names: Vec<&str> = self.networks.iter().map(|n| n.name.as_str()).collect();
            self.p.push(
                span(name),
                format!("network \"{}\" does not exist", name.get_ref()),
                suggest::did_you_mean(name.get_ref(), names.iter().copied())
                    .or_else(|| Some(format!("networks: {}", suggest::list(&names)))),
            );
        }
        found
    }

    /// One interface from `network`/`address`/`mac` keys (host shorthand).
    pub(super) fn shorthand_iface(
        &mut self,
        network: Option<&S<String>>,
        address: Option<&S<String>>,
        mac: Option<&S<String>>,
        default_net: usize,
    ) -> Option<IfaceDraft> {
        let addr = address.and_then(|a| v::ipv4(self.p, a, "address"));
        let address_span = address.and_then(span);
        let net = match network {
            Some(n) => self.network_index(n)?,
            None => match addr {
                Some(a) => match self.networks.iter().position(|n| n.subnet.contains(&a)) {
                    Some(i) => i,
                    None => {
                        let nets: Vec<String> = self
                            .networks
                            .iter()
                            .map(|n| format!("{} {}", n.name, n.subnet))
                            .collect();
                        self.p.push(
                            address_span,
                            format!("address {a} is outside every network"),
                            Some(format!("networks: {}", nets.join(", "))),
                        );
                        return None;
                    }
                },
                None => default_net,
            },
        };
        let addr = addr.and_then(|a| self.check_in_network(a, net, address_span.clone()));
        let mac = mac.and_then(|m| v::mac(self.p, m));
        Some(IfaceDraft {
            network: net,
            address: addr,
            address_span,
            mac,
            mtu: None,
        })
    }

    /// One entry of an `interfaces` list.
    pub(super) fn explicit_iface(&mut self, i: &S<RawInterface>) -> Option<IfaceDraft> {
        let raw = i.get_ref();
        let Some(network) = raw.network.as_ref() else {
            self.p.push(
                span(i),
                "interface needs a `network`",
                Some("e.g. { network = \"lan\", address = \"192.0.2.1\" }".into()),
            );
            return None;
        };
        let net = self.network_index(network)?;
        let address_span = raw.address.as_ref().and_then(span);
        let addr = raw
            .address
            .as_ref()
            .and_then(|a| v::ipv4(self.p, a, "address"))
            .and_then(|a| self.check_in_network(a, net, address_span.clone()));
        let mac = raw.mac.as_ref().and_then(|m| v::mac(self.p, m));
        let mtu = v::mtu(self.p, raw.mtu.as_ref());
        Some(IfaceDraft {
            network: net,
            address: addr,
            address_span,
            mac,
            mtu,
        })
    }

    fn check_in_network(&mut self, a: Ipv4Addr, net: usize, s: Span) -> Option<Ipv4Addr> {
        let n = &self.networks[net];
        if !n.subnet.contains(&a) {
            self.p.push(
                s,
                format!("address {a} is outside network \"{}\" ({})", n.name, n.subnet),
                None,
            );
            return None;
        }
        if a == n.subnet.network() || a == n.subnet.broadcast() {
            self.p.push(
                s,
                format!(
                    "address {a} is the {} address of {}",
                    if a == n.subnet.network() {
                        "network"
                    } else {
                        "broadcast"
                    },
                    n.subnet
                ),
                None,
            );
            return None;
        }
        Some(a)
    }

    pub(super) fn gateway(&mut self, gw: Option<&S<String>>) -> Option<(Ipv4Addr, Span)> {
        let gw = gw?;
        v::ipv4(self.p, gw, "gateway").map(|a| (a, span(gw)))
    }
}

/// Locally administered, stable MAC from host and interface name (FNV-1a),
/// so neighbour tables read the same from run to run.
pub(super) fn default_mac(host: &str, iface: &str) -> Mac {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in host.bytes().chain([b'/']).chain(iface.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let h = hash.to_be_bytes();
    Mac([0x02, h[3], h[4], h[5], h[6], h[7]])
}
