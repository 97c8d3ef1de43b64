//! The report's request paths: plain data (filled from the captures by whoever traces them)
//! and their table. The hop fields are text so that any tracer can fill them.

use maud::{html, Markup};

/// One request's way through the lab, hop by hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPath {
    /// The request's sequence number, as `lvslab trace --request N` takes it.
    pub request: u32,
    pub hops: Vec<PathHop>,
    /// Where its packets stopped, for a request that failed.
    pub stopped: Option<String>,
}

/// One frame of the request, seen on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHop {
    pub host: String,
    pub interface: String,
    /// `out` or `in`, as the capture saw it.
    pub direction: String,
    pub src_mac: String,
    pub dst_mac: String,
    /// `address:port`.
    pub src: String,
    pub dst: String,
    /// What changed here: "destination MAC rewritten", "outer IPIP header added", …
    pub note: Option<String>,
}

pub fn render(paths: &[RequestPath]) -> Markup {
    html! {
        @if paths.is_empty() {
            p { "The captures hold no request." }
        }
        @for path in paths {
            div class="path" id=(format!("request-{}", path.request)) {
                h4 { "request " (path.request) }
                table {
                    tr { th { "host" } th { "interface" } th { "" } th { "MAC src → dst" } th { "address src → dst" } th { "" } }
                    @for hop in &path.hops {
                        tr {
                            td { (hop.host) } td { (hop.interface) } td { (hop.direction) }
                            td { code { (hop.src_mac) " → " (hop.dst_mac) } }
                            td { code { (hop.src) " → " (hop.dst) } }
                            td { @if let Some(note) = &hop.note { (note) } }
                        }
                    }
                }
                @if let Some(stopped) = &path.stopped {
                    p class="fail" { "stopped: " (stopped) }
                }
            }
        }
    }
}

/// A captured request's path (`lvslab trace`) as the report draws it: each leg's hops in turn,
/// each hop's note saying what it rewrote and which leg (SYN, SYN-ACK, …) it belongs to.
pub fn from_trace(p: &crate::trace::RequestPath) -> RequestPath {
    let show_mac = |m: Option<crate::wire::Mac>| m.map_or_else(|| "-".to_string(), |m| m.to_string());
    let mut hops = Vec::new();
    for leg in &p.legs {
        for hop in &leg.hops {
            let (host, interface) = hop
                .place
                .split_once(' ')
                .map_or((hop.place.clone(), String::new()), |(h, i)| {
                    (h.to_string(), i.to_string())
                });
            let direction = match hop.direction {
                Some(crate::trace::Direction::In) => "in",
                Some(crate::trace::Direction::Out) => "out",
                None => "forwarded",
            };
            let mut note = vec![leg.packet.clone()];
            if let (Some(o), Some(d)) = (hop.outer_src, hop.outer_dst) {
                note.push(format!("outer IPIP {o} → {d}"));
            }
            if let Some(owner) = &hop.dst_mac_owner {
                note.push(format!("dst MAC is {owner}"));
            }
            if !hop.changed.is_empty() {
                note.push(format!("changed: {}", hop.changed.join(", ")));
            }
            hops.push(PathHop {
                host,
                interface,
                direction: direction.to_string(),
                src_mac: show_mac(hop.src_mac),
                dst_mac: show_mac(hop.dst_mac),
                src: hop.src.to_string(),
                dst: hop.dst.to_string(),
                note: Some(note.join("; ")),
            });
        }
    }
    RequestPath {
        request: u32::try_from(p.request).unwrap_or(u32::MAX),
        hops,
        stopped: p.stopped.clone(),
    }
}
