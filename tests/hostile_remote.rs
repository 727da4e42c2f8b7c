//! Remote caches that lie: a small server written for these tests
//! (`support/hostile_remote.py`, REAPI over gRPC or Bazel's HTTP protocol)
//! is first filled honestly by a build that uploads, then answers every
//! action-cache lookup with a poisoned result: output paths with `..` or
//! absolute ones, blobs that do not match their digests, an absurd blob
//! size, truncated downloads, answers slower than `--remote-timeout`, the
//! result of a different action. Each is rejected: the build succeeds, every
//! action runs locally, kiln warns once, `kiln-out/` holds exactly the right
//! files and nothing is written outside it.
//!
//! Needs the BuildGrid venv (`tests/support/remote/buildgrid.sh setup`, run
//! by `.ci/setup`) for its python with grpcio and the REAPI messages; the
//! tests skip without it, except under `CI=true`.

// Integration tests drive the `kiln` binary and the server directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, kiln_build, repo, tree_files};

/// The hostile modes of the server, each tested against a fresh build,
/// and what kiln's warning says for each (gRPC, HTTP).
const MODES: [(&str, &str, &str); 7] = [
    ("dotdot", "climbs out with `..`", "climbs out with `..`"),
    ("absolute", "is absolute", "is absolute"),
    (
        "digest-mismatch",
        "does not match its digest",
        "does not match its digest",
    ),
    (
        "absurd-size",
        "claims 4611686018427387904 bytes",
        "claims 4611686018427387904 bytes",
    ),
    ("truncated", "ByteStream ended after", "downloading outputs"),
    ("other-action", "declared ones", "declared ones"),
    ("slow", "no answer within", "timed out"),
];

/// `--remote-timeout` of every build here (seconds).
const TIMEOUT: u64 = 2;

/// The venv's python, or `None` (the test skips) when it is missing and
/// this is not CI.
fn python() -> Option<PathBuf> {
    let venv = std::env::var_os("KILN_BUILDGRID_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/buildgrid-venv"));
    let py = venv.join("bin/python");
    let usable = Command::new(&py)
        .args(["-c", "import grpc, buildgrid._protos"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if usable {
        return Some(py);
    }
    let why = format!(
        "{} with grpcio and BuildGrid is missing (run tests/support/remote/buildgrid.sh setup)",
        py.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    // A skipped test says why.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("skipped: {why}");
    }
    None
}

/// The hostile server: its port, its stdin (modes are switched by a line
/// on it; closing it stops the server), its stdout (answers), its log.
struct Hostile {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    port: u16,
    log: PathBuf,
}

impl Hostile {
    fn start(py: &Path, protocol: &str, poison: &Path, log: PathBuf) -> Hostile {
        let mut child = Command::new(py)
            .arg(repo().join("tests/support/hostile_remote.py"))
            .args(["--protocol", protocol, "--poison-dir"])
            .arg(poison)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("tests/support/hostile_remote.py");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the server did not print its port ({line:?}):\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Hostile {
            child,
            stdin,
            stdout,
            port,
            log,
        }
    }

    /// Switch to `mode` (in effect when this returns).
    fn mode(&mut self, mode: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "mode {mode}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("mode {mode}"));
    }

    fn url(&self, protocol: &str) -> String {
        match protocol {
            "grpc" => format!("grpc://127.0.0.1:{}", self.port),
            _ => format!("http://127.0.0.1:{}/cache", self.port),
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        // Closing stdin stops it; a kill makes sure.
        drop(self.stdin.take());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            // The test failed: its output is what the developer sees.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("--- the server logged (last lines):");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let _ = fs::remove_file(&self.log);
    }
}

/// Three genrules: one reads a source, one reads it and has two outputs,
/// one writes 200 kB.
fn workspace(to: &Path) {
    fs::create_dir_all(to.join("p")).unwrap();
    fs::write(to.join("kiln.toml"), "").unwrap();
    fs::write(to.join("BUILD.star"), "").unwrap();
    fs::write(to.join("p/in.txt"), "source\n").unwrap();
    fs::write(
        to.join("p/BUILD.star"),
        concat!(
            "genrule(name = \"a\", srcs = [\"in.txt\"], outs = [\"a.txt\"], cmd = \"cat $< > $@; echo alpha >> $@\")\n",
            "genrule(name = \"b\", srcs = [\":a\"], outs = [\"b1.txt\", \"b2.txt\"], cmd = \"cat $< > $(RULEDIR)/b1.txt; echo beta > $(RULEDIR)/b2.txt\")\n",
            "genrule(name = \"c\", outs = [\"c.txt\"], cmd = \"head -c 200000 /dev/zero | tr '\\\\0' c > $@\")\n",
        ),
    )
    .unwrap();
}

/// `kiln build ARGS` in `ws` with cache `cache`; (exit code, summary, stderr).
fn build(ws: &Path, cache: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
    kiln_build(ws, cache, args, &["--remote-timeout", &TIMEOUT.to_string()])
}

/// Every file under `dir` (relative path -> bytes), `kiln-out/.kiln` excluded.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    tree_files(dir)
}

/// Fill a fresh server honestly, check that it serves hits, then build a
/// fresh checkout against each hostile mode.
fn hostile(protocol: &str) {
    let Some(py) = python() else { return };
    let tmp =
        Tmp(std::env::temp_dir().join(format!("kiln-hostile-{protocol}-{}", std::process::id())));
    fs::create_dir_all(&tmp.0).unwrap();
    // Where `absolute` points outputs; nothing may appear in it.
    let poison = tmp.0.join("poison");
    let log = std::env::temp_dir().join(format!(
        "kiln-test-hostile-{protocol}-{}.log",
        std::process::id()
    ));
    let mut server = Hostile::start(&py, protocol, &poison, log);
    let url = server.url(protocol);
    let remote = ["--remote-cache", url.as_str()];

    // Honest: the first build uploads, a second checkout gets every action
    // from the server.
    let seed = tmp.0.join("seed/ws");
    workspace(&seed);
    let (code, s, err) = build(&seed, &tmp.0.join("seed/cache"), &remote);
    assert_eq!(code, 0, "{err}");
    let total = s["actions"]["total"].as_u64().unwrap();
    assert_eq!(total, 3, "{s}");
    assert_eq!(s["actions"]["executed"], total, "{s}\n{err}");
    assert!(!err.contains("WARNING"), "{err}");
    let expected = files(&seed.join("kiln-out"));
    assert_eq!(expected.len(), 4, "{:?}", expected.keys());
    let hit = tmp.0.join("hit/ws");
    workspace(&hit);
    let (code, s, err) = build(&hit, &tmp.0.join("hit/cache"), &remote);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["remote_hits"], total, "{s}\n{err}");
    assert!(!err.contains("WARNING"), "{err}");
    assert!(files(&hit.join("kiln-out")) == expected);

    for (i, (mode, grpc_says, http_says)) in MODES.iter().enumerate() {
        server.mode(mode);
        let dir = tmp.0.join(format!("m{i}"));
        let ws = dir.join("ws");
        workspace(&ws);
        let sources = files(&ws);
        let t = Instant::now();
        let (code, s, err) = build(&ws, &dir.join("cache"), &remote);
        let took = t.elapsed();
        let what = format!("{protocol} {mode}: {s}\n{err}");
        assert_eq!(code, 0, "{what}");
        assert_eq!(s["actions"]["total"], total, "{what}");
        assert_eq!(s["actions"]["executed"], total, "{what}");
        assert_eq!(s["actions"]["remote_hits"], 0, "{what}");
        let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("WARNING")).collect();
        assert_eq!(warnings.len(), 1, "warns once: {what}");
        assert!(warnings[0].contains(&url), "{what}");
        let says = if protocol == "grpc" {
            grpc_says
        } else {
            http_says
        };
        assert!(warnings[0].contains(says), "expected {says:?}: {what}");
        assert!(!err.contains("panicked"), "{what}");
        // kiln-out holds the right files, the workspace nothing else.
        assert!(files(&ws.join("kiln-out")) == expected, "{what}");
        let mut now = files(&ws);
        now.retain(|k, _| !k.starts_with("kiln-out/"));
        assert!(now == sources, "{what}: {:?}", now.keys());
        if *mode == "slow" {
            // One timeout, not three (at least 6.4 s with the retries'
            // back-off): a request that timed out is not tried again.
            assert!(took < Duration::from_secs(3 * TIMEOUT), "{took:?}: {what}");
        }
        server.mode("honest");
    }

    // Nothing was written outside a kiln-out or a cache: no `escape` file
    // next to or above a workspace, nothing at the absolute paths.
    assert!(!poison.exists(), "{:?}", files(&poison).keys());
    let stray: Vec<String> = files(&tmp.0)
        .into_keys()
        .filter(|k| {
            let name = k.rsplit('/').next().unwrap_or(k);
            name.starts_with("escape") || name.starts_with("absolute")
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    drop(server);
}

#[test]
fn grpc_hostile_server() {
    hostile("grpc");
}

#[test]
fn http_hostile_server() {
    hostile("http");
}
