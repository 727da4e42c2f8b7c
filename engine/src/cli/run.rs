//! `kiln run TARGET [-- ARGS]`: build a target whose rule returns `RunInfo`
//! (a pylon: a `compose` target), then run it under wasmtime with ARGS (`-c CODE`, a script path, ...). The
//! guest's stdout, stderr and exit status pass through, and it sees the
//! caller's environment (as `bazel run` does; a variable that is not UTF-8
//! reaches it with U+FFFD in place of the undecodable bytes, since WASI
//! passes strings).

use std::path::Path;

use clap::Args;

use super::build::{BuildFlags, build_patterns};
use super::{Failure, exit};
use crate::action::ExecContext;
use crate::error::ErrorClass;
use crate::host::HostError;
use crate::label::{Label, PackagePath};
use crate::ops::run::{RunError, run_built};

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
pub fn run_cmd(cwd: &Path, jobs: Option<usize>, args: RunArgs) -> Result<i32, Failure> {
    let label = Label::parse_relative(&args.target, &PackagePath::root()).map_err(|e| {
        Failure::new(
            ErrorClass::User,
            format!("`kiln run` takes one target label: {e}"),
        )
    })?;
    if args.flags.watch {
        let (ws, opts, interrupt) = super::build::prepare(cwd, jobs, &args.flags)?;
        let req = super::build::request(&[label.to_string()], &args.flags)?;
        let f = &args.flags;
        return super::build::watch_loop(&ws, &req, &interrupt, &mut || {
            let built =
                crate::ops::build::build(&ws, &req, &f.cache_dir(), &opts, interrupt.clone())
                    .map_err(|e| Failure::new(e.class(), e))?;
            let code = super::build::report(&built, f, &opts)?;
            if code != 0 {
                return Ok(code);
            }
            run_once(&ws, &built, &label, cwd, &args)
        });
    }
    let (code, ws, built) = build_patterns(cwd, jobs, &[label.to_string()], &args.flags)?;
    if code != 0 {
        return Ok(code);
    }
    // The program may run for long; builds in this workspace need not wait
    // for it (outputs are replaced by rename, never rewritten in place).
    crate::workspace::unlock();
    run_once(&ws, &built, &label, cwd, &args)
}

/// Run the built pylon once with the caller's environment.
fn run_once(
    ws: &crate::workspace::Workspace,
    built: &crate::ops::build::BuildOutcome,
    label: &Label,
    cwd: &Path,
    args: &RunArgs,
) -> Result<i32, Failure> {
    let env = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    let cx = ExecContext::new(args.flags.cache_dir());
    match run_built(&ws.root, built, label, cwd, args.args.clone(), env, &cx) {
        Ok(status) => Ok(status),
        // A crash of the guest program, not of kiln: reported, and the
        // status a crashed process has.
        Err(e @ RunError::Host(HostError::Trap(_))) => {
            eprintln!("ERROR: {e}");
            Ok(exit::GUEST_TRAPPED)
        }
        Err(e @ RunError::NotRunnable(_)) => Err(Failure::new(ErrorClass::User, e)),
        Err(e @ RunError::Host(_)) => Err(Failure::new(ErrorClass::Internal, e)),
    }
}
