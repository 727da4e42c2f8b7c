//! Filesystem helpers shared by the integration tests (each test crate uses
//! a part of them).
#![allow(dead_code, clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Copy a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A temporary directory removed (read-only files included) on drop.
pub struct Tmp(pub PathBuf);

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&self.0)
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// kiln's own cache (`$KILN_CACHE_DIR`, else `~/.cache/kiln`), shared by the
/// tests that build the heavy targets: each is built cold at most once,
/// by whichever test (or `.ci/pylon`) comes first.
pub fn shared_cache() -> PathBuf {
    std::env::var_os("KILN_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/kiln"))
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A copy of the repository's example workspace (root BUILD.star, caps,
/// providers, CPython and its fetched sources, pylon tests) at `to`.
pub fn example_workspace(to: &Path) {
    let repo = repo();
    for d in ["caps", "providers", "pylon", "settings", "third_party"] {
        copy_dir(&repo.join(d), &to.join(d));
    }
    for f in ["kiln.toml", "BUILD.star"] {
        fs::copy(repo.join(f), to.join(f)).unwrap();
    }
}

/// The actions a `kiln build` of `args` in `ws` executed (`//pkg:name#i
/// Mnemonic`, sorted), from its profile; panics if the build fails.
pub fn executed(ws: &Path, cache: &Path, args: &[&str]) -> Vec<String> {
    let trace = ws.join("trace.json");
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .args(["--progress", "none", "--cache-dir"])
        .arg(cache)
        .arg("--profile")
        .arg(&trace)
        .args(args)
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let t: serde_json::Value = serde_json::from_str(&fs::read_to_string(&trace).unwrap()).unwrap();
    let mut v: Vec<String> = t["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["args"]["cache"] == "executed")
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

/// The benchmark graph's shape, `p` packages of `t` genrules: `//pK:tI`
/// reads `sI.txt` and the outputs of `(K-1, I)` and `(K-1, (7I+3) mod t)`.
pub fn graph_workspace(to: &Path, p: usize, t: usize) {
    fs::create_dir_all(to).unwrap();
    fs::write(to.join("kiln.toml"), "").unwrap();
    fs::write(to.join("BUILD.star"), "").unwrap();
    for k in 0..p {
        let dir = to.join(format!("p{k}"));
        fs::create_dir_all(&dir).unwrap();
        let mut b = String::new();
        for i in 0..t {
            fs::write(dir.join(format!("s{i}.txt")), format!("source {k} {i}\n")).unwrap();
            let mut srcs = vec![format!("\"s{i}.txt\"")];
            if k > 0 {
                srcs.push(format!("\"//p{}:t{i}\"", k - 1));
                let j = (7 * i + 3) % t;
                if j != i {
                    srcs.push(format!("\"//p{}:t{j}\"", k - 1));
                }
            }
            b.push_str(&format!(
                "genrule(name = \"t{i}\", srcs = [{}], outs = [\"t{i}.out\"], cmd = \"cat $(SRCS) | cksum > $@; echo {k}.{i} >> $@\")\n",
                srcs.join(", ")
            ));
        }
        fs::write(dir.join("BUILD.star"), b).unwrap();
    }
}

/// Every file under `dir` (path relative to `dir` -> bytes), leaving out
/// any directory named `.kiln` (kiln's state, not outputs).
pub fn tree_files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(d) else { return };
        for e in entries.flatten() {
            if e.file_name() == ".kiln" {
                continue;
            }
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap_or_default());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A fresh, empty directory `<tmp>/kiln-<name>-<pid>`, removed on drop.
pub fn fresh_tmp(name: &str) -> Tmp {
    let d = std::env::temp_dir().join(format!("kiln-{name}-{}", std::process::id()));
    if d.exists() {
        drop(Tmp(d.clone()));
    }
    fs::create_dir_all(&d).unwrap();
    Tmp(d)
}

/// `kiln build ARGS EXTRA...` in `ws` with cache `cache` and
/// `--progress none`; (exit code, `--summary-json` document or null,
/// stderr).
pub fn kiln_build(
    ws: &Path,
    cache: &Path,
    args: &[&str],
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let summary = cache.with_extension("summary.json");
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .args(args)
        .args(extra)
        .args(["--progress", "none", "--cache-dir"])
        .arg(cache)
        .arg("--summary-json")
        .arg(&summary)
        .current_dir(ws)
        .output()
        .unwrap();
    let s = fs::read_to_string(&summary)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (
        o.status.code().unwrap_or(-1),
        s,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// `kiln SUBCOMMAND --progress none --cache-dir CACHE ARGS...` in `ws`
/// (`args[0]` is the subcommand): (exit code, stdout, stderr).
pub fn kiln(ws: &Path, cache: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg(args[0])
        .args(["--progress", "none", "--cache-dir"])
        .arg(cache)
        .args(&args[1..])
        .current_dir(ws)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The test virtualenv's python (`.ci/setup`) with `args` in `ws`; its
/// stdout, and a panic with its output when it fails.
pub fn host_python(ws: &Path, args: &[&str]) -> String {
    let python = repo().join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "no test virtualenv at {}: run .ci/setup",
        python.display()
    );
    let o = Command::new(python)
        .args(args)
        .current_dir(ws)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "host python {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}
