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
pub mod loader;
pub mod provider;
pub mod rule;
pub mod select;
