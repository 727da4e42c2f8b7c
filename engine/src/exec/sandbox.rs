//! The sandbox an action runs in, and the one place kiln spawns processes.
//!
//! Each action gets a fresh directory holding only its declared inputs
//! (copied from the workspace or the blob store, checked against the
//! digests its key was computed from and made read-only, at the same paths
//! as in the workspace: `pkg/file`, `kiln-out/pkg/file`), the
//! parent directories of its outputs, and a private `TMPDIR`. The command
//! runs there with a scrubbed environment (`SANDBOX_ENV` plus the action's
//! own), stdin closed, stdout and stderr captured to one log (its tail
//! kept), in its own process group (so an interrupt kills the whole tree)
//! and in its worker's pids cgroup (`limits.rs`: a bounded number of
//! processes, all killed when the command ends or times out). Every
//! command has a timeout: its rule's, else [`DEFAULT_TIMEOUT_SECS`].
//!
//! Worker threads isolate themselves once, when they start: a new network
//! namespace (no network), and a new mount namespace in which an empty
//! read-only tmpfs covers the workspace root, so an action cannot read an
//! undeclared file by its absolute path either, and an empty tmpfs covers
//! `/tmp` (the cache and workspace bound back if they live there). Where
//! the kernel refuses (no privilege), `Isolation` says so and the build
//! summary reports it.
//! Materializing outputs into `kiln-out/` is done by the scheduler
//! (`mod.rs`), outside these namespaces.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use kiln_cache::{ActionResult, Blobs, Digest, OutputEntry};

use crate::action::{Action, ExecContext, Execution};

/// How long an action may run when its rule sets no `timeout`.
pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;

/// The environment every action starts from.
pub const SANDBOX_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/nonexistent"),
    ("LANG", "C"),
    ("LC_ALL", "C"),
    ("SOURCE_DATE_EPOCH", "0"),
    ("TZ", "UTC"),
];

/// What isolation the worker threads obtained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Isolation {
    /// Actions run without network.
    pub network: bool,
    /// Actions cannot see the workspace by absolute path.
    pub workspace_hidden: bool,
    /// Sandboxes live on a private tmpfs (fresh per action, cheap).
    pub tmpfs: bool,
    /// Actions see a private, empty `/tmp` (their writes there are lost).
    pub tmp_private: bool,
    /// An action's processes are limited (a pids cgroup) and all killed
    /// when it ends.
    pub process_limit: bool,
    /// Why something is missing, for the summary.
    pub note: Option<String>,
}

/// Isolate the calling thread (and so every process it spawns): a new
/// network namespace, and a mount namespace hiding `hide`, with a private
/// tmpfs mounted on `sandbox_base` and another on `/tmp` (under which the
/// directories of `keep` stay visible).
pub fn isolate_thread(hide: Option<&Path>, sandbox_base: &Path, keep: &[PathBuf]) -> Isolation {
    use nix::mount::{MsFlags, mount};
    use nix::sched::{CloneFlags, unshare};
    let mut iso = Isolation::default();
    let mut notes = Vec::new();
    let host_net = fs::File::open("/proc/thread-self/ns/net");
    match unshare(CloneFlags::CLONE_NEWNET) {
        Ok(()) => {
            iso.network = true;
            if let (Ok(host), Ok(own)) = (host_net, fs::File::open("/proc/thread-self/ns/net")) {
                NET_NAMESPACES.with(|n| *n.borrow_mut() = Some((host, own)));
            }
        }
        Err(e) => notes.push(format!(
            "no network namespace ({e}): actions can reach the network"
        )),
    }
    let ns = unshare(CloneFlags::CLONE_NEWNS).and_then(|()| {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
    });
    match ns {
        Ok(()) => {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            match cover_tmp(keep) {
                Ok(()) => iso.tmp_private = true,
                Err(e) => notes.push(format!(
                    "cannot give actions a private /tmp ({e}): their writes there are visible"
                )),
            }
            iso.tmpfs = mount(Some("tmpfs"), sandbox_base, Some("tmpfs"), flags, Some("mode=0755")).is_ok();
            if let Some(dir) = hide {
                match mount(Some("tmpfs"), dir, Some("tmpfs"), flags | MsFlags::MS_RDONLY, Some("size=4k,mode=0555")) {
                    Ok(()) => iso.workspace_hidden = true,
                    Err(e) => notes.push(format!("cannot hide the workspace ({e}): actions could read undeclared files by absolute path")),
                }
            }
        }
        Err(e) => notes.push(format!("no mount namespace ({e}): actions could read undeclared workspace files by absolute path")),
    }
    if !notes.is_empty() {
        iso.note = Some(notes.join("; "));
    }
    iso
}

/// Mount an empty tmpfs on `/tmp` in this thread's mount namespace, and
/// bind the directories of `keep` that were under it (the cache, the
/// workspace) back at their paths, through a descriptor of the old `/tmp`.
fn cover_tmp(keep: &[PathBuf]) -> Result<(), String> {
    use nix::mount::{MsFlags, mount};
    let old = fs::File::open("/tmp").map_err(|e| e.to_string())?;
    let under: Vec<PathBuf> = keep
        .iter()
        .filter_map(|k| fs::canonicalize(k).ok())
        .filter(|k| k.starts_with("/tmp"))
        .collect();
    mount(
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777"),
    )
    .map_err(|e| e.to_string())?;
    let old_view = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&old));
    for k in under {
        let rel = k.strip_prefix("/tmp").unwrap_or(&k);
        let src = Path::new(&old_view).join(rel);
        let bound = fs::create_dir_all(&k)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                mount(
                    Some(&src),
                    &k,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| e.to_string())
            });
        if let Err(e) = bound {
            // Without it the worker cannot reach the cache: undo.
            let _ = nix::mount::umount2("/tmp", nix::mount::MntFlags::MNT_DETACH);
            return Err(format!("cannot keep `{}` visible: {e}", k.display()));
        }
    }
    Ok(())
}

thread_local! {
    /// This worker's way back to the host network and into its own empty
    /// one, for actions that declare `network = True` (fetch steps).
    static NET_NAMESPACES: std::cell::RefCell<Option<(fs::File, fs::File)>> =
        const { std::cell::RefCell::new(None) };
    /// Set when this worker could not return to its own namespace.
    static NET_LOST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` (which spawns a process) in the host's network namespace, then
/// return this thread to its own.
fn with_host_network<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    use nix::sched::{CloneFlags, setns};
    NET_NAMESPACES.with(|n| {
        let n = n.borrow();
        let Some((host, own)) = n.as_ref() else {
            return Ok(f());
        };
        setns(host, CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("cannot enter the host network namespace: {e}"))?;
        let out = f();
        // Staying in the host namespace would give later actions network:
        // if the way back fails, this worker refuses every later action.
        if let Err(e) = setns(own, CloneFlags::CLONE_NEWNET) {
            NET_LOST.with(|l| l.set(true));
            return Err(format!(
                "cannot return to the sandbox network namespace: {e}"
            ));
        }
        Ok(out)
    })
}

/// Process groups of running actions, so an interrupt can kill them.
#[derive(Default)]
pub struct Running(Mutex<HashMap<usize, i32>>);

impl Running {
    /// Kill every running action's process group.
    pub fn kill_all(&self) {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for pgid in map.values() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(*pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// How an execution ended.
pub enum RunOutcome {
    /// Success: outputs stored in the blob store.
    Done(ActionResult),
    /// The command failed or broke the contract.
    Failed {
        /// What went wrong.
        message: String,
        /// Captured stdout+stderr (the tail).
        log: String,
    },
    /// kiln itself could not go on: the disk is full or the cache is not
    /// writable. The build stops with exit 36.
    Local {
        /// What went wrong, with the path.
        message: String,
    },
}

/// Whether an I/O error is the machine's (disk full, quota, read-only
/// filesystem), not the action's.
pub fn is_local_fault(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        StorageFull | QuotaExceeded | ReadOnlyFilesystem | FileTooLarge
    )
}

/// A failure to set up, run or collect an action.
struct SbError {
    message: String,
    local: bool,
}

impl From<String> for SbError {
    fn from(message: String) -> Self {
        SbError {
            message,
            local: false,
        }
    }
}

/// A cache write's failure, marked local when the machine is at fault.
fn cache_write(e: kiln_cache::CacheError) -> SbError {
    let local = match &e {
        kiln_cache::CacheError::Io { source, .. } => is_local_fault(source),
        _ => false,
    };
    SbError {
        message: e.to_string(),
        local,
    }
}

fn io<T>(r: std::io::Result<T>, what: &str, p: &Path) -> Result<T, String> {
    r.map_err(|e| format!("{what} `{}`: {e}", p.display()))
}

/// Read-only-safe recursive removal (actions may leave read-only dirs).
pub fn remove_tree(p: &Path) {
    if fs::remove_dir_all(p).is_ok() {
        return;
    }
    fn chmod_all(p: &Path) {
        if let Ok(rd) = fs::read_dir(p) {
            let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    chmod_all(&e.path());
                }
            }
        }
    }
    chmod_all(p);
    let _ = fs::remove_dir_all(p);
}

/// How much of an action's output is kept for messages.
const LOG_TAIL: usize = 64 * 1024;

/// Directories a sandbox keeps before it is wiped and recreated.
const MAX_KEPT_DIRS: usize = 256;

/// One worker's sandbox directory, reused from action to action.
///
/// Invariant between actions: `root` and `tmp` hold no files; the only
/// directories under `root` are those in `dirs`. Reuse matters: creating and
/// deleting directories for every action makes the filesystem's inode
/// allocator slower and slower (ext4 scans recently freed inodes), so the
/// tree is kept and only files are removed, and it is wiped only when it
/// has grown past `MAX_KEPT_DIRS` directories.
pub struct Sandbox {
    base: PathBuf,
    root: PathBuf,
    tmp: PathBuf,
    dirs: HashSet<PathBuf>,
    /// On a private tmpfs: every action gets a fresh tree.
    fresh: bool,
    /// Handed to in-process action kinds.
    cx: ExecContext,
    /// The worker's process limit, when the machine allows one.
    cgroup: Option<super::limits::Cgroup>,
}

impl Sandbox {
    /// A new, empty sandbox in `base` (an existing directory; a private
    /// tmpfs when `tmpfs`, where each action gets a fresh tree).
    pub fn new(base: PathBuf, tmpfs: bool, cx: ExecContext) -> Result<Self, String> {
        let root = base.join("root");
        let tmp = base.join("tmp");
        io(fs::create_dir_all(&root), "cannot create sandbox", &root)?;
        io(fs::create_dir_all(&tmp), "cannot create sandbox", &tmp)?;
        Ok(Sandbox {
            base,
            root,
            tmp,
            dirs: HashSet::new(),
            fresh: tmpfs,
            cx,
            cgroup: None,
        })
    }

    /// Limit the processes of every action run here.
    pub fn set_cgroup(&mut self, cg: super::limits::Cgroup) {
        self.cgroup = Some(cg);
    }

    fn ensure_dir(&mut self, rel: &Path) -> Result<(), String> {
        if rel.as_os_str().is_empty() || self.dirs.contains(rel) {
            return Ok(());
        }
        let p = self.root.join(rel);
        io(
            fs::create_dir_all(&p),
            "cannot create sandbox directory",
            &p,
        )?;
        let mut cur = rel;
        loop {
            self.dirs.insert(cur.to_path_buf());
            match cur.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => cur = parent,
                _ => break,
            }
        }
        Ok(())
    }

    /// Delete the whole tree under `root` (and `tmp`) and start empty.
    fn wipe(&mut self, tmp_too: bool) -> Result<(), String> {
        self.dirs.clear();
        let dirs = if tmp_too {
            vec![self.root.clone(), self.tmp.clone()]
        } else {
            vec![self.root.clone()]
        };
        for d in dirs {
            remove_tree(&d);
            io(fs::create_dir_all(&d), "cannot create sandbox", &d)?;
        }
        Ok(())
    }

    /// Remove every file (and unexpected directory) the last action left.
    fn reset(&mut self) -> Result<(), String> {
        if self.fresh {
            return self.wipe(true);
        }
        if self.dirs.len() > MAX_KEPT_DIRS {
            self.wipe(false)?;
        }
        let mut scan: Vec<PathBuf> = self.dirs.iter().map(|d| self.root.join(d)).collect();
        scan.push(self.root.clone());
        scan.push(self.tmp.clone());
        for dir in scan {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                let p = e.path();
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let known = p
                    .strip_prefix(&self.root)
                    .map(|r| self.dirs.contains(r))
                    .unwrap_or(false);
                if is_dir && !known {
                    remove_tree(&p);
                } else if !is_dir {
                    let _ = fs::remove_file(&p);
                }
            }
        }
        if fs::read_dir(&self.tmp)
            .map(|mut r| r.next().is_some())
            .unwrap_or(true)
        {
            remove_tree(&self.tmp);
            io(
                fs::create_dir_all(&self.tmp),
                "cannot create sandbox",
                &self.tmp,
            )?;
        }
        Ok(())
    }

    /// Run `action`; `inputs` are the digests of `action.inputs`. Outputs of
    /// other actions come from the blob store; source files are copied from
    /// `workspace` (a view of the workspace root that stays readable to the
    /// worker after the root is hidden) and checked against their digest.
    /// `slot` identifies the worker in `running`.
    pub fn run(
        &mut self,
        blobs: &Blobs,
        workspace: &Path,
        action: &Action,
        inputs: &[Digest],
        running: &Running,
        slot: usize,
    ) -> RunOutcome {
        let result = self.run_in(blobs, workspace, action, inputs, running, slot);
        let reset = self.reset();
        match (result, reset) {
            (Ok(o), Ok(())) => o,
            (
                Err(SbError {
                    message,
                    local: true,
                }),
                _,
            ) => RunOutcome::Local { message },
            (Ok(_), Err(message))
            | (
                Err(SbError {
                    message,
                    local: false,
                }),
                _,
            ) => RunOutcome::Failed {
                message,
                log: String::new(),
            },
        }
    }

    fn run_in(
        &mut self,
        blobs: &Blobs,
        workspace: &Path,
        action: &Action,
        inputs: &[Digest],
        running: &Running,
        slot: usize,
    ) -> Result<RunOutcome, SbError> {
        for (a, d) in action.inputs.iter().zip(inputs) {
            let rel = Path::new(a.path());
            self.ensure_dir(rel.parent().unwrap_or(Path::new("")))?;
            let dest = self.root.join(rel);
            // Every input is copied and checked against its digest: a source
            // may have changed since it was hashed, a blob may be corrupt.
            let from = if a.is_source() {
                workspace.join(rel)
            } else {
                blobs.path(d)
            };
            copy_checked(&from, &dest, d).map_err(|e| SbError {
                local: is_local_fault(&e),
                message: if a.is_source() {
                    format!("cannot stage source `{}`: {e}", a.path())
                } else {
                    format!(
                        "cannot stage `{}` from the cache ({e}); run `kiln clean` and build again",
                        a.path()
                    )
                },
            })?;
        }
        for o in &action.outputs {
            self.ensure_dir(Path::new(o.path()).parent().unwrap_or(Path::new("")))?;
        }
        let mut log = String::new();
        if NET_LOST.with(|l| l.get()) {
            return Err(
                "this worker lost its network isolation; run the build again"
                    .to_owned()
                    .into(),
            );
        }
        match action.kind.execute(&self.cx, &self.root, action) {
            Execution::Done(Err(message)) => {
                return Ok(RunOutcome::Failed {
                    message,
                    log: String::new(),
                });
            }
            Execution::Done(Ok(())) => {}
            Execution::Spawn(r) => {
                let (mut reader, writer) =
                    std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
                let writer2 = writer
                    .try_clone()
                    .map_err(|e| format!("cannot create a pipe: {e}"))?;
                // The one place kiln spawns an action (see clippy.toml).
                #[allow(clippy::disallowed_methods)]
                let mut cmd = Command::new(&r.argv[0]);
                cmd.args(&r.argv[1..])
                    .current_dir(&self.root)
                    .env_clear()
                    .envs(SANDBOX_ENV.iter().copied())
                    .env("TMPDIR", &self.tmp)
                    .envs(&r.env)
                    .stdin(Stdio::null())
                    .stdout(writer)
                    .stderr(writer2)
                    .process_group(0);
                if let Some(cg) = &self.cgroup {
                    cg.enter(&mut cmd)
                        .map_err(|e| format!("cannot limit the action's processes: {e}"))?;
                }
                let spawned = if r.network {
                    with_host_network(|| cmd.spawn())?
                } else {
                    cmd.spawn()
                };
                drop(cmd);
                let mut child = spawned.map_err(|e| format!("cannot run `{}`: {e}", r.argv[0]))?;
                running
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(slot, child.id() as i32);
                kiln_cache::fault::point("action");
                // The rule's timeout (or the default): a watchdog kills the
                // process group and the cgroup when it passes (and is told
                // by `done` when it need not).
                let timed_out = Arc::new(AtomicBool::new(false));
                let timeout = r.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS);
                let (done, watchdog) = {
                    let (done, wait) = mpsc::channel::<()>();
                    let pgid = child.id() as i32;
                    let flag = timed_out.clone();
                    let cgroup = self.cgroup.as_ref().map(|c| c.dir().to_path_buf());
                    let t = std::thread::spawn(move || {
                        if let Err(mpsc::RecvTimeoutError::Timeout) =
                            wait.recv_timeout(Duration::from_secs(timeout))
                        {
                            flag.store(true, Ordering::SeqCst);
                            let _ = nix::sys::signal::killpg(
                                nix::unistd::Pid::from_raw(pgid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                            // Processes that left the group (setsid) too.
                            if let Some(dir) = cgroup {
                                super::limits::kill_cgroup(&dir);
                            }
                        }
                    });
                    (done, t)
                };
                // Output is read on its own thread: a process the command
                // left behind may hold the pipe open after the command
                // exits, until it is killed below.
                let collector = std::thread::spawn(move || {
                    let mut tail: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        match reader.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                tail.extend_from_slice(&buf[..n]);
                                if tail.len() > 2 * LOG_TAIL {
                                    tail.drain(..tail.len() - LOG_TAIL);
                                }
                            }
                        }
                    }
                    tail
                });
                let status = child.wait();
                // Nothing an action started outlives it.
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                if let Some(cg) = &self.cgroup {
                    cg.kill_all();
                }
                let mut tail = collector.join().unwrap_or_default();
                drop(done);
                let _ = watchdog.join();
                running
                    .0
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&slot);
                let status = status.map_err(|e| format!("cannot wait for `{}`: {e}", r.argv[0]))?;
                if tail.len() > LOG_TAIL {
                    tail.drain(..tail.len() - LOG_TAIL);
                }
                log = String::from_utf8_lossy(&tail).into_owned();
                if timed_out.load(Ordering::SeqCst) {
                    return Ok(RunOutcome::Failed {
                        message: match r.timeout {
                            Some(t) => format!(
                                "the command timed out after {t} s (the rule's `timeout`) and was killed"
                            ),
                            None => format!(
                                "the command timed out after {timeout} s (the default; set the rule's `timeout` to allow more) and was killed"
                            ),
                        },
                        log,
                    });
                }
                if !status.success() {
                    let how = match (status.code(), status.signal()) {
                        (Some(c), _) => format!("exited with status {c}"),
                        (None, Some(s)) => format!("was killed by signal {s}"),
                        _ => "failed".to_owned(),
                    };
                    return Ok(RunOutcome::Failed {
                        message: format!("the command {how}"),
                        log,
                    });
                }
            }
        }
        let mut outputs = Vec::with_capacity(action.outputs.len());
        let mut missing = Vec::new();
        for o in &action.outputs {
            let p = self.root.join(o.path());
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => {
                    let d = io(Digest::of_file(&p), "cannot read output", &p)?;
                    let executable = m.permissions().mode() & 0o111 != 0;
                    blobs.put_file(&p, &d, executable).map_err(cache_write)?;
                    outputs.push(OutputEntry {
                        path: o.path().to_owned(),
                        digest: d,
                        size: m.len(),
                        executable,
                    });
                }
                Ok(_) => missing.push(format!("`{}` (not a regular file)", o.path())),
                Err(_) => missing.push(format!("`{}`", o.path())),
            }
        }
        if !missing.is_empty() {
            return Ok(RunOutcome::Failed {
                message: format!(
                    "the command succeeded but did not create its declared output(s) {}",
                    missing.join(", ")
                ),
                log,
            });
        }
        let log = if log.is_empty() {
            None
        } else {
            Some(blobs.put_bytes(log.as_bytes()).map_err(cache_write)?)
        };
        Ok(RunOutcome::Done(ActionResult { outputs, log }))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        remove_tree(&self.root);
        remove_tree(&self.tmp);
        // On a tmpfs `base` is a mount point; the scheduler removes it.
        let _ = fs::remove_dir(&self.base);
    }
}

/// Copy `src` to `dest`, checking the bytes hash to `want`; `dest` is left
/// read-only, and executable when `src` is (a tool, a script).
fn copy_checked(src: &Path, dest: &Path, want: &Digest) -> std::io::Result<()> {
    use std::io::Write;
    let mut from = fs::File::open(src)?;
    let mut to = fs::File::create(dest)?;
    let executable = from.metadata()?.permissions().mode() & 0o111 != 0;
    to.set_permissions(fs::Permissions::from_mode(if executable {
        0o555
    } else {
        0o444
    }))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
    if Digest(*h.finalize().as_bytes()) != *want {
        return Err(std::io::Error::other(
            "the file changed during the build; build again",
        ));
    }
    Ok(())
}

/// Check that every output blob of a cached result is intact.
pub fn verify_result(blobs: &Blobs, r: &ActionResult) -> Result<(), Digest> {
    for o in &r.outputs {
        if !blobs.verify(&o.digest) {
            return Err(o.digest);
        }
    }
    Ok(())
}
