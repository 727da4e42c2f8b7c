//! The scheduler with a fake runner: ordering, `-j`, `-k`, the first
//! failure stopping new work, early cutoff, interrupts and a corrupt cache,
//! in milliseconds. The real filesystem and SQLite cache are used, in a
//! temporary directory; the runner records what ran and writes outputs
//! computed from the action's inputs, so no process is spawned.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_cache::{ActionResult, Blobs, Cache, Digest, OutputEntry};

use super::clock::Clock;
use super::files::{DiskFs, Fs};
use super::runner::{Runner, Runners};
use super::sandbox::{Isolation, RunOutcome};
use super::{ExecOptions, ExecReport, ProgressMode, Seams, execute_with};
use crate::action::{Action, ActionKind, CommandAction, ExecContext};
use crate::artifact::Artifact;
use crate::error::Location;
use crate::label::Label;
use crate::plan::Plan;

/// What the fake runner does and saw.
#[derive(Default)]
struct Script {
    /// Actions (`//p:name#0`) that fail.
    fail: HashSet<String>,
    /// Actions whose output is this constant instead of a function of
    /// their inputs (for early cutoff).
    constant: BTreeMap<String, String>,
    /// How long each action takes.
    delay: Duration,
    /// Set this flag when an action starts (to interrupt the build).
    interrupt_on_start: Option<Arc<AtomicBool>>,
    /// Actions in the order they started.
    started: Mutex<Vec<String>>,
    /// Actions running now, and the most at once.
    now: AtomicUsize,
    peak: AtomicUsize,
    /// The build's clock, in microseconds: each action takes 10 ms of it.
    clock_us: AtomicUsize,
    /// Placing an output whose path ends with this fails: the disk is full.
    disk_full_at: Option<&'static str>,
}

/// The real filesystem, except that it can run out of space.
struct FaultyFs(Arc<Script>);

impl Fs for FaultyFs {
    fn stat_file(&self, path: &Path, since_ns: i64) -> Option<kiln_cache::Stat> {
        DiskFs.stat_file(path, since_ns)
    }
    fn stat_entry(&self, path: &Path, since_ns: i64) -> Option<kiln_cache::Stat> {
        DiskFs.stat_entry(path, since_ns)
    }
    fn digest(&self, path: &Path) -> std::io::Result<Digest> {
        DiskFs.digest(path)
    }
    fn place(&self, blob: &Path, dest: &Path, tmp: &Path) -> std::io::Result<kiln_cache::Stat> {
        match self.0.disk_full_at {
            Some(end) if dest.to_string_lossy().ends_with(end) => {
                Err(std::io::Error::from_raw_os_error(28))
            }
            _ => DiskFs.place(blob, dest, tmp),
        }
    }
}

/// A clock that moves only when the fake runner says so.
struct FakeClock(Arc<Script>);

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.0.clock_us.load(Ordering::SeqCst) as u64)
    }
}

struct FakeRunners {
    blobs: Blobs,
    script: Arc<Script>,
}

struct FakeRunner {
    blobs: Blobs,
    script: Arc<Script>,
}

impl Runners for FakeRunners {
    fn start(&self, _slot: usize) -> (Isolation, Box<dyn Runner>) {
        let r = FakeRunner {
            blobs: self.blobs.clone(),
            script: self.script.clone(),
        };
        (Isolation::default(), Box::new(r))
    }
    fn kill_all(&self) {}
    fn finish(&self) {}
}

impl Runner for FakeRunner {
    fn run(&mut self, action: &Action, inputs: &[Digest]) -> RunOutcome {
        let s = &self.script;
        let name = action.name().to_string();
        s.started.lock().unwrap().push(name.clone());
        let now = s.now.fetch_add(1, Ordering::SeqCst) + 1;
        s.peak.fetch_max(now, Ordering::SeqCst);
        if let Some(flag) = &s.interrupt_on_start {
            flag.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(s.delay);
        s.clock_us.fetch_add(10_000, Ordering::SeqCst);
        s.now.fetch_sub(1, Ordering::SeqCst);
        if s.fail.contains(&name) {
            return RunOutcome::Failed {
                message: "the command exited with status 1".into(),
                log: "fake failure".into(),
            };
        }
        let mut outputs = Vec::new();
        for o in &action.outputs {
            let content = match s.constant.get(&name) {
                Some(c) => c.clone(),
                None => {
                    let ins: Vec<String> = inputs.iter().map(Digest::hex).collect();
                    format!("{} of {}\n", o.path(), ins.join(","))
                }
            };
            let digest = self.blobs.put_bytes(content.as_bytes()).unwrap();
            outputs.push(OutputEntry {
                path: o.path().to_owned(),
                digest,
                size: content.len() as u64,
                executable: false,
            });
        }
        RunOutcome::Done(ActionResult { outputs, log: None })
    }
}

/// A workspace and cache in a temporary directory.
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("kiln-sched-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("ws/p")).unwrap();
        Fixture { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.join("ws")
    }
    fn write(&self, rel: &str, text: &str) {
        fs::write(self.root().join(rel), text).unwrap();
    }
    fn run(
        &self,
        plan: &Plan,
        script: Script,
        jobs: usize,
        keep_going: bool,
    ) -> (ExecReport, Arc<Script>) {
        self.run_with(
            plan,
            Arc::new(script),
            jobs,
            keep_going,
            Arc::default(),
            None,
        )
        .unwrap()
    }
    fn run_with(
        &self,
        plan: &Plan,
        script: Arc<Script>,
        jobs: usize,
        keep_going: bool,
        interrupt: Arc<AtomicBool>,
        profile: Option<PathBuf>,
    ) -> Result<(ExecReport, Arc<Script>), super::ExecError> {
        let mut cache = Cache::open(&self.dir.join("cache")).unwrap();
        let runners = FakeRunners {
            blobs: cache.blobs().clone(),
            script: script.clone(),
        };
        let opts = ExecOptions {
            executor: None,
            local_jobs: usize::MAX,
            jobs,
            keep_going,
            progress: ProgressMode::None,
            profile,
            remote: None,
            context: ExecContext::new(self.dir.join("cache")),
            flaky_test_attempts: 1,
        };
        execute_with(
            &self.root(),
            &mut cache,
            plan.clone(),
            &opts,
            interrupt,
            Seams {
                runners: Arc::new(runners),
                clock: Arc::new(FakeClock(script.clone())),
                fs: Arc::new(FaultyFs(script.clone())),
            },
        )
        .map(|r| (r, script))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn label(name: &str) -> Label {
    Label::parse_absolute(&format!("//p:{name}")).unwrap()
}

/// An action of `//p:name` reading `inputs` (sources `p/x` or outputs
/// `kiln-out/p/x`) and writing `kiln-out/p/<name>.out`.
fn action(name: &str, inputs: &[&str]) -> Action {
    let owner = label(name);
    Action {
        owner: owner.clone(),
        index: 0,
        mnemonic: "Fake".into(),
        kind: ActionKind::Command(CommandAction {
            argv: vec!["fake".into(), name.into()],
            env: BTreeMap::new(),
            tools: Vec::new(),
            network: false,
            ..Default::default()
        }),
        inputs: inputs
            .iter()
            .map(|i| match i.strip_prefix("kiln-out/p/") {
                Some(f) => Artifact::output(&label(f.trim_end_matches(".out")), f),
                None => Artifact::source((*i).to_owned()),
            })
            .collect(),
        outputs: vec![Artifact::output(&owner, &format!("{name}.out"))],
        location: Location {
            file: "p/BUILD.star".into(),
            line: 1,
            col: 1,
        },
    }
}

/// A plan of `actions` (in dependency order), linked by their paths.
fn plan(actions: Vec<Action>) -> Plan {
    let deps = actions
        .iter()
        .map(|a| {
            a.inputs
                .iter()
                .filter_map(|i| {
                    actions
                        .iter()
                        .position(|p| p.outputs.iter().any(|o| o.path() == i.path()))
                        .map(|p| p as u32)
                })
                .collect()
        })
        .collect();
    Plan {
        out_dir: None,
        actions,
        deps,
        targets: Vec::new(),
    }
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|n| format!("//p:{n}#0")).collect()
}

#[test]
fn producers_run_before_consumers_and_a_second_run_does_nothing() {
    let f = Fixture::new("order");
    f.write("p/src", "one");
    let p = plan(vec![
        action("a", &["p/src"]),
        action("b", &["kiln-out/p/a.out"]),
        action("c", &["kiln-out/p/b.out", "p/src"]),
    ]);
    let (r, s) = f.run(&p, Script::default(), 4, false);
    assert_eq!((r.executed, r.local_hits, r.failed), (3, 0, 0));
    assert_eq!(*s.started.lock().unwrap(), names(&["a", "b", "c"]));
    let out = fs::read_to_string(f.root().join("kiln-out/p/c.out")).unwrap();
    assert!(out.starts_with("kiln-out/p/c.out of "), "{out}");
    let (r, s) = f.run(&p, Script::default(), 4, false);
    assert_eq!((r.executed, r.local_hits), (0, 3));
    assert!(s.started.lock().unwrap().is_empty());
}

#[test]
fn no_more_actions_run_at_once_than_jobs() {
    let f = Fixture::new("jobs");
    f.write("p/src", "x");
    let many: Vec<Action> = (0..8)
        .map(|i| action(&format!("t{i}"), &["p/src"]))
        .collect();
    let p = plan(many);
    for jobs in [1, 3] {
        let script = Script {
            delay: Duration::from_millis(15),
            ..Default::default()
        };
        let _ = fs::remove_dir_all(f.dir.join("cache"));
        let (r, s) = f.run(&p, script, jobs, false);
        assert_eq!(r.executed, 8);
        let peak = s.peak.load(Ordering::SeqCst);
        assert!(peak <= jobs, "-j {jobs}: {peak} at once");
        assert!(
            jobs == 1 || peak > 1,
            "-j {jobs}: actions ran one at a time"
        );
    }
}

#[test]
fn the_first_failure_stops_new_work_unless_keep_going() {
    let f = Fixture::new("fail");
    f.write("p/src", "x");
    // `bad` fails; `after` needs it; `other*` are independent.
    let mut actions = vec![
        action("bad", &["p/src"]),
        action("after", &["kiln-out/p/bad.out"]),
    ];
    actions.extend((0..4).map(|i| action(&format!("other{i}"), &["p/src"])));
    let p = plan(actions);
    let script = || Script {
        fail: ["//p:bad#0".to_owned()].into(),
        ..Default::default()
    };
    // With `-j 1` the scheduler keeps at most two jobs queued for the
    // worker: the one queued behind `bad` may still start, nothing after.
    let (r, s) = f.run(&p, script(), 1, false);
    let started = s.started.lock().unwrap().clone();
    assert_eq!(r.failed, 1);
    assert_eq!(started[0], "//p:bad#0");
    assert!(started.len() <= 2 && r.executed <= 1, "{started:?}");
    assert_eq!(r.failures, vec![vec!["kiln-out/p/bad.out".to_owned()]]);

    let _ = fs::remove_dir_all(f.dir.join("cache"));
    let _ = fs::remove_dir_all(f.root().join("kiln-out"));
    let (r, s) = f.run(&p, script(), 1, true);
    assert_eq!(
        (r.failed, r.executed),
        (1, 4),
        "-k runs what does not need `bad`"
    );
    assert!(
        !s.started
            .lock()
            .unwrap()
            .contains(&"//p:after#0".to_owned())
    );
    assert!(!f.root().join("kiln-out/p/after.out").exists());
}

#[test]
fn an_output_rebuilt_to_the_same_bytes_stops_propagation() {
    let f = Fixture::new("cutoff");
    f.write("p/src", "one");
    let p = plan(vec![
        action("a", &["p/src"]),
        action("b", &["kiln-out/p/a.out"]),
    ]);
    let constant = || Script {
        constant: [("//p:a#0".to_owned(), "same\n".to_owned())].into(),
        ..Default::default()
    };
    let (r, _) = f.run(&p, constant(), 2, false);
    assert_eq!(r.executed, 2);
    f.write("p/src", "two");
    let (r, s) = f.run(&p, constant(), 2, false);
    assert_eq!((r.executed, r.local_hits), (1, 1));
    assert_eq!(*s.started.lock().unwrap(), names(&["a"]));
}

#[test]
fn an_interrupt_records_nothing_for_the_action_it_stopped() {
    let f = Fixture::new("interrupt");
    f.write("p/src", "x");
    let p = plan(vec![
        action("a", &["p/src"]),
        action("b", &["kiln-out/p/a.out"]),
    ]);
    let flag: Arc<AtomicBool> = Arc::default();
    let script = Arc::new(Script {
        interrupt_on_start: Some(flag.clone()),
        delay: Duration::from_millis(20),
        ..Default::default()
    });
    let (r, s) = f.run_with(&p, script, 1, false, flag, None).unwrap();
    assert!(r.interrupted);
    assert_eq!(
        *s.started.lock().unwrap(),
        names(&["a"]),
        "nothing new starts"
    );
    assert!(r.snapshot.is_none(), "no no-op record after an interrupt");
    assert!(!f.root().join("kiln-out/p/b.out").exists());
    // The next build runs what did not finish.
    let (r, _) = f.run(&p, Script::default(), 1, false);
    assert!(!r.interrupted);
    assert_eq!(r.executed + r.local_hits, 2);
}

#[test]
fn a_corrupt_blob_is_not_used_and_the_action_runs_again() {
    let f = Fixture::new("corrupt");
    f.write("p/src", "x");
    let p = plan(vec![action("a", &["p/src"])]);
    let (r, _) = f.run(&p, Script::default(), 1, false);
    assert_eq!(r.executed, 1);
    // Lose the output and corrupt its blob: restoring must not use it.
    let out = f.root().join("kiln-out/p/a.out");
    let good = fs::read(&out).unwrap();
    fs::remove_file(&out).unwrap();
    let cache = Cache::open(&f.dir.join("cache")).unwrap();
    let blob = cache.blobs().path(&Digest::of(&good));
    corrupt(&blob);
    let (r, s) = f.run(&p, Script::default(), 1, false);
    assert_eq!((r.executed, r.failed), (1, 0));
    assert_eq!(*s.started.lock().unwrap(), names(&["a"]));
    assert_eq!(fs::read(&out).unwrap(), good);
}

fn corrupt(blob: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(blob, b"not what it was").unwrap();
}

#[test]
fn the_profile_has_one_slice_per_action_on_the_build_clock() {
    let f = Fixture::new("profile");
    f.write("p/src", "x");
    let p = plan(vec![
        action("a", &["p/src"]),
        action("b", &["kiln-out/p/a.out"]),
    ]);
    let trace = f.dir.join("trace.json");
    let run = |f: &Fixture| {
        let script = Arc::new(Script::default());
        f.run_with(&p, script, 1, false, Arc::default(), Some(trace.clone()))
            .unwrap()
    };
    let (r, _) = run(&f);
    assert_eq!(r.executed, 2);
    let t: serde_json::Value = serde_json::from_slice(&fs::read(&trace).unwrap()).unwrap();
    let slices: Vec<(String, u64, u64, String)> = t["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["ts"].as_u64().unwrap(),
                e["dur"].as_u64().unwrap(),
                e["cat"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // `a` runs from 0 to 10 ms of the fake clock, then `b` from 10 to 20.
    assert_eq!(
        slices,
        [
            ("//p:a#0 Fake".to_owned(), 0, 10_000, "executed".to_owned()),
            (
                "//p:b#0 Fake".to_owned(),
                10_000,
                10_000,
                "executed".to_owned()
            ),
        ]
    );
    // A second build: both up to date, instantly on the build's clock.
    let (r, _) = run(&f);
    assert_eq!(r.local_hits, 2);
    let t: serde_json::Value = serde_json::from_slice(&fs::read(&trace).unwrap()).unwrap();
    for e in t["traceEvents"].as_array().unwrap() {
        assert_eq!(
            (e["cat"].as_str(), e["dur"].as_u64()),
            (Some("up_to_date"), Some(0))
        );
    }
}

#[test]
fn a_full_disk_fails_the_build_without_a_partial_output() {
    let f = Fixture::new("diskfull");
    f.write("p/src", "x");
    let p = plan(vec![
        action("a", &["p/src"]),
        action("b", &["kiln-out/p/a.out"]),
    ]);
    let script = Arc::new(Script {
        disk_full_at: Some("kiln-out/p/b.out"),
        ..Default::default()
    });
    let err = f
        .run_with(&p, script, 1, false, Arc::default(), None)
        .err()
        .expect("the build must fail");
    let text = err.to_string();
    assert!(
        text.contains("kiln-out/p/b.out") && text.contains("No space left"),
        "{text}"
    );
    assert_eq!(err.class(), crate::error::ErrorClass::Local);
    assert!(!f.root().join("kiln-out/p/b.out").exists());
    // With space again, the next build finishes what is missing.
    let (r, _) = f.run(&p, Script::default(), 1, false);
    assert_eq!(r.executed + r.local_hits, 2);
    assert!(f.root().join("kiln-out/p/b.out").is_file());
}
