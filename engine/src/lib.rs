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
//!    parallel waves; visibility and dependency cycles checked.
//! 3. **Analysis** (`analysis/`): each rule's Starlark implementation runs
//!    with a `ctx` (attributes as providers of dependencies, and
//!    `ctx.actions.*`), dependencies first and each level in parallel. It
//!    returns providers (`load/provider.rs`) and declares actions
//!    (`action/`), linked into the action graph (`graph/action.rs`).
//! 4. **Planning** (`exec/plan.rs`): the actions the requested targets
//!    need, in dependency order; persisted in `kiln-out/.kiln/` and reused
//!    while no BUILD/.star file changed. `exec/uptodate.rs` proves a no-op
//!    by stat alone.
//! 5. **Execution** (`exec/`): keys (`action/key.rs`), the scheduler, the
//!    sandbox (the one place that spawns), the local cache (`kiln-cache`)
//!    and the explain records. In-process action kinds (WIT bindings,
//!    componentize, compose, inspect) live in `action/kinds/`; toolchains
//!    outside the workspace are resolved in `toolchain.rs`.
//!
//! Commands (`cli/`, one file each) are thin wrappers over `ops/`.
//!
//! # Files on disk
//! - `kiln.toml`: marks the workspace root; settings (`workspace.rs`).
//! - `BUILD.star`: one per package; data only.
//! - `*.star`: rule definitions, loaded by label; the built-in ruleset is the
//!   repository's `rules/`, embedded in the binary (`load/loader.rs`).
//! - `kiln-out/<package>/...`: outputs, at the same paths actions see;
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
