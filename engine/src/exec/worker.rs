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

use super::scheduler::Scheduler;

/// Work for a worker.
pub(super) enum Job {
    /// Run action `idx` (or fetch it from the remote cache by `key`);
    /// `inputs` are its inputs' digests.
    Execute {
        idx: usize,
        inputs: Vec<Digest>,
        key: Digest,
    },
    /// Check the blobs of a cached result of action `idx`.
    Verify { idx: usize, result: ActionResult },
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
        /// Fetched from the remote cache instead of run.
        remote: bool,
        worker: usize,
        start: Duration,
        end: Duration,
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
        for w in 0..self.opts.jobs.max(1) {
            let rx = job_rx.clone();
            let tx = done_tx.clone();
            let blobs = self.blobs.clone();
            let plan = self.plan.clone();
            let runners = runners.clone();
            let clock = self.clock.clone();
            let stop = self.stop.clone();
            let remote = self.opts.remote.clone();
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
                        Job::Execute { idx, inputs, key } => {
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
                                end: clock.now(),
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

    pub(super) fn send(
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
}
