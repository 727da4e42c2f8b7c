//! The blob store: one read-only file per content digest, in 256 shards,
//! written atomically through `tmp/` and verified before use.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{CacheError, Digest, io_err};

/// Blob store operations; cheap to clone and usable from any thread.
#[derive(Clone, Debug)]
pub struct Blobs {
    pub(crate) dir: PathBuf,
    pub(crate) tmp: PathBuf,
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
        crate::fault::point("blob_write");
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
        // A failure is the copy's write (a full disk) far more often than
        // its read: name the blob.
        if let Err(e) = fs::copy(src, &tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(&dest)(e));
        }
        crate::fault::point("blob_write");
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
        crate::fault::point("blob_write");
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
