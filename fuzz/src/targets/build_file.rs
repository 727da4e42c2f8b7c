//! `build_file`: a package's BUILD.star loaded the way a build loads it
//! (`Loader::load_package`): the raw bytes checked (`load::limits`),
//! Starlark parsing in the data-only dialect, `load()`s resolved against
//! a workspace, kiln's natives (`package`, `select`, `glob`...) and the
//! built-in ruleset's rule calls, attribute coercion and label parsing.
//!
//! The same text, when it is UTF-8, also goes through
//! `Loader::load_package_source` (what `kiln lsp` evaluates for an
//! unsaved editor buffer), which must come to the same result.
//!
//! The input is written to `app/BUILD.star` of a temporary workspace
//! holding the `.star` files of the repository's test fixtures and its
//! `settings/`, so that `load()`s in the seeds resolve; the workspace is
//! removed when the target's function is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use kiln_engine::label::PackagePath;
use kiln_engine::load::loader::Loader;
use kiln_engine::workspace::{Config, Workspace};

use super::{Run, Target, regression_seeds, repo_file_contents, repo_root};

/// The package fuzzed BUILD files are evaluated as.
const PACKAGE: &str = "app";

/// `build_file`: see the module documentation.
pub const BUILD_FILE: Target = Target {
    name: "build_file",
    about: "BUILD.star loading: byte checks, Starlark parsing, load(), kiln's natives and rule calls (Loader::load_package)",
    max_len: 64 * 1024,
    dict: &[
        b"load(\"//tools:defs.star\", \"c_object\")\n",
        b"load(\"//settings:defs.star\", ",
        b"load(",
        b"genrule(",
        b"filegroup(",
        b"cap(",
        b"provider(",
        b"compose(",
        b"wit_library(",
        b"cc_library(",
        b"config_setting(",
        b"bool_setting(",
        b"string_setting(",
        b"pylon_test(",
        b"package(default_visibility = [\"//visibility:private\"])\n",
        b"name = \"t\", ",
        b"srcs = [",
        b"outs = [\"o.txt\"], ",
        b"cmd = \"cat $(SRCS) > $@\", ",
        b"deps = [\":t\"], ",
        b"visibility = [\"//visibility:public\"], ",
        b"tags = [\"manual\"], ",
        b"select({\"//settings:opt\": [], \"//conditions:default\": []})",
        b"glob([\"**/*.c\"])",
        b"\"//conditions:default\"",
        b"[",
        b"]",
        b"(",
        b")",
        b"{",
        b"}",
        b", ",
        b" = ",
        b"\"",
        b"'",
        b"\"\"\"",
        b"\n",
        b"#",
        b":",
        b"//",
        b" + ",
        b" * ",
        b" % ",
        b"True",
        b"None",
        b"struct(",
        b"json.decode(",
        b"def f():\n  pass\n",
        b"lambda: 1",
        b"[x for x in [1, 2]]",
        b"9999",
        b"\\",
        b"\x00",
        b"\xc3\xa9",
    ],
    seeds,
    setup,
};

fn seeds() -> Vec<Vec<u8>> {
    let mut v = repo_file_contents("BUILD.star");
    v.extend(regression_seeds("build_file"));
    v
}

/// A temporary workspace, removed when dropped.
struct TempWorkspace(PathBuf);

impl Drop for TempWorkspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Make the temporary workspace: `kiln.toml`, a root `BUILD.star`, and
/// each `.star` file of the fixtures' workspaces (at its path inside its
/// workspace; the first of a name wins) and of `settings/`.
fn temp_workspace() -> std::io::Result<TempWorkspace> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{}{}",
        super::temp_prefix(std::process::id()),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    let ws = TempWorkspace(dir);
    fs::create_dir_all(ws.0.join(PACKAGE))?;
    fs::write(ws.0.join("kiln.toml"), "")?;
    fs::write(ws.0.join("BUILD.star"), "")?;
    let root = repo_root();
    let mut stars = Vec::new();
    collect_stars(&root.join("tests"), &mut stars);
    for p in stars {
        let text = p.to_string_lossy();
        let Some((_, rel)) = text.split_once("/ws/") else {
            continue;
        };
        copy_into(&ws.0, rel, &p)?;
    }
    for name in ["BUILD.star", "defs.star"] {
        let p = root.join("settings").join(name);
        if p.is_file() {
            copy_into(&ws.0, &format!("settings/{name}"), &p)?;
        }
    }
    Ok(ws)
}

fn collect_stars(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "kiln-out") {
                collect_stars(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "star")
            && p.file_name().is_some_and(|n| n != "BUILD.star")
        {
            out.push(p);
        }
    }
}

/// Copy `from` to `ws/rel` unless something is there already; each
/// directory on the way gets an empty `BUILD.star` (a package) if it has
/// none.
fn copy_into(ws: &Path, rel: &str, from: &Path) -> std::io::Result<()> {
    let to = ws.join(rel);
    if to.exists() {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
        let build = dir.join("BUILD.star");
        if !build.exists() {
            fs::write(build, "")?;
        }
    }
    fs::copy(from, to).map(drop)
}

fn setup() -> Run {
    let ws = match temp_workspace() {
        Ok(ws) => ws,
        Err(e) => panic!("cannot make the fuzzer's temporary workspace: {e}"),
    };
    let workspace = Workspace {
        root: ws.0.clone(),
        config: Config::default(),
    };
    let loader = match Loader::new(workspace) {
        Ok(l) => l,
        Err(e) => panic!("the built-in ruleset does not load: {e}"),
    };
    let pkg = PackagePath::new(PACKAGE).unwrap_or_else(|_| PackagePath::root());
    let build_file = ws.0.join(PACKAGE).join("BUILD.star");
    Box::new(move |b| {
        let _keep = &ws;
        if let Err(e) = fs::write(&build_file, b) {
            panic!("cannot write `{}`: {e}", build_file.display());
        }
        let from_disk = loader.load_package(&pkg);
        // `kiln lsp` evaluates an editor's unsaved text the same way.
        if let Ok(text) = std::str::from_utf8(b) {
            let from_editor = loader.load_package_source(&pkg, text.to_owned());
            assert_eq!(
                from_editor
                    .as_ref()
                    .map(|_| ())
                    .map_err(ToString::to_string),
                from_disk.as_ref().map(|_| ()).map_err(ToString::to_string),
                "a BUILD file's text loads as its file does"
            );
        }
        from_disk.is_ok()
    })
}
