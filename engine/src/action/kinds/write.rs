//! `ctx.actions.write`: write literal content to one output, in-process.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{Value, ValueLike};

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::declare_action;
use crate::artifact::Artifact;

/// Content to write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteAction {
    /// The bytes of the file (UTF-8 text from Starlark).
    pub content: String,
    /// Whether to mark the file executable.
    pub is_executable: bool,
}

impl Kind for WriteAction {
    const TAG: u8 = 1;

    fn key(&self, e: &mut KeyEncoder) {
        e.str("write");
        e.str(&self.content);
        e.u64(self.is_executable as u64);
    }

    fn dump(&self, s: &mut String) {
        let digest = blake3::hash(self.content.as_bytes());
        let _ = writeln!(
            s,
            "  write: {} bytes, blake3 {}{}",
            self.content.len(),
            &digest.to_hex()[..16],
            if self.is_executable {
                ", executable"
            } else {
                ""
            }
        );
    }

    fn encode(&self, w: &mut Writer) {
        w.str(&self.content);
        w.u8(self.is_executable as u8);
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(WriteAction {
            content: r.str()?.to_owned(),
            is_executable: r.u8()? != 0,
        })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        let dest = root.join(action.outputs[0].path());
        let r = std::fs::write(&dest, self.content.as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", dest.display()))
            .and_then(|()| {
                if !self.is_executable {
                    return Ok(());
                }
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("cannot chmod `{}`: {e}", dest.display()))
            });
        Execution::Done(r)
    }
}

/// `ctx.actions.write`.
///
/// ```python
/// ctx.actions.write(ctx.actions.declare_output("x.txt"), "hello\n")
/// ```
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Write `content` to `output`.
    fn write<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: &str,
        #[starlark(require = named, default = false)] is_executable: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let out = output.downcast_ref::<Artifact>().ok_or_else(|| {
            anyhow::anyhow!(
                "`ctx.actions.write` expects a declared output file, got `{}`",
                output.get_type()
            )
        })?;
        let kind = ActionKind::Write(WriteAction {
            content: content.to_owned(),
            is_executable,
        });
        declare_action(eval, "Write", kind, Vec::new(), vec![out.clone()])
    }
}
