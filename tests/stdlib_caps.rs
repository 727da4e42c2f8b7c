//! The standard modules pylon gets from caps, end to end through the
//! binary: `bz2` and `lzma` (CPython's own `_bz2`/`_lzma` over the
//! compression multiplexer provider) and `sqlite3` (CPython's own
//! `_sqlite3` over the SQLite C API provider) checked against the host's
//! CPython in both directions (pylon compresses, the host decompresses, and
//! back, the compressed bytes identical, the libraries being the same
//! versions; a database file written on one side read and dumped on the
//! other), and CPython's own tests of those modules through `kiln test`.
//! The pylon comes from kiln's shared cache when an earlier test or
//! `.ci/pylon` built it. Needs `.ci/setup`.

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, example_workspace, host_python, kiln, repo};

#[test]
fn bz2_lzma_and_sqlite3_match_the_host() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-stdlib-caps-{}", std::process::id())));
    let ws = tmp.0.join("ws");
    example_workspace(&ws);
    let shared = support::shared_cache();
    let (code, _, err) = kiln(
        &ws,
        &shared,
        &[
            "build",
            "//:pylon",
            "//providers/compress",
            "//providers/sqlite:capi",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let interfaces =
        fs::read_to_string(ws.join("kiln-out/providers/compress/compress.interfaces.txt")).unwrap();
    assert!(
        interfaces.contains("export pylon:compress/codec@0.1.0"),
        "{interfaces}"
    );
    assert!(
        !interfaces
            .lines()
            .any(|l| l.starts_with("import ") && !l.starts_with("import wasi:")),
        "{interfaces}"
    );
    let capi =
        fs::read_to_string(ws.join("kiln-out/providers/sqlite/capi.interfaces.txt")).unwrap();
    assert!(capi.contains("export pylon:sqlite/capi@0.1.0"), "{capi}");

    fs::copy(
        repo().join("tests/stdlib_caps/differential.py"),
        ws.join("differential.py"),
    )
    .unwrap();
    host_python(&ws, &["differential.py", "write", "host"]);
    let (code, out, err) = kiln(
        &ws,
        &shared,
        &["run", "//:pylon", "--", "differential.py", "write", "pylon"],
    );
    assert_eq!(code, 0, "{out}{err}");
    // pylon reads what the host wrote, the host what pylon wrote.
    let (code, out, err) = kiln(
        &ws,
        &shared,
        &["run", "//:pylon", "--", "differential.py", "check", "pylon"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("all ok\n"), "{out}");
    assert!(
        out.lines().filter(|l| l.starts_with("ok ")).count() >= 38,
        "{out}"
    );
    assert!(out.contains("\nok sqlite iterdump"), "{out}");
    let host = host_python(&ws, &["differential.py", "check", "host"]);
    assert!(host.ends_with("all ok\n"), "{host}");
    assert_eq!(
        host.lines().filter(|l| l.starts_with("ok ")).count(),
        out.lines().filter(|l| l.starts_with("ok ")).count()
    );

    // CPython's own tests of the modules, unchanged, inside pylon.
    let (code, _, err) = kiln(&ws, &shared, &["test", "//pylon/cpython:caps"]);
    assert_eq!(code, 0, "{err}");
    let summary = fs::read_to_string(ws.join("kiln-out/pylon/cpython/caps.summary.md")).unwrap();
    for (m, least) in [("test_bz2", 90), ("test_lzma", 110), ("test_sqlite3", 420)] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(&format!("| `{m}` |")))
            .unwrap_or_else(|| panic!("{summary}"));
        let n: Vec<u32> = row
            .trim_matches('|')
            .split('|')
            .skip(1)
            .take(4)
            .map(|c| c.trim().parse().unwrap())
            .collect();
        // run = passed + skipped; nearly all of them pass.
        assert_eq!(n[0], n[1] + n[2], "{summary}");
        assert!(n[1] >= least, "{summary}");
    }
}
