//! The `kiln` binary: everything is in the library's `cli` module.

/// Stack for the thread running kiln: Starlark's parser and evaluator
/// recurse once per nested expression (bounded by `load::limits`).
const STACK: usize = 256 << 20;

fn main() {
    let code = std::thread::Builder::new()
        .name("kiln".into())
        .stack_size(STACK)
        .spawn(kiln_engine::cli::main)
        .map(|t| t.join().unwrap_or(kiln_engine::cli::exit::INTERNAL));
    std::process::exit(code.unwrap_or_else(|_| kiln_engine::cli::main()));
}
