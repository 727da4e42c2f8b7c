//! Building without the bytes (`--remote-download-outputs=toplevel`): the
//! outputs of actions run on the executor stay in its CAS. Their results
//! name them by reference digests (`kiln_cache::RemoteRefs`), which stand
//! in for their BLAKE3 in action keys, so a build's keys do not depend on
//! what was downloaded. Bytes are fetched, checked against the server's
//! digest and stored under their own BLAKE3 only when something here needs
//! them:
//! - a local action (in-process kinds, `no-remote-exec`, fallback) that
//!   reads one as an input: [`RemoteExecutor::localize`] before it runs;
//! - materializing a requested target's outputs into `kiln-out/`, and every
//!   output with `all` (so a later `all` build or `kiln run` fetches what
//!   the earlier `toplevel` one left remote);
//! - nothing else: a remote action's remote inputs are named to the
//!   executor by their server digests.
//!
//! A cached result whose outputs are only remote is used when the server
//! still holds them (`FindMissingBlobs`); otherwise the action runs again,
//! as with a corrupt local blob. Without an executor such results are never
//! usable (the blobs are missing) and their actions run locally.

use std::sync::atomic::Ordering;

use kiln_cache::{Blobs, Digest, RemoteBlob, RemoteRefs};

use super::exec::RemoteExecutor;
use super::{Backend, WireDigest};

/// Which outputs of remote actions are downloaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Download {
    /// Every output, as it is produced.
    #[default]
    All,
    /// Only what the requested targets provide and local actions read.
    Toplevel,
}

impl RemoteExecutor {
    /// The `remote_blobs` table, opened on first use.
    fn refs(&self) -> Result<&RemoteRefs, String> {
        self.refs
            .get_or_init(|| RemoteRefs::open(&self.cache_dir).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether outputs are left on the server.
    pub fn keeps_outputs_remote(&self) -> bool {
        self.download == Download::Toplevel
    }

    /// Record an output left on the server; its reference digest.
    pub(super) fn record_remote(&self, w: &WireDigest, executable: bool) -> Result<Digest, String> {
        let d = self
            .refs()?
            .put(&w.hash, w.size as u64, executable)
            .map_err(|e| e.to_string())?;
        self.note_wire(d, w.clone());
        Ok(d)
    }

    /// The remote blob `d` stands for, when `d` is a reference digest
    /// whose bytes are not in the local store.
    pub fn remote_blob(&self, blobs: &Blobs, d: &Digest) -> Option<RemoteBlob> {
        if blobs.contains(d) {
            return None;
        }
        self.refs().ok()?.get(d).ok().flatten()
    }

    /// The local blob holding the bytes of `d`: `d` itself when it is in
    /// the store, else, for a reference digest, its fetched copy (fetched
    /// now if need be). A digest that is neither comes back unchanged (the
    /// caller finds it missing, as without an executor).
    pub fn localize(&self, blobs: &Blobs, d: &Digest) -> Result<Digest, String> {
        match self.remote_blob(blobs, d) {
            None => Ok(*d),
            Some(r) => self.fetch(blobs, d, &r),
        }
    }

    /// The local blob holding the bytes of reference `d`, which stands for
    /// `r`: its fetched copy, fetched now if need be.
    pub fn fetch(&self, blobs: &Blobs, d: &Digest, r: &RemoteBlob) -> Result<Digest, String> {
        if let Some(l) = r.local.filter(|l| blobs.contains(l)) {
            return Ok(l);
        }
        let w = WireDigest {
            hash: r.hash.clone(),
            size: r.size as i64,
        };
        let hf = self
            .grpc
            .hash_fn()
            .map_err(|e| format!("cannot reach the remote executor {}: {e}", self.url))?;
        let lost = |why: String| {
            format!(
                "the output {}/{} was left on the remote executor {} (--remote-download-outputs=toplevel) and cannot be fetched: {why}; build again (its action runs again)",
                w.hash, w.size, self.url
            )
        };
        let bytes = self
            .grpc
            .read_blobs(std::slice::from_ref(&w))
            .map_err(lost)?
            .pop()
            .unwrap_or_default();
        if hf.digest(&bytes) != w {
            return Err(lost(
                "the server's bytes do not match the digest".to_owned(),
            ));
        }
        self.traffic
            .bytes_down
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let local = Digest::of(&bytes);
        super::exec::store(blobs, &bytes, &local, r.executable)
            .map_err(|e| format!("cannot store a fetched output: {e}"))?;
        self.refs()?
            .set_local(d, &local)
            .map_err(|e| e.to_string())?;
        self.note_wire(local, w);
        Ok(local)
    }

    /// Whether the server still holds these references' blobs (one
    /// `FindMissingBlobs`); those with a sound local copy are not asked
    /// about. `Err` names one that is gone.
    pub fn still_remote(&self, blobs: &Blobs, refs: &[(Digest, RemoteBlob)]) -> Result<(), Digest> {
        let wanted: Vec<(Digest, WireDigest)> = refs
            .iter()
            .filter(|(_, r)| !r.local.is_some_and(|l| blobs.verify(&l)))
            .map(|(d, r)| {
                let w = WireDigest {
                    hash: r.hash.clone(),
                    size: r.size as i64,
                };
                (*d, w)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if !self.is_on() {
            return Err(wanted[0].0);
        }
        let ws: Vec<WireDigest> = wanted.iter().map(|(_, w)| w.clone()).collect();
        match self.grpc.find_missing(&ws) {
            Ok(missing) => match wanted.iter().find(|(_, w)| missing.contains(w)) {
                Some((d, _)) => Err(*d),
                None => {
                    self.mark_present(ws);
                    Ok(())
                }
            },
            Err(_) => Err(wanted[0].0),
        }
    }
}
