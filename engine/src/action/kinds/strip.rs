//! `ctx.actions.strip_custom_sections`: copy a core module or component
//! without its custom sections (names, producers, DWARF `.debug_*`), at
//! every nesting level, in-process. The bytes of every other section are
//! kept as they are, so the result runs exactly as the input did; it is
//! validated before it is written.

use std::fmt::Write as _;
use std::path::Path;

use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;
use wasmparser::{Validator, WasmFeatures};

use super::wasm::write_output;
use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
use crate::artifact::Artifact;

/// Strip custom sections.
#[derive(Clone, Debug, PartialEq)]
pub struct Strip;

/// The format version of what this kind writes (part of its key).
const STRIP_VERSION: &str = "strip-custom-sections-1";

fn read_leb(bytes: &[u8], at: &mut usize) -> Result<u32, String> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*at).ok_or("truncated section size")?;
        *at += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| "section size too large".to_owned());
        }
    }
    Err("section size too long".to_owned())
}

fn write_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// `bytes` (a core module or a component) without custom sections; nested
/// modules and components (inside a component) are stripped too.
pub fn strip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a wasm binary".to_owned());
    }
    // Bytes 4..8: version and layer; a component has layer 1.
    let component = bytes[6] == 1 && bytes[7] == 0;
    let mut out = bytes[..8].to_vec();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = read_leb(bytes, &mut at)? as usize;
        let body = bytes
            .get(at..at + size)
            .ok_or("a section runs past the end of the binary")?;
        at += size;
        match id {
            0 => {}
            // A component's core module (1) and component (4) sections
            // hold whole binaries.
            1 | 4 if component => {
                let inner = strip(body)?;
                out.push(id);
                write_leb(&mut out, inner.len() as u32);
                out.extend(inner);
            }
            _ => {
                out.push(id);
                write_leb(&mut out, size as u32);
                out.extend(body);
            }
        }
    }
    Ok(out)
}

impl Strip {
    fn run(&self, root: &Path, inputs: &[Artifact], outputs: &[Artifact]) -> Result<(), String> {
        let input = inputs
            .first()
            .ok_or("strip_custom_sections needs one input")?;
        let bytes = std::fs::read(root.join(input.path()))
            .map_err(|e| format!("cannot read `{}`: {e}", input.path()))?;
        let out = strip(&bytes).map_err(|e| format!("`{}`: {e}", input.path()))?;
        Validator::new_with_features(WasmFeatures::all())
            .validate_all(&out)
            .map_err(|e| format!("`{}` without custom sections is invalid: {e}", input.path()))?;
        write_output(root, outputs, &out)
    }
}

impl Kind for Strip {
    const TAG: u8 = 9;

    fn key(&self, e: &mut KeyEncoder) {
        e.str(STRIP_VERSION);
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(s, "  strip-custom-sections");
    }

    fn encode(&self, _w: &mut Writer) {}

    fn decode(_r: &mut Reader) -> Option<Self> {
        Some(Strip)
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.inputs, &action.outputs))
    }
}

/// `ctx.actions.strip_custom_sections`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Write `input` (a module or component) to `output` without custom
    /// sections.
    fn strip_custom_sections<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] input: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut ins = Vec::new();
        collect_files(input, "input", &mut ins)?;
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        declare_action(eval, "StripCustomSections", ActionKind::Strip(Strip), ins, outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_custom_sections_and_keeps_the_rest() {
        // A module: a custom section "name", a type section, a custom
        // section "x".
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend([0, 5, 4, b'n', b'a', b'm', b'e']);
        m.extend([1, 4, 1, 0x60, 0, 0]);
        m.extend([0, 2, 1, b'x']);
        let s = strip(&m).unwrap();
        assert_eq!(s, b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0");
        // A component holding that module: the nested one is stripped too.
        let mut c = b"\0asm\x0d\0\x01\0".to_vec();
        c.push(1);
        write_leb(&mut c, m.len() as u32);
        c.extend(&m);
        c.extend([0, 2, 1, b'y']);
        let sc = strip(&c).unwrap();
        let mut want = b"\0asm\x0d\0\x01\0".to_vec();
        want.push(1);
        write_leb(&mut want, s.len() as u32);
        want.extend(&s);
        assert_eq!(sc, want);
        assert!(strip(b"\0asm\x01\0\0\0\x01\x09").is_err());
        assert!(strip(b"nope").is_err());
    }
}
