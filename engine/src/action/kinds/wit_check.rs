//! `ctx.actions.wit_check`: parse and validate a set of WIT files
//! (wit-parser, in-process) and write what they define: one
//! `package NAME` line per package, followed by its sorted
//! `  interface NAME` and `  world NAME` lines.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::{resolve_all, write_output};
use crate::action::tool_versions::COMPONENT_TOOLS;
use crate::artifact::Artifact;

/// Validate WIT packages.
#[derive(Clone, Debug, PartialEq)]
pub struct WitCheck;

impl WitCheck {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let _ = writeln!(s, "  wit-check ({COMPONENT_TOOLS})");
    }

    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec!["wit-check", COMPONENT_TOOLS]
    }

    /// Validate and describe into the sandbox at `root`.
    pub fn execute(
        &self,
        root: &Path,
        inputs: &[Artifact],
        outputs: &[Artifact],
    ) -> Result<(), String> {
        let files: Vec<&str> = inputs.iter().map(Artifact::path).collect();
        let (resolve, _) = resolve_all(root, &files)?;
        let mut packages: Vec<(String, Vec<String>)> = resolve
            .packages
            .iter()
            .map(|(_, p)| {
                let mut items: Vec<String> = p
                    .interfaces
                    .keys()
                    .map(|i| format!("  interface {i}"))
                    .collect();
                items.extend(p.worlds.keys().map(|w| format!("  world {w}")));
                items.sort();
                (p.name.to_string(), items)
            })
            .collect();
        packages.sort();
        let mut text = String::new();
        for (name, items) in packages {
            let _ = writeln!(text, "package {name}");
            for i in items {
                let _ = writeln!(text, "{i}");
            }
        }
        write_output(root, outputs, text.as_bytes())
    }
}
