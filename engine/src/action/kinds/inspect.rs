//! `ctx.actions.inspect_component`: validate a component (wasmparser) and
//! write its imports and exports, one per line (`import NAME` /
//! `export NAME`, sorted), so rules and tests can check interfaces.

use std::fmt::Write as _;
use std::path::Path;

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

use super::wasm::write_output;
use crate::action::tool_versions::COMPONENT_TOOLS;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
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
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec!["inspect-component", COMPONENT_TOOLS]
    }

    /// Write the description into the sandbox at `root`.
    fn run(&self, root: &Path, inputs: &[Artifact], outputs: &[Artifact]) -> Result<(), String> {
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

impl Kind for Inspect {
    const TAG: u8 = 5;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(s, "  inspect-component ({COMPONENT_TOOLS})");
    }

    fn encode(&self, _w: &mut Writer) {}

    fn decode(_r: &mut Reader) -> Option<Self> {
        Some(Inspect)
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.inputs, &action.outputs))
    }
}

/// `ctx.actions.inspect_component`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Validate `component` and write its imports and exports to `output`.
    fn inspect_component<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] component: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut ins = Vec::new();
        collect_files(component, "component", &mut ins)?;
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        declare_action(
            eval,
            "InspectComponent",
            ActionKind::Inspect(Inspect),
            ins,
            outs,
        )
    }
}
