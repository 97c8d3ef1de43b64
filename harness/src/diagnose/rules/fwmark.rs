//! Cause 19: firewall-mark classification missing or wrong. A fwmark service (`ipvsadm -f N`)
//! takes only what the director's firewall marks N. Requests the mark rule does not cover (443
//! left out of `tcp dport { 80 }`) fall through to an address service or to no service at all,
//! so they are scheduled apart from the rest and a persistent fwmark service no longer holds a
//! client's 80 and 443 together; a mark with no `-f N` service marks for nothing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{Evidence, FwmarkEvidence, TargetEvidence};
use crate::diagnose::finding::Finding;
use crate::diagnose::spread::SpreadSummary;
use crate::lvs::{CauseId, ServiceKey};
use crate::nft::mark::{mark_of, TABLE};

pub const ID: CauseId = CauseId::Fwmark;

/// How a target's requests were classified.
enum Class {
    /// Marked N and a `-f N` service takes them.
    Fwmark,
    /// Marked N, but there is no `-f N` service.
    NoService(u32),
    /// Unmarked: an address service (or nothing) takes them.
    Unmarked(Option<ServiceKey>),
}

pub fn check(ev: &Evidence, _spread: &SpreadSummary) -> Option<Finding> {
    let fw = ev.fwmark.as_ref()?;
    let classes: Vec<(&TargetEvidence, Class)> = fw.targets.iter().map(|t| (t, classify(fw, t))).collect();
    let marked_addrs: Vec<Ipv4Addr> = classes
        .iter()
        .filter(|(_, c)| matches!(c, Class::Fwmark))
        .map(|(t, _)| *t.target.ip())
        .collect();
    let (mut lines, mut fixes) = (Vec::new(), Vec::new());
    let (mut missed, mut total) = (0u32, 0u32);
    let mut missed_ports: BTreeMap<(Ipv4Addr, u32), Vec<u16>> = BTreeMap::new();
    for (t, class) in &classes {
        total += t.requests;
        match class {
            Class::Fwmark => {}
            Class::NoService(mark) => {
                missed += t.requests;
                lines.push(format!(
                    "{} request(s) to {} are marked {mark}, but the table has no service `FWM  {mark}`",
                    t.requests, t.target
                ));
                let add = format!("ipvsadm -A -f {mark} -s rr (then -a -f {mark} -r RIP -g for each real server)");
                if !fixes.contains(&add) {
                    fixes.push(add);
                }
            }
            // Only a gap beside marked traffic to the same address: a separate service on
            // another address is a design, not a classification fault.
            Class::Unmarked(by) if marked_addrs.contains(t.target.ip()) => {
                missed += t.requests;
                let went = match by {
                    Some(key) => format!("service {key} takes them instead, scheduled on its own"),
                    None => "no service takes them (the director's own stack answers, or nothing)".to_string(),
                };
                lines.push(format!(
                    "{} request(s) to {} match no mark rule: {went}{}",
                    t.requests,
                    t.target,
                    answered_by(t)
                ));
                let mark = fw.services.first().map_or(1, |s| s.mark);
                missed_ports
                    .entry((*t.target.ip(), mark))
                    .or_default()
                    .push(t.target.port());
                if let Some(key) = by {
                    fixes.push(format!(
                        "remove the address service once the mark covers it: `ipvsadm -D {}`",
                        ipvsadm_key(key)
                    ));
                }
            }
            Class::Unmarked(_) => {}
        }
    }
    for ((addr, mark), ports) in &missed_ports {
        let covered: Vec<u16> = fw
            .rules
            .iter()
            .filter(|r| r.mark == *mark && r.addresses.iter().any(|n| n.contains(addr)))
            .flat_map(|r| r.ports.iter().copied())
            .chain(ports.iter().copied())
            .collect();
        let list = covered.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        fixes.insert(
            0,
            format!(
                "mark every port of the service: `nft add rule ip {TABLE} prerouting ip daddr {addr} tcp dport {{ {list} }} meta mark set {mark:#x}` (or add {} to the existing rule's port set)",
                ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
            ),
        );
    }
    if fw.rules.is_empty() && !fw.services.is_empty() {
        let marks: Vec<String> = fw.services.iter().map(|s| s.mark.to_string()).collect();
        lines.push(format!(
            "the table has FWM service(s) {} but the director marks nothing: no request can reach them",
            marks.join(", ")
        ));
        fixes.push(format!(
            "mark the service's traffic: `nft add rule ip {TABLE} prerouting ip daddr VIP tcp dport {{ 80, 443 }} meta mark set {:#x}` (in a `type filter hook prerouting priority mangle` chain)",
            fw.services[0].mark
        ));
        missed = missed.max(1);
    }
    if lines.is_empty() {
        return None;
    }
    if fw.services.iter().any(|s| s.persistence_secs.is_some()) {
        lines.push(
            "the fwmark service is persistent: its template holds a client's marked requests together, the unmarked ones are scheduled apart, so the client's requests split"
                .to_string(),
        );
    }
    let share = f64::from(missed) / f64::from(total.max(1));
    let explains = (0.3 + 0.6 * share).min(0.9);
    Some(
        Finding::new(
            ID,
            "The director's firewall marks do not classify every request into the fwmark service",
            explains,
        )
        .evidence(capped(lines))
        .fix(fixes),
    )
}

fn classify(fw: &FwmarkEvidence, t: &TargetEvidence) -> Class {
    let mark = mark_of(&fw.rules, t.proto, *t.target.ip(), t.target.port());
    if mark != 0 {
        return if fw.services.iter().any(|s| s.mark == mark) {
            Class::Fwmark
        } else {
            Class::NoService(mark)
        };
    }
    let exact = ServiceKey::new(t.proto, *t.target.ip(), t.target.port());
    let port_zero = ServiceKey::new(t.proto, *t.target.ip(), 0);
    Class::Unmarked(
        fw.address_services
            .iter()
            .find(|k| **k == exact || **k == port_zero)
            .copied(),
    )
}

fn ipvsadm_key(key: &ServiceKey) -> String {
    let switch = if key.proto == crate::lvs::Proto::Udp {
        "-u"
    } else {
        "-t"
    };
    format!("{switch} {}:{}", key.vip, key.port)
}

/// ` (answered by rs1, rs2)` when some were answered.
fn answered_by(t: &TargetEvidence) -> String {
    if t.backends.is_empty() {
        return String::new();
    }
    format!(" (answered by {})", backend_list(&t.backends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::evidence::FwmServiceEvidence;
    use crate::diagnose::sample;
    use crate::diagnose::spread::summarise;
    use crate::lvs::Proto;
    use crate::nft::mark::MarkRule;

    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);

    fn target(port: u16, backends: &[(&str, u32)]) -> TargetEvidence {
        TargetEvidence {
            proto: Proto::Tcp,
            target: std::net::SocketAddrV4::new(VIP, port),
            requests: backends.iter().map(|(_, n)| n).sum(),
            backends: backends.iter().map(|(b, n)| (b.to_string(), *n)).collect(),
        }
    }

    /// FWM 1 persistent; the rule marks `ports`; traffic to 80 and 443; TCP VIP:443 exists.
    fn evidence(ports: &[u16], with_service: bool) -> Evidence {
        let mut ev = sample::persistence();
        ev.fwmark = Some(FwmarkEvidence {
            rules: vec![MarkRule {
                mark: 1,
                protocol: Proto::Tcp,
                addresses: vec![VIP.into()],
                ports: ports.to_vec(),
            }],
            services: if with_service {
                vec![FwmServiceEvidence {
                    mark: 1,
                    scheduler: "rr".into(),
                    persistence_secs: Some(300),
                    dests: 3,
                }]
            } else {
                vec![]
            },
            address_services: vec![ServiceKey::new(Proto::Tcp, VIP, 443)],
            targets: vec![
                target(80, &[("rs1", 15)]),
                target(443, &[("rs1", 5), ("rs2", 5), ("rs3", 5)]),
            ],
        });
        ev
    }

    #[test]
    fn fires_when_the_mark_covers_80_but_not_443() {
        let ev = evidence(&[80], true);
        let f = check(&ev, &summarise(&ev)).expect("fires");
        assert_eq!(f.id, ID);
        assert!(
            f.evidence[0].starts_with(
                "15 request(s) to 192.0.2.100:443 match no mark rule: service TCP 192.0.2.100:443 takes them instead"
            ),
            "{:?}",
            f.evidence
        );
        assert!(
            f.evidence[0].ends_with("(answered by rs1 5, rs2 5, rs3 5)"),
            "{:?}",
            f.evidence
        );
        assert!(
            f.fix[0].contains("tcp dport { 80, 443 } meta mark set 0x1"),
            "{:?}",
            f.fix
        );
        assert!(
            f.fix.iter().any(|l| l.contains("ipvsadm -D -t 192.0.2.100:443")),
            "{:?}",
            f.fix
        );
        assert!(f.explains > 0.5, "{}", f.explains);
    }

    #[test]
    fn fires_when_marks_have_no_fwmark_service() {
        let ev = evidence(&[80, 443], false);
        let f = check(&ev, &summarise(&ev)).expect("fires");
        assert!(
            f.evidence[0].contains("marked 1, but the table has no service `FWM  1`"),
            "{:?}",
            f.evidence
        );
        assert!(f.fix.iter().any(|l| l.starts_with("ipvsadm -A -f 1")), "{:?}", f.fix);
    }

    #[test]
    fn silent_when_every_request_is_classified_or_without_fwmark() {
        let ev = evidence(&[80, 443], true);
        assert!(check(&ev, &summarise(&ev)).is_none());
        let mut plain = evidence(&[80], true);
        plain.fwmark = None;
        assert!(check(&plain, &summarise(&plain)).is_none());
        // An address service on another address is a design, not a classification gap.
        let mut apart = evidence(&[80], true);
        let fw = apart.fwmark.as_mut().unwrap();
        fw.targets[1].target = std::net::SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 101), 443);
        fw.address_services = vec![ServiceKey::new(Proto::Tcp, Ipv4Addr::new(192, 0, 2, 101), 443)];
        assert!(check(&apart, &summarise(&apart)).is_none());
    }
}
