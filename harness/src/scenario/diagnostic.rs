//! Problems found in a scenario file, each with its position, and their
//! rendering as `file:line:column: error: ...` lines.

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
}

/// Every problem found in one scenario file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
    /// Found beside the problems; shown with them, never fatal on their own.
    pub warnings: Vec<Problem>,
}

impl CheckReport {
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// A report with one problem that has no position (unreadable file, ...).
    pub fn single(message: impl Into<String>, hint: Option<String>) -> Self {
        CheckReport {
            problems: vec![Problem {
                line: 0,
                column: 0,
                message: message.into(),
                hint,
            }],
            warnings: Vec::new(),
        }
    }

    /// `origin:line:column: error: message` plus an indented hint line per problem.
    pub fn render(&self, origin: &str) -> String {
        let mut all: Vec<(&Problem, &str)> = self.problems.iter().map(|p| (p, "error")).collect();
        all.extend(self.warnings.iter().map(|w| (w, "warning")));
        // File order, problems without a place (line 0) last, as `into_report` has them.
        all.sort_by_key(|(p, _)| {
            if p.line == 0 {
                (usize::MAX, 0)
            } else {
                (p.line, p.column)
            }
        });
        let mut out = String::new();
        for (p, kind) in all {
            if p.line == 0 {
                let _ = writeln!(out, "{origin}: {kind}: {}", p.message);
            } else {
                let _ = writeln!(out, "{origin}:{}:{}: {kind}: {}", p.line, p.column, p.message);
            }
            if let Some(hint) = &p.hint {
                let _ = writeln!(out, "  hint: {hint}");
            }
        }
        let n = self.problems.len();
        let warned = match self.warnings.len() {
            0 => String::new(),
            1 => " (and 1 warning)".to_string(),
            w => format!(" (and {w} warnings)"),
        };
        let _ = writeln!(out, "{n} problem{} in {origin}{warned}", if n == 1 { "" } else { "s" });
        out
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render("scenario"))
    }
}

impl std::error::Error for CheckReport {}

/// `origin:line:column: warning: message` plus an indented hint line per warning.
pub fn render_warnings(warnings: &[Problem], origin: &str) -> String {
    let mut out = String::new();
    for w in warnings {
        let _ = writeln!(out, "{origin}:{}:{}: warning: {}", w.line, w.column, w.message);
        if let Some(hint) = &w.hint {
            let _ = writeln!(out, "  hint: {hint}");
        }
    }
    out
}

/// Collects problems while a file is checked; turns byte spans into line/column.
pub(crate) struct Problems<'a> {
    text: &'a str,
    list: Vec<(usize, Problem)>,
    /// Allowed but suspicious: reported, never fatal.
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

    fn at(&self, span: Option<Range<usize>>, message: impl Into<String>, hint: Option<String>) -> (usize, Problem) {
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
                message: message.into(),
                hint,
            },
        )
    }

    pub fn push(&mut self, span: Option<Range<usize>>, message: impl Into<String>, hint: Option<String>) {
        let problem = self.at(span, message, hint);
        self.list.push(problem);
    }

    /// A warning: the file stays valid.
    pub fn warn(&mut self, span: Option<Range<usize>>, message: impl Into<String>, hint: Option<String>) {
        let warning = self.at(span, message, hint);
        self.warnings.push(warning);
    }

    /// The warnings so far, in file order.
    pub fn take_warnings(&mut self) -> Vec<Problem> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.sort_by_key(|(o, _)| *o);
        warnings.into_iter().map(|(_, w)| w).collect()
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

    /// Problems sorted by position in the file (stable: same place keeps the order found).
    pub fn into_report(mut self) -> CheckReport {
        self.list.sort_by_key(|(o, _)| *o);
        self.list.dedup_by(|a, b| a.1 == b.1);
        let warnings = self.take_warnings();
        CheckReport {
            problems: self.list.into_iter().map(|(_, p)| p).collect(),
            warnings,
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
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // the space after the two-byte 'é' is the third character of line 2
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
