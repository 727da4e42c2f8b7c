//! `kiln lsp`: the language server on stdin/stdout (`ops/lsp.rs`).

use std::path::Path;

use clap::Args;

use super::Failure;
use crate::error::ErrorClass;

/// Arguments of `kiln lsp` (none: an editor starts it in the workspace).
#[derive(Args, Debug)]
pub struct LspArgs {}

/// Run `kiln lsp` until the client says `exit`.
pub fn run(cwd: &Path, _args: LspArgs) -> Result<i32, Failure> {
    let stdin = std::io::stdin();
    crate::ops::lsp::serve(cwd, stdin.lock(), std::io::stdout())
        .map_err(|e| Failure::new(ErrorClass::Environment, e))
}
