//! `lvslab check --format json`: every problem of every file as one JSON document, for
//! editors and other tools. Line and column are 1-based, 0 for a problem with no place in the
//! file (it cannot be read).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::scenario::{self, CheckReport, Scenario, Severity};

/// The whole answer: `ok` is false when any file has an error (the exit code is then 2).
#[derive(Debug, Serialize)]
pub struct CheckOutput {
    pub ok: bool,
    pub files: Vec<FileCheck>,
    pub problems: Vec<JsonProblem>,
}

/// One file: `scenario` is its resolved name when it has no errors.
#[derive(Debug, Serialize)]
pub struct FileCheck {
    pub file: String,
    pub ok: bool,
    pub scenario: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct JsonProblem {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// `error` refuses the file; `warning` is a contradiction the file may mean to show.
    pub severity: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

/// Checks each file as `lvslab check` does (nft's verdict on the hosts' rules included).
pub fn check(files: &[PathBuf]) -> CheckOutput {
    let mut output = CheckOutput {
        ok: true,
        files: Vec::new(),
        problems: Vec::new(),
    };
    for file in files {
        let shown = file.display().to_string();
        let (scenario, report) = check_file(file);
        let ok = report.errors().next().is_none();
        output.ok &= ok;
        output.problems.extend(report.problems.iter().map(|p| JsonProblem {
            file: shown.clone(),
            line: p.line,
            column: p.column,
            severity: match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            },
            message: p.message.clone(),
            hint: p.hint.clone(),
        }));
        output.files.push(FileCheck {
            file: shown,
            ok,
            scenario: scenario.filter(|_| ok).map(|s| s.name),
        });
    }
    output
}

/// One file's scenario (when it resolves) and every problem found in it, nft's included.
pub fn check_file(file: &Path) -> (Option<Scenario>, CheckReport) {
    match scenario::load_checked(file) {
        Ok((s, mut report)) => {
            if s.hosts.iter().any(|h| h.nftables.is_some()) {
                report
                    .problems
                    .extend(scenario::firewall::check_rules_in(file, &s).problems);
            }
            (Some(s), report)
        }
        Err(report) => (None, report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_has_its_file_line_column_severity_message_and_hint() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[service]\nmode = \"drr\"\n").unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "[service]\nmode = \"dr\"\n[[real_server]]\nname = \"rs1\"\n").unwrap();
        let out = check(&[bad.clone(), good]);
        assert!(!out.ok);
        assert_eq!(out.files.len(), 2);
        assert!(!out.files[0].ok && out.files[0].scenario.is_none());
        assert!(out.files[1].ok, "{:?}", out.problems);
        assert_eq!(out.files[1].scenario.as_deref(), Some("good"));
        let p = &out.problems[0];
        assert_eq!(
            (p.file.as_str(), p.line, p.column, p.severity),
            (bad.to_str().unwrap(), 2, 8, "error")
        );
        assert!(p.message.contains("drr"), "{}", p.message);
        assert!(p.hint.as_deref().unwrap_or_default().contains("dr"), "{:?}", p.hint);
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["problems"][0]["line"], 2);
        assert_eq!(json["problems"][0]["severity"], "error");
    }
}
