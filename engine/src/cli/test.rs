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

/// `--test-output`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum TestOutput {
    /// The output of failing tests (as they fail).
    Errors,
    /// Also every passing test's output, after the run.
    All,
    /// Tests run one at a time, each one's output printed when it ends.
    Streamed,
}

/// Arguments of `kiln test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Patterns whose test targets to run (default: `//...`).
    patterns: Vec<String>,
    /// Which test output to print: `errors`, `all` or `streamed`.
    #[arg(long = "test-output", value_enum, default_value = "errors")]
    test_output: TestOutput,
    /// Run only the tests this selects (comma-separated substrings of a
    /// test's name: a `pylon_test` file, a `cpython_test` module); passed
    /// to test rules as `ctx.test_filter`.
    #[arg(long = "test-filter", value_name = "FILTER")]
    test_filter: Option<String>,
    /// Run each test N times (each run is its own cached action).
    #[arg(long = "runs-per-test", value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    runs_per_test: u32,
    /// Run a failing test up to N times in all; it passes (reported
    /// FLAKY) if one attempt passes. Only a passing result is cached.
    #[arg(long = "flaky-test-attempts", value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..))]
    flaky_test_attempts: u32,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln test` (with `--watch`, again after every change).
pub fn run(cwd: &Path, jobs: Option<usize>, args: TestArgs) -> Result<i32, Failure> {
    let (ws, mut opts, interrupt) = prepare(cwd, jobs, &args.flags)?;
    opts.flaky_test_attempts = args.flaky_test_attempts;
    let mut config = args.flags.configuration.request()?;
    config.test_filter = args.test_filter.clone();
    config.runs_per_test = args.runs_per_test;
    let req = crate::plan::Request {
        patterns: parse_patterns(&args.patterns).map_err(|e| Failure::new(ErrorClass::User, e))?,
        config,
    };
    if args.flags.watch {
        return super::build::watch_loop(&ws, &req, &interrupt, &mut || {
            test_once(&ws, &req, &args, &opts, interrupt.clone())
        });
    }
    test_once(&ws, &req, &args, &opts, interrupt)
}

/// One `kiln test` run: test, print, the exit code.
fn test_once(
    ws: &crate::workspace::Workspace,
    req: &crate::plan::Request,
    args: &TestArgs,
    opts: &crate::exec::ExecOptions,
    interrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<i32, Failure> {
    let root = ws.root.clone();
    let print_logs = |label: &crate::label::Label, logs: &[String]| {
        for l in logs {
            let text = std::fs::read(root.join(l)).unwrap_or_default();
            eprintln!("==================== {label}: {l}");
            eprint!("{}", String::from_utf8_lossy(&text));
        }
    };
    let mut streamed = print_logs;
    let on_test: Option<&mut crate::ops::test::OnTest> = if args.test_output == TestOutput::Streamed
    {
        Some(&mut streamed)
    } else {
        None
    };
    let outcome = test(ws, req, &args.flags.cache_dir(), opts, interrupt, on_test)
        .map_err(|e| Failure::new(e.class(), e))?;
    let Some(o) = outcome else {
        let shown: Vec<String> = req.patterns.iter().map(|p| p.to_string()).collect();
        eprintln!("ERROR: no test targets matched {}", shown.join(" "));
        return Ok(exit::NO_TESTS);
    };
    if args.test_output == TestOutput::All {
        for t in &o.tests {
            print_logs(&t.label, &t.logs);
        }
    }
    let code = report(&o.build, &args.flags, opts)?;
    if code == exit::INTERRUPTED {
        return Ok(code);
    }
    let mut failed = 0;
    for t in &o.tests {
        let flaky;
        let text = match t.status {
            TestStatus::Passed if t.flaky > 0 => {
                flaky = format!("FLAKY, failed {} time(s) first", t.flaky);
                flaky.as_str()
            }
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
