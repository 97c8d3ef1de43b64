//! Stage 10: the traffic: how many requests, how, from which clients and source addresses
//! (extra sources are secondaries on the client's interface, from .150 down).

use std::net::Ipv4Addr;
use std::time::Duration;

use hyper::http::uri::PathAndQuery;
use ipnet::Ipv4Net;

use super::address_plan::{self, Plan, Step};
use super::context::Context;
use super::reference_hint;
use crate::scenario::model::{Comparison, ConnectionMode, Host, Role, Traffic, TrafficClient};
use crate::scenario::raw::RawSources;
use crate::scenario::validate::{self as v, span};

pub(super) fn resolve(cx: &mut Context<'_, '_, '_>, hosts: &mut [Host]) -> Traffic {
    let r = cx.raw;
    let client_names: Vec<String> = cx.with_role(Role::Client).map(|h| h.name.clone()).collect();
    // A real server may send too: the test run on a real server (why-one-backend cause 3).
    let server_names: Vec<String> = cx.with_role(Role::RealServer).map(|h| h.name.clone()).collect();
    let director_names: Vec<String> = cx.with_role(Role::Director).map(|h| h.name.clone()).collect();
    let plans: Vec<(String, Plan)> = cx
        .networks
        .iter()
        .map(|n| n.name.clone())
        .zip(cx.plans.iter().copied())
        .collect();
    let (p, used) = (&mut *cx.p, &mut cx.used);
    let t = &r.traffic;
    let rate = t.rate.as_ref().and_then(|r| {
        let x = *r.get_ref();
        if x.is_finite() && x > 0.0 && x <= 100_000.0 {
            Some(x)
        } else {
            p.push(
                span(r),
                format!("`rate` = {x} must be more than 0 and at most 100000 requests per second"),
                Some("leave it out to send back to back".into()),
            );
            None
        }
    });
    let body_bytes = body_bytes(p, r);
    let duration = t
        .duration_ms
        .as_ref()
        .map(|d| Duration::from_millis(v::int_in(p, Some(d), "duration_ms", 1, 86_400_000, 1000u64)));
    let senders = match t.clients.as_ref() {
        Some(list) => list.len().max(1),
        None => client_names.len().max(1),
    };
    // A rate and a duration without `requests`: as many as the schedule holds.
    let paced_requests = match (rate, duration, t.requests.as_ref()) {
        (Some(rate), Some(d), None) => Some(
            (rate * d.as_secs_f64() / senders as f64)
                .ceil()
                .clamp(1.0, 10_000_000.0) as u32,
        ),
        _ => None,
    };
    let requests: u32 = match t.requests.as_ref() {
        _ if paced_requests.is_some() => paced_requests.unwrap_or(100),
        Some(n) if *n.get_ref() == 0 => {
            p.push(
                span(n),
                "`requests` = 0: the scenario would send nothing",
                Some("the default is 100".into()),
            );
            100
        }
        other => v::int_in(p, other, "requests", 1, 10_000_000, 100),
    };
    let connection = v::keyword(p, t.connection.as_ref(), ConnectionMode::New);
    let compare = t.compare.as_ref().map(|c| v::keyword(p, Some(c), Comparison::Exact));
    let concurrency: u32 = v::int_in(p, t.concurrency.as_ref(), "concurrency", 1, 10_000, 1);
    let source_port: Option<u16> = t
        .source_port
        .as_ref()
        .map(|sp| v::int_in(p, Some(sp), "source_port", 1, 65535, 0u16))
        .filter(|&x| x != 0);
    let timeout = Duration::from_millis(v::int_in(p, t.timeout_ms.as_ref(), "timeout_ms", 1, 3_600_000, 2000u64));
    let path = t
        .path
        .as_ref()
        .and_then(|pa| v::request_path(p, pa))
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let names: Vec<String> = match t.clients.as_ref() {
        None => client_names.clone(),
        Some(list) => {
            let mut out = Vec::new();
            for c in list {
                if client_names.contains(c.get_ref()) || server_names.contains(c.get_ref()) {
                    out.push(c.get_ref().clone());
                } else if director_names.contains(c.get_ref()) {
                    p.push(
                        span(c),
                        format!("traffic client \"{}\" is a director: lvslab does not send from a director", c.get_ref()),
                        Some("kernel IPVS schedules a director's own connections (its LOCAL_OUT hook), which the embedded engine cannot stand in for; send from a [[client]] or a real server".into()),
                    );
                } else if r.complete {
                    p.push(
                        span(c),
                        format!(
                            "traffic client \"{}\" is neither a [[client]] nor a real server",
                            c.get_ref()
                        ),
                        reference_hint(c.get_ref(), &[client_names.clone(), server_names.clone()].concat()),
                    );
                }
            }
            out
        }
    };
    if t.clients.as_ref().is_some_and(|l| l.is_empty()) {
        p.push(
            None,
            "traffic.clients is empty: no client would send",
            Some("remove it to send from every client".into()),
        );
    }
    // Sources: each client's own address first, then extra addresses from .150 down.
    let mut clients = Vec::new();
    for name in &names {
        let Some(host) = hosts.iter_mut().find(|h| h.name == *name) else {
            continue;
        };
        let Some(eth0) = host.interfaces.first_mut() else {
            continue;
        };
        let own = eth0.address.addr();
        let mut sources = vec![own];
        let extra = t
            .sources
            .as_ref()
            .filter(|s| !matches!(s.get_ref(), RawSources::Count(1)));
        if let Some(s) = extra.filter(|_| server_names.contains(name)) {
            p.push(
                span(s),
                format!("`sources` adds addresses to clients, and \"{name}\" is a real server"),
                Some(
                    "a real server sends from its own address: leave it out of traffic.clients or drop `sources`"
                        .into(),
                ),
            );
            clients.push(TrafficClient {
                name: name.clone(),
                sources,
            });
            continue;
        }
        match t.sources.as_ref().map(|s| (s.get_ref(), span(s))) {
            None => {}
            Some((RawSources::Count(n), s)) => {
                let n = *n;
                if !(1..=1000).contains(&n) {
                    p.push(s, format!("`sources` = {n} is out of range 1..=1000"), None);
                } else {
                    for _ in 1..n {
                        let plan = plans
                            .iter()
                            .find(|(n, _)| *n == eth0.network)
                            .map_or_else(|| Plan::new(eth0.address.trunc()), |(_, plan)| *plan);
                        let free = plan.first_free(address_plan::FIRST_EXTRA_SOURCE_HOST, Step::Down, |a| {
                            used.contains_key(a)
                        });
                        match free.map(|(_, a)| a) {
                            Some(a) => {
                                used.insert(a, (name.clone(), s.clone()));
                                eth0.secondary
                                    .push(Ipv4Net::new(a, eth0.address.prefix_len()).expect("valid prefix"));
                                sources.push(a);
                            }
                            None => {
                                p.push(
                                    s.clone(),
                                    format!("no free address left for {n} sources of \"{name}\""),
                                    Some("give fewer sources or a larger subnet".into()),
                                );
                                break;
                            }
                        }
                    }
                }
            }
            Some((RawSources::List(list), s)) => {
                if names.len() > 1 {
                    p.push(
                        s.clone(),
                        "a list of `sources` needs exactly one traffic client",
                        Some("give a count instead, or set traffic.clients to one client".into()),
                    );
                }
                sources.clear();
                for text in list {
                    let Ok(a) = text.parse::<Ipv4Addr>() else {
                        p.push(s.clone(), format!("source \"{text}\" is not an IPv4 address"), None);
                        continue;
                    };
                    if !eth0.address.contains(&a) {
                        p.push(
                            s.clone(),
                            format!(
                                "source {a} is outside the network of \"{name}\" ({})",
                                eth0.address.trunc()
                            ),
                            None,
                        );
                        continue;
                    }
                    if a != own {
                        if let Some((owner, _)) = used.get(&a).filter(|(o, _)| o != name) {
                            p.push(
                                s.clone(),
                                format!("source {a} is already the address of \"{owner}\""),
                                None,
                            );
                            continue;
                        }
                        used.insert(a, (name.clone(), s.clone()));
                        eth0.secondary
                            .push(Ipv4Net::new(a, eth0.address.prefix_len()).expect("valid prefix"));
                    }
                    sources.push(a);
                }
                if sources.is_empty() {
                    sources.push(own);
                }
            }
        }
        clients.push(TrafficClient {
            name: name.clone(),
            sources,
        });
    }
    Traffic {
        requests,
        connection,
        concurrency,
        clients,
        source_port,
        timeout,
        path,
        compare,
        rate,
        duration,
        services: Vec::new(),
        destinations: Vec::new(),
        hot: None,
        body_bytes,
    }
}

/// Largest request body: big enough for any MTU question, small enough to hold in memory.
const MAX_BODY_BYTES: i64 = 16 << 20;

/// `body_bytes`: HTTP requests only (a UDP service's datagrams have no body to size).
fn body_bytes(p: &mut crate::scenario::diagnostic::Problems<'_>, r: &crate::scenario::raw::RawScenario) -> u32 {
    let Some(b) = r.traffic.body_bytes.as_ref() else {
        return 0;
    };
    let udp = r
        .service
        .protocol
        .as_ref()
        .is_some_and(|p| p.get_ref().eq_ignore_ascii_case("udp"));
    if udp {
        p.push(
            span(b),
            "`body_bytes` needs a TCP service: requests with a body are HTTP POSTs",
            Some("leave it out for UDP".into()),
        );
        return 0;
    }
    v::int_in(p, Some(b), "body_bytes", 0, MAX_BODY_BYTES, 0)
}
