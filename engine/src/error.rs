//! Source locations and the classification every error carries.
//!
//! Owns `Location` (a `file:line:col` inside the workspace) and
//! `ErrorClass`, which the CLI (`cli/`) maps to DESIGN.md's exit codes. Each
//! module keeps its own `thiserror` enum; this file only holds what they share.

use std::fmt;

/// A position in a workspace file, for messages.
///
/// Invariant: `file` is relative to the workspace root (or a built-in name
/// such as `@kiln//rules:genrule.star`); `line` and `col` are 1-based.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Workspace-relative path of the file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl Location {
    /// The start of a Starlark span.
    pub fn from_span(span: &starlark::codemap::FileSpan) -> Self {
        let r = span.resolve_span();
        Location {
            file: span.filename().to_owned(),
            line: r.begin.line + 1,
            col: r.begin.column + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Who has to act on an error; decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad BUILD/.star file, label, pattern or command line (exit 2).
    User,
    /// The machine: a missing tool, an unreadable file (exit 2 as well, with
    /// the message saying what to install or fix).
    Environment,
    /// A local environmental problem while building: the disk is full, the
    /// cache or `kiln-out/` cannot be written, the cache database is
    /// corrupt (exit 36, Bazel's code).
    Local,
    /// A bug in kiln (exit 37).
    Internal,
}

/// A Starlark error as `file:line:col: message`, without the snippet.
pub fn format_starlark_error(e: &starlark::Error) -> String {
    let msg = e.without_diagnostic().to_string();
    match e.span() {
        Some(span) => format!("{}: {}", Location::from_span(span), msg),
        None => msg,
    }
}
