//! `ctx.actions.write`: write literal content to one output.

use std::fmt::Write as _;

/// Content to write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteAction {
    /// The bytes of the file (UTF-8 text from Starlark).
    pub content: String,
    /// Whether to mark the file executable.
    pub is_executable: bool,
}

impl WriteAction {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let digest = blake3::hash(self.content.as_bytes());
        let _ = writeln!(
            s,
            "  write: {} bytes, blake3 {}{}",
            self.content.len(),
            &digest.to_hex()[..16],
            if self.is_executable {
                ", executable"
            } else {
                ""
            }
        );
    }
}
