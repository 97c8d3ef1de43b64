//! The path of each request, built from `--capture`'s files: `lvslab trace DIR --request N`
//! and the report's "path" section. [`RequestPath`] is plain data for the text, JSON and HTML.

mod index;
mod path;
mod render;
#[cfg(test)]
mod tests;

use std::path::Path;

pub use index::{CaptureIndex, TracedRequest};
pub use path::{attempts, parse, Addressing, Attempt, Direction, Hop, Leg, Parsed, PlaceCount, RequestPath};
pub use render::render;

use crate::capture::{read_frames, Frame, LinkType};

/// Every capture file of `index`, read back.
pub fn read_files(index: &CaptureIndex) -> Result<Vec<(LinkType, Vec<Frame>)>, String> {
    index
        .capture
        .files
        .iter()
        .map(|f| read_frames(&index.capture.dir.join(&f.file)))
        .collect()
}

/// The paths of the requests numbered `numbers` (1-based), from frames already read.
pub fn paths(
    index: &CaptureIndex,
    files: &[(LinkType, Vec<Frame>)],
    numbers: &[usize],
) -> Result<Vec<RequestPath>, String> {
    let places: Vec<path::CapturedPlace<'_>> = index
        .capture
        .files
        .iter()
        .zip(files)
        .map(|(file, (link, frames))| path::CapturedPlace::new(file, *link, frames))
        .collect();
    numbers
        .iter()
        .map(|&n| {
            let request = number(index, n)?;
            Ok(path::build(&index.requests, request, &places, &index.capture.macs))
        })
        .collect()
}

fn number(index: &CaptureIndex, n: usize) -> Result<&TracedRequest, String> {
    if index.requests.is_empty() {
        return Err(format!(
            "{}: this capture has no lvslab requests (a kept lab's capture: its traffic was your own); trace a capture of `lvslab run` or `diagnose`",
            index.capture.dir.display()
        ));
    }
    n.checked_sub(1)
        .and_then(|i| index.requests.get(i))
        .ok_or_else(|| format!("no request {n}: the run made requests 1 to {}", index.requests.len()))
}

/// `lvslab trace DIR --request N`.
pub fn trace_dir(dir: &Path, n: usize) -> Result<RequestPath, String> {
    let index = CaptureIndex::read(dir)?;
    number(&index, n)?;
    let files = read_files(&index)?;
    Ok(paths(&index, &files, &[n])?.remove(0))
}

/// The requests the report shows: the first, and the first few that failed.
pub fn report_picks(index: &CaptureIndex) -> Vec<usize> {
    let first = index.requests.first().map(|r| r.number);
    let failed = index
        .requests
        .iter()
        .filter(|r| r.error.is_some() && Some(r.number) != first)
        .take(REPORTED_FAILURES)
        .map(|r| r.number);
    first.into_iter().chain(failed).collect()
}

/// Failed requests whose path the report shows (`lvslab trace` shows any other).
const REPORTED_FAILURES: usize = 2;

/// What a run with `--capture` adds to its outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptureReport {
    pub summary: crate::capture::CaptureSummary,
    /// The paths of the requests the report shows (see [`report_picks`]).
    pub paths: Vec<RequestPath>,
}

impl CaptureReport {
    /// Writes the directory's index (files, MACs, the run's requests) and builds the paths
    /// the report shows.
    pub fn write(
        scenario: &str,
        proto: crate::lvs::Proto,
        summary: crate::capture::CaptureSummary,
        records: &[crate::traffic::RequestRecord],
    ) -> Result<CaptureReport, String> {
        let index = CaptureIndex {
            scenario: scenario.to_owned(),
            capture: summary,
            requests: TracedRequest::from_records(records, proto),
        };
        index.write()?;
        let picks = report_picks(&index);
        let paths = if picks.is_empty() {
            Vec::new()
        } else {
            paths(&index, &read_files(&index)?, &picks)?
        };
        Ok(CaptureReport {
            summary: index.capture,
            paths,
        })
    }
}
