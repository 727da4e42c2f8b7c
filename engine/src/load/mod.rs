//! Loading.
pub mod attr;
pub mod build_file;
pub mod loader;
pub mod provider;
pub mod rule;
