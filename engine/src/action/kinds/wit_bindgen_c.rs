//! `ctx.actions.wit_bindgen_c`: C bindings for a WIT world, generated
//! in-process by wit-bindgen's C generator (byte-identical to its CLI).
//!
//! Inputs are the world's WIT files; the three outputs are told apart by
//! name: `*.c`, `*.h` and `*_component_type.o`.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::resolve_world;
use crate::action::tool_versions::COMPONENT_TOOLS;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::{NoneOr, NoneType};

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
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
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec!["wit-bindgen-c", &self.world, COMPONENT_TOOLS];
        if let Some(r) = &self.rename_world {
            v.extend(["rename-world", r.as_str()]);
        }
        v
    }

    /// Generate into the sandbox at `root`.
    fn run(&self, root: &Path, inputs: &[Artifact], outputs: &[Artifact]) -> Result<(), String> {
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

impl Kind for WitBindgenC {
    const TAG: u8 = 2;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
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

    fn encode(&self, w: &mut Writer) {
        w.str(&self.world);
        w.str(self.rename_world.as_deref().unwrap_or(""));
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(WitBindgenC {
            world: r.str()?.to_owned(),
            rename_world: Some(r.str()?.to_owned()).filter(|x| !x.is_empty()),
        })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.inputs, &action.outputs))
    }
}

/// `ctx.actions.wit_bindgen_c`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Generate C bindings (`c`, `h`, `obj` are declared outputs) for a WIT world.
    fn wit_bindgen_c<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] world: &str,
        #[starlark(require = named)] c: Value<'v>,
        #[starlark(require = named)] h: Value<'v>,
        #[starlark(require = named)] obj: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] rename_world: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut ins = Vec::new();
        collect_files(wit, "wit", &mut ins)?;
        let mut outs = Vec::new();
        for (v, what) in [(c, "c"), (h, "h"), (obj, "obj")] {
            collect_files(v, what, &mut outs)?;
        }
        let kind = ActionKind::WitBindgenC(WitBindgenC {
            world: world.to_owned(),
            rename_world: rename_world.into_option().map(str::to_owned),
        });
        declare_action(eval, "WitBindgenC", kind, ins, outs)
    }
}
