//! kiln's local cache: a content-addressed blob store and an SQLite
//! database of action results and file states.
//!
//! # On-disk format, schema version 2
//!
//! ```text
//! <cache dir>/
//!   VERSION                 "kiln-cache 2\n"
//!   blobs/<h0h1>/<h2..h63>  one file per blob, named by the lowercase hex
//!                           BLAKE3 of its bytes; mode 0444 (0555 when
//!                           executable). Written as a temporary file in
//!                           tmp/ and renamed into place, so a blob is either
//!                           whole or absent.
//!   tmp/                    temporary files and action sandboxes
//!   kiln.db                 SQLite, WAL mode, tables below
//! ```
//!
//! `kiln.db` tables:
//! - `meta(key TEXT PRIMARY KEY, value TEXT)`: `schema_version` = `2`.
//! - `actions(key BLOB PRIMARY KEY, result BLOB, size INTEGER,
//!   created INTEGER, last_access INTEGER)`: an action key (32 bytes) to its
//!   encoded [`ActionResult`]; `size` is the total size of its output blobs;
//!   times are Unix seconds.
//! - `files(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,
//!   ctime_ns INTEGER, inode INTEGER, racy INTEGER, digest BLOB, key BLOB)
//!   WITHOUT ROWID`: the last known state of a file by absolute path: when
//!   the row is not racy and `(size, mtime_ns, ctime_ns, inode)` still
//!   match, `digest` is its content digest and the file is not read again
//!   (see [`stat`]). For outputs, `key` is the action key that produced it.
//!
//! Schema 1 lacked `ctime_ns` and `racy`; opening such a cache drops its
//! `files` table (a stat cache only) and upgrades it to 2 in place.
//! - `runs(workspace TEXT, action TEXT, outcome INTEGER, record BLOB,
//!   PRIMARY KEY(workspace, action))`: what happened to each action of a
//!   workspace the last time it was needed (for `kiln explain`); `outcome`
//!   0 means "up to date", other values and `record` are the engine's.
//!
//! Several kiln processes may use one cache at once: blob writes are atomic
//! renames of identical content, and SQLite serializes writers (WAL with a
//! busy timeout). A blob is verified against its digest before its bytes
//! are used ([`Blobs::verify`]).
//!
//! What this crate does not do: decide what to cache (the engine's
//! scheduler) or talk to remote caches.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

pub mod codec;
pub mod stat;

pub use stat::Stat;

use codec::Reader;

/// The schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

/// A BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// The digest of a file's contents.
    pub fn of_file(path: &Path) -> io::Result<Self> {
        let mut h = blake3::Hasher::new();
        let mut f = fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Digest(*h.finalize().as_bytes()))
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// From a 32-byte slice.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Digest)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.hex()[..16])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A filesystem operation failed.
    #[error("Cache I/O error on `{path}`: {source}")]
    Io {
        /// Which path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The database failed.
    #[error(
        "Cache database error in `{path}`: {source}; if it persists, remove the cache with `kiln clean --cache`"
    )]
    Db {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The cache was written by another schema version.
    #[error(
        "The cache at `{path}` has schema version {found}, this kiln uses {SCHEMA_VERSION}; remove it with `kiln clean --cache` or use another `--cache-dir`"
    )]
    Version {
        /// The cache dir.
        path: PathBuf,
        /// What it says.
        found: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One output of an action result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputEntry {
    /// Execution-root-relative path (`kiln-out/pkg/file`).
    pub path: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file is executable.
    pub executable: bool,
}

/// A cached action result: the outputs of a successful run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionResult {
    /// Outputs, sorted by path.
    pub outputs: Vec<OutputEntry>,
    /// Digest of the captured stdout+stderr (stored as a blob), if any.
    pub log: Option<Digest>,
}

impl ActionResult {
    /// Versioned binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = codec::Writer::default();
        w.u8(1);
        w.u32(self.outputs.len() as u32);
        for o in &self.outputs {
            w.str(&o.path);
            w.digest(&o.digest);
            w.u64(o.size);
            w.u8(o.executable as u8);
        }
        match &self.log {
            Some(d) => {
                w.u8(1);
                w.digest(d);
            }
            None => w.u8(0),
        }
        w.0
    }

    /// Decode; `None` for a malformed or unknown-version record.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        if r.u8()? != 1 {
            return None;
        }
        let n = r.u32()? as usize;
        let mut outputs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let path = r.str()?.to_owned();
            let digest = r.digest()?;
            let size = r.u64()?;
            let executable = r.u8()? != 0;
            outputs.push(OutputEntry {
                path,
                digest,
                size,
                executable,
            });
        }
        let log = match r.u8()? {
            1 => Some(r.digest()?),
            _ => None,
        };
        r.is_empty().then_some(ActionResult { outputs, log })
    }
}

/// A row of the `files` table.
#[derive(Clone, Copy, Debug)]
pub struct FileState {
    /// The stat it was hashed at.
    pub stat: Stat,
    /// Its content digest.
    pub digest: Digest,
    /// For outputs: the key of the action that wrote it.
    pub key: Option<Digest>,
}

/// Blob store operations; cheap to clone and usable from any thread.
#[derive(Clone, Debug)]
pub struct Blobs {
    dir: PathBuf,
    tmp: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Blobs {
    /// Where a blob lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        let h = d.hex();
        self.dir.join(&h[..2]).join(&h[2..])
    }

    /// Whether a blob is present (not verified).
    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// The cache's temporary directory (sandboxes, partial files).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// A fresh path under the cache's temporary directory.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!("{what}-{}-{n}", std::process::id()))
    }

    /// Put the file at `src`, whose digest is `d`, into the store. Atomic:
    /// the blob appears whole or not at all.
    ///
    /// The file must be complete and no longer written: when it can, this
    /// makes it read-only and hardlinks it into place (one atomic step that
    /// allocates no inode), else copies it through a temporary file.
    pub fn put_file(&self, src: &Path, d: &Digest, executable: bool) -> Result<(), CacheError> {
        let dest = self.path(d);
        let mode = if executable { 0o555 } else { 0o444 };
        fs::set_permissions(src, fs::Permissions::from_mode(mode)).map_err(io_err(src))?;
        match fs::hard_link(src, &dest) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = dest.parent().unwrap_or(&self.dir);
                fs::create_dir_all(parent).map_err(io_err(parent))?;
                if fs::hard_link(src, &dest).is_ok() || dest.is_file() {
                    return Ok(());
                }
            }
            Err(_) => {}
        }
        // Across filesystems: copy beside the blob (its shard directory, so
        // writers in different shards do not contend), then rename.
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dest.with_file_name(format!(".tmp-{}-{n}", std::process::id()));
        fs::copy(src, &tmp).map_err(io_err(src))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(())
    }

    /// Store bytes; returns their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let d = Digest::of(bytes);
        let dest = self.path(&d);
        if dest.is_file() {
            return Ok(d);
        }
        let parent = dest.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(io_err(parent))?;
        let tmp = self.temp_path("bytes");
        fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o444)).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(d)
    }

    /// Whether the blob exists and its bytes hash to `d`. A blob that does
    /// not is removed, so it is never used.
    pub fn verify(&self, d: &Digest) -> bool {
        let p = self.path(d);
        match Digest::of_file(&p) {
            Ok(got) if got == *d => true,
            Ok(_) => {
                let _ = fs::remove_file(&p);
                false
            }
            Err(_) => false,
        }
    }
}

/// The local cache: blob store plus database.
pub struct Cache {
    dir: PathBuf,
    db_path: PathBuf,
    db: Connection,
    blobs: Blobs,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Totals for `kiln cache stats`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Number of blob files.
    pub blobs: u64,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// Action results.
    pub actions: u64,
    /// File states.
    pub files: u64,
    /// Cumulative counters kept in `meta` (`remote_hits`, `remote_bytes_down`, ...).
    pub counters: Vec<(String, u64)>,
}

impl Cache {
    /// Open (creating if needed) the cache at `dir`.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let version_file = dir.join("VERSION");
        let want = format!("kiln-cache {SCHEMA_VERSION}\n");
        // Schema 1 differs only in the `files` table (a stat cache, dropped
        // and recreated below), so such a cache is upgraded in place.
        let upgrade = match fs::read_to_string(&version_file) {
            Ok(v) if v == want => false,
            Ok(v) if v == "kiln-cache 1\n" => true,
            Ok(v) => {
                return Err(CacheError::Version {
                    path: dir.to_path_buf(),
                    found: v.trim().to_owned(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => {
                return Err(CacheError::Io {
                    path: version_file,
                    source: e,
                });
            }
        };
        let blobs = Blobs {
            dir: dir.join("blobs"),
            tmp: dir.join("tmp"),
        };
        if !blobs.dir.join("ff").is_dir() {
            for shard in 0..=255u8 {
                let p = blobs.dir.join(format!("{shard:02x}"));
                fs::create_dir_all(&p).map_err(io_err(&p))?;
            }
        }
        fs::create_dir_all(&blobs.tmp).map_err(io_err(&blobs.tmp))?;
        let db_path = dir.join("kiln.db");
        let dberr = |source| CacheError::Db {
            path: db_path.clone(),
            source,
        };
        let db = Connection::open(&db_path).map_err(dberr)?;
        db.busy_timeout(std::time::Duration::from_secs(60))
            .map_err(dberr)?;
        // Setting up the schema takes write locks; two processes opening a
        // new cache at once can see SQLITE_BUSY without the busy handler
        // being consulted (a lock upgrade), so retry for a while.
        let mut attempt = 0;
        loop {
            let r = db.pragma_update(None, "journal_mode", "WAL").and_then(|()| {
                db.pragma_update(None, "synchronous", "NORMAL")?;
                db.execute_batch(
                    "BEGIN IMMEDIATE;
                     CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);",
                )?;
                let version: Option<String> = db
                    .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
                    .optional()?;
                if version.as_deref() == Some("1") {
                    db.execute_batch("DROP TABLE IF EXISTS files;")?;
                }
                db.execute_batch(
                    "INSERT OR REPLACE INTO meta VALUES('schema_version', '2');
                     CREATE TABLE IF NOT EXISTS actions(key BLOB PRIMARY KEY, result BLOB NOT NULL, size INTEGER NOT NULL,
                                                        created INTEGER NOT NULL, last_access INTEGER NOT NULL);
                     CREATE TABLE IF NOT EXISTS files(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
                                                      ctime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, racy INTEGER NOT NULL,
                                                      digest BLOB NOT NULL, key BLOB) WITHOUT ROWID;
                     CREATE TABLE IF NOT EXISTS runs(workspace TEXT NOT NULL, action TEXT NOT NULL, outcome INTEGER NOT NULL,
                                                     record BLOB NOT NULL, PRIMARY KEY(workspace, action));
                     COMMIT;",
                )
            });
            match r {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                    ) && attempt < 600 =>
                {
                    let _ = db.execute_batch("ROLLBACK;");
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(
                        10 + (std::process::id() as u64 % 7),
                    ));
                }
                Err(e) => return Err(dberr(e)),
            }
        }
        if upgrade {
            let tmp = dir.join(format!("VERSION.tmp{}", std::process::id()));
            fs::write(&tmp, &want).map_err(io_err(&tmp))?;
            fs::rename(&tmp, &version_file).map_err(io_err(&version_file))?;
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            db_path,
            db,
            blobs,
        })
    }

    fn dberr(&self) -> impl FnOnce(rusqlite::Error) -> CacheError + '_ {
        move |source| CacheError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The blob store (cloneable into worker threads).
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Look up an action result.
    pub fn get_action(&self, key: &Digest) -> Result<Option<ActionResult>, CacheError> {
        let row: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT result FROM actions WHERE key = ?1")
            .and_then(|mut s| s.query_row(params![&key.0[..]], |r| r.get(0)).optional())
            .map_err(self.dberr())?;
        Ok(row.and_then(|b| ActionResult::decode(&b)))
    }

    /// Remove an action result (e.g. one whose blobs are corrupt).
    pub fn remove_action(&self, key: &Digest) -> Result<(), CacheError> {
        self.db
            .execute("DELETE FROM actions WHERE key = ?1", params![&key.0[..]])
            .map_err(self.dberr())?;
        Ok(())
    }

    /// Run `f` in one write transaction (batched writes are much faster).
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Writer<'_>) -> Result<T, CacheError>,
    ) -> Result<T, CacheError> {
        let path = self.db_path.clone();
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| CacheError::Db {
                path: path.clone(),
                source,
            })?;
        let w = Writer {
            tx: &tx,
            path: &path,
        };
        let out = f(&w)?;
        tx.commit()
            .map_err(|source| CacheError::Db { path, source })?;
        Ok(out)
    }

    /// The state of one file.
    pub fn file_state(&self, path: &str) -> Result<Option<FileState>, CacheError> {
        Ok(self.file_states(path)?.remove(""))
    }

    /// Every file state whose path starts with `prefix`, keyed by the rest
    /// of the path after `prefix`.
    pub fn file_states(&self, prefix: &str) -> Result<HashMap<String, FileState>, CacheError> {
        let mut upper = prefix.to_owned();
        upper.push('\u{10FFFF}');
        let mut stmt = self
            .db
            .prepare_cached("SELECT path, size, mtime_ns, ctime_ns, inode, racy, digest, key FROM files WHERE path >= ?1 AND path < ?2")
            .map_err(self.dberr())?;
        let rows = stmt
            .query_map(params![prefix, upper], |r| {
                let digest: Vec<u8> = r.get(6)?;
                let key: Option<Vec<u8>> = r.get(7)?;
                let path = r.get_ref(0)?.as_str()?;
                Ok((
                    path.get(prefix.len()..).unwrap_or("").to_owned(),
                    Stat {
                        size: r.get::<_, i64>(1)? as u64,
                        mtime_ns: r.get(2)?,
                        ctime_ns: r.get(3)?,
                        inode: r.get::<_, i64>(4)? as u64,
                        racy: r.get(5)?,
                    },
                    digest,
                    key,
                ))
            })
            .map_err(self.dberr())?;
        let mut out = HashMap::new();
        for row in rows {
            let (path, stat, digest, key) = row.map_err(self.dberr())?;
            if let Some(digest) = Digest::from_slice(&digest) {
                out.insert(
                    path,
                    FileState {
                        stat,
                        digest,
                        key: key.and_then(|k| Digest::from_slice(&k)),
                    },
                );
            }
        }
        Ok(out)
    }

    /// The `runs` record of one action of a workspace.
    pub fn run_record(&self, workspace: &str, action: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.db
            .prepare_cached("SELECT record FROM runs WHERE workspace = ?1 AND action = ?2")
            .and_then(|mut s| {
                s.query_row(params![workspace, action], |r| r.get(0))
                    .optional()
            })
            .map_err(self.dberr())
    }

    /// Every `runs` record of a workspace whose action name starts with
    /// `prefix`: (action, outcome, record).
    pub fn run_records(
        &self,
        workspace: &str,
        prefix: &str,
    ) -> Result<Vec<(String, u8, Vec<u8>)>, CacheError> {
        let mut upper = prefix.to_owned();
        upper.push('\u{10FFFF}');
        let mut stmt = self
            .db
            .prepare_cached("SELECT action, outcome, record FROM runs WHERE workspace = ?1 AND action >= ?2 AND action < ?3 ORDER BY action")
            .map_err(self.dberr())?;
        let rows = stmt
            .query_map(params![workspace, prefix, upper], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.dberr())?;
        rows.collect::<Result<_, _>>().map_err(self.dberr())
    }

    /// Actions of a workspace whose last outcome was not "up to date".
    pub fn runs_not_up_to_date(&self, workspace: &str) -> Result<Vec<String>, CacheError> {
        let mut stmt = self
            .db
            .prepare_cached("SELECT action FROM runs WHERE workspace = ?1 AND outcome != 0")
            .map_err(self.dberr())?;
        let rows = stmt
            .query_map(params![workspace], |r| r.get(0))
            .map_err(self.dberr())?;
        rows.collect::<Result<_, _>>().map_err(self.dberr())
    }

    /// Totals.
    pub fn stats(&self) -> Result<Stats, CacheError> {
        let count = |table: &str| {
            self.db
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| n as u64)
                .map_err(self.dberr())
        };
        let mut s = Stats {
            actions: count("actions")?,
            files: count("files")?,
            ..Stats::default()
        };
        for (_, size) in self.list_blobs()? {
            s.blobs += 1;
            s.blob_bytes += size;
        }
        let mut q = self
            .db
            .prepare("SELECT key, value FROM meta WHERE key LIKE 'remote_%' ORDER BY key")
            .map_err(self.dberr())?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.dberr())?;
        for row in rows {
            let (k, v) = row.map_err(self.dberr())?;
            s.counters.push((k, v.parse().unwrap_or(0)));
        }
        Ok(s)
    }

    /// Add to cumulative counters kept in the `meta` table (e.g. remote
    /// cache traffic, shown by `kiln cache stats`).
    pub fn add_counters(&self, add: &[(&str, u64)]) -> Result<(), CacheError> {
        for (k, n) in add {
            self.db
                .execute(
                    "INSERT INTO meta(key, value) VALUES(?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + ?2 AS TEXT)",
                    params![k, n.to_string()],
                )
                .map_err(self.dberr())?;
        }
        Ok(())
    }

    fn list_blobs(&self) -> Result<Vec<(Digest, u64)>, CacheError> {
        let mut out = Vec::new();
        let shards = match fs::read_dir(&self.blobs.dir) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(CacheError::Io {
                    path: self.blobs.dir.clone(),
                    source: e,
                });
            }
        };
        for shard in shards {
            let shard = shard.map_err(io_err(&self.blobs.dir))?;
            let prefix = shard.file_name().to_string_lossy().into_owned();
            let Ok(entries) = fs::read_dir(shard.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                if let (Some(d), Ok(m)) = (parse_hex(&name), e.metadata()) {
                    out.push((d, m.len()));
                }
            }
        }
        Ok(out)
    }

    /// Shrink the cache to at most `max_bytes` of blobs: drop the least
    /// recently used action results first, then every blob no kept result
    /// references. Returns (results removed, blobs removed, bytes freed).
    pub fn gc(&mut self, max_bytes: u64) -> Result<(u64, u64, u64), CacheError> {
        let blobs = self.list_blobs()?;
        let sizes: HashMap<Digest, u64> = blobs.iter().copied().collect();
        let mut rows: Vec<(Vec<u8>, Vec<u8>, i64)> = {
            let mut stmt = self
                .db
                .prepare("SELECT key, result, last_access FROM actions")
                .map_err(self.dberr())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(self.dberr())?;
            rows.collect::<Result<_, _>>().map_err(self.dberr())?
        };
        // Newest first: keep results while their blobs fit.
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        let mut keep_blobs: std::collections::HashSet<Digest> = std::collections::HashSet::new();
        let mut used = 0u64;
        let mut drop_keys = Vec::new();
        for (key, result, _) in &rows {
            let Some(r) = ActionResult::decode(result) else {
                drop_keys.push(key.clone());
                continue;
            };
            let mut ds: Vec<Digest> = r.outputs.iter().map(|o| o.digest).collect();
            ds.extend(r.log);
            let extra: u64 = ds
                .iter()
                .filter(|d| !keep_blobs.contains(d))
                .map(|d| sizes.get(d).copied().unwrap_or(0))
                .sum();
            if used + extra <= max_bytes {
                used += extra;
                keep_blobs.extend(ds);
            } else {
                drop_keys.push(key.clone());
            }
        }
        let removed_results = drop_keys.len() as u64;
        self.transaction(|w| {
            for k in &drop_keys {
                w.tx.execute("DELETE FROM actions WHERE key = ?1", params![k])
                    .map_err(|source| CacheError::Db {
                        path: w.path.to_path_buf(),
                        source,
                    })?;
            }
            w.tx.execute("DELETE FROM files WHERE key IS NOT NULL", [])
                .map_err(|source| CacheError::Db {
                    path: w.path.to_path_buf(),
                    source,
                })?;
            Ok(())
        })?;
        let mut removed_blobs = 0;
        let mut freed = 0;
        for (d, size) in blobs {
            if !keep_blobs.contains(&d) {
                let p = self.blobs.path(&d);
                if fs::remove_file(&p).is_ok() {
                    removed_blobs += 1;
                    freed += size;
                }
            }
        }
        Ok((removed_results, removed_blobs, freed))
    }
}

fn parse_hex(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Digest(out))
}

/// Writes inside one transaction.
pub struct Writer<'a> {
    tx: &'a rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl Writer<'_> {
    fn err(&self) -> impl FnOnce(rusqlite::Error) -> CacheError + '_ {
        move |source| CacheError::Db {
            path: self.path.to_path_buf(),
            source,
        }
    }

    /// Record an action result (its blobs must already be stored).
    pub fn put_action(&self, key: &Digest, r: &ActionResult) -> Result<(), CacheError> {
        let size: u64 = r.outputs.iter().map(|o| o.size).sum();
        let t = now();
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO actions(key, result, size, created, last_access) VALUES(?1, ?2, ?3, ?4, ?4)")
            .and_then(|mut s| s.execute(params![&key.0[..], r.encode(), size as i64, t]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Mark action results as used now (for LRU garbage collection).
    pub fn touch_action(&self, key: &Digest) -> Result<(), CacheError> {
        self.tx
            .prepare_cached("UPDATE actions SET last_access = ?2 WHERE key = ?1")
            .and_then(|mut s| s.execute(params![&key.0[..], now()]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Record a file state.
    pub fn put_file_state(&self, path: &str, st: &FileState) -> Result<(), CacheError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO files(path, size, mtime_ns, ctime_ns, inode, racy, digest, key) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .and_then(|mut s| {
                s.execute(params![
                    path,
                    st.stat.size as i64,
                    st.stat.mtime_ns,
                    st.stat.ctime_ns,
                    st.stat.inode as i64,
                    st.stat.racy,
                    &st.digest.0[..],
                    st.key.as_ref().map(|k| k.0.to_vec())
                ])
            })
            .map_err(self.err())?;
        Ok(())
    }

    /// Record what happened to an action (for `kiln explain`).
    pub fn put_run_record(
        &self,
        workspace: &str,
        action: &str,
        outcome: u8,
        record: &[u8],
    ) -> Result<(), CacheError> {
        self.tx
            .prepare_cached("INSERT OR REPLACE INTO runs(workspace, action, outcome, record) VALUES(?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![workspace, action, outcome, record]))
            .map_err(self.err())?;
        Ok(())
    }

    /// Mark an action's last run as "up to date" (outcome 0).
    pub fn set_up_to_date(&self, workspace: &str, action: &str) -> Result<(), CacheError> {
        self.tx
            .prepare_cached("UPDATE runs SET outcome = 0 WHERE workspace = ?1 AND action = ?2")
            .and_then(|mut s| s.execute(params![workspace, action]))
            .map_err(self.err())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kiln-cache-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn blobs_round_trip_and_corruption_is_detected() {
        let dir = tempdir("blobs");
        let c = Cache::open(&dir).unwrap();
        let d = c.blobs().put_bytes(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(c.blobs().verify(&d));
        assert_eq!(fs::read(c.blobs().path(&d)).unwrap(), b"hello");
        let p = c.blobs().path(&d);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"HELLO").unwrap();
        assert!(!c.blobs().verify(&d));
        assert!(!p.exists(), "a corrupt blob is removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn action_results_and_file_states() {
        let dir = tempdir("db");
        let mut c = Cache::open(&dir).unwrap();
        let key = Digest::of(b"key");
        let r = ActionResult {
            outputs: vec![OutputEntry {
                path: "kiln-out/a".into(),
                digest: Digest::of(b"a"),
                size: 1,
                executable: true,
            }],
            log: Some(Digest::of(b"log")),
        };
        assert_eq!(ActionResult::decode(&r.encode()), Some(r.clone()));
        assert!(ActionResult::decode(&[9, 9]).is_none());
        c.transaction(|w| {
            w.put_action(&key, &r)?;
            w.put_file_state(
                "/ws/a",
                &FileState {
                    stat: Stat::from_parts(1, 2, 2, 3, 10),
                    digest: Digest::of(b"a"),
                    key: None,
                },
            )?;
            w.put_file_state(
                "/other/b",
                &FileState {
                    stat: Stat::from_parts(1, 2, 2, 3, 10),
                    digest: Digest::of(b"b"),
                    key: Some(key),
                },
            )
        })
        .unwrap();
        assert_eq!(c.get_action(&key).unwrap(), Some(r));
        let fs_ws = c.file_states("/ws/").unwrap();
        assert_eq!(fs_ws.len(), 1);
        assert_eq!(fs_ws["a"].digest, Digest::of(b"a"));
        assert_eq!(c.file_state("/other/b").unwrap().unwrap().key, Some(key));
        assert!(c.file_state("/other").unwrap().is_none());
        drop(c);
        // Reopening sees the same data; a foreign version is refused.
        let c = Cache::open(&dir).unwrap();
        assert!(c.get_action(&key).unwrap().is_some());
        drop(c);
        fs::write(dir.join("VERSION"), "kiln-cache 99\n").unwrap();
        assert!(matches!(Cache::open(&dir), Err(CacheError::Version { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gc_keeps_recent_results_and_their_blobs() {
        let dir = tempdir("gc");
        let mut c = Cache::open(&dir).unwrap();
        let mut keys = Vec::new();
        for i in 0..3u8 {
            let data = vec![i; 1000];
            let d = c.blobs().put_bytes(&data).unwrap();
            let key = Digest::of(&[i]);
            let r = ActionResult {
                outputs: vec![OutputEntry {
                    path: format!("kiln-out/{i}"),
                    digest: d,
                    size: 1000,
                    executable: false,
                }],
                log: None,
            };
            c.transaction(|w| w.put_action(&key, &r)).unwrap();
            c.db.execute(
                "UPDATE actions SET last_access = ?2 WHERE key = ?1",
                params![&key.0[..], i as i64],
            )
            .unwrap();
            keys.push((key, d));
        }
        let (results, blobs, freed) = c.gc(2000).unwrap();
        assert_eq!((results, blobs, freed), (1, 1, 1000));
        assert!(
            c.get_action(&keys[0].0).unwrap().is_none(),
            "the least recently used result goes"
        );
        assert!(!c.blobs().contains(&keys[0].1));
        for (k, d) in &keys[1..] {
            assert!(c.get_action(k).unwrap().is_some());
            assert!(c.blobs().contains(d));
        }
        assert_eq!(c.stats().unwrap().blob_bytes, 2000);
        fs::remove_dir_all(&dir).unwrap();
    }
}
