//! Remote execution over REAPI v2: one spawned action becomes a `Command`
//! and an `Action` whose input root is a Merkle tree of `Directory`
//! messages; the blobs the server lacks are uploaded (`FindMissingBlobs`
//! first for blobs over 16 KiB; smaller ones are sent unasked), the action
//! is `Execute`d and its operation followed to the end, and its result is checked as a remote cache hit is (exactly the declared
//! outputs, every blob verified) before its outputs enter the local store.
//!
//! What reaches the executor:
//! - `Command`: the argv; the environment a local action gets (the
//!   sandbox's scrubbed set, `TMPDIR=/tmp`, the action's own), sorted by
//!   name; `output_paths` = the declared outputs, sorted; the platform.
//! - `Action`: the command and input root digests, the rule's `timeout`,
//!   `platform` = the action's `exec_properties` (sorted by name), and
//!   `salt` = the toolchain identity: BLAKE3 over the sorted (absolute
//!   path, BLAKE3 digest) pairs of the toolchain files that also enter
//!   kiln's own action key. Two clients with different toolchains at the
//!   same paths therefore never share an executor's cached result; the
//!   executor is expected to offer the same toolchain at the same absolute
//!   paths (its image, or mounts chosen by `exec_properties`).
//!
//! Input files are not executable, as in the local sandbox (inputs are
//! staged read-only there). Digests use the server's function; the local
//! store stays BLAKE3, and the BLAKE3 -> wire digest of every file seen is
//! kept for the build, as is the set of blobs the server is known to hold,
//! so a shared subtree or input is hashed and uploaded once.
//!
//! Faults: an action that fails remotely is a build failure. An executor
//! that cannot be reached (or goes away mid-build) is reported once; the
//! scheduler then either runs what is left locally (`--remote-local-fallback`)
//! or fails the build naming the endpoint.

// tonic's error type is `Status`; see grpc.rs.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kiln_cache::{ActionResult, Blobs, Digest, OutputEntry};
use prost::Message as _;

use super::grpc::{self, ExecuteEnd, Grpc};
use super::proto;
use super::{Backend, HashFn, RemoteOptions, RemoteSetupError, WireDigest};
use crate::action::Action;
use crate::action::kinds::ActionKind;

/// gRPC status codes the executor answers with.
mod code {
    pub const CANCELLED: i32 = 1;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
}

/// Blobs up to this size are uploaded without `FindMissingBlobs` first.
const SEND_UNASKED: i64 = 16 * 1024;

/// Most of an action's output kept for a failure message (as locally).
const LOG_TAIL: usize = 64 * 1024;

/// Counters of one build's remote execution traffic.
#[derive(Debug, Default)]
pub struct ExecTraffic {
    /// Actions that ran on the executor.
    pub executed: AtomicU64,
    /// Actions the executor answered from its action cache.
    pub cached: AtomicU64,
    /// Blob bytes uploaded (inputs, directories, commands, actions).
    pub bytes_up: AtomicU64,
    /// Blob bytes downloaded (outputs, logs).
    pub bytes_down: AtomicU64,
}

/// Where the executor's time went, from `ExecutedActionMetadata`.
#[derive(Clone, Debug, Default)]
pub struct RemoteTiming {
    /// The worker that ran it.
    pub worker: String,
    /// Queued until a worker took it (when the server says).
    pub queue: Option<Duration>,
    /// The command itself.
    pub exec: Option<Duration>,
    /// Queued until the worker finished (input fetch, sandbox and output
    /// upload included): what is not in it is the client's round trip.
    pub server: Option<Duration>,
}

/// How one remote execution ended.
pub enum RemoteOutcome {
    /// It succeeded: its outputs are in the local store.
    Done {
        /// The result, as a local run would have made it.
        result: ActionResult,
        /// The executor answered from its action cache.
        cached: bool,
        /// Its metadata.
        timing: RemoteTiming,
    },
    /// The action failed (a build failure, never retried locally).
    Failed {
        /// What went wrong.
        message: String,
        /// Its stdout then stderr (the tail).
        log: String,
    },
    /// The executor could not be reached or went away.
    Unavailable(String),
}

/// A REAPI execution service for one build.
pub struct RemoteExecutor {
    pub(super) grpc: Grpc,
    /// The endpoint, as given.
    pub url: String,
    /// Run the remaining actions locally when the executor is lost.
    pub fallback: bool,
    off: AtomicBool,
    warning: Mutex<Option<String>>,
    /// Blobs the server is known to hold.
    present: Mutex<HashSet<WireDigest>>,
    /// The wire digest of each local blob seen this build.
    wire_of: Mutex<HashMap<Digest, WireDigest>>,
    /// What went over the wire.
    pub traffic: ExecTraffic,
    /// Which outputs are downloaded.
    pub(super) download: super::lazy::Download,
    /// The local cache (for the table of outputs left remote).
    pub(super) cache_dir: std::path::PathBuf,
    pub(super) refs: std::sync::OnceLock<Result<kiln_cache::RemoteRefs, String>>,
}

impl std::fmt::Debug for RemoteExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteExecutor({})", self.url)
    }
}

/// One action as the executor sees it.
struct Prepared {
    action_digest: WireDigest,
    /// Every blob the action needs on the server, and how to get its bytes.
    needs: Vec<(WireDigest, Source)>,
}

/// Why an upload failed.
enum Upload {
    /// The server could not be reached or refused.
    Io(String),
    /// An input exists only on the server, which has lost it.
    Lost(String),
}

/// Where the bytes of a blob to upload come from.
#[derive(Clone)]
enum Source {
    Bytes(std::sync::Arc<Vec<u8>>),
    /// A file whose BLAKE3 digest must be this.
    File(std::path::PathBuf, Digest),
    /// An output left on the server (`toplevel`), not here: named by its
    /// execution path.
    Remote(String),
}

impl RemoteExecutor {
    /// A client for `options.url` (`grpc://` or `grpcs://`; no connection
    /// is made yet), downloading outputs as `download` says into the cache
    /// at `cache_dir`.
    pub fn new(
        options: &RemoteOptions,
        fallback: bool,
        download: super::lazy::Download,
        cache_dir: &Path,
    ) -> Result<RemoteExecutor, RemoteSetupError> {
        let url = options.url.clone();
        let client = RemoteSetupError::Client;
        let grpc = if let Some(rest) = url.strip_prefix("grpc://") {
            Grpc::new(&format!("http://{rest}"), false, options).map_err(client)?
        } else if let Some(rest) = url.strip_prefix("grpcs://") {
            Grpc::new(&format!("https://{rest}"), true, options).map_err(client)?
        } else {
            return Err(RemoteSetupError::ExecScheme(url));
        };
        Ok(RemoteExecutor {
            grpc,
            url,
            fallback,
            off: AtomicBool::new(false),
            warning: Mutex::new(None),
            present: Mutex::default(),
            wire_of: Mutex::default(),
            traffic: ExecTraffic::default(),
            download,
            cache_dir: cache_dir.to_path_buf(),
            refs: std::sync::OnceLock::new(),
        })
    }

    /// Whether actions still go to the executor.
    pub fn is_on(&self) -> bool {
        !self.off.load(Ordering::SeqCst)
    }

    /// The executor is lost: switch it off; the first caller gets the
    /// warning to print (`None` for later ones).
    pub fn lost(&self, why: &str) -> Option<String> {
        self.off.store(true, Ordering::SeqCst);
        let mut w = self.warning.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_some() {
            return None;
        }
        let text = format!("remote executor {}: {why}", self.url);
        *w = Some(text.clone());
        Some(text)
    }

    /// Whether `action` may run on the executor: spawned commands without
    /// network that no tag or rule keeps local.
    pub fn eligible(action: &Action) -> bool {
        matches!(&action.kind, ActionKind::Command(c) if !c.network && !c.no_remote_exec)
    }

    /// Run `action` remotely. `inputs` are its inputs' digests (in the
    /// order of `action.inputs`), `tools` its toolchain files with their
    /// digests (as in its key); sources are read under `workspace`, other
    /// inputs from `blobs`, where its outputs are stored. `cancel` stops
    /// waiting (the build was interrupted).
    pub fn execute(
        &self,
        action: &Action,
        inputs: &[Digest],
        tools: &[(String, Digest)],
        workspace: &Path,
        blobs: &Blobs,
        cancel: &AtomicBool,
    ) -> RemoteOutcome {
        if !self.is_on() {
            return RemoteOutcome::Unavailable("switched off earlier in this build".to_owned());
        }
        let ActionKind::Command(cmd) = &action.kind else {
            return RemoteOutcome::Failed {
                message: "only spawned commands run remotely (an internal error)".to_owned(),
                log: String::new(),
            };
        };
        let hf = match self.grpc.hash_fn() {
            Ok(h) => h,
            Err(e) => return RemoteOutcome::Unavailable(format!("cannot reach the server: {e}")),
        };
        match self.grpc.exec_enabled() {
            Ok(true) => {}
            Ok(false) => {
                return RemoteOutcome::Unavailable(
                    "the server does not offer remote execution (its capabilities say exec_enabled = false)"
                        .to_owned(),
                );
            }
            Err(e) => return RemoteOutcome::Unavailable(format!("cannot reach the server: {e}")),
        }
        let prepared = match self.prepare(hf, action, cmd, inputs, tools, workspace, blobs) {
            Ok(p) => p,
            Err(message) => {
                return RemoteOutcome::Failed {
                    message,
                    log: String::new(),
                };
            }
        };
        let mut skip_cache = cmd.no_cache;
        let mut retried_missing = false;
        loop {
            match self.upload(hf, &prepared) {
                Ok(()) => {}
                Err(Upload::Io(e)) => return RemoteOutcome::Unavailable(e),
                Err(Upload::Lost(message)) => {
                    return RemoteOutcome::Failed {
                        message,
                        log: String::new(),
                    };
                }
            }
            let resp = match self
                .grpc
                .execute(&prepared.action_digest, skip_cache, cancel)
            {
                ExecuteEnd::Done(r) => *r,
                ExecuteEnd::Lost(e) => return RemoteOutcome::Unavailable(e),
                ExecuteEnd::Error(s) => {
                    if retryable_missing(s.code) && !retried_missing {
                        retried_missing = true;
                        self.forget(&prepared);
                        continue;
                    }
                    return status_outcome(&s, "the executor refused the action");
                }
            };
            let status = resp.status.clone().unwrap_or_default();
            if status.code != 0 {
                if retryable_missing(status.code) && !retried_missing {
                    retried_missing = true;
                    self.forget(&prepared);
                    continue;
                }
                if status.code == code::DEADLINE_EXCEEDED {
                    let log = resp
                        .result
                        .as_ref()
                        .map(|r| self.log_of(hf, r))
                        .unwrap_or_default();
                    let secs = match &action.kind {
                        ActionKind::Command(c) => c.timeout.unwrap_or(0),
                        _ => 0,
                    };
                    return RemoteOutcome::Failed {
                        message: format!(
                            "the command timed out after {secs} s on the remote executor"
                        ),
                        log,
                    };
                }
                return status_outcome(&status, "the action did not run to completion");
            }
            let Some(result) = resp.result else {
                return RemoteOutcome::Failed {
                    message: "the executor's response holds no result".to_owned(),
                    log: String::new(),
                };
            };
            if result.exit_code != 0 && resp.cached_result && !skip_cache {
                // A failure from the executor's cache: run it again, as a
                // local build would (a flaky failure is not a result).
                skip_cache = true;
                continue;
            }
            return self.finish(hf, action, result, resp.cached_result, blobs);
        }
    }

    /// Build the action's Merkle tree, `Command` and `Action`.
    #[allow(clippy::too_many_arguments)]
    fn prepare(
        &self,
        hf: HashFn,
        action: &Action,
        cmd: &crate::action::kinds::command::CommandAction,
        inputs: &[Digest],
        tools: &[(String, Digest)],
        workspace: &Path,
        blobs: &Blobs,
    ) -> Result<Prepared, String> {
        let mut needs: Vec<(WireDigest, Source)> = Vec::new();
        // The input root: directory path -> its files and subdirectories.
        let mut dirs: BTreeMap<String, Dir> = BTreeMap::new();
        dirs.insert(String::new(), Dir::default());
        for (a, d) in action.inputs.iter().zip(inputs) {
            let path = a.path();
            // An output left on the server: named by its server digest,
            // with the bytes of its local copy if one was fetched.
            if let Some(r) = (!a.is_source())
                .then(|| self.remote_blob(blobs, d))
                .flatten()
            {
                let wd = WireDigest {
                    hash: r.hash,
                    size: r.size as i64,
                };
                let src = match r.local.filter(|l| blobs.contains(l)) {
                    Some(l) => Source::File(blobs.path(&l), l),
                    None => Source::Remote(path.to_owned()),
                };
                needs.push((wd.clone(), src));
                add_file(&mut dirs, path, wd)?;
                continue;
            }
            let file = if a.is_source() {
                workspace.join(path)
            } else {
                blobs.path(d)
            };
            let wd = self.wire_digest(hf, &file, d).map_err(|e| {
                if a.is_source() {
                    format!("cannot read source `{path}`: {e}")
                } else {
                    format!("cannot read `{path}` from the cache ({e}); run `kiln clean` and build again")
                }
            })?;
            needs.push((wd.clone(), Source::File(file, *d)));
            add_file(&mut dirs, path, wd)?;
        }
        // Children before parents: deepest paths first.
        let mut order: Vec<String> = dirs.keys().cloned().collect();
        order.sort_by_key(|p| {
            std::cmp::Reverse(if p.is_empty() {
                0
            } else {
                p.matches('/').count() + 1
            })
        });
        let mut digests: HashMap<String, WireDigest> = HashMap::new();
        for p in order {
            let dir = &dirs[&p];
            if let Some(clash) = dir.files.keys().find(|f| dir.subdirs.contains(*f)) {
                return Err(format!(
                    "`{}` is both an input file and a directory of inputs",
                    join(&p, clash)
                ));
            }
            let msg = proto::Directory {
                files: dir
                    .files
                    .iter()
                    .map(|(name, d)| proto::FileNode {
                        name: name.clone(),
                        digest: Some(grpc::wire(d)),
                        is_executable: false,
                    })
                    .collect(),
                directories: dir
                    .subdirs
                    .iter()
                    .map(|name| proto::DirectoryNode {
                        name: name.clone(),
                        digest: Some(grpc::wire(&digests[&join(&p, name)])),
                    })
                    .collect(),
            };
            let bytes = msg.encode_to_vec();
            let d = hf.digest(&bytes);
            needs.push((d.clone(), Source::Bytes(bytes.into())));
            digests.insert(p, d);
        }
        let root = digests[""].clone();

        let mut env: BTreeMap<String, String> = crate::exec::sandbox::SANDBOX_ENV
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        env.insert("TMPDIR".to_owned(), "/tmp".to_owned());
        env.extend(cmd.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let platform = (!cmd.exec_properties.is_empty()).then(|| proto::Platform {
            properties: cmd
                .exec_properties
                .iter()
                .map(|(k, v)| proto::PlatformProperty {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        });
        let outputs: BTreeSet<&str> = action.outputs.iter().map(|o| o.path()).collect();
        let command = proto::Command {
            arguments: cmd.argv.clone(),
            environment_variables: env
                .into_iter()
                .map(|(name, value)| proto::EnvironmentVariable { name, value })
                .collect(),
            output_files: Vec::new(),
            platform: platform.clone(),
            working_directory: String::new(),
            output_paths: outputs.iter().map(|s| (*s).to_owned()).collect(),
        };
        let command_bytes = command.encode_to_vec();
        let command_digest = hf.digest(&command_bytes);
        needs.push((command_digest.clone(), Source::Bytes(command_bytes.into())));
        let action_msg = proto::Action {
            command_digest: Some(grpc::wire(&command_digest)),
            input_root_digest: Some(grpc::wire(&root)),
            timeout: cmd.timeout.map(|s| proto::Duration {
                seconds: s as i64,
                nanos: 0,
            }),
            do_not_cache: cmd.no_cache,
            salt: tool_salt(tools).to_vec(),
            platform,
        };
        let action_bytes = action_msg.encode_to_vec();
        let action_digest = hf.digest(&action_bytes);
        needs.push((action_digest.clone(), Source::Bytes(action_bytes.into())));
        Ok(Prepared {
            action_digest,
            needs,
        })
    }

    /// The wire digest of the file at `path`, whose BLAKE3 digest must be
    /// `d` (checked when the file is read; remembered for the build).
    fn wire_digest(&self, hf: HashFn, path: &Path, d: &Digest) -> Result<WireDigest, String> {
        if hf == HashFn::Blake3 {
            return Ok(WireDigest {
                hash: d.hex(),
                size: std::fs::metadata(path).map_err(|e| e.to_string())?.len() as i64,
            });
        }
        if let Some(w) = self.lock_wire().get(d) {
            return Ok(w.clone());
        }
        let bytes = read_checked(path, d)?;
        let w = hf.digest(&bytes);
        self.lock_wire().insert(*d, w.clone());
        Ok(w)
    }

    /// Remember that the local digest `d` is `w` on the server.
    pub(super) fn note_wire(&self, d: Digest, w: WireDigest) {
        self.lock_wire().insert(d, w);
    }

    /// The server is known to hold these blobs.
    pub(super) fn mark_present(&self, ws: Vec<WireDigest>) {
        self.lock_present().extend(ws);
    }

    fn lock_wire(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, WireDigest>> {
        self.wire_of.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_present(&self) -> std::sync::MutexGuard<'_, HashSet<WireDigest>> {
        self.present.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Upload what the server lacks of what `p` needs.
    fn upload(&self, _hf: HashFn, p: &Prepared) -> Result<(), Upload> {
        let mut seen = HashSet::new();
        let candidates: Vec<(WireDigest, Source)> = {
            let present = self.lock_present();
            p.needs
                .iter()
                .filter(|(d, _)| !present.contains(d) && seen.insert(d.clone()))
                .cloned()
                .collect()
        };
        if candidates.is_empty() {
            return Ok(());
        }
        let digests: Vec<WireDigest> = candidates.iter().map(|(d, _)| d.clone()).collect();
        // Small blobs (the action's own messages, most directories and
        // small inputs) are sent without asking: asking costs a round trip
        // and about as many bytes. Large ones, and outputs left on the
        // server, are asked about first.
        let asked = |d: &WireDigest, src: &Source| {
            d.size > SEND_UNASKED || matches!(src, Source::Remote(_))
        };
        let ask: Vec<WireDigest> = candidates
            .iter()
            .filter(|(d, src)| asked(d, src))
            .map(|(d, _)| d.clone())
            .collect();
        let missing: HashSet<WireDigest> = if ask.is_empty() {
            HashSet::new()
        } else {
            self.grpc
                .find_missing(&ask)
                .map_err(|e| Upload::Io(format!("checking which blobs the server has: {e}")))?
                .into_iter()
                .collect()
        };
        let mut send = Vec::new();
        let mut n = 0u64;
        for (d, src) in &candidates {
            if asked(d, src) && !missing.contains(d) {
                continue;
            }
            let bytes = match src {
                Source::Bytes(b) => b.as_ref().clone(),
                Source::File(path, local) => read_checked(path, local).map_err(|e| {
                    Upload::Io(format!("reading `{}` to upload it: {e}", path.display()))
                })?,
                Source::Remote(path) => {
                    return Err(Upload::Lost(format!(
                        "the server no longer holds the input `{path}`, an output left on it by --remote-download-outputs=toplevel; build again (its action runs again)"
                    )));
                }
            };
            n += bytes.len() as u64;
            send.push((d.clone(), bytes));
            // Bound what one call holds in memory.
            if n > 64 << 20 {
                self.grpc
                    .write_blobs(&send)
                    .map_err(|e| Upload::Io(format!("uploading inputs: {e}")))?;
                self.traffic.bytes_up.fetch_add(n, Ordering::Relaxed);
                send.clear();
                n = 0;
            }
        }
        self.grpc
            .write_blobs(&send)
            .map_err(|e| Upload::Io(format!("uploading inputs: {e}")))?;
        self.traffic.bytes_up.fetch_add(n, Ordering::Relaxed);
        self.lock_present().extend(digests);
        Ok(())
    }

    /// Forget that the server holds `p`'s blobs (it said one is missing).
    fn forget(&self, p: &Prepared) {
        let mut present = self.lock_present();
        for (d, _) in &p.needs {
            present.remove(d);
        }
    }

    /// Stdout then stderr of `r` (the tail), fetched if not inline.
    fn log_of(&self, hf: HashFn, r: &proto::ExecActionResult) -> String {
        let mut out = Vec::new();
        for (raw, d) in [
            (&r.stdout_raw, &r.stdout_digest),
            (&r.stderr_raw, &r.stderr_digest),
        ] {
            if !raw.is_empty() {
                out.extend_from_slice(raw);
            } else if let Some(d) = d.as_ref().filter(|d| d.size_bytes > 0) {
                let wd = grpc::unwire(d);
                match self.grpc.read_blobs(std::slice::from_ref(&wd)) {
                    Ok(mut b) if hf.digest(&b[0]) == wd => {
                        self.traffic
                            .bytes_down
                            .fetch_add(b[0].len() as u64, Ordering::Relaxed);
                        out.append(&mut b[0]);
                    }
                    Ok(_) => out.extend_from_slice(b"(the log blob does not match its digest)\n"),
                    Err(e) => {
                        out.extend_from_slice(format!("(cannot fetch the log: {e})\n").as_bytes())
                    }
                }
            }
        }
        if out.len() > LOG_TAIL {
            out.drain(..out.len() - LOG_TAIL);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Check and download the result of a finished execution.
    fn finish(
        &self,
        hf: HashFn,
        action: &Action,
        r: proto::ExecActionResult,
        cached: bool,
        blobs: &Blobs,
    ) -> RemoteOutcome {
        let log = self.log_of(hf, &r);
        if r.exit_code != 0 {
            // Signals reach REAPI as 128+N, as a shell reports them.
            return RemoteOutcome::Failed {
                message: format!(
                    "the command exited with status {} on the remote executor",
                    r.exit_code
                ),
                log,
            };
        }
        let declared: BTreeSet<&str> = action.outputs.iter().map(|o| o.path()).collect();
        let mut got: BTreeMap<&str, &proto::OutputFile> = BTreeMap::new();
        for f in &r.output_files {
            if declared.contains(f.path.as_str()) {
                got.insert(f.path.as_str(), f);
            }
        }
        let missing: Vec<String> = declared
            .iter()
            .filter(|p| !got.contains_key(*p))
            .map(|p| format!("`{p}`"))
            .collect();
        if !missing.is_empty() {
            return RemoteOutcome::Failed {
                message: format!(
                    "the command succeeded but did not create its declared output(s) {} (as regular files)",
                    missing.join(", ")
                ),
                log,
            };
        }
        let mut wanted = Vec::new();
        for f in got.values() {
            match &f.digest {
                Some(d) => wanted.push(grpc::unwire(d)),
                None => {
                    return RemoteOutcome::Failed {
                        message: format!("the result's output `{}` has no digest", f.path),
                        log,
                    };
                }
            }
        }
        // With `toplevel` outputs stay on the server (unless inlined).
        let keep = self.keeps_outputs_remote();
        let to_read: Vec<WireDigest> = got
            .values()
            .zip(&wanted)
            .filter(|(f, _)| f.contents.is_empty() && !keep)
            .map(|(_, d)| d.clone())
            .collect();
        let mut read = match self.grpc.read_blobs(&to_read) {
            Ok(r) => r.into_iter(),
            Err(e) => return RemoteOutcome::Unavailable(format!("downloading outputs: {e}")),
        };
        let mut outputs = Vec::with_capacity(got.len());
        for (f, want) in got.values().zip(&wanted) {
            if keep && f.contents.is_empty() {
                match self.record_remote(want, f.is_executable) {
                    Ok(d) => {
                        self.lock_present().insert(want.clone());
                        outputs.push(OutputEntry {
                            path: f.path.clone(),
                            digest: d,
                            size: want.size as u64,
                            executable: f.is_executable,
                        });
                        continue;
                    }
                    Err(e) => {
                        return RemoteOutcome::Failed {
                            message: format!("cannot record the output `{}`: {e}", f.path),
                            log,
                        };
                    }
                }
            }
            let bytes = if f.contents.is_empty() {
                read.next().unwrap_or_default()
            } else {
                f.contents.clone()
            };
            if hf.digest(&bytes) != *want {
                return RemoteOutcome::Failed {
                    message: format!(
                        "the executor's blob of `{}` does not match its digest {}; nothing was stored",
                        f.path, want.hash
                    ),
                    log,
                };
            }
            self.traffic
                .bytes_down
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let d = Digest::of(&bytes);
            if let Err(e) = store(blobs, &bytes, &d, f.is_executable) {
                return RemoteOutcome::Failed {
                    message: format!("cannot store the output `{}`: {e}", f.path),
                    log,
                };
            }
            self.lock_wire().insert(d, want.clone());
            self.lock_present().insert(want.clone());
            outputs.push(OutputEntry {
                path: f.path.clone(),
                digest: d,
                size: bytes.len() as u64,
                executable: f.is_executable,
            });
        }
        outputs.sort_by(|a, b| a.path.cmp(&b.path));
        let log = if log.is_empty() {
            None
        } else {
            match blobs.put_bytes(log.as_bytes()) {
                Ok(d) => Some(d),
                Err(e) => {
                    return RemoteOutcome::Failed {
                        message: format!("cannot store the action's log: {e}"),
                        log,
                    };
                }
            }
        };
        let timing = timing_of(r.execution_metadata.as_ref());
        if cached {
            self.traffic.cached.fetch_add(1, Ordering::Relaxed);
        } else {
            self.traffic.executed.fetch_add(1, Ordering::Relaxed);
        }
        RemoteOutcome::Done {
            result: ActionResult { outputs, log },
            cached,
            timing,
        }
    }
}

/// Store downloaded bytes as the blob `d` (atomically).
pub(super) fn store(
    blobs: &Blobs,
    bytes: &[u8],
    d: &Digest,
    executable: bool,
) -> Result<(), String> {
    if blobs.contains(d) {
        return Ok(());
    }
    let tmp = blobs.temp_path("remote-exec");
    let r = std::fs::write(&tmp, bytes)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            blobs
                .put_file(&tmp, d, executable)
                .map_err(|e| e.to_string())
        });
    let _ = std::fs::remove_file(&tmp);
    r
}

/// The bytes of `path`, which must hash (BLAKE3) to `d`.
fn read_checked(path: &Path, d: &Digest) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if Digest::of(&bytes) != *d {
        return Err("the file changed during the build; build again".to_owned());
    }
    Ok(bytes)
}

/// A directory of the input root.
#[derive(Default)]
struct Dir {
    files: BTreeMap<String, WireDigest>,
    subdirs: BTreeSet<String>,
}

/// Make `dir` and its ancestors exist in `dirs`, each listed in its parent.
/// Put the input file `path` (with its wire digest) in the tree.
fn add_file(dirs: &mut BTreeMap<String, Dir>, path: &str, wd: WireDigest) -> Result<(), String> {
    let (parent, name) = match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    };
    add_dirs(dirs, parent)?;
    let dir = dirs.entry(parent.to_owned()).or_default();
    if dir.files.insert(name.to_owned(), wd).is_some() {
        return Err(format!("input `{path}` is listed twice"));
    }
    Ok(())
}

fn add_dirs(dirs: &mut BTreeMap<String, Dir>, dir: &str) -> Result<(), String> {
    let mut cur = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return Err(format!("input directory `{dir}` is not a normalized path"));
        }
        let next = join(&cur, part);
        dirs.entry(cur.clone())
            .or_default()
            .subdirs
            .insert(part.to_owned());
        dirs.entry(next.clone()).or_default();
        cur = next;
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The toolchain identity sent as `Action.salt` (see the module docs).
pub fn tool_salt(tools: &[(String, Digest)]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"kiln-toolchain-v1\0");
    for (path, d) in tools {
        h.update(&(path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(&d.0);
    }
    *h.finalize().as_bytes()
}

/// Codes after which the action is tried once more with every blob
/// re-checked: the server says an input is missing (it may have evicted
/// a blob this build uploaded earlier).
fn retryable_missing(c: i32) -> bool {
    c == code::FAILED_PRECONDITION || c == code::INTERNAL
}

/// The outcome of an execution that ended with status `s`.
fn status_outcome(s: &proto::Status, what: &str) -> RemoteOutcome {
    match s.code {
        code::UNAVAILABLE | code::CANCELLED | code::ABORTED => {
            RemoteOutcome::Unavailable(format!("{what}: status {}: {}", s.code, s.message))
        }
        _ => RemoteOutcome::Failed {
            message: format!("{what}: status {}: {}", s.code, s.message),
            log: String::new(),
        },
    }
}

fn timing_of(m: Option<&proto::ExecutedActionMetadata>) -> RemoteTiming {
    let Some(m) = m else {
        return RemoteTiming::default();
    };
    let span = |a: &Option<proto::Timestamp>, b: &Option<proto::Timestamp>| -> Option<Duration> {
        let (a, b) = (a.as_ref()?, b.as_ref()?);
        let ns = |t: &proto::Timestamp| t.seconds as i128 * 1_000_000_000 + t.nanos as i128;
        let d = ns(b) - ns(a);
        (d >= 0).then(|| Duration::from_nanos(d as u64))
    };
    RemoteTiming {
        worker: m.worker.clone(),
        queue: span(&m.queued_timestamp, &m.worker_start_timestamp),
        exec: span(
            &m.execution_start_timestamp,
            &m.execution_completed_timestamp,
        ),
        server: span(&m.queued_timestamp, &m.worker_completed_timestamp)
            .or_else(|| span(&m.worker_start_timestamp, &m.worker_completed_timestamp)),
    }
}
