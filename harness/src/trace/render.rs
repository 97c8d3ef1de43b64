//! A request's path as text: one line per hop, what each hop rewrote at its end.

use std::fmt::Write;

use super::path::{Direction, Hop, RequestPath};

pub fn render(path: &RequestPath) -> String {
    let mut out = String::new();
    let from = path.from.map_or_else(|| "?".to_owned(), |a| a.to_string());
    let outcome = match (&path.backend, &path.error) {
        (_, Some(e)) => format!("failed: {e}"),
        (Some(b), None) => format!("answered by {b}"),
        (None, None) => "no backend named".to_owned(),
    };
    let _ = writeln!(
        out,
        "request {} ({}, {}): {from} → {}, {outcome}",
        path.request,
        path.client,
        path.proto.name(),
        path.target
    );
    let width = path
        .legs
        .iter()
        .flat_map(|l| &l.hops)
        .map(|h| h.place.chars().count())
        .max()
        .unwrap_or(0);
    for leg in &path.legs {
        let _ = writeln!(out, "  {}", leg.packet);
        for hop in &leg.hops {
            let _ = writeln!(out, "    {}", hop_line(hop, width));
        }
    }
    if !path.places.is_empty() {
        let counts: Vec<String> = path
            .places
            .iter()
            .map(|c| format!("{} {}/{}", c.place, c.forward, c.back))
            .collect();
        let _ = writeln!(out, "  packets there/back: {}", counts.join(", "));
    }
    if let Some(stopped) = &path.stopped {
        let _ = writeln!(out, "  stopped: {stopped}");
    }
    out
}

fn hop_line(hop: &Hop, width: usize) -> String {
    let dir = match hop.direction {
        Some(Direction::In) => "in ",
        Some(Direction::Out) => "out",
        None => "   ",
    };
    let mut line = format!("{:<width$}  {dir}  ", hop.place);
    if let (Some(src), Some(dst)) = (hop.src_mac, hop.dst_mac) {
        let owner = hop
            .dst_mac_owner
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        let _ = write!(line, "{src} → {dst}{owner}  ");
    }
    if let (Some(src), Some(dst)) = (hop.outer_src, hop.outer_dst) {
        let _ = write!(line, "[IPIP {src} → {dst}] ");
    }
    let _ = write!(line, "{} → {}", hop.src, hop.dst);
    if !hop.changed.is_empty() {
        let _ = write!(line, "   rewritten: {}", hop.changed.join(", "));
    }
    line
}
