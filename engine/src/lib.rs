//! kiln's engine.
pub mod artifact;
pub mod error;
pub mod label;
pub mod load;
