//! What the in-process wasm action kinds share: resolving a set of WIT
//! files, and writing an output. (The tool versions in their keys are
//! `action/tool_versions.rs`, derived from Cargo.lock.)

use std::path::Path;

use wit_bindgen_core::wit_parser::{PackageId, Resolve, WorldId};

/// Parse WIT files (one package per file; in any order: a file whose
/// dependencies are not known yet is retried after the others). Returns the
/// resolve and the packages in the order they were added.
pub fn resolve_all(root: &Path, files: &[&str]) -> Result<(Resolve, Vec<PackageId>), String> {
    let mut resolve = Resolve::default();
    let mut pending: Vec<(&str, String)> = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(root.join(f)).map_err(|e| format!("cannot read `{f}`: {e}"))?;
        pending.push((f, text));
    }
    let mut pkgs: Vec<PackageId> = Vec::new();
    while !pending.is_empty() {
        let mut progress = false;
        let mut last_err = String::new();
        let mut still = Vec::new();
        for (f, text) in pending {
            let mut attempt = resolve.clone();
            match attempt.push_str(f, &text) {
                Ok(id) => {
                    resolve = attempt;
                    pkgs.push(id);
                    progress = true;
                }
                Err(e) => {
                    last_err = format!("{e:#}");
                    still.push((f, text));
                }
            }
        }
        if !progress {
            return Err(format!("invalid WIT: {last_err}"));
        }
        pending = still;
    }
    Ok((resolve, pkgs))
}

/// `resolve_all`, then select `world` (`name`, or `ns:pkg/name`).
pub fn resolve_world(
    root: &Path,
    files: &[&str],
    world: &str,
) -> Result<(Resolve, WorldId), String> {
    let (resolve, pkgs) = resolve_all(root, files)?;
    let id = resolve
        .select_world(&pkgs, Some(world))
        .map_err(|e| format!("no world `{world}` in the WIT files: {e:#}"))?;
    Ok((resolve, id))
}

/// Write an in-process action's only output into the sandbox at `root`.
pub fn write_output(
    root: &Path,
    outputs: &[crate::artifact::Artifact],
    bytes: &[u8],
) -> Result<(), String> {
    let out = outputs.first().ok_or("the action declares no output")?;
    std::fs::write(root.join(out.path()), bytes)
        .map_err(|e| format!("cannot write `{}`: {e}", out.path()))
}
