//! What happened to an action, kept for `kiln explain` and for telling the
//! next build why an action has to run.
//!
//! A record is stored per (workspace, action) in the cache's `runs` table.
//! `reason()` compares the previous record with the action's current key
//! material to name the cause: new action, command changed, which inputs
//! changed, toolchain changed, or the cache entry missing or corrupt.

use kiln_cache::Digest;
use kiln_cache::codec::{Reader, Writer};

/// Outcome codes in the `runs` table (0 is the cache crate's "up to date").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Outputs were already in place for the current key.
    UpToDate = 0,
    /// The command ran.
    Executed = 1,
    /// Outputs were restored from the local cache.
    Restored = 2,
    /// The command failed.
    Failed = 3,
}

impl Outcome {
    /// From the stored code.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => Outcome::UpToDate,
            1 => Outcome::Executed,
            2 => Outcome::Restored,
            3 => Outcome::Failed,
            _ => return None,
        })
    }
}

/// One action's last run.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Why it ran (or was restored, or failed).
    pub reason: String,
    /// Its key then.
    pub key: Digest,
    /// Its command digest then.
    pub command: Digest,
    /// Its inputs then: (path, digest).
    pub inputs: Vec<(String, Digest)>,
}

impl Record {
    /// Versioned encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(1);
        w.str(&self.reason);
        w.digest(&self.key);
        w.digest(&self.command);
        w.u32(self.inputs.len() as u32);
        for (p, d) in &self.inputs {
            w.str(p);
            w.digest(d);
        }
        w.0
    }

    /// Decode; `None` if malformed or of another version.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        if r.u8()? != 1 {
            return None;
        }
        let reason = r.str()?.to_owned();
        let key = r.digest()?;
        let command = r.digest()?;
        let count = r.u32()? as usize;
        let mut inputs = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            inputs.push((r.str()?.to_owned(), r.digest()?));
        }
        r.is_empty().then_some(Record {
            reason,
            key,
            command,
            inputs,
        })
    }
}

/// Why an action whose outputs are not up to date must run, given its last
/// record (if any) and its current command digest, inputs and key.
pub fn reason(
    prev: Option<&Record>,
    command: Digest,
    inputs: &[(String, Digest)],
    key: Digest,
) -> String {
    let Some(prev) = prev else {
        return "new action (never built in this workspace)".to_owned();
    };
    if prev.command != command {
        return "command changed".to_owned();
    }
    let old: std::collections::HashMap<&str, Digest> =
        prev.inputs.iter().map(|(p, d)| (p.as_str(), *d)).collect();
    let mut changed: Vec<&str> = Vec::new();
    for (p, d) in inputs {
        match old.get(p.as_str()) {
            Some(o) if o == d => {}
            _ => changed.push(p),
        }
    }
    if !changed.is_empty() {
        let shown: Vec<String> = changed.iter().take(3).map(|p| format!("`{p}`")).collect();
        let more = if changed.len() > 3 {
            format!(" and {} more", changed.len() - 3)
        } else {
            String::new()
        };
        let noun = if changed.len() == 1 {
            "input"
        } else {
            "inputs"
        };
        return format!("{noun} {}{more} changed", shown.join(", "));
    }
    if inputs.len() != prev.inputs.len() {
        return "inputs removed".to_owned();
    }
    if prev.key != key {
        return "toolchain changed".to_owned();
    }
    "cache entry missing".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        let d = |s: &str| Digest::of(s.as_bytes());
        let prev = Record {
            reason: String::new(),
            key: d("k"),
            command: d("c"),
            inputs: vec![("a".into(), d("1")), ("b".into(), d("2"))],
        };
        assert_eq!(Record::decode(&prev.encode()), Some(prev.clone()));
        assert_eq!(
            reason(None, d("c"), &[], d("k")),
            "new action (never built in this workspace)"
        );
        assert_eq!(
            reason(Some(&prev), d("x"), &prev.inputs, d("k")),
            "command changed"
        );
        let changed = vec![("a".into(), d("1")), ("b".into(), d("3"))];
        assert_eq!(
            reason(Some(&prev), d("c"), &changed, d("k2")),
            "input `b` changed"
        );
        assert_eq!(
            reason(Some(&prev), d("c"), &prev.inputs, d("k")),
            "cache entry missing"
        );
        assert_eq!(
            reason(Some(&prev), d("c"), &prev.inputs, d("k3")),
            "toolchain changed"
        );
    }
}
