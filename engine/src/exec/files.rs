//! The workspace filesystem as the scheduler sees it: the stat and hash of
//! sources, outputs and tools, and placing a blob at an output path. The
//! real one is [`DiskFs`]; tests wrap it to inject faults (a full disk,
//! an unreadable file) and check that a build fails cleanly.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use kiln_cache::{Digest, Stat};

/// What the scheduler does to the workspace.
pub trait Fs: Send + Sync {
    /// The state of the regular file at `path` (`None`: missing or not a
    /// file), racy relative to `since_ns` (see `kiln_cache::stat`).
    fn stat_file(&self, path: &Path, since_ns: i64) -> Option<Stat>;

    /// The state of the entry at `path`, not following a final symlink.
    fn stat_entry(&self, path: &Path, since_ns: i64) -> Option<Stat>;

    /// The content digest of the file at `path`.
    fn digest(&self, path: &Path) -> io::Result<Digest>;

    /// Make `dest` the blob at `blob` (a hardlink, or a copy where links
    /// fail), atomically through the temporary path `tmp`, unless it
    /// already is; the state of `dest` afterwards.
    fn place(&self, blob: &Path, dest: &Path, tmp: &Path) -> io::Result<Stat>;
}

/// The real filesystem.
pub struct DiskFs;

impl Fs for DiskFs {
    fn stat_file(&self, path: &Path, since_ns: i64) -> Option<Stat> {
        fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| Stat::since(&m, since_ns))
    }

    fn stat_entry(&self, path: &Path, since_ns: i64) -> Option<Stat> {
        fs::symlink_metadata(path)
            .ok()
            .map(|m| Stat::since(&m, since_ns))
    }

    fn digest(&self, path: &Path) -> io::Result<Digest> {
        Digest::of_file(path)
    }

    fn place(&self, blob: &Path, dest: &Path, tmp: &Path) -> io::Result<Stat> {
        let same = match (fs::metadata(dest), fs::metadata(blob)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            let _ = fs::remove_file(tmp);
            if fs::hard_link(blob, tmp).is_err() {
                fs::copy(blob, tmp)?;
            }
            fs::rename(tmp, dest)?;
        }
        Ok(Stat::of(&fs::metadata(dest)?))
    }
}
