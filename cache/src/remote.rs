//! Outputs kept in a remote CAS (`--remote-download-outputs=toplevel`): an
//! action result may name a blob whose bytes were never downloaded. Such a
//! blob has a *reference digest*, BLAKE3 over `kiln-remote-blob` and the
//! server's digest (see [`RemoteRefs::reference`]), which stands in for its
//! BLAKE3 in action results and keys, and a row in the `remote_blobs`
//! table:
//!
//! `remote_blobs(digest BLOB PRIMARY KEY, hash TEXT, size INTEGER,
//! executable INTEGER, local BLOB) WITHOUT ROWID`: the reference digest,
//! the server's digest (lowercase hex and size), whether the file is
//! executable, and, once the bytes have been fetched, their BLAKE3 (the
//! blob in the local store that holds them).
//!
//! A reference digest is never the name of a file in `blobs/`; the bytes,
//! when fetched, are stored under their own BLAKE3 like any blob.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{CacheError, Digest};

/// A blob held by a remote CAS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteBlob {
    /// The server's digest of it (lowercase hex).
    pub hash: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether it is an executable file.
    pub executable: bool,
    /// The local blob holding its bytes, once fetched.
    pub local: Option<Digest>,
}

/// The `remote_blobs` table, on a connection of its own (usable from any
/// thread).
pub struct RemoteRefs {
    db_path: std::path::PathBuf,
    db: Mutex<Connection>,
}

impl std::fmt::Debug for RemoteRefs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteRefs({})", self.db_path.display())
    }
}

impl RemoteRefs {
    /// Open the table of the cache at `dir` (which [`crate::Cache::open`]
    /// has created).
    pub fn open(dir: &Path) -> Result<RemoteRefs, CacheError> {
        let db_path = dir.join("kiln.db");
        let db = crate::db::connect(&db_path)?;
        Ok(RemoteRefs {
            db_path,
            db: Mutex::new(db),
        })
    }

    /// The reference digest of the blob the server names `hash` (lowercase
    /// hex of its digest function) with `size` bytes.
    pub fn reference(hash: &str, size: u64) -> Digest {
        let mut h = blake3::Hasher::new();
        h.update(b"kiln-remote-blob\0");
        h.update(hash.as_bytes());
        h.update(b"\0");
        h.update(&size.to_le_bytes());
        Digest(*h.finalize().as_bytes())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn dberr(&self) -> impl FnOnce(rusqlite::Error) -> CacheError + '_ {
        move |source| CacheError::Db {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Record a remote blob; returns its reference digest. A blob already
    /// recorded keeps what is known of its local copy.
    pub fn put(&self, hash: &str, size: u64, executable: bool) -> Result<Digest, CacheError> {
        let d = Self::reference(hash, size);
        self.lock()
            .prepare_cached(
                "INSERT INTO remote_blobs(digest, hash, size, executable, local) VALUES(?1, ?2, ?3, ?4, NULL)
                 ON CONFLICT(digest) DO UPDATE SET executable = excluded.executable",
            )
            .and_then(|mut s| s.execute(params![&d.0[..], hash, size as i64, executable as i64]))
            .map_err(self.dberr())?;
        Ok(d)
    }

    /// The remote blob `d` is a reference digest of, if it is one.
    pub fn get(&self, d: &Digest) -> Result<Option<RemoteBlob>, CacheError> {
        let row: Option<(String, i64, i64, Option<Vec<u8>>)> = self
            .lock()
            .prepare_cached(
                "SELECT hash, size, executable, local FROM remote_blobs WHERE digest = ?1",
            )
            .and_then(|mut s| {
                s.query_row(params![&d.0[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(self.dberr())?;
        Ok(row.map(|(hash, size, executable, local)| RemoteBlob {
            hash,
            size: size as u64,
            executable: executable != 0,
            local: local.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok().map(Digest)),
        }))
    }

    /// The bytes of reference `d` are now the local blob `local`.
    pub fn set_local(&self, d: &Digest, local: &Digest) -> Result<(), CacheError> {
        self.lock()
            .prepare_cached("UPDATE remote_blobs SET local = ?2 WHERE digest = ?1")
            .and_then(|mut s| s.execute(params![&d.0[..], &local.0[..]]))
            .map_err(self.dberr())?;
        Ok(())
    }
}
