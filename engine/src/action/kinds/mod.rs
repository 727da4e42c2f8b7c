//! One file per action kind, each owning everything about its kind: the
//! data, its `ctx.actions.*` native (`natives`), its key material, its
//! persisted-plan encoding, its `actions()` dump, and how it executes
//! (in-process, or spawned by the sandbox).
//!
//! Adding a kind is a file here whose type implements [`Kind`] and one line
//! in the `kinds!` list below (which also declares the file's module). The list generates the closed
//! [`ActionKind`] enum and the dispatch over it, so nothing else changes:
//! the planner, the scheduler, the sandbox and the key encoder only call
//! `ActionKind`'s methods. A test checks that codec tags are unique.

// Starlark natives take their named parameters as Rust arguments.
#![allow(clippy::too_many_arguments)]

pub mod wasm;

use std::path::{Path, PathBuf};

use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;

use super::Action;
use super::key::KeyEncoder;

/// What in-process kinds get from the build that runs them (instead of
/// process globals).
#[derive(Clone, Debug)]
pub struct ExecContext {
    /// The local cache directory.
    pub cache_dir: PathBuf,
    /// Most output an in-process kind keeps from a guest it runs.
    pub capture_limit: usize,
}

impl ExecContext {
    /// A context for the cache at `cache_dir`, with default limits.
    pub fn new(cache_dir: PathBuf) -> Self {
        ExecContext {
            cache_dir,
            capture_limit: 16 << 20,
        }
    }

    /// Where compiled wasm code is cached (`<cache>/compiled/`).
    pub fn compiled_dir(&self) -> PathBuf {
        self.cache_dir.join("compiled")
    }
}

/// How an action executes.
pub enum Execution<'a> {
    /// It ran in-process, in the sandbox directory: done, or why it failed.
    Done(Result<(), String>),
    /// The sandbox must spawn this command (the one place kiln spawns).
    Spawn(&'a command::CommandAction),
}

/// What every action kind provides.
pub trait Kind: Sized {
    /// The kind's tag in persisted plans: unique, never reused for another
    /// kind (bump the plan format instead).
    const TAG: u8;

    /// Feed what the kind does (besides its inputs and outputs, which the
    /// key adds) to the action key: command line, options, tool versions.
    fn key(&self, e: &mut KeyEncoder);

    /// Append the kind's lines of the stable `actions()` dump.
    fn dump(&self, s: &mut String);

    /// Encode into a persisted plan.
    fn encode(&self, w: &mut Writer);

    /// Decode from a persisted plan (`None`: malformed).
    fn decode(r: &mut Reader) -> Option<Self>;

    /// Execute in the sandbox directory `root`, whose inputs are staged.
    fn execute(&self, cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_>;

    /// Absolute paths of files outside the workspace the action runs
    /// (toolchain files), whose digests enter its key.
    fn tool_files(&self) -> Vec<&str> {
        Vec::new()
    }

    /// The command line to show when the action fails, if it has one.
    fn command_line(&self) -> Option<String> {
        None
    }
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident($module:ident::$ty:ident),)*) => {
        $(pub mod $module;)*

        /// What an action does: one variant per kind file.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ActionKind {
            $($(#[$doc])* $variant($module::$ty),)*
        }

        impl ActionKind {
            /// See [`Kind::key`].
            pub fn key(&self, e: &mut KeyEncoder) {
                match self { $(ActionKind::$variant(k) => k.key(e),)* }
            }

            /// See [`Kind::dump`].
            pub fn dump(&self, s: &mut String) {
                match self { $(ActionKind::$variant(k) => k.dump(s),)* }
            }

            /// The tag, then the kind's own encoding.
            pub fn encode(&self, w: &mut Writer) {
                match self {
                    $(ActionKind::$variant(k) => {
                        w.u8(<$module::$ty as Kind>::TAG);
                        k.encode(w);
                    })*
                }
            }

            /// Read what [`ActionKind::encode`] wrote.
            pub fn decode(r: &mut Reader) -> Option<ActionKind> {
                let tag = r.u8()?;
                $(if tag == <$module::$ty as Kind>::TAG {
                    return <$module::$ty as Kind>::decode(r).map(ActionKind::$variant);
                })*
                None
            }

            /// See [`Kind::execute`].
            pub fn execute(&self, cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
                match self { $(ActionKind::$variant(k) => k.execute(cx, root, action),)* }
            }

            /// See [`Kind::tool_files`].
            pub fn tool_files(&self) -> Vec<&str> {
                match self { $(ActionKind::$variant(k) => k.tool_files(),)* }
            }

            /// See [`Kind::command_line`].
            pub fn command_line(&self) -> Option<String> {
                match self { $(ActionKind::$variant(k) => k.command_line(),)* }
            }

            /// Every kind's tag, in declaration order.
            pub const TAGS: &[u8] = &[$(<$module::$ty as Kind>::TAG,)*];
        }

        /// Register every kind's `ctx.actions.*` native.
        pub fn register_natives(builder: &mut MethodsBuilder) {
            $($module::natives(builder);)*
        }
    };
}

kinds! {
    /// Run a command in the sandbox (`ctx.actions.run`).
    Command(command::CommandAction),
    /// Write literal content to a file (`ctx.actions.write`).
    Write(write::WriteAction),
    /// C bindings for a WIT world (`ctx.actions.wit_bindgen_c`).
    WitBindgenC(wit_bindgen_c::WitBindgenC),
    /// Core module + WIT world -> component (`ctx.actions.componentize`).
    Componentize(componentize::Componentize),
    /// Plug components into a socket (`ctx.actions.compose`).
    Compose(compose::Compose),
    /// Validate a component and list its interfaces
    /// (`ctx.actions.inspect_component`).
    Inspect(inspect::Inspect),
    /// Parse and validate WIT packages (`ctx.actions.wit_check`).
    WitCheck(wit_check::WitCheck),
    /// Map dynlink provider ids to component digests
    /// (`ctx.actions.dynlink_plan`).
    DynlinkPlan(dynlink_plan::DynlinkPlan),
    /// Run a Python test file in a pylon (`ctx.actions.pylon_test`).
    PylonTest(pylon_test::PylonTest),
    /// Copy a module or component without its custom sections
    /// (`ctx.actions.strip_custom_sections`).
    Strip(strip::Strip),
    /// A cap's CPython module generated from its WIT world
    /// (`ctx.actions.wit_bindgen_py`).
    WitBindgenPy(wit_bindgen_py::WitBindgenPy),
}

/// Encode a list of strings (length, then each).
pub(crate) fn put_strs<'a>(w: &mut Writer, items: impl ExactSizeIterator<Item = &'a String>) {
    w.u32(items.len() as u32);
    items.for_each(|x| w.str(x));
}

/// Decode what [`put_strs`] wrote.
pub(crate) fn get_strs(r: &mut Reader) -> Option<Vec<String>> {
    let n = r.u32()?;
    (0..n).map(|_| r.str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_tags_are_unique() {
        let mut tags = ActionKind::TAGS.to_vec();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ActionKind::TAGS.len(), "{:?}", ActionKind::TAGS);
    }
}
