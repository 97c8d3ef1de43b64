//! The error every importer returns for input it cannot read: the 1-based line
//! and what was expected there.

/// Input that does not have the expected shape. `line` is 1-based; 0 means the
/// problem concerns the input as a whole (e.g. it is empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        ParseError {
            line,
            message: message.into(),
        }
    }

    fn render(&self) -> String {
        if self.line == 0 {
            self.message.clone()
        } else {
            format!("line {}: {}", self.line, self.message)
        }
    }
}

/// A remark about input that was read but cannot be modelled exactly
/// (an ignored keyword, an approximate counter, a skipped service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line it concerns; 0 = the input as a whole.
    pub line: usize,
    pub message: String,
}

impl Warning {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        Warning {
            line,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}
