//! `kiln run TARGET [-- ARGS]`: build a pylon (a `compose` target), then
//! run it under wasmtime with ARGS (`-c CODE`, a script path, ...). The
//! guest's stdout, stderr and exit status pass through, and it sees the
//! caller's environment (as `bazel run` does; a variable that is not UTF-8
//! reaches it with U+FFFD in place of the undecodable bytes, since WASI
//! passes strings).

use std::path::Path;

use clap::Args;

use super::Failure;
use super::build::{BuildFlags, build_patterns};
use crate::action::ExecContext;
use crate::error::ErrorClass;
use crate::host::{Invocation, invoke};
use crate::label::{Label, PackagePath};

/// Arguments of `kiln run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pylon to run (a `compose` target), e.g. `//:pylon`.
    target: String,
    /// Arguments passed to the pylon (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln run`.
pub fn run_cmd(cwd: &Path, jobs: usize, args: RunArgs) -> Result<i32, Failure> {
    let label = Label::parse_relative(&args.target, &PackagePath::root()).map_err(|e| {
        Failure::new(
            ErrorClass::User,
            format!("`kiln run` takes one target label: {e}"),
        )
    })?;
    let (code, ws, _) = build_patterns(cwd, jobs, &[label.to_string()], &args.flags)?;
    if code != 0 {
        return Ok(code);
    }
    let dir = ws.root.join("kiln-out").join(label.package.as_str());
    let name = label.name.as_str();
    let component = dir.join(format!("{name}.wasm"));
    let plan = dir.join(format!("{name}.dynlink.json"));
    if !component.is_file() || !plan.is_file() {
        return Err(Failure::new(
            ErrorClass::User,
            format!(
                "`{label}` is not runnable: `kiln run` runs pylons (`compose` targets), which write `{name}.wasm` and `{name}.dynlink.json`"
            ),
        ));
    }
    let lib = dir.join(format!("{name}_lib"));
    let mut guest_args = vec![name.to_owned()];
    guest_args.extend(args.args);
    let cx = ExecContext::new(args.flags.cache_dir());
    let o = Invocation {
        component,
        plan: Some(plan),
        plan_root: ws.root.clone(),
        lib_dir: lib.is_dir().then_some(lib),
        cwd: cwd.to_owned(),
        args: guest_args,
        env: std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        compiled_dir: cx.compiled_dir(),
        capture: None,
    };
    invoke(&o)
        .map(|r| r.status)
        .map_err(|e| Failure::new(ErrorClass::Internal, e))
}
