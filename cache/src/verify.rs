//! `kiln cache verify`: every blob against its digest, every action
//! result's blobs present, orphans counted; with `repair`, what is broken
//! is dropped (a corrupt blob, a result that names a missing or corrupt
//! blob or does not decode), so the actions run again.

use std::collections::HashSet;
use std::fs;

use rusqlite::params;

use crate::{ActionResult, Cache, CacheError, Digest};

/// What [`Cache::verify`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// `PRAGMA integrity_check` of the database: `None` when "ok".
    pub database: Option<String>,
    /// Blobs read and hashed.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Blobs whose bytes do not hash to their name.
    pub corrupt_blobs: Vec<Digest>,
    /// Files in `blobs/` that are not named like a blob.
    pub stray_files: Vec<String>,
    /// Action results checked.
    pub results: u64,
    /// Results that do not decode or name a missing or corrupt blob, with
    /// why.
    pub broken_results: Vec<(Digest, String)>,
    /// Partial blob copies left by a kiln process that died (removed by
    /// repair; harmless).
    pub leftovers: Vec<String>,
    /// Blobs no result names (reclaimed by `kiln cache gc`).
    pub orphans: u64,
    /// Their bytes.
    pub orphan_bytes: u64,
    /// With repair: what was removed (blobs, results).
    pub repaired: Option<(u64, u64)>,
}

impl VerifyReport {
    /// Whether anything is broken (orphans are not).
    pub fn broken(&self) -> bool {
        self.database.is_some()
            || !self.corrupt_blobs.is_empty()
            || !self.stray_files.is_empty()
            || !self.broken_results.is_empty()
    }
}

impl Cache {
    /// Check the whole cache; with `repair`, drop what is broken. Open the
    /// cache with [`Cache::open_exclusive`] to repair.
    pub fn verify(&mut self, repair: bool) -> Result<VerifyReport, CacheError> {
        let mut rep = VerifyReport {
            database: self.integrity(),
            ..Default::default()
        };
        if repair && rep.database.is_some() {
            self.rebuild_database()?;
            rep.database = self.integrity();
        }
        // Every blob, hashed.
        let mut present: HashSet<Digest> = HashSet::new();
        let mut sizes = std::collections::HashMap::new();
        for (d, size) in self.list_blobs()? {
            rep.blobs += 1;
            rep.blob_bytes += size;
            match Digest::of_file(&self.blobs.path(&d)) {
                Ok(got) if got == d => {
                    present.insert(d);
                    sizes.insert(d, size);
                }
                _ => rep.corrupt_blobs.push(d),
            }
        }
        (rep.stray_files, rep.leftovers) = self.stray_files()?;
        // Outputs left in a remote CAS are references, not blobs.
        let remote = self.remote_refs()?;
        let rows: Vec<(Vec<u8>, Vec<u8>)> = {
            let mut stmt = self
                .db
                .prepare("SELECT key, result FROM actions")
                .map_err(self.dberr())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.dberr())?;
            rows.collect::<Result<_, _>>().map_err(self.dberr())?
        };
        let mut named: HashSet<Digest> = HashSet::new();
        let mut broken_keys = Vec::new();
        for (key, result) in &rows {
            rep.results += 1;
            let k = <[u8; 32]>::try_from(&key[..])
                .map(Digest)
                .unwrap_or(Digest([0; 32]));
            let why = match ActionResult::decode(result) {
                None => Some("the result does not decode".to_owned()),
                Some(r) => {
                    let mut why = None;
                    for o in &r.outputs {
                        named.insert(o.digest);
                        if !present.contains(&o.digest) && !remote.contains_key(&o.digest) {
                            why.get_or_insert(format!(
                                "output `{}` (blob {}) is missing or corrupt",
                                o.path,
                                o.digest.hex()
                            ));
                        }
                    }
                    if let Some(l) = r.log {
                        named.insert(l);
                        if !present.contains(&l) {
                            why.get_or_insert(format!(
                                "log blob {} is missing or corrupt",
                                l.hex()
                            ));
                        }
                    }
                    why
                }
            };
            if let Some(why) = why {
                rep.broken_results.push((k, why));
                broken_keys.push(key.clone());
            }
        }
        // A remote reference's local copy is named through the reference.
        named.extend(remote.values().flatten());
        for (d, size) in &sizes {
            if !named.contains(d) {
                rep.orphans += 1;
                rep.orphan_bytes += size;
            }
        }
        if repair {
            let mut blobs_removed = 0;
            for d in &rep.corrupt_blobs {
                if fs::remove_file(self.blobs.path(d)).is_ok() {
                    blobs_removed += 1;
                }
            }
            for name in rep.stray_files.iter().chain(&rep.leftovers) {
                if fs::remove_file(self.blobs.dir.join(name)).is_ok() {
                    blobs_removed += 1;
                }
            }
            let results_removed = broken_keys.len() as u64;
            if !broken_keys.is_empty() {
                self.transaction(|w| w.drop_results(&broken_keys))?;
            }
            rep.repaired = Some((blobs_removed, results_removed));
        }
        Ok(rep)
    }

    /// `PRAGMA integrity_check`: `None` when the database is sound.
    fn integrity(&self) -> Option<String> {
        match self
            .db
            .query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
        {
            Ok(s) if s == "ok" => None,
            Ok(s) => Some(s),
            Err(e) => Some(e.to_string()),
        }
    }

    /// Replace a corrupt database by a new one holding every action result
    /// that can still be read (file states and `kiln explain` records are
    /// dropped: they are rebuilt by the next build).
    fn rebuild_database(&mut self) -> Result<(), CacheError> {
        type Row = (Vec<u8>, Vec<u8>, i64, i64, i64);
        let mut rows: Vec<Row> = Vec::new();
        if let Ok(mut stmt) = self
            .db
            .prepare("SELECT key, result, size, created, last_access FROM actions")
            && let Ok(it) = stmt.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
        {
            // A damaged b-tree fails part way: keep what came before.
            for row in it {
                match row {
                    Ok(r) => rows.push(r),
                    Err(_) => break,
                }
            }
        }
        let scratch = rusqlite::Connection::open_in_memory().map_err(self.dberr())?;
        let old = std::mem::replace(&mut self.db, scratch);
        drop(old);
        crate::db::move_aside(&self.db_path)?;
        self.db = crate::db::connect(&self.db_path)?;
        match crate::db::init_schema(&self.db) {
            Ok(_) => {}
            Err(e) => return Err(self.dberr()(e)),
        }
        self.transaction(|w| {
            for (k, r, size, created, last) in &rows {
                w.tx.execute(
                    "INSERT OR IGNORE INTO actions(key, result, size, created, last_access) VALUES(?1, ?2, ?3, ?4, ?5)",
                    params![k, r, size, created, last],
                )
                .map_err(|source| CacheError::Db {
                    path: w.path.to_path_buf(),
                    source,
                })?;
            }
            Ok(())
        })
    }

    /// Files under `blobs/` that are not named like a blob, and partial
    /// copies of dead processes (paths relative to `blobs/`).
    fn stray_files(&self) -> Result<(Vec<String>, Vec<String>), CacheError> {
        let mut out = Vec::new();
        let mut leftovers = Vec::new();
        let Ok(shards) = fs::read_dir(&self.blobs.dir) else {
            return Ok((out, leftovers));
        };
        for shard in shards.flatten() {
            let prefix = shard.file_name().to_string_lossy().into_owned();
            let Ok(entries) = fs::read_dir(shard.path()) else {
                out.push(prefix);
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let is_blob = crate::gc::parse_hex(&format!("{prefix}{name}")).is_some()
                    && e.file_type().is_ok_and(|t| t.is_file());
                // Partial copies of a live writer (`.tmp-<pid>-<n>`) are not
                // strays while that process lives.
                let tmp_of = name
                    .strip_prefix(".tmp-")
                    .and_then(|r| r.split('-').next())
                    .and_then(|p| p.parse::<u32>().ok());
                match tmp_of {
                    Some(p) if std::path::Path::new(&format!("/proc/{p}")).exists() => {}
                    Some(_) => leftovers.push(format!("{prefix}/{name}")),
                    None if !is_blob => out.push(format!("{prefix}/{name}")),
                    None => {}
                }
            }
        }
        out.sort();
        leftovers.sort();
        Ok((out, leftovers))
    }
}
