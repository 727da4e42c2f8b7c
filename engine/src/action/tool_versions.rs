//! The versions of the in-process tools, as locked in `Cargo.lock` (derived
//! by `engine/build.rs` at build time, never retyped). Action kinds that
//! run a tool in-process put its group in their key material, so a crate
//! bump re-runs exactly the actions it can affect.

include!(concat!(env!("OUT_DIR"), "/tool_versions.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `name version` of a group, read back from the lock file itself.
    fn locked(name: &str, version: &str) -> bool {
        let lock =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
        lock.contains(&format!("name = \"{name}\"\nversion = \"{version}\"\n"))
    }

    #[test]
    fn key_versions_agree_with_the_lock() {
        for group in [COMPONENT_TOOLS, WASMTIME] {
            for entry in group.split("; ") {
                let (name, version) = entry.split_once(' ').unwrap();
                assert!(locked(name, version), "`{entry}` is not in Cargo.lock");
            }
        }
        for name in [
            "wit-component",
            "wasmparser",
            "wac-graph",
            "wit-bindgen-c",
            "wit-parser",
        ] {
            assert!(COMPONENT_TOOLS.contains(&format!("{name} ")), "{name}");
        }
        assert!(WASMTIME.starts_with("wasmtime "));
    }

    #[test]
    fn the_kinds_that_run_tools_key_on_their_versions() {
        use crate::action::{Componentize, PylonTest};
        let c = Componentize {
            world: "w".into(),
            command: false,
        };
        assert!(c.key_material().contains(&COMPONENT_TOOLS));
        let t = PylonTest {
            component: String::new(),
            dynlink_plan: String::new(),
            lib: String::new(),
            script: String::new(),
            args: Vec::new(),
            tree: String::new(),
            tree_dir: String::new(),
            run: 0,
            timeout: 0,
        };
        assert!(t.key_material().contains(&WASMTIME));
    }
}
