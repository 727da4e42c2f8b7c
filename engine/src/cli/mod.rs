//! The command line: clap definitions, one file per command, and the
//! mapping of errors to DESIGN.md's exit codes. Commands are thin wrappers
//! over `ops/`. This module prints results and errors; the only other
//! output is the build's progress display (`exec/`), on stderr.

// The CLI is where kiln talks to the user.
#![allow(clippy::print_stderr)]

mod build;
mod clean;
mod explain;
mod fmt;
mod lsp;
mod migrate;
mod query;
mod run;
mod test;

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::ErrorClass;

/// Exit codes (Bazel's).
pub mod exit {
    /// Success.
    pub const OK: i32 = 0;
    /// A build action failed.
    pub const BUILD_FAILED: i32 = 1;
    /// Bad command line, BUILD/.star file, unknown target or cycle.
    pub const USER_ERROR: i32 = 2;
    /// Tests failed.
    pub const TESTS_FAILED: i32 = 3;
    /// No test targets matched.
    pub const NO_TESTS: i32 = 4;
    /// Interrupted.
    pub const INTERRUPTED: i32 = 8;
    /// A local environmental problem: disk full, cache unwritable or corrupt.
    pub const LOCAL_ENVIRONMENT: i32 = 36;
    /// A bug in kiln.
    pub const INTERNAL: i32 = 37;
    /// `kiln run`: the guest trapped (128 + SIGABRT, as a crashed process
    /// and wasmtime's own CLI report it).
    pub const GUEST_TRAPPED: i32 = 134;
}

#[derive(Parser, Debug)]
#[command(
    name = "kiln",
    version,
    about = "A Bazel-style build system for WebAssembly components"
)]
struct Cli {
    /// Run as if started in this directory.
    #[arg(short = 'C', long = "directory", global = true, value_name = "DIR")]
    directory: Option<PathBuf>,
    /// Parallelism: BUILD files evaluated, targets analyzed and actions run
    /// at once (default: the number of cores).
    #[arg(short = 'j', long = "jobs", global = true, value_name = "N")]
    jobs: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build targets (default: //...).
    Build(build::BuildArgs),
    /// For each action a target needs, why it ran in the last build or that
    /// it was cached.
    Explain(explain::ExplainArgs),
    /// Remove outputs (kiln-out/), and with --cache the local cache.
    Clean(clean::CleanArgs),
    /// Inspect or shrink the local cache.
    Cache(clean::CacheArgs),
    /// Query the target graph: deps(), rdeps(), kind(), filter(), set
    /// operators, and actions(...) for the declared actions.
    Query(query::QueryArgs),
    /// Build and run test targets (rules returning `TestInfo`); passing
    /// results are cached.
    Test(test::TestArgs),
    /// Build a runnable target (one returning `RunInfo`: a pylon), then run
    /// it under wasmtime with the caller's environment: `kiln run //:pylon -- -c 'print(1)'`.
    Run(run::RunArgs),
    /// Turn a pyforge checkout (`cpython-ext/<cap>/pyforge-pkg.toml`,
    /// `profiles/*.toml`) into BUILD files and named configurations,
    /// printing what could not be mapped.
    Migrate(migrate::MigrateArgs),
    /// A language server for BUILD.star and .star files, on stdin/stdout
    /// (diagnostics, go to definition of labels, hover and completion of
    /// rules and attributes).
    Lsp(lsp::LspArgs),
    /// Format BUILD.star files one way (as buildifier does): --check lists
    /// the files that are not, and exits 1.
    Fmt(fmt::FmtArgs),
    /// Check BUILD.star files: Starlark's lints, unused load() symbols,
    /// duplicate list entries, unsorted lists; --check exits 1 on any.
    Lint(fmt::LintArgs),
}

/// An error on its way to the user: message and exit code.
pub struct Failure {
    /// What to print after `ERROR: `.
    pub message: String,
    /// Who must act.
    pub class: ErrorClass,
}

impl Failure {
    /// A failure of `class`.
    pub fn new(class: ErrorClass, message: impl ToString) -> Self {
        Failure {
            message: message.to_string(),
            class,
        }
    }
}

fn exit_code(class: ErrorClass) -> i32 {
    match class {
        ErrorClass::User | ErrorClass::Environment => exit::USER_ERROR,
        ErrorClass::Local => exit::LOCAL_ENVIRONMENT,
        ErrorClass::Internal => exit::INTERNAL,
    }
}

/// Write to stdout, ignoring a closed pipe (`kiln query ... | head`).
pub fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// Parse arguments, run the command, return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USER_ERROR
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    // A panic inside Starlark evaluation becomes a located error
    // (`load::guard`); others are kiln's bugs and are printed as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crate::load::guard::quiet_panics() {
            default_hook(info);
        }
    }));
    if cli.jobs == Some(0) {
        eprintln!("ERROR: `--jobs` must be at least 1");
        return exit::USER_ERROR;
    }
    // Starlark recursion (loading runs on this pool) needs more than the
    // default 2 MiB of stack. Fails only if a pool exists already, which
    // cannot happen this early.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(cli.jobs.unwrap_or(0))
        .stack_size(64 << 20)
        .build_global();
    // `None`: the default, which depends on whether actions run remotely.
    let jobs = cli.jobs;
    let cwd = match cli
        .directory
        .clone()
        .map(Ok)
        .unwrap_or_else(std::env::current_dir)
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ERROR: cannot read the current directory: {e}");
            return exit::USER_ERROR;
        }
    };
    let result = match cli.command {
        Command::Query(args) => query::run(&cwd, args),
        Command::Build(args) => build::run(&cwd, jobs, args),
        Command::Explain(args) => explain::run(&cwd, args),
        Command::Clean(args) => clean::run_clean(&cwd, args),
        Command::Cache(args) => clean::run_cache(args),
        Command::Run(args) => run::run_cmd(&cwd, jobs, args),
        Command::Test(args) => test::run(&cwd, jobs, args),
        Command::Migrate(args) => migrate::run(&cwd, args),
        Command::Lsp(args) => lsp::run(&cwd, args),
        Command::Fmt(args) => fmt::run_fmt(&cwd, args),
        Command::Lint(args) => fmt::run_lint(&cwd, args),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("ERROR: {}", f.message);
            exit_code(f.class)
        }
    }
}
