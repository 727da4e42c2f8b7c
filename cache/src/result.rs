//! Action results: the outputs (path, digest, size, mode) and log of an
//! action, and their encoding in the `actions` table.

use crate::Digest;
use crate::codec::{self, Reader};

/// One output of an action result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputEntry {
    /// Execution-root-relative path (`kiln-out/pkg/file`).
    pub path: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file is executable.
    pub executable: bool,
}

/// A cached action result: the outputs of a successful run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionResult {
    /// Outputs, sorted by path.
    pub outputs: Vec<OutputEntry>,
    /// Digest of the captured stdout+stderr (stored as a blob), if any.
    pub log: Option<Digest>,
}

impl ActionResult {
    /// Versioned binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = codec::Writer::default();
        w.u8(1);
        w.u32(self.outputs.len() as u32);
        for o in &self.outputs {
            w.str(&o.path);
            w.digest(&o.digest);
            w.u64(o.size);
            w.u8(o.executable as u8);
        }
        match &self.log {
            Some(d) => {
                w.u8(1);
                w.digest(d);
            }
            None => w.u8(0),
        }
        w.0
    }

    /// Decode; `None` for a malformed or unknown-version record.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let mut r = Reader(b);
        if r.u8()? != 1 {
            return None;
        }
        let n = r.u32()? as usize;
        let mut outputs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let path = r.str()?.to_owned();
            let digest = r.digest()?;
            let size = r.u64()?;
            let executable = r.u8()? != 0;
            outputs.push(OutputEntry {
                path,
                digest,
                size,
                executable,
            });
        }
        let log = match r.u8()? {
            1 => Some(r.digest()?),
            _ => None,
        };
        r.is_empty().then_some(ActionResult { outputs, log })
    }
}
