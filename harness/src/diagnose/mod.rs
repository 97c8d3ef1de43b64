//! diagnose: pure rules over gathered evidence that answer "why does every request go
//! to one real server?" with ranked findings (cause, evidence, fix).
//!
//! `observe` fills an [`Evidence`]; [`diagnose`] summarises the spread and runs every
//! rule in [`rules`]; [`render`] prints the result for people. No I/O, no root.

pub mod evidence;
pub mod finding;
mod mac;
pub mod render;
pub mod rules;
pub mod sample;
pub mod spread;

pub use crate::lvs::{CauseId, Mode};
pub use evidence::Evidence;
pub use finding::{Diagnosis, Finding};
pub use render::render;
pub use spread::{SpreadSummary, SpreadVerdict};

/// Runs every rule over the evidence and ranks what fires, most likely first.
pub fn diagnose(ev: &Evidence) -> Diagnosis {
    let spread = spread::summarise(ev);
    let mut findings: Vec<Finding> = rules::RULES.iter().filter_map(|(_, rule)| rule(ev, &spread)).collect();
    if !ev.other_directors.is_empty() {
        let read = ev.director.as_ref().map(|d| d.name.clone());
        for f in findings.iter_mut().filter(|f| f.id.is_in_director_table()) {
            f.director = read.clone();
        }
    }
    if spread.healthy {
        // Nothing is skewed now: what fired is a latent risk, not an explanation.
        for finding in &mut findings {
            finding.explains = finding.explains.min(finding::LATENT);
        }
    }
    findings.sort_by(|a, b| {
        b.explains
            .total_cmp(&a.explains)
            .then_with(|| rules::rank(a.id).cmp(&rules::rank(b.id)))
    });
    let healthy = spread.healthy && findings.is_empty();
    Diagnosis {
        findings,
        spread,
        healthy,
    }
}

/// Each service's evidence diagnosed on its own, the findings of all ranked together and
/// each labelled with its service. One service: [`diagnose`]. The spread is the first's.
pub fn diagnose_services(services: &[Evidence]) -> Diagnosis {
    let Some((first, rest)) = services.split_first() else {
        return diagnose(&Evidence::empty(Mode::Dr));
    };
    let mut diagnosis = diagnose(first);
    if rest.is_empty() {
        return diagnosis;
    }
    let label = |ev: &Evidence| {
        ev.service
            .as_ref()
            .map(|s| format!("{} {}:{}", s.proto.name(), s.vip, s.port))
    };
    for f in &mut diagnosis.findings {
        f.service = label(first);
    }
    for ev in rest {
        let d = diagnose(ev);
        diagnosis.healthy &= d.healthy;
        for mut f in d.findings {
            // What every service shows alike (a failover, a split brain) is said once, for none.
            let same = |o: &Finding| o.id == f.id && o.title == f.title && o.evidence == f.evidence && o.fix == f.fix;
            if let Some(seen) = diagnosis.findings.iter_mut().find(|o| same(o)) {
                seen.service = None;
                continue;
            }
            f.service = label(ev);
            diagnosis.findings.push(f);
        }
    }
    diagnosis.findings.sort_by(|a, b| {
        b.explains
            .total_cmp(&a.explains)
            .then_with(|| rules::rank(a.id).cmp(&rules::rank(b.id)))
    });
    diagnosis
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::Evidence;

    #[test]
    fn each_service_is_diagnosed_on_its_own_and_named_in_its_findings() {
        let healthy = sample::healthy_dr();
        let mut sticky = sample::persistence();
        sticky.service.as_mut().unwrap().port = 443;
        let one = diagnose_services(std::slice::from_ref(&healthy));
        assert!(one.healthy && one.findings.iter().all(|f| f.service.is_none()));
        let both = diagnose_services(&[healthy, sticky.clone()]);
        assert!(!both.healthy, "one service is skewed");
        let first = both.findings.first().expect("a finding");
        assert_eq!(first.id, CauseId::Persistence);
        let label = format!("TCP {}:443", sticky.service.as_ref().unwrap().vip);
        assert_eq!(first.service.as_deref(), Some(label.as_str()));
        assert!(render(&both).contains(&format!("   service: {label}")));
        // The first service's spread stays the headline.
        assert!(both.spread.healthy);
    }

    #[test]
    fn a_cause_every_service_shows_alike_is_said_once_for_none() {
        let www = sample::persistence();
        let mut api = www.clone();
        api.service.as_mut().unwrap().port = 443;
        // Each service's own table finding: one each, named.
        let two = diagnose_services(&[www.clone(), api]);
        let persistence: Vec<_> = two.findings.iter().filter(|f| f.id == CauseId::Persistence).collect();
        assert_eq!(persistence.len(), 2, "{:?}", two.ids());
        assert!(persistence.iter().all(|f| f.service.is_some()));
        // Findings in the same words for every service are one, for none of them.
        let alone = diagnose(&www);
        let same = diagnose_services(&[www.clone(), www]);
        assert_eq!(same.ids(), alone.ids());
        assert!(same.findings.iter().all(|f| f.service.is_none()), "{same:#?}");
    }

    #[test]
    fn among_several_directors_a_table_finding_names_the_director_it_read() {
        let mut ev = sample::persistence();
        assert!(
            diagnose(&ev).findings.iter().all(|f| f.director.is_none()),
            "one director"
        );
        ev.other_directors.push(ev.director.clone().unwrap());
        ev.other_directors[0].name = "lvs2".into();
        let d = diagnose(&ev);
        let read = ev.director.as_ref().unwrap().name.clone();
        let f = d.finding(CauseId::Persistence).unwrap();
        assert_eq!(f.director.as_deref(), Some(read.as_str()));
        assert!(render(&d).contains(&format!("   director: {read}")));
    }

    #[test]
    fn healthy_lab_is_healthy() {
        let d = diagnose(&sample::healthy_dr());
        assert!(d.healthy, "{d:#?}");
        assert!(d.findings.is_empty());
        assert_eq!(d.spread.distinct, 3);
    }

    #[test]
    fn each_canonical_failure_ranks_its_cause_first() {
        for (ev, id) in [
            (sample::arp_flux(), CauseId::ArpFlux),
            (sample::persistence(), CauseId::Persistence),
            (sample::keepalive(), CauseId::Keepalive),
            (sample::server_dies(), CauseId::ServerFault),
            (sample::checker_takes_out(), CauseId::HealthCheck),
            (sample::sorry_server(), CauseId::SorryServer),
        ] {
            let d = diagnose(&ev);
            assert!(!d.healthy);
            assert_eq!(d.findings.first().map(|f| f.id), Some(id), "{:?}", d.ids());
        }
    }

    #[test]
    fn several_causes_are_ranked_by_what_they_explain() {
        // Persistent service, and the client also reuses one kept-alive connection.
        let mut ev = sample::persistence();
        for r in &mut ev.records {
            r.connection = 0;
        }
        ev.real_servers[2]
            .host
            .sysctls
            .insert("net.ipv4.conf.all.arp_announce".into(), "0".into());
        let d = diagnose(&ev);
        assert_eq!(d.ids(), vec!["persistence", "keepalive", "arp-flux"]);
        assert!(d.findings.windows(2).all(|w| w[0].explains >= w[1].explains));
    }

    #[test]
    fn findings_on_an_even_spread_are_only_latent() {
        let mut ev = sample::healthy_dr();
        ev.real_servers[0]
            .host
            .sysctls
            .insert("net.ipv4.conf.all.arp_ignore".into(), "0".into());
        let d = diagnose(&ev);
        assert!(d.spread.healthy);
        assert!(!d.healthy, "a latent risk is still reported");
        assert_eq!(d.ids(), vec!["arp-flux"]);
        assert!(d.findings[0].explains <= finding::LATENT);
    }

    #[test]
    fn empty_evidence_gives_no_findings_and_no_panic() {
        for mode in [
            evidence::Mode::Direct,
            evidence::Mode::Dr,
            evidence::Mode::Nat,
            evidence::Mode::Tun,
            evidence::Mode::FullNat,
        ] {
            let d = diagnose(&Evidence::empty(mode));
            assert!(d.findings.is_empty(), "{mode:?}: {:?}", d.ids());
            assert!(!d.healthy, "no traffic is not healthy");
            assert_eq!(d.spread.verdict, SpreadVerdict::NoTraffic);
        }
    }

    #[test]
    fn evidence_round_trips_through_json() {
        let ev = sample::arp_flux();
        let json = serde_json::to_string_pretty(&ev).unwrap();
        assert!(json.contains("\"mode\": \"dr\""));
        assert!(json.contains("\"02:00:00:00:00:12\""));
        let back: Evidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
        let report = serde_json::to_value(diagnose(&ev)).unwrap();
        assert_eq!(report["findings"][0]["id"], "arp-flux");
        // The run's faults too: checkers, their reasons, events, send times.
        for ev in [
            sample::checker_takes_out(),
            sample::server_dies(),
            sample::sorry_server(),
        ] {
            let json = serde_json::to_string(&ev).unwrap();
            let back: Evidence = serde_json::from_str(&json).unwrap();
            assert_eq!(back, ev);
        }
        let json = serde_json::to_value(sample::checker_takes_out()).unwrap();
        assert_eq!(json["health"]["failures"][0]["reason"], "connect-refused");
        assert_eq!(json["events"][0]["effect"], "down");
    }

    #[test]
    fn partial_evidence_never_panics() {
        let mode_variants = [
            evidence::Mode::Direct,
            evidence::Mode::Nat,
            evidence::Mode::Tun,
            evidence::Mode::FullNat,
        ];
        for base in [
            sample::healthy_dr(),
            sample::arp_flux(),
            sample::persistence(),
            sample::keepalive(),
            sample::server_dies(),
            sample::checker_takes_out(),
            sample::sorry_server(),
        ] {
            // Hosts not gathered, records naming unknown servers, no table.
            let mut ev = base.clone();
            for rs in &mut ev.real_servers {
                rs.host = evidence::HostEvidence {
                    name: rs.name.clone(),
                    ..Default::default()
                };
            }
            ev.clients.clear();
            ev.director = None;
            ev.ipvs = None;
            ev.records.push(evidence::RecordEvidence {
                backend: Some("ghost".into()),
                ..sample::record(99, "x")
            });
            let _ = render(&diagnose(&ev));
            let mut ev = base.clone();
            ev.real_servers.clear();
            let _ = render(&diagnose(&ev));
            for mode in mode_variants {
                let mut ev = base.clone();
                ev.mode = mode;
                let d = diagnose(&ev);
                assert!(d.findings.iter().all(|f| (0.0..=1.0).contains(&f.explains)));
            }
        }
    }
}
