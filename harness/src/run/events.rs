//! Faults during a run: each `[[event]]` fires once the traffic reaches it (requests sent, or
//! time since the traffic started), acting on the lab's running servers, links, sysctls and
//! engines. Every action returns once it has taken effect (a stopped server's listener is
//! closed, a started one listens), and its times are kept for the timeline and the checks.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::future::{select_all, FutureExt};
use futures::Future;
use serde::Serialize;
use tokio::sync::{oneshot, watch};

use super::Held;
use crate::lab::Lab;
use crate::realserver::{self, Behaviour, ServerSpec};
use crate::scenario::{Event, EventAction, EventAt, EventExpect, Scenario};
use crate::traffic::RequestRecord;
use crate::verdict::Check;

/// One event as it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FiredEvent {
    pub name: String,
    pub host: String,
    pub action: String,
    /// When its moment came, since the traffic started.
    #[serde(serialize_with = "ms")]
    pub due_ms: Duration,
    /// When the action had taken effect.
    #[serde(serialize_with = "ms")]
    pub done_ms: Duration,
    /// Why the action failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the traffic tells the events: when it started, how many requests went out, and that it ended.
pub(super) struct Progress {
    pub start: Instant,
    pub sent: watch::Receiver<u64>,
    pub finished: oneshot::Receiver<()>,
}

type Moment<'a> = Pin<Box<dyn Future<Output = Option<usize>> + 'a>>;

/// Fires the scenario's events in the order their moments come, until every one has fired or
/// the traffic has ended (the rest do not fire).
/// `held` is shared with the health checkers, which only try to borrow it, between awaits: an
/// event holds it across its own awaits (a server stopping) without ever making them fail.
#[allow(clippy::await_holding_refcell_ref)]
pub(super) async fn drive(
    scenario: &Scenario,
    lab: &Lab,
    held: &std::cell::RefCell<&mut Held>,
    progress: Progress,
) -> Vec<FiredEvent> {
    let Progress { start, sent, finished } = progress;
    let finished = finished.map(|_| ()).shared();
    let mut pending: Vec<usize> = (0..scenario.events.len()).collect();
    let mut fired = Vec::new();
    while !pending.is_empty() {
        let mut moments: Vec<Moment<'_>> = pending
            .iter()
            .map(|&i| moment(&scenario.events[i], i, start, &sent))
            .collect();
        moments.push(Box::pin(finished.clone().map(|_| None)));
        let (which, _, _) = select_all(moments).await;
        let Some(index) = which else { break };
        let event = &scenario.events[index];
        let due = start.elapsed();
        let error = act(scenario, lab, &mut held.borrow_mut(), event).await.err();
        fired.push(FiredEvent {
            name: event.name.clone(),
            host: event.host.clone(),
            action: event.action.label(),
            due_ms: due,
            done_ms: start.elapsed(),
            error,
        });
        pending.retain(|&i| i != index);
    }
    fired
}

/// Resolves with `index` once the event's moment has come; never, if the traffic ends first.
fn moment<'a>(event: &Event, index: usize, start: Instant, sent: &watch::Receiver<u64>) -> Moment<'a> {
    match event.at {
        EventAt::Request(n) => {
            let mut sent = sent.clone();
            Box::pin(async move {
                match sent.wait_for(|&count| count >= u64::from(n)).await {
                    Ok(_) => Some(index),
                    // Every client is done: the count will not grow.
                    Err(_) => futures::future::pending().await,
                }
            })
        }
        EventAt::Elapsed(at) => {
            let due = tokio::time::Instant::from_std(start + at);
            Box::pin(async move {
                tokio::time::sleep_until(due).await;
                Some(index)
            })
        }
    }
}

async fn act(scenario: &Scenario, lab: &Lab, held: &mut Held, event: &Event) -> Result<(), String> {
    let host = lab
        .host(&event.host)
        .ok_or_else(|| format!("host {} is not in the lab", event.host))?;
    let director = scenario.directors.iter().find(|d| d.name == event.host);
    match (&event.action, director) {
        (EventAction::Stop, Some(_)) => {
            // keepalived's SIGTERM stops its checkers too (keepalived -C removes the services
            // it made): lvslab's go on from another director.
            held.killed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(event.host.clone());
            for (name, daemon) in held.checker_daemons.iter_mut().filter(|(n, _)| *n == event.host) {
                if let Err(e) = daemon.stop().await {
                    eprintln!("lvslab: director {name} keepalived checkers stop: {e}");
                }
            }
            match held.ha.as_mut() {
                // keepalived's SIGTERM: priority 0, VIP given up. The table stays, as with
                // `keepalived -P` over ipvsadm's services (kernel IPVS keeps its connection
                // entries across a service flush too, which a fresh engine would not).
                Some(ha) => ha.stop(&event.host).await,
                None => {
                    let embedded = held
                        .engines
                        .iter()
                        .any(|(n, e)| *n == event.host && e.kind() == crate::director::EngineKind::Embedded);
                    // The VIPs first: a gap with neither would lose SYNs (timeouts, not refusals).
                    if embedded {
                        stand_in_vips(scenario, held, host, director).await?;
                    }
                    stop_engine(held, &event.host)?;
                }
            }
        }
        (EventAction::Start, Some(d)) => {
            held.killed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&event.host);
            set_links(scenario, host, &event.host, true).await?;
            if let Some(ha) = held.ha.as_mut() {
                for iface in interfaces(scenario, &event.host) {
                    ha.link(scenario, &event.host, &iface, true);
                }
            }
            if !held.engines.iter().any(|(name, _)| *name == event.host) {
                held.start_engine(scenario, d, lab).await.map_err(|e| e.to_string())?;
                *held.restarts.entry(event.host.clone()).or_default() += 1;
                // Only once the engine runs: until then the kernel refuses, as the kernel
                // engine's director does until its services are back.
                for (_, iface, vip) in held.standing_vips.iter().filter(|(h, _, _)| *h == event.host) {
                    host.addresses_of(iface)
                        .map_err(|e| e.to_string())?
                        .remove(*vip)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                held.standing_vips.retain(|(h, _, _)| *h != event.host);
            }
            // Its keepalived starts again, checkers and all, and the run's readers of its log
            // (run/health.rs) follow the new one: it goes on in the old one's record.
            if let Some(i) = held
                .checker_daemons
                .iter()
                .position(|(n, daemon)| *n == event.host && daemon.exit().is_some())
            {
                let again =
                    super::health::start_keepalived(scenario, lab, &event.host, Some(&held.checker_daemons[i].1))
                        .await?;
                held.checker_daemons[i].1 = again;
            }
            if let Some(ha) = held.ha.as_mut() {
                ha.start_node(scenario, lab, &event.host)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        (EventAction::Kill, _) => {
            // A power cut: VRRP dies first (SIGKILL: no priority 0, and no FAULT from seeing its
            // links go), then the host falls silent (links down) before the engine goes, so
            // that a kernel answering RST once IPVS is gone is never seen. Its checkers die
            // too: lvslab's stop probing from it, keepalived's -C gets SIGKILL.
            held.killed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(event.host.clone());
            for (_, daemon) in held.checker_daemons.iter_mut().filter(|(n, _)| *n == event.host) {
                daemon.kill();
            }
            if let Some(ha) = held.ha.as_mut() {
                ha.kill(&event.host).await;
            }
            // With VRRP or without: a kernel director would otherwise refuse (its VIP stays
            // local), where a powered-off host answers nothing.
            set_links(scenario, host, &event.host, false).await?;
            stop_engine(held, &event.host)?;
        }
        (EventAction::Freeze, _) => held.ha.as_mut().ok_or("no VRRP")?.freeze(&event.host)?,
        (EventAction::Thaw, _) => held.ha.as_mut().ok_or("no VRRP")?.thaw(&event.host)?,
        (EventAction::BlockAdverts(blocked), _) => crate::ha::adverts::block(host, *blocked).await?,
        (EventAction::Touch(file), _) => {
            let path = lab.host_dir(&event.host).map_err(|e| e.to_string())?.join(file);
            std::fs::write(&path, b"").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        (EventAction::Remove(file), _) => {
            let path = lab.host_dir(&event.host).map_err(|e| e.to_string())?.join(file);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
                _ => {}
            }
        }
        (EventAction::Stop, None) => {
            for server in held.servers.iter_mut().filter(|s| s.name() == event.host) {
                server.halt().await;
            }
        }
        (EventAction::Refuse, _) => {
            for server in held.servers.iter_mut().filter(|s| s.name() == event.host) {
                server.refuse().await;
            }
        }
        (EventAction::Start, None) if held.servers.iter().any(|s| s.name() == event.host) => {
            for server in held.servers.iter_mut().filter(|s| s.name() == event.host) {
                server.resume().await.map_err(|e| e.to_string())?;
            }
        }
        // `state = "down"` in the file: it never had a server.
        (EventAction::Start, None) => {
            let rs = scenario
                .real_server(&event.host)
                .ok_or_else(|| format!("{} is not a real server", event.host))?;
            for (port, proto) in scenario.listeners(rs) {
                let spec = ServerSpec {
                    name: rs.name.clone(),
                    bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                    proto,
                    behaviour: Behaviour::Up,
                };
                let server = realserver::start(host.runtime(), spec)
                    .await
                    .map_err(|e| e.to_string())?;
                held.servers.push(server);
            }
        }
        (EventAction::Slow(delay), _) => with_server(held, &event.host, Behaviour::Slow(*delay))?,
        (EventAction::Error(code), _) => with_server(held, &event.host, Behaviour::Status(*code))?,
        (EventAction::Link(up), _) => {
            set_links(scenario, host, &event.host, *up).await?;
            if let Some(ha) = held.ha.as_mut() {
                for iface in interfaces(scenario, &event.host) {
                    ha.link(scenario, &event.host, &iface, *up);
                }
            }
        }
        (EventAction::Sysctl(list), _) => {
            for (name, value) in list {
                host.set_sysctl(name, value).await.map_err(|e| e.to_string())?;
            }
        }
        (EventAction::Weight(weight), _) => {
            let rs = scenario
                .real_server(&event.host)
                .ok_or_else(|| format!("{} is not a real server", event.host))?;
            for (name, engine) in held.engines.iter_mut() {
                let Some(director) = scenario.directors.iter().find(|d| d.name == *name) else {
                    continue;
                };
                // Its weight in every service it is in, as `ipvsadm -e` run for each.
                for (index, svc) in scenario.services.iter().enumerate() {
                    if !svc.has_real_server(&rs.name) {
                        continue;
                    }
                    let dest = SocketAddrV4::new(rs.address, scenario.table_port(index, rs));
                    engine
                        .set_weight(svc.key_on(scenario.service_vip(index, director)), dest, *weight)
                        .map_err(|e| format!("director {name}: {e}"))?;
                }
            }
        }
    }
    Ok(())
}

fn interfaces(scenario: &Scenario, host: &str) -> Vec<String> {
    scenario
        .host(host)
        .map(|h| h.interfaces.iter().map(|i| i.name.clone()).collect())
        .unwrap_or_default()
}

/// Every interface of `name` up or down.
async fn set_links(scenario: &Scenario, host: &crate::lab::Host, name: &str, up: bool) -> Result<(), String> {
    for iface in interfaces(scenario, name) {
        host.set_link_up(&iface, up).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A kernel director stopped without VRRP keeps its VIPs as local addresses, so its kernel
/// refuses what no IPVS service takes (RST, ICMP port unreachable). A stopped embedded engine
/// left nothing that answers (timeouts): the addresses the kernel engine would have set up go
/// on the director's kernel until it starts.
async fn stand_in_vips(
    scenario: &Scenario,
    held: &mut Held,
    host: &crate::lab::Host,
    director: Option<&crate::scenario::Director>,
) -> Result<(), String> {
    let Some(d) = director else { return Ok(()) };
    let cfg = super::director_config(scenario, d).map_err(|e| e.to_string())?;
    for (iface, vip) in crate::director::kernel::setup::plan(&cfg).addresses {
        host.addresses_of(&iface)
            .map_err(|e| e.to_string())?
            .add(vip)
            .await
            .map_err(|e| e.to_string())?;
        held.standing_vips.push((d.name.clone(), iface, vip));
    }
    Ok(())
}

fn stop_engine(held: &mut Held, director: &str) -> Result<(), String> {
    let at = held.engines.iter().position(|(name, _)| name == director);
    if let Some((name, engine)) = at.map(|i| held.engines.remove(i)) {
        engine.shutdown().map_err(|e| format!("director {name}: {e}"))?;
    }
    Ok(())
}

fn with_server(held: &Held, name: &str, behaviour: Behaviour) -> Result<(), String> {
    let mut listeners = held.servers.iter().filter(|s| s.name() == name).peekable();
    if listeners.peek().is_none() {
        return Err(format!("{name} has no server running (state = \"down\"?)"));
    }
    listeners.for_each(|server| server.set_behaviour(behaviour));
    Ok(())
}

/// The `[expect]` checks about events, against the times they actually fired.
/// An event whose action failed, or whose moment the traffic never reached, fails too.
pub(super) fn checks(
    expect: &EventExpect,
    events: &[Event],
    fired: &[FiredEvent],
    records: &[RequestRecord],
) -> Vec<Check> {
    let find = |name: &str| fired.iter().find(|f| f.name == name);
    let mut out: Vec<Check> = fired
        .iter()
        .filter_map(|f| {
            f.error
                .as_ref()
                .map(|e| Check::new(format!("event \"{}\" fires", f.name), false, Some(e.clone())))
        })
        .collect();
    let last_sent = records.iter().map(|r| r.sent_at).max().unwrap_or_default();
    for e in events.iter().filter(|e| find(&e.name).is_none()) {
        let detail = format!(
            "the traffic ended first (its last request went at {} ms)",
            last_sent.as_millis()
        );
        out.push(Check::new(format!("event \"{}\" fires", e.name), false, Some(detail)));
    }
    if let Some((from, to)) = &expect.errors_between {
        let what = format!("errors only between \"{from}\" and \"{to}\"");
        out.push(match (find(from), find(to)) {
            (Some(a), Some(b)) => {
                let (begin, end) = (a.due_ms, b.done_ms);
                let outside: Vec<&RequestRecord> = records
                    .iter()
                    .filter(|r| !r.is_ok())
                    .filter(|r| r.sent_at + r.latency < begin || r.sent_at > end)
                    .collect();
                let detail = outside.first().map(|r| {
                    format!(
                        "{} failed outside {}..{} ms; the first, request {} sent at {} ms: {}",
                        outside.len(),
                        begin.as_millis(),
                        end.as_millis(),
                        r.seq,
                        r.sent_at.as_millis(),
                        r.error.as_ref().map(ToString::to_string).unwrap_or_default()
                    )
                });
                Check::new(what, outside.is_empty(), detail)
            }
            _ => Check::new(what, false, Some("the events did not both fire".into())),
        });
    }
    if let Some(after) = &expect.answering_after {
        let what = format!("every answering server answers after \"{after}\"");
        out.push(match find(after) {
            Some(e) => {
                let mut answered: Vec<&str> = Vec::new();
                let mut again: Vec<&str> = Vec::new();
                for r in records.iter().filter(|r| r.is_ok()) {
                    let Some(b) = r.backend.as_deref() else { continue };
                    if !answered.contains(&b) {
                        answered.push(b);
                    }
                    if r.sent_at >= e.done_ms && !again.contains(&b) {
                        again.push(b);
                    }
                }
                let missing: Vec<&str> = answered.iter().copied().filter(|b| !again.contains(b)).collect();
                // Both moments: an event done late (a loaded machine) explains a miss.
                let detail = (!missing.is_empty()).then(|| {
                    format!(
                        "no answer after {} ms from {} (the event was due at {} ms)",
                        e.done_ms.as_millis(),
                        missing.join(", "),
                        e.due_ms.as_millis()
                    )
                });
                Check::new(what, missing.is_empty(), detail)
            }
            None => Check::new(what, false, Some("the event did not fire".into())),
        });
    }
    out
}

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1_000_000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::RequestError;

    fn record(seq: u32, sent_ms: u64, backend: &str, failed: bool) -> RequestRecord {
        RequestRecord {
            seq,
            client: "client".into(),
            target: "192.0.2.100:80".parse().unwrap(),
            backend: (!failed).then(|| backend.to_owned()),
            latency: Duration::from_millis(2),
            local: None,
            seen_as: None,
            connection: seq,
            sent_at: Duration::from_millis(sent_ms),
            error: failed.then_some(RequestError::Refused),
        }
    }

    fn fired(name: &str, at_ms: u64) -> FiredEvent {
        FiredEvent {
            name: name.into(),
            host: "rs2".into(),
            action: "stop".into(),
            due_ms: Duration::from_millis(at_ms),
            done_ms: Duration::from_millis(at_ms + 1),
            error: None,
        }
    }

    fn event(name: &str) -> Event {
        Event {
            name: name.into(),
            at: EventAt::Elapsed(Duration::ZERO),
            host: "rs2".into(),
            action: EventAction::Stop,
        }
    }

    fn verdicts(records: &[RequestRecord], fired: &[FiredEvent], events: &[Event]) -> Vec<(String, bool)> {
        let expect = EventExpect {
            errors_between: Some(("down".into(), "up".into())),
            answering_after: Some("up".into()),
            ..Default::default()
        };
        checks(&expect, events, fired, records)
            .into_iter()
            .map(|c| (c.what, c.passed))
            .collect()
    }

    #[test]
    fn errors_count_inside_the_window_when_in_flight_across_its_start() {
        let events = [event("down"), event("up")];
        let fired = [fired("down", 100), fired("up", 200)];
        // Sent 99 ms, still in flight at 100 ms: inside. rs2 answers again at 250 ms.
        let ok = [
            record(0, 50, "rs2", false),
            record(1, 99, "rs2", true),
            record(2, 150, "rs2", true),
            record(3, 250, "rs2", false),
        ];
        assert_eq!(
            verdicts(&ok, &fired, &events),
            vec![
                ("errors only between \"down\" and \"up\"".into(), true),
                ("every answering server answers after \"up\"".into(), true),
            ]
        );
        // A failure after the window, and rs2 silent after "up".
        let bad = [record(0, 50, "rs2", false), record(1, 250, "rs2", true)];
        assert_eq!(
            verdicts(&bad, &fired, &events)
                .iter()
                .map(|(_, p)| *p)
                .collect::<Vec<_>>(),
            vec![false, false]
        );
    }

    #[test]
    fn an_event_that_never_fired_fails_and_so_do_the_checks_naming_it() {
        let events = [event("down"), event("up")];
        let fired = [fired("down", 100)];
        let records = [record(0, 50, "rs1", false)];
        assert_eq!(
            verdicts(&records, &fired, &events),
            vec![
                ("event \"up\" fires".into(), false),
                ("errors only between \"down\" and \"up\"".into(), false),
                ("every answering server answers after \"up\"".into(), false),
            ]
        );
    }
}
