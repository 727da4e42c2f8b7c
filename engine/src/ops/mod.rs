//! What commands do, independent of how they are invoked: `cli/` parses
//! flags and calls these.
pub mod query;
