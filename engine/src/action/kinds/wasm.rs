//! What the in-process wasm action kinds share: resolving a set of WIT
//! files, and writing an output. (The tool versions in their keys are
//! `action/tool_versions.rs`, derived from Cargo.lock.)

use std::path::Path;

use wit_bindgen_core::wit_parser::{PackageId, Resolve, SourceMap, WorldId};

/// Parse WIT files into one resolve. The files of one package (several
/// files may declare the same `package`) are parsed together; packages may
/// come in any order: one whose dependencies are not known yet is retried
/// after the others. Returns the resolve and the packages in the order they
/// were added.
pub fn resolve_all(root: &Path, files: &[&str]) -> Result<(Resolve, Vec<PackageId>), String> {
    // Group the files by the package each declares (in first-seen order);
    // a file without a `package ...;` header is a group of its own.
    let mut groups: Vec<(String, Vec<(&str, String)>)> = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(root.join(f)).map_err(|e| format!("cannot read `{f}`: {e}"))?;
        let name = declared_package(&text).unwrap_or_else(|| format!("file {f}"));
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, members)) => members.push((f, text)),
            None => groups.push((name, vec![(f, text)])),
        }
    }
    let mut resolve = Resolve::default();
    let mut pkgs: Vec<PackageId> = Vec::new();
    let mut pending = groups;
    while !pending.is_empty() {
        let mut progress = false;
        let mut last_err = String::new();
        let mut still = Vec::new();
        for (name, members) in pending {
            let mut map = SourceMap::new();
            for (f, text) in &members {
                map.push_str(f, text.clone());
            }
            let mut attempt = resolve.clone();
            let pushed = match map.parse() {
                Ok(group) => attempt.push_group(group).map_err(|e| format!("{e:#}")),
                Err((_, e)) => Err(e.to_string()),
            };
            match pushed {
                Ok(id) => {
                    resolve = attempt;
                    pkgs.push(id);
                    progress = true;
                }
                Err(e) => {
                    last_err = e;
                    still.push((name, members));
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

/// The name in a WIT file's `package ns:name@version;` header, found
/// without parsing the rest (which may refer to its package's other
/// files), or None when it has none.
fn declared_package(text: &str) -> Option<String> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    let after = rest.strip_prefix("package")?;
    if !after.starts_with(char::is_whitespace) {
        return None;
    }
    let (name, _) = after.split_once(';')?;
    let name = name.trim();
    (!name.is_empty() && !name.contains(['{', '}']) && !name.contains(char::is_whitespace))
        .then(|| name.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_one_package_resolve_together_in_any_order() {
        let dir = std::env::temp_dir().join(format!("kiln-wit-group-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
        write(
            "use.wit",
            "package b:app;\nworld w { import a:lib/one; import a:lib/two; }\n",
        );
        write(
            "one.wit",
            "package a:lib;\ninterface one { f: func() -> u32; }\n",
        );
        write(
            "two.wit",
            "package a:lib;\ninterface two { use one.{}; g: func(); }\n",
        );
        let (resolve, pkgs) = resolve_all(&dir, &["use.wit", "one.wit", "two.wit"]).unwrap();
        assert_eq!(pkgs.len(), 2);
        let lib = &resolve.packages[pkgs[0]];
        assert_eq!(lib.name.to_string(), "a:lib");
        assert_eq!(lib.interfaces.len(), 2);
        resolve_world(&dir, &["two.wit", "use.wit", "one.wit"], "b:app/w").unwrap();
        assert_eq!(
            declared_package("// c\n/* d */ /// doc\npackage a:b@1.0.0;\n"),
            Some("a:b@1.0.0".to_owned())
        );
        assert_eq!(declared_package("interface x {}"), None);
        // A syntax error is still reported as one.
        write("bad.wit", "package a:lib;\ninterface three { func }\n");
        let err = resolve_all(&dir, &["one.wit", "bad.wit"]).unwrap_err();
        assert!(err.starts_with("invalid WIT: "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
