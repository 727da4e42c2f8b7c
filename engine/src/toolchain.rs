//! Toolchains: the compilers and libraries outside the workspace that
//! actions run, resolved once per process.
//!
//! A toolchain is a set of absolute paths (binaries, headers, libraries).
//! Rules get it with `ctx.toolchain("c")` / `ctx.toolchain("rust")` and pass
//! its `files` to `ctx.actions.run(tools = ...)`; execution digests every
//! tool file (cached by stat in the cache's `files` table) into the action
//! key, so upgrading clang or wasi-libc rebuilds what they built. A missing
//! toolchain is an error that says how to install it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How to install what is missing.
pub const SETUP_HINT: &str = "run `.ci/setup` from the kiln repository";

/// A resolved toolchain.
#[derive(Clone, Debug, PartialEq)]
pub struct Toolchain {
    /// Named entries (`cc`, `ar`, `cargo`, ...) -> absolute path.
    pub entries: Vec<(String, String)>,
    /// Every file whose content can change what the toolchain produces.
    pub files: Vec<String>,
}

fn real(p: &str) -> Option<PathBuf> {
    std::fs::canonicalize(p).ok().filter(|x| x.is_file())
}

fn files_under(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&p, out),
            Ok(t) if t.is_file() => out.push(p.to_string_lossy().into_owned()),
            _ => {}
        }
    }
}

/// Debian's clang/lld/wasi-libc for wasm32-wasi.
fn resolve_c() -> Result<Toolchain, String> {
    let missing = |what: &str| {
        format!(
            "The C toolchain for wasm32-wasi is incomplete: `{what}` is missing; {SETUP_HINT} (it installs Debian's clang, lld, llvm, wasi-libc and libclang-rt-14-dev-wasm32)"
        )
    };
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for (name, path) in [
        ("cc", "/usr/bin/clang"),
        ("ld", "/usr/bin/wasm-ld"),
        ("ar", "/usr/bin/llvm-ar"),
    ] {
        let r = real(path).ok_or_else(|| missing(path))?;
        let r = r.to_string_lossy().into_owned();
        entries.push((name.to_owned(), path.to_owned()));
        files.push(r);
    }
    for dir in ["/usr/include/wasm32-wasi", "/usr/lib/wasm32-wasi"] {
        if !Path::new(dir).is_dir() {
            return Err(missing(dir));
        }
        files_under(Path::new(dir), &mut files);
    }
    let mut builtins = Vec::new();
    files_under(Path::new("/usr/lib/llvm-14/lib/clang"), &mut builtins);
    builtins.retain(|f| f.ends_with("libclang_rt.builtins-wasm32.a"));
    if builtins.is_empty() {
        return Err(missing("libclang_rt.builtins-wasm32.a"));
    }
    files.extend(builtins);
    files.sort();
    files.dedup();
    // A clean sysroot: Debian's clang would otherwise also search the
    // host's /usr/include.
    entries.push((
        "sysroot_setup".to_owned(),
        "mkdir -p $TMPDIR/sysroot/lib && ln -sfn /usr/include/wasm32-wasi $TMPDIR/sysroot/include && ln -sfn /usr/lib/wasm32-wasi $TMPDIR/sysroot/lib/wasm32-wasi".to_owned(),
    ));
    entries.push((
        "cflags".to_owned(),
        "--target=wasm32-wasi --sysroot=$TMPDIR/sysroot".to_owned(),
    ));
    Ok(Toolchain { entries, files })
}

/// rustup's stable toolchain with the wasm32-wasip1/wasip2 targets.
fn resolve_rust() -> Result<Toolchain, String> {
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup")))
        .ok_or_else(|| format!("The Rust toolchain is missing: no rustup home; {SETUP_HINT}"))?;
    let toolchains = home.join("toolchains");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&toolchains)
        .map_err(|_| {
            format!(
                "The Rust toolchain is missing: no `{}`; install Rust with rustup",
                toolchains.display()
            )
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("stable-"))
        })
        .collect();
    found.sort();
    let sysroot = found.pop().ok_or_else(|| {
        "The Rust toolchain is missing: no stable toolchain; install it with rustup".to_owned()
    })?;
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (name, bin) in [("cargo", "cargo"), ("rustc", "rustc")] {
        let p = sysroot.join("bin").join(bin);
        if !p.is_file() {
            return Err(format!(
                "The Rust toolchain is incomplete: `{}` is missing; install Rust with rustup",
                p.display()
            ));
        }
        entries.push((name.to_owned(), p.to_string_lossy().into_owned()));
        files.push(p.to_string_lossy().into_owned());
    }
    // The compiler itself, and the linkers rustc runs for wasm
    // (`wasm-component-ld`, `rust-lld`).
    if let Ok(rd) = std::fs::read_dir(sysroot.join("lib")) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("librustc_driver") || n.starts_with("libstd") {
                files.push(e.path().to_string_lossy().into_owned());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(sysroot.join("lib/rustlib")) {
        for e in rd.flatten() {
            let bin = e.path().join("bin");
            if bin.is_dir() {
                files_under(&bin, &mut files);
            }
        }
    }
    // Build scripts and proc macros run on the host.
    files_under(
        &sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/lib"),
        &mut files,
    );
    for target in ["wasm32-wasip1", "wasm32-wasip2"] {
        let lib = sysroot.join("lib/rustlib").join(target).join("lib");
        if !lib.is_dir() {
            return Err(format!(
                "The Rust target `{target}` is not installed; run `rustup target add {target}` ({SETUP_HINT})"
            ));
        }
        files_under(&lib, &mut files);
    }
    files.sort();
    Ok(Toolchain { entries, files })
}

/// The host's Python 3.11 (Debian's), the build Python of CPython's cross
/// build and the tool that packs stdlib zips.
fn resolve_python() -> Result<Toolchain, String> {
    let path = "/usr/bin/python3.11";
    let r = real(path).ok_or_else(|| {
        format!("The host Python 3.11 is missing: `{path}`; {SETUP_HINT} (it installs Debian's python3.11)")
    })?;
    Ok(Toolchain {
        entries: vec![("python".to_owned(), path.to_owned())],
        files: vec![r.to_string_lossy().into_owned()],
    })
}

/// Where `.ci/setup` installs PyPI's `ziglang` wheel (pinned by sha256).
pub const ZIG_DIR: &str = "/opt/kiln/ziglang-0.17.1";

/// The libc++ configuration zig's headers expect as defines (zig's libc++
/// has no `__config_site`): threads on wasi-libc's stub pthreads (DuckDB
/// needs `std::mutex`), no filesystem library, no time zone database.
const LIBCXX_CONFIG: &[&str] = &[
    "-D_LIBCPP_ABI_VERSION=1",
    "-D_LIBCPP_ABI_NAMESPACE=__1",
    "-D_LIBCPP_HAS_THREADS=1",
    "-D_LIBCPP_HAS_MONOTONIC_CLOCK=1",
    "-D_LIBCPP_HAS_TERMINAL=0",
    "-D_LIBCPP_HAS_MUSL_LIBC=1",
    "-D_LIBCXXABI_DISABLE_VISIBILITY_ANNOTATIONS",
    "-D_LIBCPP_DISABLE_VISIBILITY_ANNOTATIONS",
    "-D_LIBCPP_HAS_VENDOR_AVAILABILITY_ANNOTATIONS=0",
    "-D_LIBCPP_HAS_FILESYSTEM=0",
    "-D_LIBCPP_HAS_RANDOM_DEVICE=1",
    "-D_LIBCPP_HAS_LOCALIZATION=1",
    "-D_LIBCPP_HAS_UNICODE=1",
    "-D_LIBCPP_HAS_WIDE_CHARACTERS=1",
    "-D_LIBCPP_HAS_NO_STD_MODULES",
    "-D_LIBCPP_PSTL_BACKEND_SERIAL",
    "-D_LIBCPP_HARDENING_MODE=_LIBCPP_HARDENING_MODE_NONE",
    "-D_LIBCPP_ASSERTION_SEMANTIC_DEFAULT=_LIBCPP_ASSERTION_SEMANTIC_IGNORE",
];

/// zig's clang 22 and wasm-ld for C and C++ with wasm exceptions (the
/// `ziglang` wheel from PyPI, installed by `.ci/setup` under [`ZIG_DIR`]).
/// Its libc (wasi-libc), compiler-rt and C++ runtime are built by actions
/// (`rules/cc.star`), never taken from zig's global cache. The files that
/// key it: the zig binary, and `ziglang.sha256` (written by `.ci/setup`
/// from the wheel's `RECORD`: the sha256 of every file under `ziglang/`,
/// its headers and sources among them; the same on every machine).
fn resolve_cxx() -> Result<Toolchain, String> {
    let missing = |what: &str| {
        format!(
            "The C++ toolchain for wasm (zig's clang) is incomplete: `{what}` is missing; {SETUP_HINT} (it installs PyPI's ziglang 0.17.1 into {ZIG_DIR})"
        )
    };
    let zig = format!("{ZIG_DIR}/ziglang/zig");
    let record = format!("{ZIG_DIR}/ziglang.sha256");
    let zig_real = real(&zig).ok_or_else(|| missing(&zig))?;
    let record_real = real(&record).ok_or_else(|| missing(&record))?;
    let lib = format!("{ZIG_DIR}/ziglang/lib");
    for d in [
        "libcxx/include",
        "libcxxabi/src",
        "libunwind/src",
        "libc/wasi",
    ] {
        if !Path::new(&lib).join(d).is_dir() {
            return Err(missing(&format!("{lib}/{d}")));
        }
    }
    let target = "--target=wasm32-wasip1 -mcpu=generic -mexception-handling -fwasm-exceptions -mllvm -wasm-use-legacy-eh=false";
    let libc_includes = format!(
        "-isystem {lib}/include -isystem {lib}/libc/include/wasm-wasi-musl -isystem {lib}/libc/include/generic-musl -isystem {lib}/libc/include/wasm32-wasi-any -isystem {lib}/libc/include/any-wasi-any"
    );
    let cflags = format!("{target} -nostdinc {libc_includes}");
    let cxxflags = format!(
        "{target} -nostdinc -nostdinc++ -isystem {lib}/libcxx/include -isystem {lib}/libcxxabi/include {libc_includes} {}",
        LIBCXX_CONFIG.join(" ")
    );
    // zig keeps caches in $HOME and the working directory unless told:
    // point them into the action's private TMPDIR.
    let env =
        "export ZIG_GLOBAL_CACHE_DIR=$TMPDIR/zig-global ZIG_LOCAL_CACHE_DIR=$TMPDIR/zig-local";
    let entries = vec![
        ("zig".to_owned(), zig.clone()),
        ("lib".to_owned(), lib),
        ("cc".to_owned(), format!("{zig} clang")),
        ("ar".to_owned(), format!("{zig} ar")),
        ("ld".to_owned(), format!("{zig} wasm-ld")),
        ("cflags".to_owned(), cflags),
        ("cxxflags".to_owned(), cxxflags),
        ("env".to_owned(), env.to_owned()),
    ];
    let files = vec![
        zig_real.to_string_lossy().into_owned(),
        record_real.to_string_lossy().into_owned(),
    ];
    Ok(Toolchain { entries, files })
}

/// Where `.ci/setup` unpacks Debian's binaryen 108-1 (pinned by the
/// .deb's sha256). Not on PATH on purpose: Debian's clang 14 runs any
/// `wasm-opt` it finds on PATH when it links wasm with `-O`.
pub const BINARYEN_DIR: &str = "/opt/kiln/binaryen-108";

/// Binaryen's `wasm-opt` (for `provider(asyncify = True)`). The files that
/// key it: the binary and the `libbinaryen.so` it loads through its RUNPATH
/// (`$ORIGIN/../lib/x86_64-linux-gnu`), where the passes live.
fn resolve_binaryen() -> Result<Toolchain, String> {
    let missing = |what: &str| {
        format!(
            "The binaryen toolchain is incomplete: `{what}` is missing; {SETUP_HINT} (it unpacks Debian's binaryen 108-1 into {BINARYEN_DIR}, off PATH)"
        )
    };
    let wasm_opt = format!("{BINARYEN_DIR}/usr/bin/wasm-opt");
    let lib = format!("{BINARYEN_DIR}/usr/lib/x86_64-linux-gnu/libbinaryen.so");
    let wasm_opt_real = real(&wasm_opt).ok_or_else(|| missing(&wasm_opt))?;
    let lib_real = real(&lib).ok_or_else(|| missing(&lib))?;
    Ok(Toolchain {
        entries: vec![("wasm_opt".to_owned(), wasm_opt)],
        files: vec![
            wasm_opt_real.to_string_lossy().into_owned(),
            lib_real.to_string_lossy().into_owned(),
        ],
    })
}

/// Why a toolchain is not available.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ToolchainError {
    /// No such toolchain.
    #[error("Unknown toolchain `{0}`; known toolchains: c, cxx, rust, python, binaryen")]
    Unknown(String),
    /// It is not installed on this machine (the message says what to do).
    #[error("{0}")]
    Missing(String),
}

/// The toolchain called `name` (`c`, `cxx`, `rust`, `python` or `binaryen`), resolved once per
/// process.
pub fn get(name: &str) -> Result<&'static Toolchain, ToolchainError> {
    static C: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static RUST: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static PYTHON: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static CXX: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    static BINARYEN: OnceLock<Result<Toolchain, String>> = OnceLock::new();
    let cell = match name {
        "c" => C.get_or_init(resolve_c),
        "rust" => RUST.get_or_init(resolve_rust),
        "python" => PYTHON.get_or_init(resolve_python),
        "cxx" => CXX.get_or_init(resolve_cxx),
        "binaryen" => BINARYEN.get_or_init(resolve_binaryen),
        _ => return Err(ToolchainError::Unknown(name.to_owned())),
    };
    cell.as_ref()
        .map_err(|m| ToolchainError::Missing(m.clone()))
}
