//! A scenario with several services: each one's own spread (its requests, over its own
//! real servers) and the checks of its `[service.expect]`.

use serde::Serialize;

use crate::scenario::{Scenario, Service};
use crate::tally::Tally;
use crate::traffic::RequestRecord;
use crate::verdict::{self, Check};

/// One service's requests and where they went.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceSpread {
    pub name: String,
    /// `VIP:port` as `ipvsadm -Ln` lists it, with the protocol.
    pub service: String,
    /// Its own forwarding mode (services of one scenario may differ).
    pub mode: String,
    pub scheduler: String,
    pub tally: Tally,
}

/// Whether `record` was sent to `services[index]` (the services the traffic goes to share
/// the protocol, so the VIP and port tell them apart).
fn belongs(scenario: &Scenario, record: &RequestRecord, index: usize) -> bool {
    scenario.service_index_of(record.target) == Some(index)
}

fn tally_of<'a>(scenario: &Scenario, service: &Service, records: impl IntoIterator<Item = &'a RequestRecord>) -> Tally {
    let members = scenario
        .real_servers
        .iter()
        .filter(|rs| service.has_real_server(&rs.name));
    super::tally(members.map(|rs| rs.name.as_str()), records)
}

/// Each service the traffic went to, when there are several; empty for one.
pub fn spreads(scenario: &Scenario, records: &[RequestRecord]) -> Vec<ServiceSpread> {
    if scenario.services.len() < 2 {
        return Vec::new();
    }
    scenario
        .traffic
        .services
        .iter()
        .map(|&i| {
            let svc = &scenario.services[i];
            ServiceSpread {
                name: svc.name.clone(),
                service: format!("{} {}:{}", svc.protocol.name(), svc.vip, svc.port),
                mode: svc.mode.to_string(),
                scheduler: svc.scheduler.to_string(),
                tally: tally_of(scenario, svc, records.iter().filter(|r| belongs(scenario, r, i))),
            }
        })
        .collect()
}

/// The checks of every `[service.expect]`, each named after its service.
pub fn checks(scenario: &Scenario, records: &[RequestRecord]) -> Vec<Check> {
    let mut out = Vec::new();
    for (index, svc) in scenario.services.iter().enumerate() {
        let Some(expect) = &svc.expect else { continue };
        let mine: Vec<RequestRecord> = records
            .iter()
            .filter(|r| belongs(scenario, r, index))
            .cloned()
            .collect();
        let tally = tally_of(scenario, svc, &mine);
        let members: Vec<_> = scenario
            .real_servers
            .iter()
            .filter(|rs| svc.has_real_server(&rs.name))
            .cloned()
            .collect();
        // The run's error budget is checked once, in [expect].
        out.extend(
            verdict::spread_checks(expect, &members, &tally, &mine)
                .into_iter()
                .map(|mut c| {
                    c.what = format!("service {}: {}", svc.name, c.what);
                    c
                }),
        );
        if mine.is_empty() {
            out.push(Check::new(
                format!("service {}: requests were sent to it", svc.name),
                false,
                Some("[traffic] `services` leaves it out".into()),
            ));
        }
    }
    out
}
