//! Artifacts: the files actions read and write, as Starlark values.
//!
//! An artifact is either a source file of the workspace or an output declared
//! by a target during analysis. Both are named by their path relative to the
//! action's execution root, which mirrors the workspace: sources at
//! `pkg/file`, outputs at `kiln-out/pkg/file`. That path is what command lines
//! see and what enters action keys, so no absolute path ever does.
//! Declaring outputs is in `analysis/`; this file only owns the value.

// Starlark value types: `#[derive(ProvidesStaticType)]` expands to an
// `unsafe impl`; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::starlark_simple_value;
use starlark::values::StarlarkPagablePanic;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, starlark_value,
};

use starlark::values::ValueLike;

use crate::label::Label;

/// Directory, relative to the workspace root, that holds every output.
pub const OUT_DIR: &str = "kiln-out";

/// Whose `runs` records (what `kiln explain` reads) a build writes: the
/// workspace's, per configuration.
pub fn runs_key(root: &std::path::Path, out_dir: Option<&str>) -> String {
    let ws = root.to_string_lossy();
    match out_dir {
        Some(d) => format!("{ws}#{d}"),
        None => ws.into_owned(),
    }
}

/// Where execution path `p` is in the workspace (relative to the root):
/// itself for a source or an output of the default configuration, else
/// below `kiln-out/<out_dir>/`.
pub fn workspace_path<'a>(p: &'a str, out_dir: Option<&str>) -> std::borrow::Cow<'a, str> {
    match (out_dir, p.strip_prefix("kiln-out/")) {
        (Some(d), Some(rest)) => std::borrow::Cow::Owned(format!("{OUT_DIR}/{d}/{rest}")),
        _ => std::borrow::Cow::Borrowed(p),
    }
}

/// kiln's own state in a workspace (persisted plans, no-op records,
/// temporary files of materialization): `kiln-out/.kiln/`.
pub fn state_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.join(OUT_DIR).join(".kiln")
}

/// Where an artifact comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Allocative)]
pub enum ArtifactKind {
    /// A file checked into the workspace.
    Source,
    /// A file produced by an action of the target `owner`.
    Output {
        /// The target that declared it.
        #[allocative(skip)]
        owner: Label,
    },
}

/// A file an action reads or writes.
///
/// Invariant: `path` is relative to the execution root, `/`-separated,
/// normalized; outputs always start with `kiln-out/`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Allocative)]
pub struct ArtifactData {
    /// Path relative to the execution root.
    pub path: String,
    /// Source or output, and of which target.
    pub kind: ArtifactKind,
}

/// The Starlark value of an artifact (`File` in rule implementations).
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    ProvidesStaticType,
    NoSerialize,
    Allocative,
    StarlarkPagablePanic,
)]
pub struct Artifact(pub Arc<ArtifactData>);

starlark_simple_value!(Artifact);

impl Artifact {
    /// A source file at a workspace-relative path.
    pub fn source(path: String) -> Self {
        Artifact(Arc::new(ArtifactData {
            path,
            kind: ArtifactKind::Source,
        }))
    }

    /// An output of `owner` at `kiln-out/<package>/<rel>`.
    pub fn output(owner: &Label, rel: &str) -> Self {
        let path = format!("{OUT_DIR}/{}", owner.package.join(rel));
        Artifact(Arc::new(ArtifactData {
            path,
            kind: ArtifactKind::Output {
                owner: owner.clone(),
            },
        }))
    }

    /// Path relative to the execution root.
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Whether this is a checked-in source file.
    pub fn is_source(&self) -> bool {
        matches!(self.0.kind, ArtifactKind::Source)
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            ArtifactKind::Source => write!(f, "<source {}>", self.0.path),
            ArtifactKind::Output { owner } => write!(f, "<output {} of {}>", self.0.path, owner),
        }
    }
}

const ATTRS: &[&str] = &[
    "path",
    "basename",
    "extension",
    "dirname",
    "is_source",
    "owner",
    "short_path",
];

#[starlark_value(type = "File")]
impl<'v> StarlarkValue<'v> for Artifact {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let path = self.path();
        let basename = path.rsplit('/').next().unwrap_or(path);
        Some(match attribute {
            "path" => heap.alloc(path),
            "basename" => heap.alloc(basename),
            "extension" => heap.alloc(basename.rsplit_once('.').map(|(_, e)| e).unwrap_or("")),
            "dirname" => heap.alloc(path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")),
            "is_source" => Value::new_bool(self.is_source()),
            "short_path" => heap.alloc(path.strip_prefix("kiln-out/").unwrap_or(path)),
            "owner" => match &self.0.kind {
                ArtifactKind::Source => Value::new_none(),
                ArtifactKind::Output { owner } => heap.alloc(owner.to_string()),
            },
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ATTRS.iter().map(|s| (*s).to_owned()).collect()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<Artifact>().is_some_and(|o| o == self))
    }
}
