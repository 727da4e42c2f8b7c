//! `ctx.actions.wit_bindgen_c`: C bindings for a WIT world, generated
//! in-process by wit-bindgen's C generator (byte-identical to its CLI).
//!
//! Inputs are the world's WIT files; the three outputs are told apart by
//! name: `*.c`, `*.h` and `*_component_type.o`.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::resolve_world;
use crate::action::tool_versions::COMPONENT_TOOLS;
use crate::artifact::Artifact;

/// Generate C bindings for `world`.
#[derive(Clone, Debug, PartialEq)]
pub struct WitBindgenC {
    /// The world (`name` or `ns:pkg/name`).
    pub world: String,
    /// Name the generated functions and types after this instead of the
    /// world (`--rename-world`), so several caps' bindings agree.
    pub rename_world: Option<String>,
}

impl WitBindgenC {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let rename = match &self.rename_world {
            Some(r) => format!(" as {r}"),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "  wit-bindgen-c: world {}{rename} ({COMPONENT_TOOLS})",
            self.world
        );
    }

    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec!["wit-bindgen-c", &self.world, COMPONENT_TOOLS];
        if let Some(r) = &self.rename_world {
            v.extend(["rename-world", r.as_str()]);
        }
        v
    }

    /// Generate into the sandbox at `root`.
    pub fn execute(
        &self,
        root: &Path,
        inputs: &[Artifact],
        outputs: &[Artifact],
    ) -> Result<(), String> {
        let wit: Vec<&str> = inputs.iter().map(Artifact::path).collect();
        let (mut resolve, world) = resolve_world(root, &wit, &self.world)?;
        let mut files = wit_bindgen_core::Files::default();
        let opts = wit_bindgen_c::Opts {
            rename_world: self.rename_world.clone(),
            ..Default::default()
        };
        let mut generator = opts.build();
        generator
            .generate(&mut resolve, world, &mut files)
            .map_err(|e| format!("wit-bindgen-c: {e:#}"))?;
        for o in outputs {
            let suffix = if o.path().ends_with("_component_type.o") {
                "_component_type.o"
            } else if o.path().ends_with(".h") {
                ".h"
            } else {
                ".c"
            };
            let (_, bytes) = files
                .iter()
                .find(|(name, _)| {
                    name.ends_with(suffix) && (suffix != ".c" || !name.ends_with(".o"))
                })
                .ok_or_else(|| format!("wit-bindgen-c produced no `*{suffix}` file"))?;
            std::fs::write(root.join(o.path()), bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", o.path()))?;
        }
        Ok(())
    }
}
