//! The in-process wasm action kinds end to end through the binary, with the
//! real C toolchain: WIT -> C bindings (wit-bindgen-c), clang -> core
//! module, core module -> component (wit-component + WASI adapter),
//! composition (wac-graph), and inspection (wasmparser). The workspace is
//! `tests/workspaces/components`: a provider and a consumer of one WIT
//! interface, and their composition. Needs `.ci/setup` (clang, lld,
//! wasi-libc).

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, copy_dir};

fn build(ws: &Path, cache: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("build")
        .args(args)
        .args(["--progress", "none", "--cache-dir"])
        .arg(cache)
        .current_dir(ws)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
fn repository_wit_and_providers_build() {
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-wasm-repo-{}", std::process::id())));
    let ws = tmp.0.join("ws");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    copy_dir(&repo.join("providers"), &ws.join("providers"));
    fs::write(ws.join("kiln.toml"), "").unwrap();
    fs::write(ws.join("BUILD.star"), "").unwrap();
    let cache = tmp.0.join("cache");
    let (ok, err) = build(&ws, &cache, &["//providers/..."]);
    assert!(ok, "{err}");
    let read = |f: &str| fs::read_to_string(ws.join("kiln-out").join(f)).unwrap();
    assert_eq!(
        read("providers/wit/dynlink.wit.txt"),
        "package compose:dynlink@0.1.0\n  interface endpoint\n  interface linker\n  world cap\n  world provider\n"
    );
    assert_eq!(
        read("providers/crc32c/crc32c.interfaces.txt"),
        "export compose:dynlink/endpoint@0.1.0\n"
    );
    assert_eq!(read("providers/crc32c/crc32c.dynlink-check"), "crc32c\n");
    let mux = read("providers/id_mux/id_mux.interfaces.txt");
    assert!(
        mux.ends_with("export tegmentum:id-multiplexer/id-dispatcher@0.1.0\n"),
        "{mux}"
    );
    assert!(
        mux.lines()
            .filter(|l| l.starts_with("import "))
            .all(|l| l.starts_with("import wasi:")),
        "{mux}"
    );

    // The providers really work: call them under wasmtime.
    let python = repo.join("target/test-venv/bin/python");
    assert!(
        python.exists(),
        "no wasmtime virtualenv at {}: run .ci/setup",
        python.display()
    );
    let call = |component: &str, iface: &str, func: &str, args: &[&str]| -> Vec<String> {
        let o = Command::new(&python)
            .arg(repo.join("tests/support/call_export.py"))
            .args(["--repeat", "2"])
            .arg(ws.join("kiln-out/providers").join(component))
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
    let id = |scheme: &str| call("id_mux/id_mux.wasm", dispatcher, "generate", &[scheme]);
    let check = |scheme: &str, len: usize, alphabet: &str| {
        let ids = id(scheme);
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
    assert!(id("uuid")[0].starts_with("error: unknown id scheme `uuid`"));

    // Invalid WIT fails the build with wit-parser's message.
    fs::write(
        ws.join("providers/wit/compose-dynlink.wit"),
        "package compose:dynlink@0.1.0;\ninterface x { f: func() -> nope; }\n",
    )
    .unwrap();
    let (ok, err) = build(&ws, &cache, &["//providers/wit:dynlink"]);
    assert!(!ok);
    assert!(err.contains("invalid WIT") && err.contains("nope"), "{err}");
}
