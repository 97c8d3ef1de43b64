//! Cause 19: firewall-mark classification missing or wrong. A fwmark service (`ipvsadm -f N`)
//! takes only what the director's firewall marks N. Requests the mark rule does not cover (443
//! left out of `tcp dport { 80 }`) fall through to an address service or to no service at all,
//! so they are scheduled apart from the rest and a persistent fwmark service no longer holds a
//! client's 80 and 443 together; a mark with no `-f N` service marks for nothing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::common::*;
use crate::diagnose::evidence::{AddressServiceEvidence, Evidence, FwmarkEvidence, TargetEvidence};
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
    Unmarked(Option<AddressServiceEvidence>),
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
            // Only a gap beside marked traffic to the same address, and only where the
            // service that took it is the fwmark service's own farm on a port its mark left
            // out: a separate service on purpose is a design, not a classification fault.
            Class::Unmarked(by) if marked_addrs.contains(t.target.ip()) => {
                let Some(mark) = left_out_of(fw, *t.target.ip(), by.as_ref()) else {
                    continue;
                };
                missed += t.requests;
                let went = match by {
                    Some(s) => format!(
                        "service {} takes them instead, scheduled on its own ({}{}, the same real servers as FWM {mark})",
                        s.key,
                        s.scheduler,
                        if s.persistence_secs.is_some() { ", persistent" } else { ", not persistent" }
                    ),
                    None => "no service takes them (the director's own stack answers, or nothing)".to_string(),
                };
                lines.push(format!(
                    "{} request(s) to {} match no mark rule: {went}{}",
                    t.requests,
                    t.target,
                    answered_by(t)
                ));
                missed_ports
                    .entry((*t.target.ip(), mark))
                    .or_default()
                    .push(t.target.port());
                if let Some(s) = by {
                    fixes.push(format!(
                        "remove the address service once the mark covers it: `ipvsadm -D {}`",
                        ipvsadm_key(&s.key)
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
            .find(|s| s.key == exact || s.key == port_zero)
            .cloned(),
    )
}

/// The mark of the FWM service an unmarked request to `addr` was left out of, if it was:
/// nothing took it, or the address service that did is that FWM service's farm (the same real
/// servers) and holds nothing together itself while the FWM service is persistent, so only the
/// mark rule split them. A service with other real servers, or persistent on its own, is one
/// the operator made apart on purpose.
fn left_out_of(fw: &FwmarkEvidence, addr: Ipv4Addr, by: Option<&AddressServiceEvidence>) -> Option<u32> {
    let marking = fw
        .services
        .iter()
        .filter(|s| {
            fw.rules
                .iter()
                .any(|r| r.mark == s.mark && r.addresses.iter().any(|n| n.contains(&addr)))
        })
        .collect::<Vec<_>>();
    let Some(by) = by else {
        return marking.first().map(|s| s.mark);
    };
    if by.persistence_secs.is_some() || by.rips.is_empty() {
        return None;
    }
    marking
        .iter()
        .find(|s| s.persistence_secs.is_some() && s.rips == by.rips)
        .map(|s| s.mark)
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

    fn farm() -> Vec<Ipv4Addr> {
        (11..=13).map(|h| Ipv4Addr::new(192, 0, 2, h)).collect()
    }

    fn target_at(addr: Ipv4Addr, port: u16, backends: &[(&str, u32)]) -> TargetEvidence {
        TargetEvidence {
            proto: Proto::Tcp,
            target: std::net::SocketAddrV4::new(addr, port),
            requests: backends.iter().map(|(_, n)| n).sum(),
            backends: backends.iter().map(|(b, n)| (b.to_string(), *n)).collect(),
        }
    }

    fn target(port: u16, backends: &[(&str, u32)]) -> TargetEvidence {
        target_at(VIP, port, backends)
    }

    fn rule(mark: u32, addr: Ipv4Addr, ports: &[u16]) -> MarkRule {
        MarkRule {
            mark,
            protocol: Proto::Tcp,
            addresses: vec![addr.into()],
            ports: ports.to_vec(),
        }
    }

    fn fwm(mark: u32, scheduler: &str, persistence: Option<u64>, rips: Vec<Ipv4Addr>) -> FwmServiceEvidence {
        FwmServiceEvidence {
            mark,
            scheduler: scheduler.into(),
            persistence_secs: persistence,
            dests: rips.len(),
            rips,
        }
    }

    fn address(
        addr: Ipv4Addr,
        port: u16,
        scheduler: &str,
        persistence: Option<u64>,
        rips: Vec<Ipv4Addr>,
    ) -> AddressServiceEvidence {
        AddressServiceEvidence {
            key: ServiceKey::new(Proto::Tcp, addr, port),
            scheduler: scheduler.into(),
            persistence_secs: persistence,
            rips,
        }
    }

    /// FWM 1 persistent; the rule marks `ports`; traffic to 80 and 443; TCP VIP:443 exists on
    /// the same three real servers.
    fn evidence(ports: &[u16], with_service: bool) -> Evidence {
        let mut ev = sample::persistence();
        ev.fwmark = Some(FwmarkEvidence {
            rules: vec![rule(1, VIP, ports)],
            services: if with_service {
                vec![fwm(1, "rr", Some(300), farm())]
            } else {
                vec![]
            },
            address_services: vec![address(VIP, 443, "rr", None, farm())],
            targets: vec![
                target(80, &[("rs1", 15)]),
                target(443, &[("rs1", 5), ("rs2", 5), ("rs3", 5)]),
            ],
        });
        ev
    }

    fn fires(ev: &Evidence) -> Option<Finding> {
        check(ev, &summarise(ev))
    }

    #[test]
    fn fires_when_the_mark_covers_80_but_not_443() {
        let ev = evidence(&[80], true);
        let f = fires(&ev).expect("fires");
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

    /// Another shape: NAT farm on private addresses, wlc, mark 7 on another VIP, and a second
    /// (correct) FWM service beside it: the fix names mark 7's rule, not the first service's.
    #[test]
    fn fires_for_a_nat_wlc_farm_and_names_the_mark_of_the_address() {
        let private: Vec<Ipv4Addr> = (21..=24).map(|h| Ipv4Addr::new(198, 51, 100, h)).collect();
        let shop = Ipv4Addr::new(192, 0, 2, 120);
        let mut ev = sample::persistence();
        ev.fwmark = Some(FwmarkEvidence {
            rules: vec![rule(3, VIP, &[25]), rule(7, shop, &[8080])],
            services: vec![fwm(3, "rr", None, farm()), fwm(7, "wlc", Some(600), private.clone())],
            address_services: vec![address(shop, 8443, "wlc", None, private)],
            targets: vec![
                target(25, &[("mx1", 4)]),
                target_at(shop, 8080, &[("app1", 12)]),
                target_at(shop, 8443, &[("app1", 3), ("app2", 3), ("app3", 3), ("app4", 3)]),
            ],
        });
        let f = fires(&ev).expect("fires");
        assert!(
            f.evidence[0].contains("192.0.2.120:8443 match no mark rule"),
            "{:?}",
            f.evidence
        );
        assert!(
            f.evidence[0].contains("the same real servers as FWM 7"),
            "{:?}",
            f.evidence
        );
        assert!(
            f.fix[0].contains("ip daddr 192.0.2.120 tcp dport { 8080, 8443 } meta mark set 0x7"),
            "{:?}",
            f.fix
        );
    }

    #[test]
    fn fires_when_marks_have_no_fwmark_service() {
        let ev = evidence(&[80, 443], false);
        let f = fires(&ev).expect("fires");
        assert!(
            f.evidence[0].contains("marked 1, but the table has no service `FWM  1`"),
            "{:?}",
            f.evidence
        );
        assert!(f.fix.iter().any(|l| l.starts_with("ipvsadm -A -f 1")), "{:?}", f.fix);
    }

    #[test]
    fn fires_when_nothing_takes_a_port_the_mark_left_out() {
        let mut ev = evidence(&[80], true);
        ev.fwmark.as_mut().unwrap().address_services.clear();
        let f = fires(&ev).expect("fires");
        assert!(f.evidence[0].contains("no service takes them"), "{:?}", f.evidence);
    }

    #[test]
    fn silent_when_every_request_is_classified_or_without_fwmark() {
        let ev = evidence(&[80, 443], true);
        assert!(fires(&ev).is_none());
        let mut plain = evidence(&[80], true);
        plain.fwmark = None;
        assert!(fires(&plain).is_none());
        // An address service on another address is a design, not a classification gap.
        let mut apart = evidence(&[80], true);
        let fw = apart.fwmark.as_mut().unwrap();
        let other = Ipv4Addr::new(192, 0, 2, 101);
        fw.targets[1].target = std::net::SocketAddrV4::new(other, 443);
        fw.address_services = vec![address(other, 443, "rr", None, farm())];
        assert!(fires(&apart).is_none());
    }

    /// A separate service on the fwmark service's VIP, made apart on purpose: other real
    /// servers (an admin port on one box), or persistent on its own, or beside a fwmark
    /// service that holds nothing together (lblc in TUN, sh in NAT).
    #[test]
    fn silent_for_a_separate_service_on_the_same_vip() {
        let admin_box = vec![Ipv4Addr::new(192, 0, 2, 31)];
        let mut admin = evidence(&[80, 443], true);
        let fw = admin.fwmark.as_mut().unwrap();
        fw.address_services = vec![address(VIP, 8443, "wlc", None, admin_box)];
        fw.targets.push(target(8443, &[("admin", 9)]));
        assert!(fires(&admin).is_none(), "other real servers");

        let mut sticky_own = evidence(&[80], true);
        let fw = sticky_own.fwmark.as_mut().unwrap();
        fw.address_services = vec![address(VIP, 443, "sh", Some(60), farm())];
        assert!(fires(&sticky_own).is_none(), "persistent on its own");

        for scheduler in ["lblc", "sh"] {
            let mut loose = evidence(&[80], true);
            let fw = loose.fwmark.as_mut().unwrap();
            fw.services = vec![fwm(1, scheduler, None, farm())];
            fw.address_services = vec![address(VIP, 443, "rr", None, farm())];
            assert!(
                fires(&loose).is_none(),
                "{scheduler} fwmark service without persistence"
            );
        }
    }

    /// Two fwmark services on one VIP on purpose (mark 1 for 80, mark 2 for 443).
    #[test]
    fn silent_for_two_fwmark_services_on_one_vip() {
        let mut ev = sample::persistence();
        ev.fwmark = Some(FwmarkEvidence {
            rules: vec![rule(1, VIP, &[80]), rule(2, VIP, &[443])],
            services: vec![fwm(1, "wrr", Some(120), farm()), fwm(2, "lc", None, farm())],
            address_services: vec![],
            targets: vec![target(80, &[("rs1", 10)]), target(443, &[("rs2", 5), ("rs3", 5)])],
        });
        assert!(fires(&ev).is_none());
    }
}
