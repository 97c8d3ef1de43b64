//! Resolution: raw file → `Scenario`, in named stages over one [`Context`]. Each stage applies
//! the defaults of the chosen forwarding mode for its part (address plan, VIP placement,
//! ARP/rp_filter sysctls, gateways) and checks what only makes sense once the earlier parts
//! are known (duplicates, addresses outside their network, references to hosts).
//!
//! Every host is one [`HostDraft`](context::HostDraft) from the `hosts` stage on; later stages
//! fill in its addresses, VIP and real-server setup, and `hosts::finish` turns the drafts into
//! the model's hosts, in the same order.

mod address_plan;
mod addresses;
mod checkers;
mod context;
mod directors;
mod events;
mod expect;
mod firewall;
mod fwmark;
mod health;
mod hosts;
mod interfaces;
mod networks;
mod real_servers;
mod routes;
mod service;
mod sysctls;
mod traffic;
mod vips;
mod vrrp;

use super::diagnostic::Problems;
use super::model::{EngineChoice, Scenario};
use super::raw::RawScenario;
use super::suggest;
use super::validate as v;
use context::Context;

pub(crate) fn resolve(raw: &RawScenario, default_name: &str, p: &mut Problems<'_>) -> Scenario {
    let name = service::scenario_name(raw, default_name, p);
    let engine = v::keyword(p, raw.top.engine.as_ref(), EngineChoice::Auto);
    let mut services = service::resolve_all(raw, engine, p);
    fwmark::resolve(raw, &mut services, p);

    let mut cx = Context::new(raw, p, services.iter().map(|s| s.mode).collect());
    networks::resolve(&mut cx);
    hosts::draft(&mut cx);
    addresses::plan_networks(&mut cx);
    addresses::claim_stated(&mut cx);
    let names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    let service_vips = vips::choose(&mut cx, &names);
    let vip = service_vips[0];
    addresses::assign_defaults(&mut cx);
    let real_servers = real_servers::resolve(&mut cx, services[0].port);
    service::finish(raw, &mut services, &service_vips, &real_servers, cx.p);
    service::check_mode_mix(raw, &services, cx.p);
    let directors = directors::resolve(&mut cx);
    let mut hosts = hosts::finish(&cx, &service_vips);
    sysctls::apply(&mut cx, &mut hosts);
    firewall::apply(&mut cx, &mut hosts, vip);
    routes::add_default_routes(&mut cx, &mut hosts);
    routes::add_vip_routes(&mut cx, &mut hosts, &service_vips);
    let mut traffic = traffic::resolve(&mut cx, &mut hosts);
    traffic.services = service::traffic_targets(raw, &services, cx.p);
    fwmark::finish(&mut cx, &mut services, vip, &mut hosts, &mut traffic);
    let mut expect = expect::resolve(&mut cx, &real_servers, &traffic);
    let raws: Vec<_> = std::iter::once(&raw.service).chain(&raw.more_services).collect();
    for (index, (svc, raw_svc)) in services.iter_mut().zip(&raws).enumerate() {
        svc.health = health::resolve(&mut cx, index, svc, raw_svc.check.as_ref(), &real_servers);
    }
    for (svc, raw_svc) in services.iter_mut().zip(&raws) {
        if let Some(e) = &raw_svc.expect {
            let mut resolved = expect::resolve_for_service(&mut cx, svc, e, &real_servers, &traffic);
            health::resolve_service_expect(&mut cx, svc, e, &mut resolved, &real_servers);
            svc.expect = Some(resolved);
        }
    }
    health::resolve_expect(&mut cx, &mut expect, &services, &real_servers);
    let vrrp = vrrp::resolve(&mut cx, &services, &hosts);
    let checkers = checkers::resolve(raw, engine, &services, cx.p);
    let (events, expect_events) = events::resolve(&mut cx, &hosts, &traffic, vrrp.as_ref());

    Scenario {
        name,
        description: raw.top.description.as_ref().map(|d| d.get_ref().clone()),
        engine,
        services,
        directors,
        real_servers,
        networks: cx.networks,
        hosts,
        traffic,
        expect,
        events,
        expect_events,
        vrrp,
        checkers,
    }
}

/// "did you mean" for a reference to an unknown name, else the names there are.
fn reference_hint(name: &str, candidates: &[String]) -> Option<String> {
    suggest::did_you_mean(name, candidates.iter().map(String::as_str)).or_else(|| {
        let list: Vec<&str> = candidates.iter().map(String::as_str).collect();
        (!list.is_empty()).then(|| format!("known: {}", suggest::list(&list)))
    })
}
