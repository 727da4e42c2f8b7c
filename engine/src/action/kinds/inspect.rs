//! `ctx.actions.inspect_component`: validate a component (wasmparser) and
//! write its imports and exports, one per line (`import NAME` /
//! `export NAME`, sorted), so rules and tests can check interfaces.

use std::fmt::Write as _;
use std::path::Path;

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

use super::wasm::write_output;
use crate::action::tool_versions::COMPONENT_TOOLS;
use crate::artifact::Artifact;

/// Validate and describe a component.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspect;

/// The top-level imports and exports of a component, sorted.
pub fn interfaces(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), String> {
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| format!("invalid wasm: {e}"))?;
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(r) if depth == 0 => {
                for i in r {
                    imports.push(i.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(r) if depth == 0 => {
                for e in r {
                    exports.push(e.map_err(|e| e.to_string())?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    imports.sort();
    exports.sort();
    Ok((imports, exports))
}

impl Inspect {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let _ = writeln!(s, "  inspect-component ({COMPONENT_TOOLS})");
    }

    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec!["inspect-component", COMPONENT_TOOLS]
    }

    /// Write the description into the sandbox at `root`.
    pub fn execute(
        &self,
        root: &Path,
        inputs: &[Artifact],
        outputs: &[Artifact],
    ) -> Result<(), String> {
        let input = inputs
            .first()
            .ok_or("inspect_component needs one component")?;
        let bytes = std::fs::read(root.join(input.path()))
            .map_err(|e| format!("cannot read `{}`: {e}", input.path()))?;
        let (imports, exports) =
            interfaces(&bytes).map_err(|e| format!("`{}`: {e}", input.path()))?;
        let mut text = String::new();
        for i in imports {
            let _ = writeln!(text, "import {i}");
        }
        for e in exports {
            let _ = writeln!(text, "export {e}");
        }
        write_output(root, outputs, text.as_bytes())
    }
}
