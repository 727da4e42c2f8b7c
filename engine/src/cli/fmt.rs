//! `kiln fmt [--check] [FILE...]` and `kiln lint [--check] [FILE...]`
//! (`ops/fmt.rs`): by default every package's BUILD.star.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Failure, exit, out};
use crate::error::ErrorClass;
use crate::label::PackagePath;
use crate::ops::fmt::{format_build, lint_build};
use crate::workspace::Workspace;

/// Arguments of `kiln fmt`.
#[derive(Args, Debug)]
pub struct FmtArgs {
    /// BUILD.star files (default: every package's in the workspace).
    files: Vec<PathBuf>,
    /// Write nothing; list the files that are not formatted and exit 1.
    #[arg(long)]
    check: bool,
}

/// Arguments of `kiln lint`.
#[derive(Args, Debug)]
pub struct LintArgs {
    /// BUILD.star files (default: every package's in the workspace).
    files: Vec<PathBuf>,
    /// Exit 1 when there is any finding.
    #[arg(long)]
    check: bool,
}

/// The files to work on: those given, or every package's BUILD.star;
/// each with the path shown for it (relative to the workspace root).
fn files(cwd: &Path, given: &[PathBuf]) -> Result<(Workspace, Vec<(PathBuf, String)>), Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    let show = |p: &Path| {
        p.strip_prefix(&ws.root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let list = if given.is_empty() {
        let (pkgs, _) = ws
            .walk_packages(&PackagePath::root())
            .map_err(|e| Failure::new(e.class(), e))?;
        pkgs.iter()
            .map(|p| ws.root.join(Workspace::build_file(p)))
            .collect::<Vec<_>>()
    } else {
        given.iter().map(|f| cwd.join(f)).collect()
    };
    let list = list.into_iter().map(|p| {
        let s = show(&p);
        (p, s)
    });
    Ok((ws.clone(), list.collect()))
}

fn read(path: &Path, shown: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::new(ErrorClass::User, format!("Cannot read `{shown}`: {e}")))
}

/// Run `kiln fmt`.
pub fn run_fmt(cwd: &Path, args: FmtArgs) -> Result<i32, Failure> {
    let (_, list) = files(cwd, &args.files)?;
    let mut unformatted = Vec::new();
    let mut skipped = 0;
    for (path, shown) in &list {
        let src = read(path, shown)?;
        let formatted = match format_build(&src) {
            Ok(f) => f,
            Err(why) => {
                eprintln!("WARNING: {shown}: not formatted: {why}");
                skipped += 1;
                continue;
            }
        };
        if formatted == src {
            continue;
        }
        unformatted.push(shown.clone());
        if !args.check {
            let tmp = path.with_extension(format!("star.fmt{}", std::process::id()));
            std::fs::write(&tmp, &formatted)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    Failure::new(
                        ErrorClass::Environment,
                        format!("Cannot write `{shown}`: {e}"),
                    )
                })?;
        }
    }
    let verb = if args.check {
        "not formatted"
    } else {
        "formatted"
    };
    out(&unformatted
        .iter()
        .map(|f| format!("{verb}: {f}\n"))
        .collect::<String>());
    eprintln!(
        "{} of {} BUILD files {verb}{}",
        unformatted.len(),
        list.len(),
        if skipped > 0 {
            format!(", {skipped} left alone")
        } else {
            String::new()
        }
    );
    Ok(if args.check && !unformatted.is_empty() {
        exit::BUILD_FAILED
    } else {
        exit::OK
    })
}

/// Run `kiln lint`.
pub fn run_lint(cwd: &Path, args: LintArgs) -> Result<i32, Failure> {
    let (ws, list) = files(cwd, &args.files)?;
    let loader = crate::load::loader::Loader::new(ws).map_err(|e| Failure::new(e.class(), e))?;
    let names = loader.build_names();
    let mut found = 0;
    let mut text = String::new();
    for (path, shown) in &list {
        let src = read(path, shown)?;
        for l in lint_build(shown, &src, &names) {
            found += 1;
            text.push_str(&format!(
                "{shown}:{}:{}: [{}] {}\n",
                l.line, l.col, l.name, l.message
            ));
        }
    }
    out(&text);
    eprintln!("{found} finding(s) in {} BUILD files", list.len());
    Ok(if args.check && found > 0 {
        exit::BUILD_FAILED
    } else {
        exit::OK
    })
}
