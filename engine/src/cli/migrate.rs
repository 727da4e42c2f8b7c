//! `kiln migrate [DIR] [--force] [--python LABEL]`: pyforge manifests into
//! BUILD files (`ops/migrate.rs`).

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Failure, exit, out};
use crate::error::ErrorClass;
use crate::label::Label;
use crate::ops::migrate::{self, Options};

/// Arguments of `kiln migrate`.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// The pyforge checkout: the directory holding `cpython-ext/` and
    /// `profiles/` (default: the current directory).
    dir: Option<PathBuf>,
    /// Overwrite files that exist (without it, nothing is written if any
    /// file to write exists).
    #[arg(long)]
    force: bool,
    /// The `cpython` target the caps compile against and the pylon is
    /// built on.
    #[arg(long, value_name = "LABEL", default_value = "//third_party/cpython")]
    python: String,
}

/// Run `kiln migrate`: write the files, print them and what could not be
/// mapped, then check that the result loads.
pub fn run(cwd: &Path, args: MigrateArgs) -> Result<i32, Failure> {
    let python =
        Label::parse_absolute(&args.python).map_err(|e| Failure::new(ErrorClass::User, e))?;
    let dir = args.dir.map_or_else(|| cwd.to_owned(), |d| cwd.join(d));
    let fail = |e: migrate::MigrateError| Failure::new(e.class(), e);
    let plan = migrate::plan(&dir, &Options { python }).map_err(fail)?;
    let written = plan.write(args.force).map_err(fail)?;
    let mut text: String = written.iter().map(|p| format!("wrote {p}\n")).collect();
    for u in plan.unmapped() {
        text.push_str(&format!("{u}\n"));
    }
    out(&text);
    plan.check().map_err(fail)?;
    Ok(exit::OK)
}
