//! A file's identity without reading it, and when that identity can be
//! trusted.
//!
//! kiln skips reading a file whose recorded [`Stat`] (size, mtime, ctime,
//! inode) is unchanged. Two traps make stat alone unsafe, and this module
//! owns both answers:
//!
//! - **mtime can be set by anyone** (`cp -p`, `touch -r`, `tar`, `rsync`
//!   keep or restore it), so a same-size rewrite can keep size, mtime and
//!   even the inode. The ctime cannot be set from user space: every write,
//!   `chmod` or `utimes` moves it. It is part of the identity.
//! - **Racily clean entries** (git's term). Timestamps have a granularity
//!   (a kernel tick on ext4 or tmpfs, one or two seconds on others), so a
//!   file changed again within the tick in which it was recorded keeps
//!   its timestamps. A stat whose mtime or ctime falls within one
//!   granularity of the moment it was taken is recorded as *racy*: it never
//!   proves anything, and the next build reads the file (and records it
//!   again, by then no longer racy).
//!
//! The granularity is not reported by the kernel. Timestamps whose
//! nanosecond parts are both zero come from a filesystem with whole-second
//! (or FAT's two-second) resolution: two seconds then; otherwise
//! [`FINE_GRANULARITY_NS`], several kernel ticks at the lowest tick rate.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::{SystemTime, UNIX_EPOCH};

/// How close to the recording time a timestamp with sub-second resolution
/// must be to make the entry racy: 50 ms, five ticks at `HZ=100`.
pub const FINE_GRANULARITY_NS: i64 = 50_000_000;

/// The same for filesystems with whole-second timestamps (FAT has two).
pub const COARSE_GRANULARITY_NS: i64 = 2_000_000_000;

/// The identity of a file's contents without reading it.
///
/// Deliberately not `PartialEq`: whether a recorded stat still describes a
/// file is [`Stat::proves_unchanged`], which also refuses racy entries.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch (not settable from
    /// user space).
    pub ctime_ns: i64,
    /// Inode number.
    pub inode: u64,
    /// Taken within a timestamp granularity of the file's last change: a
    /// later change may not show in the timestamps, so this stat proves
    /// nothing.
    pub racy: bool,
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Stat {
    /// The stat of `m`, read just now.
    pub fn of(m: &fs::Metadata) -> Self {
        Self::since(m, now_ns())
    }

    /// The stat of a file that only kiln writes, and only by renaming a
    /// new file into place (a new inode each time, so a rewrite within one
    /// tick still shows): never racy.
    pub fn of_replaced_by_rename(m: &fs::Metadata) -> Self {
        Stat {
            racy: false,
            ..Self::of(m)
        }
    }

    /// The stat of `m`, racy when the file changed within a granularity of
    /// `since_ns` or later: `since_ns` is when its contents were (or will
    /// be) read, e.g. the start of the pass that reads them.
    pub fn since(m: &fs::Metadata, since_ns: i64) -> Self {
        Self::from_parts(
            m.len(),
            m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            m.ino(),
            since_ns,
        )
    }

    /// A stat from its parts, racy as [`Stat::since`] decides.
    pub fn from_parts(size: u64, mtime_ns: i64, ctime_ns: i64, inode: u64, since_ns: i64) -> Self {
        let whole_seconds =
            mtime_ns.rem_euclid(1_000_000_000) == 0 && ctime_ns.rem_euclid(1_000_000_000) == 0;
        let granularity = if whole_seconds {
            COARSE_GRANULARITY_NS
        } else {
            FINE_GRANULARITY_NS
        };
        let racy = mtime_ns.max(ctime_ns) > since_ns.saturating_sub(granularity);
        Stat {
            size,
            mtime_ns,
            ctime_ns,
            inode,
            racy,
        }
    }

    /// Whether this recorded stat proves that a file which now stats as
    /// `now` still has the contents it had when this was recorded.
    pub fn proves_unchanged(&self, now: &Stat) -> bool {
        !self.racy && self.same_timestamps_and_inode(now)
    }

    /// Size, mtime, ctime and inode equal (racy or not): for tests and
    /// diagnostics, never for freshness.
    pub fn same_timestamps_and_inode(&self, other: &Stat) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.ctime_ns == other.ctime_ns
            && self.inode == other.inode
    }
}

/// Whether the recorded `then` proves a file unchanged, given its state
/// `now` (`None`: missing). A file missing then and now is unchanged.
pub fn unchanged(then: Option<&Stat>, now: Option<&Stat>) -> bool {
    match (then, now) {
        (None, None) => true,
        (Some(a), Some(b)) => a.proves_unchanged(b),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn ctime_is_part_of_the_identity() {
        let a = Stat::from_parts(4, 10 * S + 5, 20 * S + 7, 9, 100 * S);
        let b = Stat::from_parts(4, 10 * S + 5, 21 * S + 3, 9, 100 * S);
        assert!(!a.racy && !b.racy);
        assert!(a.proves_unchanged(&a));
        assert!(
            !a.proves_unchanged(&b),
            "same size, mtime, inode; new ctime"
        );
    }

    #[test]
    fn entries_recorded_within_the_granularity_are_racy() {
        // Fine timestamps: racy within 50 ms of the recording.
        let t = 100 * S + 123;
        assert!(Stat::from_parts(1, t - 10_000_000, t - 20_000_000, 1, t).racy);
        assert!(Stat::from_parts(1, t - 90_000_000, t - 10_000_000, 1, t).racy);
        assert!(!Stat::from_parts(1, t - 90_000_000, t - 60_000_000, 1, t).racy);
        // A timestamp after the reference (set in the future) is racy.
        assert!(Stat::from_parts(1, t + S, t - S, 1, t).racy);
        // Whole-second timestamps: racy within two seconds.
        assert!(Stat::from_parts(1, 99 * S, 99 * S, 1, 100 * S).racy);
        assert!(!Stat::from_parts(1, 97 * S, 97 * S, 1, 100 * S).racy);
        // A racy record proves nothing, even against identical timestamps.
        let r = Stat::from_parts(1, t, t, 1, t);
        assert!(r.same_timestamps_and_inode(&r) && !r.proves_unchanged(&r));
    }

    #[test]
    fn missing_files() {
        let a = Stat::from_parts(1, S + 1, S + 1, 1, 10 * S);
        assert!(unchanged(None, None));
        assert!(!unchanged(Some(&a), None));
        assert!(!unchanged(None, Some(&a)));
        assert!(unchanged(Some(&a), Some(&a)));
    }
}
