//! The seam between the scheduler and what runs an action.
//!
//! The scheduler (`scheduler.rs`) decides what runs; a [`Runner`] runs one
//! action at a time on one worker thread and stores its outputs in the blob
//! store. [`Runners`] makes one runner per worker thread, inside that
//! thread (isolation is per thread), and can kill what runs on interrupt.
//! The real implementation is [`SandboxRunners`] (`sandbox.rs`: namespaces,
//! a fresh tree per action, the one place kiln spawns); the scheduler's
//! unit tests use a fake that records what ran and when. A remote executor
//! is another implementation.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_cache::{Blobs, Digest};

use super::sandbox::{self, Isolation, RunOutcome, Running, Sandbox};
use crate::action::{Action, ExecContext};

/// Runs actions on one worker thread.
pub trait Runner {
    /// Run `action`, whose inputs have the digests `inputs` (in the order
    /// of `action.inputs`); on success its outputs are in the blob store.
    fn run(&mut self, action: &Action, inputs: &[Digest]) -> RunOutcome;
}

/// Makes the runners of a build's worker threads.
pub trait Runners: Send + Sync {
    /// Called on worker thread `slot` before it takes any job: its
    /// isolation (for the build summary) and its runner.
    fn start(&self, slot: usize) -> (Isolation, Box<dyn Runner>);
    /// Stop whatever is running now, as fast as possible (interrupt).
    fn kill_all(&self);
    /// After every worker stopped: remove temporary state.
    fn finish(&self);
}

/// The real runners: each worker thread isolates itself (network and mount
/// namespaces, the workspace hidden) and runs actions in its own sandbox.
pub struct SandboxRunners {
    root: PathBuf,
    /// The workspace root to hide from actions (`None` when the cache is
    /// inside it, which hiding would hide too).
    hide: Option<PathBuf>,
    blobs: Blobs,
    cx: ExecContext,
    running: Arc<Running>,
    /// Every worker's sandbox directory, removed by `finish`.
    bases: Mutex<Vec<PathBuf>>,
}

impl SandboxRunners {
    /// Runners for the workspace at `root` with the blob store `blobs`.
    pub fn new(root: PathBuf, blobs: Blobs, cx: ExecContext) -> SandboxRunners {
        let hide = (!blobs.path(&Digest([0; 32])).starts_with(&root)).then(|| root.clone());
        SandboxRunners {
            root,
            hide,
            blobs,
            cx,
            running: Arc::default(),
            bases: Mutex::default(),
        }
    }
}

impl Runners for SandboxRunners {
    fn start(&self, slot: usize) -> (Isolation, Box<dyn Runner>) {
        let base = self.blobs.temp_path("sandbox");
        self.bases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(base.clone());
        let made = fs::create_dir_all(&base);
        // Opened before the workspace is hidden: sources stay readable to
        // this worker through /proc/self/fd (the descriptor is
        // close-on-exec, so actions do not inherit it).
        let ws_dir = fs::File::open(&self.root);
        // The workspace and the cache stay reachable if they are in /tmp.
        let cache_dir = self
            .blobs
            .tmp_dir()
            .parent()
            .unwrap_or(self.blobs.tmp_dir());
        let keep = [self.root.clone(), cache_dir.to_path_buf()];
        let mut iso = sandbox::isolate_thread(self.hide.as_deref(), &base, &keep);
        let ws_view = match &ws_dir {
            Ok(f) if iso.workspace_hidden => PathBuf::from(format!(
                "/proc/self/fd/{}",
                std::os::fd::AsRawFd::as_raw_fd(f)
            )),
            _ => self.root.clone(),
        };
        let mut sandbox = made
            .map_err(|e| format!("cannot create sandbox `{}`: {e}", base.display()))
            .and_then(|()| Sandbox::new(base, iso.tmpfs, self.cx.clone()));
        match super::limits::Cgroup::new(slot) {
            Ok(cg) => {
                iso.process_limit = true;
                if let Ok(sb) = &mut sandbox {
                    sb.set_cgroup(cg);
                }
            }
            Err(e) => {
                let note = format!(
                    "no process limit ({e}): a fork bomb in an action is bounded only by its timeout"
                );
                iso.note = Some(match iso.note.take() {
                    Some(n) => format!("{n}; {note}"),
                    None => note,
                });
            }
        }
        let runner = SandboxRunner {
            sandbox,
            _ws_dir: ws_dir.ok(),
            ws_view,
            blobs: self.blobs.clone(),
            running: self.running.clone(),
            slot,
        };
        (iso, Box::new(runner))
    }

    fn kill_all(&self) {
        self.running.kill_all();
    }

    fn finish(&self) {
        for d in self.bases.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            sandbox::remove_tree(d);
        }
    }
}

/// One worker's sandbox.
struct SandboxRunner {
    sandbox: Result<Sandbox, String>,
    /// Keeps `ws_view` (a `/proc/self/fd` path) valid.
    _ws_dir: Option<fs::File>,
    ws_view: PathBuf,
    blobs: Blobs,
    running: Arc<Running>,
    slot: usize,
}

impl Runner for SandboxRunner {
    fn run(&mut self, action: &Action, inputs: &[Digest]) -> RunOutcome {
        match &mut self.sandbox {
            Ok(sb) => sb.run(
                &self.blobs,
                &self.ws_view,
                action,
                inputs,
                &self.running,
                self.slot,
            ),
            Err(message) => RunOutcome::Failed {
                message: message.clone(),
                log: String::new(),
            },
        }
    }
}
