//! `ctx.actions.wit_check`: parse and validate a set of WIT files
//! (wit-parser, in-process) and write what they define: one
//! `package NAME` line per package, followed by its sorted
//! `  interface NAME` and `  world NAME` lines.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::{resolve_all, write_output};
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

/// Validate WIT packages.
#[derive(Clone, Debug, PartialEq)]
pub struct WitCheck;

impl WitCheck {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec!["wit-check", COMPONENT_TOOLS]
    }

    /// Validate and describe into the sandbox at `root`.
    fn run(&self, root: &Path, inputs: &[Artifact], outputs: &[Artifact]) -> Result<(), String> {
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

impl Kind for WitCheck {
    const TAG: u8 = 6;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(s, "  wit-check ({COMPONENT_TOOLS})");
    }

    fn encode(&self, _w: &mut Writer) {}

    fn decode(_r: &mut Reader) -> Option<Self> {
        Some(WitCheck)
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.inputs, &action.outputs))
    }
}

/// `ctx.actions.wit_check`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Parse and validate WIT files; write their packages, interfaces and
    /// worlds to `output`.
    fn wit_check<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut ins = Vec::new();
        collect_files(wit, "wit", &mut ins)?;
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        declare_action(eval, "WitCheck", ActionKind::WitCheck(WitCheck), ins, outs)
    }
}
