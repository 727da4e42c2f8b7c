//! Action keys: BLAKE3 over a versioned, canonical encoding of everything
//! that can change an action's outputs.
//!
//! Encoded, in order: a format tag and version, the sandbox contract version
//! (fixed environment, layout), the kind and its payload (argv and env for
//! `run`, content and mode for `write`), each input's path and content
//! digest (sorted by path), each output path (sorted), and the digests of
//! toolchain files outside the workspace the action runs (e.g. `/bin/bash`).
//! Paths are execution-root-relative, so no absolute workspace path and no
//! timestamp ever enters a key: two checkouts of one commit share entries.
//! Bump `KEY_VERSION` whenever this encoding or the sandbox contract changes.

use kiln_cache::Digest;

use super::Action;

/// Version of the key encoding and sandbox contract.
pub const KEY_VERSION: u32 = 1;

/// Incremental canonical encoder: every field is length-prefixed. Action
/// kinds feed their own material through it ([`super::kinds::Kind::key`]).
pub struct KeyEncoder(blake3::Hasher);

impl KeyEncoder {
    /// Length-prefixed bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
    }
    /// A length-prefixed string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// A number.
    pub fn u64(&mut self, n: u64) {
        self.0.update(&n.to_le_bytes());
    }
}

/// The digest of what the action does, without its inputs' contents: kind,
/// command line, environment, content and outputs. `kiln explain` compares
/// it to tell "command changed" from "input changed".
pub fn command_digest(a: &Action) -> Digest {
    let mut e = KeyEncoder(blake3::Hasher::new());
    e.str("kiln-command");
    e.u64(KEY_VERSION as u64);
    encode_command(&mut e, a);
    Digest(*e.0.finalize().as_bytes())
}

fn encode_command(e: &mut KeyEncoder, a: &Action) {
    a.kind.key(e);
    e.u64(a.outputs.len() as u64);
    for o in &a.outputs {
        e.str(o.path());
    }
}

/// The action key. `inputs` are (path, digest) in the order of
/// `a.inputs` (sorted by path); `tools` are (absolute path, digest), sorted.
pub fn action_key(a: &Action, inputs: &[Digest], tools: &[(String, Digest)]) -> Digest {
    let mut e = KeyEncoder(blake3::Hasher::new());
    e.str("kiln-action");
    e.u64(KEY_VERSION as u64);
    encode_command(&mut e, a);
    e.u64(a.inputs.len() as u64);
    for (i, d) in a.inputs.iter().zip(inputs) {
        e.str(i.path());
        e.bytes(&d.0);
    }
    e.u64(tools.len() as u64);
    for (p, d) in tools {
        e.str(p);
        e.bytes(&d.0);
    }
    Digest(*e.0.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::action::{ActionKind, CommandAction};
    use crate::artifact::Artifact;
    use crate::error::Location;
    use crate::label::Label;

    fn action(argv: &[&str]) -> Action {
        let owner = Label::parse_absolute("//p:t").unwrap();
        Action {
            owner: owner.clone(),
            index: 0,
            mnemonic: "Genrule".into(),
            kind: ActionKind::Command(CommandAction {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                env: BTreeMap::new(),
                tools: Vec::new(),
                network: false,
                ..Default::default()
            }),
            inputs: vec![Artifact::source("p/in.txt".into())],
            outputs: vec![Artifact::output(&owner, "out.txt")],
            location: Location {
                file: "x".into(),
                line: 1,
                col: 1,
            },
        }
    }

    #[test]
    fn keys_change_with_what_matters_only() {
        let a = action(&["/bin/bash", "-c", "cat p/in.txt > kiln-out/p/out.txt"]);
        let d1 = Digest::of(b"one");
        let d2 = Digest::of(b"two");
        let k = action_key(&a, &[d1], &[]);
        assert_eq!(k, action_key(&a, &[d1], &[]), "deterministic");
        assert_ne!(k, action_key(&a, &[d2], &[]), "input content");
        assert_ne!(
            k,
            action_key(&a, &[d1], &[("/bin/bash".into(), d2)]),
            "tool content"
        );
        let mut b = a.clone();
        b.location = Location {
            file: "elsewhere".into(),
            line: 9,
            col: 9,
        };
        assert_eq!(
            k,
            action_key(&b, &[d1], &[]),
            "where it was declared does not matter"
        );
        let c = action(&["/bin/bash", "-c", "cat p/in.txt>kiln-out/p/out.txt"]);
        assert_ne!(k, action_key(&c, &[d1], &[]), "command");
        assert_ne!(command_digest(&a), command_digest(&c));
        // Field boundaries are unambiguous.
        assert_ne!(
            action_key(&action(&["ab", "c"]), &[d1], &[]),
            action_key(&action(&["a", "bc"]), &[d1], &[])
        );
    }
}
