//! `kiln test [PATTERN...]`: run the test targets the patterns name (rules
//! returning `TestInfo`) through `ops::test`, and print one status line
//! per target. Exit 3 when tests failed, 4 when no test target matched, 1
//! when something a test needs failed to build.

use std::path::Path;

use clap::Args;

use super::build::{BuildFlags, prepare, report};
use super::{Failure, exit};
use crate::error::ErrorClass;
use crate::ops::build::parse_patterns;
use crate::ops::test::{TestStatus, test};

/// Arguments of `kiln test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Patterns whose test targets to run (default: `//...`).
    patterns: Vec<String>,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln test`.
pub fn run(cwd: &Path, jobs: Option<usize>, args: TestArgs) -> Result<i32, Failure> {
    let (ws, opts, interrupt) = prepare(cwd, jobs, &args.flags)?;
    let req = crate::plan::Request {
        patterns: parse_patterns(&args.patterns).map_err(|e| Failure::new(ErrorClass::User, e))?,
        config: args.flags.configuration.request()?,
    };
    let outcome = test(&ws, &req, &args.flags.cache_dir(), &opts, interrupt)
        .map_err(|e| Failure::new(e.class(), e))?;
    let Some(o) = outcome else {
        let shown: Vec<String> = req.patterns.iter().map(|p| p.to_string()).collect();
        eprintln!("ERROR: no test targets matched {}", shown.join(" "));
        return Ok(exit::NO_TESTS);
    };
    let code = report(&o.build, &args.flags, &opts)?;
    if code == exit::INTERRUPTED {
        return Ok(code);
    }
    let mut failed = 0;
    for t in &o.tests {
        let text = match t.status {
            TestStatus::Passed => "PASSED",
            TestStatus::Failed => {
                failed += 1;
                "FAILED"
            }
            TestStatus::NoStatus => "NO STATUS (a dependency failed to build)",
        };
        // As Bazel's summary: how long it ran, or that its result was
        // cached.
        let line = match (t.status, t.ran) {
            (TestStatus::NoStatus, _) => text.to_owned(),
            (_, Some(took)) => format!("{text} in {:.1}s", took.as_secs_f64()),
            (TestStatus::Passed, None) => format!("(cached) {text}"),
            (TestStatus::Failed, None) => text.to_owned(),
        };
        eprintln!("{:<50} {line}", t.label.to_string());
    }
    Ok(if o.build_broken {
        exit::BUILD_FAILED
    } else if failed > 0 {
        eprintln!("{failed} of {} test targets failed", o.tests.len());
        exit::TESTS_FAILED
    } else {
        exit::OK
    })
}
