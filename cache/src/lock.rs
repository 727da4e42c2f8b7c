//! The cache's process lock: every kiln process using the cache holds a
//! shared `flock` on `<cache>/lock`; garbage collection, `verify --repair`
//! and removing the cache hold it exclusively, so they never delete a blob
//! that a running build has written but not yet recorded.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::{CacheError, io_err};

/// A held lock; released when dropped (or when the process dies).
pub struct CacheLock {
    _lock: Flock<File>,
}

impl std::fmt::Debug for CacheLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheLock")
    }
}

/// Take the lock on the cache at `dir` (shared or exclusive), calling
/// `on_wait` once if another process holds it the other way.
pub fn lock(dir: &Path, exclusive: bool, on_wait: impl FnOnce()) -> Result<CacheLock, CacheError> {
    let path = dir.join("lock");
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))
    };
    flock_waiting(open()?, exclusive, on_wait)
        .map(|l| CacheLock { _lock: l })
        .map_err(|e| CacheError::Io {
            path: path.clone(),
            source: std::io::Error::from(e),
        })
}

/// `flock` `file` (shared or exclusive), calling `on_wait` once if another
/// process holds it the other way, then waiting for it (through EINTR).
pub fn flock_waiting(
    file: File,
    exclusive: bool,
    on_wait: impl FnOnce(),
) -> Result<Flock<File>, Errno> {
    let (now, wait) = if exclusive {
        (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
    } else {
        (FlockArg::LockSharedNonblock, FlockArg::LockShared)
    };
    match Flock::lock(file, now) {
        Ok(l) => Ok(l),
        Err((f, Errno::EWOULDBLOCK)) => {
            on_wait();
            let mut f = f;
            loop {
                match Flock::lock(f, wait) {
                    Ok(l) => return Ok(l),
                    Err((back, Errno::EINTR)) => f = back,
                    Err((_, e)) => return Err(e),
                }
            }
        }
        Err((_, e)) => Err(e),
    }
}
