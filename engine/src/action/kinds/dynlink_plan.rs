//! `ctx.actions.dynlink_plan`: the runtime plan of a pylon, mapping each
//! dynlink provider id to its component's path and BLAKE3 digest.
//!
//! The plan is the only output that depends on the set of dynlink
//! providers: the composed component never reads them, so adding a
//! provider changes the plan and leaves the component byte-identical.
//!
//! Format (JSON, keys sorted, one trailing newline):
//! `{"format": 1, "providers": {"<id>": {"component": "<execroot path>",
//! "digest": "blake3:<hex>", "size": N}}}`.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::write_output;
use crate::action::tool_versions::COMPONENT_TOOLS;
use crate::artifact::Artifact;

/// Write a dynlink plan.
#[derive(Clone, Debug, PartialEq)]
pub struct DynlinkPlan {
    /// (provider id, execroot path of its component), sorted by id;
    /// ids are unique.
    pub providers: Vec<(String, String)>,
}

impl DynlinkPlan {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        for (id, path) in &self.providers {
            let _ = writeln!(s, "  dynlink: {id} = {path}");
        }
    }

    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec!["dynlink-plan", COMPONENT_TOOLS];
        for (id, path) in &self.providers {
            v.extend([id.as_str(), path.as_str()]);
        }
        v
    }

    /// Hash the components in the sandbox at `root` and write the plan.
    pub fn execute(
        &self,
        root: &Path,
        _inputs: &[Artifact],
        outputs: &[Artifact],
    ) -> Result<(), String> {
        let mut providers = serde_json::Map::new();
        for (id, path) in &self.providers {
            let bytes =
                std::fs::read(root.join(path)).map_err(|e| format!("cannot read `{path}`: {e}"))?;
            super::inspect::interfaces(&bytes)
                .map_err(|e| format!("provider `{id}` (`{path}`) is not a valid component: {e}"))?;
            providers.insert(
                id.clone(),
                serde_json::json!({
                    "component": path,
                    "digest": format!("blake3:{}", blake3::hash(&bytes).to_hex()),
                    "size": bytes.len(),
                }),
            );
        }
        let plan = serde_json::json!({"format": 1, "providers": providers});
        let mut text = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
        text.push('\n');
        write_output(root, outputs, text.as_bytes())
    }
}
