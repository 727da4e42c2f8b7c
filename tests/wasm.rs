//! The wasm ruleset end to end through the binary, with the real
//! toolchains: WIT -> C bindings (wit-bindgen-c), clang -> core module,
//! core module -> component (wit-component + WASI adapter), composition
//! (wac-graph), inspection (wasmparser), Rust providers (cargo), and the
//! repository's example pylon (`//:pylon`: caps in every linkage mode,
//! providers from C and from Rust), run under wasmtime. Needs `.ci/setup`
//! (clang, lld, wasi-libc, the rustup wasm targets, the wasmtime venv).

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, copy_dir, example_workspace, executed, kiln, repo};

fn build(ws: &Path, cache: &Path, args: &[&str]) -> (bool, String) {
    let (code, err) = build_code(ws, cache, args);
    (code == 0, err)
}

fn build_code(ws: &Path, cache: &Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .args(args)
        .args(["--progress", "none", "--cache-dir"])
        .arg(cache)
        .current_dir(ws)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn python() -> PathBuf {
    let python = repo().join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "no wasmtime virtualenv at {}: run .ci/setup",
        python.display()
    );
    python
}

/// Every file under `dir` (relative path -> bytes), `.kiln` excluded.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, d: &Path, out: &mut std::collections::BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_name() == ".kiln" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn components_are_built_composed_and_deterministic() {
    assert!(
        Path::new("/usr/bin/clang").exists() && Path::new("/usr/lib/wasm32-wasi/libc.a").exists(),
        "the C toolchain for wasm32-wasi is missing: run .ci/setup"
    );
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-wasm-{}", std::process::id())));
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/workspaces/components");
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    copy_dir(&src, &a);
    copy_dir(&src, &b);

    let (ok, err) = build(&a, &tmp.0.join("cache-a"), &[]);
    assert!(ok, "{err}");
    let read =
        |ws: &Path, f: &str| fs::read_to_string(ws.join("kiln-out/greeter").join(f)).unwrap();
    assert_eq!(
        read(&a, "provider.interfaces.txt"),
        "export demo:greeter/greet@0.1.0\n"
    );
    assert_eq!(
        read(&a, "consumer.interfaces.txt"),
        "import demo:greeter/greet@0.1.0\nexport run\n"
    );
    // The composition satisfies the import: nothing left to import.
    assert_eq!(read(&a, "app.interfaces.txt"), "export run\n");

    // Another checkout and another cache: byte-identical outputs.
    let (ok, err) = build(&b, &tmp.0.join("cache-b"), &[]);
    assert!(ok, "{err}");
    for f in [
        "provider.wasm",
        "consumer.wasm",
        "app.wasm",
        "provider.core.wasm",
    ] {
        let x = fs::read(a.join("kiln-out/greeter").join(f)).unwrap();
        let y = fs::read(b.join("kiln-out/greeter").join(f)).unwrap();
        assert!(x == y, "{f} differs between checkouts and caches");
    }

    // A plug that satisfies nothing is an error naming it.
    let build_file = fs::read_to_string(a.join("greeter/BUILD.star")).unwrap();
    fs::write(
        a.join("greeter/BUILD.star"),
        build_file
            + "composition(name = \"bad\", socket = \":provider\", plugs = [\":consumer\"])\n",
    )
    .unwrap();
    let (ok, err) = build(&a, &tmp.0.join("cache-a"), &["//greeter:bad"]);
    assert!(!ok);
    assert!(
        err.contains(
            "plug `kiln-out/greeter/consumer.wasm` satisfies none of the socket's imports"
        ),
        "{err}"
    );
}

#[test]
fn repository_wit_is_validated() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-wasm-wit-{}", std::process::id())));
    let ws = tmp.0.join("ws");
    example_workspace(&ws);
    let cache = tmp.0.join("cache");
    let (ok, err) = build(
        &ws,
        &cache,
        &["//providers/wit/...", "//providers/sqlite:wit"],
    );
    assert!(ok, "{err}");
    let read = |f: &str| fs::read_to_string(ws.join("kiln-out").join(f)).unwrap();
    assert_eq!(
        read("providers/wit/dynlink.wit.txt"),
        "package compose:dynlink@0.1.0\n  interface endpoint\n  interface linker\n  world cap\n  world provider\n"
    );
    assert_eq!(
        read("providers/sqlite/wit.wit.txt"),
        "package pylon:sqlite@0.1.0\n  interface capi\n  interface database\n  world cap\n  world capi-cap\n  world capi-provider\n  world provider\n"
    );

    // A provider reads its world during analysis; the persisted plan of
    // this build must not outlive a change to the WIT file.
    let (ok, err) = build(&ws, &cache, &["//providers/crc32c"]);
    assert!(ok, "{err}");

    // Invalid WIT fails the build with wit-parser's message.
    fs::write(
        ws.join("providers/wit/compose-dynlink.wit"),
        "package compose:dynlink@0.1.0;\ninterface x { f: func() -> nope; }\n",
    )
    .unwrap();
    let (ok, err) = build(&ws, &cache, &["//providers/wit:dynlink"]);
    assert!(!ok);
    assert!(err.contains("invalid WIT") && err.contains("nope"), "{err}");
    // A cap whose world is read during analysis reports it as a BUILD
    // error (exit 2), naming the target.
    let (code, err) = build_code(&ws, &cache, &["//caps/crc32c"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("invalid WIT") && err.contains("//caps/crc32c:crc32c"),
        "{err}"
    );
}

/// The root BUILD.star of the example with `compose(...)` attributes
/// replaced.
fn with_compose(ws: &Path, caps: &str, providers: &str, dynlink: &str) {
    fs::write(
        ws.join("BUILD.star"),
        format!(
            "# test variant\ncompose(\n    name = \"pylon\",\n    base = \"//third_party/cpython\",\n    caps = {caps},\n    providers = {providers},\n    dynlink = {dynlink},\n)\n"
        ),
    )
    .unwrap();
}

#[test]
fn compose_checks_fail_at_analysis_with_exit_2() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-wasm-checks-{}", std::process::id())));
    let ws = tmp.0.join("ws");
    example_workspace(&ws);
    let cache = tmp.0.join("cache");
    let caps = r#"["//caps/crc32c", "//caps/id_mux", "//caps/sqlite"]"#;
    let fails = |providers: &str, dynlink: &str, caps: &str, want: &[&str]| {
        with_compose(&ws, caps, providers, dynlink);
        let (code, err) = build_code(&ws, &cache, &["//:pylon"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("BUILD.star:2:1"),
            "names the declaration: {err}"
        );
        for w in want {
            assert!(err.contains(w), "missing `{w}` in: {err}");
        }
        // Nothing was built.
        assert!(!ws.join("kiln-out/pylon.wasm").exists());
    };
    // An import no provider serves.
    fails(
        r#"["//providers/id_mux"]"#,
        r#"["//providers/crc32c"]"#,
        caps,
        &[
            "import `pylon:sqlite/database@0.1.0` of `//caps/sqlite:sqlite` is unsatisfied",
            "add the provider that serves it",
        ],
    );
    // A plug that serves no cap.
    fails(
        r#"["//providers/id_mux", "//providers/sqlite"]"#,
        r#"["//providers/crc32c"]"#,
        r#"["//caps/crc32c", "//caps/sqlite"]"#,
        &[
            "provider `//providers/id_mux:id_mux` is an unused plug",
            "tegmentum:id-multiplexer/id-dispatcher@0.1.0",
            "remove it from `providers`",
        ],
    );
    // A dynlink id no provider has.
    fails(
        r#"["//providers/id_mux", "//providers/sqlite"]"#,
        "[]",
        caps,
        &[
            "cap `//caps/crc32c:crc32c` resolves dynlink id `crc32c`, but no provider in `dynlink` has it",
            "dynlink_id = \"crc32c\"",
        ],
    );
    // A dynlink provider listed as a static plug.
    fails(
        r#"["//providers/id_mux", "//providers/sqlite", "//providers/crc32c"]"#,
        "[]",
        caps,
        &["`//providers/crc32c:crc32c` is a dynlink provider (id `crc32c`); list it in `dynlink`"],
    );
    // A cap whose linkage does not match its world.
    let cap_build = fs::read_to_string(ws.join("caps/id_mux/BUILD.star")).unwrap();
    fs::write(
        ws.join("caps/id_mux/BUILD.star"),
        cap_build.replace("linkage = \"mux\"", "linkage = \"dynlink\""),
    )
    .unwrap();
    let (code, err) = build_code(&ws, &cache, &["//caps/id_mux"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("has linkage \"dynlink\" but world `tegmentum:id-multiplexer/cap@0.1.0` does not import `compose:dynlink/linker`"),
        "{err}"
    );
}

#[test]
fn example_pylon_end_to_end() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-wasm-pylon-{}", std::process::id())));
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    example_workspace(&a);
    example_workspace(&b);
    // The slow parts (CPython, the Rust SQLite provider) come from kiln's
    // own cache when an earlier run (or `.ci/pylon`) filled it; cold on a
    // fresh CI machine.
    let shared_cache = support::shared_cache();
    let (ok, err) = build(&a, &shared_cache, &["//..."]);
    assert!(ok, "{err}");

    let out = |ws: &Path, f: &str| fs::read_to_string(ws.join("kiln-out").join(f)).unwrap();
    let exports = |f: &str| -> Vec<String> {
        out(&a, f)
            .lines()
            .filter(|l| l.starts_with("export "))
            .map(str::to_owned)
            .collect()
    };
    let non_wasi_imports = |f: &str| -> Vec<String> {
        out(&a, f)
            .lines()
            .filter(|l| l.starts_with("import ") && !l.starts_with("import wasi:"))
            .map(str::to_owned)
            .collect()
    };
    // Every component's interfaces, parsed from the built component.
    assert_eq!(
        exports("providers/crc32c/crc32c.interfaces.txt"),
        ["export compose:dynlink/endpoint@0.1.0"]
    );
    assert_eq!(
        exports("providers/id_mux/id_mux.interfaces.txt"),
        ["export tegmentum:id-multiplexer/id-dispatcher@0.1.0"]
    );
    assert_eq!(
        exports("providers/sqlite/sqlite.interfaces.txt"),
        ["export pylon:sqlite/database@0.1.0"]
    );
    for p in ["crc32c/crc32c", "id_mux/id_mux", "sqlite/sqlite"] {
        let f = format!("providers/{p}.interfaces.txt");
        assert!(non_wasi_imports(&f).is_empty(), "{f}: {}", out(&a, &f));
    }
    // pylon: the static and mux providers are plugged in; what is left is
    // WASI and the runtime linker.
    assert_eq!(
        exports("pylon.interfaces.txt"),
        ["export wasi:cli/run@0.2.12"]
    );
    assert_eq!(
        non_wasi_imports("pylon.interfaces.txt"),
        ["import compose:dynlink/linker@0.1.0"]
    );
    assert_eq!(
        out(&a, "pylon_world/pylon.wit"),
        "// The imports of pylon `//:pylon`, one per cap interface (generated).\npackage kiln:pylon;\n\nworld pylon {\n  import compose:dynlink/linker@0.1.0;\n  import pylon:compress/codec@0.1.0;\n  import pylon:sqlite/capi@0.1.0;\n  import pylon:sqlite/database@0.1.0;\n  import tegmentum:id-multiplexer/id-dispatcher@0.1.0;\n  import wasi:cli/exit@0.2.12;\n}\n"
    );
    let plan: serde_json::Value = serde_json::from_str(&out(&a, "pylon.dynlink.json")).unwrap();
    let crc = &plan["providers"]["crc32c"];
    assert_eq!(crc["component"], "kiln-out/providers/crc32c/crc32c.wasm");
    let crc_bytes = fs::read(a.join("kiln-out/providers/crc32c/crc32c.wasm")).unwrap();
    assert_eq!(crc["size"], crc_bytes.len());
    assert_eq!(crc["digest"].as_str().unwrap().len(), "blake3:".len() + 64);
    let cap: serde_json::Value =
        serde_json::from_str(&out(&a, "caps/crc32c/crc32c.cap.json")).unwrap();
    assert_eq!(cap["module"], "_crc32c_dynlink_wit");
    assert_eq!(cap["init"], "PyInit__crc32c_dynlink_wit");
    assert_eq!(cap["linkage"], "dynlink");
    assert_eq!(cap["facades"][0], "caps/crc32c/_crc32c_dynlink_cap.py");
    assert_eq!(cap["facades"][1], "caps/crc32c/crc32c.py");
    // The module is generated: its C is an output, and no cap has C sources.
    assert_eq!(
        cap["objects"][0],
        "kiln-out/caps/crc32c/crc32c_objs/_crc32c_dynlink_wit_module.o"
    );
    assert!(
        out(&a, "caps/crc32c/crc32c_gen/_crc32c_dynlink_wit_module.c")
            .contains("PyInit__crc32c_dynlink_wit")
    );
    for (c, module, facade) in [
        ("id_mux/id_mux", "_id_mux_cap", "caps/id_mux/id_mux.py"),
        (
            "sqlite/sqlite",
            "_sqlite_cap",
            "caps/sqlite/pylon_sqlite.py",
        ),
    ] {
        let v: serde_json::Value =
            serde_json::from_str(&out(&a, &format!("caps/{c}.cap.json"))).unwrap();
        assert_eq!(v["module"], module);
        assert_eq!(v["facades"][0], facade);
    }

    // The composed pylon runs Python: each linkage mode through its cap,
    // as pylon_test targets (`kiln test`) and through `kiln run`.
    let (code, _, err) = kiln(&a, &shared_cache, &["test", "//pylon/..."]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("//pylon/tests:caps_test") && err.contains("PASSED"),
        "{err}"
    );
    // CPython's own tests (`//pylon/cpython:regrtest`, one action per
    // module of Lib/test): every module ran tests and none failed.
    assert!(
        err.lines()
            .any(|l| l.starts_with("//pylon/cpython:regrtest") && l.contains("PASSED")),
        "{err}"
    );
    let summary = out(&a, "pylon/cpython/regrtest.summary.md");
    let rows: Vec<Vec<&str>> = summary
        .lines()
        .take_while(|l| !l.is_empty())
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let (total, modules) = rows.split_last().unwrap();
    assert!(modules.len() >= 40, "{summary}");
    for m in modules {
        let n = |i: usize| m[i].parse::<u32>().unwrap();
        // run = passed + skipped, and most tests of every module pass.
        assert_eq!(n(1), n(2) + n(3), "{summary}");
        assert!(n(2) > 0, "{summary}");
    }
    assert_eq!(total[0], format!("**{} modules**", modules.len()));
    // Its JUnit XML has one testcase per test function.
    let junit = out(&a, "pylon/cpython/regrtest.test.xml");
    assert!(
        junit.contains("failures=\"0\" errors=\"0\""),
        "{}",
        &junit[..500]
    );
    assert!(junit.matches("<testcase ").count() > 10_000);
    assert!(junit.contains("<testcase classname=\"test.test_json.test_decode.TestCDecode\""));
    let json_log = out(&a, "pylon/cpython/regrtest/test_json.log");
    assert!(json_log.contains("test_json.test_decode"), "{json_log}");
    assert!(
        summary.contains(
            "| `test_fileio.CAutoFileTests.testErrnoOnClosedSeek` | the WASI adapter answers seek"
        ),
        "{summary}"
    );
    // Without its exclusion a module fails, and the end of its output
    // (what kiln prints) names the failing test; an exclusion that matches
    // nothing fails too; a bad module name fails analysis at its line.
    let cpython_build = fs::read_to_string(a.join("pylon/cpython/BUILD.star")).unwrap();
    // `kiln test` of one more cpython_test target with these attributes.
    let test_one_more = |name: &str, attrs: &str| {
        fs::write(
            a.join("pylon/cpython/BUILD.star"),
            format!(
                "{cpython_build}\ncpython_test(name = \"{name}\", pylon = \"//:pylon\", cpython = \"//third_party/cpython\", {attrs})\n"
            ),
        )
        .unwrap();
        kiln(
            &a,
            &shared_cache,
            &["test", &format!("//pylon/cpython:{name}")],
        )
    };
    let (code, _, err) = test_one_more(
        "strict",
        "modules = [\"test_fileio\", \"test_bisect\"], exclude = {\"test_bisect.NoSuchCase\": \"stale\"}",
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("cpython_test: FAILED test.test_fileio.CAutoFileTests.testErrnoOnClosedSeek"),
        "{err}"
    );
    assert!(
        err.contains("test_bisect: exclusions that match no test: test_bisect.NoSuchCase"),
        "{err}"
    );
    let (code, _, err) = test_one_more("bad", "modules = [\"json\"]");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("pylon/cpython/BUILD.star:")
            && err.contains("`json` is not a module of Lib/test"),
        "{err}"
    );
    fs::write(a.join("pylon/cpython/BUILD.star"), &cpython_build).unwrap();
    // Passing results are cached.
    let (code, _, err) = kiln(&a, &shared_cache, &["test", "//pylon/..."]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(" 0 executed"), "{err}");

    // The debug configuration beside the default one (kiln.toml's
    // `[config.debug]`): caps and providers at -O0 -g, the pylon
    // unstripped, in kiln-out/debug/. CPython is not built again: its
    // actions do not depend on a setting, so they keep their keys.
    let (code, _, err) = kiln(
        &a,
        &shared_cache,
        &["build", "--config", "debug", "//:pylon"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, explained, err) = kiln(
        &a,
        &shared_cache,
        &["explain", "--config", "debug", "//third_party/cpython"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        explained.lines().count() >= 2 && !explained.contains("executed:"),
        "CPython ran again in the debug configuration:\n{explained}"
    );
    let custom_sections = |f: &str| -> Vec<String> {
        let bytes = fs::read(a.join(f)).unwrap();
        wasmparser::Parser::new(0)
            .parse_all(&bytes)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::CustomSection(c) => Some(c.name().to_owned()),
                _ => None,
            })
            .collect()
    };
    let (stripped, debug) = (
        fs::metadata(a.join("kiln-out/pylon.wasm")).unwrap().len(),
        fs::metadata(a.join("kiln-out/debug/pylon.wasm"))
            .unwrap()
            .len(),
    );
    assert!(debug > stripped, "debug {debug} <= stripped {stripped}");
    assert_eq!(custom_sections("kiln-out/pylon.wasm"), Vec::<String>::new());
    let sections = custom_sections("kiln-out/debug/pylon.wasm");
    assert!(sections.iter().any(|s| s == ".debug_info"), "{sections:?}");
    // Both configurations pass the pylon tests.
    for config in [&[][..], &["--config", "debug"][..]] {
        let mut args = vec!["test", "//pylon/tests:all"];
        args.extend_from_slice(config);
        let (code, _, err) = kiln(&a, &shared_cache, &args);
        assert_eq!(code, 0, "{config:?}: {err}");
        assert!(
            err.contains("//pylon/tests:caps_test") && err.contains("PASSED"),
            "{err}"
        );
    }
    assert!(
        a.join("kiln-out/debug/pylon/tests/caps_test.test.xml")
            .is_file()
    );
    // `kiln test --test-filter` and `--runs-per-test` through pylon_test.
    let (code, _, err) = kiln(
        &a,
        &shared_cache,
        &[
            "test",
            "//pylon/tests:all",
            "--test-filter",
            "sqlite",
            "--runs-per-test",
            "2",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("//pylon/tests:caps_test") && !err.contains("//pylon/tests:stdlib_test"),
        "{err}"
    );
    let runs = a.join("kiln-out/pylon/tests/caps_test");
    assert!(runs.join("run_2/test_sqlite_static.py.log").is_file());
    assert!(!runs.join("run_2/test_id_mux.py.log").exists());
    // A test action that runs past its timeout is stopped and fails.
    fs::create_dir_all(a.join("spin")).unwrap();
    fs::write(
        a.join("spin/defs.star"),
        "load(\"@kiln//rules:wasm_common.star\", \"PylonInfo\")\n\ndef _impl(ctx):\n    p = ctx.attr.pylon[PylonInfo]\n    log = ctx.actions.declare_output(ctx.attr.name + \".log\")\n    ctx.actions.pylon_test(component = p.component, dynlink_plan = p.dynlink_plan, lib = p.stdlib, providers = p.providers, script = ctx.file.src, output = log, timeout = 2)\n    return [DefaultInfo(files = [log]), TestInfo(results = [log])]\n\nspin_test = rule(impl = _impl, attrs = {\"pylon\": attr.label(), \"src\": attr.label(allow_files = True)})\n",
    )
    .unwrap();
    fs::write(
        a.join("spin/spin.py"),
        "print('spinning', flush=True)\nwhile True:\n    pass\n",
    )
    .unwrap();
    fs::write(
        a.join("spin/BUILD.star"),
        "load(\":defs.star\", \"spin_test\")\n\nspin_test(name = \"spin_test\", pylon = \"//:pylon\", src = \"spin.py\")\n",
    )
    .unwrap();
    let t0 = std::time::Instant::now();
    let (code, _, err) = kiln(&a, &shared_cache, &["test", "//spin:spin_test"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("spinning") && err.contains("timed out after 2 s"),
        "{err}"
    );
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        t0.elapsed()
    );
    fs::remove_dir_all(a.join("spin")).unwrap();
    // A failing test: exit 3, its output printed, the others still pass.
    fs::write(
        a.join("pylon/tests/test_fails.py"),
        "print('before')\nassert 1 == 2, 'deliberately false'\n",
    )
    .unwrap();
    let tests_build = fs::read_to_string(a.join("pylon/tests/BUILD.star")).unwrap();
    fs::write(
        a.join("pylon/tests/BUILD.star"),
        format!("{tests_build}\npylon_test(name = \"fails_test\", pylon = \"//:pylon\", srcs = [\"test_fails.py\"])\n"),
    )
    .unwrap();
    let (code, _, err) = kiln(&a, &shared_cache, &["test", "//pylon/..."]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("before") && err.contains("AssertionError: deliberately false"),
        "{err}"
    );
    assert!(
        err.contains("//pylon/tests:fails_test") && err.contains("FAILED"),
        "{err}"
    );
    assert!(
        err.contains("//pylon/tests:caps_test") && err.contains("PASSED"),
        "{err}"
    );
    assert!(err.contains("1 of 7 test targets failed"), "{err}");
    fs::write(a.join("pylon/tests/BUILD.star"), tests_build).unwrap();
    let run = |code_: &str| kiln(&a, &shared_cache, &["run", "//:pylon", "--", "-c", code_]);
    let (code, out, err) = run("import crc32c, id_mux, pylon_sqlite as s\n\
         print(hex(crc32c.crc32c(b'123456789')), len(id_mux.generate('ulid')))\n\
         db = s.connect(':memory:'); db.execute('create table t (x)')\n\
         db.execute('insert into t values (?)', ('hi',)); print(db.execute('select x from t').fetchall())");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0xe3069283 26\n[('hi',)]\n");
    // Exit status and stderr pass through; an unknown scheme is ValueError.
    let (code, _, err) = run("import id_mux; id_mux.generate('uuid')");
    assert_ne!(code, 0);
    assert!(err.contains("ValueError") && err.contains("uuid"), "{err}");
    // The guest's exact exit status: sys.exit(n), os._exit(n) (8 bits, as
    // POSIX exit), a message or an uncaught exception (1).
    for (src, want) in [
        ("import sys; sys.exit(3)", 3),
        ("import sys; sys.exit(255)", 255),
        ("import sys; sys.exit(256)", 0),
        ("import os; os._exit(42)", 42),
        ("raise SystemExit('bye')", 1),
        ("raise KeyError(1)", 1),
        ("import sys; sys.exit(0)", 0),
    ] {
        let (code, _, err) = run(src);
        assert_eq!(code, want, "{src}: {err}");
    }
    // A trap (here the C stack overflowing in json's encoder) is a crashed
    // program: 134, as wasmtime's CLI and a process killed by SIGABRT.
    let (code, _, err) = run("import json, sys\nsys.setrecursionlimit(10**8)\n\
         l = []\nfor _ in range(10**6): l = [l]\njson.dumps(l)");
    assert_eq!(code, 134, "{err}");
    assert!(err.contains("ERROR: The guest trapped"), "{err}");
    // Script paths are normalized: `/name.py` in `__file__` and tracebacks,
    // whether given as `name.py`, `./name.py` or `sub/name.py`.
    fs::create_dir_all(a.join("sub")).unwrap();
    for f in ["where.py", "sub/where.py"] {
        fs::write(
            a.join(f),
            "import sys\nprint(__file__)\nsys.exit(int(sys.argv[1]))\n",
        )
        .unwrap();
    }
    for (arg, file) in [
        ("where.py", "/where.py"),
        ("./where.py", "/where.py"),
        ("sub/where.py", "/sub/where.py"),
        ("./sub/where.py", "/sub/where.py"),
    ] {
        let (code, out, err) = kiln(&a, &shared_cache, &["run", "//:pylon", "--", arg, "7"]);
        assert_eq!(
            (code, out.as_str()),
            (7, format!("{file}\n").as_str()),
            "{arg}: {err}"
        );
    }
    fs::write(a.join("tb.py"), "def f():\n    1 / 0\nf()\n").unwrap();
    let (code, _, err) = kiln(&a, &shared_cache, &["run", "//:pylon", "--", "tb.py"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("File \"/tb.py\", line 2, in f"), "{err}");
    assert!(!err.contains("//tb.py"), "{err}");
    // A script path, relative to the working directory.
    fs::write(
        a.join("hello.py"),
        "import json, re, zlib\nprint(json.dumps([zlib.crc32(b'abc'), re.sub('a', 'b', 'aa')]))\n",
    )
    .unwrap();
    let (code, out, err) = kiln(&a, &shared_cache, &["run", "//:pylon", "--", "hello.py"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "[891568578, \"bb\"]\n");
    // Non-ASCII text: pylon runs in UTF-8 mode (Latin, CJK, emoji) in argv,
    // stdout, stderr, stdin, the environment, a script's name and contents
    // and the files it writes in the working directory.
    let (code, out, err) = run("print(\"ü\")");
    assert_eq!((code, out.as_str()), (0, "ü\n"), "{err}");
    let script = "héllo_世界_🐍.py";
    fs::write(
        a.join(script),
        "import os, sys\n\
         print('argv', sys.argv[1:])\n\
         print('stdin', sys.stdin.read().strip())\n\
         print('env', os.environ['KILN_TEST_TEXT'])\n\
         print('écrit à stderr 標準エラー 🚨', file=sys.stderr)\n\
         open('sortie_出力_📄.txt', 'w').write('contenu ü 内容 🐍')\n\
         print(sys.flags.utf8_mode, sys.getfilesystemencoding(), sys.stdout.encoding)\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", "--progress", "none", "--cache-dir"])
        .arg(&shared_cache)
        .args(["//:pylon", "--", script, "ärg", "引数", "🎉"])
        .env("KILN_TEST_TEXT", "välue 値 🌍")
        .current_dir(&a)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        "entrée 入力 😀\n".as_bytes(),
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = (
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        out,
        "argv ['ärg', '引数', '🎉']\nstdin entrée 入力 😀\nenv välue 値 🌍\n1 utf-8 utf-8\n"
    );
    assert!(err.contains("écrit à stderr 標準エラー 🚨"), "{err}");
    assert_eq!(
        fs::read_to_string(a.join("sortie_出力_📄.txt")).unwrap(),
        "contenu ü 内容 🐍"
    );
    // Not a pylon: a clear error.
    let (code, _, err) = kiln(&a, &shared_cache, &["run", "//providers/crc32c"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not runnable"), "{err}");
    // No test targets: exit 4.
    let (code, _, _) = kiln(&a, &shared_cache, &["test", "//caps/..."]);
    assert_eq!(code, 4);
    let python = python();
    // The providers on their own.
    let o = Command::new(&python)
        .arg(repo().join("tests/support/sqlite_smoke.py"))
        .arg(a.join("kiln-out/providers/sqlite/sqlite.wasm"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let call = |component: &str, iface: &str, func: &str, args: &[&str]| -> Vec<String> {
        let o = Command::new(&python)
            .arg(repo().join("tests/support/call_export.py"))
            .args(["--repeat", "2"])
            .arg(a.join("kiln-out/providers").join(component))
            .args([iface, func])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let endpoint = "compose:dynlink/endpoint@0.1.0";
    // CRC-32C("123456789") = 0xE3069283, answered little-endian.
    assert_eq!(
        call(
            "crc32c/crc32c.wasm",
            endpoint,
            "handle",
            &["compute", "hex:313233343536373839"]
        )[0],
        "ok: 839206e3"
    );
    assert_eq!(
        call("crc32c/crc32c.wasm", endpoint, "handle", &["nope", "hex:"])[0],
        "error: crc32c: unknown method"
    );
    let dispatcher = "tegmentum:id-multiplexer/id-dispatcher@0.1.0";
    let check = |scheme: &str, len: usize, alphabet: &str| {
        let ids = call("id_mux/id_mux.wasm", dispatcher, "generate", &[scheme]);
        for line in &ids {
            let v = line
                .strip_prefix("ok: ")
                .unwrap_or_else(|| panic!("{scheme}: {line}"));
            assert_eq!(v.len(), len, "{scheme} id {v}");
            assert!(v.chars().all(|c| alphabet.contains(c)), "{scheme} id {v}");
        }
        assert_ne!(ids[0], ids[1], "{scheme} ids are unique");
    };
    check("ulid", 26, "0123456789ABCDEFGHJKMNPQRSTVWXYZ");
    check(
        "ksuid",
        27,
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    );
    check(
        "nanoid",
        21,
        "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    );

    // Another checkout, a fresh cache: every output byte-identical (CPython
    // and the Rust provider are built again).
    // (Without CPython's own tests, whose logs carry timings, and without
    // DuckDB, whose cold build tests/duckdb.rs covers.)
    fs::remove_dir_all(b.join("pylon/cpython")).unwrap();
    const DUCKDB: [&str; 5] = [
        "third_party/duckdb",
        "third_party/cxx",
        "providers/duckdb",
        "caps/duckdb",
        "pylon/duckdb",
    ];
    for d in DUCKDB {
        fs::remove_dir_all(b.join(d)).unwrap();
    }
    // The compression provider links the `cxx` toolchain's libc, without
    // the C++ runtime (tests/duckdb.rs checks those across checkouts).
    fs::create_dir_all(b.join("third_party/cxx")).unwrap();
    fs::write(
        b.join("third_party/cxx/BUILD.star"),
        "cxx_libc(\n    name = \"libc\",\n    visibility = [\"//visibility:public\"],\n)\n",
    )
    .unwrap();
    let root_build = fs::read_to_string(b.join("BUILD.star")).unwrap();
    let cut = root_build
        .find("\n# pylon with DuckDB")
        .expect("//:pylon_duckdb in BUILD.star");
    fs::write(b.join("BUILD.star"), &root_build[..cut]).unwrap();
    let (ok, err) = build(&b, &tmp.0.join("cache-b"), &["//..."]);
    assert!(ok, "{err}");
    let (mut ta, mut tb) = (tree(&a.join("kiln-out")), tree(&b.join("kiln-out")));
    // (`kiln test` reports, JUnit XML, are not build outputs.)
    let compared = |f: &String| {
        !f.starts_with("pylon/cpython/")
            && !f.starts_with("debug/")
            && !f.contains("/run_")
            && f != "third_party/cpython/cpython-lib-test.tar"
            && !f.ends_with(".test.xml")
            && !DUCKDB.iter().any(|d| f.starts_with(d))
            && !f.starts_with("pylon_duckdb")
    };
    ta.retain(|f, _| compared(f));
    tb.retain(|f, _| compared(f));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (f, bytes) in &ta {
        assert!(bytes == &tb[f], "{f} differs between checkouts and caches");
    }
    assert!(ta.contains_key("pylon.wasm") && ta.contains_key("providers/sqlite/sqlite.wasm"));

    // Another checkout with a cache that has everything: nothing runs,
    // CPython included.
    let c = tmp.0.join("c");
    example_workspace(&c);
    assert!(executed(&c, &shared_cache, &["//:pylon"]).is_empty());

    // `kiln migrate` on the pyforge fixture inside that checkout, then the
    // migrated caps that have C sources build against the real CPython
    // (bindings generated from the manifests' WIT).
    copy_dir(
        &repo().join("tests/fixtures/migrate/pyforge/ws/forge"),
        &c.join("forge"),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["migrate", "forge"])
        .current_dir(&c)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("wrote cpython-ext/zlib/BUILD.star"), "{out}");
    let (code, err) = build_code(
        &c,
        &shared_cache,
        &[
            "//forge/cpython-ext/zlib",
            "//forge/cpython-ext/offload",
            "//forge/cpython-ext/typing_ext:typing-ext",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        c.join("kiln-out/forge/cpython-ext/zlib/zlib_objs/zlibmodule.o")
            .is_file()
    );

    // Edit one provider's C source: only its build and the steps after it
    // run (caps, CPython and the other providers stay cached).
    let cache_b = tmp.0.join("cache-b");
    let src = b.join("providers/id_mux/id_mux.c");
    let text = fs::read_to_string(&src).unwrap();
    // A change to the code, not a comment (which would compile to the same
    // component and stop there).
    fs::write(
        &src,
        text.replace(
            "{ return getentropy(buf, len); }",
            "{ volatile int edited = 1; (void)edited; return getentropy(buf, len); }",
        ),
    )
    .unwrap();
    let ran = executed(&b, &cache_b, &["//:pylon"]);
    assert_eq!(
        ran,
        [
            "//:pylon#7 Compose",
            "//:pylon#8 StripCustomSections",
            "//:pylon#9 InspectComponent",
            "//providers/id_mux:id_mux#1 CcLink",
            "//providers/id_mux:id_mux#2 Componentize",
        ],
        "an edit of one provider's source"
    );
    assert!(executed(&b, &cache_b, &["//:pylon"]).is_empty(), "no-op");

    // Add a dynlink provider: the plan changes, pylon.wasm does not.
    let before = fs::read(b.join("kiln-out/pylon.wasm")).unwrap();
    let plan_before = fs::read_to_string(b.join("kiln-out/pylon.dynlink.json")).unwrap();
    let mut crc_build = fs::read_to_string(b.join("providers/crc32c/BUILD.star")).unwrap();
    crc_build.push_str(
        "\nprovider(\n    name = \"crc32c_alt\",\n    srcs = [\"crc32c.c\"],\n    wit = \"//providers/wit:dynlink\",\n    world = \"compose:dynlink/provider\",\n    dynlink_id = \"crc32c-alt\",\n)\n",
    );
    fs::write(b.join("providers/crc32c/BUILD.star"), crc_build).unwrap();
    let root = fs::read_to_string(b.join("BUILD.star")).unwrap();
    fs::write(
        b.join("BUILD.star"),
        root.replace(
            "dynlink = [\"//providers/crc32c\"]",
            "dynlink = [\"//providers/crc32c\", \"//providers/crc32c:crc32c_alt\"]",
        ),
    )
    .unwrap();
    let ran = executed(&b, &cache_b, &["//:pylon"]);
    assert!(
        ran.contains(&"//:pylon#10 DynlinkPlan".to_owned()),
        "{ran:?}"
    );
    assert!(
        ran.iter()
            .all(|a| !a.starts_with("//:pylon#") || a.ends_with("DynlinkPlan")),
        "only the plan of //:pylon re-runs: {ran:?}"
    );
    assert_eq!(fs::read(b.join("kiln-out/pylon.wasm")).unwrap(), before);
    let plan_after = fs::read_to_string(b.join("kiln-out/pylon.dynlink.json")).unwrap();
    assert_ne!(plan_before, plan_after);
    let plan: serde_json::Value = serde_json::from_str(&plan_after).unwrap();
    assert_eq!(
        plan["providers"]["crc32c-alt"]["component"],
        "kiln-out/providers/crc32c/crc32c_alt.wasm"
    );
    // The new provider is resolvable at run time.
    let (code, _, err) = kiln(
        &b,
        &cache_b,
        &[
            "run",
            "//:pylon",
            "--",
            "-c",
            "import _crc32c_dynlink_cap as c; c.probe('crc32c-alt')",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // A shim-only cap (Python files, no C) shadowing a standard module:
    // only the stdlib zip changes, and the shim wins over the `.pyc`.
    fs::create_dir_all(b.join("caps/shadow/lib")).unwrap();
    fs::write(
        b.join("caps/shadow/lib/colorsys.py"),
        "SHADOWED = 'colorsys from a shim, ✓'\n",
    )
    .unwrap();
    fs::write(
        b.join("caps/shadow/BUILD.star"),
        "cap(\n    name = \"shadow\",\n    shims = {\"lib/colorsys.py\": \"colorsys.py\", \"//caps/crc32c:crc32c.py\": \"extra/\"},\n)\n",
    )
    .unwrap();
    let root = fs::read_to_string(b.join("BUILD.star")).unwrap();
    let with_shadow = root.replace(
        "\"//caps/sqlite\",",
        "\"//caps/sqlite\",\n        \"//caps/shadow\",",
    );
    fs::write(b.join("BUILD.star"), &with_shadow).unwrap();
    let ran = executed(&b, &cache_b, &["//:pylon"]);
    assert!(
        ran.iter()
            .all(|a| a.ends_with("PackStdlib") || a.starts_with("//caps/shadow")),
        "a shim-only cap repacks the stdlib only: {ran:?}"
    );
    assert_eq!(fs::read(b.join("kiln-out/pylon.wasm")).unwrap(), before);
    let (code, out, err) = kiln(
        &b,
        &cache_b,
        &[
            "run",
            "//:pylon",
            "--",
            "-c",
            "import colorsys; print(colorsys.SHADOWED)",
        ],
    );
    assert_eq!(
        (code, out.as_str()),
        (0, "colorsys from a shim, ✓\n"),
        "{err}"
    );
    // A path ending in `/` keeps the file's name (zip entry names are
    // stored as written).
    let zip = fs::read(b.join("kiln-out/pylon_lib/python311.zip")).unwrap();
    assert!(zip.windows(15).any(|w| w == b"extra/crc32c.py"));
    // Two caps installing one path: an analysis error naming both.
    fs::write(
        b.join("caps/shadow/BUILD.star"),
        "cap(\n    name = \"shadow\",\n    shims = {\"//caps/crc32c:crc32c.py\": \"crc32c.py\"},\n)\n",
    )
    .unwrap();
    let (code, err) = build_code(&b, &cache_b, &["//:pylon"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("caps `//caps/crc32c:crc32c` and `//caps/shadow:shadow` both install `crc32c.py` in the stdlib (module `crc32c`)"),
        "{err}"
    );
}
