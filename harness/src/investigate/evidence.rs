//! A `diagnose::Evidence` from a live lab: the scenario says what was configured, the lab's
//! hosts say what is true now, the run's records and the director's table say what happened.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::diagnose::evidence::{
    self as ev, ClientEvidence, ConnEvidence, DestEvidence, DirectorTableEvidence, Evidence, HostEvidence,
    IpvsEvidence, RealServerEvidence, RecordEvidence, ServiceEvidence, TemplateEvidence,
};
use crate::ipvs::{self, IpvsSnapshot, ServiceSnapshot};
use crate::lab::Lab;
use crate::observe;
use crate::run::{FiredEvent, HealthOutcome, Outage};
use crate::scenario::{self, Role, Scenario};
use crate::traffic::RequestRecord;

/// Host evidence of every lab host taken before the traffic, so counters become deltas.
#[derive(Debug, Default)]
pub struct Baseline {
    hosts: BTreeMap<String, HostEvidence>,
}

impl Baseline {
    /// Reads every host's counters at once (only counters: a full host read costs ~10 ms,
    /// most of it walking the kernel's socket tables for listeners). A host that cannot be
    /// read is left out: its counters will then be absolute (its namespace is as old as
    /// the lab, so nearly the same).
    pub async fn take(scenario: &Scenario, lab: &Lab) -> Baseline {
        let reads = scenario
            .hosts()
            .filter_map(|h| lab.host(&h.name))
            .map(|host| async move {
                let name = host.name().to_owned();
                let label = name.clone();
                let counters = host.exec(move || observe::read_counters(&label)).await.ok();
                (name, counters)
            });
        let hosts = futures::future::join_all(reads)
            .await
            .into_iter()
            .filter_map(|(name, counters)| {
                let counters = counters?.ok()?;
                Some((
                    name.clone(),
                    HostEvidence {
                        name,
                        counters,
                        ..Default::default()
                    },
                ))
            })
            .collect();
        Baseline { hosts }
    }
}

/// What the run produced, as the investigation reads it.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    pub records: &'a [RequestRecord],
    /// The director's table right after the main traffic.
    pub ipvs: Option<&'a IpvsSnapshot>,
    /// Frames for the VIPs that reached the directors during the main traffic, summed over
    /// directors (`None` without a director, or when they could not be counted).
    pub director_seen_packets: Option<u64>,
    /// The IPVS settings the engine runs with.
    pub settings: Option<ipvs::Sysctls>,
    /// What keepalived's checkers did (`None`: no checker ran).
    pub health: Option<&'a HealthOutcome>,
    /// The events that fired during the traffic.
    pub fired: &'a [FiredEvent],
    /// The checked servers' deaths and the checkers' answers.
    pub outages: &'a [Outage],
    /// What the directors' VRRP did (`None`: no `vrrp_instance`).
    pub vrrp: Option<&'a crate::run::VrrpOutcome>,
    /// Every director's name, VIP and table right after the main traffic.
    pub directors: &'a [(String, Ipv4Addr, &'a IpvsSnapshot)],
}

/// Evidence plus what could not be gathered (said in reports, never fatal).
#[derive(Debug, Clone)]
pub struct Gathered {
    pub evidence: Evidence,
    pub problems: Vec<String>,
    /// Who answered ARP for each DR/TUN service's VIP, each VIP once.
    pub arp_probes: Vec<(Ipv4Addr, ev::ArpProbe)>,
}

/// Reads every host of the lab (concurrently), then asks who answers ARP for each DR/TUN
/// service's VIP. Call while the servers and the engine still run: listeners are evidence.
pub async fn gather(
    scenario: &Scenario,
    lab: &Lab,
    baseline: Option<&Baseline>,
    facts: RunFacts<'_>,
    arp_window: Duration,
) -> Gathered {
    let (mut hosts, mut problems) = read_hosts(scenario, lab).await;
    if let Some(base) = baseline {
        for (name, after) in hosts.iter_mut() {
            if let Some(before) = base.hosts.get(name) {
                *after = observe::with_counter_delta(before, std::mem::take(after));
            }
        }
    }
    let mut take_host = |name: &str| {
        hosts.remove(name).unwrap_or_else(|| HostEvidence {
            name: name.to_owned(),
            ..Default::default()
        })
    };

    let mode = scenario.service().mode;
    // The first director stands for the service's table (it serves `service.vip`); the
    // others are there for their MACs and addresses.
    let director = scenario.director().map(|d| take_host(&d.name));
    let other_directors: Vec<HostEvidence> = scenario.directors.iter().skip(1).map(|d| take_host(&d.name)).collect();
    let real_servers = scenario
        .real_servers
        .iter()
        .map(|rs| RealServerEvidence {
            name: rs.name.clone(),
            address: rs.address,
            port: Some(rs.port),
            weight: Some(rs.weight),
            host: take_host(&rs.name),
        })
        .collect();
    let clients = scenario
        .hosts_with_role(Role::Client)
        .map(|c| ClientEvidence {
            name: c.name.clone(),
            host: take_host(&c.name),
        })
        .collect();

    let service_snapshot = facts.ipvs.and_then(|s| service_of(s, scenario.service()));
    let (firewalls, firewall_problems) = super::firewall::gather(scenario, lab).await;
    problems.extend(firewall_problems);
    let health = facts
        .health
        .filter(|_| scenario.services[0].health.is_some())
        .map(|h| super::faults::health_evidence(scenario, 0, h, facts.outages));
    let (arp_probes, arp_problems) = arp_probes(scenario, lab, arp_window).await;
    problems.extend(arp_problems);
    let arp_probe = probe_for(&arp_probes, scenario.service());
    Gathered {
        evidence: Evidence {
            mode,
            service: Some(service_evidence(scenario.service(), service_snapshot)),
            director,
            real_servers,
            clients,
            ipvs: service_snapshot
                .map(|svc| ipvs_evidence(svc, facts.ipvs.map_or(&[][..], |s| &s.conns), facts.settings)),
            // Summed over all directors: "the director saw nothing" must hold for every one.
            director_seen_packets: facts.director_seen_packets,
            arp_probe,
            records: records_evidence(scenario, facts.records),
            probes: Vec::new(),
            health,
            events: super::faults::events_evidence(scenario, facts.fired),
            other_directors,
            vrrp: facts.vrrp.and_then(|v| super::vrrp::evidence(scenario, v)),
            director_tables: director_tables(scenario.service(), facts),
            firewalls,
            fwmark: super::fwmark::evidence(scenario, facts),
            request_body_bytes: scenario.traffic.body_bytes,
        },
        problems,
        arp_probes,
    }
}

/// Every scenario host's evidence by name, read concurrently; unreadable hosts are problems.
async fn read_hosts(scenario: &Scenario, lab: &Lab) -> (BTreeMap<String, HostEvidence>, Vec<String>) {
    let reads = scenario
        .hosts()
        .filter_map(|h| lab.host(&h.name))
        .map(|host| async move { (host.name().to_owned(), observe::host_evidence(host).await) });
    let mut hosts = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, result) in futures::future::join_all(reads).await {
        match result {
            Ok(evidence) => {
                hosts.insert(name, evidence);
            }
            Err(e) => problems.push(format!("could not read host {name}: {e}")),
        }
    }
    (hosts, problems)
}

/// Every DR/TUN service's VIP probed at once (each probe waits out its window): who answers
/// ARP for it. NAT, FULLNAT and direct expect no ARP for the VIP to reach the director.
async fn arp_probes(scenario: &Scenario, lab: &Lab, window: Duration) -> (Vec<(Ipv4Addr, ev::ArpProbe)>, Vec<String>) {
    let mut vips: Vec<Ipv4Addr> = Vec::new();
    for svc in &scenario.services {
        if arp_reaches_director(svc) && !vips.contains(&svc.vip) {
            vips.push(svc.vip);
        }
    }
    let probes = vips
        .into_iter()
        .map(|vip| async move { (vip, arp_probe(scenario, lab, vip, window).await) });
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (vip, result) in futures::future::join_all(probes).await {
        match result {
            Ok(Some(probe)) => found.push((vip, probe)),
            Ok(None) => {}
            Err(problem) => problems.push(problem),
        }
    }
    (found, problems)
}

/// Only DR and TUN put the VIP on the client's network for ARP to ask about.
fn arp_reaches_director(svc: &scenario::Service) -> bool {
    matches!(svc.mode, scenario::Mode::Dr | scenario::Mode::Tun)
}

/// The probe of `svc`'s VIP, when it is a DR/TUN service (a NAT service on the same VIP as a
/// DR one gets none) and its VIP was probed.
fn probe_for(probes: &[(Ipv4Addr, ev::ArpProbe)], svc: &scenario::Service) -> Option<ev::ArpProbe> {
    let (_, probe) = probes
        .iter()
        .find(|(vip, _)| arp_reaches_director(svc) && *vip == svc.vip)?;
    Some(probe.clone())
}

/// From the first client on the VIP's network, on its interface there: who answers ARP for
/// `vip`. `Ok(None)` when every client reaches it through a router (ARP is the router's).
async fn arp_probe(
    scenario: &Scenario,
    lab: &Lab,
    vip: Ipv4Addr,
    window: Duration,
) -> Result<Option<ev::ArpProbe>, String> {
    let Some((client, iface)) = scenario.hosts_with_role(Role::Client).find_map(|c| {
        c.interfaces
            .iter()
            .find(|i| i.address.contains(&vip))
            .map(|i| (c, i.name.clone()))
    }) else {
        return Ok(None);
    };
    let Some(host) = lab.host(&client.name) else {
        return Err(format!("client {} is not in the lab", client.name));
    };
    observe::arp_probe(host, &iface, vip, window)
        .await
        .map(Some)
        .map_err(|e| format!("ARP probe for {vip} from {}: {e}", client.name))
}

/// The scenario's service in the director's table.
/// Each director's table for `svc` on its own VIP, when there are several directors.
fn director_tables(svc: &scenario::Service, facts: RunFacts<'_>) -> Vec<DirectorTableEvidence> {
    if facts.directors.len() < 2 {
        return Vec::new();
    }
    facts
        .directors
        .iter()
        .filter_map(|(name, vip, table)| {
            // A service on a VIP of its own is on it on every director (a VRRP pair's).
            let found = service_on(table, svc, svc.vip).or_else(|| service_on(table, svc, *vip))?;
            Some(DirectorTableEvidence {
                director: name.clone(),
                vip: *vip,
                ipvs: ipvs_evidence(found, &table.conns, facts.settings),
            })
        })
        .collect()
}

fn service_of<'a>(snapshot: &'a IpvsSnapshot, svc: &scenario::Service) -> Option<&'a ServiceSnapshot> {
    service_on(snapshot, svc, svc.vip)
}

/// `svc` as a director serving it on `vip` has it in its table.
fn service_on<'a>(snapshot: &'a IpvsSnapshot, svc: &scenario::Service, vip: Ipv4Addr) -> Option<&'a ServiceSnapshot> {
    snapshot.services.iter().find(|s| s.key() == svc.key_on(vip))
}

/// The service as the live table states it when there is one (that is what the director
/// does), else as the scenario configures it.
pub fn service_evidence(svc: &scenario::Service, live: Option<&ServiceSnapshot>) -> ServiceEvidence {
    let imported_defaults: Vec<ev::ImportedDefault> = svc
        .origin
        .iter()
        .flat_map(|o| {
            o.defaults.iter().map(|d| ev::ImportedDefault {
                sets: d.sets.as_str().to_owned(),
                file: o.file.clone(),
                line: d.line,
                said: d.said.clone(),
            })
        })
        .collect();
    if let Some(s) = live {
        let mut sched_flags = Vec::new();
        for (on, name) in [
            (s.flags.sh_fallback, "sh-fallback"),
            (s.flags.sh_port, "sh-port"),
            (s.flags.mh_fallback, "mh-fallback"),
            (s.flags.mh_port, "mh-port"),
        ] {
            if on {
                sched_flags.push(name.to_owned());
            }
        }
        let persistence_secs = s.persistent.map(|p| u32::try_from(p).unwrap_or(u32::MAX));
        // A fwmark entry has no address (0.0.0.0:0): the VIP and port its marks capture are
        // the scenario's.
        let (vip, port) = if s.fwmark != 0 {
            (svc.vip, svc.port)
        } else {
            (s.vip, s.port)
        };
        return ServiceEvidence {
            vip,
            port,
            proto: s.proto,
            scheduler: s.scheduler.clone(),
            sched_flags,
            persistence_secs,
            persistence_prefix: persistence_secs.map(|_| u32::from(s.netmask).count_ones() as u8),
            one_packet: s.one_packet,
            imported_defaults,
        };
    }
    let persistence_secs = svc.persistence.map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX));
    ServiceEvidence {
        vip: svc.vip,
        port: svc.port,
        proto: svc.protocol,
        scheduler: svc.scheduler.as_str().to_owned(),
        sched_flags: svc.flags.iter().map(|f| f.as_str().to_owned()).collect(),
        persistence_secs,
        persistence_prefix: persistence_secs.map(|_| svc.persistence_prefix),
        one_packet: svc.one_packet,
        imported_defaults,
    }
}

/// `ipvsadm -Ln --stats` / `-Lnc` for one service, plus the engine's IPVS settings.
pub fn ipvs_evidence(
    svc: &ServiceSnapshot,
    conns: &[ipvs::ConnSnapshot],
    settings: Option<ipvs::Sysctls>,
) -> IpvsEvidence {
    let dests = svc
        .dests
        .iter()
        .map(|d| DestEvidence {
            addr: d.addr,
            port: d.port,
            weight: d.weight,
            active: d.active_conns,
            inactive: d.inact_conns,
            persist: d.persist_conns,
            conns_total: d.stats.conns,
        })
        .collect();
    let ours = conns
        .iter()
        .filter(|c| *c.to.ip() == svc.vip && (c.to.port() == svc.port || c.template));
    let mut conn_rows = Vec::new();
    let mut templates = Vec::new();
    for c in ours {
        let expires_secs = Some(u32::try_from(c.expires).unwrap_or(u32::MAX));
        if c.template {
            templates.push(TemplateEvidence {
                client: *c.from.ip(),
                dest: *c.dest.ip(),
                expires_secs,
            });
        } else {
            conn_rows.push(ConnEvidence {
                proto: c.proto,
                client: *c.from.ip(),
                client_port: c.from.port(),
                dest: *c.dest.ip(),
                dest_port: c.dest.port(),
                state: c.state.clone(),
                expires_secs,
            });
        }
    }
    let mut settings_map = BTreeMap::new();
    if let Some(s) = settings {
        settings_map.insert("conn_reuse_mode".to_owned(), s.conn_reuse_mode.to_string());
        settings_map.insert(
            "expire_nodest_conn".to_owned(),
            u8::from(s.expire_nodest_conn).to_string(),
        );
        settings_map.insert(
            "expire_quiescent_template".to_owned(),
            u8::from(s.expire_quiescent_template).to_string(),
        );
        settings_map.insert("sloppy_tcp".to_owned(), u8::from(s.sloppy_tcp).to_string());
    }
    IpvsEvidence {
        dests,
        conns: conn_rows,
        templates,
        settings: settings_map,
    }
}

/// The run's records as the diagnosis reads them, the first service's. A request that failed
/// before it had a socket is counted from its client's first source address.
pub fn records_evidence(scenario: &Scenario, records: &[RequestRecord]) -> Vec<RecordEvidence> {
    service_records_evidence(scenario, 0, records)
}

/// The evidence of `scenario.services[index]`, a service after the first, made from the
/// first's: its own table, requests, real servers and checkers, with the same hosts, VRRP and
/// events, and the ARP probe of its own VIP. The request probes are the first service's, so
/// they stay out.
pub fn for_service(
    scenario: &Scenario,
    first: &Evidence,
    arp_probes: &[(Ipv4Addr, ev::ArpProbe)],
    facts: RunFacts<'_>,
    index: usize,
) -> Evidence {
    let svc = &scenario.services[index];
    let snapshot = facts.ipvs.and_then(|s| service_of(s, svc));
    let real_servers = first
        .real_servers
        .iter()
        .filter(|rs| svc.has_real_server(&rs.name))
        .map(|rs| {
            let mut rs = rs.clone();
            rs.port = scenario.real_server(&rs.name).map(|r| scenario.real_port(index, r));
            rs
        })
        .collect();
    let arp_probe = probe_for(arp_probes, svc);
    Evidence {
        // The rules read the service's own mode.
        mode: svc.mode,
        arp_probe,
        service: Some(service_evidence(svc, snapshot)),
        ipvs: snapshot.map(|s| ipvs_evidence(s, facts.ipvs.map_or(&[][..], |t| &t.conns), facts.settings)),
        real_servers,
        records: service_records_evidence(scenario, index, facts.records),
        probes: Vec::new(),
        health: facts
            .health
            .filter(|_| svc.health.is_some())
            .map(|h| super::faults::health_evidence(scenario, index, h, facts.outages)),
        director_tables: director_tables(svc, facts),
        ..first.clone()
    }
}

fn service_records_evidence(scenario: &Scenario, index: usize, records: &[RequestRecord]) -> Vec<RecordEvidence> {
    let first_source = |client: &str| -> Ipv4Addr {
        scenario
            .traffic
            .clients
            .iter()
            .find(|c| c.name == client)
            .and_then(|c| c.sources.first().copied())
            .or_else(|| scenario.host(client).and_then(|h| h.primary_address()))
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    };
    // With several services, each one's own requests only, or another service's spread
    // would read as this one's.
    records
        .iter()
        .filter(|r| scenario.services.len() < 2 || scenario.service_index_of(r.target) == Some(index))
        .map(|r| RecordEvidence {
            client: r.client.clone(),
            source: r
                .local
                .unwrap_or_else(|| SocketAddr::from((first_source(&r.client), 0))),
            backend: r.backend.clone(),
            connection: r.connection,
            error: r.error.as_ref().map(ToString::to_string),
            sent_ms: Some(r.sent_at.as_secs_f64() * 1000.0),
            seen_as: r.seen_as,
            target: Some(r.target),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::traffic::RequestError;

    const PERSISTENT_SH: &str = r#"
[service]
mode = "dr"
scheduler = "sh"
flags = ["sh-port"]
persistence = 120
persistence_netmask = "255.255.255.0"
[[real_server]]
name = "rs1"
[[real_server]]
name = "rs2"
weight = 0
[director]
sysctl = { "net.ipv4.vs.conn_reuse_mode" = "0" }
"#;

    fn scenario() -> Scenario {
        scenario::parse(PERSISTENT_SH, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t.toml")))
    }

    #[test]
    fn a_fwmark_entry_is_evidenced_on_the_address_and_port_its_marks_capture() {
        let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/dr-lblc-cache.toml");
        let s = scenario::load(std::path::Path::new(file)).unwrap_or_else(|r| panic!("{}", r.render(file)));
        let config = crate::run::director_config(&s, s.director().unwrap()).unwrap();
        let mut table = ipvs::Ipvs::new(config.sysctls);
        let (svc, dests) = config.services[0].clone();
        let id = table.add_service(svc).unwrap();
        for d in dests {
            table.add_dest(id, d).unwrap();
        }
        let snapshot = table.snapshot(Instant::now());
        let live = service_of(&snapshot, s.service()).expect("the FWM service is in the table");
        assert_ne!(live.fwmark, 0);
        assert_eq!(
            (live.vip, live.port),
            (Ipv4Addr::UNSPECIFIED, 0),
            "as the kernel lists it"
        );
        let ev = service_evidence(s.service(), Some(live));
        assert_eq!((ev.vip, ev.port), (s.service().vip, s.service().port));
        assert_eq!(ev.scheduler, "lblc");
    }

    #[test]
    fn service_from_the_scenario_and_from_the_live_table_agree() {
        let s = scenario();
        let from_file = service_evidence(s.service(), None);
        assert_eq!(from_file.scheduler, "sh");
        assert_eq!(from_file.sched_flags, ["sh-port"]);
        assert_eq!(
            (from_file.persistence_secs, from_file.persistence_prefix),
            (Some(120), Some(24))
        );

        let config = crate::run::director_config(&s, s.director().unwrap()).unwrap();
        let mut table = ipvs::Ipvs::new(config.sysctls);
        let (svc, dests) = config.services[0].clone();
        let id = table.add_service(svc).unwrap();
        for d in dests {
            table.add_dest(id, d).unwrap();
        }
        let syn = ipvs::PacketIn {
            proto: ipvs::Proto::Tcp,
            saddr: Ipv4Addr::new(192, 0, 2, 201),
            sport: 40000,
            daddr: s.service().vip,
            dport: 80,
            tcp: Some(ipvs::TcpFlags {
                syn: true,
                ..Default::default()
            }),
            len: 60,
        };
        let _ = table.process_in(&syn, Instant::now());
        let snapshot = table.snapshot(Instant::now());
        let live = service_of(&snapshot, s.service()).expect("the service is in the table");
        assert_eq!(service_evidence(s.service(), Some(live)), from_file);

        let ev = ipvs_evidence(live, &snapshot.conns, Some(config.sysctls));
        assert_eq!(
            ev.dests.iter().map(|d| d.weight).collect::<Vec<_>>(),
            [0, 1],
            "newest first"
        );
        assert_eq!(ev.templates.len(), 1, "{ev:?}");
        assert_eq!(ev.templates[0].client, Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(ev.conns.len(), 1);
        assert_eq!(
            (ev.conns[0].client_port, ev.conns[0].state.as_str()),
            (40000, "SYN_RECV")
        );
        assert_eq!(ev.settings.get("conn_reuse_mode").map(String::as_str), Some("0"));
    }

    #[test]
    fn a_request_that_never_had_a_socket_counts_from_its_clients_address() {
        let s = scenario();
        let ok = RequestRecord {
            seq: 0,
            client: "client".into(),
            target: "192.0.2.100:80".parse().unwrap(),
            backend: Some("rs1".into()),
            latency: Duration::from_millis(1),
            local: Some("192.0.2.201:40000".parse().unwrap()),
            seen_as: None,
            connection: 0,
            sent_at: Duration::ZERO,
            error: None,
        };
        let failed = RequestRecord {
            seq: 1,
            backend: None,
            local: None,
            connection: 1,
            error: Some(RequestError::Timeout),
            ..ok.clone()
        };
        let records = records_evidence(&s, &[ok, failed]);
        assert_eq!(records[0].source, "192.0.2.201:40000".parse().unwrap());
        assert_eq!(records[1].source, "192.0.2.201:0".parse().unwrap());
        assert_eq!(records[1].error.as_deref(), Some("timeout"));
    }
}
