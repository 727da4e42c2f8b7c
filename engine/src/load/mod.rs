//! Loading.
pub mod attr;
pub mod build_file;
pub mod provider;
pub mod rule;
