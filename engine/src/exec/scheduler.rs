//! The scheduler: the one owner of a build's state. It takes actions in
//! dependency order, decides for each (up to date, local hit, or run),
//! hands jobs to workers (`worker.rs`), and records what happened
//! (`journal.rs`, `materialize.rs`). Workers only run and verify.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use kiln_cache::{ActionResult, Blobs, Cache, Digest, FileState, Stat};

use super::clock::Clock;
use super::files::Fs;
use super::journal::Write;
use super::progress::Progress;
use super::record::{self, Outcome, Record};
use super::runner::Runners;
use super::sandbox::RunOutcome;
use super::worker::{Done, Job, Source};
use super::{ExecError, ExecOptions, ExecReport};
use crate::action::key::{action_key, command_digest};
use crate::plan::Plan;

/// Per-action progress of the scheduler.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Waiting,
    InFlight,
    Finished,
    Failed,
}

/// The state of one execution (see the module docs of `exec`).
pub(super) struct Scheduler<'a> {
    pub(super) root: &'a Path,
    /// Whose `runs` records this build writes (`artifact::runs_key`).
    pub(super) ws_key: String,
    /// Attempts made so far beyond the first, per action
    /// (`--flaky-test-attempts`).
    pub(super) attempts: Vec<u32>,
    pub(super) cache: &'a mut Cache,
    pub(super) blobs: Blobs,
    pub(super) plan: Arc<Plan>,
    pub(super) opts: &'a ExecOptions,
    /// File states of this workspace, by workspace-relative path.
    pub(super) states: HashMap<String, FileState>,
    /// Digest and stat of each source input (`None`: missing), by `SrcId`.
    pub(super) src: Vec<Option<(Digest, Stat)>>,
    /// Where each input of each action comes from.
    pub(super) input_refs: Vec<Vec<InputRef>>,
    /// Stat of each output of each action in `kiln-out/`, if present.
    pub(super) out_stat: Vec<Vec<Option<Stat>>>,
    pub(super) tools: HashMap<String, Option<Digest>>,
    /// Digest of each output of each finished action.
    pub(super) produced: Vec<Vec<Option<Digest>>>,
    pub(super) pending: Vec<u32>,
    pub(super) dependents: Vec<Vec<u32>>,
    pub(super) status: Vec<Status>,
    pub(super) keys: Vec<Option<Digest>>,
    pub(super) reasons: Vec<String>,
    pub(super) ready: VecDeque<usize>,
    pub(super) writes: Vec<Write>,
    pub(super) report: ExecReport,
    pub(super) stopping: bool,
    pub(super) in_flight: usize,
    pub(super) job_tx: Option<Sender<Job>>,
    /// The remote executor's queue (when there is one).
    pub(super) remote_tx: Option<Sender<Job>>,
    /// Results of actions run here, for the remote cache's uploader.
    pub(super) upload_tx: Option<Sender<(Digest, ActionResult)>>,
    pub(super) progress: Progress,
    pub(super) events: Vec<serde_json::Value>,
    /// Time since the execution began.
    pub(super) clock: Arc<dyn Clock>,
    /// The workspace filesystem.
    pub(super) fs: Arc<dyn Fs>,
    /// When the journal was last flushed.
    pub(super) last_flush: Duration,
    /// Tells workers to drop queued jobs.
    pub(super) stop: Arc<AtomicBool>,
    /// With `--remote-download-outputs=toplevel`: the files of the
    /// requested targets, the only remote outputs put in `kiln-out/`.
    pub(super) toplevel: Option<std::collections::HashSet<String>>,
    /// Some output was left on the executor (so no no-op record is kept).
    pub(super) left_remote: bool,
}

/// The absolute path of `rel` as the `files` table keys it.
pub(super) fn abs(root: &Path, rel: &str) -> String {
    root.join(rel).to_string_lossy().into_owned()
}

/// Where an action's input comes from.
#[derive(Clone, Copy, Debug)]
pub(super) enum InputRef {
    /// Index into the sorted, deduplicated source paths.
    Source(u32),
    /// Output `1` of action `0`.
    Output(u32, u32),
    /// Neither: the plan is inconsistent (reported as a missing input).
    Unknown,
}

impl Scheduler<'_> {
    pub(super) fn name(&self, i: usize) -> String {
        self.plan.actions[i].name().to_string()
    }

    pub(super) fn run(
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
            let slots = self.opts.jobs.max(1)
                + if self.opts.executor.is_some() {
                    self.opts.local_jobs.max(1)
                } else {
                    0
                };
            while !self.stopping && self.in_flight < 2 * slots {
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
                    && self.clock.now().saturating_sub(self.last_flush)
                        > Duration::from_millis(500))
            {
                self.flush()?;
            }
        }
    }

    pub(super) fn prepare(&mut self, i: usize) -> Result<Option<Job>, ExecError> {
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
        let tools = match self.tools_of(i) {
            Ok(t) => t,
            Err(t) => {
                let msg = format!(
                    "the toolchain file `{t}` does not exist on this machine; {}",
                    crate::toolchain::SETUP_HINT
                );
                self.fail(i, msg, String::new());
                return Ok(None);
            }
        };
        let key = action_key(a, &digests, &tools);
        self.keys[i] = Some(key);

        // Up to date: every output is exactly what this key wrote. An
        // output recorded racily (just written) whose stat is unchanged is
        // confirmed by its contents, and recorded again.
        let mut outs = Vec::with_capacity(a.outputs.len());
        for (o, st) in a.outputs.iter().zip(&self.out_stat[i]) {
            let wp = self.plan.workspace_path(o.path());
            match (self.states.get(&*wp).copied(), st) {
                (Some(fs), Some(st)) if fs.key == Some(key) && fs.stat.proves_unchanged(st) => {
                    outs.push(fs.digest)
                }
                (Some(fs), Some(st))
                    if fs.key == Some(key)
                        && fs.stat.racy
                        && fs.stat.same_timestamps_and_inode(st)
                        && self.fs.digest(&self.root.join(&*wp)).ok() == Some(fs.digest) =>
                {
                    let again = FileState { stat: *st, ..fs };
                    self.states.insert(wp.to_string(), again);
                    self.writes.push(Write::File(abs(self.root, &wp), again));
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
            let now = self.clock.now();
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
        // `no-cache`: no result is looked up (nor, when it ran, kept); its
        // outputs above, when this key wrote them, are still up to date.
        if !a.no_cache()
            && let Some(result) = self.cache.get_action(&key)?
        {
            return Ok(Some(Job::Verify { idx: i, result }));
        }
        Ok(Some(Job::Execute {
            idx: i,
            inputs: digests,
            key,
            tools,
        }))
    }

    /// The toolchain files of action `i` with their digests, sorted (as
    /// its key has them); `Err` names one that does not exist.
    pub(super) fn tools_of(&self, i: usize) -> Result<Vec<(String, Digest)>, String> {
        let mut tools = Vec::new();
        for t in self.plan.actions[i].kind.tool_files() {
            match self.tools.get(t).copied().flatten() {
                Some(d) => tools.push((t.to_owned(), d)),
                None => return Err(t.to_owned()),
            }
        }
        tools.sort();
        tools.dedup();
        Ok(tools)
    }

    pub(super) fn handle(&mut self, d: Done) -> Result<(), ExecError> {
        match d {
            Done::Ready(_) => {}
            Done::Dropped { idx } => {
                self.in_flight -= 1;
                self.status[idx] = Status::Waiting;
            }
            Done::RemoteLost { job, why } => {
                self.in_flight -= 1;
                let Job::Execute { idx, .. } = &job else {
                    return Ok(());
                };
                let idx = *idx;
                let Some(ex) = self.opts.executor.clone() else {
                    return Ok(());
                };
                let first = ex.lost(&why);
                if let Some(r) = self
                    .opts
                    .remote
                    .as_ref()
                    .filter(|r| r.options.url == ex.url)
                {
                    r.lost_with_executor();
                }
                if self.report.interrupted {
                    self.status[idx] = Status::Waiting;
                    return Ok(());
                }
                if ex.fallback {
                    if let Some(w) = first {
                        self.progress.message(&format!(
                            "WARNING: {w}; running the remaining actions locally (--remote-local-fallback)\n"
                        ));
                    }
                    if let Some(tx) = &self.job_tx {
                        let _ = tx.send(job);
                        self.in_flight += 1;
                    }
                } else {
                    let msg = format!(
                        "the remote executor {} is unavailable ({why}); start it, or build with --remote-local-fallback to run actions locally when it is lost",
                        ex.url
                    );
                    if first.is_some() {
                        self.fail(idx, msg, String::new());
                    } else {
                        self.fail_quietly(idx, msg);
                    }
                }
            }
            Done::Executed {
                idx,
                outcome,
                source,
                worker,
                start,
                end,
            } => {
                self.in_flight -= 1;
                let (s, e) = (start, end);
                match outcome {
                    RunOutcome::Done(result) => {
                        if self.report.interrupted {
                            return Ok(());
                        }
                        let key = self.keys[idx].unwrap_or(Digest([0; 32]));
                        let no_cache = self.plan.actions[idx].no_cache();
                        self.materialize(idx, &result, key)?;
                        if let Source::RemoteExec { cached, timing } = &source {
                            let url = self
                                .opts
                                .executor
                                .as_ref()
                                .map(|x| x.url.clone())
                                .unwrap_or_default();
                            if *cached {
                                self.reasons[idx] = format!(
                                    "fetched from the remote executor's cache at {url} ({})",
                                    self.reasons[idx]
                                );
                                self.record(idx, Outcome::Restored);
                                self.report.remote_hits += 1;
                                self.progress.line(
                                    &self.plan.actions[idx],
                                    " (remote cache)",
                                    e - s,
                                );
                            } else {
                                self.reasons[idx] =
                                    format!("executed remotely on {url} ({})", self.reasons[idx]);
                                self.record(idx, Outcome::Executed);
                                self.report.executed += 1;
                                self.report.remote_executed += 1;
                                self.note_ran(idx, e - s);
                                self.progress
                                    .line(&self.plan.actions[idx], " (remote)", e - s);
                            }
                            self.remote_event(idx, worker, s, e, key, *cached, timing);
                        } else if let Source::RemoteCache = source {
                            self.reasons[idx] =
                                format!("fetched from the remote cache ({})", self.reasons[idx]);
                            self.record(idx, Outcome::Restored);
                            self.report.remote_hits += 1;
                            self.progress
                                .line(&self.plan.actions[idx], " (remote cache)", e - s);
                            self.event(idx, worker, s, e, key, "remote_hit");
                        } else {
                            if let Some(tx) = self.upload_tx.as_ref().filter(|_| !no_cache) {
                                let _ = tx.send((key, result.clone()));
                            }
                            self.record(idx, Outcome::Executed);
                            self.report.executed += 1;
                            self.note_ran(idx, e - s);
                            self.progress.line(&self.plan.actions[idx], "", e - s);
                            self.event(idx, worker, s, e, key, "executed");
                        }
                        if !no_cache {
                            self.writes.push(Write::Action(key, result));
                        }
                        if self.attempts[idx] > 0 {
                            let outs = self.plan.actions[idx]
                                .outputs
                                .iter()
                                .map(|o| o.path().to_owned())
                                .collect();
                            self.report.flaky.push((outs, self.attempts[idx]));
                        }
                        self.complete(idx);
                    }
                    RunOutcome::Local { message } => {
                        return Err(ExecError::Local(message));
                    }
                    RunOutcome::Failed { message, log } => {
                        if self.report.interrupted || self.retry_flaky(idx, &message) {
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
                        self.event(idx, worker, start, end, key, "local_hit");
                        self.complete(idx);
                    }
                    Err(bad) => {
                        self.cache.remove_action(&key)?;
                        let remote = self
                            .opts
                            .executor
                            .as_ref()
                            .and_then(|x| x.remote_blob(&self.blobs, &bad));
                        self.reasons[idx] = match remote {
                            Some(r) => format!(
                                "cached result unusable: its output {}/{} was left on the remote executor, which no longer holds it",
                                r.hash, r.size
                            ),
                            None => format!(
                                "cache entry corrupt: blob {} failed verification",
                                bad.hex()
                            ),
                        };
                        self.execute_again(idx, key);
                    }
                }
            }
        }
        Ok(())
    }

    /// Send action `idx` (key `key`) to a worker to run (again).
    fn execute_again(&mut self, idx: usize, key: Digest) {
        let n = self.plan.actions[idx].inputs.len();
        let digests: Vec<Digest> = (0..n).filter_map(|k| self.input_digest(idx, k)).collect();
        let tools = self.tools_of(idx).unwrap_or_default();
        let tx = if self.runs_remotely(idx) {
            &self.remote_tx
        } else {
            &self.job_tx
        };
        if let Some(tx) = tx {
            let _ = tx.send(Job::Execute {
                idx,
                inputs: digests,
                key,
                tools,
            });
            self.in_flight += 1;
        }
    }

    /// `--flaky-test-attempts`: a failed test action (one writing a test
    /// result) runs again while it has attempts left; true when it was
    /// sent again. Only a passing attempt is cached.
    fn retry_flaky(&mut self, idx: usize, message: &str) -> bool {
        let max = self.opts.flaky_test_attempts.max(1);
        if self.attempts[idx] + 1 >= max || !self.is_test_result(idx) || self.stopping {
            return false;
        }
        self.attempts[idx] += 1;
        let Some(key) = self.keys[idx] else {
            return false;
        };
        let first = message.lines().next().unwrap_or("");
        self.progress.message(&format!(
            "FLAKY? {} failed ({first}); attempt {} of {max}\n",
            self.plan.actions[idx].name(),
            self.attempts[idx] + 1
        ));
        self.execute_again(idx, key);
        true
    }

    /// Whether action `idx` writes a requested test target's result.
    fn is_test_result(&self, idx: usize) -> bool {
        self.plan.actions[idx].outputs.iter().any(|o| {
            self.plan.targets.iter().any(|t| {
                t.test_results
                    .as_ref()
                    .is_some_and(|r| r.iter().any(|x| x == o.path()))
            })
        })
    }

    /// Action `i` ran for `took`: `ExecReport::ran`.
    fn note_ran(&mut self, i: usize, took: Duration) {
        let outs = self.plan.actions[i]
            .outputs
            .iter()
            .map(|o| o.path().to_owned())
            .collect();
        self.report.ran.push((outs, took));
    }

    pub(super) fn record(&mut self, i: usize, outcome: Outcome) {
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

    pub(super) fn fail(&mut self, i: usize, message: String, log: String) {
        let a = &self.plan.actions[i];
        self.status[i] = Status::Failed;
        self.report.failed += 1;
        self.report
            .failures
            .push(a.outputs.iter().map(|o| o.path().to_owned()).collect());
        self.report.failure_texts.push(if log.is_empty() {
            message.clone()
        } else {
            format!("{message}\n{log}")
        });
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

    /// Fail action `i` without printing (a later victim of a fault
    /// already reported).
    pub(super) fn fail_quietly(&mut self, i: usize, message: String) {
        let a = &self.plan.actions[i];
        self.status[i] = Status::Failed;
        self.report.failed += 1;
        self.report
            .failures
            .push(a.outputs.iter().map(|o| o.path().to_owned()).collect());
        self.report.failure_texts.push(message.clone());
        self.reasons[i] = message;
        if self.keys[i].is_some() {
            self.record(i, Outcome::Failed);
        }
        if !self.opts.keep_going {
            self.stopping = true;
        }
    }

    pub(super) fn input_digest(&self, i: usize, k: usize) -> Option<Digest> {
        match self.input_refs[i][k] {
            InputRef::Source(s) => self.src[s as usize].map(|(d, _)| d),
            InputRef::Output(a, o) => self.produced[a as usize][o as usize],
            InputRef::Unknown => None,
        }
    }

    pub(super) fn complete(&mut self, i: usize) {
        self.status[i] = Status::Finished;
        for j in std::mem::take(&mut self.dependents[i]) {
            let j = j as usize;
            self.pending[j] -= 1;
            if self.pending[j] == 0 && self.status[j] == Status::Waiting {
                self.ready.push_back(j);
            }
        }
    }

    pub(super) fn event(
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

    /// The trace slice of an action sent to the remote executor, with
    /// nested slices for its queue and execution time as the executor's
    /// `ExecutedActionMetadata` reports them (ending where the slice ends:
    /// the executor's clock is not this machine's).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn remote_event(
        &mut self,
        i: usize,
        tid: usize,
        start: Duration,
        end: Duration,
        key: Digest,
        cached: bool,
        timing: &crate::remote::exec::RemoteTiming,
    ) {
        if self.opts.profile.is_none() {
            return;
        }
        let cat = if cached {
            "remote_hit"
        } else {
            "remote_executed"
        };
        let a = &self.plan.actions[i];
        let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
        self.events.push(serde_json::json!({
            "name": format!("{} {}", self.name(i), a.mnemonic),
            "cat": cat,
            "ph": "X",
            "pid": 1,
            "tid": tid,
            "ts": start.as_micros() as u64,
            "dur": (end.saturating_sub(start)).as_micros() as u64,
            "args": {
                "key": key.hex(),
                "cache": cat,
                "worker": timing.worker,
                "queue_ms": ms(timing.queue),
                "exec_ms": ms(timing.exec),
                "server_ms": ms(timing.server),
            },
        }));
        let span = end.saturating_sub(start);
        let exec = timing.exec.unwrap_or_default().min(span);
        let queue = timing.queue.unwrap_or_default().min(span - exec);
        for (name, from, dur) in [
            ("remote queue", end - exec - queue, queue),
            ("remote execution", end - exec, exec),
        ] {
            if dur.is_zero() {
                continue;
            }
            self.events.push(serde_json::json!({
                "name": name,
                "cat": cat,
                "ph": "X",
                "pid": 1,
                "tid": tid,
                "ts": from.as_micros() as u64,
                "dur": dur.as_micros() as u64,
            }));
        }
    }
}
