//! Compiled components, cached: `<compiled dir>/<key>.cwasm`, where the
//! key is BLAKE3 over the component's bytes and wasmtime's version and
//! configuration. A file is the BLAKE3 digest of its payload followed by
//! the payload (wasmtime's serialized code), written atomically; a file
//! whose payload does not match its digest is compiled again.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Load `bytes` as a component, from the cache when it has it.
pub fn load(engine: &Engine, bytes: &[u8], dir: &Path) -> Result<Component, String> {
    let mut h = blake3::Hasher::new();
    h.update(b"kiln-compiled-1 ");
    h.update(crate::action::tool_versions::WASMTIME.as_bytes());
    let mut compat = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
    h.update(&std::hash::Hasher::finish(&compat).to_le_bytes());
    h.update(bytes);
    let key = h.finalize().to_hex();
    let path = dir.join(format!("{key}.cwasm"));
    if let Ok(file) = std::fs::read(&path)
        && file.len() > 32
        && blake3::hash(&file[32..]).as_bytes() == &file[..32]
    {
        // SAFETY: wasmtime requires that deserialized bytes were produced
        // by `serialize` of a compatible engine: this file was written by
        // kiln from `Component::serialize` (the key covers wasmtime's
        // version and configuration) and its digest was just verified, so
        // it is not a truncated or corrupted file.
        #[allow(unsafe_code)]
        let c = unsafe { Component::deserialize(engine, &file[32..]) };
        if let Ok(c) = c {
            return Ok(c);
        }
    }
    let c = Component::new(engine, bytes).map_err(|e| format!("{e:#}"))?;
    // A cache that cannot be written only costs the next run a compile.
    if let Ok(code) = c.serialize() {
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(format!("{key}.tmp{}", std::process::id()));
        let mut file = blake3::hash(&code).as_bytes().to_vec();
        file.extend_from_slice(&code);
        if std::fs::write(&tmp, &file).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(c)
}
