//! Actions: the units of work analysis declares and execution runs.
//!
//! Owns `Action` (who declared it, what it reads and writes), the closed
//! `ActionKind` enum with one file per kind in `kinds/` (adding a kind is
//! that file and one line there), the key encoding (`key.rs`) and the
//! locked tool versions that enter keys (`tool_versions.rs`).
//! Declaring actions from Starlark is `analysis/`; ordering them is
//! `graph/`.

pub mod key;
pub mod kinds;
pub mod tool_versions;

use std::fmt::Write as _;

use crate::artifact::Artifact;
use crate::error::Location;
use crate::label::Label;

pub use kinds::command::CommandAction;
pub use kinds::componentize::Componentize;
pub use kinds::compose::Compose;
pub use kinds::dynlink_plan::DynlinkPlan;
pub use kinds::inspect::Inspect;
pub use kinds::pylon_test::PylonTest;
pub use kinds::wit_bindgen_c::WitBindgenC;
pub use kinds::wit_check::WitCheck;
pub use kinds::write::WriteAction;
pub use kinds::{ActionKind, ExecContext, Execution};

/// Index of an action in an analysis result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(pub usize);

/// An action's stable name across runs: its owner and its position among
/// the owner's actions, shown as `//pkg:name#index`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionName {
    /// The target that declared it.
    pub owner: Label,
    /// Its position among the owner's actions.
    pub index: usize,
}

impl std::fmt::Display for ActionName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.owner, self.index)
    }
}

/// One declared action.
///
/// Invariant: `inputs` and `outputs` are sorted by path and free of
/// duplicates; every output belongs to `owner`; no path is in both.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// The target whose analysis declared it.
    pub owner: Label,
    /// Its position among `owner`'s actions (stable across runs).
    pub index: usize,
    /// A short category (`Genrule`, `Write`, ...).
    pub mnemonic: String,
    /// What it does.
    pub kind: ActionKind,
    /// Files it reads.
    pub inputs: Vec<Artifact>,
    /// Files it writes.
    pub outputs: Vec<Artifact>,
    /// Where in a `.star` file it was declared.
    pub location: Location,
}

impl Action {
    /// Its result is never cached nor looked up (Bazel's `no-cache`).
    pub fn no_cache(&self) -> bool {
        matches!(&self.kind, ActionKind::Command(c) if c.no_cache)
    }

    /// Its stable name (`//pkg:name#index`).
    pub fn name(&self) -> ActionName {
        ActionName {
            owner: self.owner.clone(),
            index: self.index,
        }
    }

    /// The stable text form used by `kiln query 'actions(...)'` and golden
    /// files.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "action {} {}", self.name(), self.mnemonic);
        self.kind.dump(&mut s);
        let _ = writeln!(s, "  inputs:");
        for i in &self.inputs {
            let _ = writeln!(s, "    {}", i.path());
        }
        let _ = writeln!(s, "  outputs:");
        for o in &self.outputs {
            let _ = writeln!(s, "    {}", o.path());
        }
        s
    }
}

/// Quote a word for a POSIX shell, only when needed.
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a/b.txt"), "a/b.txt");
        assert_eq!(shell_quote("cat $(x) > y"), "'cat $(x) > y'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
