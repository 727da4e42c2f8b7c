//! `ctx.actions.pylon_test`: run one Python test file inside a built pylon
//! (in-process wasmtime, as `kiln run` does) and keep its output.
//!
//! The action succeeds when the script exits with status 0; its output
//! (stdout and stderr, interleaved) is the action's one output, so a passing
//! test is cached by its key like any action and re-runs only when the
//! pylon, its plan or providers, the stdlib or the script change. A failing
//! test fails the action with the output in the message.

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::write_output;
use crate::action::tool_versions::WASMTIME;
use crate::artifact::Artifact;
use crate::run::{COMPILED_CACHE, RunOptions, run};

/// Run a test script in a pylon.
#[derive(Clone, Debug, PartialEq)]
pub struct PylonTest {
    /// Execution path of the pylon component.
    pub component: String,
    /// Execution path of its dynlink plan.
    pub plan: String,
    /// Execution path of the directory mounted at `/lib` (the stdlib zip's),
    /// empty for none.
    pub lib: String,
    /// Execution path of the test script.
    pub script: String,
}

/// Most of a failing test's output shown in the error.
const SHOWN: usize = 8 << 10;

impl PylonTest {
    /// Append the dump lines of this kind.
    pub fn dump(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  pylon-test: {} in {} (plan {}, lib {}; {WASMTIME})",
            self.script, self.component, self.plan, self.lib
        );
    }

    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        vec![
            "pylon-test",
            WASMTIME,
            &self.component,
            &self.plan,
            &self.lib,
            &self.script,
        ]
    }

    /// Run the script in the sandbox at `root`.
    pub fn execute(
        &self,
        root: &Path,
        _inputs: &[Artifact],
        outputs: &[Artifact],
    ) -> Result<(), String> {
        let cache = COMPILED_CACHE
            .get()
            .cloned()
            .unwrap_or_else(crate::ops::build::default_cache_dir);
        let o = RunOptions {
            component: root.join(&self.component),
            plan: Some(root.join(&self.plan)),
            plan_root: root.to_owned(),
            lib_dir: (!self.lib.is_empty()).then(|| root.join(&self.lib)),
            cwd: root.to_owned(),
            // Absolute in the guest, whose `/` is the sandbox root.
            args: vec!["pylon".to_owned(), format!("/{}", self.script)],
            // Hermetic: no variable of the host reaches a test.
            env: Vec::new(),
            compiled_cache: cache,
            capture: true,
        };
        let r = run(&o)?;
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
