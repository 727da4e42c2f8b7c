//! Golden fixtures: each directory under `tests/fixtures/<group>/<case>/`
//! holds a workspace (`ws/`), the kiln arguments (`args`, one per line) and
//! the expected exit code, stdout and stderr (`expected`). The workspace is
//! copied to a temporary directory, kiln runs there, and the result must
//! match `expected` byte for byte. `KILN_BLESS=1 cargo test --test golden`
//! rewrites the `expected` files.

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/fs.rs"]
mod support;

use support::copy_dir;

fn render(code: i32, stdout: &str, stderr: &str) -> String {
    format!("exit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}")
}

fn run_case(dir: &Path, scratch: &Path) -> Option<String> {
    let args_text = fs::read_to_string(dir.join("args")).unwrap();
    let args: Vec<&str> = args_text.lines().filter(|l| !l.is_empty()).collect();
    let ws = scratch.join("ws");
    let _ = fs::remove_dir_all(&ws);
    let src = dir.join("ws");
    if src.is_dir() {
        copy_dir(&src, &ws);
    } else {
        fs::create_dir_all(&ws).unwrap();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(&args)
        .current_dir(&ws)
        .env_remove("KILN_CACHE_DIR")
        .output()
        .unwrap();
    // The scratch path differs per run; fixtures see it as `$WS`.
    let ws_text = ws.display().to_string();
    let got = render(
        o.status.code().unwrap_or(-1),
        &String::from_utf8_lossy(&o.stdout).replace(&ws_text, "$WS"),
        &String::from_utf8_lossy(&o.stderr).replace(&ws_text, "$WS"),
    );
    let _ = fs::remove_dir_all(&ws);
    let expected_path = dir.join("expected");
    if std::env::var_os("KILN_BLESS").is_some() {
        fs::write(&expected_path, &got).unwrap();
        return None;
    }
    let want = fs::read_to_string(&expected_path).unwrap_or_default();
    (want != got).then(|| format!("{}:\n--- want\n{want}\n--- got\n{got}", dir.display()))
}

#[test]
fn golden_fixtures() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let scratch = std::env::temp_dir().join(format!("kiln-golden-{}", std::process::id()));
    let mut cases = Vec::new();
    for group in fs::read_dir(&root).unwrap() {
        let group = group.unwrap().path();
        for case in fs::read_dir(&group).unwrap() {
            cases.push(case.unwrap().path());
        }
    }
    cases.sort();
    assert!(
        cases.len() >= 20,
        "expected the fixture tree at {}",
        root.display()
    );
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c, &scratch)).collect();
    let _ = fs::remove_dir_all(&scratch);
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
