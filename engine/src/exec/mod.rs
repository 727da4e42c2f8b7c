//! Execution: running a plan's actions against the cache, in parallel, doing
//! the least work possible.
//!
//! # How a build decides what to do
//! 1. Every source input is stat'ed (in parallel); when its (size, mtime,
//!    ctime, inode) match a row of the cache's `files` table that was not
//!    racily recorded (`kiln_cache::stat`) its digest is reused, otherwise
//!    it is hashed. Every output in `kiln-out/` is stat'ed the same way.
//! 2. Actions become ready in dependency order. For a ready action the
//!    scheduler computes its key from the digests of its inputs
//!    (`action/key.rs`). Then, in order:
//!    - **up to date**: every output in `kiln-out/` is unchanged since this
//!      very key wrote it: nothing to do (this is a no-op build's path, and
//!      it reads no file contents);
//!    - **local hit**: the action cache has the key: a worker verifies the
//!      output blobs and the scheduler links them into `kiln-out/`;
//!    - otherwise a worker **executes** it through its runner (the sandbox,
//!      `runner.rs` and `sandbox.rs`) and its outputs go into the blob
//!      store and the action cache.
//!
//!    Because keys depend on contents, an input rebuilt or touched to the
//!    same bytes leaves downstream keys unchanged (early cutoff).
//! 3. The scheduler (`scheduler.rs`) is the one owner of build state and of
//!    the database; workers (`worker.rs`) only run actions and verify blobs,
//!    and send results back over a channel. Database writes are batched in
//!    transactions (`journal.rs`); outputs reach `kiln-out/` through
//!    `materialize.rs`; `progress.rs` draws the progress display.
//!
//! This file holds the public types and [`execute`]: the stat/hash pass
//! over inputs and outputs, setting up the scheduler, and collecting the
//! report. `exec/` reads only a [`Plan`] (`plan/`): nothing from loading,
//! analysis or the target graph.
//!
//! On failure no new work starts unless `keep_going`; on interrupt running
//! actions' process groups are killed. Nothing is recorded for an action
//! that did not finish, and outputs appear in `kiln-out/` only by atomic
//! rename of complete blobs, so no partial output or cache entry survives.

pub mod clock;
pub mod files;
mod journal;
pub mod limits;
mod materialize;
mod progress;
pub mod record;
pub mod runner;
pub mod sandbox;
mod scheduler;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::Duration;

use kiln_cache::{ActionResult, Cache, CacheError, Digest, FileState, Stat};
use rayon::prelude::*;

use self::clock::{Clock, SystemClock};
use self::files::{DiskFs, Fs};
use self::journal::Write;
use self::materialize::remove_stale_temporaries;
use self::progress::Progress;
use self::runner::{Runners, SandboxRunners};
use self::sandbox::Isolation;
use self::scheduler::{InputRef, Scheduler, Status, abs};
use self::worker::Done;
use crate::action::ExecContext;
use crate::error::ErrorClass;
use crate::plan::Plan;

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live status line on a terminal, plain lines otherwise.
    Auto,
    /// One line per action that runs.
    Plain,
    /// Nothing.
    None,
}

/// Options of one execution.
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Actions run at once.
    pub jobs: usize,
    /// Keep going after a failure.
    pub keep_going: bool,
    /// Progress display.
    pub progress: ProgressMode,
    /// Write a Chrome trace here.
    pub profile: Option<PathBuf>,
    /// A remote cache, looked up after the local one.
    pub remote: Option<Arc<crate::remote::RemoteCache>>,
    /// A remote executor: eligible actions run there, `jobs` at a time.
    pub executor: Option<Arc<crate::remote::exec::RemoteExecutor>>,
    /// Actions run at once on this machine (with an executor; without
    /// one, the smaller of this and `jobs`).
    pub local_jobs: usize,
    /// What in-process action kinds get (cache dir, limits).
    pub context: ExecContext,
    /// Runs a failing test action gets before it fails (1: no retry).
    pub flaky_test_attempts: u32,
}

/// What an execution did.
#[derive(Clone, Debug, Default)]
pub struct ExecReport {
    /// Actions in the plan.
    pub total: usize,
    /// Actions whose command ran successfully.
    pub executed: usize,
    /// Actions satisfied by the local cache (up to date or restored).
    pub local_hits: usize,
    /// Actions that failed.
    pub failed: usize,
    /// Actions satisfied by the remote cache (or the executor's cache).
    pub remote_hits: usize,
    /// Actions that ran on the remote executor (counted in `executed`).
    pub remote_executed: usize,
    /// The outputs of each failed action (execution paths), so that
    /// callers can tell which requested files were not made.
    pub failures: Vec<Vec<String>>,
    /// Why each of `failures` failed (its message and output), same order.
    pub failure_texts: Vec<String>,
    /// The build was interrupted.
    pub interrupted: bool,
    /// Isolation the sandbox obtained; `None` when no worker started (no
    /// action had to run or be restored).
    pub isolation: Option<Isolation>,
    /// After a complete, successful build: the state of every file it
    /// depended on (sources, outputs, tools), for the next no-op check.
    pub snapshot: Option<Vec<(PathBuf, Stat)>>,
    /// Actions that ran or were restored: their `runs` records say so, and
    /// the next build that finds them up to date must say that instead.
    pub changed: Vec<String>,
    /// Actions whose command ran (here or on an executor): their outputs
    /// (execution paths) and how long they took.
    pub ran: Vec<(Vec<String>, Duration)>,
    /// Test actions that passed after failing: their outputs and how many
    /// attempts failed first.
    pub flaky: Vec<(Vec<String>, u32)>,
}

impl ExecReport {
    /// Add `other`, a later execution of part of the same plan
    /// (`kiln test --test-output=streamed` runs one test at a time).
    pub fn merge(&mut self, other: ExecReport) {
        self.total += other.total;
        self.executed += other.executed;
        self.local_hits += other.local_hits;
        self.failed += other.failed;
        self.remote_hits += other.remote_hits;
        self.remote_executed += other.remote_executed;
        self.failures.extend(other.failures);
        self.failure_texts.extend(other.failure_texts);
        self.interrupted |= other.interrupted;
        if self.isolation.is_none() {
            self.isolation = other.isolation;
        }
        // A partial build proves nothing for the no-op check.
        self.snapshot = None;
        self.changed.extend(other.changed);
        self.ran.extend(other.ran);
        self.flaky.extend(other.flaky);
    }
}

/// Errors that stop execution itself (not an action failing).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// kiln could not store an action's outputs (disk full, cache not
    /// writable).
    #[error("{0}; free space or fix the cache directory's permissions, then build again")]
    Local(String),
    /// Writing into the workspace failed.
    #[error("Cannot write `{path}`: {message}")]
    Io {
        /// Which path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl ExecError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Local
    }
}

/// Execute `plan` in the workspace at `root` with `cache`.
pub fn execute(
    root: &Path,
    cache: &mut Cache,
    plan: Plan,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<ExecReport, ExecError> {
    let runners = SandboxRunners::new(
        root.to_path_buf(),
        cache.blobs().clone(),
        opts.context.clone(),
    );
    let seams = Seams {
        runners: Arc::new(runners),
        clock: Arc::new(SystemClock::new()),
        fs: Arc::new(DiskFs),
    };
    execute_with(root, cache, plan, opts, interrupt, seams)
}

/// What [`execute_with`] runs actions with and reads time from: the
/// sandbox and the monotonic clock, or fakes in tests.
pub struct Seams {
    /// Run actions (one runner per worker thread).
    pub runners: Arc<dyn Runners>,
    /// Time since the execution began.
    pub clock: Arc<dyn Clock>,
    /// The workspace filesystem.
    pub fs: Arc<dyn Fs>,
}

/// [`execute`] with the given seams.
pub fn execute_with(
    root: &Path,
    cache: &mut Cache,
    plan: Plan,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
    seams: Seams,
) -> Result<ExecReport, ExecError> {
    let Seams {
        runners,
        clock,
        fs: disk,
    } = seams;
    let plan = Arc::new(plan);
    let n = plan.actions.len();
    let states = cache.file_states(&format!("{}/", root.to_string_lossy()))?;

    // Stat (and hash where needed) every source input and output, in
    // parallel. A file changed within a timestamp granularity of this
    // moment is recorded as racy, so the next build reads it again.
    let since = kiln_cache::stat::now_ns();
    let mut src_paths: Vec<&str> = plan
        .actions
        .iter()
        .flat_map(|a| a.inputs.iter())
        .filter(|x| x.is_source())
        .map(|x| x.path())
        .collect();
    src_paths.sort_unstable();
    src_paths.dedup();
    let src: Vec<Option<(Digest, Stat)>> = src_paths
        .par_iter()
        .map(|p| {
            let path = root.join(p);
            disk.stat_file(&path, since)
                .and_then(|st| match states.get(*p) {
                    Some(fs) if fs.stat.proves_unchanged(&st) && fs.key.is_none() => {
                        Some((fs.digest, st))
                    }
                    _ => disk.digest(&path).ok().map(|d| (d, st)),
                })
        })
        .collect();
    let input_refs: Vec<Vec<InputRef>> = plan
        .actions
        .par_iter()
        .enumerate()
        .map(|(i, a)| {
            a.inputs
                .iter()
                .map(|x| {
                    if x.is_source() {
                        return src_paths
                            .binary_search(&x.path())
                            .map(|k| InputRef::Source(k as u32))
                            .unwrap_or(InputRef::Unknown);
                    }
                    for &d in &plan.deps[i] {
                        if let Some(o) = plan.actions[d as usize]
                            .outputs
                            .iter()
                            .position(|o| o.path() == x.path())
                        {
                            return InputRef::Output(d, o as u32);
                        }
                    }
                    InputRef::Unknown
                })
                .collect()
        })
        .collect();
    let out_stat: Vec<Vec<Option<Stat>>> = plan
        .actions
        .par_iter()
        .map(|a| {
            a.outputs
                .iter()
                .map(|o| disk.stat_entry(&root.join(&*plan.workspace_path(o.path())), since))
                .collect()
        })
        .collect();
    let mut tool_paths: Vec<&str> = plan
        .actions
        .iter()
        .flat_map(|a| a.kind.tool_files())
        .collect();
    tool_paths.sort_unstable();
    tool_paths.dedup();
    let mut tools = HashMap::new();
    let mut writes = Vec::new();
    let mut snapshot: Vec<(PathBuf, Stat)> = Vec::new();
    for t in tool_paths {
        let st = disk.stat_file(Path::new(t), since);
        if let Some(st) = st {
            snapshot.push((PathBuf::from(t), st));
        }
        let d = match (st, cache.file_state(t)?) {
            (Some(st), Some(fs)) if fs.stat.proves_unchanged(&st) => Some(fs.digest),
            (Some(st), _) => disk.digest(Path::new(t)).ok().inspect(|d| {
                writes.push(Write::File(
                    t.to_owned(),
                    FileState {
                        stat: st,
                        digest: *d,
                        key: None,
                    },
                ));
            }),
            (None, _) => None,
        };
        tools.insert(t.to_owned(), d);
    }
    for (p, e) in src_paths.iter().zip(&src) {
        if let Some((d, st)) = e
            && states
                .get(*p)
                .is_none_or(|fs| !fs.stat.proves_unchanged(st) || fs.key.is_some())
        {
            writes.push(Write::File(
                abs(root, p),
                FileState {
                    stat: *st,
                    digest: *d,
                    key: None,
                },
            ));
        }
    }

    let mut dependents = vec![Vec::new(); n];
    let mut pending = vec![0u32; n];
    for (i, ds) in plan.deps.iter().enumerate() {
        pending[i] = ds.len() as u32;
        for d in ds {
            dependents[*d as usize].push(i as u32);
        }
    }
    let ready: VecDeque<usize> = (0..n).filter(|i| pending[*i] == 0).collect();
    let blobs = cache.blobs().clone();
    let progress = Progress::new(opts.progress, n);
    let mut s = Scheduler {
        root,
        ws_key: crate::artifact::runs_key(root, plan.out_dir.as_deref()),
        attempts: vec![0; n],
        blobs,
        plan: plan.clone(),
        opts,
        states,
        src,
        input_refs,
        out_stat,
        tools,
        produced: plan
            .actions
            .iter()
            .map(|a| vec![None; a.outputs.len()])
            .collect(),
        pending,
        dependents,
        status: vec![Status::Waiting; n],
        keys: vec![None; n],
        reasons: vec![String::new(); n],
        ready,
        writes,
        report: ExecReport {
            total: n,
            ..Default::default()
        },
        stopping: false,
        in_flight: 0,
        job_tx: None,
        remote_tx: None,
        upload_tx: None,
        progress,
        events: Vec::new(),
        last_flush: clock.now(),
        clock,
        fs: disk.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        toplevel: opts
            .executor
            .as_ref()
            .filter(|x| x.keeps_outputs_remote())
            .map(|_| toplevel_files(&plan)),
        left_remote: false,
        cache,
    };
    remove_stale_temporaries(&s.blobs);
    limits::remove_stale();
    fs::create_dir_all(crate::artifact::state_dir(root).join("tmp")).map_err(|e| {
        ExecError::Io {
            path: crate::artifact::state_dir(root),
            message: e.to_string(),
        }
    })?;

    // Uploads to the remote cache run in the background of the build; the
    // build waits for them before it returns.
    let uploader = opts.remote.clone().filter(|r| r.options.upload).map(|r| {
        let (tx, rx) = mpsc::channel::<(Digest, ActionResult)>();
        s.upload_tx = Some(tx);
        let blobs = s.blobs.clone();
        std::thread::spawn(move || {
            for (key, result) in rx {
                r.upload(&key, &result, &blobs);
            }
        })
    });

    // Workers: started lazily, when the first action must run or be verified.
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let mut workers = Vec::new();
    let result = s.run(&runners, &done_tx, &done_rx, &mut workers, &interrupt);
    drop(s.job_tx.take());
    drop(s.remote_tx.take());
    for w in workers {
        let _ = w.join();
    }
    drop(s.upload_tx.take());
    if let Some(u) = uploader {
        let _ = u.join();
    }
    runners.finish();
    let flushed = s.flush();
    s.progress.finish();
    if let Some(p) = &opts.profile {
        let trace = serde_json::json!({ "traceEvents": s.events, "displayTimeUnit": "ms" });
        fs::write(p, serde_json::to_vec(&trace).unwrap_or_default()).map_err(|e| {
            ExecError::Io {
                path: p.clone(),
                message: e.to_string(),
            }
        })?;
    }
    result?;
    flushed?;
    if s.report.failed == 0
        && !s.report.interrupted
        && !s.left_remote
        && s.report.executed + s.report.local_hits + s.report.remote_hits == n
    {
        for (p, e) in src_paths.iter().zip(&s.src) {
            if let Some((_, st)) = e {
                snapshot.push((root.join(p), *st));
            }
        }
        for a in &plan.actions {
            for o in &a.outputs {
                let wp = plan.workspace_path(o.path());
                if let Some(st) = s.states.get(&*wp) {
                    snapshot.push((root.join(&*wp), st.stat));
                }
            }
        }
        s.report.snapshot = Some(snapshot);
    }
    Ok(s.report)
}

/// The files of the requested targets: what they provide, their test
/// results and what `kiln run` reads.
fn toplevel_files(plan: &crate::plan::Plan) -> std::collections::HashSet<String> {
    let mut files = std::collections::HashSet::new();
    for t in &plan.targets {
        files.extend(t.outputs.iter().cloned());
        files.extend(t.test_results.iter().flatten().cloned());
        if let Some(r) = &t.run {
            files.insert(r.component.clone());
            files.extend(r.dynlink_plan.iter().cloned());
            files.extend(r.stdlib.iter().cloned());
        }
    }
    files
}
