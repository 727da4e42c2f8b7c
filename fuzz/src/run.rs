//! Running a target: the fuzzing loop, catching panics, noticing hangs,
//! saving crashing inputs and shrinking them.
//!
//! The loop: run every seed once, then repeatedly pick a corpus input,
//! mutate it (`mutate.rs`) and run it. An input the target accepts
//! (parsed, decoded) joins the corpus now and then, the only feedback a
//! fuzzer without coverage has: it keeps mutants close to valid. Each
//! execution runs under `catch_unwind` with the panic message captured
//! instead of printed; a panic is a crash, and so is an execution that
//! takes longer than [`Options::hang`]. The first input of each distinct
//! crash (panic location, or hang) is shrunk and saved as
//! `<crash dir>/<target>/<hash>`.
//!
//! Crashes that end the process (a stack overflow, an allocation failure)
//! cannot be caught here: the binary runs each target in a child process
//! that records every input before running it ([`Options::record`]), and
//! the parent saves the recorded input when the child dies (`main.rs`).

use std::cell::{Cell, RefCell};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::mutate::mutate;
use crate::rng::Rng;
use crate::targets::{Run, Target};

/// How long one execution may take before it counts as a hang.
pub const HANG: Duration = Duration::from_secs(2);

/// The stack targets run on. kiln parses and loads on threads with at
/// least this much (the `kiln` thread has 256 MiB, rayon's workers 64
/// MiB: `engine/src/main.rs`, `engine/src/cli/mod.rs`), so recursion
/// that fits in it is not a crash, and recursion that does not is one.
pub const STACK: usize = 64 << 20;

/// Run `f` on a thread with [`STACK`] bytes of stack.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .name("kiln-fuzz".into())
            .stack_size(STACK)
            .spawn_scoped(s, f);
        match thread.map(|t| t.join()) {
            Ok(Ok(r)) => r,
            Ok(Err(p)) => panic::resume_unwind(p),
            Err(e) => panic!("cannot start a thread with {STACK} bytes of stack: {e}"),
        }
    })
}

/// The most inputs kept in the corpus besides the seeds.
const CORPUS_EXTRA: usize = 1024;

/// How a run is bounded and what it does with crashes.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop after this long (`None`: no time limit).
    pub time: Option<Duration>,
    /// Stop after this many executions (`None`: no limit). With neither
    /// limit the run never ends.
    pub runs: Option<u64>,
    /// The seed of the mutations: the same seed, target and seeds run
    /// the same inputs.
    pub seed: u64,
    /// Where crashing inputs are saved (`<dir>/<target>/<hash>`); `None`:
    /// kept in the report only.
    pub crash_dir: Option<PathBuf>,
    /// A file each input is written to before it runs, with the counts
    /// so far ([`read_record`]), so that a process that dies leaves its
    /// last input behind. `None`: nothing is written.
    pub record: Option<PathBuf>,
    /// An execution running longer than this is a hang.
    pub hang: Duration,
    /// Called from a watchdog thread, with the target's name, when an
    /// execution has run longer than `hang`; the execution cannot be
    /// stopped, so it should end the process. `None`: a hang is noticed
    /// when its execution returns.
    pub on_hang: Option<fn(&str)>,
    /// Called about once a second with the executions and crashes so far.
    pub progress: Option<fn(u64, u64)>,
    /// Seeds left out, by [`input_name`]: inputs a previous process died
    /// on, which would end this one the same way.
    pub skip_seeds: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time: None,
            runs: Some(10_000),
            seed: 0,
            crash_dir: None,
            record: None,
            hang: HANG,
            on_hang: None,
            progress: None,
            skip_seeds: Vec::new(),
        }
    }
}

/// What kind of crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The target panicked.
    Panic,
    /// The target ran longer than [`Options::hang`].
    Hang,
}

/// One distinct crash found by a run.
#[derive(Clone, Debug)]
pub struct Crash {
    /// Panic or hang.
    pub kind: Kind,
    /// The panic's message and location, or how long the execution took.
    pub message: String,
    /// The (shrunk) input.
    pub input: Vec<u8>,
    /// Where it was saved, if it was.
    pub file: Option<PathBuf>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs run (shrinking not counted).
    pub executions: u64,
    /// Executions that panicked or hung.
    pub crashes: u64,
    /// The distinct crashes, in the order found.
    pub found: Vec<Crash>,
    /// How long the run took, seeds and setup included.
    pub elapsed: Duration,
}

thread_local! {
    /// Whether this thread is running a target (its panics are captured).
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// The last captured panic: (message, location).
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Install, once, a panic hook that captures panics of threads running a
/// target and passes every other panic to the previous hook (a failing
/// test still reports its assertion).
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CATCHING.get() {
                return previous(info);
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a panic without a message)".to_owned());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            LAST_PANIC.set(Some((message, location)));
        }));
    });
}

/// A panic caught while running a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    /// Its message.
    pub message: String,
    /// Where it was raised (`file:line:column`).
    pub location: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "panicked at {}: {}", self.location, self.message)
    }
}

/// Run `run` on `input`, catching a panic: `Ok(accepted)` or the panic.
pub fn execute(run: &mut Run, input: &[u8]) -> Result<bool, Panic> {
    install_hook();
    CATCHING.set(true);
    let r = panic::catch_unwind(AssertUnwindSafe(|| run(input)));
    CATCHING.set(false);
    r.map_err(|_| {
        let (message, location) = LAST_PANIC
            .take()
            .unwrap_or_else(|| ("(no message captured)".to_owned(), String::new()));
        Panic { message, location }
    })
}

/// Run each of `inputs` once through one instance of `target` (on a
/// thread with [`STACK`]): what the regression tests replay.
pub fn replay(target: &Target, inputs: &[Vec<u8>]) -> Vec<Result<(), Crash>> {
    on_big_stack(|| {
        let mut run = (target.setup)();
        inputs.iter().map(|i| replay_one(&mut run, i)).collect()
    })
}

fn replay_one(run: &mut Run, input: &[u8]) -> Result<(), Crash> {
    let start = Instant::now();
    let r = execute(run, input);
    let took = start.elapsed();
    match r {
        Err(p) => Err(Crash {
            kind: Kind::Panic,
            message: p.to_string(),
            input: input.to_vec(),
            file: None,
        }),
        Ok(_) if took > HANG => Err(Crash {
            kind: Kind::Hang,
            message: format!("ran for {took:.1?}"),
            input: input.to_vec(),
            file: None,
        }),
        Ok(_) => Ok(()),
    }
}

/// The file name of a saved input: the first 16 hex digits of its BLAKE3.
pub fn input_name(input: &[u8]) -> String {
    blake3::hash(input).to_hex()[..16].to_owned()
}

/// Save `input` as `<dir>/<target>/<hash>` (kept if already there).
pub fn save(dir: &Path, target: &str, input: &[u8]) -> io::Result<PathBuf> {
    let d = dir.join(target);
    fs::create_dir_all(&d)?;
    let path = d.join(input_name(input));
    if !path.exists() {
        fs::write(&path, input)?;
    }
    Ok(path)
}

/// What a process that died left in its record file: its executions
/// and crashes so far (the input that killed it included), and that
/// input.
pub fn read_record(path: &Path) -> Option<(u64, u64, Vec<u8>)> {
    let b = fs::read(path).ok()?;
    let word = |at: usize| Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?));
    let n = u32::from_le_bytes(b.get(16..20)?.try_into().ok()?) as usize;
    Some((word(0)?, word(8)?, b.get(20..20 + n)?.to_vec()))
}

/// Writes each input to the record file before it runs.
struct Recorder(Option<fs::File>);

impl Recorder {
    /// Record `input`, the `executions`-th, with `crashes` so far counted
    /// as if it crashed.
    fn write(&self, executions: u64, crashes: u64, input: &[u8]) {
        if let Some(f) = &self.0 {
            // One write: the counts, the length, the bytes; a longer
            // earlier input's tail is ignored by `read_record`.
            let mut b = Vec::with_capacity(20 + input.len());
            b.extend(executions.to_le_bytes());
            b.extend(crashes.to_le_bytes());
            b.extend((input.len() as u32).to_le_bytes());
            b.extend_from_slice(input);
            let _ = f.write_all_at(&b, 0);
        }
    }
}

/// Ends the watchdog thread when dropped.
struct Watchdog {
    /// When the current execution started, in ms since `epoch` plus 1;
    /// 0 while none runs.
    started: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
}

impl Watchdog {
    fn start(target: &'static str, hang: Duration, on_hang: Option<fn(&str)>) -> Watchdog {
        let w = Watchdog {
            started: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            epoch: Instant::now(),
        };
        if let Some(on_hang) = on_hang {
            let (started, stop, epoch) = (w.started.clone(), w.stop.clone(), w.epoch);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    let s = started.load(Ordering::Relaxed);
                    let now = epoch.elapsed().as_millis() as u64 + 1;
                    if s != 0 && now.saturating_sub(s) > hang.as_millis() as u64 {
                        on_hang(target);
                    }
                }
            });
        }
        w
    }

    fn begin(&self) {
        self.started.store(
            self.epoch.elapsed().as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
    }

    fn end(&self) {
        self.started.store(0, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Fuzz `target` within the limits of `o`, on a thread with [`STACK`].
pub fn fuzz(target: &'static Target, o: &Options) -> Report {
    on_big_stack(|| fuzz_here(target, o))
}

fn fuzz_here(target: &'static Target, o: &Options) -> Report {
    let start = Instant::now();
    let mut rng = Rng::new(o.seed);
    let mut run = (target.setup)();
    let mut seeds: Vec<Vec<u8>> = (target.seeds)();
    for s in &mut seeds {
        s.truncate(target.max_len);
    }
    seeds.sort();
    seeds.dedup();
    if !o.skip_seeds.is_empty() {
        seeds.retain(|s| !o.skip_seeds.contains(&input_name(s)));
    }
    if seeds.is_empty() {
        seeds.push(Vec::new());
    }
    let n_seeds = seeds.len();
    let mut corpus = seeds;
    let recorder = Recorder(o.record.as_ref().and_then(|p| {
        fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(p)
            .ok()
    }));
    let watchdog = Watchdog::start(target.name, o.hang, o.on_hang);
    let mut report = Report {
        target: target.name,
        executions: 0,
        crashes: 0,
        found: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut last_progress = Instant::now();
    let mut next_seed = 0;
    loop {
        if o.runs.is_some_and(|n| report.executions >= n)
            || o.time.is_some_and(|t| start.elapsed() >= t)
        {
            break;
        }
        // Every seed once as it is, then mutants.
        let input = if next_seed < n_seeds {
            next_seed += 1;
            corpus[next_seed - 1].clone()
        } else {
            let mut b = rng.pick(&corpus).clone();
            let other = rng.below(corpus.len());
            mutate(
                &mut rng,
                &mut b,
                &corpus[other],
                target.dict,
                target.max_len,
            );
            b
        };
        recorder.write(report.executions + 1, report.crashes + 1, &input);
        watchdog.begin();
        let t0 = Instant::now();
        let r = execute(&mut run, &input);
        let took = t0.elapsed();
        watchdog.end();
        report.executions += 1;
        let crash = match r {
            Err(p) => Some((Kind::Panic, p.location.clone(), p.to_string())),
            Ok(_) if took > o.hang => {
                Some((Kind::Hang, "hang".to_owned(), format!("ran for {took:.1?}")))
            }
            Ok(accepted) => {
                if accepted && next_seed >= n_seeds && rng.one_in(4) {
                    if corpus.len() < n_seeds + CORPUS_EXTRA {
                        corpus.push(input.clone());
                    } else {
                        let i = n_seeds + rng.below(CORPUS_EXTRA);
                        corpus[i] = input.clone();
                    }
                }
                None
            }
        };
        if let Some((kind, signature, message)) = crash {
            report.crashes += 1;
            if !seen.contains(&signature) {
                seen.push(signature.clone());
                let input = match kind {
                    Kind::Panic => {
                        let counts = (report.executions, report.crashes);
                        shrink(&mut run, &recorder, counts, input, &signature)
                    }
                    Kind::Hang => input,
                };
                let file = o
                    .crash_dir
                    .as_ref()
                    .and_then(|d| save(d, target.name, &input).ok());
                report.found.push(Crash {
                    kind,
                    message,
                    input,
                    file,
                });
            }
        }
        if let Some(p) = o.progress
            && last_progress.elapsed() >= Duration::from_secs(1)
        {
            p(report.executions, report.crashes);
            last_progress = Instant::now();
        }
    }
    report.elapsed = start.elapsed();
    report
}

/// A smaller input that still panics at `location`: ranges are cut out,
/// halves first, for at most a second or 4,000 executions.
fn shrink(
    run: &mut Run,
    recorder: &Recorder,
    (executions, crashes): (u64, u64),
    input: Vec<u8>,
    location: &str,
) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut tries = 0;
    let mut best = input;
    let mut size = best.len() / 2;
    while size > 0 && tries < 4000 && Instant::now() < deadline {
        let mut at = 0;
        let mut cut_any = false;
        while at < best.len() && tries < 4000 && Instant::now() < deadline {
            let end = (at + size).min(best.len());
            let mut candidate = best[..at].to_vec();
            candidate.extend_from_slice(&best[end..]);
            tries += 1;
            recorder.write(executions, crashes + 1, &candidate);
            match execute(run, &candidate) {
                Err(p) if p.location == location => {
                    best = candidate;
                    cut_any = true;
                }
                _ => at += size,
            }
        }
        if !cut_any {
            size /= 2;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOOM: Target = Target {
        name: "boom",
        about: "panics on inputs holding `boom`, sleeps on inputs starting with `z`",
        max_len: 64,
        dict: &[b"boom"],
        seeds: || vec![b"xx-boom-xx".to_vec(), b"fine".to_vec()],
        setup: || {
            Box::new(|b| {
                if b.windows(4).any(|w| w == b"boom") {
                    panic!("found a boom");
                }
                if b.first() == Some(&b'z') {
                    std::thread::sleep(Duration::from_millis(30));
                }
                true
            })
        },
    };

    #[test]
    fn panics_are_caught_counted_and_shrunk() {
        let r = fuzz(
            &BOOM,
            &Options {
                runs: Some(500),
                ..Options::default()
            },
        );
        assert_eq!(r.executions, 500);
        assert!(r.crashes >= 1);
        assert_eq!(r.found.len(), 1, "one distinct crash: {:?}", r.found);
        let c = &r.found[0];
        assert_eq!(c.kind, Kind::Panic);
        assert!(c.message.contains("found a boom"), "{}", c.message);
        assert!(c.message.contains("fuzz/src/run.rs"), "{}", c.message);
        assert_eq!(c.input, b"boom", "shrunk to what matters");
        assert!(replay(&BOOM, &[b"boom".to_vec(), b"ok".to_vec()])[0].is_err());
        assert!(replay(&BOOM, &[b"ok".to_vec()])[0].is_ok());
    }

    #[test]
    fn slow_executions_are_hangs() {
        static SLOW: Target = Target {
            seeds: || vec![b"z".to_vec()],
            dict: &[],
            ..BOOM
        };
        let r = fuzz(
            &SLOW,
            &Options {
                runs: Some(1),
                hang: Duration::from_millis(5),
                ..Options::default()
            },
        );
        assert_eq!((r.executions, r.crashes), (1, 1));
        assert_eq!(r.found[0].kind, Kind::Hang);
        assert_eq!(r.found[0].input, b"z");
    }

    #[test]
    fn the_record_holds_the_last_input_and_counts() {
        let dir = std::env::temp_dir().join(format!("kiln-fuzz-record-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("record");
        let r = Recorder(fs::File::create(&path).ok());
        r.write(1, 0, b"a longer first input");
        r.write(2, 1, b"short");
        assert_eq!(read_record(&path), Some((2, 1, b"short".to_vec())));
        let saved = save(&dir, "t", b"short").unwrap();
        assert_eq!(saved, dir.join("t").join(input_name(b"short")));
        assert_eq!(fs::read(&saved).unwrap(), b"short");
        fs::remove_dir_all(&dir).unwrap();
    }
}
