//! `kiln test`: build the test targets the patterns name and report each.
//!
//! Test targets are those whose rule returns `TestInfo` (as recorded in
//! the plan); their `results` are files written by test actions, so a
//! passing test is an action result like any other, cached by its key.
//! Every test runs even when another fails (Bazel's behaviour). A test
//! whose result action failed is `Failed`; when something a test needs
//! failed to build, the others have `NoStatus`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use std::time::Instant;

use super::build::{BuildError, BuildOutcome, make_plan, record_remote_traffic};
use crate::exec::{ExecOptions, execute};
use crate::label::Label;
use crate::plan::Request;
use crate::workspace::Workspace;

/// How one test target ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestStatus {
    /// Every test action passed.
    Passed,
    /// A test action failed.
    Failed,
    /// Something the test needs failed to build, so it may not have run.
    NoStatus,
}

/// One test target's result.
pub struct TestResult {
    /// The target.
    pub label: Label,
    /// How it ended.
    pub status: TestStatus,
    /// How long its test actions that ran took (summed); `None` when none
    /// ran: its results came from the cache.
    pub ran: Option<std::time::Duration>,
    /// Its result files (logs), as workspace paths.
    pub logs: Vec<String>,
    /// Failed attempts before its actions passed (`--flaky-test-attempts`).
    pub flaky: u32,
}

/// What `kiln test` did.
pub struct TestOutcome {
    /// The build of the test targets.
    pub build: BuildOutcome,
    /// Each test target and how it ended, in label order.
    pub tests: Vec<TestResult>,
    /// A non-test action failed.
    pub build_broken: bool,
}

/// Called with a test target and its logs (workspace paths) when it
/// ends, for `--test-output=streamed`.
pub type OnTest<'a> = dyn FnMut(&Label, &[String]) + 'a;

/// Run the tests `req`'s patterns name (in its configuration); `None` when no test target matched.
pub fn test(
    ws: &Workspace,
    req: &Request,
    cache_dir: &Path,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
    on_test: Option<&mut OnTest>,
) -> Result<Option<TestOutcome>, BuildError> {
    let t0 = Instant::now();
    // One plan for the patterns (reused while nothing loading read
    // changed), narrowed to its test targets and what they need.
    let made = make_plan(ws, req)?;
    let (plan_reused, warnings) = (made.reused, made.warnings);
    let plan = made.plan.restrict(|t| t.test_results.is_some());
    let mut tests: Vec<(Label, Vec<String>)> = plan
        .targets
        .iter()
        .filter_map(|t| Some((t.label.clone(), t.test_results.clone()?)))
        // A test rule whose tests `--test-filter` left out runs nothing.
        .filter(|(_, results)| !results.is_empty())
        .collect();
    if tests.is_empty() {
        return Ok(None);
    }
    tests.sort_by(|a, b| a.0.cmp(&b.0));
    let opts = ExecOptions {
        keep_going: true,
        ..opts.clone()
    };
    let targets = plan.targets.clone();
    let out_dir = plan.out_dir.clone();
    let mut cache = crate::ops::build::open_cache(cache_dir)?;
    let report = match on_test {
        None => execute(&ws.root, &mut cache, plan, &opts, interrupt)?,
        // `--test-output=streamed`: one test target at a time, each
        // reported as it ends (what they share is built by the first).
        Some(on_test) => {
            let mut all = crate::exec::ExecReport::default();
            for (label, results) in &tests {
                let one = plan.clone().restrict(|t| &t.label == label);
                let r = execute(&ws.root, &mut cache, one, &opts, interrupt.clone())?;
                let logs: Vec<String> = results
                    .iter()
                    .map(|p| crate::artifact::workspace_path(p, out_dir.as_deref()).into_owned())
                    .collect();
                on_test(label, &logs);
                let stop = r.interrupted;
                all.merge(r);
                if stop {
                    break;
                }
            }
            all
        }
    };
    record_remote_traffic(&cache, &opts);
    let outcome = BuildOutcome {
        report,
        targets,
        duration: t0.elapsed(),
        plan_reused,
        warnings,
        out_dir,
    };
    let is_result = |p: &String| tests.iter().any(|(_, rs)| rs.contains(p));
    let build_broken = outcome
        .report
        .failures
        .iter()
        .any(|outs| !outs.iter().any(is_result));
    let statuses: Vec<TestResult> = tests
        .iter()
        .map(|(l, results)| {
            let failed = outcome
                .report
                .failures
                .iter()
                .any(|outs| outs.iter().any(|o| results.contains(o)));
            let status = if failed {
                TestStatus::Failed
            } else if build_broken {
                TestStatus::NoStatus
            } else {
                TestStatus::Passed
            };
            let times: Vec<std::time::Duration> = outcome
                .report
                .ran
                .iter()
                .filter(|(outs, _)| outs.iter().any(|o| results.contains(o)))
                .map(|(_, took)| *took)
                .collect();
            let flaky = outcome
                .report
                .flaky
                .iter()
                .filter(|(outs, _)| outs.iter().any(|o| results.contains(o)))
                .map(|(_, n)| *n)
                .max()
                .unwrap_or(0);
            TestResult {
                label: l.clone(),
                status,
                ran: (!times.is_empty()).then(|| times.iter().sum()),
                logs: results
                    .iter()
                    .map(|p| outcome.workspace_path(p).into_owned())
                    .collect(),
                flaky,
            }
        })
        .collect();
    for t in &statuses {
        write_junit(ws, &outcome, t, &tests);
    }
    Ok(Some(TestOutcome {
        build: outcome,
        tests: statuses,
        build_broken,
    }))
}

/// Where a test target's JUnit XML goes: `kiln-out/<pkg>/<name>.test.xml`.
pub fn junit_path(label: &Label) -> String {
    if label.package.as_str().is_empty() {
        format!("kiln-out/{}.test.xml", label.name.as_str())
    } else {
        format!(
            "kiln-out/{}/{}.test.xml",
            label.package.as_str(),
            label.name.as_str()
        )
    }
}

/// Write test target `t`'s JUnit XML from its result files (a file that
/// could not be written is skipped: the XML is a report, not a result).
fn write_junit(ws: &Workspace, o: &BuildOutcome, t: &TestResult, tests: &[(Label, Vec<String>)]) {
    use super::junit::{Case, CaseOutcome, parse_unittest, render, write};
    let Some((_, results)) = tests.iter().find(|(l, _)| l == &t.label) else {
        return;
    };
    let mut cases = Vec::new();
    for r in results {
        let (dir, base) = r.rsplit_once('/').unwrap_or(("", r));
        let file_case = |outcome| Case {
            class: dir.to_owned(),
            name: base.to_owned(),
            outcome,
            seconds: o
                .report
                .ran
                .iter()
                .filter(|(outs, _)| outs.contains(r))
                .map(|(_, d)| d.as_secs_f64())
                .fold(0.0, |a, b| a + b),
        };
        let failed = o.report.failures.iter().position(|outs| outs.contains(r));
        if let Some(i) = failed {
            let text = o.report.failure_texts.get(i).cloned().unwrap_or_default();
            cases.push(file_case(CaseOutcome::Failed(text)));
            continue;
        }
        let Ok(log) = std::fs::read(ws.root.join(&*o.workspace_path(r))) else {
            continue;
        };
        let found = parse_unittest(&String::from_utf8_lossy(&log));
        if found.is_empty() {
            cases.push(file_case(CaseOutcome::Passed));
        } else {
            cases.extend(found);
        }
    }
    let xml = render(&t.label.to_string(), &cases, t.ran);
    let _ = write(
        &ws.root.join(&*o.workspace_path(&junit_path(&t.label))),
        &xml,
    );
}
