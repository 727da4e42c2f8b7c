//! Worker threads: each takes jobs from the scheduler's queue, runs them
//! through its [`Runner`](super::runner::Runner) (or fetches them from the
//! remote cache, or verifies a cached result's blobs) and sends the result
//! back. Workers share no build state.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_cache::{ActionResult, Digest};

use super::runner::Runners;
use super::sandbox::{self, Isolation, RunOutcome};
use crate::remote::exec::{RemoteExecutor, RemoteOutcome, RemoteTiming};

use super::scheduler::Scheduler;

/// Work for a worker.
pub(super) enum Job {
    /// Run action `idx` (or fetch it from the remote cache by `key`);
    /// `inputs` are its inputs' digests.
    Execute {
        idx: usize,
        inputs: Vec<Digest>,
        key: Digest,
        /// Its toolchain files and their digests (as in its key).
        tools: Vec<(String, Digest)>,
    },
    /// Check the blobs of a cached result of action `idx`.
    Verify { idx: usize, result: ActionResult },
}

/// Where an executed action's result came from.
pub(super) enum Source {
    /// Run here.
    Local,
    /// Found in the remote cache.
    RemoteCache,
    /// Sent to the remote executor (which may have answered from its cache).
    RemoteExec { cached: bool, timing: RemoteTiming },
}

/// What a worker sends back.
pub(super) enum Done {
    Ready(Isolation),
    /// A queued job not started because the build is stopping.
    Dropped {
        idx: usize,
    },
    Executed {
        idx: usize,
        outcome: RunOutcome,
        /// Where the result came from.
        source: Source,
        worker: usize,
        start: Duration,
        end: Duration,
    },
    /// The remote executor could not be reached for this job.
    RemoteLost {
        job: Job,
        why: String,
    },
    Verified {
        idx: usize,
        result: ActionResult,
        ok: Result<(), Digest>,
        worker: usize,
        start: Duration,
        end: Duration,
    },
}

impl Scheduler<'_> {
    pub(super) fn start_workers(
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
        let local = self.local_workers();
        for w in 0..local {
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            let blobs = self.blobs.clone();
            let plan = self.plan.clone();
            let runners = runners.clone();
            let clock = self.clock.clone();
            let stop = self.stop.clone();
            let remote = self.opts.remote.clone();
            let executor = self.opts.executor.clone();
            workers.push(std::thread::spawn(move || {
                let (iso, mut runner) = runners.start(w);
                let _ = tx.send(Done::Ready(iso));
                loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok(job) = job else { break };
                    let start = clock.now();
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
                        Job::Execute {
                            idx, inputs, key, ..
                        } => {
                            let fetched = match &remote {
                                Some(r) => {
                                    let declared: Vec<&str> = plan.actions[idx]
                                        .outputs
                                        .iter()
                                        .map(|o| o.path())
                                        .collect();
                                    r.fetch(&key, &declared, &blobs)
                                }
                                None => None,
                            };
                            let source = if fetched.is_some() {
                                Source::RemoteCache
                            } else {
                                Source::Local
                            };
                            let outcome = match fetched {
                                Some(result) => RunOutcome::Done(result),
                                None => match localize(
                                    executor.as_deref(),
                                    &blobs,
                                    &plan.actions[idx],
                                    &inputs,
                                ) {
                                    Ok(inputs) => runner.run(&plan.actions[idx], &inputs),
                                    Err(message) => RunOutcome::Failed {
                                        message,
                                        log: String::new(),
                                    },
                                },
                            };
                            Done::Executed {
                                idx,
                                outcome,
                                source,
                                worker: w + 1,
                                start,
                                end: clock.now(),
                            }
                        }
                        Job::Verify { idx, result } => {
                            let ok = verify(executor.as_deref(), &blobs, &result);
                            Done::Verified {
                                idx,
                                result,
                                ok,
                                worker: w + 1,
                                start,
                                end: clock.now(),
                            }
                        }
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }));
        }
        if let Some(ex) = &self.opts.executor {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for w in 0..self.opts.jobs.max(1) {
                let rx = rx.clone();
                let tx = done_tx.clone();
                let ex = ex.clone();
                let blobs = self.blobs.clone();
                let plan = self.plan.clone();
                let clock = self.clock.clone();
                let stop = self.stop.clone();
                let root = self.root.to_path_buf();
                workers.push(std::thread::spawn(move || {
                    remote_worker(
                        local + w + 1,
                        &rx,
                        &tx,
                        &ex,
                        &blobs,
                        &plan,
                        &*clock,
                        &stop,
                        &root,
                    )
                }));
            }
            self.remote_tx = Some(tx);
        }
        // Wait for every worker's isolation report (the first decides the summary).
        let mut isolations = Vec::new();
        while isolations.len() < local {
            match done_rx.recv() {
                Ok(Done::Ready(iso)) => isolations.push(iso),
                _ => break,
            }
        }
        self.report.isolation = Some(isolations.into_iter().next().unwrap_or_default());
        self.job_tx = Some(job_tx);
    }

    pub(super) fn send(
        &mut self,
        job: Job,
        runners: &Arc<dyn Runners>,
        done_tx: &Sender<Done>,
        done_rx: &Receiver<Done>,
        workers: &mut Vec<std::thread::JoinHandle<()>>,
    ) {
        self.start_workers(runners, done_tx, done_rx, workers);
        let remote = match &job {
            Job::Execute { idx, .. } => self.runs_remotely(*idx),
            Job::Verify { .. } => false,
        };
        let tx = if remote {
            &self.remote_tx
        } else {
            &self.job_tx
        };
        if let Some(tx) = tx {
            let _ = tx.send(job);
            self.in_flight += 1;
        }
    }

    /// How many workers run actions on this machine.
    pub(super) fn local_workers(&self) -> usize {
        if self.opts.executor.is_some() {
            self.opts.local_jobs.max(1)
        } else {
            self.opts.jobs.min(self.opts.local_jobs).max(1)
        }
    }

    /// Whether action `idx` goes to the remote executor now.
    pub(super) fn runs_remotely(&self, idx: usize) -> bool {
        self.opts
            .executor
            .as_ref()
            .is_some_and(|ex| ex.is_on() && RemoteExecutor::eligible(&self.plan.actions[idx]))
    }
}

/// A worker that sends actions to the remote executor (no sandbox of its
/// own: it only reads inputs and stores outputs).
#[allow(clippy::too_many_arguments)]
fn remote_worker(
    worker: usize,
    rx: &Mutex<Receiver<Job>>,
    tx: &Sender<Done>,
    ex: &RemoteExecutor,
    blobs: &kiln_cache::Blobs,
    plan: &crate::plan::Plan,
    clock: &dyn super::clock::Clock,
    stop: &std::sync::atomic::AtomicBool,
    root: &std::path::Path,
) {
    loop {
        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = job else { break };
        let start = clock.now();
        let Job::Execute {
            idx,
            inputs,
            key,
            tools,
        } = job
        else {
            continue;
        };
        if stop.load(Ordering::SeqCst) {
            if tx.send(Done::Dropped { idx }).is_err() {
                break;
            }
            continue;
        }
        let msg = match ex.execute(&plan.actions[idx], &inputs, &tools, root, blobs, stop) {
            RemoteOutcome::Unavailable(_) if stop.load(Ordering::SeqCst) => Done::Dropped { idx },
            RemoteOutcome::Unavailable(why) => Done::RemoteLost {
                job: Job::Execute {
                    idx,
                    inputs,
                    key,
                    tools,
                },
                why,
            },
            RemoteOutcome::Done {
                result,
                cached,
                timing,
            } => Done::Executed {
                idx,
                outcome: RunOutcome::Done(result),
                source: Source::RemoteExec { cached, timing },
                worker,
                start,
                end: clock.now(),
            },
            RemoteOutcome::Failed { message, log } => Done::Executed {
                idx,
                outcome: RunOutcome::Failed { message, log },
                source: Source::RemoteExec {
                    cached: false,
                    timing: RemoteTiming::default(),
                },
                worker,
                start,
                end: clock.now(),
            },
        };
        if tx.send(msg).is_err() {
            break;
        }
    }
}

/// The inputs of a local action with outputs left on the executor fetched
/// (`--remote-download-outputs=toplevel`): the local blobs to stage.
fn localize(
    ex: Option<&RemoteExecutor>,
    blobs: &kiln_cache::Blobs,
    action: &crate::action::Action,
    inputs: &[Digest],
) -> Result<Vec<Digest>, String> {
    let Some(ex) = ex else {
        return Ok(inputs.to_vec());
    };
    action
        .inputs
        .iter()
        .zip(inputs)
        .map(|(a, d)| {
            if a.is_source() {
                Ok(*d)
            } else {
                ex.localize(blobs, d)
                    .map_err(|e| format!("input `{}`: {e}", a.path()))
            }
        })
        .collect()
}

/// Check a cached result: its local blobs against their digests, its
/// outputs left on the executor by asking it.
fn verify(
    ex: Option<&RemoteExecutor>,
    blobs: &kiln_cache::Blobs,
    result: &ActionResult,
) -> Result<(), Digest> {
    let Some(ex) = ex else {
        return sandbox::verify_result(blobs, result);
    };
    let mut remote = Vec::new();
    for o in &result.outputs {
        if blobs.verify(&o.digest) {
            continue;
        }
        match ex.remote_blob(blobs, &o.digest) {
            Some(r) => remote.push((o.digest, r)),
            None => return Err(o.digest),
        }
    }
    ex.still_remote(blobs, &remote)
}
