//! The SQLite database: opening (schema creation and upgrade), action
//! results, file states, `runs` records, counters and statistics, and the
//! [`Writer`] for batched transactions.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::gc::parse_hex;
use crate::{ActionResult, Blobs, CacheError, CacheLock, Digest, SCHEMA_VERSION, Stat, io_err};

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

/// The local cache: blob store plus database.
pub struct Cache {
    pub(crate) dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) db: Connection,
    pub(crate) blobs: Blobs,
    pub(crate) _lock: CacheLock,
    pub(crate) recovered: Option<String>,
}

/// Whether a database error means the file is not (or no longer) a sound
/// SQLite database.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

/// Rename a broken database (and its WAL) to `kiln.db.corrupt-<time>-<pid>`.
pub(crate) fn move_aside(db_path: &Path) -> Result<PathBuf, CacheError> {
    let aside = db_path.with_extension(format!("db.corrupt-{}-{}", now(), std::process::id()));
    fs::rename(db_path, &aside).map_err(io_err(db_path))?;
    for ext in ["db-wal", "db-shm"] {
        let _ = fs::remove_file(db_path.with_extension(ext));
    }
    Ok(aside)
}

/// Create or upgrade the schema. `Ok(Some(v))`: the database says it has
/// schema version `v`, which this kiln does not know.
pub(crate) fn init_schema(db: &Connection) -> rusqlite::Result<Option<String>> {
    // Setting up the schema takes write locks; two processes opening a
    // new cache at once can see SQLITE_BUSY without the busy handler
    // being consulted (a lock upgrade), so retry for a while.
    let mut attempt = 0;
    loop {
        let r = db.pragma_update(None, "journal_mode", "WAL").and_then(|()| {
            db.pragma_update(None, "synchronous", "NORMAL")?;
            // A current schema needs no write (a full disk then fails at
            // the first real write, with its own message).
            let tables: i64 = db.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'
                 AND name IN ('meta', 'actions', 'files', 'runs', 'remote_blobs')",
                [],
                |r| r.get(0),
            )?;
            if tables == 5
                && db
                    .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()?
                    .as_deref()
                    == Some("2")
            {
                return Ok(None);
            }
            db.execute_batch(
                "BEGIN IMMEDIATE;
                 CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);",
            )?;
            let version: Option<String> = db
                .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
                .optional()?;
            match version.as_deref() {
                None | Some("2") => {}
                Some("1") => db.execute_batch("DROP TABLE IF EXISTS files;")?,
                Some(other) => {
                    db.execute_batch("ROLLBACK;")?;
                    return Ok(Some(other.to_owned()));
                }
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
                 CREATE TABLE IF NOT EXISTS remote_blobs(digest BLOB PRIMARY KEY, hash TEXT NOT NULL, size INTEGER NOT NULL,
                                                         executable INTEGER NOT NULL, local BLOB) WITHOUT ROWID;
                 COMMIT;",
            )?;
            Ok(None)
        });
        match r {
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
            r => return r,
        }
    }
}

/// A connection to the database at `path` that waits for other writers.
pub(crate) fn connect(path: &Path) -> Result<Connection, CacheError> {
    let dberr = |source| CacheError::Db {
        path: path.to_path_buf(),
        source,
    };
    let db = Connection::open(path).map_err(dberr)?;
    db.busy_timeout(std::time::Duration::from_secs(60))
        .map_err(dberr)?;
    // Per connection: in WAL mode a commit then needs no fsync (only
    // checkpoints do); a crash loses at most the last commits, never
    // consistency.
    db.pragma_update(None, "synchronous", "NORMAL")
        .map_err(dberr)?;
    Ok(db)
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
    /// Open (creating if needed) the cache at `dir`, shared with other
    /// kiln processes.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        Self::open_locked(dir, false, || {})
    }

    /// Open the cache at `dir` alone (garbage collection, repair): waits
    /// for every other process using it, calling `on_wait` first if any.
    pub fn open_exclusive(dir: &Path, on_wait: impl FnOnce()) -> Result<Cache, CacheError> {
        Self::open_locked(dir, true, on_wait)
    }

    fn open_locked(
        dir: &Path,
        exclusive: bool,
        on_wait: impl FnOnce(),
    ) -> Result<Cache, CacheError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = crate::lock::lock(dir, exclusive, on_wait)?;
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
        let mut recovered = None;
        let opened = connect(&db_path).and_then(|db| match init_schema(&db) {
            Ok(found) => Ok((db, found)),
            Err(e) => Err(dberr(e)),
        });
        let db = match opened {
            Ok((db, None)) => db,
            Ok((_, Some(found))) => {
                return Err(CacheError::Version {
                    path: dir.to_path_buf(),
                    found: format!("kiln-cache {found} (in kiln.db)"),
                });
            }
            Err(CacheError::Db { source: e, .. }) if is_corrupt(&e) => {
                // The database is an index: its loss costs re-running or
                // re-verifying actions, never a wrong output. Keep the
                // broken file for a post-mortem and start a new one.
                let aside = move_aside(&db_path)?;
                recovered = Some(format!(
                    "the cache database `{}` was unreadable ({e}); moved it to `{}` and started an empty one, so actions run again",
                    db_path.display(),
                    aside.display()
                ));
                let fresh = connect(&db_path)?;
                init_schema(&fresh).map_err(dberr)?;
                fresh
            }
            Err(e) => return Err(e),
        };
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
            _lock: lock,
            recovered,
        })
    }

    /// Move a damaged database aside (to `kiln.db.corrupt-*`) so the next
    /// [`Cache::open`] starts a new one; returns where it went.
    pub fn quarantine(dir: &Path) -> Result<PathBuf, CacheError> {
        move_aside(&dir.join("kiln.db"))
    }

    /// What opening had to recover from (a corrupt database moved aside),
    /// for a warning.
    pub fn recovered(&self) -> Option<&str> {
        self.recovered.as_deref()
    }

    pub(crate) fn dberr(&self) -> impl FnOnce(rusqlite::Error) -> CacheError + '_ {
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
        crate::fault::point("db_commit");
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

    pub(crate) fn list_blobs(&self) -> Result<Vec<(Digest, u64)>, CacheError> {
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
}

/// Writes inside one transaction.
pub struct Writer<'a> {
    pub(crate) tx: &'a rusqlite::Transaction<'a>,
    pub(crate) path: &'a Path,
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

    /// Drop the action results keyed by `keys`, and every output's
    /// recorded state (they may name a dropped result).
    pub(crate) fn drop_results(&self, keys: &[Vec<u8>]) -> Result<(), CacheError> {
        for k in keys {
            self.tx
                .execute("DELETE FROM actions WHERE key = ?1", params![k])
                .map_err(self.err())?;
        }
        self.tx
            .execute("DELETE FROM files WHERE key IS NOT NULL", [])
            .map_err(self.err())?;
        Ok(())
    }
}
