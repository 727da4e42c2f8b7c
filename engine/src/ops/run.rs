//! `kiln run`: invoke a built target that returns `RunInfo` (a pylon: its
//! component, dynlink plan and stdlib) under the component host, with the
//! caller's arguments, environment and working directory. Building it is
//! `ops/build.rs`; the host is `host/`.

use std::path::Path;

use super::build::BuildOutcome;
use crate::action::ExecContext;
use crate::host::{HostError, Invocation, invoke};
use crate::label::Label;

/// Why a built target could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The target returns no `RunInfo`.
    #[error(
        "`{0}` is not runnable: `kiln run` runs targets whose rule returns `RunInfo` (pylons: `compose` targets)"
    )]
    NotRunnable(Label),
    /// The host failed (the component could not be loaded or trapped).
    #[error(transparent)]
    Host(#[from] HostError),
}

/// Invoke `label`, built by `built` in the workspace at `root`, with
/// `args` (after the program name) and `env`, the working directory `cwd`
/// mounted at `/`. Returns the guest's exit status.
pub fn run_built(
    root: &Path,
    built: &BuildOutcome,
    label: &Label,
    cwd: &Path,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cx: &ExecContext,
) -> Result<i32, RunError> {
    let run = built
        .targets
        .iter()
        .find(|t| &t.label == label)
        .and_then(|t| t.run.as_ref())
        .ok_or_else(|| RunError::NotRunnable(label.clone()))?;
    let lib_dir = run.stdlib.as_ref().and_then(|z| {
        root.join(&*built.workspace_path(z))
            .parent()
            .map(Path::to_path_buf)
    });
    let mut guest_args = vec![label.name.as_str().to_owned()];
    guest_args.extend(args);
    let o = Invocation {
        component: root.join(&*built.workspace_path(&run.component)),
        dynlink_plan: run
            .dynlink_plan
            .as_ref()
            .map(|p| root.join(&*built.workspace_path(p))),
        dynlink_root: root.to_owned(),
        dynlink_out_dir: built.out_dir.clone(),
        timeout: None,
        lib_dir,
        cwd: cwd.to_owned(),
        args: guest_args,
        env,
        compiled_dir: cx.compiled_dir(),
        capture: None,
    };
    Ok(invoke(&o)?.status)
}
