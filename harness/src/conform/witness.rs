//! lvslab's views of a kernel IPVS table next to the real `ipvsadm`'s, line for line, with
//! only what legitimately moves between two reads masked: expiry seconds and ephemeral
//! client ports (`-Lnc`), and rates (`--rate`, estimates that change every 2 s).

use std::net::Ipv4Addr;

use crate::import;
use crate::ipvs::IpvsSnapshot;
use crate::observe::IpvsadmView;
use crate::scenario::Scenario;

/// lvslab's rendering of the view ipvsadm prints with `args`.
pub fn lvslab_view(ipvs: &IpvsSnapshot, args: &str) -> Option<String> {
    Some(match args {
        "-Ln" => ipvs.list_text(),
        "-Ln --stats" => ipvs.stats_text(),
        "-Ln --rate" => ipvs.rate_text(),
        "-Lnc" => ipvs.conns_text(),
        "-Ln --persistent-conn" => ipvs.persistent_conn_text(),
        "-S -n" => ipvs.save_text(),
        _ => return None,
    })
}

/// How one view compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewMatch {
    Same,
    /// The first line that differs (1-based), lvslab's and ipvsadm's, masked.
    Differs {
        line: usize,
        lvslab: String,
        ipvsadm: String,
    },
    /// ipvsadm could not be run, or lvslab has no such view.
    Missing(String),
}

pub fn compare(ipvs: &IpvsSnapshot, real: &IpvsadmView) -> ViewMatch {
    let theirs = match &real.output {
        Ok(t) => t,
        Err(e) => return ViewMatch::Missing(e.clone()),
    };
    let Some(ours) = lvslab_view(ipvs, &real.args) else {
        return ViewMatch::Missing(format!("lvslab has no view for ipvsadm {}", real.args));
    };
    let ours: Vec<String> = ours.lines().map(|l| mask(&real.args, l)).collect();
    let theirs: Vec<String> = theirs.lines().map(|l| mask(&real.args, l)).collect();
    for i in 0..ours.len().max(theirs.len()) {
        let (a, b) = (ours.get(i), theirs.get(i));
        if a != b {
            return ViewMatch::Differs {
                line: i + 1,
                lvslab: a.cloned().unwrap_or_else(|| "(no line)".into()),
                ipvsadm: b.cloned().unwrap_or_else(|| "(no line)".into()),
            };
        }
    }
    ViewMatch::Same
}

/// The scenario with the real servers and weights that lvslab's own table shows for each
/// service this director (the one on `vip`) serves when the run ended: health checkers and
/// `[[event]]`s change the table (a checker may take a server out of one service and leave it
/// in another), and the real `ipvsadm -S -n` is taken at that moment. Servers the table holds
/// that the scenario does not name stay out, so they show as a difference.
pub fn as_left_by_the_run(scenario: &Scenario, ipvs: &IpvsSnapshot, vip: Ipv4Addr) -> Scenario {
    let Some(director) = scenario
        .directors
        .iter()
        .find(|d| d.vip == vip)
        .or(scenario.directors.first())
    else {
        return scenario.clone();
    };
    let mut left = scenario.clone();
    let mut weights: Vec<(String, u32)> = Vec::new();
    for (index, svc) in scenario.services.iter().enumerate() {
        let service_vip = scenario.service_vip(index, director);
        let Some(table) = ipvs.services.iter().find(|t| match &svc.fwmark {
            Some(rule) => t.fwmark == rule.mark,
            None => t.fwmark == 0 && t.vip == service_vip && t.port == svc.port && t.proto == svc.protocol,
        }) else {
            continue;
        };
        // Its pool, and its sorry server, which the table holds while quorum is lost.
        let sorry = svc
            .health
            .as_ref()
            .and_then(|h| h.sorry_server.as_ref())
            .and_then(|s| s.real_server.clone());
        let candidates: Vec<String> = svc
            .real_servers
            .iter()
            .cloned()
            .chain(sorry.filter(|n| !svc.real_servers.contains(n)))
            .collect();
        let kept: Vec<String> = candidates
            .iter()
            .filter(|name| {
                scenario
                    .real_servers
                    .iter()
                    .find(|rs| &rs.name == *name)
                    .is_some_and(|rs| {
                        let port = scenario.real_port(index, rs);
                        table
                            .dests
                            .iter()
                            .find(|d| d.addr == rs.address && (d.port == port || svc.fwmark.is_some()))
                            .inspect(|d| {
                                if !weights.iter().any(|(n, _)| n == *name) {
                                    weights.push(((*name).clone(), d.weight));
                                }
                            })
                            .is_some()
                    })
            })
            .cloned()
            .collect();
        left.services[index].real_servers = kept;
    }
    left.real_servers = scenario
        .real_servers
        .iter()
        .filter_map(|rs| {
            let (_, weight) = weights.iter().find(|(n, _)| *n == rs.name)?;
            let mut rs = rs.clone();
            rs.weight = *weight;
            Some(rs)
        })
        .collect();
    left
}

/// `lvslab import` of the real `ipvsadm -S -n` output, with the director's marking rules
/// (`nft list table ...`) when it has fwmark services, must give back the scenario's services
/// (on this director's VIP) and its real servers: `Err` says what came back different.
pub fn import_gives_back(
    scenario: &Scenario,
    vip: Ipv4Addr,
    saved: &str,
    mark_rules: Option<&str>,
) -> Result<(), String> {
    let marks: Vec<(&str, &str)> = mark_rules.map(|t| (t, "nft-list-table")).into_iter().collect();
    let imported =
        import::import_text_with_marks(saved, "ipvsadm-save", &marks).map_err(|e| format!("import refused it: {e}"))?;
    let back = crate::scenario::parse(&imported.toml, "imported.toml")
        .map_err(|r| format!("the imported scenario does not check: {}", r.render("imported.toml")))?;
    import::same_service(scenario, vip, &back)
}

/// The line with what may move between two reads replaced, widths kept where they are fixed.
fn mask(args: &str, line: &str) -> String {
    match args {
        "-Lnc" => mask_conn_row(line),
        "-Ln --rate" => mask_rates(line),
        _ => line.to_owned(),
    }
}

/// `TCP 01:57  FIN_WAIT    192.0.2.201:40512  192.0.2.100:80     192.0.2.11:80`: the
/// expiry's digits and the source port's digits become `#` (both have fixed widths in a lab:
/// mm:ss, and ephemeral ports of five digits).
fn mask_conn_row(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "IP" is a fwmark template's protocol.
    if fields.len() != 6 || !matches!(fields[0], "TCP" | "UDP" | "IP") {
        return line.to_owned();
    }
    let mut out = String::with_capacity(line.len());
    let mut field = 0;
    let mut in_field = false;
    let mut after_colon = false;
    for ch in line.chars() {
        if ch.is_whitespace() {
            in_field = false;
            out.push(ch);
            continue;
        }
        if !in_field {
            in_field = true;
            field += 1;
            after_colon = false;
        }
        let masked = match field {
            2 => ch.is_ascii_digit(),
            // The source port, except a template's 0.
            4 => after_colon && ch.is_ascii_digit() && !fields[3].ends_with(":0"),
            _ => false,
        };
        if ch == ':' {
            after_colon = true;
        }
        out.push(if masked { '#' } else { ch });
    }
    out
}

/// Service and destination rows keep their address; the five rates become `<rates>`.
fn mask_rates(line: &str) -> String {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let head = match fields.as_slice() {
        // `FWM  1`: a fwmark service's row names its mark.
        [proto, addr, ..] if matches!(*proto, "TCP" | "UDP" | "FWM") => format!("{proto} {addr}"),
        ["->", addr, ..] if addr.contains(':') && !addr.starts_with("Remote") => format!("  -> {addr}"),
        _ => return line.to_owned(),
    };
    format!("{head} <rates>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_rows_mask_expiry_and_ephemeral_port_only() {
        let a = "TCP 01:57  FIN_WAIT    192.0.2.201:40512  192.0.2.100:80     192.0.2.11:80";
        let b = "TCP 01:58  FIN_WAIT    192.0.2.201:51013  192.0.2.100:80     192.0.2.11:80";
        assert_eq!(mask_conn_row(a), mask_conn_row(b));
        assert_eq!(
            mask_conn_row(a),
            "TCP ##:##  FIN_WAIT    192.0.2.201:#####  192.0.2.100:80     192.0.2.11:80"
        );
        let other_dest = "TCP 01:57  FIN_WAIT    192.0.2.201:40512  192.0.2.100:80     192.0.2.12:80";
        assert_ne!(mask_conn_row(a), mask_conn_row(other_dest));
        let other_state = "TCP 01:57  CLOSE_WAIT  192.0.2.201:40512  192.0.2.100:80     192.0.2.11:80";
        assert_ne!(mask_conn_row(a), mask_conn_row(other_state));
        // A template keeps its port 0, so a template and a connection never look alike.
        let template = "TCP 05:00  NONE        192.0.2.201:0      192.0.2.100:80     192.0.2.11:80";
        assert!(mask_conn_row(template).contains("192.0.2.201:0 "));
        let header = "pro expire state       source             virtual            destination";
        assert_eq!(mask_conn_row(header), header);
        let fwmark_a = "IP  04:58  ASSURED     192.0.2.201:0      0.0.0.1:0          192.0.2.13:0";
        let fwmark_b = "IP  04:57  ASSURED     192.0.2.201:0      0.0.0.1:0          192.0.2.13:0";
        assert_eq!(mask_conn_row(fwmark_a), mask_conn_row(fwmark_b));
        assert!(mask_conn_row(fwmark_a).contains("192.0.2.201:0 "));
    }

    #[test]
    fn rate_rows_keep_addresses() {
        let a = "TCP  192.0.2.100:80                      1        5        4      321      456";
        let b = "TCP  192.0.2.100:80                      0        0        0        0        0";
        assert_eq!(mask_rates(a), mask_rates(b));
        assert_ne!(mask_rates(a), mask_rates("TCP  192.0.2.101:80    0 0 0 0 0"));
        let dest = "  -> 192.0.2.11:80                        0        1        1       65      120";
        assert_eq!(mask_rates(dest), "  -> 192.0.2.11:80 <rates>");
        let header = "  -> RemoteAddress:Port";
        assert_eq!(mask_rates(header), header);
        let fwm_a = "FWM  1                                   4       19        0     1228        0";
        let fwm_b = "FWM  1                                   3       14        0      921        0";
        assert_eq!(mask_rates(fwm_a), mask_rates(fwm_b));
        assert_ne!(mask_rates(fwm_a), mask_rates("FWM  2    4 19 0 1228 0"));
    }

    fn snapshot_of(scenario: &Scenario) -> IpvsSnapshot {
        let director = scenario.director().expect("a director");
        let cfg = crate::run::director_config(scenario, director).expect("configures");
        let mut table = crate::ipvs::Ipvs::new(cfg.sysctls);
        for (svc, dests) in cfg.services {
            let id = table.add_service(svc).unwrap();
            for d in dests {
                table.add_dest(id, d).unwrap();
            }
        }
        table.snapshot(std::time::Instant::now())
    }

    #[test]
    fn a_table_the_run_changed_is_compared_as_the_run_left_it() {
        let text = "[service]\nmode = \"dr\"\nscheduler = \"rr\"\n\
                    [[real_server]]\nname = \"a\"\n[[real_server]]\nname = \"b\"\n[[real_server]]\nname = \"c\"\n";
        let scenario = crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t")));
        let vip = scenario.directors[0].vip;
        let mut ipvs = snapshot_of(&scenario);
        // A checker removed c and inhibited b, as keepalived would.
        let dests = &mut ipvs.services[0].dests;
        let (b, c) = (scenario.real_servers[1].address, scenario.real_servers[2].address);
        dests.retain(|d| d.addr != c);
        dests.iter_mut().filter(|d| d.addr == b).for_each(|d| d.weight = 0);
        let saved = ipvs.save_text();
        assert!(
            import_gives_back(&scenario, vip, &saved, None).is_err(),
            "the file's table is not the run's"
        );
        let left = as_left_by_the_run(&scenario, &ipvs, vip);
        let names: Vec<(&str, u32)> = left.real_servers.iter().map(|r| (r.name.as_str(), r.weight)).collect();
        assert_eq!(names, [("a", 1), ("b", 0)]);
        assert_eq!(import_gives_back(&left, vip, &saved, None), Ok(()));
    }

    #[test]
    fn the_save_imports_back_to_the_scenario_and_a_changed_one_does_not() {
        let text = "[service]\nmode = \"nat\"\nscheduler = \"wlc\"\npersistence = 120\npersistence_netmask = \"255.255.255.0\"\n\
                    [[real_server]]\nname = \"a\"\nweight = 3\n[[real_server]]\nname = \"b\"\n";
        let scenario = crate::scenario::parse(text, "t.toml").unwrap_or_else(|r| panic!("{}", r.render("t")));
        let vip = scenario.directors[0].vip;
        let saved = snapshot_of(&scenario).save_text();
        assert_eq!(import_gives_back(&scenario, vip, &saved, None), Ok(()));
        let reweighted = saved.replace("-w 3", "-w 4");
        assert_ne!(saved, reweighted, "{saved}");
        let err = import_gives_back(&scenario, vip, &reweighted, None).unwrap_err();
        assert!(err.starts_with("real servers"), "{err}");
        let rescheduled = saved.replace("-s wlc", "-s rr");
        let err = import_gives_back(&scenario, vip, &rescheduled, None).unwrap_err();
        assert!(err.contains("scheduler wlc came back as rr"), "{err}");
    }

    #[test]
    fn first_differing_line_is_named() {
        let ipvs = IpvsSnapshot {
            conn_tab_size: 4096,
            services: Vec::new(),
            conns: Vec::new(),
        };
        let real = IpvsadmView {
            args: "-Ln".into(),
            output: Ok(format!("{}TCP  192.0.2.100:80 rr\n", ipvs.list_text())),
        };
        match compare(&ipvs, &real) {
            ViewMatch::Differs { line, lvslab, ipvsadm } => {
                assert_eq!(line, 4);
                assert_eq!(lvslab, "(no line)");
                assert_eq!(ipvsadm, "TCP  192.0.2.100:80 rr");
            }
            other => panic!("{other:?}"),
        }
        let same = IpvsadmView {
            args: "-Ln".into(),
            output: Ok(ipvs.list_text()),
        };
        assert_eq!(compare(&ipvs, &same), ViewMatch::Same);
        let failed = IpvsadmView {
            args: "-Ln".into(),
            output: Err("cannot run ipvsadm -Ln: not found".into()),
        };
        assert!(matches!(compare(&ipvs, &failed), ViewMatch::Missing(_)));
    }
}
