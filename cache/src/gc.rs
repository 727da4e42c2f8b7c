//! Garbage collection: least recently used action results go first, and a
//! blob goes only when no kept result needs it.

use std::fs;

use rusqlite::params;

use std::collections::HashMap;

use crate::{ActionResult, Cache, CacheError, Digest};

impl Cache {
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
        let remote = self.remote_refs()?;
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
            ds.extend(
                r.outputs
                    .iter()
                    .filter_map(|o| remote.get(&o.digest).copied().flatten()),
            );
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
            w.drop_results(&drop_keys)?;
            for d in remote.keys().filter(|d| !keep_blobs.contains(*d)) {
                w.tx.execute(
                    "DELETE FROM remote_blobs WHERE digest = ?1",
                    params![&d.0[..]],
                )
                .map_err(|source| CacheError::Db {
                    path: w.path.to_path_buf(),
                    source,
                })?;
            }
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

impl Cache {
    /// Outputs left in a remote CAS (their references) and their local
    /// copies, once fetched.
    pub(crate) fn remote_refs(&self) -> Result<HashMap<Digest, Option<Digest>>, CacheError> {
        let mut stmt = self
            .db
            .prepare("SELECT digest, local FROM remote_blobs")
            .map_err(self.dberr())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
            })
            .map_err(self.dberr())?;
        let digest = |b: &[u8]| <[u8; 32]>::try_from(b).ok().map(Digest);
        Ok(rows
            .filter_map(Result::ok)
            .filter_map(|(d, l)| Some((digest(&d)?, l.and_then(|l| digest(&l)))))
            .collect())
    }
}

pub(crate) fn parse_hex(s: &str) -> Option<Digest> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Digest(out))
}
