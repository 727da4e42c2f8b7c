//! `kiln explain TARGET`.

use std::path::Path;

use clap::Args;

use super::build::BuildFlags;
use super::{Failure, exit, out};
use crate::error::ErrorClass;
use crate::label::TargetPattern;
use crate::ops::explain::explain;
use crate::workspace::Workspace;

/// Arguments of `kiln explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The target whose actions to explain.
    target: String,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln explain`.
pub fn run(cwd: &Path, args: ExplainArgs) -> Result<i32, Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    let p = TargetPattern::parse(&args.target).map_err(|e| Failure::new(ErrorClass::User, e))?;
    let config = args.flags.configuration.request()?;
    let text = explain(&ws, &p, &config, &args.flags.cache_dir())
        .map_err(|e| Failure::new(e.class(), e))?;
    out(&text);
    Ok(exit::OK)
}
