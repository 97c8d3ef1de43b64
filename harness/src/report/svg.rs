//! The scenario's topology drawn as SVG by lvslab itself (no graphviz at run time): each
//! network a horizontal bus, each host a box above or below the buses it is on, each link a
//! vertical line labelled with the interface and its address.
//!
//! Layout in layers, top to bottom: the hosts above the first bus (clients on it), the bus,
//! the hosts between it and the next (on both, or on the first only), the next bus, and so
//! on; a host on one network only sits below its bus, clients above theirs.

use maud::{html, Markup};

use super::graph::{host_notes, role_name};
use crate::scenario::{Host, Role, Scenario};

const BOX_WIDTH: i32 = 230;
const GAP_X: i32 = 24;
/// Room left of the hosts for the buses' names.
const LEFT: i32 = 170;
const MARGIN: i32 = 16;
const LINE: i32 = 15;
const PAD: i32 = 8;
/// Vertical room between a row of hosts and a bus, where the link labels go.
const LINK_SPACE: i32 = 38;

/// A whole SVG document (for `lvslab graph --format svg`).
pub fn topology_svg(scenario: &Scenario) -> String {
    let mut document = topology(scenario).into_string();
    document.push('\n');
    document
}

/// The `<svg>` element, for a file of its own or inline in the HTML report.
pub fn topology(scenario: &Scenario) -> Markup {
    let layout = Layout::of(scenario);
    let width = layout.width;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox=(format!("0 0 {} {}", width, layout.height))
            width=(width) height=(layout.height) font-family="Helvetica, Arial, sans-serif" font-size="12" {
            title { "topology of " (scenario.name) }
            @for bus in &layout.buses {
                g class="network" {
                    line x1=(MARGIN) y1=(bus.y) x2=(width - MARGIN) y2=(bus.y) stroke="#3b5b8c" stroke-width="4" {}
                    text x=(MARGIN) y=(bus.y - 8) font-weight="bold" fill="#3b5b8c" { (bus.name) }
                    text x=(MARGIN) y=(bus.y + 16) fill="#3b5b8c" { (bus.subnet) }
                }
            }
            @for placed in &layout.hosts {
                (host_box(scenario, placed, &layout))
            }
        }
    }
}

struct Bus {
    name: String,
    subnet: String,
    y: i32,
}

struct Placed<'a> {
    host: &'a Host,
    x: i32,
    y: i32,
    height: i32,
}

struct Layout<'a> {
    buses: Vec<Bus>,
    hosts: Vec<Placed<'a>>,
    width: i32,
    height: i32,
}

impl<'a> Layout<'a> {
    fn of(scenario: &'a Scenario) -> Layout<'a> {
        let networks = scenario.networks.len();
        // Row 2k+1 is bus k; rows 2k are the hosts above bus k.
        let mut rows: Vec<Vec<&Host>> = vec![Vec::new(); 2 * networks + 1];
        for host in scenario.hosts() {
            rows[row_of(scenario, host)].push(host);
        }
        let widest = rows.iter().step_by(2).map(Vec::len).max().unwrap_or(0).max(1) as i32;
        let width = LEFT + widest * (BOX_WIDTH + GAP_X) + MARGIN;
        let mut y = MARGIN;
        let mut buses = Vec::new();
        let mut hosts = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if index % 2 == 1 {
                let net = &scenario.networks[index / 2];
                y += LINK_SPACE;
                buses.push(Bus {
                    name: net.name.clone(),
                    subnet: net.subnet.to_string(),
                    y,
                });
                y += LINK_SPACE;
                continue;
            }
            if row.is_empty() {
                continue;
            }
            let height = row.iter().map(|h| box_height(scenario, h)).max().unwrap_or(0);
            for (column, host) in row.iter().enumerate() {
                hosts.push(Placed {
                    host,
                    x: LEFT + column as i32 * (BOX_WIDTH + GAP_X),
                    y,
                    height,
                });
            }
            y += height;
        }
        Layout {
            buses,
            hosts,
            width,
            height: y + MARGIN,
        }
    }

    fn bus_y(&self, network: &str) -> Option<i32> {
        self.buses.iter().find(|b| b.name == network).map(|b| b.y)
    }
}

/// The row a host goes in: between its first two buses, else below its one bus (clients above).
fn row_of(scenario: &Scenario, host: &Host) -> usize {
    let mut indexes: Vec<usize> = host
        .interfaces
        .iter()
        .filter_map(|i| scenario.networks.iter().position(|n| n.name == i.network))
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    match indexes.as_slice() {
        [] => 0,
        [only] if host.role == Role::Client => 2 * only,
        [first, ..] => 2 * first + 2,
    }
}

fn text_lines(scenario: &Scenario, host: &Host) -> Vec<String> {
    let mut lines = vec![role_name(host.role).to_owned()];
    lines.extend(host.interfaces.iter().map(|i| format!("{} {}", i.name, i.mac)));
    lines.extend(host_notes(scenario, host));
    lines
}

fn box_height(scenario: &Scenario, host: &Host) -> i32 {
    // The name, then the other lines.
    (1 + text_lines(scenario, host).len() as i32) * LINE + 2 * PAD
}

fn host_box(scenario: &Scenario, placed: &Placed, layout: &Layout) -> Markup {
    let host = placed.host;
    let own_height = box_height(scenario, host);
    // Boxes in a row share their top; a shorter box is centred in the row's height.
    let top = placed.y + (placed.height - own_height) / 2;
    let links = host.interfaces.len() as i32;
    let fill = match host.role {
        Role::Client => "#f3f7ea",
        Role::Director => "#fdf1e1",
        Role::RealServer => "#eef3fb",
        Role::Router => "#f2f2f2",
    };
    html! {
        g class="host" id=(format!("host-{}", host.name)) {
            @for (n, iface) in host.interfaces.iter().enumerate() {
                @if let Some(bus_y) = layout.bus_y(&iface.network) {
                    @let x = placed.x + BOX_WIDTH * (n as i32 + 1) / (links + 1);
                    @let (from, to) = if bus_y < top { (top, bus_y) } else { (top + own_height, bus_y) };
                    line x1=(x) y1=(from) x2=(x) y2=(to) stroke="#555" stroke-width="1.5" {}
                    text x=(x + 4) y=((from + to) / 2 + 4) font-size="11" fill="#222" {
                        (iface.name) " " (iface.address.to_string())
                    }
                }
            }
            rect x=(placed.x) y=(top) width=(BOX_WIDTH) height=(own_height) rx="6" fill=(fill) stroke="#555" {}
            text x=(placed.x + PAD) y=(top + PAD + LINE - 3) font-weight="bold" { (host.name) }
            @for (n, line) in text_lines(scenario, host).iter().enumerate() {
                text x=(placed.x + PAD) y=(top + PAD + LINE * (n as i32 + 2) - 3) fill="#333" { (line) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Scenario {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        crate::scenario::load(&path).unwrap_or_else(|_| panic!("{name} loads"))
    }

    /// Well-formed XML with a box per host and a line per bus and per link.
    fn check_drawing(s: &Scenario) -> String {
        let svg = topology_svg(s);
        let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        let boxes = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
        assert_eq!(boxes, s.hosts().count());
        for host in s.hosts() {
            let id = format!("host-{}", host.name);
            assert!(
                doc.descendants().any(|n| n.attribute("id") == Some(id.as_str())),
                "{id}"
            );
        }
        let links: usize = s.hosts().map(|h| h.interfaces.len()).sum();
        let lines = doc.descendants().filter(|n| n.has_tag_name("line")).count();
        assert_eq!(lines, s.networks.len() + links);
        svg
    }

    #[test]
    fn nat_lab_drawing() {
        let s = shipped("nat-rr.toml");
        let svg = check_drawing(&s);
        insta::assert_snapshot!("topology_nat_rr", svg);
    }

    #[test]
    fn arp_flux_lab_drawing() {
        let s = shipped("why-arp-flux.toml");
        let svg = check_drawing(&s);
        insta::assert_snapshot!("topology_why_arp_flux", svg);
    }

    #[test]
    fn the_client_is_above_its_bus_the_real_servers_below_the_director_between() {
        let s = shipped("nat-rr.toml");
        let layout = Layout::of(&s);
        let y = |name: &str| layout.hosts.iter().find(|p| p.host.name == name).unwrap().y;
        let bus = |i: usize| layout.buses[i].y;
        assert!(y("client") < bus(0));
        assert!(bus(0) < y("director") && y("director") < bus(1));
        assert!(y("rs1") > bus(1));
    }

    #[test]
    fn names_are_escaped() {
        let mut s = shipped("nat-rr.toml");
        s.name = "a<b>&\"c\"".into();
        let svg = check_drawing(&s);
        assert!(svg.contains("topology of a&lt;b&gt;&amp;&quot;c&quot;"), "{svg}");
    }
}
