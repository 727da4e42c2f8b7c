//! What commands do, independent of how they are invoked: `cli/` parses
//! flags and calls these.
pub mod build;
pub mod clean;
pub mod explain;
pub mod fmt;
pub mod junit;
pub mod lsp;
pub mod migrate;
pub mod query;
pub mod run;
pub mod test;
pub mod watch;
