//! The report's `--capture` section: the files written, then the paths of the first request
//! and of the first failed ones.

use std::fmt::Write;

use crate::trace::CaptureReport;

pub fn render_capture(report: &CaptureReport) -> String {
    let summary = &report.summary;
    let frames: u64 = summary.files.iter().map(|f| f.frames).sum();
    let mut out = format!(
        "captures: {} ({} files, {frames} frames; Wireshark and tshark read them)\n",
        summary.dir.display(),
        summary.files.len()
    );
    let width = summary.files.iter().map(|f| f.file.chars().count()).max().unwrap_or(0);
    for f in &summary.files {
        let _ = write!(out, "  {:<width$}  {:>6} frames", f.file, f.frames);
        if f.dropped > 0 {
            let _ = write!(out, "  ({} dropped: the ring was full)", f.dropped);
        }
        out.push('\n');
    }
    for path in &report.paths {
        out.push('\n');
        out.push_str(&crate::trace::render(path));
    }
    let _ = writeln!(
        out,
        "\nany request's path: lvslab trace {} --request N",
        summary.dir.display()
    );
    out
}
