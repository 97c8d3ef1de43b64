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
