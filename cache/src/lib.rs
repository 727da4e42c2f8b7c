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
//! - `remote_blobs(digest BLOB PRIMARY KEY, hash TEXT, size INTEGER,
//!   executable INTEGER, local BLOB) WITHOUT ROWID`: outputs left in a
//!   remote CAS (see [`RemoteRefs`]); added to schema 2 without a version
//!   change (a kiln that does not know it finds those blobs missing and
//!   runs their actions again).
//!
//! Several kiln processes may use one cache at once: blob writes are atomic
//! renames of identical content, and SQLite serializes writers (WAL with a
//! busy timeout). A blob is verified against its digest before its bytes
//! are used ([`Blobs::verify`]).
//!
//! Files: `digest.rs` (BLAKE3), `blobs.rs` (the store), `remote.rs`
//! (blobs left in a remote CAS), `result.rs`
//! (action results), `db.rs` (the database and its writer), `gc.rs`
//! (garbage collection), `stat.rs` (file identity and racy entries),
//! `codec.rs` (the shared binary encoding).
//!
//! What this crate does not do: decide what to cache (the engine's
//! scheduler) or talk to remote caches.

use std::io;
use std::path::{Path, PathBuf};

mod blobs;
pub mod codec;
mod db;
mod digest;
pub mod fault;
mod gc;
mod lock;
mod remote;
mod result;
pub mod stat;
mod verify;

pub use blobs::Blobs;
pub use db::{Cache, FileState, Stats, Writer};
pub use digest::Digest;
pub use lock::{CacheLock, flock_waiting};
pub use remote::{RemoteBlob, RemoteRefs};
pub use result::{ActionResult, OutputEntry};
pub use stat::Stat;
pub use verify::VerifyReport;

/// The schema version this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

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
        "Cache database error in `{path}`: {source}; run `kiln cache verify --repair`, or remove the cache with `kiln clean --cache`"
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

impl CacheError {
    /// Whether the database file is damaged (not a database, malformed):
    /// moving it aside ([`Cache::quarantine`]) and building again recovers.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, CacheError::Db { source, .. } if db::is_corrupt(source))
    }

    /// Whether a database write failed in a way a full disk causes
    /// (SQLite reports `SQLITE_FULL`, or an I/O error when the WAL's
    /// shared memory cannot grow).
    pub fn may_be_disk_full(&self) -> bool {
        matches!(self, CacheError::Db { source: rusqlite::Error::SqliteFailure(f, _), .. }
            if matches!(f.code, rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure))
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use rusqlite::params;

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
    fn remote_references_and_their_local_copies() {
        let dir = tempdir("remote-refs");
        let mut c = Cache::open(&dir).unwrap();
        let refs = RemoteRefs::open(&dir).unwrap();
        let hash = "ab".repeat(32);
        let d = refs.put(&hash, 5, true).unwrap();
        assert_eq!(d, RemoteRefs::reference(&hash, 5));
        assert_ne!(d, RemoteRefs::reference(&hash, 6), "the size is part of it");
        let got = refs.get(&d).unwrap().unwrap();
        assert_eq!(
            (got.hash.as_str(), got.size, got.executable, got.local),
            (hash.as_str(), 5, true, None)
        );
        assert!(refs.get(&Digest::of(b"x")).unwrap().is_none());
        // Fetched: the local copy is kept by gc while a result names the reference.
        let local = c.blobs().put_bytes(b"hello").unwrap();
        refs.set_local(&d, &local).unwrap();
        assert_eq!(refs.put(&hash, 5, true).unwrap(), d);
        assert_eq!(
            refs.get(&d).unwrap().unwrap().local,
            Some(local),
            "kept on a second put"
        );
        let r = ActionResult {
            outputs: vec![OutputEntry {
                path: "kiln-out/r".into(),
                digest: d,
                size: 5,
                executable: true,
            }],
            log: None,
        };
        let key = Digest::of(b"k");
        c.transaction(|w| w.put_action(&key, &r)).unwrap();
        c.gc(1 << 20).unwrap();
        assert!(c.blobs().contains(&local));
        assert!(refs.get(&d).unwrap().is_some());
        // Without the result both go.
        c.remove_action(&key).unwrap();
        c.gc(1 << 20).unwrap();
        assert!(!c.blobs().contains(&local));
        assert!(refs.get(&d).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn verify_finds_and_repair_drops_what_is_broken() {
        let dir = tempdir("verify");
        let mut c = Cache::open(&dir).unwrap();
        let good = c.blobs().put_bytes(b"good").unwrap();
        let bad = c.blobs().put_bytes(b"bad").unwrap();
        let orphan = c.blobs().put_bytes(b"orphan").unwrap();
        let result = |d: Digest| ActionResult {
            outputs: vec![OutputEntry {
                path: "kiln-out/x".into(),
                digest: d,
                size: 3,
                executable: false,
            }],
            log: None,
        };
        let (k1, k2) = (Digest::of(b"k1"), Digest::of(b"k2"));
        c.transaction(|w| {
            w.put_action(&k1, &result(good))?;
            w.put_action(&k2, &result(bad))
        })
        .unwrap();
        let r = c.verify(false).unwrap();
        assert!(!r.broken(), "{r:?}");
        assert_eq!((r.blobs, r.results, r.orphans), (3, 2, 1));
        let p = c.blobs().path(&bad);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&p, b"BAD").unwrap();
        // A partial copy of a process that no longer exists.
        let shard = c.blobs().path(&orphan).parent().unwrap().to_path_buf();
        fs::write(shard.join(".tmp-4194304999-0"), b"partial").unwrap();
        let r = c.verify(false).unwrap();
        assert!(r.broken());
        assert_eq!(r.corrupt_blobs, vec![bad]);
        assert_eq!(r.broken_results.len(), 1);
        assert_eq!(r.broken_results[0].0, k2);
        assert_eq!(r.leftovers.len(), 1);
        let r = c.verify(true).unwrap();
        assert_eq!(r.repaired, Some((2, 1)));
        let r = c.verify(false).unwrap();
        assert!(!r.broken() && r.leftovers.is_empty(), "{r:?}");
        assert!(c.get_action(&k1).unwrap().is_some());
        assert!(c.get_action(&k2).unwrap().is_none());
        drop(c);
        // A database that is not one is moved aside on open.
        fs::write(dir.join("kiln.db"), vec![0x5a; 8192]).unwrap();
        let _ = fs::remove_file(dir.join("kiln.db-wal"));
        let _ = fs::remove_file(dir.join("kiln.db-shm"));
        let c = Cache::open(&dir).unwrap();
        assert!(c.recovered().is_some_and(|w| w.contains("moved it to")));
        assert!(c.get_action(&k1).unwrap().is_none());
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
