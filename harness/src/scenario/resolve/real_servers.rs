//! Stage 6: the real servers as `ipvsadm -a` states them (address, port, weight), how the lab
//! makes them behave (state, delay), and how their hosts hold the VIP and answer ARP.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::context::{Context, RealServerHost, Source};
use crate::scenario::diagnostic::Problems;
use crate::scenario::model::{Mode, RealServer, ServerState, VipOn};
use crate::scenario::raw::S;
use crate::scenario::validate::{self as v, span};

const DEFAULT_SLOW_DELAY: Duration = Duration::from_millis(500);

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>, service_port: u16) -> Vec<RealServer> {
    // Each server's set-up follows the modes of the services that list it.
    let modes: Vec<(Vec<Mode>, Option<Mode>)> = cx
        .hosts
        .iter()
        .map(|h| {
            let first = cx.lists(0, &h.name).then(|| cx.modes.first().copied()).flatten();
            (cx.rs_modes(&h.name), first)
        })
        .collect();
    let p = &mut *cx.p;
    let mut real_servers = Vec::new();
    for (h, (modes, first_mode)) in cx.hosts.iter_mut().zip(modes) {
        let Source::RealServer(rs) = h.source else { continue };
        let any = |m: Mode| modes.contains(&m);
        let weight: u32 = v::int_in(p, rs.weight.as_ref(), "weight", 0, 65535, 1);
        let rs_port: u16 = v::int_in(p, rs.port.as_ref(), "port", 1, 65535, service_port);
        if let Some(pt) = rs
            .port
            .as_ref()
            .filter(|_| rs_port != service_port)
            .filter(|_| matches!(first_mode, Some(Mode::Dr | Mode::Tun)))
        {
            // `port` is its port in the first service only (later ones have `real_port`).
            let mode = first_mode.unwrap_or(Mode::Dr);
            p.warn(
                span(pt),
                format!(
                    "real server \"{}\" port {rs_port} differs from the service port {service_port}, but {mode} cannot remap ports: its packets still arrive at the VIP's port {service_port}",
                    h.name
                ),
                Some(format!(
                    "DR and TUN forward the packet unchanged (only nat and fullnat change the port): serve {service_port} on the real server, or leave `port` out; kept as written, to reproduce the mistake"
                )),
            );
        }
        let state = v::keyword(p, rs.state.as_ref(), ServerState::Up);
        let delay = match rs.delay_ms.as_ref() {
            Some(d) => {
                if state != ServerState::Slow {
                    p.push(
                        span(d),
                        format!(
                            "`delay_ms` only applies to state \"slow\" (\"{}\" is \"{state}\")",
                            h.name
                        ),
                        Some("add state = \"slow\"".into()),
                    );
                }
                Duration::from_millis(v::int_in(p, Some(d), "delay_ms", 0, 600_000, 0u64))
            }
            None if state == ServerState::Slow => DEFAULT_SLOW_DELAY,
            None => Duration::ZERO,
        };
        // Stated: every VIP of its services goes there; else each VIP where its service's mode puts it.
        let vip_on = rs.vip_on.as_ref().map(|w| v::keyword(p, Some(w), VipOn::None));
        let vip_prefix: u8 = v::int_in(p, rs.vip_prefix.as_ref(), "vip_prefix", 0, 32, 32);
        let arp_default = any(Mode::Dr) || any(Mode::Tun);
        let arp_ignore = arp_sysctl(
            p,
            rs.arp_ignore.as_ref(),
            "arp_ignore",
            &[0, 1, 2, 3, 8],
            arp_default.then_some(1),
        );
        let arp_announce = arp_sysctl(
            p,
            rs.arp_announce.as_ref(),
            "arp_announce",
            &[0, 1, 2],
            arp_default.then_some(2),
        );
        let rp_filter = arp_sysctl(
            p,
            rs.rp_filter.as_ref(),
            "rp_filter",
            &[0, 1, 2],
            any(Mode::Tun).then_some(0),
        );
        real_servers.push(RealServer {
            name: h.name.clone(),
            address: h
                .ifaces
                .first()
                .and_then(|f| f.address)
                .unwrap_or(Ipv4Addr::UNSPECIFIED),
            port: rs_port,
            weight,
            state,
            delay,
        });
        h.real_server = Some(RealServerHost {
            vip_on,
            vip_prefix,
            arp_ignore,
            arp_announce,
            rp_filter,
            down: state == ServerState::Down,
        });
    }
    real_servers
}

/// A small integer sysctl from a fixed set of valid values.
fn arp_sysctl(
    p: &mut Problems<'_>,
    value: Option<&S<i64>>,
    what: &str,
    valid: &[i64],
    default: Option<u8>,
) -> Option<u8> {
    let Some(val) = value else { return default };
    let n = *val.get_ref();
    if !valid.contains(&n) {
        let list: Vec<String> = valid.iter().map(|x| x.to_string()).collect();
        p.error(
            span(val),
            format!("`{what}` = {n} is not a valid value; valid: {}", list.join(" ")),
        );
        return default;
    }
    Some(n as u8)
}
