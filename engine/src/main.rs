//! The `kiln` binary: everything is in the library's `cli` module.

fn main() {
    std::process::exit(kiln_engine::cli::main());
}
