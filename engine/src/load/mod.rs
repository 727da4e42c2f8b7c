//! Loading: evaluating `.star` and `BUILD.star` files into target
//! declarations.
//!
//! One file per native family, next to its Rust type: `attr.rs` (`attr.*`),
//! `rule.rs` (`rule()`, declaring targets), `select.rs` (`select()`),
//! `provider.rs` (`provider()`,
//! `DefaultInfo`), `build_file.rs` (`package()`, per-file state);
//! `loader.rs` evaluates files. Nothing here depends on `analysis/`: `ctx`
//! and `ctx.actions` carry their own methods.

pub mod attr;
pub mod build_file;
pub mod guard;
pub mod limits;
pub mod loader;
pub mod provider;
pub mod rule;
pub mod select;

/// A string as a Starlark literal (also a Python literal with the same
/// value: generated Python uses it too).
pub fn string_literal(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
