use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::diagnose::{CauseId, SpreadSummary, SpreadVerdict};
use crate::report::{Timeline, TimelineEvent, TimelineRow};
use crate::run::FiredEvent;
use crate::tally::Tally;
use crate::verdict::Check;

fn dr_lab() -> Scenario {
    crate::scenario::parse(
        "[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n[[real_server]]\nname = \"rs2\"\n",
        "dr.toml",
    )
    .expect("valid scenario")
}

fn mac_of(s: &Scenario, host: &str) -> String {
    s.hosts().find(|h| h.name == host).unwrap().interfaces[0]
        .mac
        .to_string()
}

fn one_finding(finding: Finding) -> Diagnosis {
    Diagnosis {
        findings: vec![finding],
        spread: SpreadSummary {
            requests: 10,
            errors: 0,
            per_backend: BTreeMap::from([("rs1".to_owned(), 0), ("rs2".to_owned(), 10)]),
            distinct: 1,
            eligible: 2,
            top_share: 1.0,
            verdict: SpreadVerdict::OneServer,
            healthy: false,
        },
        healthy: false,
    }
}

/// Parses an SVG fragment as XML: well-formed, or the test says where not.
fn parsed(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{svg}"))
}

#[test]
fn text_from_findings_and_checks_is_escaped() {
    let s = dr_lab();
    let d = one_finding(
        Finding::new(CauseId::ArpFlux, "<script>alert(1)</script>", 0.9)
            .evidence(["a & b <i>".to_owned()])
            .fix(["sysctl -w \"x\"".to_owned()]),
    );
    let html = diagnosis(&s, Some(&d), &["<b>no</b>".to_owned()]).into_string();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("a &amp; b &lt;i&gt;"), "{html}");
    assert!(html.contains("&lt;b&gt;no&lt;/b&gt;"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<i>") && !html.contains("<b>"),
        "{html}"
    );
    let verdict = Verdict {
        passed: false,
        checks: vec![Check::new("rs1 <gets> 50%".into(), false, Some("got \"0\"".into()))],
    };
    let table = checks(&verdict).into_string();
    assert!(table.contains("rs1 &lt;gets&gt; 50%"), "{table}");
    assert!(table.contains("class=\"fail\""), "{table}");
}

#[test]
fn a_lab_mac_in_the_evidence_is_named_after_its_host_and_interface() {
    let s = dr_lab();
    let rs2 = mac_of(&s, "rs2");
    let line = format!("client neighbour 192.0.2.100 lladdr {rs2} on eth0, not the director's (02:ff:00:00:00:01)");
    let html = with_macs_named(&s, &line).into_string();
    assert!(
        html.contains(&format!(
            "<code class=\"mac\" title=\"rs2 eth0\">{rs2} [rs2 eth0]</code>"
        )),
        "{html}"
    );
    assert!(html.contains("<code class=\"mac\">02:ff:00:00:00:01</code>"), "{html}");
    assert!(html.starts_with("client neighbour 192.0.2.100 lladdr "), "{html}");
    assert!(html.ends_with(")"), "{html}");
}

#[test]
fn only_whole_macs_are_marked() {
    assert_eq!(find_mac("at 02:00:00:00:00:0b."), Some((3, "02:00:00:00:00:0b")));
    assert_eq!(find_mac("02:00:00:00:00:0b"), Some((0, "02:00:00:00:00:0b")));
    // Seven groups, an IPv6-like run, a short one: none is a MAC.
    assert_eq!(find_mac("02:00:00:00:00:0b:01"), None);
    assert_eq!(find_mac("fe80::02:00:00:00:00:0b"), None);
    assert_eq!(find_mac("12:34:56"), None);
    assert_eq!(find_mac("über 02:00:00:00:00:0b"), Some((6, "02:00:00:00:00:0b")));
}

#[test]
fn a_finding_shows_its_cause_evidence_and_fix() {
    let s = dr_lab();
    let d = one_finding(
        Finding::new(CauseId::ArpFlux, "rs2 answers ARP for the VIP", 0.9)
            .evidence(["one".to_owned(), "two".to_owned()])
            .fix(["sysctl -w net.ipv4.conf.all.arp_announce=2".to_owned()]),
    );
    let html = diagnosis(&s, Some(&d), &[]).into_string();
    assert!(html.contains("id=\"cause-arp-flux\""), "{html}");
    assert!(html.contains("explains ~90%"), "{html}");
    assert_eq!(html.matches("<li>").count(), 3, "{html}");
    assert!(
        html.contains("<code>sysctl -w net.ipv4.conf.all.arp_announce=2</code>"),
        "{html}"
    );
    let none = diagnosis(&s, None, &[]).into_string();
    assert!(none.contains("No diagnosis was made"), "{none}");
}

#[test]
fn the_spread_chart_draws_a_bar_per_backend_and_error_and_marks_the_expected() {
    let mut tally = Tally::new(["rs1", "rs2", "rs3"]);
    for b in ["rs1", "rs1", "rs2"] {
        tally.add_answer(b);
    }
    tally.add_error("timeout");
    let expected = BTreeMap::from([
        ("rs1".to_owned(), 1.0),
        ("rs2".to_owned(), 1.0),
        ("rs3".to_owned(), 1.0),
    ]);
    let svg = charts::tally_chart(&tally, &expected, "by weight").into_string();
    let doc = parsed(&svg);
    let bars = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
    assert_eq!(bars, 4, "{svg}");
    let marks = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("expected"))
        .count();
    assert_eq!(marks, 3, "{svg}");
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("bar error"))
            .count(),
        1
    );
}

#[test]
fn a_spread_chart_of_many_backends_draws_the_extremes_and_counts_the_rest() {
    let names: Vec<String> = (1..=100).map(|i| format!("rs{i}")).collect();
    let mut tally = Tally::new(names.iter().map(String::as_str));
    for (i, name) in names.iter().enumerate() {
        for _ in 0..i {
            tally.add_answer(name);
        }
    }
    let svg = charts::tally_chart(&tally, &BTreeMap::new(), "").into_string();
    let doc = parsed(&svg);
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("rect")).count(), 40);
    assert!(svg.contains("60 more backends"), "{svg}");
    // The busiest and the idlest are among those drawn.
    assert!(svg.contains(">rs100<") && svg.contains(">rs1<"), "{svg}");
}

#[test]
fn the_timeline_has_a_cell_per_row_and_slice_and_numbers_its_events() {
    let t = Timeline {
        slice_ms: 100,
        rows: vec![
            TimelineRow {
                label: "rs1".into(),
                counts: vec![3, 3, 0, 3],
            },
            TimelineRow {
                label: "errors".into(),
                counts: vec![0, 0, 4, 0],
            },
        ],
        events: vec![TimelineEvent {
            fired: FiredEvent {
                name: "rs1 <dies>".into(),
                host: "rs1".into(),
                action: "stop".into(),
                due_ms: Duration::from_millis(200),
                done_ms: Duration::from_millis(201),
                error: None,
            },
            slice: 2,
        }],
    };
    let html = charts::timeline(&t).into_string();
    let svg_end = html.find("</svg>").expect("an svg") + "</svg>".len();
    let doc = parsed(&html[..svg_end]);
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("rect")).count(), 8);
    assert!(html.contains("at 201 ms: rs1 stop (rs1 &lt;dies&gt;)"), "{html}");
}

#[test]
fn request_paths_show_each_hop_and_where_a_request_stopped() {
    let hop = |host: &str, dst_mac: &str| PathHop {
        host: host.into(),
        interface: "eth0".into(),
        direction: "in".into(),
        src_mac: "02:00:00:00:00:0a".into(),
        dst_mac: dst_mac.into(),
        src: "192.0.2.10:40000".into(),
        dst: "192.0.2.100:80".into(),
        note: Some("destination MAC rewritten".into()),
    };
    let paths = [RequestPath {
        request: 3,
        hops: vec![hop("director", "02:00:00:00:00:02"), hop("rs2", "02:00:00:00:00:12")],
        stopped: Some("rs2 <dropped> it".into()),
    }];
    let html = paths::render(&paths).into_string();
    assert!(html.contains("id=\"request-3\""), "{html}");
    assert_eq!(html.matches("<tr>").count(), 3, "{html}");
    assert!(html.contains("stopped: rs2 &lt;dropped&gt; it"), "{html}");
    assert!(paths::render(&[]).into_string().contains("no request"));
}
