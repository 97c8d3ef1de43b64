//! Stage 2: the networks, as declared or the mode's defaults, and which one the real servers sit on.

use super::context::{Context, Span, FRONT};
use crate::scenario::model::{Mode, Network};
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>) {
    let (networks, spans) = declared_or_default(cx);
    cx.server_net = if matches!(cx.mode, Mode::Nat | Mode::FullNat) && networks.len() >= 2 {
        1
    } else {
        FRONT
    };
    cx.networks = networks;
    cx.network_spans = spans;
}

fn default_networks(mode: Mode) -> Vec<Network> {
    let net = |name: &str, cidr: &str| Network {
        name: name.into(),
        subnet: cidr.parse().expect("constant subnet"),
        mtu: None,
        tso: true,
    };
    match mode {
        Mode::Nat | Mode::FullNat => vec![net("public", "192.0.2.0/24"), net("private", "198.51.100.0/24")],
        _ => vec![net("lan", "192.0.2.0/24")],
    }
}

/// The declared networks with their `subnet` spans, or the mode's defaults with no spans.
fn declared_or_default(cx: &mut Context<'_, '_, '_>) -> (Vec<Network>, Vec<Span>) {
    let (r, p, mode) = (cx.raw, &mut *cx.p, cx.mode);
    if r.networks.is_empty() {
        return (default_networks(mode), Vec::new());
    }
    let mut out: Vec<Network> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    for (i, n) in r.networks.iter().enumerate() {
        let header = r.network_spans[i].clone();
        let Some(name) = n.name.as_ref() else {
            p.push(header, "[[network]] needs a `name`", Some("e.g. name = \"lan\"".into()));
            continue;
        };
        if !v::lab_label(name.get_ref()) {
            p.push(
                span(name),
                format!("network name \"{}\" is not usable", name.get_ref()),
                Some(v::LAB_LABEL_HINT.into()),
            );
        }
        let Some(subnet_text) = n.subnet.as_ref() else {
            p.push(
                span(name),
                format!("network \"{}\" needs a `subnet`", name.get_ref()),
                Some("e.g. subnet = \"192.0.2.0/24\"".into()),
            );
            continue;
        };
        let Some(subnet) = v::subnet(p, subnet_text) else {
            continue;
        };
        if out.iter().any(|o| o.name == *name.get_ref()) {
            p.push(
                span(name),
                format!("duplicate network name \"{}\"", name.get_ref()),
                None,
            );
            continue;
        }
        if let Some(o) = out
            .iter()
            .find(|o| o.subnet.contains(&subnet.network()) || subnet.contains(&o.subnet.network()))
        {
            p.push(
                span(subnet_text),
                format!(
                    "subnet {subnet} of \"{}\" overlaps {} of \"{}\"",
                    name.get_ref(),
                    o.subnet,
                    o.name
                ),
                None,
            );
            continue;
        }
        out.push(Network {
            name: name.get_ref().clone(),
            subnet,
            mtu: v::mtu(p, n.mtu.as_ref()),
            tso: n.tso.as_ref().is_none_or(|t| *t.get_ref()),
        });
        spans.push(span(subnet_text));
    }
    if out.is_empty() {
        // Keep going with the defaults so later problems are still found.
        return (default_networks(mode), Vec::new());
    }
    if matches!(mode, Mode::Nat | Mode::FullNat) && out.len() < 2 {
        p.push(
            r.network_spans.first().cloned().flatten(),
            format!("{mode} needs two networks: clients' (first) and real servers' (second)"),
            Some("add a second [[network]] for the real servers".into()),
        );
    }
    (out, spans)
}
