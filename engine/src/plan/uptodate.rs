//! The no-op fast path: proving a build has nothing to do by stat alone.
//!
//! After a complete, successful build kiln writes
//! `kiln-out/.kiln/uptodate-<request digest>` (patterns and configuration): the engine stamp, the cache
//! directory, the plan file's state, and the state (size, mtime, ctime,
//! inode, racy) of every file the build depended on: the files loading read, every source
//! input, every output in `kiln-out/` and every tool. If, at the next build
//! with the same patterns and configuration, every one of them is unchanged, no input can have
//! changed and every output is still what the last build left, so the build
//! is a no-op, decided without decoding the plan, computing keys or
//! touching the database. Any difference (or a missing or unreadable file,
//! or a state recorded racily: `kiln_cache::stat`) means the normal path
//! runs, which checks contents and rewrites this file when it succeeds.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_cache::codec::{Reader as R, Writer};
use kiln_cache::{Digest, Stat};
use rayon::prelude::*;

use super::PlanTarget;
use super::Request;
use super::persist::{engine_stamp, plan_dir, stat_of};

const FORMAT: u32 = 3;

/// What a no-op build reports.
pub struct NoOp {
    /// Actions in the plan.
    pub total: usize,
    /// The requested targets.
    pub targets: Vec<PlanTarget>,
    /// Actions whose `runs` records must now say "up to date".
    pub changed: Vec<String>,
    /// The configuration's directory under `kiln-out/` (the plan's).
    pub out_dir: Option<String>,
}

fn path_for(root: &Path, req: &Request, name: &str) -> PathBuf {
    let mut h = blake3::Hasher::new();
    for p in &req.patterns {
        h.update(p.to_string().as_bytes());
        h.update(b"\n");
    }
    h.update(req.config.key().as_bytes());
    let d = Digest(*h.finalize().as_bytes());
    plan_dir(root).join(format!("{name}-{}", &d.hex()[..16]))
}

/// The plan file of `patterns` (whose state is part of the record).
pub fn plan_file(root: &Path, req: &Request) -> PathBuf {
    path_for(root, req, "plan")
}

/// Record a successful build: the state of `files`, and what the next
/// no-op reports (`done`).
pub fn write(
    root: &Path,
    req: &Request,
    cache_dir: &Path,
    files: &[(PathBuf, Option<Stat>)],
    done: &NoOp,
) -> std::io::Result<()> {
    let plan_state = fs::metadata(plan_file(root, req))
        .ok()
        .map(|m| Stat::of_replaced_by_rename(&m));
    let b = encode(&engine_stamp(), cache_dir, plan_state, files, done);
    let path = path_for(root, req, "uptodate");
    fs::create_dir_all(plan_dir(root))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, &b)?;
    fs::rename(&tmp, &path)
}

/// Forget the record (before a build that may change things).
pub fn invalidate(root: &Path, req: &Request) {
    let _ = fs::remove_file(path_for(root, req, "uptodate"));
}

/// `Some` when the last build of `patterns` is provably still complete.
pub fn check(root: &Path, req: &Request, cache_dir: &Path) -> Option<NoOp> {
    let bytes = fs::read(path_for(root, req, "uptodate")).ok()?;
    let record = decode(&bytes)?;
    if record.stamp != engine_stamp().as_slice()
        || record.cache_dir != cache_dir.to_string_lossy()
        || !kiln_cache::stat::unchanged(
            record.plan_state.as_ref(),
            stat_of(&plan_file(root, req)).as_ref(),
        )
    {
        return None;
    }
    let unchanged =
        record.files.par_iter().with_min_len(256).all(|(p, st)| {
            kiln_cache::stat::unchanged(st.as_ref(), stat_of(Path::new(p)).as_ref())
        });
    unchanged.then_some(record.done)
}

/// A decoded no-op record, before any of its states is compared.
#[doc(hidden)]
pub struct Record<'a> {
    /// The engine stamp it was written with.
    pub stamp: &'a [u8],
    /// The cache directory of that build.
    pub cache_dir: &'a str,
    /// The plan file's state then.
    pub plan_state: Option<Stat>,
    /// Every file the build depended on, with its state then.
    pub files: Vec<(&'a str, Option<Stat>)>,
    /// What a no-op reports.
    pub done: NoOp,
}

/// The bytes of a no-op record (what [`write`] stores); public for the
/// fuzzer's seeds.
#[doc(hidden)]
pub fn encode(
    stamp: &[u8],
    cache_dir: &Path,
    plan_state: Option<Stat>,
    files: &[(PathBuf, Option<Stat>)],
    done: &NoOp,
) -> Vec<u8> {
    let NoOp {
        total,
        targets,
        changed,
        out_dir,
    } = done;
    let mut w = Writer(Vec::with_capacity(64 + files.len() * 80));
    w.0.extend(b"KILNUP2D");
    w.u32(FORMAT);
    w.bytes(stamp);
    w.str(&cache_dir.to_string_lossy());
    w.stat(plan_state);
    w.u64(*total as u64);
    w.str(out_dir.as_deref().unwrap_or(""));
    w.u32(targets.len() as u32);
    targets.iter().for_each(|t| t.encode(&mut w));
    w.u32(files.len() as u32);
    for (p, st) in files {
        w.str(&p.to_string_lossy());
        w.stat(*st);
    }
    w.u32(changed.len() as u32);
    changed.iter().for_each(|c| w.str(c));
    w.0
}

/// Read what [`encode`] wrote; `None` for another format or malformed
/// bytes. Never panics, and allocates in proportion to `bytes` whatever
/// its counts say. What [`check`] runs; public for the fuzzer
/// (`kiln-fuzz plan_codec`).
#[doc(hidden)]
pub fn decode(bytes: &[u8]) -> Option<Record<'_>> {
    let mut r = R(bytes);
    if r.take(8)? != b"KILNUP2D" || r.u32()? != FORMAT {
        return None;
    }
    let stamp = r.bytes()?;
    let cache_dir = r.str()?;
    let plan_state = r.stat()?;
    let total = r.u64()? as usize;
    let out_dir = Some(r.str()?.to_owned()).filter(|d| !d.is_empty());
    let nt = r.u32()?;
    let targets = (0..nt)
        .map(|_| PlanTarget::decode(&mut r))
        .collect::<Option<Vec<_>>>()?;
    let nf = r.u32()?;
    // Each file takes bytes: a corrupt count cannot allocate more than
    // the record's size in entries.
    let mut files = Vec::with_capacity((nf as usize).min(r.0.len()));
    for _ in 0..nf {
        files.push((r.str()?, r.stat()?));
    }
    let nc = r.u32()? as usize;
    let changed = (0..nc)
        .map(|_| r.str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()?;
    Some(Record {
        stamp,
        cache_dir,
        plan_state,
        files,
        done: NoOp {
            total,
            targets,
            changed,
            out_dir,
        },
    })
}

/// Clear the list of changed actions once their records are updated.
pub fn clear_changed(root: &Path, req: &Request) {
    let path = path_for(root, req, "uptodate");
    let Ok(mut bytes) = fs::read(&path) else {
        return;
    };
    // The list is the file's tail: find it by parsing the rest again.
    let Some(tail) = changed_offset(&bytes) else {
        return;
    };
    bytes.truncate(tail);
    bytes.extend(0u32.to_le_bytes());
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if fs::write(&tmp, &bytes).is_ok() {
        let _ = fs::rename(&tmp, &path);
    }
}

/// Where the list of changed actions starts in a record's `bytes` (what
/// [`clear_changed`] truncates at); public for the fuzzer.
#[doc(hidden)]
pub fn changed_offset(bytes: &[u8]) -> Option<usize> {
    let mut r = R(bytes);
    r.take(12)?;
    r.bytes()?;
    r.str()?;
    r.stat()?;
    r.u64()?;
    r.str()?;
    for _ in 0..r.u32()? {
        PlanTarget::decode(&mut r)?;
    }
    for _ in 0..r.u32()? {
        r.str()?;
        r.stat()?;
    }
    Some(bytes.len() - r.0.len())
}
