//! `kiln-fuzz <target|all> [--seconds N] [--runs N] [--seed S] [--json]`:
//! fuzz kiln's parsers and decoders, one line per target:
//! `target executions crashes` (or a JSON object per line with
//! `--json`). Exits 1 when any target crashed.
//!
//! Each target runs in a child process (this binary with `--worker`)
//! that writes every input to a record file before running it. Panics
//! and hangs are caught inside the child (`run.rs`); when the child
//! dies instead (a stack overflow, an allocation failure, a hang the
//! watchdog ended), this process saves the recorded input as a crash and
//! starts another child, with another seed, for the rest of the budget.
//! `--in-process` runs the target in this process (quicker to debug; a
//! crash that ends the process ends the run).

// The command line is where the fuzzer talks to its user.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use kiln_fuzz::run::{self, Kind, Options};
use kiln_fuzz::targets::{self, Target};

/// Exit code of a worker whose watchdog found a hang.
const HANG_EXIT: i32 = 86;

/// How many times a target's workers may die before it stops early.
const MAX_DEATHS: usize = 16;

#[derive(Parser, Debug)]
#[command(
    name = "kiln-fuzz",
    about = "Fuzz kiln's parsers and decoders (a mutation fuzzer on stable Rust)"
)]
struct Cli {
    /// A target name, or `all`.
    #[arg(required_unless_present = "list")]
    target: Option<String>,
    /// Run each target this long (default 60 when `--runs` is not given).
    #[arg(long)]
    seconds: Option<f64>,
    /// Run each target for at most this many executions.
    #[arg(long)]
    runs: Option<u64>,
    /// Seed of the mutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print a JSON object per target instead of `target executions crashes`.
    #[arg(long)]
    json: bool,
    /// Where crashing inputs are saved (default: fuzz/crashes).
    #[arg(long)]
    crash_dir: Option<PathBuf>,
    /// Run targets in this process instead of a child process.
    #[arg(long)]
    in_process: bool,
    /// List the targets, their number of seeds and what they exercise.
    #[arg(long)]
    list: bool,
    /// Run these input files through the target once each, in this
    /// process (a crash that ends the process shows as it happens).
    #[arg(long, num_args = 1..)]
    replay: Vec<PathBuf>,
    /// Internal: run as a supervised child, recording inputs here.
    #[arg(long, hide = true)]
    worker: Option<PathBuf>,
    /// Internal: names of seed inputs a previous child died on.
    #[arg(long, hide = true)]
    skip: Vec<String>,
}

/// One crash as reported to the user.
struct Found {
    kind: &'static str,
    message: String,
    file: Option<PathBuf>,
}

/// What fuzzing one target did.
struct Summary {
    target: &'static str,
    executions: u64,
    crashes: u64,
    found: Vec<Found>,
    elapsed: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list {
        for t in targets::all() {
            println!("{:<14} {:>5} seeds  {}", t.name, (t.seeds)().len(), t.about);
        }
        return ExitCode::SUCCESS;
    }
    let name = cli.target.clone().unwrap_or_default();
    let chosen: Vec<&'static Target> = if name == "all" {
        targets::all().iter().collect()
    } else if let Some(t) = targets::find(&name) {
        vec![t]
    } else {
        let names: Vec<&str> = targets::all().iter().map(|t| t.name).collect();
        eprintln!(
            "kiln-fuzz: no target `{name}`; the targets are {} (or `all`)",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let crash_dir = cli
        .crash_dir
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("crashes"));
    let time = match (cli.seconds, cli.runs) {
        (Some(s), _) => Some(Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(60)),
    };
    if !cli.replay.is_empty() {
        if chosen.len() != 1 {
            eprintln!("kiln-fuzz: `--replay` needs one target, not `all`");
            return ExitCode::from(2);
        }
        return replay(chosen[0], &cli.replay);
    }
    if let Some(record) = &cli.worker {
        return worker(chosen[0], &cli, time, &crash_dir, record);
    }
    let mut crashed = false;
    for t in chosen {
        let s = if cli.in_process {
            in_process(t, &cli, time, &crash_dir)
        } else {
            supervise(t, &cli, time, &crash_dir)
        };
        crashed |= s.crashes > 0;
        for f in &s.found {
            let saved = f
                .file
                .as_ref()
                .map(|p| format!("; input saved as {}", p.display()))
                .unwrap_or_default();
            eprintln!("kiln-fuzz: {}: {}: {}{saved}", s.target, f.kind, f.message);
        }
        if cli.json {
            println!("{}", json(&s));
        } else {
            println!("{} {} {}", s.target, s.executions, s.crashes);
        }
        let _ = std::io::stdout().flush();
    }
    if crashed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--replay`: each file once; exits 1 if any crashed.
fn replay(t: &'static Target, files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    let mut inputs = Vec::new();
    let mut names = Vec::new();
    for f in files {
        match std::fs::read(f) {
            Ok(b) => {
                inputs.push(b);
                names.push(f);
            }
            Err(e) => {
                eprintln!("kiln-fuzz: cannot read `{}`: {e}", f.display());
                failed = true;
            }
        }
    }
    for (f, r) in names.iter().zip(run::replay(t, &inputs)) {
        match r {
            Ok(()) => println!("{}: ok", f.display()),
            Err(c) => {
                println!("{}: {}: {}", f.display(), kind_name(c.kind), c.message);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn options(cli: &Cli, time: Option<Duration>, crash_dir: &Path) -> Options {
    Options {
        time,
        runs: cli.runs,
        seed: cli.seed,
        crash_dir: Some(crash_dir.to_path_buf()),
        skip_seeds: cli.skip.clone(),
        ..Options::default()
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Panic => "panic",
        Kind::Hang => "hang",
    }
}

/// `--in-process`: fuzz here.
fn in_process(t: &'static Target, cli: &Cli, time: Option<Duration>, dir: &Path) -> Summary {
    let r = run::fuzz(t, &options(cli, time, dir));
    Summary {
        target: t.name,
        executions: r.executions,
        crashes: r.crashes,
        found: r
            .found
            .into_iter()
            .map(|c| Found {
                kind: kind_name(c.kind),
                message: c.message,
                file: c.file,
            })
            .collect(),
        elapsed: r.elapsed,
    }
}

/// `--worker`: fuzz here, recording inputs, reporting on stdout:
/// `progress E C` about once a second, `found KIND FILE MESSAGE` per
/// distinct crash (file and message quoted), `done E C` at the end.
fn worker(
    t: &'static Target,
    cli: &Cli,
    time: Option<Duration>,
    dir: &Path,
    record: &Path,
) -> ExitCode {
    let o = Options {
        record: Some(record.to_path_buf()),
        on_hang: Some(|_| {
            println!("hang");
            let _ = std::io::stdout().flush();
            std::process::exit(HANG_EXIT);
        }),
        progress: Some(|e, c| {
            println!("progress {e} {c}");
            let _ = std::io::stdout().flush();
        }),
        ..options(cli, time, dir)
    };
    let r = run::fuzz(t, &o);
    for c in &r.found {
        let file = c
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!("found {} {file:?} {:?}", kind_name(c.kind), c.message);
    }
    println!("done {} {}", r.executions, r.crashes);
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}

/// Fuzz `t` in child processes until the budget is spent.
fn supervise(t: &'static Target, cli: &Cli, time: Option<Duration>, dir: &Path) -> Summary {
    let start = Instant::now();
    let mut s = Summary {
        target: t.name,
        executions: 0,
        crashes: 0,
        found: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut seed = cli.seed;
    let mut skip = cli.skip.clone();
    let _ = std::fs::create_dir_all(dir);
    let record = dir.join(format!(".record-{}-{}", t.name, std::process::id()));
    let mut deaths = 0;
    loop {
        let left_time = time.map(|t| t.saturating_sub(start.elapsed()));
        let left_runs = cli.runs.map(|n| n.saturating_sub(s.executions));
        if left_time.is_some_and(|t| t.is_zero()) || left_runs == Some(0) {
            break;
        }
        let _ = std::fs::remove_file(&record);
        let child = match spawn_worker(t, left_time, left_runs, seed, dir, &record, &skip) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kiln-fuzz: cannot start a worker for `{}`: {e}", t.name);
                s.crashes += 1;
                break;
            }
        };
        let pid = child.id();
        let end = follow(child);
        if !end.done {
            targets::remove_temp_dirs(pid);
        }
        s.found.extend(end.found);
        if end.done {
            s.executions += end.executions;
            s.crashes += end.crashes;
            break;
        }
        // The worker died on the input it recorded, with its counts.
        deaths += 1;
        let file = match run::read_record(&record) {
            Some((executions, crashes, input)) => {
                s.executions += executions;
                s.crashes += crashes;
                skip.push(run::input_name(&input));
                run::save(dir, t.name, &input).ok()
            }
            // It died before running anything (while making its seeds).
            None => {
                s.executions += end.executions;
                s.crashes += end.crashes + 1;
                None
            }
        };
        let kind = if end.hang { "hang" } else { "process died" };
        if !s
            .found
            .iter()
            .any(|f| f.message == end.death && f.file == file)
        {
            s.found.push(Found {
                kind,
                message: end.death,
                file,
            });
        }
        if deaths >= MAX_DEATHS {
            eprintln!(
                "kiln-fuzz: {}: workers died {deaths} times; stopping this target early",
                t.name
            );
            break;
        }
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    }
    let _ = std::fs::remove_file(&record);
    s.elapsed = start.elapsed();
    s
}

// The fuzzer runs itself in a child process: not an action, so not
// through the sandbox (clippy.toml's seam is for actions).
#[allow(clippy::disallowed_methods)]
fn spawn_worker(
    t: &Target,
    time: Option<Duration>,
    runs: Option<u64>,
    seed: u64,
    dir: &Path,
    record: &Path,
    skip: &[String],
) -> std::io::Result<std::process::Child> {
    let mut c = std::process::Command::new(std::env::current_exe()?);
    c.arg(t.name)
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--crash-dir")
        .arg(dir)
        .arg("--worker")
        .arg(record);
    if let Some(time) = time {
        c.arg("--seconds").arg(time.as_secs_f64().to_string());
    }
    if let Some(runs) = runs {
        c.arg("--runs").arg(runs.to_string());
    }
    for s in skip {
        c.arg("--skip").arg(s);
    }
    c.env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

/// How a worker ended.
struct End {
    /// It printed `done`: the budget was spent.
    done: bool,
    /// Its watchdog reported a hang.
    hang: bool,
    executions: u64,
    crashes: u64,
    found: Vec<Found>,
    /// How it died (exit status, last line of its stderr).
    death: String,
}

/// Read a worker's reports until it exits.
fn follow(mut child: std::process::Child) -> End {
    // Keep the tail of stderr (a panic in the harness, "has overflowed
    // its stack", "memory allocation failed"); Starlark's `print` also
    // goes there.
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut tail: Vec<u8> = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = e.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 16 * 1024 {
                    tail.drain(..tail.len() - 8 * 1024);
                }
            }
            String::from_utf8_lossy(&tail).into_owned()
        })
    });
    let mut end = End {
        done: false,
        hang: false,
        executions: 0,
        crashes: 0,
        found: Vec::new(),
        death: String::new(),
    };
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut words = line.splitn(2, ' ');
            match (words.next(), words.next()) {
                (Some("progress" | "done"), Some(rest)) => {
                    let mut n = rest.split(' ').map(|x| x.parse::<u64>().unwrap_or(0));
                    end.executions = n.next().unwrap_or(0);
                    end.crashes = n.next().unwrap_or(0);
                    end.done |= line.starts_with("done");
                }
                (Some("found"), Some(rest)) => end.found.push(parse_found(rest)),
                (Some("hang"), _) => end.hang = true,
                _ => {}
            }
        }
    }
    let status = child.wait();
    let tail = death_line(&stderr.and_then(|h| h.join().ok()).unwrap_or_default());
    end.death = match (&status, end.hang) {
        (_, true) => format!("an execution ran longer than {:?}", run::HANG),
        (Ok(st), false) if tail.is_empty() => format!("the worker exited ({st})"),
        (Ok(st), false) => format!("the worker exited ({st}): {tail}"),
        (Err(e), false) => format!("the worker could not be waited for: {e}"),
    };
    if !end.done || !matches!(status, Ok(st) if st.success()) {
        end.done = false;
    }
    end
}

/// The line of a dead worker's stderr that says why it died: the
/// runtime's own message if there is one, else the last line.
fn death_line(stderr: &str) -> String {
    const WHY: &[&str] = &[
        "memory allocation of",
        "has overflowed its stack",
        "fatal runtime error",
        "panicked at",
    ];
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = WHY
        .iter()
        .find_map(|w| lines.iter().find(|l| l.contains(w)))
        .or(lines.last())
        .map_or("", |l| l.trim());
    // Thread ids (`thread 'main' (1234)`) differ from run to run.
    let mut out = String::new();
    let mut rest = line;
    while let Some(open) = rest.find(" (") {
        let after = &rest[open + 2..];
        match after.find(')') {
            Some(close) if close > 0 && after[..close].bytes().all(|b| b.is_ascii_digit()) => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..open + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parse `KIND "FILE" "MESSAGE"` of a `found` line.
fn parse_found(rest: &str) -> Found {
    let (kind, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let (file, message) = split_quoted(rest);
    let (message, _) = split_quoted(message.trim_start());
    Found {
        kind: if kind == "hang" { "hang" } else { "panic" },
        message,
        file: (!file.is_empty()).then(|| PathBuf::from(file)),
    }
}

/// The first Rust-`Debug`-quoted string of `s` (unescaped), and the rest.
fn split_quoted(s: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    if !matches!(chars.next(), Some((_, '"'))) {
        return (String::new(), s);
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '0')) => out.push('\0'),
                Some((_, 'u')) => {
                    // \u{XXXX}
                    let hex: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .skip(1)
                        .take_while(|c| *c != '}')
                        .collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        out.push(c);
                    }
                }
                Some((_, c)) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    (out, "")
}

/// A summary as one line of JSON.
fn json(s: &Summary) -> String {
    let found: Vec<String> = s
        .found
        .iter()
        .map(|f| {
            format!(
                "{{\"kind\":{},\"message\":{},\"file\":{}}}",
                json_str(f.kind),
                json_str(&f.message),
                f.file
                    .as_ref()
                    .map_or("null".to_owned(), |p| json_str(&p.display().to_string()))
            )
        })
        .collect();
    format!(
        "{{\"target\":{},\"executions\":{},\"crashes\":{},\"seconds\":{:.3},\"found\":[{}]}}",
        json_str(s.target),
        s.executions,
        s.crashes,
        s.elapsed.as_secs_f64(),
        found.join(",")
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
