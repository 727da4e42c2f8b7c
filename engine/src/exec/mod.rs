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
//!    - otherwise a worker **executes** it in a sandbox (`sandbox.rs`) and
//!      its outputs go into the blob store and the action cache.
//!
//!    Because keys depend on contents, an input rebuilt or touched to the
//!    same bytes leaves downstream keys unchanged (early cutoff).
//! 3. The scheduler (this file) is the one owner of build state and of the
//!    database; workers only run commands and verify blobs, and send results
//!    back over a channel. Database writes are batched in transactions.
//!
//! On failure no new work starts unless `keep_going`; on interrupt running
//! actions' process groups are killed. Nothing is recorded for an action
//! that did not finish, and outputs appear in `kiln-out/` only by atomic
//! rename of complete blobs, so no partial output or cache entry survives.

pub mod record;
pub mod runner;
pub mod sandbox;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::{IsTerminal, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kiln_cache::{ActionResult, Blobs, Cache, CacheError, Digest, FileState, Stat};
use rayon::prelude::*;

use self::record::{Outcome, Record};
use self::runner::{Runners, SandboxRunners};
use self::sandbox::{Isolation, RunOutcome};
use crate::action::key::{action_key, command_digest};
use crate::action::{Action, ExecContext};
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
    /// What in-process action kinds get (cache dir, limits).
    pub context: ExecContext,
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
    /// Actions satisfied by the remote cache.
    pub remote_hits: usize,
    /// The outputs of each failed action (execution paths), so that
    /// callers can tell which requested files were not made.
    pub failures: Vec<Vec<String>>,
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
}

/// Errors that stop execution itself (not an action failing).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
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
        ErrorClass::Environment
    }
}

enum Job {
    Execute {
        idx: usize,
        inputs: Vec<Digest>,
        key: Option<Digest>,
    },
    Verify {
        idx: usize,
        result: ActionResult,
    },
}

enum Done {
    Ready(Isolation),
    /// A queued job not started because the build is stopping.
    Dropped {
        idx: usize,
    },
    Executed {
        idx: usize,
        outcome: RunOutcome,
        /// Fetched from the remote cache instead of run.
        remote: bool,
        worker: usize,
        start: Instant,
        end: Instant,
    },
    Verified {
        idx: usize,
        result: ActionResult,
        ok: Result<(), Digest>,
        worker: usize,
        start: Instant,
        end: Instant,
    },
}

enum Write {
    Action(Digest, ActionResult),
    File(String, FileState),
    Run(String, Outcome, Record),
    UpToDate(usize),
    Touch(Digest),
}

/// Per-action progress of the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Waiting,
    InFlight,
    Finished,
    Failed,
}

struct Scheduler<'a> {
    root: &'a Path,
    ws_key: String,
    cache: &'a mut Cache,
    blobs: Blobs,
    plan: Arc<Plan>,
    opts: &'a ExecOptions,
    /// File states of this workspace, by workspace-relative path.
    states: HashMap<String, FileState>,
    /// Digest and stat of each source input (`None`: missing), by `SrcId`.
    src: Vec<Option<(Digest, Stat)>>,
    /// Where each input of each action comes from.
    input_refs: Vec<Vec<InputRef>>,
    /// Stat of each output of each action in `kiln-out/`, if present.
    out_stat: Vec<Vec<Option<Stat>>>,
    tools: HashMap<String, Option<Digest>>,
    /// Digest of each output of each finished action.
    produced: Vec<Vec<Option<Digest>>>,
    pending: Vec<u32>,
    dependents: Vec<Vec<u32>>,
    status: Vec<Status>,
    keys: Vec<Option<Digest>>,
    reasons: Vec<String>,
    ready: VecDeque<usize>,
    writes: Vec<Write>,
    report: ExecReport,
    stopping: bool,
    in_flight: usize,
    job_tx: Option<Sender<Job>>,
    /// Results of actions run here, for the remote cache's uploader.
    upload_tx: Option<Sender<(Digest, ActionResult)>>,
    progress: Progress,
    events: Vec<serde_json::Value>,
    t0: Instant,
    last_flush: Instant,
    /// Tells workers to drop queued jobs.
    stop: Arc<AtomicBool>,
}

fn abs(root: &Path, rel: &str) -> String {
    root.join(rel).to_string_lossy().into_owned()
}

/// Where an action's input comes from.
#[derive(Clone, Copy, Debug)]
enum InputRef {
    /// Index into the sorted, deduplicated source paths.
    Source(u32),
    /// Output `1` of action `0`.
    Output(u32, u32),
    /// Neither: the plan is inconsistent (reported as a missing input).
    Unknown,
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
    execute_with(root, cache, plan, opts, interrupt, Arc::new(runners))
}

/// [`execute`] with the given runners (the sandbox, or a fake in tests).
pub fn execute_with(
    root: &Path,
    cache: &mut Cache,
    plan: Plan,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
    runners: Arc<dyn Runners>,
) -> Result<ExecReport, ExecError> {
    let t0 = Instant::now();
    let plan = Arc::new(plan);
    let n = plan.actions.len();
    let ws_key = root.to_string_lossy().into_owned();
    let states = cache.file_states(&format!("{ws_key}/"))?;

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
            fs::metadata(&path)
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| {
                    let st = Stat::since(&m, since);
                    match states.get(*p) {
                        Some(fs) if fs.stat.proves_unchanged(&st) && fs.key.is_none() => {
                            Some((fs.digest, st))
                        }
                        _ => Digest::of_file(&path).ok().map(|d| (d, st)),
                    }
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
                .map(|o| {
                    fs::symlink_metadata(root.join(o.path()))
                        .ok()
                        .map(|m| Stat::since(&m, since))
                })
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
        let st = fs::metadata(t).ok().map(|m| Stat::since(&m, since));
        if let Some(st) = st {
            snapshot.push((PathBuf::from(t), st));
        }
        let d = match (st, cache.file_state(t)?) {
            (Some(st), Some(fs)) if fs.stat.proves_unchanged(&st) => Some(fs.digest),
            (Some(st), _) => Digest::of_file(Path::new(t)).ok().inspect(|d| {
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
        ws_key,
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
        upload_tx: None,
        progress,
        events: Vec::new(),
        t0,
        last_flush: Instant::now(),
        stop: Arc::new(AtomicBool::new(false)),
        cache,
    };
    remove_stale_temporaries(&s.blobs);
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
        && s.report.executed + s.report.local_hits + s.report.remote_hits == n
    {
        for (p, e) in src_paths.iter().zip(&s.src) {
            if let Some((_, st)) = e {
                snapshot.push((root.join(p), *st));
            }
        }
        for a in &plan.actions {
            for o in &a.outputs {
                if let Some(st) = s.states.get(o.path()) {
                    snapshot.push((root.join(o.path()), st.stat));
                }
            }
        }
        s.report.snapshot = Some(snapshot);
    }
    Ok(s.report)
}

impl Scheduler<'_> {
    fn name(&self, i: usize) -> String {
        self.plan.actions[i].name().to_string()
    }

    fn start_workers(
        &mut self,
        runners: &Arc<dyn Runners>,
        done_tx: &Sender<Done>,
        done_rx: &Receiver<Done>,
        workers: &mut Vec<std::thread::JoinHandle<()>>,
    ) {
        if self.job_tx.is_some() {
            return;
        }
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        for w in 0..self.opts.jobs.max(1) {
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            let blobs = self.blobs.clone();
            let plan = self.plan.clone();
            let runners = runners.clone();
            let stop = self.stop.clone();
            let remote = self.opts.remote.clone();
            workers.push(std::thread::spawn(move || {
                let (iso, mut runner) = runners.start(w);
                let _ = tx.send(Done::Ready(iso));
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { break };
                    let start = Instant::now();
                    if stop.load(Ordering::SeqCst) {
                        let idx = match job {
                            Job::Execute { idx, .. } | Job::Verify { idx, .. } => idx,
                        };
                        if tx.send(Done::Dropped { idx }).is_err() {
                            break;
                        }
                        continue;
                    }
                    let msg = match job {
                        Job::Execute { idx, inputs, key } => {
                            let fetched = match (&remote, key) {
                                (Some(r), Some(k)) => {
                                    let declared: Vec<&str> = plan.actions[idx]
                                        .outputs
                                        .iter()
                                        .map(|o| o.path())
                                        .collect();
                                    r.fetch(&k, &declared, &blobs)
                                }
                                _ => None,
                            };
                            let remote_hit = fetched.is_some();
                            let outcome = match fetched {
                                Some(result) => RunOutcome::Done(result),
                                None => runner.run(&plan.actions[idx], &inputs),
                            };
                            Done::Executed {
                                idx,
                                outcome,
                                remote: remote_hit,
                                worker: w + 1,
                                start,
                                end: Instant::now(),
                            }
                        }
                        Job::Verify { idx, result } => {
                            let ok = sandbox::verify_result(&blobs, &result);
                            Done::Verified {
                                idx,
                                result,
                                ok,
                                worker: w + 1,
                                start,
                                end: Instant::now(),
                            }
                        }
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }));
        }
        // Wait for every worker's isolation report (the first decides the summary).
        let mut isolations = Vec::new();
        while isolations.len() < self.opts.jobs.max(1) {
            match done_rx.recv() {
                Ok(Done::Ready(iso)) => isolations.push(iso),
                _ => break,
            }
        }
        self.report.isolation = Some(isolations.into_iter().next().unwrap_or_default());
        self.job_tx = Some(job_tx);
    }

    fn send(
        &mut self,
        job: Job,
        runners: &Arc<dyn Runners>,
        done_tx: &Sender<Done>,
        done_rx: &Receiver<Done>,
        workers: &mut Vec<std::thread::JoinHandle<()>>,
    ) {
        self.start_workers(runners, done_tx, done_rx, workers);
        if let Some(tx) = &self.job_tx {
            let _ = tx.send(job);
            self.in_flight += 1;
        }
    }

    fn run(
        &mut self,
        runners: &Arc<dyn Runners>,
        done_tx: &Sender<Done>,
        done_rx: &Receiver<Done>,
        workers: &mut Vec<std::thread::JoinHandle<()>>,
        interrupt: &AtomicBool,
    ) -> Result<(), ExecError> {
        loop {
            if interrupt.load(Ordering::SeqCst) && !self.report.interrupted {
                self.report.interrupted = true;
                self.stopping = true;
                self.stop.store(true, Ordering::SeqCst);
                runners.kill_all();
            }
            if self.stopping {
                self.stop.store(true, Ordering::SeqCst);
            }
            // A short queue per worker keeps them busy; the rest waits here.
            // Queued jobs are dropped by workers once `stop` is set.
            while !self.stopping && self.in_flight < 2 * self.opts.jobs.max(1) {
                let Some(i) = self.ready.pop_front() else {
                    break;
                };
                if let Some(job) = self.prepare(i)? {
                    self.send(job, runners, done_tx, done_rx, workers);
                }
            }
            if self.in_flight == 0 {
                return Ok(());
            }
            if self.progress.due() {
                let first = self.status.iter().position(|s| *s == Status::InFlight);
                let what = first
                    .map(|i| format!("{} {}", self.plan.actions[i].mnemonic, self.name(i)))
                    .unwrap_or_default();
                self.progress.tick(
                    self.report.executed + self.report.local_hits + self.report.failed,
                    self.in_flight,
                    &what,
                );
            }
            match done_rx.recv_timeout(Duration::from_millis(100)) {
                Ok(d) => self.handle(d)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            // Flush often enough that a killed build keeps most finished work.
            if self.writes.len() >= 2000
                || (!self.writes.is_empty()
                    && self.last_flush.elapsed() > Duration::from_millis(500))
            {
                self.flush()?;
            }
        }
    }

    /// Decide what a ready action needs: nothing, a verification, or a run.
    fn prepare(&mut self, i: usize) -> Result<Option<Job>, ExecError> {
        let plan = self.plan.clone();
        let a = &plan.actions[i];
        let mut digests = Vec::with_capacity(a.inputs.len());
        for (k, x) in a.inputs.iter().enumerate() {
            match self.input_digest(i, k) {
                Some(d) => digests.push(d),
                None => {
                    let msg = format!(
                        "missing input file `{}`; create it or fix the target's sources",
                        x.path()
                    );
                    self.fail(i, msg, String::new());
                    return Ok(None);
                }
            }
        }
        let mut tools = Vec::new();
        for t in a.kind.tool_files() {
            match self.tools.get(t).copied().flatten() {
                Some(d) => tools.push((t.to_owned(), d)),
                None => {
                    let msg = format!(
                        "the toolchain file `{t}` does not exist on this machine; {}",
                        crate::toolchain::SETUP_HINT
                    );
                    self.fail(i, msg, String::new());
                    return Ok(None);
                }
            }
        }
        tools.sort();
        tools.dedup();
        let key = action_key(a, &digests, &tools);
        self.keys[i] = Some(key);

        // Up to date: every output is exactly what this key wrote. An
        // output recorded racily (just written) whose stat is unchanged is
        // confirmed by its contents, and recorded again.
        let mut outs = Vec::with_capacity(a.outputs.len());
        for (o, st) in a.outputs.iter().zip(&self.out_stat[i]) {
            match (self.states.get(o.path()).copied(), st) {
                (Some(fs), Some(st)) if fs.key == Some(key) && fs.stat.proves_unchanged(st) => {
                    outs.push(fs.digest)
                }
                (Some(fs), Some(st))
                    if fs.key == Some(key)
                        && fs.stat.racy
                        && fs.stat.same_timestamps_and_inode(st)
                        && Digest::of_file(&self.root.join(o.path())).ok() == Some(fs.digest) =>
                {
                    let again = FileState { stat: *st, ..fs };
                    self.states.insert(o.path().to_owned(), again);
                    self.writes
                        .push(Write::File(abs(self.root, o.path()), again));
                    outs.push(fs.digest)
                }
                _ => break,
            }
        }
        if outs.len() == a.outputs.len() {
            for (slot, d) in self.produced[i].iter_mut().zip(outs) {
                *slot = Some(d);
            }
            self.report.local_hits += 1;
            self.writes.push(Write::UpToDate(i));
            let now = self.t0.elapsed();
            self.event(i, 0, now, now, key, "up_to_date");
            self.complete(i);
            return Ok(None);
        }

        let command = command_digest(a);
        let inputs: Vec<(String, Digest)> = a
            .inputs
            .iter()
            .zip(&digests)
            .map(|(x, d)| (x.path().to_owned(), *d))
            .collect();
        let prev = self
            .cache
            .run_record(&self.ws_key, &self.name(i))?
            .and_then(|b| Record::decode(&b));
        self.reasons[i] = record::reason(prev.as_ref(), command, &inputs, key);
        self.status[i] = Status::InFlight;
        if let Some(result) = self.cache.get_action(&key)? {
            return Ok(Some(Job::Verify { idx: i, result }));
        }
        Ok(Some(Job::Execute {
            idx: i,
            inputs: digests,
            key: Some(key),
        }))
    }

    fn handle(&mut self, d: Done) -> Result<(), ExecError> {
        match d {
            Done::Ready(_) => {}
            Done::Dropped { idx } => {
                self.in_flight -= 1;
                self.status[idx] = Status::Waiting;
            }
            Done::Executed {
                idx,
                outcome,
                remote,
                worker,
                start,
                end,
            } => {
                self.in_flight -= 1;
                let (s, e) = (start - self.t0, end - self.t0);
                match outcome {
                    RunOutcome::Done(result) => {
                        if self.report.interrupted {
                            return Ok(());
                        }
                        let key = self.keys[idx].unwrap_or(Digest([0; 32]));
                        self.materialize(idx, &result, key)?;
                        if remote {
                            self.reasons[idx] =
                                format!("fetched from the remote cache ({})", self.reasons[idx]);
                            self.record(idx, Outcome::Restored);
                            self.report.remote_hits += 1;
                            self.progress
                                .line(&self.plan.actions[idx], " (remote cache)", e - s);
                            self.event(idx, worker, s, e, key, "remote_hit");
                        } else {
                            if let Some(tx) = &self.upload_tx {
                                let _ = tx.send((key, result.clone()));
                            }
                            self.record(idx, Outcome::Executed);
                            self.report.executed += 1;
                            self.progress.line(&self.plan.actions[idx], "", e - s);
                            self.event(idx, worker, s, e, key, "executed");
                        }
                        self.writes.push(Write::Action(key, result));
                        self.complete(idx);
                    }
                    RunOutcome::Failed { message, log } => {
                        if self.report.interrupted {
                            return Ok(());
                        }
                        self.fail(idx, message, log);
                    }
                }
            }
            Done::Verified {
                idx,
                result,
                ok,
                worker,
                start,
                end,
            } => {
                self.in_flight -= 1;
                if self.report.interrupted {
                    return Ok(());
                }
                let key = self.keys[idx].unwrap_or(Digest([0; 32]));
                match ok {
                    Ok(()) => {
                        self.materialize(idx, &result, key)?;
                        self.writes.push(Write::Touch(key));
                        self.reasons[idx] =
                            format!("restored from the local cache ({})", self.reasons[idx]);
                        self.record(idx, Outcome::Restored);
                        self.report.local_hits += 1;
                        self.event(
                            idx,
                            worker,
                            start - self.t0,
                            end - self.t0,
                            key,
                            "local_hit",
                        );
                        self.complete(idx);
                    }
                    Err(bad) => {
                        self.cache.remove_action(&key)?;
                        self.reasons[idx] = format!(
                            "cache entry corrupt: blob {} failed verification",
                            bad.hex()
                        );
                        let n = self.plan.actions[idx].inputs.len();
                        let digests: Vec<Digest> =
                            (0..n).filter_map(|k| self.input_digest(idx, k)).collect();
                        if let Some(tx) = &self.job_tx {
                            let _ = tx.send(Job::Execute {
                                idx,
                                inputs: digests,
                                key: Some(key),
                            });
                            self.in_flight += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Link verified blobs into `kiln-out/` (atomically) and note their state.
    fn materialize(&mut self, i: usize, r: &ActionResult, key: Digest) -> Result<(), ExecError> {
        let tmp_dir = crate::artifact::state_dir(self.root).join("tmp");
        for o in &r.outputs {
            let dest = self.root.join(&o.path);
            let blob = self.blobs.path(&o.digest);
            let same = match (fs::metadata(&dest), fs::metadata(&blob)) {
                (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                _ => false,
            };
            if !same {
                let ioerr = |e: std::io::Error| ExecError::Io {
                    path: dest.clone(),
                    message: e.to_string(),
                };
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(ioerr)?;
                }
                let tmp = tmp_dir.join(format!("{}-{}", std::process::id(), o.digest.hex()));
                let _ = fs::remove_file(&tmp);
                if fs::hard_link(&blob, &tmp).is_err() {
                    fs::copy(&blob, &tmp).map_err(ioerr)?;
                }
                fs::rename(&tmp, &dest).map_err(ioerr)?;
            }
            let m = fs::metadata(&dest).map_err(|e| ExecError::Io {
                path: dest.clone(),
                message: e.to_string(),
            })?;
            let st = FileState {
                stat: Stat::of(&m),
                digest: o.digest,
                key: Some(key),
            };
            self.states.insert(o.path.clone(), st);
            self.writes
                .push(Write::File(dest.to_string_lossy().into_owned(), st));
            if let Some(k) = self.plan.actions[i]
                .outputs
                .iter()
                .position(|x| x.path() == o.path)
            {
                self.produced[i][k] = Some(o.digest);
            }
        }
        // A result missing a declared output cannot be used.
        for (x, d) in self.plan.actions[i].outputs.iter().zip(&self.produced[i]) {
            if d.is_none() {
                return Err(ExecError::Io {
                    path: self.root.join(x.path()),
                    message: "cached result lacks this output".into(),
                });
            }
        }
        Ok(())
    }

    fn record(&mut self, i: usize, outcome: Outcome) {
        let a = &self.plan.actions[i];
        let key = self.keys[i].unwrap_or(Digest([0; 32]));
        let inputs = a
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(k, x)| self.input_digest(i, k).map(|d| (x.path().to_owned(), d)))
            .collect();
        let rec = Record {
            reason: self.reasons[i].clone(),
            key,
            command: command_digest(a),
            inputs,
        };
        self.writes.push(Write::Run(self.name(i), outcome, rec));
        if outcome != Outcome::Failed {
            self.report.changed.push(self.name(i));
        }
    }

    fn fail(&mut self, i: usize, message: String, log: String) {
        let a = &self.plan.actions[i];
        self.status[i] = Status::Failed;
        self.report.failed += 1;
        self.report
            .failures
            .push(a.outputs.iter().map(|o| o.path().to_owned()).collect());
        let mut text = format!(
            "ERROR: {} failed ({}): {message}\n",
            self.name(i),
            a.mnemonic
        );
        if let Some(command) = a.kind.command_line() {
            text.push_str(&format!("  command: {command}\n"));
        }
        if !log.is_empty() {
            text.push_str("  output:\n");
            for l in log.lines() {
                text.push_str(&format!("    {l}\n"));
            }
        }
        self.progress.message(&text);
        self.reasons[i] = message;
        if self.keys[i].is_some() {
            self.record(i, Outcome::Failed);
        }
        if !self.opts.keep_going {
            self.stopping = true;
        }
    }

    /// The digest of input `k` of action `i`, if known.
    fn input_digest(&self, i: usize, k: usize) -> Option<Digest> {
        match self.input_refs[i][k] {
            InputRef::Source(s) => self.src[s as usize].map(|(d, _)| d),
            InputRef::Output(a, o) => self.produced[a as usize][o as usize],
            InputRef::Unknown => None,
        }
    }

    fn complete(&mut self, i: usize) {
        self.status[i] = Status::Finished;
        for j in std::mem::take(&mut self.dependents[i]) {
            let j = j as usize;
            self.pending[j] -= 1;
            if self.pending[j] == 0 && self.status[j] == Status::Waiting {
                self.ready.push_back(j);
            }
        }
    }

    fn event(
        &mut self,
        i: usize,
        tid: usize,
        start: Duration,
        end: Duration,
        key: Digest,
        cache: &str,
    ) {
        if self.opts.profile.is_none() {
            return;
        }
        let a = &self.plan.actions[i];
        self.events.push(serde_json::json!({
            "name": format!("{} {}", self.name(i), a.mnemonic),
            "cat": cache,
            "ph": "X",
            "pid": 1,
            "tid": tid,
            "ts": start.as_micros() as u64,
            "dur": (end.saturating_sub(start)).as_micros() as u64,
            "args": { "key": key.hex(), "cache": cache },
        }));
    }

    /// Write batched database updates in one transaction.
    fn flush(&mut self) -> Result<(), ExecError> {
        self.last_flush = Instant::now();
        let mut writes = std::mem::take(&mut self.writes);
        let ws = self.ws_key.clone();
        // Records of earlier builds that were not "up to date" must flip for
        // actions that are up to date now.
        let stale: HashSet<String> = if writes.iter().any(|w| matches!(w, Write::UpToDate(_))) {
            self.cache.runs_not_up_to_date(&ws)?.into_iter().collect()
        } else {
            HashSet::new()
        };
        writes.retain(|w| match w {
            Write::UpToDate(i) => !stale.is_empty() && stale.contains(&self.name(*i)),
            _ => true,
        });
        if writes.is_empty() {
            return Ok(());
        }
        let plan = self.plan.clone();
        let names = |i: usize| plan.actions[i].name().to_string();
        self.cache.transaction(|t| {
            for w in &writes {
                match w {
                    Write::Action(k, r) => t.put_action(k, r)?,
                    Write::File(p, st) => t.put_file_state(p, st)?,
                    Write::Run(name, outcome, rec) => {
                        t.put_run_record(&ws, name, *outcome as u8, &rec.encode())?
                    }
                    Write::UpToDate(i) => t.set_up_to_date(&ws, &names(*i))?,
                    Write::Touch(k) => t.touch_action(k)?,
                }
            }
            Ok(())
        })?;
        Ok(())
    }
}

/// Remove sandboxes and temporary files left by kiln processes that died
/// (named `<what>-<pid>-<n>` in the cache's `tmp/`).
fn remove_stale_temporaries(blobs: &Blobs) {
    let Ok(rd) = fs::read_dir(blobs.tmp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            sandbox::remove_tree(&e.path());
        }
    }
}

/// Progress display on stderr.
struct Progress {
    mode: ProgressMode,
    tty: bool,
    total: usize,
    start: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    fn new(mode: ProgressMode, total: usize) -> Self {
        let now = Instant::now();
        Progress {
            mode,
            tty: std::io::stderr().is_terminal(),
            total,
            start: now,
            last: now,
            drawn: false,
        }
    }

    fn live(&self) -> bool {
        self.mode == ProgressMode::Auto && self.tty
    }

    fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.drawn = false;
        }
    }

    /// Whether a live line should be redrawn now.
    fn due(&self) -> bool {
        self.live() && self.last.elapsed() >= Duration::from_millis(100)
    }

    /// Redraw the live line: done/total, running actions, elapsed time.
    fn tick(&mut self, done: usize, running: usize, what: &str) {
        self.last = Instant::now();
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[K[{done}/{}] {:.1}s, {running} running: {what}",
            self.total,
            self.start.elapsed().as_secs_f64()
        );
        self.drawn = true;
    }

    /// One line per action that ran: `--progress plain`, or `auto` when
    /// stderr is not a terminal.
    fn line(&mut self, a: &Action, extra: &str, took: Duration) {
        if self.mode == ProgressMode::Plain || (self.mode == ProgressMode::Auto && !self.tty) {
            let _ = writeln!(
                std::io::stderr(),
                "{} {} ({:.2}s){extra}",
                a.mnemonic,
                a.name(),
                took.as_secs_f64()
            );
        }
    }

    fn message(&mut self, text: &str) {
        self.clear();
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn finish(&mut self) {
        self.clear();
    }
}
