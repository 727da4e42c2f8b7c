//! `ctx.actions.wit_bindgen_py`: the CPython extension module of a cap,
//! generated in-process from the WIT world it imports (`gen.rs`), beside
//! the C bindings `wit_bindgen_c` generates.
//!
//! Inputs are the world's WIT files; the output is one C file. A digest of
//! the generator's source and the wit-parser it reads with enter the key.

use std::fmt::Write as _;
use std::path::Path;

use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use super::wasm::{resolve_world, write_output};
use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::action::tool_versions::COMPONENT_TOOLS;
use crate::analysis::ctx::{collect_files, declare_action};

pub mod r#gen;

/// The generator's name in dumps.
const GENERATOR: &str = "wit-bindgen-py";

/// A digest of the generator's own source (the Rust and the runtime it
/// embeds), so any change to what it writes changes the key.
fn generator_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        for part in [include_str!("gen.rs"), include_str!("runtime.c"), include_str!("runtime.py")] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().to_hex()[..16].to_owned()
    })
}

/// Generate a CPython module for what `world` imports.
#[derive(Clone, Debug, PartialEq)]
pub struct WitBindgenPy {
    /// The world (`name` or `ns:pkg/name`).
    pub world: String,
    /// The Python module name (`PyInit_<module>`).
    pub module: String,
}

impl WitBindgenPy {
    fn run(&self, root: &Path, action: &Action) -> Result<(), String> {
        let wit: Vec<&str> = action.inputs.iter().map(|a| a.path()).collect();
        let (resolve, world) = resolve_world(root, &wit, &self.world)?;
        let c = r#gen::generate(&resolve, world, &self.module)
            .map_err(|e| format!("cannot generate module `{}` from world `{}`: {e}", self.module, self.world))?;
        write_output(root, &action.outputs, c.as_bytes())
    }
}

impl Kind for WitBindgenPy {
    const TAG: u8 = 10;

    fn key(&self, e: &mut KeyEncoder) {
        for x in [GENERATOR, generator_digest(), &self.world, &self.module, COMPONENT_TOOLS] {
            e.str(x);
        }
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  wit-bindgen-py: world {} as module {} ({GENERATOR}; {COMPONENT_TOOLS})",
            self.world, self.module
        );
    }

    fn encode(&self, w: &mut Writer) {
        w.str(&self.world);
        w.str(&self.module);
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(WitBindgenPy {
            world: r.str()?.to_owned(),
            module: r.str()?.to_owned(),
        })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, action))
    }
}

/// `ctx.actions.wit_bindgen_py`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Generate the C source of CPython module `module` for the imports of
    /// a WIT world into `output` (a declared `.c` file).
    ///
    /// ```python
    /// ctx.actions.wit_bindgen_py(wit = wit_files, world = "ns:pkg/cap", module = "_x", output = c)
    /// ```
    fn wit_bindgen_py<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] world: &str,
        #[starlark(require = named)] module: &str,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let valid = module.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && module.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            anyhow::bail!("`module` of wit_bindgen_py must be an ASCII Python identifier, got `{module}`");
        }
        let mut ins = Vec::new();
        collect_files(wit, "wit", &mut ins)?;
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let kind = ActionKind::WitBindgenPy(WitBindgenPy {
            world: world.to_owned(),
            module: module.to_owned(),
        });
        declare_action(eval, "WitBindgenPy", kind, ins, outs)
    }
}
