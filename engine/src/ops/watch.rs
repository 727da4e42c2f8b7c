//! `--watch`: after a build (test, run), wait until a file it depends on
//! changes, then do it again.
//!
//! What a build depends on is what its plan says: the files loading read
//! (`kiln.toml`, BUILD and `.star` files, files read during analysis, the
//! directories walked for `...` patterns) and every source input of its
//! actions. Their directories are watched with inotify (through `nix`); an
//! event counts when it names one of those files (written, replaced by
//! rename, created, deleted, or its mode changed), or a BUILD.star or a
//! subdirectory appearing in a walked directory. Events are debounced: the
//! wait ends after 100 ms without a relevant event (at most 1 s after the
//! first), so an editor's save or a `git checkout` is one rebuild.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use super::build::{BuildError, make_plan};
use crate::plan::Request;
use crate::workspace::Workspace;

/// What a build of `req` depends on: files and the directories walked.
#[derive(Debug, Default)]
pub struct Watched {
    /// Files (absolute).
    pub files: BTreeSet<PathBuf>,
    /// Directories walked for recursive patterns (absolute).
    pub dirs: BTreeSet<PathBuf>,
}

/// The files and directories a build of `req` depends on, from its plan
/// (the persisted one when it is current, so this is cheap after a build).
pub fn watched(ws: &Workspace, req: &Request) -> Result<Watched, BuildError> {
    let made = make_plan(ws, req)?;
    let mut w = Watched::default();
    for (f, _) in &made.watched {
        let p = ws.root.join(f);
        if p.is_dir() {
            w.dirs.insert(p);
        } else {
            w.files.insert(p);
        }
    }
    for a in &made.plan.actions {
        for i in a.inputs.iter().filter(|i| i.is_source()) {
            w.files.insert(ws.root.join(i.path()));
        }
    }
    Ok(w)
}

const MASK: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ATTRIB);

/// Quiet time that ends a burst of events.
const SETTLE: Duration = Duration::from_millis(100);
/// The longest a burst may delay the rebuild.
const MAX_BURST: Duration = Duration::from_secs(1);
/// How often `interrupt` is checked while nothing happens.
const POLL: Duration = Duration::from_millis(50);

/// Wait until something in `w` changes; the first path that did, or
/// `None` when `interrupt` was set (Ctrl-C).
pub fn wait_for_change(w: &Watched, interrupt: &AtomicBool) -> Result<Option<PathBuf>, String> {
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .map_err(|e| format!("cannot watch files (inotify): {e}"))?;
    let mut dirs: HashMap<WatchDescriptor, PathBuf> = HashMap::new();
    let parents: BTreeSet<&Path> = w
        .files
        .iter()
        .filter_map(|f| f.parent())
        .chain(w.dirs.iter().map(PathBuf::as_path))
        .collect();
    for d in parents {
        // A directory that does not exist (yet) cannot be watched; its
        // files are then missing, which the next build reports.
        if let Ok(wd) = ino.add_watch(d, MASK) {
            dirs.insert(wd, d.to_path_buf());
        }
    }
    let relevant = |dir: &Path, name: &OsStr, mask: AddWatchFlags| {
        let path = dir.join(name);
        w.files.contains(&path)
            || (w.dirs.contains(dir)
                && (name == "BUILD.star" || mask.contains(AddWatchFlags::IN_ISDIR)))
    };
    let mut first: Option<(PathBuf, Instant)> = None;
    let mut last = Instant::now();
    loop {
        if interrupt.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match ino.read_events() {
            Ok(events) => {
                for e in events {
                    let (Some(dir), Some(name)) = (dirs.get(&e.wd), e.name.as_deref()) else {
                        continue;
                    };
                    if relevant(dir, name, e.mask) {
                        last = Instant::now();
                        if first.is_none() {
                            first = Some((dir.join(name), last));
                        }
                    }
                }
            }
            Err(Errno::EAGAIN) => {
                if let Some((path, at)) = &first
                    && (last.elapsed() >= SETTLE || at.elapsed() >= MAX_BURST)
                {
                    return Ok(Some(path.clone()));
                }
                std::thread::sleep(POLL.min(SETTLE / 2));
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(format!("cannot watch files (inotify): {e}")),
        }
    }
}
