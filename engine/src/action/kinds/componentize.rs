//! `ctx.actions.componentize`: embed a WIT world's type information into a
//! core wasm module and turn it into a component with the WASI preview1
//! adapter, in-process (wit-component).
//!
//! Inputs: the core module (the one `*.wasm` input) and the world's WIT
//! files. The adapter is `reactor` for libraries (no `main`) and `command`
//! for programs.

use std::fmt::Write as _;
use std::path::Path;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};

use super::wasm::{resolve_world, write_output};
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

/// Make a component from a core module.
#[derive(Clone, Debug, PartialEq)]
pub struct Componentize {
    /// The world the module implements.
    pub world: String,
    /// `true`: the command adapter (a program with `main`); `false`: the
    /// reactor adapter (a library).
    pub command: bool,
}

impl Componentize {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec![
            "componentize",
            &self.world,
            if self.command { "command" } else { "reactor" },
            COMPONENT_TOOLS,
        ]
    }

    /// Build the component into the sandbox at `root`.
    fn run(&self, root: &Path, inputs: &[Artifact], outputs: &[Artifact]) -> Result<(), String> {
        let module = inputs
            .iter()
            .find(|a| a.path().ends_with(".wasm"))
            .ok_or("componentize needs one `.wasm` core module among its inputs")?;
        let wit: Vec<&str> = inputs
            .iter()
            .map(Artifact::path)
            .filter(|p| p.ends_with(".wit"))
            .collect();
        let (resolve, world) = resolve_world(root, &wit, &self.world)?;
        let mut bytes = std::fs::read(root.join(module.path()))
            .map_err(|e| format!("cannot read `{}`: {e}", module.path()))?;
        embed_component_metadata(&mut bytes, &resolve, world, StringEncoding::UTF8, false)
            .map_err(|e| format!("cannot embed the world: {e:#}"))?;
        let adapter: &[u8] = if self.command {
            WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER
        } else {
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER
        };
        let component = ComponentEncoder::default()
            .module(&bytes)
            .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| format!("cannot make a component of `{}`: {e:#}", module.path()))?;
        write_output(root, outputs, &component)
    }
}

impl Kind for Componentize {
    const TAG: u8 = 3;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        let adapter = if self.command { "command" } else { "reactor" };
        let _ = writeln!(
            s,
            "  componentize: world {}, {adapter} adapter ({COMPONENT_TOOLS})",
            self.world
        );
    }

    fn encode(&self, w: &mut Writer) {
        w.str(&self.world);
        w.u8(self.command as u8);
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(Componentize {
            world: r.str()?.to_owned(),
            command: r.u8()? != 0,
        })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.inputs, &action.outputs))
    }
}

/// `ctx.actions.componentize`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Embed `world` into a core `module` and make a component with the
    /// WASI adapter (`reactor` for libraries, `command` for programs).
    fn componentize<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] module: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] world: &str,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named, default = "reactor")] adapter: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let command = match adapter {
            "reactor" => false,
            "command" => true,
            _ => anyhow::bail!("`adapter` must be \"reactor\" or \"command\", got `{adapter}`"),
        };
        let mut ins = Vec::new();
        collect_files(module, "module", &mut ins)?;
        if ins.len() != 1 || !ins[0].path().ends_with(".wasm") {
            anyhow::bail!("`module` must be one `.wasm` file");
        }
        collect_files(wit, "wit", &mut ins)?;
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let kind = ActionKind::Componentize(Componentize {
            world: world.to_owned(),
            command,
        });
        declare_action(eval, "Componentize", kind, ins, outs)
    }
}
