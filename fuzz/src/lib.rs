//! kiln-fuzz: a small mutation fuzzer for kiln's parsers and decoders
//! that runs on stable Rust.
//!
//! `cargo fuzz` needs a nightly compiler for its coverage
//! instrumentation; kiln builds on stable only. This crate trades
//! coverage guidance for a harness that runs anywhere `cargo test` does:
//! seeds taken from real inputs (the repository's labels, queries,
//! `kiln.toml` and `BUILD.star` files, records encoded by kiln itself),
//! mutations that know each input's grammar (a dictionary of its tokens,
//! boundary values for length prefixes, huge repeat counts), and checks
//! stronger than "does not panic" where a round trip exists.
//!
//! # Pieces
//! - `rng.rs`: the seeded generator (SplitMix64); a run is reproduced by
//!   its seed.
//! - `mutate.rs`: how an input becomes the next one.
//! - `run.rs`: the loop, panic capture under `catch_unwind`, hangs (an
//!   execution over two seconds), shrinking and saving crashing inputs.
//! - `targets/`: one entry per target: its function, dictionary and
//!   seeds.
//! - `main.rs`: the `kiln-fuzz` command; it runs each target in a child
//!   process so that crashes which end a process (stack overflow,
//!   allocation failure, a hang) are caught too.
//!
//! # Files
//! - `fuzz/crashes/<target>/<hash>` (ignored by git): crashing inputs a
//!   run found.
//! - `fuzz/regressions/<target>/<name>` (committed): inputs that crashed
//!   kiln once, replayed by `fuzz/tests/regressions.rs` under `cargo
//!   test`; a found crash is fixed in the engine and its input moved
//!   here.
//!
//! `tests/fuzz/run.sh` builds the fuzzer in release mode and runs every
//! target for a bounded time.

pub mod mutate;
pub mod rng;
pub mod run;
pub mod targets;
