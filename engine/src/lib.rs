//! kiln's engine: a Bazel-style build system for WebAssembly components.
//!
//! # Phases
//! 1. **Loading** (`load/`): find the workspace (`workspace.rs`), evaluate
//!    `BUILD.star` files in a data-only Starlark dialect (in parallel, one
//!    heap per file) and `.star` files that define rules (memoized, load
//!    cycles reported). Rule calls become `TargetDecl`s: typed, coerced
//!    attribute values with labels parsed (`label.rs`) but not yet resolved.
//! 2. **Target graph** (`graph/target.rs`): labels resolved into rule,
//!    source-file and generated-file nodes, loading dependency packages in
//!    parallel waves; visibility and dependency cycles checked. In a
//!    configuration (`graph/config.rs`) each package's `select()`s take
//!    the branch its settings choose.
//! 3. **Analysis** (`analysis/`): each rule's Starlark implementation runs
//!    with a `ctx` (attributes as providers of dependencies, and
//!    `ctx.actions.*`), dependencies first and each level in parallel. It
//!    returns providers (`load/provider.rs`, with the built-in
//!    `DefaultInfo`, `TestInfo` and `RunInfo`) and declares actions
//!    (`action/`: one file per kind in `action/kinds/`, each with its
//!    `ctx.actions` native, key material, plan codec and execution).
//! 4. **Planning** (`plan/`): the [`plan::Plan`], the one action graph:
//!    the actions the requested targets need, in dependency order, checked
//!    for cycles and missing producers, with what the requested targets
//!    are (tests, runnable). Persisted in `kiln-out/.kiln/` and reused
//!    while nothing loading read changed (`plan/persist.rs`);
//!    `plan/uptodate.rs` proves a no-op by stat alone.
//! 5. **Execution** (`exec/`): reads only a `Plan`. Keys
//!    (`action/key.rs`), the scheduler (`exec/scheduler.rs`, the one owner
//!    of build state), workers running actions through a `Runner`
//!    (`exec/runner.rs`: the sandbox, `exec/sandbox.rs`, the one place
//!    that spawns), the local cache (`kiln-cache`) and the explain records.
//!    Its runner, clock and filesystem are seams (`exec/runner.rs`,
//!    `exec/clock.rs`, `exec/files.rs`) with fakes in its unit tests.
//!    In-process action kinds get an `ExecContext` (cache directory,
//!    limits); toolchains outside the workspace are resolved in
//!    `toolchain.rs`.
//!
//! Commands (`cli/`, one file each) parse flags and print; what they do is
//! `ops/` (build, test, run, query, explain, clean, watch, migrate, lsp,
//! fmt and lint). The component host
//! that runs pylons (`kiln run`, pylon tests) is `host/` (wasmtime, with
//! the dynlink linker generated from its WIT). Remote caches are
//! `remote/`.
//!
//! # Files on disk
//! - `kiln.toml`: marks the workspace root; settings (`workspace.rs`).
//! - `BUILD.star`: one per package; data only.
//! - `*.star`: rule definitions, loaded by label; the built-in ruleset is the
//!   repository's `rules/`, embedded in the binary (`load/loader.rs`).
//! - `kiln-out/<package>/...`: outputs, at the same paths actions see
//!   (a configuration other than the default: `kiln-out/<config>/<package>/...`,
//!   while actions still see `kiln-out/<package>/...`);
//!   `kiln-out/.kiln/`: persisted plans and no-op records.
//! - the local cache (`--cache-dir`, `$KILN_CACHE_DIR`, `~/.cache/kiln`):
//!   format documented in `kiln-cache`.
//!
//! # Unsafe code
//! None is written by hand. Starlark's derives (`ProvidesStaticType`,
//! `Trace`) expand to `unsafe impl`s, so the modules defining Starlark value
//! types allow `unsafe_code` locally and say so at their top.

pub mod action;
pub mod analysis;
pub mod artifact;
pub mod cli;
pub mod error;
pub mod exec;
pub mod graph;
pub mod host;
pub mod label;
pub mod load;
pub mod ops;
pub mod plan;
pub mod remote;
pub mod toolchain;
pub mod workspace;

/// The system allocator, with Starlark evaluation held to a memory limit
/// (see `load/guard.rs`).
#[global_allocator]
static ALLOCATOR: load::guard::Guard = load::guard::Guard;
