//! Remote caches: REAPI v2 over gRPC (`grpc.rs`) and Bazel's HTTP cache
//! protocol (`http.rs`), behind one `RemoteCache` the scheduler uses.
//!
//! Lookup order is local, then remote: a remote hit is downloaded, checked
//! against its digest, and stored in the local blob store before it is
//! used; a blob that does not match its digest is never used. Results of
//! actions run locally are uploaded in the background (unless upload is
//! off), declared outputs only. Digests on the wire use the server's digest
//! function (BLAKE3 when offered, else SHA-256); the local store stays
//! BLAKE3. An action's key maps to the wire as the digest of its 32 bytes.
//!
//! Faults never fail a build: the first error is kept as a warning, the
//! remote is switched off for the rest of the build, and kiln continues
//! with the local cache.
//!
//! Nothing a server says is trusted. A result is used only when every
//! output path is a normalized relative path, the set of paths is exactly
//! the action's declared outputs (so a result stored for another action
//! never fits), every claimed size is at most [`MAX_BLOB`] (checked before
//! anything is requested or allocated for it), and every blob downloaded
//! (whole: a stream that ends early or runs long is an error) hashes to
//! its digest. A result that fails a check is a miss: the action runs
//! locally, and the first such problem is the build's one warning. A
//! request that takes longer than the timeout (`--remote-timeout`, also
//! between two messages of a stream) is a fault and is not retried: a
//! stalled server would otherwise cost three timeouts.

pub mod exec;
mod grpc;
mod http;
pub mod lazy;
pub mod proto;

// What a remote cache's answers decode to, without a server: for the
// fuzzer (`kiln-fuzz reapi_result`, `http_result`) and its seeds.
#[doc(hidden)]
pub use grpc::{action_result, decode_action_result};
#[doc(hidden)]
pub use http::decode_ac_entry;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kiln_cache::{ActionResult, Blobs, Digest, OutputEntry};
use sha2::Digest as _;

/// How to reach a remote cache.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// `grpc://HOST:PORT`, `grpcs://HOST:PORT` or `http://HOST:PORT/PREFIX`.
    pub url: String,
    /// REAPI instance name.
    pub instance: String,
    /// Extra request headers (e.g. authorization).
    pub headers: Vec<(String, String)>,
    /// Upload results of actions run locally.
    pub upload: bool,
    /// Timeout of one request.
    pub timeout: Duration,
}

/// The largest blob accepted from a server (16 GiB): far above any output
/// kiln writes, and a bound checked before a claimed size is requested or
/// allocated (a hostile result may claim 2^62 bytes).
pub const MAX_BLOB: i64 = 16 << 30;

/// `d` names a blob of a size kiln accepts: not negative, at most
/// [`MAX_BLOB`].
pub(crate) fn sane_size(d: &WireDigest) -> Result<(), String> {
    if (0..=MAX_BLOB).contains(&d.size) {
        Ok(())
    } else {
        Err(format!(
            "blob {} claims {} bytes (at most {MAX_BLOB} are accepted)",
            d.hash, d.size
        ))
    }
}

/// Why an output path from a server cannot name a file under the
/// execution root, if it cannot: it is empty, absolute, or has an empty,
/// `.` or `..` component (or a NUL).
pub(crate) fn unsafe_path(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute")
    } else if path.contains('\0') {
        Some("contains a NUL byte")
    } else if path.split('/').any(|c| c == "..") {
        Some("climbs out with `..`")
    } else if path.split('/').any(|c| c.is_empty() || c == ".") {
        Some("is not normalized")
    } else {
        None
    }
}

/// A digest as the server names blobs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireDigest {
    /// Lowercase hex.
    pub hash: String,
    /// Size in bytes.
    pub size: i64,
}

/// The digest function on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFn {
    /// SHA-256 (every REAPI server, the HTTP protocol).
    Sha256,
    /// BLAKE3 (REAPI servers that advertise it).
    Blake3,
}

impl HashFn {
    /// The digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> WireDigest {
        let hash = match self {
            HashFn::Sha256 => hex(&sha2::Sha256::digest(bytes)),
            HashFn::Blake3 => blake3::hash(bytes).to_hex().to_string(),
        };
        WireDigest {
            hash,
            size: bytes.len() as i64,
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An output file of a remote action result.
#[derive(Clone, Debug)]
pub struct WireOutput {
    /// Execution-root-relative path.
    pub path: String,
    /// Its digest.
    pub digest: WireDigest,
    /// Executable bit.
    pub executable: bool,
    /// Inline contents, if the server sent them.
    pub contents: Option<Vec<u8>>,
}

/// What a backend can do.
trait Backend: Send + Sync {
    /// The digest function to use (may ask the server once).
    fn hash_fn(&self) -> Result<HashFn, String>;
    /// The action result stored under `action`, if any.
    fn get_action(&self, action: &WireDigest) -> Result<Option<Vec<WireOutput>>, String>;
    /// The bytes of these blobs (all of them, or an error).
    fn read_blobs(&self, digests: &[WireDigest]) -> Result<Vec<Vec<u8>>, String>;
    /// Which of these blobs the server lacks.
    fn find_missing(&self, digests: &[WireDigest]) -> Result<Vec<WireDigest>, String>;
    /// Store blobs.
    fn write_blobs(&self, blobs: &[(WireDigest, Vec<u8>)]) -> Result<(), String>;
    /// Store an action result.
    fn put_action(&self, action: &WireDigest, outputs: &[WireOutput]) -> Result<(), String>;
}

/// Traffic counters of one build.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Action results found.
    pub hits: AtomicU64,
    /// Action results not found.
    pub misses: AtomicU64,
    /// Action results uploaded.
    pub uploads: AtomicU64,
    /// Bytes downloaded (blob contents).
    pub bytes_down: AtomicU64,
    /// Bytes uploaded (blob contents).
    pub bytes_up: AtomicU64,
}

/// A remote cache for one build.
pub struct RemoteCache {
    backend: Box<dyn Backend>,
    /// The options it was made with.
    pub options: RemoteOptions,
    off: AtomicBool,
    /// Switched off with an executor on the same endpoint, which said why.
    quiet: AtomicBool,
    warning: Mutex<Option<String>>,
    /// What went over the wire.
    pub traffic: Traffic,
}

/// Why a remote cache client could not be made (before any request).
#[derive(Debug, thiserror::Error)]
pub enum RemoteSetupError {
    /// A URL of no supported scheme.
    #[error(
        "`--remote-cache {0}`: use grpc://HOST:PORT, grpcs://HOST:PORT or http://HOST:PORT/PREFIX"
    )]
    Scheme(String),
    /// An executor URL of no supported scheme.
    #[error("`--remote-executor {0}`: use grpc://HOST:PORT or grpcs://HOST:PORT")]
    ExecScheme(String),
    /// The client could not be built (a malformed address, TLS setup).
    #[error("{0}")]
    Client(String),
}

impl RemoteCache {
    /// A client for `options.url` (no connection is made yet).
    pub fn new(options: RemoteOptions) -> Result<RemoteCache, RemoteSetupError> {
        let url = options.url.clone();
        let client = RemoteSetupError::Client;
        let backend: Box<dyn Backend> = if let Some(rest) = url.strip_prefix("grpc://") {
            Box::new(grpc::Grpc::new(&format!("http://{rest}"), false, &options).map_err(client)?)
        } else if let Some(rest) = url.strip_prefix("grpcs://") {
            Box::new(grpc::Grpc::new(&format!("https://{rest}"), true, &options).map_err(client)?)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Box::new(http::Http::new(&url, &options).map_err(client)?)
        } else {
            return Err(RemoteSetupError::Scheme(url));
        };
        Ok(RemoteCache {
            backend,
            options,
            off: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            warning: Mutex::new(None),
            traffic: Traffic::default(),
        })
    }

    /// The remote executor on this cache's endpoint was lost and has
    /// warned: stop using the cache too, without a second warning.
    pub fn lost_with_executor(&self) {
        self.quiet.store(true, Ordering::SeqCst);
        self.off.store(true, Ordering::SeqCst);
    }

    /// The first problem met, if any (printed once by the CLI).
    pub fn warning(&self) -> Option<String> {
        if self.quiet.load(Ordering::SeqCst) {
            return None;
        }
        self.warning
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fault(&self, what: &str, e: String) {
        self.off.store(true, Ordering::SeqCst);
        let mut w = self.warning.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(format!(
                "remote cache {}: {what}: {e}; continuing with the local cache only",
                self.options.url
            ));
        }
    }

    fn note(&self, message: String) {
        let mut w = self.warning.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(format!("remote cache {}: {message}", self.options.url));
        }
    }

    fn action_digest(&self, hf: HashFn, key: &Digest) -> WireDigest {
        hf.digest(&key.0)
    }

    /// The result of the action `key` from the remote, its blobs verified
    /// and stored in `blobs`; `None` on a miss, on any fault, or when the
    /// remote result is not exactly `declared` outputs.
    pub fn fetch(&self, key: &Digest, declared: &[&str], blobs: &Blobs) -> Option<ActionResult> {
        if self.off.load(Ordering::SeqCst) {
            return None;
        }
        let hf = match self.backend.hash_fn() {
            Ok(h) => h,
            Err(e) => {
                self.fault("cannot reach the server", e);
                return None;
            }
        };
        let outputs = match self.backend.get_action(&self.action_digest(hf, key)) {
            Ok(Some(o)) => o,
            Ok(None) => {
                self.traffic.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(e) => {
                self.fault("looking up an action result", e);
                return None;
            }
        };
        if let Some(why) = outputs.iter().find_map(|o| {
            unsafe_path(&o.path)
                .map(|why| format!("names the output `{}`, which {why}", o.path))
                .or_else(|| {
                    sane_size(&o.digest)
                        .err()
                        .map(|e| format!("has the output `{}`, whose {e}", o.path))
                })
        }) {
            self.note(format!("a result {why}; ignored it and ran the action"));
            self.traffic.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let want: BTreeSet<&str> = declared.iter().copied().collect();
        let got: BTreeSet<&str> = outputs.iter().map(|o| o.path.as_str()).collect();
        if want != got {
            self.note(format!(
                "a result lists outputs other than the action's declared ones ({}); ignored it and ran the action",
                got.difference(&want)
                    .chain(want.difference(&got))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            self.traffic.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let to_read: Vec<WireDigest> = outputs
            .iter()
            .filter(|o| o.contents.is_none())
            .map(|o| o.digest.clone())
            .collect();
        let mut read = match self.backend.read_blobs(&to_read) {
            Ok(r) => r.into_iter(),
            Err(e) => {
                self.fault("downloading outputs", e);
                return None;
            }
        };
        let mut entries = Vec::with_capacity(outputs.len());
        for o in &outputs {
            let bytes = match &o.contents {
                Some(c) => c.clone(),
                None => read.next()?,
            };
            if hf.digest(&bytes) != o.digest {
                self.note(format!(
                    "the blob of `{}` does not match its digest {}; not used, the action ran locally",
                    o.path, o.digest.hash
                ));
                self.traffic.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            self.traffic
                .bytes_down
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let d = Digest::of(&bytes);
            let tmp = blobs.temp_path("remote");
            let stored = std::fs::write(&tmp, &bytes)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    blobs
                        .put_file(&tmp, &d, o.executable)
                        .map_err(|e| e.to_string())
                });
            let _ = std::fs::remove_file(&tmp);
            if let Err(e) = stored {
                self.fault("storing a downloaded output", e);
                return None;
            }
            entries.push(OutputEntry {
                path: o.path.clone(),
                digest: d,
                size: bytes.len() as u64,
                executable: o.executable,
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        self.traffic.hits.fetch_add(1, Ordering::Relaxed);
        Some(ActionResult {
            outputs: entries,
            log: None,
        })
    }

    /// Upload the result of the action `key` (its outputs from `blobs`).
    pub fn upload(&self, key: &Digest, result: &ActionResult, blobs: &Blobs) {
        if self.off.load(Ordering::SeqCst) || !self.options.upload {
            return;
        }
        kiln_cache::fault::point("remote_upload");
        if let Err((what, e)) = self.try_upload(key, result, blobs) {
            self.fault(what, e);
        }
    }

    fn try_upload(
        &self,
        key: &Digest,
        result: &ActionResult,
        blobs: &Blobs,
    ) -> Result<(), (&'static str, String)> {
        let hf = self
            .backend
            .hash_fn()
            .map_err(|e| ("cannot reach the server", e))?;
        let mut outputs = Vec::new();
        let mut contents = Vec::new();
        for o in &result.outputs {
            let bytes = std::fs::read(blobs.path(&o.digest))
                .map_err(|e| ("reading a local blob", format!("`{}`: {e}", o.path)))?;
            let d = hf.digest(&bytes);
            outputs.push(WireOutput {
                path: o.path.clone(),
                digest: d.clone(),
                executable: o.executable,
                contents: None,
            });
            contents.push((d, bytes));
        }
        let digests: Vec<WireDigest> = contents.iter().map(|(d, _)| d.clone()).collect();
        let missing: BTreeSet<WireDigest> = self
            .backend
            .find_missing(&digests)
            .map_err(|e| ("checking which blobs the server has", e))?
            .into_iter()
            .collect();
        let mut seen = BTreeSet::new();
        let send: Vec<(WireDigest, Vec<u8>)> = contents
            .into_iter()
            .filter(|(d, _)| missing.contains(d) && seen.insert(d.clone()))
            .collect();
        let n: u64 = send.iter().map(|(_, b)| b.len() as u64).sum();
        self.backend
            .write_blobs(&send)
            .map_err(|e| ("uploading outputs", e))?;
        self.traffic.bytes_up.fetch_add(n, Ordering::Relaxed);
        self.backend
            .put_action(&self.action_digest(hf, key), &outputs)
            .map_err(|e| ("uploading an action result", e))?;
        self.traffic.uploads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl PartialOrd for WireDigest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WireDigest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.hash, self.size).cmp(&(&other.hash, other.size))
    }
}

/// Run `f` up to 3 times, backing off 100 ms then 300 ms, while `retry`
/// says the error is transient.
pub(crate) fn with_retries<T, E>(
    mut f: impl FnMut() -> Result<T, E>,
    retry: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut delay = Duration::from_millis(100);
    for _ in 0..2 {
        match f() {
            Err(e) if retry(&e) => {
                std::thread::sleep(delay);
                delay *= 3;
            }
            r => return r,
        }
    }
    f()
}

impl std::fmt::Debug for RemoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCache({})", self.options.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_from_a_server_stay_under_the_execution_root() {
        assert_eq!(unsafe_path("kiln-out/p/a.txt"), None);
        assert_eq!(unsafe_path("kiln-out/p/..x"), None);
        assert_eq!(unsafe_path("../escape"), Some("climbs out with `..`"));
        assert_eq!(
            unsafe_path("kiln-out/p/../../../escape"),
            Some("climbs out with `..`")
        );
        assert_eq!(unsafe_path("/tmp/absolute"), Some("is absolute"));
        assert_eq!(unsafe_path(""), Some("is empty"));
        assert_eq!(unsafe_path("kiln-out//a"), Some("is not normalized"));
        assert_eq!(unsafe_path("kiln-out/./a"), Some("is not normalized"));
        assert_eq!(unsafe_path("kiln-out/a/"), Some("is not normalized"));
        assert_eq!(unsafe_path("kiln-out/a\0b"), Some("contains a NUL byte"));
    }

    #[test]
    fn absurd_sizes_are_refused_before_any_request() {
        let d = |size| WireDigest {
            hash: "ab".to_owned(),
            size,
        };
        assert!(sane_size(&d(0)).is_ok());
        assert!(sane_size(&d(MAX_BLOB)).is_ok());
        let e = sane_size(&d(1 << 62)).unwrap_err();
        assert!(e.contains("claims 4611686018427387904 bytes"), "{e}");
        assert!(sane_size(&d(MAX_BLOB + 1)).is_err());
        assert!(sane_size(&d(-1)).is_err());
    }
}
