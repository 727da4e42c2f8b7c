//! Fault drills: kiln is killed, starved of disk, handed a broken cache and
//! made to share it, and must lose nothing and never produce a wrong output.
//!
//! Every drill runs the `kiln` binary on a generated 20x20 genrule graph
//! (the benchmark's shape) and compares `kiln-out/` with a clean build's,
//! byte for byte; `kiln cache verify` must find the cache sound afterwards.
//! With `KILN_DRILL_REPORT=FILE` each drill appends one JSON line (drill,
//! runs, survived, outputs wrong, data lost) for `tests/drills/report.py`.
//!
//! Disk-full and read-only drills mount small tmpfs filesystems in a mount
//! namespace of their own (`unshare`, then `nsenter` for each command), so
//! nothing outside the test sees them; they need root, as CI has.

// Integration tests drive the `kiln` binary and system tools directly; a
// drill that fails prints what kiln said before the tally's assertion.
#![allow(clippy::disallowed_methods, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, fresh_tmp, graph_workspace, repo, tree_files};

const P: usize = 20;
const T: usize = 20;

fn tmp(name: &str) -> Tmp {
    fresh_tmp(&format!("drill-{name}"))
}

/// `kiln ARGS` in `ws` with `cache`, optionally inside the mount namespace
/// of process `ns`, with extra environment.
fn kiln_cmd(
    ws: &Path,
    cache: &Path,
    args: &[&str],
    ns: Option<u32>,
    env: &[(&str, &str)],
) -> Command {
    let mut c = match ns {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--mount=/proc/{pid}/ns/mnt"))
                .arg("--")
                .arg(env!("CARGO_BIN_EXE_kiln"))
                .arg("-C")
                .arg(ws);
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_kiln")),
    };
    if ns.is_none() {
        c.current_dir(ws);
    }
    c.args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env_remove("KILN_CRASH_AT")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    c
}

fn kiln(ws: &Path, cache: &Path, args: &[&str]) -> Output {
    kiln_cmd(ws, cache, args, None, &[]).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file under `kiln-out/` (state directory left out) and its bytes.
fn snapshot(ws: &Path) -> BTreeMap<String, Vec<u8>> {
    tree_files(&ws.join("kiln-out"))
}

/// The outputs of a clean build of the drill graph (built once).
fn reference() -> &'static BTreeMap<String, Vec<u8>> {
    static REF: std::sync::OnceLock<BTreeMap<String, Vec<u8>>> = std::sync::OnceLock::new();
    REF.get_or_init(|| {
        let t = tmp("reference");
        let ws = t.0.join("ws");
        graph_workspace(&ws, P, T);
        let o = kiln(&ws, &t.0.join("cache"), &["build", "//..."]);
        assert!(o.status.success(), "{}", text(&o));
        let s = snapshot(&ws);
        assert_eq!(s.len(), P * T);
        s
    })
}

/// One drill's result, for the report.
#[derive(Default)]
struct Tally {
    runs: u32,
    survived: u32,
    wrong: u32,
    lost: u32,
}

fn report(drill: &str, t: &Tally) {
    if let Some(path) = std::env::var_os("KILN_DRILL_REPORT") {
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(
            f,
            "{{\"drill\": \"{drill}\", \"runs\": {}, \"survived\": {}, \"outputs_wrong\": {}, \"data_lost\": {}}}",
            t.runs, t.survived, t.wrong, t.lost
        )
        .unwrap();
    }
    assert_eq!(
        (t.survived, t.wrong, t.lost),
        (t.runs, 0, 0),
        "drill {drill}: {} runs, {} survived, {} with wrong outputs, {} losing data",
        t.runs,
        t.survived,
        t.wrong,
        t.lost
    );
}

/// After a fault: the next build must succeed with the clean build's
/// outputs, and `kiln cache verify` must find nothing broken. Returns
/// (survived, outputs wrong, data lost) and records them.
fn recovers(t: &mut Tally, what: &str, ws: &Path, cache: &Path, extra: &[&str]) {
    t.runs += 1;
    let mut args = vec!["build", "//..."];
    args.extend_from_slice(extra);
    let o = kiln(ws, cache, &args);
    let ok = o.status.success();
    let wrong = ok && snapshot(ws) != *reference();
    let v = kiln(ws, cache, &["cache", "verify"]);
    let lost = !v.status.success();
    if ok && !wrong && !lost {
        t.survived += 1;
    } else {
        eprintln!(
            "{what}: build ok {ok}, outputs wrong {wrong}, verify failed {lost}\n{}\n{}",
            text(&o),
            text(&v)
        );
    }
    t.wrong += wrong as u32;
    t.lost += lost as u32;
}

/// A seeded generator (splitmix64): the drills are the same every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// A Bazel HTTP cache (nginx) for the remote-upload kill points.
struct Nginx(Child, u16);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx(root: &Path) -> Nginx {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::create_dir_all(root).unwrap();
    let child = Command::new(repo().join("tests/support/remote/nginx.sh"))
        .args(["serve", &port.to_string()])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tests/support/remote/nginx.sh (run .ci/setup)");
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx(child, port)
}

#[test]
fn kill_anywhere() {
    let t = tmp("kill");
    let ws = t.0.join("ws");
    graph_workspace(&ws, P, T);
    let server = nginx(&t.0.join("remote"));
    let base = format!("http://127.0.0.1:{}", server.1);
    // 20 kill points over every phase; the passage is drawn from a seeded
    // generator within what a cold build of the graph passes through
    // (P*T actions, each with one output blob, one materialization, one
    // upload; commits are batched, one every 500 ms and one at the end, so
    // a cold build of over a second commits at least twice).
    let mut rng = Rng(14);
    let mut points: Vec<(&str, u64)> = vec![("analysis", 1), ("plan_persist", 1)];
    for (point, count, range) in [
        ("action", 4, (P * T) as u64),
        ("blob_write", 4, (P * T) as u64),
        ("db_commit", 3, 2),
        ("materialize", 4, (P * T) as u64),
        ("remote_upload", 3, (P * T) as u64),
    ] {
        for _ in 0..count {
            points.push((point, 1 + rng.below(range)));
        }
    }
    assert_eq!(points.len(), 20);
    let mut tally = Tally::default();
    for (i, (point, n)) in points.iter().enumerate() {
        // Each point gets a cold build: an empty cache, no outputs.
        let cache = t.0.join(format!("cache-{i}"));
        // A remote of its own too: remote hits would skip the kill point.
        let remote = format!("{base}/drill{i}");
        let _ = fs::remove_dir_all(ws.join("kiln-out"));
        let at = format!("{point}:{n}");
        let o = kiln_cmd(
            &ws,
            &cache,
            &["build", "//...", "--remote-cache", &remote],
            None,
            &[("KILN_CRASH_AT", &at)],
        )
        .output()
        .unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(9),
            "kiln was not killed at {at}: {}",
            text(&o)
        );
        recovers(&mut tally, &at, &ws, &cache, &["--remote-cache", &remote]);
        let _ = fs::remove_dir_all(&cache);
    }
    report("kill anywhere (20 seeded points)", &tally);
}

/// A process holding a private mount namespace with the given tmpfs
/// mounts (`(dir, size)`); commands enter it with `nsenter`.
struct Namespace(Child);

impl Namespace {
    fn new(mounts: &[(&Path, &str)]) -> Namespace {
        let mut script = String::from("set -e\n");
        for (dir, size) in mounts {
            fs::create_dir_all(dir).unwrap();
            script.push_str(&format!(
                "mount -t tmpfs -o size={size} tmpfs '{}'\n",
                dir.display()
            ));
        }
        script.push_str("echo ready\nexec sleep 600\n");
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("unshare (util-linux)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready", "mounting tmpfs failed (needs root)");
        Namespace(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// `p` as seen from inside (through `/proc/PID/root`), for the test's
    /// own file operations.
    fn inside(&self, p: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{}", self.pid(), p.display()))
    }

    /// Run a shell command inside.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", self.pid()))
            .args(["--", "sh", "-c", script])
            .output()
            .unwrap()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fill the filesystem holding `dir` until a write fails, then give back
/// `leave_kib` KiB.
fn fill(ns: &Namespace, dir: &Path, leave_kib: u32) {
    let _ = ns.sh(&format!(
        "dd if=/dev/zero of='{0}/filler' bs=4k 2>/dev/null; truncate -s -{leave_kib}K '{0}/filler'",
        dir.display()
    ));
}

fn unfill(ns: &Namespace, dir: &Path) {
    let o = ns.sh(&format!("rm -f '{}/filler'", dir.display()));
    assert!(o.status.success());
}

/// A workspace of `n` genrules writing `bytes` bytes each.
/// A workspace of `n` genrules writing `bytes` bytes and `salt` each (no
/// bytes at all when `bytes` is 0); returns the outputs it must produce.
fn sized_workspace(ws: &Path, n: usize, bytes: usize, salt: &str) -> BTreeMap<String, Vec<u8>> {
    fs::create_dir_all(ws).unwrap();
    fs::write(ws.join("kiln.toml"), "").unwrap();
    let mut b = String::new();
    let mut want = BTreeMap::new();
    for i in 0..n {
        let c = (b'a' + (i % 26) as u8) as char;
        let (cmd, out) = if bytes == 0 {
            (": > $@".to_owned(), Vec::new())
        } else {
            (
                format!("head -c {bytes} /dev/zero | tr '\\\\0' {c} > $@; echo {salt} >> $@"),
                format!("{}{salt}\n", c.to_string().repeat(bytes)).into_bytes(),
            )
        };
        b.push_str(&format!(
            "genrule(name = \"g{i}\", outs = [\"g{i}.out\"], cmd = \"{cmd}\")\n"
        ));
        want.insert(format!("g{i}.out"), out);
    }
    fs::write(ws.join("BUILD.star"), b).unwrap();
    want
}

/// A build in `ns` that must fail with exit 36 and a message saying the
/// disk is full; then, with space freed, one that succeeds.
/// `at` is what the error must name (the file that could not be written).
#[allow(clippy::too_many_arguments)]
fn disk_full_case(
    tally: &mut Tally,
    name: &str,
    ns: &Namespace,
    ws: &Path,
    cache: &Path,
    full: &Path,
    leave_kib: u32,
    at: &str,
    want: &BTreeMap<String, Vec<u8>>,
) {
    tally.runs += 1;
    fill(ns, full, leave_kib);
    let o = kiln_cmd(ws, cache, &["build", "//..."], Some(ns.pid()), &[])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    let clear = o.status.code() == Some(36)
        && err.contains("No space left on device")
        && err.contains(at)
        && !err.contains("panicked");
    if !clear {
        eprintln!(
            "{name}: expected exit 36 and a clear message:\n{}",
            text(&o)
        );
    }
    unfill(ns, full);
    let again = kiln_cmd(ws, cache, &["build", "//..."], Some(ns.pid()), &[])
        .output()
        .unwrap();
    let ok = again.status.success();
    let v = kiln_cmd(ws, cache, &["cache", "verify"], Some(ns.pid()), &[])
        .output()
        .unwrap();
    let lost = !v.status.success();
    let wrong = ok && tree_files(&ns.inside(&ws.join("kiln-out"))) != *want;
    if clear && ok && !lost && !wrong {
        tally.survived += 1;
    } else {
        eprintln!(
            "{name}: after freeing space:\n{}\n{}",
            text(&again),
            text(&v)
        );
    }
    tally.wrong += wrong as u32;
    tally.lost += lost as u32;
}

#[test]
fn disk_full() {
    let t = tmp("full");
    let (cache_fs, ws_fs) = (t.0.join("cachefs"), t.0.join("wsfs"));
    let ns = Namespace::new(&[(&cache_fs, "24m"), (&ws_fs, "24m")]);
    let mut tally = Tally::default();
    // Blob writes: the cache has room for its database (which, on a full
    // disk, fails first: it creates its shared-memory file when opened)
    // but not for the outputs.
    let ws = ws_fs.join("a");
    let cache = cache_fs.join("cache-a");
    let want = sized_workspace(&ns.inside(&ws), 8, 256 << 10, "blobs");
    // Create the cache first (its database and shards), then fill it.
    let o = kiln_cmd(&ws, &cache, &["cache", "stats"], Some(ns.pid()), &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let at = cache.join("blobs");
    let at = at.to_str().unwrap();
    disk_full_case(
        &mut tally,
        "blob writes",
        &ns,
        &ws,
        &cache,
        &cache_fs,
        128,
        at,
        &want,
    );
    // Database writes: empty outputs need no data blocks, the commit does.
    let ws = ws_fs.join("b");
    let cache = cache_fs.join("cache-b");
    let want = sized_workspace(&ns.inside(&ws), 8, 0, "db");
    let _ = kiln_cmd(&ws, &cache, &["cache", "stats"], Some(ns.pid()), &[]).output();
    let at = cache.join("kiln.db");
    let at = at.to_str().unwrap();
    disk_full_case(
        &mut tally,
        "database writes",
        &ns,
        &ws,
        &cache,
        &cache_fs,
        0,
        at,
        &want,
    );
    // Materialization: the cache has room, `kiln-out/` (another
    // filesystem, so outputs are copied) has none.
    let ws = ws_fs.join("c");
    let cache = cache_fs.join("cache-c");
    let want = sized_workspace(&ns.inside(&ws), 8, 256 << 10, "materialize");
    fs::create_dir_all(ns.inside(&ws.join("kiln-out"))).unwrap();
    let o = kiln_cmd(&ws, &cache, &["cache", "stats"], Some(ns.pid()), &[])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let at = ws.join("kiln-out");
    let at = at.to_str().unwrap();
    disk_full_case(
        &mut tally,
        "materialization",
        &ns,
        &ws,
        &cache,
        &ws_fs,
        0,
        at,
        &want,
    );
    report("disk full (blobs, database, kiln-out)", &tally);
}

#[test]
fn broken_cache() {
    let t = tmp("broken");
    let ws = t.0.join("ws");
    graph_workspace(&ws, P, T);
    let cache = t.0.join("cache");
    let mut tally = Tally::default();
    let cold = |cache: &Path| {
        let _ = fs::remove_dir_all(cache);
        let o = kiln(&ws, cache, &["build", "//..."]);
        assert!(o.status.success(), "{}", text(&o));
    };
    let db = cache.join("kiln.db");
    let checkpoint = |cache: &Path| {
        // Fold the WAL into the database file, as a kiln that exited would.
        let _ = kiln(&ws, cache, &["cache", "verify"]);
    };

    // Truncated database.
    cold(&cache);
    checkpoint(&cache);
    for f in ["kiln.db-wal", "kiln.db-shm"] {
        let _ = fs::remove_file(cache.join(f));
    }
    let len = fs::metadata(&db).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let _ = fs::remove_dir_all(ws.join("kiln-out"));
    recovers(&mut tally, "truncated kiln.db", &ws, &cache, &[]);

    // Garbage pages: the header and pages in the middle overwritten.
    cold(&cache);
    checkpoint(&cache);
    for f in ["kiln.db-wal", "kiln.db-shm"] {
        let _ = fs::remove_file(cache.join(f));
    }
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new().write(true).open(&db).unwrap();
        let len = f.metadata().unwrap().len();
        let junk = vec![0xa5u8; 4096];
        let mut off = 0;
        while off < len {
            f.write_all_at(&junk, off).unwrap();
            off += 3 * 4096;
        }
    }
    let _ = fs::remove_dir_all(ws.join("kiln-out"));
    recovers(&mut tally, "garbage pages in kiln.db", &ws, &cache, &[]);

    // VERSION missing: the cache is taken as it is (and the file rewritten).
    cold(&cache);
    fs::remove_file(cache.join("VERSION")).unwrap();
    let _ = fs::remove_dir_all(ws.join("kiln-out"));
    recovers(&mut tally, "VERSION missing", &ws, &cache, &[]);
    assert!(cache.join("VERSION").exists());

    // Wrong schema version: refused with what to do, nothing touched.
    for (what, damage) in [
        ("VERSION of another schema", "version-file"),
        ("schema_version of another kiln in kiln.db", "meta"),
    ] {
        tally.runs += 1;
        cold(&cache);
        if damage == "version-file" {
            fs::write(cache.join("VERSION"), "kiln-cache 99\n").unwrap();
        } else {
            let o = Command::new("python3")
                .arg("-c")
                .arg("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE meta SET value = '99' WHERE key = 'schema_version'\"); c.commit()")
                .arg(&db)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = kiln(&ws, &cache, &["build", "//..."]);
        let err = String::from_utf8_lossy(&o.stderr);
        let clear = o.status.code() == Some(36)
            && err.contains("schema version")
            && err.contains("--cache-dir");
        if clear {
            tally.survived += 1;
        } else {
            eprintln!("{what}: expected exit 36 naming the schema:\n{}", text(&o));
        }
    }

    // A read-only cache directory (a read-only bind mount: root ignores
    // permission bits): a clear error, exit 36; writable again, it works.
    {
        tally.runs += 1;
        cold(&cache);
        fs::write(ws.join("p0/s0.txt"), "changed so that an action runs\n").unwrap();
        let ns = Namespace::new(&[]);
        let o = ns.sh(&format!(
            "mount --bind '{0}' '{0}' && mount -o remount,bind,ro '{0}'",
            cache.display()
        ));
        assert!(o.status.success(), "{}", text(&o));
        let o = kiln_cmd(&ws, &cache, &["build", "//..."], Some(ns.pid()), &[])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        let clear = o.status.code() == Some(36) && err.contains("Read-only file system");
        if !clear {
            eprintln!("read-only cache: expected exit 36:\n{}", text(&o));
        }
        drop(ns);
        fs::write(ws.join("p0/s0.txt"), "source 0 0\n").unwrap();
        let before = (tally.survived, tally.runs);
        recovers(
            &mut tally,
            "read-only cache, then writable",
            &ws,
            &cache,
            &[],
        );
        // `recovers` counted a run of its own: fold it into this one.
        tally.runs = before.1;
        if !(clear && tally.survived > before.0) {
            tally.survived = before.0;
        }
    }

    // The cache on another filesystem than the workspace: hardlinks fail
    // (EXDEV), outputs are copied.
    {
        let ns = Namespace::new(&[(&t.0.join("otherfs"), "64m")]);
        tally.runs += 1;
        let other = t.0.join("otherfs/cache");
        let _ = fs::remove_dir_all(ws.join("kiln-out"));
        let o = kiln_cmd(&ws, &other, &["build", "//..."], Some(ns.pid()), &[])
            .output()
            .unwrap();
        let v = kiln_cmd(&ws, &other, &["cache", "verify"], Some(ns.pid()), &[])
            .output()
            .unwrap();
        if o.status.success() && snapshot(&ws) == *reference() && v.status.success() {
            tally.survived += 1;
        } else {
            eprintln!("cache on another filesystem:\n{}\n{}", text(&o), text(&v));
        }
    }

    // A corrupt blob under a result: detected, the action runs again.
    cold(&cache);
    let blob = fs::read_dir(cache.join("blobs"))
        .unwrap()
        .flatten()
        .flat_map(|s| fs::read_dir(s.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .find(|p| p.is_file())
        .unwrap();
    Command::new("chmod")
        .arg("u+w")
        .arg(&blob)
        .status()
        .unwrap();
    let _ = fs::remove_dir_all(ws.join("kiln-out"));
    fs::write(&blob, b"corrupt").unwrap();
    let o = kiln(&ws, &cache, &["cache", "verify"]);
    assert_eq!(o.status.code(), Some(36), "{}", text(&o));
    let o = kiln(&ws, &cache, &["cache", "verify", "--repair"]);
    assert!(o.status.success(), "{}", text(&o));
    recovers(&mut tally, "corrupt blob, repaired", &ws, &cache, &[]);

    report("broken cache (8 kinds)", &tally);
}

#[test]
fn contention() {
    let t = tmp("contention");
    let ws = t.0.join("ws");
    graph_workspace(&ws, P, T);
    let cache = t.0.join("cache");
    let mut tally = Tally::default();

    // `kiln cache gc` while a build runs on the same cache: gc waits for it.
    for round in 0..2 {
        tally.runs += 1;
        let _ = fs::remove_dir_all(ws.join("kiln-out"));
        let _ = fs::remove_dir_all(&cache);
        let build = kiln_cmd(&ws, &cache, &["build", "//...", "-j2"], None, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300 + 400 * round));
        let gc = kiln(&ws, &cache, &["cache", "gc", "--max-size", "0"]);
        let b = build.wait_with_output().unwrap();
        let ok = b.status.success() && gc.status.success() && snapshot(&ws) == *reference();
        // The build's results were recorded before gc ran; gc then removed
        // them all (max size 0), which is no loss: a build runs them again.
        let v = kiln(&ws, &cache, &["cache", "verify"]);
        if ok && v.status.success() {
            tally.survived += 1;
        } else {
            eprintln!(
                "gc during a build:\n{}\n{}\n{}",
                text(&b),
                text(&gc),
                text(&v)
            );
            tally.wrong += (!ok) as u32;
            tally.lost += (!v.status.success()) as u32;
        }
        recovers(&mut tally, "build after gc", &ws, &cache, &[]);
    }

    // Two builds of one workspace at once: the second waits, saying so.
    tally.runs += 1;
    let _ = fs::remove_dir_all(ws.join("kiln-out"));
    let _ = fs::remove_dir_all(&cache);
    let first = kiln_cmd(&ws, &cache, &["build", "//..."], None, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let second = kiln(&ws, &cache, &["build", "//..."]);
    let first = first.wait_with_output().unwrap();
    let waited = String::from_utf8_lossy(&second.stderr).contains("waiting for it to finish");
    if first.status.success() && second.status.success() && waited && snapshot(&ws) == *reference()
    {
        tally.survived += 1;
    } else {
        eprintln!(
            "two builds of one workspace:\n{}\n{}",
            text(&first),
            text(&second)
        );
    }
    report("contention (gc during build, two builds)", &tally);
}
