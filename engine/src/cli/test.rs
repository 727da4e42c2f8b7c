//! `kiln test [PATTERN...]`: build the test targets the patterns name (rules
//! whose kind ends in `_test`, as in Bazel) and run them; a passing test is
//! an action result like any other, so it is cached by its key. Failures
//! are printed with their output. Exit 3 when tests failed, 4 when no test
//! target matched, 1 when something a test needs failed to build.

use std::path::Path;

use clap::Args;

use super::build::{BuildFlags, build_patterns};
use super::{Failure, exit};
use crate::error::ErrorClass;
use crate::graph::target::TargetGraph;
use crate::load::loader::Loader;
use crate::ops::build::parse_patterns;
use crate::workspace::Workspace;

/// The mnemonic of the actions that run tests.
const TEST_MNEMONIC: &str = "PylonTest";

/// Arguments of `kiln test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Patterns whose test targets to run (default: `//...`).
    patterns: Vec<String>,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln test`.
pub fn run(cwd: &Path, jobs: usize, args: TestArgs) -> Result<i32, Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    let raw = if args.patterns.is_empty() {
        vec!["//...".to_owned()]
    } else {
        args.patterns.clone()
    };
    let patterns = parse_patterns(&raw).map_err(|e| Failure::new(ErrorClass::User, e))?;
    let loader = Loader::new(ws.clone()).map_err(|e| Failure::new(e.class(), e))?;
    let g = TargetGraph::load(&loader, &patterns).map_err(|e| Failure::new(e.class(), e))?;
    let tests: Vec<String> = g
        .roots
        .iter()
        .map(|n| &g.graph[*n])
        .filter(|n| n.decl().is_some_and(|d| d.rule.kind().ends_with("_test")))
        .map(|n| n.label.to_string())
        .collect();
    if tests.is_empty() {
        eprintln!("ERROR: no test targets matched {}", raw.join(" "));
        return Ok(exit::NO_TESTS);
    }
    // Every test runs even when another fails (Bazel's behaviour for tests).
    let mut flags = args.flags.clone();
    flags.keep_going = true;
    let (code, _, failures) = build_patterns(cwd, jobs, &tests, &flags)?;
    if code == exit::INTERRUPTED {
        return Ok(code);
    }
    let build_broken = failures.iter().any(|(_, m)| m != TEST_MNEMONIC);
    let mut failed_tests = 0;
    for t in &tests {
        let failed = failures
            .iter()
            .any(|(owner, m)| owner == t && m == TEST_MNEMONIC);
        // Something failed to build: a test that did not fail may not have
        // run either.
        let status = if failed {
            failed_tests += 1;
            "FAILED"
        } else if build_broken {
            "NO STATUS (a dependency failed to build)"
        } else {
            "PASSED"
        };
        eprintln!("{t:<50} {status}");
    }
    Ok(if build_broken {
        exit::BUILD_FAILED
    } else if failed_tests > 0 {
        eprintln!("{failed_tests} of {} test targets failed", tests.len());
        exit::TESTS_FAILED
    } else {
        exit::OK
    })
}
