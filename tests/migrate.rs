//! `kiln migrate` through the binary, on a temporary copy of the pyforge
//! fixture (`tests/fixtures/migrate/pyforge/ws`, the checkout in `forge/`):
//! the files written (`files/` beside it holds what each must contain),
//! the load check, refusing to overwrite, `--force`, and bad manifests.

// Integration tests drive the `kiln` binary directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, copy_dir};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/migrate/pyforge"
);

/// A copy of the fixture workspace, removed on drop.
fn workspace(name: &str) -> Tmp {
    let dir = std::env::temp_dir().join(format!("kiln-migrate-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    copy_dir(&Path::new(FIXTURE).join("ws"), &dir);
    Tmp(dir)
}

fn kiln(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let o: Output = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        o.status.code().unwrap_or(-1),
        text(&o.stdout),
        text(&o.stderr),
    )
}

/// The files below `dir`, relative to it.
fn files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir.join(rel)).unwrap() {
        let e = e.unwrap();
        let rel = rel.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            files(dir, &rel, out);
        } else {
            out.push(rel);
        }
    }
}

#[test]
fn migrates_the_fixture_and_the_result_loads() {
    let ws = workspace("flow");
    let (code, stdout, stderr) = kiln(&ws.0, &["migrate", "forge"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("wrote BUILD.star\nwrote cpython-ext/_compression/BUILD.star\n"),
        "{stdout}"
    );
    assert!(stdout.contains("wrote ../kiln.toml\n"), "{stdout}");
    assert!(
        stdout.contains("\nunmapped: profiles/release.toml: `[toolchain] cc = \"clang-18\"` — "),
        "{stdout}"
    );
    let mut want = Vec::new();
    files(&Path::new(FIXTURE).join("files"), Path::new(""), &mut want);
    assert_eq!(want.len(), 12);
    for f in &want {
        let got = fs::read_to_string(ws.0.join(f)).unwrap();
        assert_eq!(
            got,
            fs::read_to_string(Path::new(FIXTURE).join("files").join(f)).unwrap(),
            "{}",
            f.display()
        );
    }
    let (code, labels, stderr) = kiln(&ws.0, &["query", "//forge/..."]);
    assert_eq!(code, 0, "{stderr}");
    for l in [
        "//forge:pylon",
        "//forge/cpython-ext/zlib:zlib",
        "//forge/cpython-ext/zlib:wit",
        "//forge/cpython-ext/café:café_compat",
    ] {
        assert!(labels.lines().any(|x| x == l), "{l} in\n{labels}");
    }

    // Run again: every file exists, so nothing is written without --force.
    let zlib = ws.0.join("forge/cpython-ext/zlib/BUILD.star");
    fs::write(&zlib, "# edited\n").unwrap();
    let (code, stdout, stderr) = kiln(&ws.0, &["migrate", "forge"]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.starts_with(
            "ERROR: Not writing anything: `BUILD.star`, `cpython-ext/café/BUILD.star`, "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`cpython-ext/zlib/BUILD.star` already exist (relative to DIR); pass `--force` to overwrite them"), "{stderr}");
    assert_eq!(fs::read_to_string(&zlib).unwrap(), "# edited\n");

    // --force, DIR defaulting to the current directory (-C): the named
    // configurations are kept, not duplicated.
    let (code, stdout, stderr) = kiln(&ws.0, &["-C", "forge", "migrate", "--force"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("unmapped: profiles/debug.toml: `[config.debug]` — kiln.toml has it already; left as it is\n"), "{stdout}");
    assert!(!stdout.contains("wrote ../kiln.toml"), "{stdout}");
    assert!(
        fs::read_to_string(&zlib)
            .unwrap()
            .contains("cap(\n    name = \"zlib\",")
    );
    assert_eq!(
        fs::read_to_string(ws.0.join("kiln.toml"))
            .unwrap()
            .matches("[config.debug]")
            .count(),
        1
    );
}

#[test]
fn files_that_do_not_load_fail_the_command() {
    let ws = workspace("check");
    let (code, stdout, stderr) = kiln(
        &ws.0,
        &["migrate", "forge", "--python", "//nowhere:cpython"],
    );
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(
        stdout.contains("wrote cpython-ext/zlib/BUILD.star\n"),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("ERROR: The migrated files do not load (`kiln query //forge/...`): "),
        "{stderr}"
    );
    assert!(stderr.contains("//nowhere"), "{stderr}");
}

#[test]
fn a_bad_manifest_writes_nothing() {
    let ws = workspace("bad");
    let manifest = ws.0.join("forge/cpython-ext/zlib/pyforge-pkg.toml");
    fs::write(
        &manifest,
        fs::read_to_string(&manifest)
            .unwrap()
            .replace("\"A\"", "\"C\""),
    )
    .unwrap();
    let (code, stdout, stderr) = kiln(&ws.0, &["migrate", "forge"]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert_eq!(
        stderr,
        "ERROR: cpython-ext/zlib/pyforge-pkg.toml:7:11: Unknown `pattern` `C`: expected \"A\" (a C extension) or \"shim-only\" (Python facades only)\n"
    );
    assert!(!ws.0.join("forge/BUILD.star").exists() && !ws.0.join("settings").exists());
    let (code, _, stderr) = kiln(&ws.0, &["migrate", "nowhere"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("is not a directory; pass the pyforge checkout"),
        "{stderr}"
    );
}
