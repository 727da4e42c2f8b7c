//! DuckDB in pylon end to end: `//:pylon_duckdb` built from the pinned
//! DuckDB amalgamation with the `cxx` toolchain (one action per
//! translation unit, into kiln's shared cache: cold at most once), the
//! same SQL run through pylon's `duckdb` facade and through PyPI's duckdb
//! on the host and compared line by line, a database file written in pylon
//! reopened in pylon and on the host, `kiln test` of the in-pylon tests,
//! a no-op, a glue edit that re-runs only its compile, link and what
//! follows, and the C++ runtime byte-identical across two checkouts built
//! with separate caches. Needs `.ci/setup` (ziglang, the test venv with
//! duckdb 2.0.0).

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, example_workspace, executed, host_python, kiln, repo};

#[test]
fn duckdb_in_pylon_matches_the_pypi_package() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-duckdb-{}", std::process::id())));
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    example_workspace(&a);
    example_workspace(&b);
    let shared = support::shared_cache();

    // DuckDB (about 380 compile actions) comes from the shared cache when
    // an earlier run or `.ci/pylon` built it.
    let (code, _, err) = kiln(
        &a,
        &shared,
        &["build", "//:pylon_duckdb", "//providers/duckdb"],
    );
    assert_eq!(code, 0, "{err}");
    let provider = fs::read(a.join("kiln-out/providers/duckdb/duckdb.wasm")).unwrap();
    let interfaces =
        fs::read_to_string(a.join("kiln-out/providers/duckdb/duckdb.interfaces.txt")).unwrap();
    assert!(
        interfaces.contains("export duckdb:component/database@0.1.0"),
        "{interfaces}"
    );

    // The same SQL on the host (PyPI's duckdb 2.0.0) and in pylon.
    fs::copy(
        repo().join("tests/duckdb/differential.py"),
        a.join("differential.py"),
    )
    .unwrap();
    let host = host_python(&a, &["differential.py"]);
    let (code, guest, err) = kiln(
        &a,
        &shared,
        &["run", "//:pylon_duckdb", "--", "differential.py"],
    );
    assert_eq!(code, 0, "{err}");
    let (h, g): (Vec<&str>, Vec<&str>) = (host.lines().collect(), guest.lines().collect());
    assert!(h.len() >= 40, "{host}");
    for (hl, gl) in h.iter().zip(&g) {
        assert_eq!(hl, gl, "pylon differs from PyPI's duckdb");
    }
    assert_eq!(h.len(), g.len(), "host:\n{host}\npylon:\n{guest}");

    // A database file written by pylon in its working directory reopens,
    // in pylon and in the host's duckdb.
    let write = "import duckdb\n\
        c = duckdb.connect('pylon.duckdb')\n\
        c.execute(\"CREATE TABLE t AS SELECT range AS i, 'ü' || range AS s FROM range(1000)\")\n\
        c.execute('CHECKPOINT')\n\
        c.close()\n";
    let (code, _, err) = kiln(&a, &shared, &["run", "//:pylon_duckdb", "--", "-c", write]);
    assert_eq!(code, 0, "{err}");
    let read = "import duckdb\n\
        c = duckdb.connect('pylon.duckdb', read_only=True)\n\
        print(c.execute('SELECT count(*), sum(i), max(s) FROM t').fetchall())\n";
    let (code, out, err) = kiln(&a, &shared, &["run", "//:pylon_duckdb", "--", "-c", read]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "[(1000, 499500, 'ü999')]");
    assert_eq!(host_python(&a, &["-c", read]).trim(), out.trim());

    // The in-pylon tests, through `kiln test`.
    let (code, _, err) = kiln(&a, &shared, &["test", "//pylon/duckdb/..."]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("//pylon/duckdb:duckdb_test") && err.contains("PASSED"),
        "{err}"
    );

    // A no-op runs nothing.
    assert_eq!(
        executed(&a, &shared, &["//:pylon_duckdb"]),
        Vec::<String>::new()
    );

    // An edit to the glue re-runs its compile, the provider's link and what
    // follows from the provider; nothing of DuckDB, the runtime or CPython.
    // (A new message each run: the shared cache has every earlier one.)
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let message = format!("this appender is closed ({nonce})");
    let glue = a.join("providers/duckdb/duckdb_glue.cpp");
    let src = fs::read_to_string(&glue).unwrap();
    fs::write(&glue, src.replace("the appender is closed", &message)).unwrap();
    let ran = executed(&a, &shared, &["//:pylon_duckdb"]);
    let mnemonics: Vec<&str> = ran.iter().map(|n| n.rsplit(' ').next().unwrap()).collect();
    assert!(
        ran.iter()
            .any(|n| n.starts_with("//providers/duckdb:duckdb") && n.ends_with("CcCompile")),
        "{ran:?}"
    );
    assert_eq!(
        ran.iter().filter(|n| n.ends_with("CcCompile")).count(),
        1,
        "{ran:?}"
    );
    for m in &mnemonics {
        assert!(
            [
                "CcCompile",
                "CcLink",
                "Componentize",
                "InspectComponent",
                "Compose",
                "StripCustomSections"
            ]
            .contains(m),
            "{ran:?}"
        );
    }
    assert!(
        ran.iter()
            .all(|n| n.starts_with("//providers/duckdb:") || n.starts_with("//:pylon_duckdb")),
        "{ran:?}"
    );
    // The composed pylon carries the edited glue. (Not run again: loading
    // the changed 55 MB component costs a Cranelift compile of 80 s.)
    let pylon = fs::read(a.join("kiln-out/pylon_duckdb.wasm")).unwrap();
    assert!(
        pylon
            .windows(message.len())
            .any(|w| w == message.as_bytes()),
        "the edited message is not in pylon_duckdb.wasm"
    );

    // A second checkout: the provider is the same bytes (shared cache), and
    // the C++ runtime built there from nothing (its own cache) is too.
    let (code, _, err) = kiln(&b, &shared, &["build", "//providers/duckdb"]);
    assert_eq!(code, 0, "{err}");
    assert!(fs::read(b.join("kiln-out/providers/duckdb/duckdb.wasm")).unwrap() == provider);
    let fresh = tmp.0.join("fresh-cache");
    let (code, _, err) = kiln(&b, &fresh, &["build", "//third_party/cxx/..."]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = kiln(&a, &shared, &["build", "//third_party/cxx/..."]);
    assert_eq!(code, 0, "{err}");
    for lib in [
        "libcxx.a",
        "libcxxabi.a",
        "libunwind.a",
        "libthread_atexit.a",
        "libc/crt1-reactor.o",
        "libc/libc.a",
        "libc/libzigc.a",
        "libc/libcompiler_rt.a",
    ] {
        let rel = format!("kiln-out/third_party/cxx/{lib}");
        assert!(
            fs::read(a.join(&rel)).unwrap() == fs::read(b.join(&rel)).unwrap(),
            "{rel} differs between checkouts"
        );
    }
}
