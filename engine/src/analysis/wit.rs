//! WIT read during analysis (`ctx.wit_world`): a world's imported and
//! exported interfaces, so rules can check a composition before building.

use std::path::Path;

use wit_bindgen_core::wit_parser::{Resolve, WorldKey};

use crate::action::kinds::wasm::resolve_world;

/// A world's name and the interfaces it imports and exports.
#[derive(Debug)]
pub struct WorldSummary {
    /// `ns:pkg/name@version`.
    pub name: String,
    /// Imported interfaces (`ns:pkg/iface@version`), and the names of
    /// imported functions, sorted.
    pub imports: Vec<String>,
    /// Exported interfaces and function names, sorted.
    pub exports: Vec<String>,
}

fn key_name(resolve: &Resolve, key: &WorldKey) -> String {
    match key {
        WorldKey::Name(n) => n.clone(),
        WorldKey::Interface(id) => resolve
            .id_of(*id)
            .unwrap_or_else(|| resolve.name_world_key(key)),
    }
}

/// Resolve `files` (paths under `root`) and summarize `world`.
pub fn world_of(root: &Path, files: &[&str], world: &str) -> Result<WorldSummary, String> {
    let (resolve, id) = resolve_world(root, files, world)?;
    let w = &resolve.worlds[id];
    let mut imports: Vec<String> = w.imports.keys().map(|k| key_name(&resolve, k)).collect();
    let mut exports: Vec<String> = w.exports.keys().map(|k| key_name(&resolve, k)).collect();
    imports.sort();
    exports.sort();
    let name = match w.package {
        Some(p) => {
            let pkg = &resolve.packages[p].name;
            let mut n = format!("{}:{}/{}", pkg.namespace, pkg.name, w.name);
            if let Some(v) = &pkg.version {
                n.push_str(&format!("@{v}"));
            }
            n
        }
        None => w.name.clone(),
    };
    Ok(WorldSummary {
        name,
        imports,
        exports,
    })
}
