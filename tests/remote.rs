//! Remote caches and remote execution against real servers started here:
//! BuildGrid (REAPI v2 over gRPC, from PyPI), nginx with WebDAV PUT (Bazel's
//! HTTP cache protocol) and buildbox-casd with buildbox-run (a REAPI
//! execution service). Two caches share results through the server; cache
//! faults (server down, killed mid-build, a corrupted blob) never fail a
//! build; actions run on the executor give the bytes a local build gives.
//! Needs `.ci/setup` (it installs the servers).

// Integration tests drive the `kiln` binary and the servers directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, example_workspace, graph_workspace, kiln_build, repo, tree_files};

/// `kiln build ARGS` in `ws` with cache `cache`; (exit code, summary, stderr).
fn build(ws: &Path, cache: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    kiln_build(ws, cache, args, &[])
}

/// Every file under `dir/kiln-out` (relative path -> bytes), `.kiln` excluded.
fn outputs(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree_files(&dir.join("kiln-out"))
}

/// The tests of this file run one at a time: each starts servers on ports
/// found free a moment before (two tests could be handed the same one), and
/// each builds the pylon on a 2-core machine.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server process (its port, and the file its output goes to), killed
/// on drop; when a test fails, the end of the server's log is shown.
struct Server(Child, u16, PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.2).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            // The test failed: its output is what the developer sees.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("--- the server on port {} logged:\n{tail}", self.1);
            }
        }
        let _ = fs::remove_file(&self.2);
    }
}

/// A file for a server's output.
fn server_log(what: &str, port: u16) -> (PathBuf, fs::File) {
    let p = std::env::temp_dir().join(format!(
        "kiln-test-{what}-{port}-{}.log",
        std::process::id()
    ));
    let f = fs::File::create(&p).unwrap();
    (p, f)
}

fn wait_listening(port: u16, what: &str) {
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{what} did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn buildgrid() -> Server {
    let port = free_port();
    let (log, file) = server_log("buildgrid", port);
    let child = Command::new(repo().join("tests/support/remote/buildgrid.sh"))
        .args(["serve", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("tests/support/remote/buildgrid.sh (run .ci/setup)");
    wait_listening(port, "BuildGrid");
    Server(child, port, log)
}

fn nginx(root: &Path) -> Server {
    let port = free_port();
    fs::create_dir_all(root).unwrap();
    let (log, file) = server_log("nginx", port);
    let child = Command::new(repo().join("tests/support/remote/nginx.sh"))
        .args(["serve", &port.to_string()])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("tests/support/remote/nginx.sh (run .ci/setup)");
    wait_listening(port, "nginx");
    Server(child, port, log)
}

/// buildbox-casd serving CAS, ActionCache and Execution (two actions at a
/// time) with its cache in a fresh directory the script removes; `bind`
/// is KILN_BUILDBOX_BIND (extra read-only paths in its sandboxes).
fn buildbox(bind: &str) -> Server {
    let port = free_port();
    let (log, file) = server_log("buildbox", port);
    let child = Command::new(repo().join("tests/support/remote/buildbox.sh"))
        .args(["serve", &port.to_string()])
        .env("KILN_BUILDBOX_BIND", bind)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("tests/support/remote/buildbox.sh (run .ci/setup)");
    wait_listening(port, "buildbox-casd");
    Server(child, port, log)
}

/// A workspace of `n` genrules that each take a little while.
fn slow_workspace(to: &Path, n: usize) {
    fs::create_dir_all(to.join("p")).unwrap();
    fs::write(to.join("kiln.toml"), "").unwrap();
    fs::write(to.join("BUILD.star"), "").unwrap();
    let mut b = String::new();
    for i in 0..n {
        b.push_str(&format!(
            "genrule(name = \"g{i}\", outs = [\"g{i}.txt\"], cmd = \"sleep 0.1; echo {i} > $@\")\n"
        ));
    }
    fs::write(to.join("p/BUILD.star"), b).unwrap();
}

/// Build `targets` of a fresh copy of the examples into cache A (uploading
/// to `url`), then of another copy into an empty cache B: every action is a
/// remote hit and the outputs are byte-identical.
fn round_trip(tmp: &Path, url: &str, targets: &[&str]) {
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    example_workspace(&a);
    example_workspace(&b);
    let mut args = vec!["--remote-cache", url];
    args.extend_from_slice(targets);
    let (code, s, err) = build(&a, &tmp.join("cache-a"), &args);
    assert_eq!(code, 0, "{err}");
    let total = s["actions"]["total"].as_u64().unwrap();
    assert_eq!(s["actions"]["executed"].as_u64().unwrap(), total, "{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let (code, s, err) = build(&b, &tmp.join("cache-b"), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        s["actions"]["remote_hits"].as_u64().unwrap(),
        total,
        "{s}\n{err}"
    );
    assert_eq!(s["actions"]["executed"].as_u64().unwrap(), 0);
    assert!(!err.contains("WARNING"), "{err}");
    let (oa, ob) = (outputs(&a), outputs(&b));
    assert_eq!(oa.keys().collect::<Vec<_>>(), ob.keys().collect::<Vec<_>>());
    for (f, bytes) in &oa {
        assert!(bytes == &ob[f], "{f} differs");
    }
    // The traffic is recorded in cache B.
    let stats = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["cache", "stats", "--cache-dir"])
        .arg(tmp.join("cache-b"))
        .output()
        .unwrap();
    let stats = String::from_utf8_lossy(&stats.stdout).into_owned();
    assert!(stats.contains(&format!("remote hits: {total}")), "{stats}");
    assert!(stats.contains("remote bytes down: "), "{stats}");
}

#[test]
fn grpc_buildgrid_round_trip_of_the_pylon() {
    let _serial = serial();
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-remote-grpc-{}", std::process::id())));
    let server = buildgrid();
    // The whole pylon: CPython's outputs go through ByteStream (over the
    // server's batch limit), the small ones through batch calls.
    round_trip(
        &tmp.0,
        &format!("grpc://127.0.0.1:{}", server.1),
        &["//:pylon"],
    );
}

#[test]
fn http_nginx_round_trip_and_a_corrupted_blob() {
    let _serial = serial();
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-remote-http-{}", std::process::id())));
    let root = tmp.0.join("nginx-root");
    let server = nginx(&root);
    let url = format!("http://127.0.0.1:{}/cache", server.1);
    let targets = [
        "//providers/crc32c",
        "//providers/id_mux",
        "//providers/wit/...",
    ];
    round_trip(&tmp.0, &url, &targets);

    // Corrupt every stored blob of one output; a third cache must not use
    // it: the action runs locally, with a warning, and the output is right.
    let cas = root.join("cache/cas");
    let wasm = fs::read(tmp.0.join("a/kiln-out/providers/crc32c/crc32c.wasm")).unwrap();
    let mut corrupted = 0;
    for e in fs::read_dir(&cas).unwrap() {
        let p = e.unwrap().path();
        if fs::read(&p).unwrap() == wasm {
            let mut bad = wasm.clone();
            bad[100] ^= 0xff;
            fs::write(&p, bad).unwrap();
            corrupted += 1;
        }
    }
    assert_eq!(corrupted, 1);
    let c = tmp.0.join("c");
    example_workspace(&c);
    let mut args = vec!["--remote-cache", url.as_str(), "--no-remote-upload"];
    args.extend_from_slice(&targets);
    let before = fs::read_dir(&cas).unwrap().count();
    let (code, s, err) = build(&c, &tmp.0.join("cache-c"), &args);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("WARNING") && err.contains("does not match its digest"),
        "{err}"
    );
    assert!(s["actions"]["executed"].as_u64().unwrap() >= 1, "{s}");
    assert_eq!(
        fs::read(c.join("kiln-out/providers/crc32c/crc32c.wasm")).unwrap(),
        wasm,
        "the corrupted blob was not used"
    );
    // --no-remote-upload: nothing new on the server.
    assert_eq!(fs::read_dir(&cas).unwrap().count(), before);
}

#[test]
fn server_down_at_start_or_killed_mid_build() {
    let _serial = serial();
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-remote-faults-{}", std::process::id())));

    // Nothing listens: a warning, and a correct local build.
    let ws = tmp.0.join("down");
    slow_workspace(&ws, 4);
    let port = free_port();
    let (code, s, err) = build(
        &ws,
        &tmp.0.join("cache-down"),
        &[
            "--remote-cache",
            &format!("grpc://127.0.0.1:{port}"),
            "--remote-timeout",
            "5",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 4);
    assert_eq!(err.matches("WARNING").count(), 1, "warns once: {err}");
    assert_eq!(
        fs::read_to_string(ws.join("kiln-out/p/g3.txt")).unwrap(),
        "3\n"
    );

    // The server dies while the build runs: the build still succeeds.
    let ws = tmp.0.join("killed");
    slow_workspace(&ws, 40);
    let mut server = buildgrid();
    let url = format!("grpc://127.0.0.1:{}", server.1);
    let kiln = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "build",
            "--progress",
            "none",
            "-j2",
            "--remote-timeout",
            "5",
            "--remote-cache",
            &url,
            "--cache-dir",
        ])
        .arg(tmp.0.join("cache-killed"))
        .current_dir(&ws)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let _ = server.0.kill();
    let o = kiln.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("WARNING"), "{err}");
    for i in 0..40 {
        assert_eq!(
            fs::read_to_string(ws.join(format!("kiln-out/p/g{i}.txt"))).unwrap(),
            format!("{i}\n")
        );
    }
}

fn explain(ws: &Path, cache: &Path, label: &str, extra: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("explain")
        .arg(label)
        .args(extra)
        .arg("--cache-dir")
        .arg(cache)
        .current_dir(ws)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn executor_runs_a_graph_like_a_local_build() {
    let _serial = serial();
    let tmp = Tmp(std::env::temp_dir().join(format!("kiln-remote-exec-{}", std::process::id())));
    let (local, remote) = (tmp.0.join("local"), tmp.0.join("remote"));
    graph_workspace(&local, 20, 20);
    graph_workspace(&remote, 20, 20);
    let (code, s, err) = build(&local, &tmp.0.join("cache-local"), &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 400, "{err}");
    assert_eq!(s["actions"]["remote_executed"], 0, "{s}");

    let server = buildbox("");
    let url = format!("grpc://127.0.0.1:{}", server.1);
    let cache = tmp.0.join("cache-remote");
    let args = ["--remote-executor", url.as_str(), "-j", "16"];
    let (code, s, err) = build(&remote, &cache, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 400, "{s}\n{err}");
    assert_eq!(s["actions"]["remote_executed"], 400, "{s}\n{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let (a, b) = (outputs(&local), outputs(&remote));
    assert_eq!(a.len(), 400);
    assert!(a == b, "remote outputs differ from the local build's");
    let why = explain(&remote, &cache, "//p3:t4", &["--remote-executor", &url]);
    assert!(why.contains("remotely"), "{why}");

    // Again: up to date. From a fresh checkout and an empty local cache:
    // every action comes from the executor's action cache.
    let (code, s, err) = build(&remote, &cache, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 0, "{s}");
    let again = tmp.0.join("again");
    graph_workspace(&again, 20, 20);
    let (code, s, err) = build(&again, &tmp.0.join("cache-again"), &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 0, "{s}\n{err}");
    assert_eq!(s["actions"]["remote_hits"], 400, "{s}\n{err}");
    assert!(outputs(&again) == a);

    // An edit of p17/s5.txt re-runs exactly its dependents, remotely:
    // (17,5), then (18,5) and (18,i) for 7i+3 = 5 mod 20 (i = 6), and so on.
    fs::write(remote.join("p17/s5.txt"), "edited ünïcode\n").unwrap();
    let mut dirty = std::collections::BTreeSet::from([5usize]);
    let mut expected = 1;
    for _ in 18..20 {
        let next: std::collections::BTreeSet<usize> = (0..20)
            .filter(|&i| dirty.contains(&i) || dirty.contains(&((7 * i + 3) % 20)))
            .collect();
        expected += next.len();
        dirty = next;
    }
    let (code, s, err) = build(&remote, &cache, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], expected as u64, "{s}\n{err}");
    assert_eq!(s["actions"]["remote_executed"], expected as u64, "{s}");
    let out = fs::read_to_string(remote.join("kiln-out/p17/t5.out")).unwrap();
    assert!(out.ends_with("17.5\n"), "{out}");
    assert_ne!(out.as_bytes(), &a["p17/t5.out"][..]);
}

/// Total of `kiln cache stats`'s "remote bytes down" line (bytes).
fn bytes_down(cache: &Path) -> u64 {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["cache", "stats", "--cache-dir"])
        .arg(cache)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("remote bytes down: "))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no remote bytes down in:\n{text}"))
}

/// `--remote-executor URL --remote-download-outputs MODE` and `rest`.
fn exec_args<'a>(url: &'a str, mode: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--remote-executor", url, "--remote-download-outputs", mode];
    v.extend(rest);
    v
}

/// The 10x10 graph plus `//top:here`, kept local, which reads `//p9:t3`.
fn graph_with_local_consumer(to: &Path) {
    graph_workspace(to, 10, 10);
    fs::create_dir_all(to.join("top")).unwrap();
    fs::write(
        to.join("top/BUILD.star"),
        "genrule(name = \"here\", srcs = [\"//p9:t3\"], outs = [\"here.txt\"], cmd = \"wc -c < $< > $@\", tags = [\"no-remote-exec\"])\n",
    )
    .unwrap();
}

#[test]
fn executor_builds_without_the_bytes() {
    let _serial = serial();
    let tmp =
        Tmp(std::env::temp_dir().join(format!("kiln-remote-exec-bwob-{}", std::process::id())));
    let (local, ws) = (tmp.0.join("local"), tmp.0.join("ws"));
    graph_with_local_consumer(&local);
    graph_with_local_consumer(&ws);
    let (code, _, err) = build(&local, &tmp.0.join("cache-local"), &[]);
    assert_eq!(code, 0, "{err}");
    let reference = outputs(&local);
    assert_eq!(reference.len(), 101);

    let server = buildbox("");
    let url = format!("grpc://127.0.0.1:{}", server.1);
    let cache = tmp.0.join("cache");
    // `toplevel`: only the requested target's file lands in kiln-out; the
    // local action's remote input is fetched for it, nothing else is.
    let (code, s, err) = build(&ws, &cache, &exec_args(&url, "toplevel", &["//top:here"]));
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let remote = s["actions"]["remote_executed"].as_u64().unwrap();
    assert_eq!(s["actions"]["executed"], remote + 1, "{s}\n{err}");
    assert!(remote > 20, "{s}");
    let got = outputs(&ws);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["top/here.txt"], "{got:?}");
    assert_eq!(got["top/here.txt"], reference["top/here.txt"]);
    let t3 = reference["p9/t3.out"].len() as u64;
    assert_eq!(
        bytes_down(&cache),
        t3,
        "only //p9:t3's output is downloaded"
    );

    // Again with `toplevel`: nothing runs or downloads; the cached results
    // of the remote outputs are checked with the server.
    let (code, s, err) = build(&ws, &cache, &exec_args(&url, "toplevel", &["//top:here"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 0, "{s}\n{err}");
    assert_eq!(bytes_down(&cache), t3);

    // A requested intermediate comes down; with `all` every output does,
    // what ran before does not run again, and kiln-out matches the local
    // build byte for byte.
    // (//p9:t3 reads //p8:t3 and //p8:t4.)
    let (code, s, err) = build(&ws, &cache, &exec_args(&url, "toplevel", &["//p8:t3"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 0, "{s}\n{err}");
    assert_eq!(
        fs::read(ws.join("kiln-out/p8/t3.out")).unwrap(),
        reference["p8/t3.out"]
    );
    assert!(!ws.join("kiln-out/p8/t4.out").exists());
    let (code, s, err) = build(&ws, &cache, &exec_args(&url, "all", &[]));
    assert_eq!(code, 0, "{err}");
    // (The rest of the graph is new: it runs.)
    assert_eq!(s["actions"]["local_hits"], remote + 1, "{s}\n{err}");
    assert_eq!(s["actions"]["remote_executed"], 100 - remote, "{s}\n{err}");
    assert!(
        outputs(&ws) == reference,
        "kiln-out differs from the local build's"
    );

    // The server loses what it held (a fresh casd): cached results whose
    // outputs were left on it are unusable, so their actions run again
    // instead of the build failing on a missing blob.
    let w3 = tmp.0.join("w3");
    graph_with_local_consumer(&w3);
    let c3 = tmp.0.join("cache3");
    // (A server of its own: nothing from the builds above.)
    drop(server);
    let server = buildbox("");
    let url = format!("grpc://127.0.0.1:{}", server.1);
    let (code, _, err) = build(&w3, &c3, &exec_args(&url, "toplevel", &["//top:here"]));
    assert_eq!(code, 0, "{err}");
    drop(server);
    let server = buildbox("");
    let url = format!("grpc://127.0.0.1:{}", server.1);
    fs::remove_dir_all(w3.join("kiln-out")).unwrap();
    let (code, s, err) = build(&w3, &c3, &exec_args(&url, "toplevel", &["//p9:t3"]));
    assert_eq!(code, 0, "{err}");
    // //p9:t3's own output was fetched before: only its inputs run again.
    assert_eq!(s["actions"]["remote_executed"], remote - 1, "{s}\n{err}");
    assert_eq!(
        fs::read(w3.join("kiln-out/p9/t3.out")).unwrap(),
        reference["p9/t3.out"]
    );
    drop(server);
}

#[test]
fn executor_failures_and_faults() {
    let _serial = serial();
    let tmp =
        Tmp(std::env::temp_dir().join(format!("kiln-remote-exec-faults-{}", std::process::id())));
    let ws = tmp.0.join("ws");
    fs::create_dir_all(ws.join("p")).unwrap();
    fs::write(ws.join("kiln.toml"), "").unwrap();
    fs::write(ws.join("BUILD.star"), "").unwrap();
    fs::write(ws.join("p/in.txt"), "declared\n").unwrap();
    fs::write(
        ws.join("p/BUILD.star"),
        concat!(
            "genrule(name = \"fail\", outs = [\"f.txt\"], cmd = \"echo 'it broke: ünïcode' >&2; exit 3\")\n",
            "genrule(name = \"sneaky\", outs = [\"s.txt\"], cmd = \"cat p/in.txt > $@\")\n",
            "genrule(name = \"slow\", outs = [\"t.txt\"], cmd = \"sleep 30; echo > $@\", timeout = 1)\n",
        ),
    )
    .unwrap();
    let server = buildbox("");
    let url = format!("grpc://127.0.0.1:{}", server.1);
    let cache = tmp.0.join("cache");

    // A failing command: exit 1 with its stderr, not re-run locally.
    let (code, s, err) = build(&ws, &cache, &["--remote-executor", &url, "//p:fail"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("it broke: ünïcode"), "{err}");
    assert_eq!(s["actions"]["executed"], 0, "{s}");
    assert!(!ws.join("kiln-out/p/f.txt").exists());

    // An undeclared input fails remotely as it does locally.
    let (code, _, local_err) = build(&ws, &tmp.0.join("cache-local"), &["//p:sneaky"]);
    assert_eq!(code, 1, "{local_err}");
    let (code, _, err) = build(&ws, &cache, &["--remote-executor", &url, "//p:sneaky"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("p/in.txt"), "{err}");
    assert!(!ws.join("kiln-out/p/s.txt").exists());

    // The rule's timeout reaches the executor.
    let t = Instant::now();
    let (code, _, err) = build(&ws, &cache, &["--remote-executor", &url, "//p:slow"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after 1 s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
    drop(server);

    // Nothing listens: without fallback, exit 1 naming the endpoint.
    let gone = format!("grpc://127.0.0.1:{}", free_port());
    let w2 = tmp.0.join("down");
    slow_workspace(&w2, 4);
    let (code, _, err) = build(
        &w2,
        &tmp.0.join("cache-down"),
        &["--remote-executor", &gone],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&gone[7..]), "{err}");
    assert!(!w2.join("kiln-out/p/g0.txt").exists());

    // Killed mid-build, with and without fallback.
    for fallback in [true, false] {
        let w = tmp.0.join(format!("killed-{fallback}"));
        slow_workspace(&w, 40);
        let mut server = buildbox("");
        let url = format!("grpc://127.0.0.1:{}", server.1);
        let c = tmp.0.join(format!("cache-killed-{fallback}"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
        cmd.args([
            "build",
            "--progress",
            "none",
            "-j4",
            "--remote-executor",
            &url,
        ]);
        if fallback {
            cmd.arg("--remote-local-fallback");
        }
        let kiln = cmd
            .arg("--cache-dir")
            .arg(&c)
            .current_dir(&w)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = server.0.kill();
        let o = kiln.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        if fallback {
            assert!(o.status.success(), "{err}");
            assert_eq!(err.matches("WARNING").count(), 1, "{err}");
            for i in 0..40 {
                assert_eq!(
                    fs::read_to_string(w.join(format!("kiln-out/p/g{i}.txt"))).unwrap(),
                    format!("{i}\n")
                );
            }
        } else {
            assert_eq!(o.status.code(), Some(1), "{err}");
            assert!(err.contains(&url[7..]), "{err}");
            // What is in kiln-out is whole; a rebuild without the executor
            // completes it.
            for i in 0..40 {
                if let Ok(t) = fs::read_to_string(w.join(format!("kiln-out/p/g{i}.txt"))) {
                    assert_eq!(t, format!("{i}\n"));
                }
            }
            let (code, _, err) = build(&w, &c, &[]);
            assert_eq!(code, 0, "{err}");
        }
    }
}

/// rustup's home (the Rust toolchain's files are under it), for the
/// executor's sandboxes.
fn rustup_home() -> PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".rustup"))
}

#[test]
fn executor_builds_the_pylon_like_a_local_build() {
    let _serial = serial();
    let tmp =
        Tmp(std::env::temp_dir().join(format!("kiln-remote-exec-pylon-{}", std::process::id())));
    let (a, b) = (tmp.0.join("local"), tmp.0.join("remote"));
    example_workspace(&a);
    example_workspace(&b);
    // The local reference from kiln's own cache, which the wasm tests (or
    // `.ci/pylon`) fill: cold only when they have not run.
    let shared = support::shared_cache();
    let (code, _, err) = build(&a, &shared, &["//:pylon"]);
    assert_eq!(code, 0, "{err}");

    // The executor: the toolchains kiln's keys name (clang and wasi-libc
    // under /usr, Rust under rustup's home, zig and binaryen under
    // /opt/kiln) at the same paths.
    let home = rustup_home();
    let server = buildbox(&format!(
        "{}:{} /opt/kiln:/opt/kiln",
        home.display(),
        home.display()
    ));
    let port = server.1;
    let url = format!("grpc://127.0.0.1:{port}");
    let cache = tmp.0.join("cache");
    let profile = tmp.0.join("profile.json");
    let (code, s, err) = build(
        &b,
        &cache,
        &[
            "--remote-executor",
            &url,
            "--remote-download-outputs",
            "toplevel",
            "--profile",
            profile.to_str().unwrap(),
            "//:pylon",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("WARNING"), "{err}");
    // Every spawned action ran on casd (CPython, zlib, the C compiles and
    // links, cargo); the in-process ones and the network fetch here.
    let profile: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&profile).unwrap()).unwrap();
    let mut local = std::collections::BTreeSet::new();
    let mut remote = std::collections::BTreeSet::new();
    for e in profile["traceEvents"].as_array().unwrap() {
        let mnemonic = e["name"]
            .as_str()
            .unwrap_or("")
            .rsplit(' ')
            .next()
            .unwrap_or("")
            .to_owned();
        match e["cat"].as_str() {
            Some("executed") => local.insert(mnemonic),
            Some("remote_executed") => remote.insert(mnemonic),
            _ => false,
        };
    }
    let in_process = [
        "Write",
        "WitBindgenC",
        "WitBindgenPy",
        "WitCheck",
        "Componentize",
        "Compose",
        "InspectComponent",
        "DynlinkPlan",
        "StripCustomSections",
        "DynlinkCheck",
        "PackStdlib",
        "CargoFetch",
        "CrateFetch",
    ];
    assert!(
        local.iter().all(|m| in_process.contains(&m.as_str())),
        "ran here: {local:?}"
    );
    for m in [
        "CPythonBuild",
        "ZlibBuild",
        "CcCompile",
        "CcLink",
        "CargoBuild",
        "CxxLibc",
        "Asyncify",
    ] {
        assert!(remote.contains(m), "{m} did not run remotely: {remote:?}");
    }
    assert_eq!(s["actions"]["executed"], s["actions"]["total"], "{s}");
    assert!(
        fs::read(a.join("kiln-out/pylon.wasm")).unwrap()
            == fs::read(b.join("kiln-out/pylon.wasm")).unwrap(),
        "pylon.wasm differs from the local build's"
    );
    // With `toplevel` the intermediates (CPython's build, the objects, the
    // core module) stayed on casd: kiln-out holds the pylon's own files.
    let (ours, theirs) = (outputs(&a), outputs(&b));
    let left: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    assert!(
        theirs.keys().all(|k| ours.contains_key(k))
            && left.contains(&&"pylon.core.wasm".to_owned())
            && left.iter().any(|k| k.ends_with(".o")),
        "left remote with toplevel: {left:?}"
    );
    // `kiln run` with the executor: nothing to run, the pylon runs here.
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["run", "--remote-executor", &url, "--remote-download-outputs", "toplevel", "--cache-dir"])
        .arg(&cache)
        .args(["//:pylon", "--", "-c", "import zlib, crc32c; print(hex(crc32c.crc32c(b'123456789')), zlib.crc32('abc'.encode()), 'ünï')"])
        .current_dir(&b)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out, "0xe3069283 891568578 ünï\n");
}
