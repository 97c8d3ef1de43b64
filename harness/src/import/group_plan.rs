//! A `virtual_server group NAME` as scenario services: keepalived gives IPVS one service per
//! group entry, one per address of a range (ipvswrapper.c `ipvs_group_range_cmd`), address
//! entries first and fwmark entries after them, each with the virtual server's settings and
//! real servers. So the import makes one `[[service]]` of each, named `NAME/PROTO/ADDR:PORT`
//! (`NAME/fwmark/N`), with the entry's line in `[service.origin]`. Unless NAT, IPVS gives the
//! real servers each entry's port; a NAT real server keeps its own (none: the entry's).
//!
//! keepalived runs one checker per real server for the whole group, whose result moves the
//! server in every entry's service at once; lvslab runs one health session per service, so
//! each entry's service checks its real servers on its own. That is said as a warning.

use super::error::Warning;
use super::fwmark_service::{self, Marks};
use super::keepalived::{GroupUse, VirtualServer};
use super::table::TableProto;
use super::to_scenario::{identity, keepalived_shape, PlanGroupEntry, PlanService};
use super::vs_group::Target;
use crate::lvs::Proto;
use crate::scenario::keywords::Mode;

/// The most services the import makes from groups: a range or prefix is one service per
/// address, which a lab of one VIP network holds only so many of.
pub(super) const MAX_SERVICES: usize = 64;

/// `vs`'s services, one per address of each entry of its group (at most `room`), and their
/// mode. Entries the lab cannot run (IPv6, port 0, a repeat) are warnings at their lines;
/// `Err` when none is left.
pub(super) fn plan(
    vs: &VirtualServer,
    used: &GroupUse,
    marks: &Marks,
    room: usize,
    warnings: &mut Vec<Warning>,
) -> Result<(Vec<PlanService>, Mode), (usize, String)> {
    let group = &used.group;
    let name = &group.name;
    let mut services: Vec<PlanService> = Vec::new();
    let mut mode = None;
    let mut full = false;
    let before = warnings.len();
    for entry in group.in_ipvs_order() {
        let line = entry.line;
        let written = &entry.written;
        let not_imported = |why: &str| {
            Warning::new(
                line,
                format!("`{written}` of virtual_server_group {name} not imported: {why}"),
            )
        };
        if full {
            warnings.push(not_imported(&format!(
                "the import makes at most {MAX_SERVICES} services from groups and has made them"
            )));
            continue;
        }
        let mut shaped: Vec<(PlanService, Mode)> = Vec::new();
        match entry.target {
            Target::Fwmark { inet: Some(false), .. } => {
                warnings.push(not_imported("an IPv6 fwmark service is unsupported (the lab is IPv4)"));
            }
            Target::Fwmark { mark: 0, .. } => {
                warnings.push(not_imported("mark 0 is no mark (a scenario's fwmark is 1-4294967295)"));
            }
            Target::Fwmark { mark, .. } => {
                if services.len() >= room {
                    full = true;
                    warnings.push(not_imported(&format!(
                        "the import makes at most {MAX_SERVICES} services from groups"
                    )));
                    continue;
                }
                let planned = fwmark_service::plan(mark, line, marks, warnings);
                let (mut svc, m) = keepalived_shape(
                    vs,
                    planned.vip,
                    planned.port,
                    planned.proto,
                    Some(planned.mark),
                    warnings,
                )?;
                // lvslab's fwmark service has no real-server port (IPVS may remap it in NAT).
                for server in svc.servers.iter().filter(|s| s.port.is_some_and(|p| p != 0)) {
                    warnings.push(Warning::new(
                        server.line,
                        format!(
                            "real-server port {} dropped for `{written}` of virtual_server_group {name}: a scenario's fwmark service's real servers keep each packet's port",
                            server.port.unwrap_or(0)
                        ),
                    ));
                }
                entry_ports(&mut svc, Mode::Dr, None);
                shaped.push((svc, m));
            }
            Target::Addresses { first, port, .. } => {
                if first.is_ipv6() {
                    warnings.push(not_imported("IPv6 services are unsupported (the lab is IPv4)"));
                    continue;
                }
                let Some(port) = port else {
                    warnings.push(not_imported(
                        "port 0 (every port) is unsupported: a scenario's service serves one port",
                    ));
                    continue;
                };
                // keepalived's default, applied (and warned about) by the parser.
                let protocol = vs.protocol.unwrap_or(TableProto::Modelled(Proto::Udp));
                let size = entry.size();
                for n in 0..size {
                    if services.len() + shaped.len() >= room {
                        full = true;
                        warnings.push(Warning::new(
                            line,
                            format!(
                                "`{written}` of virtual_server_group {name} is {size} services (one per address): the import makes at most {MAX_SERVICES} services from groups, so {n} of them are imported and the rest not"
                            ),
                        ));
                        break;
                    }
                    let addr = entry.address(n).expect("an address entry");
                    let (vip, proto) = match identity(addr, port, protocol) {
                        Ok(identity) => identity,
                        Err(why) => {
                            warnings.push(not_imported(&why));
                            break;
                        }
                    };
                    let (mut svc, m) = keepalived_shape(vs, vip, port, proto, None, warnings)?;
                    entry_ports(&mut svc, m, Some(port));
                    shaped.push((svc, m));
                }
            }
        }
        // One virtual server's services share its real servers, so its mode.
        for (mut svc, m) in shaped {
            mode = Some(m);
            svc.name = Some(match &svc.fwmark {
                Some(mark) => format!("{name}/fwmark/{}", mark.mark),
                None => format!("{name}/{}/{}:{}", svc.proto.as_str(), svc.vip, svc.port),
            });
            svc.group = Some(PlanGroupEntry {
                group: name.clone(),
                line,
                written: written.clone(),
            });
            services.push(svc);
        }
    }
    let Some(mode) = mode else {
        let why: Vec<String> = warnings[before..]
            .iter()
            .filter(|w| w.message.contains("not imported"))
            .map(ToString::to_string)
            .collect();
        return Err((
            vs.line,
            format!(
                "virtual_server_group {name} (line {}) has no entry lvslab can run ({})",
                group.line,
                why.join("; ")
            ),
        ));
    };
    let checked = vs.real_servers.iter().any(|rs| !rs.checkers.is_empty());
    if checked && services.len() > 1 {
        warnings.push(Warning::new(
            vs.line,
            format!(
                "keepalived runs one checker per real server for the whole group {name}, and its result takes the server out of (or puts it back in) every entry's service at once; lvslab checks each of the {} services on its own, so a real server is checked {} times as often and a flapping one may be out of one entry's service and still in another's",
                services.len(),
                services.len()
            ),
        ));
    }
    Ok((services, mode))
}

/// The real servers' ports IPVS gets for an entry on `port` (`None`: a fwmark entry, 0):
/// the entry's unless NAT; a NAT server's own, else (0, which the kernel reads as the
/// service's) the entry's.
fn entry_ports(svc: &mut PlanService, mode: Mode, port: Option<u16>) {
    for server in &mut svc.servers {
        server.port = match mode {
            Mode::Nat => server.port.filter(|p| *p != 0).or(port),
            _ => port,
        };
    }
}
