//! The fuzz targets: what each one feeds its input to, the tokens its
//! mutations insert, and where its seeds come from.
//!
//! A target is a function from bytes to "accepted" (the input parsed or
//! decoded), made by [`Target::setup`] so that costly state (a loader with
//! the built-in ruleset evaluated) is built once per run. Targets hold
//! kiln to more than "does not panic" where a round trip says something:
//! a parsed label prints as text that parses to the same label, a decoded
//! record re-encodes to bytes that decode to the same record.
//!
//! Seeds are real inputs: labels, queries, `kiln.toml` and `BUILD.star`
//! files of this repository and its test fixtures, and records encoded by
//! kiln itself (plans of the fixture workspaces, action results); plus
//! every saved regression input (`fuzz/regressions/<target>/`).
//!
//! Files: `text.rs` (label, pattern, query, kiln_toml), `build_file.rs`,
//! `codec.rs` (plan_codec, cache_codec), `remote.rs` (reapi_result,
//! http_result).

mod build_file;
mod codec;
mod remote;
mod text;

use std::fs;
use std::path::{Path, PathBuf};

/// A target's function: run one input, returning whether it was
/// accepted (parsed, decoded).
pub type Run = Box<dyn FnMut(&[u8]) -> bool>;

/// A fuzz target.
pub struct Target {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it exercises (`kiln-fuzz --list`).
    pub about: &'static str,
    /// The longest input it is given.
    pub max_len: usize,
    /// Tokens of its input's grammar, for mutations to insert.
    pub dict: &'static [&'static [u8]],
    /// Its seed inputs.
    pub seeds: fn() -> Vec<Vec<u8>>,
    /// Build its function (and whatever state the function keeps).
    pub setup: fn() -> Run,
}

/// Every target, in the order `all` runs them.
pub fn all() -> &'static [Target] {
    TARGETS
}

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

static TARGETS: &[Target] = &[
    text::LABEL,
    text::PATTERN,
    text::QUERY,
    build_file::BUILD_FILE,
    text::KILN_TOML,
    codec::PLAN_CODEC,
    codec::CACHE_CODEC,
    remote::REAPI_RESULT,
    remote::HTTP_RESULT,
];

/// The repository this crate is in (seeds are read from it).
pub fn repo_root() -> PathBuf {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    fuzz.parent().unwrap_or(fuzz).to_path_buf()
}

/// Where the committed regression inputs of each target live.
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// The regression inputs of `target`, sorted by file name.
pub fn regression_files(target: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(regressions_dir().join(target))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// How the temporary directories targets make in process `pid` begin.
fn temp_prefix(pid: u32) -> String {
    format!("kiln-fuzz-{pid}-")
}

/// Remove the temporary directories a process that died left behind.
pub fn remove_temp_dirs(pid: u32) {
    let prefix = temp_prefix(pid);
    for e in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Seeds every target has: its regression inputs.
fn regression_seeds(target: &str) -> Vec<Vec<u8>> {
    regression_files(target)
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .collect()
}

/// Files of the repository called `name` (build outputs, `kiln-out`,
/// hidden directories and saved crashes left out), sorted.
fn repo_files(name: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let file_name = e.file_name();
            let n = file_name.to_string_lossy();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                if !(n.starts_with('.') || n == "target" || n == "kiln-out" || n == "crashes") {
                    walk(&p, name, out);
                }
            } else if n == name {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root(), name, &mut out);
    out.sort();
    out
}

/// The contents of the repository's files called `name`.
fn repo_file_contents(name: &str) -> Vec<Vec<u8>> {
    repo_files(name)
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .collect()
}

/// Quoted strings (`"..."`) in the repository's files called `name` that
/// `keep` accepts: labels and patterns as written in BUILD files.
fn quoted_strings(name: &str, keep: impl Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for text in repo_file_contents(name) {
        let text = String::from_utf8_lossy(&text);
        for (i, s) in text.split('"').enumerate() {
            if i % 2 == 1 && s.len() < 200 && keep(s) {
                out.push(s.as_bytes().to_vec());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
