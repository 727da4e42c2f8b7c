//! Materializing outputs: verified blobs hardlinked (or copied) into
//! `kiln-out/` by atomic rename, their state recorded; and removing the
//! temporary files of kiln processes that died.

use std::fs;
use std::path::Path;

use kiln_cache::{ActionResult, Blobs, Digest, FileState};

use super::ExecError;
use super::journal::Write;
use super::sandbox::{self};
use super::scheduler::Scheduler;

impl Scheduler<'_> {
    pub(super) fn materialize(
        &mut self,
        i: usize,
        r: &ActionResult,
        key: Digest,
    ) -> Result<(), ExecError> {
        let tmp_dir = crate::artifact::state_dir(self.root).join("tmp");
        for o in &r.outputs {
            let wp = self.plan.workspace_path(&o.path).into_owned();
            let dest = self.root.join(&wp);
            let mut local = o.digest;
            if let Some(ex) = self.opts.executor.clone()
                && let Some(r) = ex.remote_blob(&self.blobs, &o.digest)
            {
                if self.toplevel.as_ref().is_some_and(|t| !t.contains(&o.path)) {
                    // Left on the executor; no file of an earlier build
                    // stays in its place.
                    match fs::remove_file(&dest) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(ExecError::Io {
                                path: dest,
                                message: e.to_string(),
                            });
                        }
                    }
                    self.states.remove(&wp);
                    self.left_remote = true;
                    self.produce(i, &o.path, o.digest);
                    continue;
                }
                local = ex
                    .fetch(&self.blobs, &o.digest, &r)
                    .map_err(|message| ExecError::Io {
                        path: dest.clone(),
                        message,
                    })?;
            }
            let blob = self.blobs.path(&local);
            let tmp = tmp_dir.join(format!("{}-{}", std::process::id(), o.digest.hex()));
            let stat = self
                .fs
                .place(&blob, &dest, &tmp)
                .map_err(|e| ExecError::Io {
                    path: dest.clone(),
                    message: e.to_string(),
                })?;
            kiln_cache::fault::point("materialize");
            let st = FileState {
                stat,
                digest: o.digest,
                key: Some(key),
            };
            self.states.insert(wp, st);
            self.writes
                .push(Write::File(dest.to_string_lossy().into_owned(), st));
            self.produce(i, &o.path, o.digest);
        }
        // A result missing a declared output cannot be used.
        for (x, d) in self.plan.actions[i].outputs.iter().zip(&self.produced[i]) {
            if d.is_none() {
                return Err(ExecError::Io {
                    path: self.root.join(&*self.plan.workspace_path(x.path())),
                    message: "cached result lacks this output".into(),
                });
            }
        }
        Ok(())
    }
}

impl Scheduler<'_> {
    /// Action `i` made `path` with digest `d`.
    fn produce(&mut self, i: usize, path: &str, d: Digest) {
        if let Some(k) = self.plan.actions[i]
            .outputs
            .iter()
            .position(|x| x.path() == path)
        {
            self.produced[i][k] = Some(d);
        }
    }
}

/// Remove sandboxes and temporary files left by kiln processes that died
/// (named `<what>-<pid>-<n>` in the cache's `tmp/`).
pub(super) fn remove_stale_temporaries(blobs: &Blobs) {
    let Ok(rd) = fs::read_dir(blobs.tmp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            sandbox::remove_tree(&e.path());
        }
    }
}
