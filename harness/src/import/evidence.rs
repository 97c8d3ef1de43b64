//! An imported IPVS table as diagnosis evidence: the chosen service becomes
//! [`ServiceEvidence`], its destinations, connections and templates [`IpvsEvidence`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use crate::diagnose::evidence::{
    ConnEvidence, DestEvidence, IpvsEvidence, Mode, Proto, ServiceEvidence, TemplateEvidence,
};

use super::table::{IpvsTable, TableForward, TableProto, TableService};

/// The part of the evidence one imported service provides.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedService {
    /// Forwarding mode most destinations use; `None` without destinations or when
    /// the method is unknown (a fork's `(null)`).
    pub mode: Option<Mode>,
    pub service: ServiceEvidence,
    pub ipvs: IpvsEvidence,
}

/// Why no evidence could be made from the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the IPVS table has no services")]
    NoService,
    #[error("no service {wanted} in the table; it holds: {available}")]
    NotFound { wanted: String, available: String },
    #[error("the table holds several services ({available}); choose one by VIP:PORT")]
    Ambiguous { available: String },
    #[error("{service} (line {line}) cannot be diagnosed: {reason}")]
    Unsupported {
        service: String,
        line: usize,
        reason: String,
    },
}

/// Picks the service at `select` (any protocol; TCP first), or the only one.
pub fn select_service(table: &IpvsTable, select: Option<SocketAddrV4>) -> Result<&TableService, EvidenceError> {
    let available = || {
        table
            .services
            .iter()
            .map(TableService::describe)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if table.services.is_empty() {
        return Err(EvidenceError::NoService);
    }
    match select {
        Some(wanted) => {
            let matches = |s: &&TableService| {
                s.fwmark.is_none() && s.vip == Some(IpAddr::V4(*wanted.ip())) && s.port == wanted.port()
            };
            table
                .services
                .iter()
                .filter(matches)
                .min_by_key(|s| s.proto != Some(TableProto::Modelled(Proto::Tcp)))
                .ok_or_else(|| EvidenceError::NotFound {
                    wanted: wanted.to_string(),
                    available: available(),
                })
        }
        None => match table.services.as_slice() {
            [only] => Ok(only),
            _ => Err(EvidenceError::Ambiguous { available: available() }),
        },
    }
}

/// Evidence for the service at `select` (or the only service).
pub fn service_evidence(table: &IpvsTable, select: Option<SocketAddrV4>) -> Result<ImportedService, EvidenceError> {
    evidence_of(table, select_service(table, select)?)
}

/// Evidence for `svc`, one of `table`'s services.
pub fn evidence_of(table: &IpvsTable, svc: &TableService) -> Result<ImportedService, EvidenceError> {
    let unsupported = |reason: &str| EvidenceError::Unsupported {
        service: svc.describe(),
        line: svc.line,
        reason: reason.to_string(),
    };
    if svc.fwmark.is_some() {
        return Err(unsupported("firewall-mark services have no single VIP:PORT"));
    }
    let Some(proto) = svc.proto.and_then(TableProto::modelled) else {
        return Err(unsupported("only TCP and UDP services are modelled"));
    };
    let vip = match svc.vip {
        Some(IpAddr::V4(v4)) => v4,
        _ => return Err(unsupported("only IPv4 services are modelled")),
    };
    let service = ServiceEvidence {
        vip,
        port: svc.port,
        proto,
        scheduler: svc.scheduler.clone(),
        sched_flags: svc.flags.clone(),
        persistence_secs: svc.persistence,
        persistence_prefix: svc.persistence.map(|_| svc.persistence_prefix.unwrap_or(32)),
        one_packet: svc.one_packet,
        imported_defaults: Vec::new(),
    };

    let mut dests = Vec::new();
    for d in &svc.dests {
        let IpAddr::V4(addr) = d.addr else {
            return Err(unsupported("an IPv6 real server (tunnelled) is not modelled"));
        };
        dests.push(DestEvidence {
            addr,
            port: d.port,
            // A `--stats`-only listing shows no weight: assume ipvsadm's default
            // rather than 0, which would read as "quiesced".
            weight: d.weight.unwrap_or(1),
            active: d.active.unwrap_or(0),
            inactive: d.inactive.unwrap_or(0),
            persist: d.persist.unwrap_or(0),
            conns_total: d.stats.and_then(|s| s.totals).map_or(0, |t| t.conns),
        });
    }

    let virtual_addr = SocketAddr::new(IpAddr::V4(vip), svc.port);
    let conns = table
        .conns
        .iter()
        .filter(|c| c.virtual_addr == virtual_addr && TableProto::from_name(&c.proto) == svc.proto)
        .filter_map(|c| {
            Some(ConnEvidence {
                proto,
                client: v4(c.client)?,
                client_port: c.client.port(),
                dest: v4(c.dest)?,
                dest_port: c.dest.port(),
                state: c.state.clone(),
                expires_secs: Some(c.expires_secs),
            })
        })
        .collect();
    // Templates of a port service carry its port; port-0 services' carry 0.
    let templates = table
        .templates
        .iter()
        .filter(|t| {
            t.virtual_addr.ip() == virtual_addr.ip()
                && (t.virtual_addr.port() == svc.port || t.virtual_addr.port() == 0)
        })
        .filter_map(|t| {
            Some(TemplateEvidence {
                client: v4(t.client)?,
                dest: v4(t.dest)?,
                expires_secs: Some(t.expires_secs),
            })
        })
        .collect();

    Ok(ImportedService {
        mode: dominant_mode(svc),
        service,
        ipvs: IpvsEvidence {
            dests,
            conns,
            templates,
            settings: table.settings.clone(),
        },
    })
}

/// The forwarding method of most destinations, as a diagnosis mode.
pub fn dominant_mode(svc: &TableService) -> Option<Mode> {
    let mut counts: Vec<(Mode, usize)> = Vec::new();
    for d in &svc.dests {
        let mode = match d.forward.as_ref()? {
            TableForward::Method(f) => Mode::from(*f),
            // localnode is direct routing to the director itself.
            TableForward::Local => Mode::Dr,
            TableForward::Other(_) => continue,
        };
        match counts.iter_mut().find(|(m, _)| *m == mode) {
            Some((_, n)) => *n += 1,
            None => counts.push((mode, 1)),
        }
    }
    // Ties go to the first method seen (max_by_key keeps the last maximum).
    counts.iter().rev().max_by_key(|(_, n)| *n).map(|(m, _)| *m)
}

fn v4(addr: SocketAddr) -> Option<Ipv4Addr> {
    match addr.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::ipvsadm;

    const LISTING: &str = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  198.18.7.20:443 sh persistent 600 mask 255.255.255.0\n",
        "  -> 198.18.9.11:443              Route   1      0          3\n",
        "  -> 198.18.9.12:443              Route   2      4          0\n",
        "UDP  198.18.7.20:443 rr\n",
        "  -> 198.18.9.11:443              Route   1      0          0\n",
        "IPVS connection entries\n",
        "pro expire state       source             virtual            destination\n",
        "TCP 09:58  NONE        203.0.113.0:0      198.18.7.20:443    198.18.9.12:443\n",
        "TCP 14:59  ESTABLISHED 203.0.113.7:40000  198.18.7.20:443    198.18.9.12:443\n",
        "UDP 04:59  UDP         203.0.113.7:40001  198.18.7.20:443    198.18.9.11:443\n",
    );

    #[test]
    fn chosen_service_becomes_evidence_with_its_own_connections() {
        let table = ipvsadm::parse(LISTING).unwrap();
        let got = service_evidence(&table, Some("198.18.7.20:443".parse().unwrap())).unwrap();
        assert_eq!(got.mode, Some(Mode::Dr));
        assert_eq!(got.service.proto, Proto::Tcp, "TCP is preferred when both exist");
        assert_eq!(got.service.scheduler, "sh");
        assert_eq!(got.service.persistence_secs, Some(600));
        assert_eq!(got.service.persistence_prefix, Some(24));
        assert_eq!(got.ipvs.dests.len(), 2);
        assert_eq!(got.ipvs.dests[1].weight, 2);
        assert_eq!(got.ipvs.dests[1].active, 4);
        assert_eq!(got.ipvs.conns.len(), 1, "the UDP row belongs to the other service");
        assert_eq!(got.ipvs.conns[0].state, "ESTABLISHED");
        assert_eq!(got.ipvs.templates.len(), 1);
        assert_eq!(got.ipvs.templates[0].dest, Ipv4Addr::new(198, 18, 9, 12));
        assert_eq!(got.ipvs.templates[0].expires_secs, Some(598));
    }

    #[test]
    fn several_services_need_a_choice_and_a_wrong_one_lists_the_rest() {
        let table = ipvsadm::parse(LISTING).unwrap();
        let err = service_evidence(&table, None).unwrap_err();
        assert!(matches!(err, EvidenceError::Ambiguous { .. }), "{err}");
        let err = service_evidence(&table, Some("198.18.7.21:80".parse().unwrap())).unwrap_err();
        assert!(err.to_string().contains("TCP 198.18.7.20:443"), "{err}");
    }

    #[test]
    fn fwmark_service_is_refused_with_its_line() {
        let table = ipvsadm::parse("-A -f 3 -s rr\n-a -f 3 -r 10.0.0.1:0 -g -w 1\n").unwrap();
        let err = service_evidence(&table, None).unwrap_err();
        assert!(matches!(err, EvidenceError::Unsupported { line: 1, .. }), "{err}");
    }
}
