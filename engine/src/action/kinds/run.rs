//! `ctx.actions.run`: run a command in the action's sandbox.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::shell_quote;

/// A command to run.
///
/// Invariant: `argv` is non-empty; `env` is sorted (a `BTreeMap`), so its
/// encoding is canonical.
#[derive(Clone, Debug, PartialEq)]
pub struct RunAction {
    /// The command line; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// Extra environment variables on top of the sandbox's scrubbed set.
    pub env: BTreeMap<String, String>,
    /// Absolute paths of toolchain files the command uses (sorted); their
    /// digests enter the key, like `argv[0]`'s when it is absolute.
    pub tools: Vec<String>,
    /// The command may use the network (Bazel's `requires-network`): for
    /// fetch steps whose outputs are pinned by their inputs (a lock file).
    pub network: bool,
}

impl RunAction {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let argv: Vec<String> = self.argv.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(s, "  run: {}", argv.join(" "));
        for (k, v) in &self.env {
            let _ = writeln!(s, "  env: {k}={}", shell_quote(v));
        }
        if !self.tools.is_empty() {
            let _ = writeln!(s, "  tools: {} files", self.tools.len());
        }
        if self.network {
            let _ = writeln!(s, "  network: yes");
        }
    }
}
