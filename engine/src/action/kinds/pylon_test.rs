//! `ctx.actions.pylon_test`: run one Python test file inside a built pylon
//! (in-process wasmtime, the component host of `kiln run`) and keep its
//! output.
//!
//! The action succeeds when the script exits with status 0; its output
//! (stdout and stderr, interleaved) is the action's one output, so a passing
//! test is cached by its key like any action and re-runs only when the
//! pylon, its dynlink plan or providers, the stdlib or the script change. A failing
//! test fails the action with the output in the message.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::write_output;
use crate::action::tool_versions::WASMTIME;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::{Value, ValueLike};

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
use crate::artifact::Artifact;
use crate::host::{Invocation, invoke};

/// Run a test script in a pylon.
#[derive(Clone, Debug, PartialEq)]
pub struct PylonTest {
    /// Execution path of the pylon component.
    pub component: String,
    /// Execution path of its dynlink plan.
    pub dynlink_plan: String,
    /// Execution path of the directory mounted at `/lib` (the stdlib zip's),
    /// empty for none.
    pub lib: String,
    /// Execution path of the test script.
    pub script: String,
}

/// Most of a failing test's output shown in the error.
const SHOWN: usize = 8 << 10;

impl PylonTest {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec![
            "pylon-test",
            WASMTIME,
            &self.component,
            &self.dynlink_plan,
            &self.lib,
            &self.script,
        ]
    }

    /// Run the script in the sandbox at `root`.
    fn run(&self, cx: &ExecContext, root: &Path, outputs: &[Artifact]) -> Result<(), String> {
        let o = Invocation {
            component: root.join(&self.component),
            dynlink_plan: Some(root.join(&self.dynlink_plan)),
            dynlink_root: root.to_owned(),
            lib_dir: (!self.lib.is_empty()).then(|| root.join(&self.lib)),
            cwd: root.to_owned(),
            // Absolute in the guest, whose `/` is the sandbox root.
            args: vec!["pylon".to_owned(), format!("/{}", self.script)],
            // Hermetic: no variable of the host reaches a test.
            env: Vec::new(),
            compiled_dir: cx.compiled_dir(),
            capture: Some(cx.capture_limit),
        };
        let r = invoke(&o).map_err(|e| e.to_string())?;
        write_output(root, outputs, &r.output)?;
        if r.status != 0 {
            let text = String::from_utf8_lossy(&r.output);
            let start = text.len().saturating_sub(SHOWN);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            return Err(format!(
                "{} exited with status {}; its output:\n{}",
                self.script,
                r.status,
                &text[start..]
            ));
        }
        Ok(())
    }
}

impl Kind for PylonTest {
    const TAG: u8 = 8;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  pylon-test: {} in {} (dynlink plan {}, lib {}; {WASMTIME})",
            self.script, self.component, self.dynlink_plan, self.lib
        );
    }

    fn encode(&self, w: &mut Writer) {
        for x in [&self.component, &self.dynlink_plan, &self.lib, &self.script] {
            w.str(x);
        }
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(PylonTest {
            component: r.str()?.to_owned(),
            dynlink_plan: r.str()?.to_owned(),
            lib: r.str()?.to_owned(),
            script: r.str()?.to_owned(),
        })
    }

    fn execute(&self, cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(cx, root, &action.outputs))
    }
}

/// `ctx.actions.pylon_test`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Run the Python test `script` in the pylon `component` (with its
    /// `dynlink_plan`, the `providers` it names, and `lib`, the stdlib
    /// zip whose directory is mounted at `/lib`); its output goes to
    /// `output`. The action fails when the script exits non-zero.
    fn pylon_test<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] component: Value<'v>,
        #[starlark(require = named)] dynlink_plan: Value<'v>,
        #[starlark(require = named)] script: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] lib: NoneOr<Value<'v>>,
        #[starlark(require = named)] providers: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let one = |v: Value<'v>, what: &str| -> anyhow::Result<Artifact> {
            v.downcast_ref::<Artifact>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("`{what}` must be a file, got `{}`", v.get_type()))
        };
        let component = one(component, "component")?;
        let dynlink_plan = one(dynlink_plan, "dynlink_plan")?;
        let script = one(script, "script")?;
        let mut ins = vec![component.clone(), dynlink_plan.clone(), script.clone()];
        let lib = match lib.into_option() {
            Some(v) => {
                let f = one(v, "lib")?;
                ins.push(f.clone());
                f.path()
                    .rsplit_once('/')
                    .map(|(d, _)| d.to_owned())
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        if let Some(p) = providers {
            collect_files(p, "providers", &mut ins)?;
        }
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let kind = ActionKind::PylonTest(PylonTest {
            component: component.path().to_owned(),
            dynlink_plan: dynlink_plan.path().to_owned(),
            lib,
            script: script.path().to_owned(),
        });
        declare_action(eval, "PylonTest", kind, ins, outs)
    }
}
