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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::wasm::write_output;
use crate::action::tool_versions::COMPONENT_TOOLS;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::none::NoneType;
use starlark::values::{Value, ValueLike};

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
use crate::artifact::Artifact;

/// Write a dynlink plan.
#[derive(Clone, Debug, PartialEq)]
pub struct DynlinkPlan {
    /// (provider id, execroot path of its component), sorted by id;
    /// ids are unique.
    pub providers: Vec<(String, String)>,
}

impl DynlinkPlan {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec!["dynlink-plan", COMPONENT_TOOLS];
        for (id, path) in &self.providers {
            v.extend([id.as_str(), path.as_str()]);
        }
        v
    }

    /// Hash the components in the sandbox at `root` and write the plan.
    fn run(&self, root: &Path, outputs: &[Artifact]) -> Result<(), String> {
        let mut providers = BTreeMap::new();
        for (id, path) in &self.providers {
            let bytes =
                std::fs::read(root.join(path)).map_err(|e| format!("cannot read `{path}`: {e}"))?;
            super::inspect::interfaces(&bytes)
                .map_err(|e| format!("provider `{id}` (`{path}`) is not a valid component: {e}"))?;
            providers.insert(
                id.clone(),
                PlannedProvider {
                    component: path.clone(),
                    digest: format!("blake3:{}", blake3::hash(&bytes).to_hex()),
                    size: bytes.len() as u64,
                },
            );
        }
        let plan = DynlinkPlanFile {
            format: 1,
            providers,
        };
        let mut text = serde_json::to_string_pretty(&plan).map_err(|e| e.to_string())?;
        text.push('\n');
        write_output(root, outputs, text.as_bytes())
    }
}

/// The dynlink plan file (`<pylon>.dynlink.json`): written by this kind,
/// read by the component host (`host/dynlink.rs`). Fields in the order
/// they are written; maps sorted by key.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynlinkPlanFile {
    /// `1`.
    pub format: u32,
    /// Provider id -> its component.
    pub providers: BTreeMap<String, PlannedProvider>,
}

/// One provider of a dynlink plan.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedProvider {
    /// Execution-root path of the component.
    pub component: String,
    /// `blake3:<hex>` of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Kind for DynlinkPlan {
    const TAG: u8 = 7;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        for (id, path) in &self.providers {
            let _ = writeln!(s, "  dynlink: {id} = {path}");
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.u32(self.providers.len() as u32);
        for (id, path) in &self.providers {
            w.str(id);
            w.str(path);
        }
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        let n = r.u32()?;
        let providers = (0..n)
            .map(|_| Some((r.str()?.to_owned(), r.str()?.to_owned())))
            .collect::<Option<Vec<_>>>()?;
        Some(DynlinkPlan { providers })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.outputs))
    }
}

/// `ctx.actions.dynlink_plan`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Write the dynlink plan `output`: `providers` maps each provider id to
    /// its component file, whose digest the plan records.
    fn dynlink_plan<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] providers: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let d = DictRef::from_value(providers).ok_or_else(|| {
            anyhow::anyhow!(
                "`providers` expects a dict of id to component file, got `{}`",
                providers.get_type()
            )
        })?;
        let mut map = BTreeMap::new();
        let mut ins = Vec::new();
        for (k, v) in d.iter() {
            let id = k
                .unpack_str()
                .ok_or_else(|| anyhow::anyhow!("`providers` keys must be ids (strings)"))?;
            let f = v.downcast_ref::<Artifact>().ok_or_else(|| {
                anyhow::anyhow!("the component of dynlink provider `{id}` must be a file")
            })?;
            map.insert(id.to_owned(), f.path().to_owned());
            ins.push(f.clone());
        }
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let kind = ActionKind::DynlinkPlan(DynlinkPlan {
            providers: map.into_iter().collect(),
        });
        declare_action(eval, "DynlinkPlan", kind, ins, outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_file_is_written_and_read_by_one_type() {
        let plan = DynlinkPlanFile {
            format: 1,
            providers: [(
                "crc32c".to_owned(),
                PlannedProvider {
                    component: "kiln-out/providers/crc32c/crc32c.wasm".into(),
                    digest: "blake3:00".into(),
                    size: 7,
                },
            )]
            .into(),
        };
        let text = serde_json::to_string_pretty(&plan).unwrap();
        assert_eq!(
            text,
            "{\n  \"format\": 1,\n  \"providers\": {\n    \"crc32c\": {\n      \"component\": \"kiln-out/providers/crc32c/crc32c.wasm\",\n      \"digest\": \"blake3:00\",\n      \"size\": 7\n    }\n  }\n}"
        );
        assert_eq!(
            serde_json::from_str::<DynlinkPlanFile>(&text).unwrap(),
            plan
        );
        assert!(serde_json::from_str::<DynlinkPlanFile>("{\"format\": 1}").is_err());
    }
}
