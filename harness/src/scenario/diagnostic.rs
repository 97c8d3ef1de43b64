//! Problems found in a scenario file, each with its position, and their
//! rendering as `file:line:column: error: ...` lines. Warnings (`... warning: ...`) are
//! contradictions the file may mean to show: they never refuse it.

use std::fmt::Write as _;
use std::ops::Range;

/// One problem in a scenario file. `line` and `column` are 1-based; both are
/// 0 when the problem has no place in the file (e.g. it cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    pub severity: Severity,
}

/// An error refuses the file; a warning is printed and the file is used as written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

impl Severity {
    fn word(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// Every problem found in one scenario file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
}

impl CheckReport {
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| p.severity == Severity::Warning)
    }

    /// A report with one problem that has no position (unreadable file, ...).
    pub fn single(message: impl Into<String>, hint: Option<String>) -> Self {
        CheckReport {
            problems: vec![Problem {
                line: 0,
                column: 0,
                message: message.into(),
                hint,
                severity: Severity::Error,
            }],
        }
    }

    /// `origin:line:column: error: message` (or `warning:`) plus an indented hint line per
    /// problem, then the count: `N problems in origin`, with `and M warnings` when there are.
    pub fn render(&self, origin: &str) -> String {
        let mut out = String::new();
        for p in &self.problems {
            let word = p.severity.word();
            if p.line == 0 {
                let _ = writeln!(out, "{origin}: {word}: {}", p.message);
            } else {
                let _ = writeln!(out, "{origin}:{}:{}: {word}: {}", p.line, p.column, p.message);
            }
            if let Some(hint) = &p.hint {
                let _ = writeln!(out, "  hint: {hint}");
            }
        }
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let (errors, warnings) = (self.errors().count(), self.warnings().count());
        let _ = match (errors, warnings) {
            (_, 0) => writeln!(out, "{errors} problem{} in {origin}", plural(errors)),
            (0, _) => writeln!(out, "{warnings} warning{} in {origin}", plural(warnings)),
            _ => writeln!(
                out,
                "{errors} problem{} and {warnings} warning{} in {origin}",
                plural(errors),
                plural(warnings)
            ),
        };
        out
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render("scenario"))
    }
}

impl std::error::Error for CheckReport {}

/// Collects problems while a file is checked; turns byte spans into line/column.
/// Only errors count in [`Problems::len`] and [`Problems::is_empty`]: warnings never refuse a file.
pub(crate) struct Problems<'a> {
    text: &'a str,
    list: Vec<(usize, Problem)>,
    warnings: Vec<(usize, Problem)>,
}

impl<'a> Problems<'a> {
    pub fn new(text: &'a str) -> Self {
        Problems {
            text,
            list: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn push(&mut self, span: Option<Range<usize>>, message: impl Into<String>, hint: Option<String>) {
        let problem = self.at(span, message.into(), hint, Severity::Error);
        self.list.push(problem);
    }

    /// A contradiction the file may mean to show: reported, never refusing the file.
    pub fn warn(&mut self, span: Option<Range<usize>>, message: impl Into<String>, hint: Option<String>) {
        let problem = self.at(span, message.into(), hint, Severity::Warning);
        self.warnings.push(problem);
    }

    fn at(
        &self,
        span: Option<Range<usize>>,
        message: String,
        hint: Option<String>,
        severity: Severity,
    ) -> (usize, Problem) {
        let offset = span.map(|s| s.start.min(self.text.len()));
        let (line, column) = match offset {
            Some(o) => line_column(self.text, o),
            None => (0, 0),
        };
        (
            offset.unwrap_or(usize::MAX),
            Problem {
                line,
                column,
                message,
                hint,
                severity,
            },
        )
    }

    /// The span of the quoted key written before the value at `value` (`"net.x" = 1`), for
    /// maps whose keys carry no span of their own; the value's span when the text is otherwise.
    pub fn key_before(&self, value: Range<usize>) -> Range<usize> {
        let before = &self.text[..value.start.min(self.text.len())];
        let trimmed = before.trim_end();
        let Some(key_end) = trimmed.strip_suffix('=').map(str::trim_end) else {
            return value;
        };
        let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        let Some(quote) = key_end.chars().last().filter(|c| *c == '"' || *c == '\'') else {
            let start = key_end.trim_end_matches(bare).len();
            return if start < key_end.len() {
                start..key_end.len()
            } else {
                value
            };
        };
        match key_end[..key_end.len() - 1].rfind(quote) {
            Some(start) => start..key_end.len(),
            None => value,
        }
    }

    pub fn error(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.push(span, message, None)
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Errors and warnings sorted by position in the file (stable: same place keeps the order found).
    pub fn into_report(mut self) -> CheckReport {
        self.list.append(&mut self.warnings);
        self.list.sort_by_key(|(o, _)| *o);
        self.list.dedup_by(|a, b| a.1 == b.1);
        CheckReport {
            problems: self.list.into_iter().map(|(_, p)| p).collect(),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_key_is_found_before_its_value() {
        let text = "sysctl = { \"net.a\" = 1, 'net.b' =\"x\" }";
        let p = Problems::new(text);
        let one = text.find('1').unwrap();
        assert_eq!(&text[p.key_before(one..one + 1)], "\"net.a\"");
        let x = text.find("\"x\"").unwrap();
        assert_eq!(&text[p.key_before(x..x + 3)], "'net.b'");
        assert_eq!(p.key_before(0..6), 0..6, "no key: the value's own span");
        let text = "[director.sysctl]\nknob = 1\n";
        let one = text.find('1').unwrap();
        assert_eq!(
            &Problems::new(text).text[Problems::new(text).key_before(one..one + 1)],
            "knob"
        );
    }

    #[test]
    fn warnings_render_as_such_in_file_order_and_do_not_count_as_errors() {
        let text = "a = 1\nb = 2\n";
        let mut p = Problems::new(text);
        p.warn(Some(6..7), "b contradicts a", Some("pick one".into()));
        assert!(p.is_empty(), "a warning is no error");
        p.error(Some(0..1), "a is wrong");
        assert_eq!(p.len(), 1);
        let report = p.into_report();
        assert_eq!(
            report.render("t.toml"),
            "t.toml:1:1: error: a is wrong\nt.toml:2:1: warning: b contradicts a\n  hint: pick one\n\
             1 problem and 1 warning in t.toml\n"
        );
        let mut p = Problems::new(text);
        p.warn(Some(0..1), "w", None);
        assert_eq!(
            p.into_report().render("t.toml"),
            "t.toml:1:1: warning: w\n1 warning in t.toml\n"
        );
    }

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // the space after the two-byte 'é' is the third character of line 2
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
