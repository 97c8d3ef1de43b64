//! Causes 4 and 7: a destination with weight 0 takes no new connections (a health
//! checker with inhibit_on_failure, or a quiesced server), except through templates.

use super::common::*;
use crate::diagnose::evidence::Evidence;
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::CauseId;

pub const ID: CauseId = CauseId::WeightZero;

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let svc = ev.service.as_ref()?;
    let mut lines = Vec::new();
    let mut zeroed = Vec::new();
    match &ev.ipvs {
        Some(ipvs) if !ipvs.dests.is_empty() => {
            for d in ipvs.dests.iter().filter(|d| d.weight == 0) {
                let rs = ev.real_server_at(d.addr);
                let name = rs.map_or(d.addr.to_string(), |r| r.name.clone());
                let configured = rs
                    .and_then(|r| r.weight)
                    .map_or(String::new(), |w| format!(" (configured {w})"));
                lines.push(format!(
                    "{name} {}:{} has weight 0 in the live table{configured}: no new connections (ActiveConn {}, InActConn {}, PersistConn {})",
                    d.addr, d.port, d.active, d.inactive, d.persist
                ));
                zeroed.push((name, d.addr, d.port));
            }
            let quiescent_expire = ev.ipvs_setting("expire_quiescent_template").unwrap_or(0);
            for (name, addr, _) in &zeroed {
                let pinned = ipvs.templates.iter().filter(|t| t.dest == *addr).count();
                if pinned > 0 && quiescent_expire == 0 {
                    lines.push(format!(
                        "{pinned} template(s) still point at {name} and expire_quiescent_template = 0: their clients keep going there"
                    ));
                }
            }
        }
        _ => {
            for rs in ev.real_servers.iter().filter(|r| r.weight == Some(0)) {
                lines.push(format!(
                    "{} {} is configured with weight 0: no new connections",
                    rs.name, rs.address
                ));
                zeroed.push((rs.name.clone(), rs.address, service_port_on(ev, rs).unwrap_or(svc.port)));
            }
        }
    }
    if zeroed.is_empty() {
        return None;
    }
    let total = ev.real_servers.len().max(ev.ipvs.as_ref().map_or(0, |i| i.dests.len()));
    let mut fix: Vec<String> = zeroed
        .iter()
        .map(|(_, addr, port)| {
            format!(
                "ipvsadm -e {} -r {addr}:{port} {} -w 1",
                ipvsadm_service(svc),
                ipvsadm_forward(ev.mode)
            )
        })
        .collect();
    fix.push("if a health checker zeroed it (keepalived inhibit_on_failure; log `Changing weight from X to 0`): fix the check (connect_port, url, status_code)".to_string());
    fix.push("sysctl -w net.ipv4.vs.expire_quiescent_template=1 so persistence templates do not keep clients on a weight-0 server".to_string());
    Some(
        Finding::new(
            ID,
            format!("{} of {total} real server(s) have weight 0", zeroed.len()),
            share_explains(zeroed.len(), total),
        )
        .evidence(capped(lines))
        .fix(fix),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::TemplateEvidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;

    #[test]
    fn fires_for_live_weight_zero_with_templates() {
        let mut ev = sample::healthy_dr();
        let ipvs = ev.ipvs.as_mut().unwrap();
        ipvs.dests[1].weight = 0;
        ipvs.dests[2].weight = 0;
        ipvs.templates = vec![TemplateEvidence {
            client: sample::CLIENT,
            dest: sample::rip(2),
            expires_secs: None,
        }];
        let finding = check(&ev, &summarise(&ev)).expect("weight-zero must fire");
        assert_eq!(finding.title, "2 of 3 real server(s) have weight 0");
        assert_eq!(finding.explains, 0.85);
        assert!(
            finding.evidence[0].starts_with("rs2 192.0.2.12:80 has weight 0 in the live table (configured 1)"),
            "{:?}",
            finding.evidence
        );
        assert!(
            finding.evidence[2].starts_with("1 template(s) still point at rs2"),
            "{:?}",
            finding.evidence
        );
        assert_eq!(finding.fix[0], "ipvsadm -e -t 192.0.2.100:80 -r 192.0.2.12:80 -g -w 1");
    }

    #[test]
    fn fires_for_configured_weight_zero_without_a_table() {
        let mut ev = sample::healthy_dr();
        ev.ipvs = None;
        ev.real_servers[0].weight = Some(0);
        let finding = check(&ev, &summarise(&ev)).expect("configured weight 0");
        assert!(finding.evidence[0].contains("rs1 192.0.2.11 is configured with weight 0"));
    }

    #[test]
    fn silent_when_every_weight_is_positive() {
        let ev = sample::healthy_dr();
        assert_eq!(check(&ev, &summarise(&ev)), None);
    }
}
