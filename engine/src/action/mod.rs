//! Actions: the units of work analysis declares and execution runs.
//!
//! Owns `Action` (who declared it, what it reads and writes) and the closed
//! `ActionKind` enum with one file per kind in `kinds/`. Every exhaustive
//! match over `ActionKind` is where a new kind must be taught something.
//! Declaring actions from Starlark is `analysis/`; ordering them is
//! `graph/`.

pub mod key;
pub mod kinds;
pub mod tool_versions;

use std::fmt::Write as _;

use crate::artifact::Artifact;
use crate::error::Location;
use crate::label::Label;

pub use kinds::componentize::Componentize;
pub use kinds::compose::Compose;
pub use kinds::dynlink_plan::DynlinkPlan;
pub use kinds::inspect::Inspect;
pub use kinds::pylon_test::PylonTest;
pub use kinds::run::RunAction;
pub use kinds::wit_bindgen_c::WitBindgenC;
pub use kinds::wit_check::WitCheck;
pub use kinds::write::WriteAction;

/// Index of an action in an analysis result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(pub usize);

/// What an action does.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionKind {
    /// Run a command (`ctx.actions.run`).
    Run(RunAction),
    /// Write literal content to a file (`ctx.actions.write`).
    Write(WriteAction),
    /// C bindings for a WIT world, in-process (`ctx.actions.wit_bindgen_c`).
    WitBindgenC(WitBindgenC),
    /// Core module + WIT world -> component (`ctx.actions.componentize`).
    Componentize(Componentize),
    /// Plug components into a socket (`ctx.actions.compose`).
    Compose(Compose),
    /// Validate a component and list its interfaces
    /// (`ctx.actions.inspect_component`).
    Inspect(Inspect),
    /// Parse and validate WIT packages (`ctx.actions.wit_check`).
    WitCheck(WitCheck),
    /// Map dynlink provider ids to component digests
    /// (`ctx.actions.dynlink_plan`).
    DynlinkPlan(DynlinkPlan),
    /// Run a Python test file in a pylon (`ctx.actions.pylon_test`).
    PylonTest(PylonTest),
}

impl ActionKind {
    /// Run an in-process kind in the sandbox at `root`; `None` for kinds
    /// that are not in-process (`Run`, `Write`).
    pub fn execute_in_process(
        &self,
        root: &std::path::Path,
        a: &Action,
    ) -> Option<Result<(), String>> {
        Some(match self {
            ActionKind::WitBindgenC(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::Componentize(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::Compose(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::Inspect(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::WitCheck(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::DynlinkPlan(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::PylonTest(k) => k.execute(root, &a.inputs, &a.outputs),
            ActionKind::Run(_) | ActionKind::Write(_) => return None,
        })
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
    /// The stable text form used by `kiln query 'actions(...)'` and golden
    /// files.
    pub fn dump(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "action {}#{} {}", self.owner, self.index, self.mnemonic);
        match &self.kind {
            ActionKind::Run(r) => r.dump(&mut s),
            ActionKind::Write(w) => w.dump(&mut s),
            ActionKind::WitBindgenC(k) => k.dump(&mut s),
            ActionKind::Componentize(k) => k.dump(&mut s),
            ActionKind::Compose(k) => k.dump(&mut s),
            ActionKind::Inspect(k) => k.dump(&mut s),
            ActionKind::WitCheck(k) => k.dump(&mut s),
            ActionKind::DynlinkPlan(k) => k.dump(&mut s),
            ActionKind::PylonTest(k) => k.dump(&mut s),
        }
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
