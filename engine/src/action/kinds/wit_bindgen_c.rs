//! `ctx.actions.wit_bindgen_c`: C bindings for a WIT world, generated
//! in-process by wit-bindgen's C generator (byte-identical to its CLI).
//!
//! Inputs are the world's WIT files. The native declares the three outputs
//! itself, named as wit-bindgen names its files (`<stem>.c`, `<stem>.h`,
//! `<stem>_component_type.o`, the stem being the world's name, or the
//! rename, in snake case: the `.c` includes the `.h` by that name), so that
//! naming lives here only; execution checks that wit-bindgen agreed.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::resolve_world;
use crate::action::tool_versions::COMPONENT_TOOLS;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneOr;

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action, declare_output};
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
        let mut written = 0;
        for (name, bytes) in files.iter() {
            let out = outputs
                .iter()
                .find(|o| o.path().rsplit('/').next() == Some(name))
                .ok_or_else(|| {
                    let declared: Vec<&str> = outputs.iter().map(Artifact::path).collect();
                    format!(
                        "wit-bindgen-c wrote `{name}`, which is none of the declared outputs ({}); its file naming changed",
                        declared.join(", ")
                    )
                })?;
            std::fs::write(root.join(out.path()), bytes)
                .map_err(|e| format!("cannot write `{}`: {e}", out.path()))?;
            written += 1;
        }
        if written != outputs.len() {
            return Err(format!(
                "wit-bindgen-c wrote {written} files, {} were declared",
                outputs.len()
            ));
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
    /// Generate C bindings for a WIT world into `<subdir><stem>.c`, `.h`
    /// and `_component_type.o` (declared here, named as wit-bindgen names
    /// them); returns the three files `(c, h, obj)`.
    ///
    /// ```python
    /// c, h, obj = ctx.actions.wit_bindgen_c(wit = wit_files, world = "ns:pkg/w", subdir = "bindings/")
    /// ```
    fn wit_bindgen_c<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] world: &str,
        #[starlark(require = named, default = "")] subdir: &str,
        #[starlark(require = named, default = NoneOr::None)] rename_world: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<(Artifact, Artifact, Artifact)> {
        let mut ins = Vec::new();
        collect_files(wit, "wit", &mut ins)?;
        let rename_world = rename_world.into_option().map(str::to_owned);
        let stem = file_stem(world, rename_world.as_deref());
        let c = declare_output(eval, &format!("{subdir}{stem}.c"))?;
        let h = declare_output(eval, &format!("{subdir}{stem}.h"))?;
        let obj = declare_output(eval, &format!("{subdir}{stem}_component_type.o"))?;
        let kind = ActionKind::WitBindgenC(WitBindgenC {
            world: world.to_owned(),
            rename_world,
        });
        let outs = vec![c.clone(), h.clone(), obj.clone()];
        declare_action(eval, "WitBindgenC", kind, ins, outs)?;
        Ok((c, h, obj))
    }
}

/// The stem of the files wit-bindgen-c writes for `world` (`name`,
/// `ns:pkg/name` or `ns:pkg/name@version`), or for its `rename`.
fn file_stem(world: &str, rename: Option<&str>) -> String {
    let name = rename.unwrap_or_else(|| {
        let last = world.rsplit('/').next().unwrap_or(world);
        last.split('@').next().unwrap_or(last)
    });
    heck::ToSnakeCase::to_snake_case(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems_follow_wit_bindgen() {
        assert_eq!(
            super::file_stem("ns:pkg/sqlite-import@0.1.0", None),
            "sqlite_import"
        );
        assert_eq!(super::file_stem("provider", None), "provider");
        assert_eq!(super::file_stem("kiln:pylon/pylon", Some("pylon")), "pylon");
    }
}
