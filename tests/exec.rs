//! `kiln build` end to end through the binary: incrementality, early
//! cutoff, the sandbox, the local cache under corruption, concurrency and
//! kills, interrupts, `explain`, `--summary-json`, `--profile`, `clean` and
//! `cache stats|gc`. Each test makes its own workspace and cache in a
//! temporary directory and removes them.

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Ws {
    dir: PathBuf,
}

impl Ws {
    fn new(name: &str) -> Ws {
        let dir = std::env::temp_dir().join(format!("kiln-exec-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("ws")).unwrap();
        fs::write(dir.join("ws/kiln.toml"), "").unwrap();
        fs::write(dir.join("ws/BUILD.star"), "").unwrap();
        Ws { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("ws")
    }

    fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.root().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root().join(rel)).unwrap()
    }

    fn kiln_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let summary = self.dir.join("summary.json");
        let _ = fs::remove_file(&summary);
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .arg("--cache-dir")
            .arg(self.cache())
            .current_dir(cwd)
            .output()
            .unwrap()
    }

    /// `kiln query EXPR` (no cache flag: query takes none); its stdout,
    /// after checking it succeeded.
    fn query(&self, expr: &str) -> String {
        self.query_with(&[expr])
    }

    /// `kiln query ARGS`; its stdout, after checking it succeeded.
    fn query_with(&self, args: &[&str]) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("query")
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `kiln build ARGS`; returns (exit code, summary json, stderr).
    fn build(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        self.build_in(&self.root(), args)
    }

    fn build_in(&self, cwd: &Path, args: &[&str]) -> (i32, serde_json::Value, String) {
        let summary = self.dir.join("summary.json");
        let mut all = vec![
            "build",
            "--progress",
            "none",
            "--summary-json",
            summary.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let o = self.kiln_in(cwd, &all);
        let s = fs::read_to_string(&summary)
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or(serde_json::Value::Null);
        (
            o.status.code().unwrap_or(-1),
            s,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// Build that must succeed; returns the number of executed actions.
    fn executed(&self, args: &[&str]) -> u64 {
        let (code, s, err) = self.build(args);
        assert_eq!(code, 0, "build failed: {err}");
        s["actions"]["executed"].as_u64().unwrap()
    }
}

impl Drop for Ws {
    fn drop(&mut self) {
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&self.dir)
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A three-level graph: a/x <- b/y (via a normalizing step) <- c/z.
fn chain(ws: &Ws) {
    ws.write("a/in.txt", "hello\n");
    ws.write("a/other.txt", "other\n");
    ws.write(
        "a/BUILD.star",
        r#"
genrule(name = "upper", srcs = ["in.txt"], outs = ["upper.txt"], cmd = "tr a-z A-Z < $< > $@")
genrule(name = "count", srcs = [":upper"], outs = ["count.txt"], cmd = "wc -c < $< | tr -d ' ' > $@")
genrule(name = "other", srcs = ["other.txt"], outs = ["other.out"], cmd = "cat $< > $@")
"#,
    );
    ws.write(
        "b/BUILD.star",
        r#"
genrule(name = "size_class", srcs = ["//a:count"], outs = ["class.txt"], cmd = "if [ $$(cat $<) -gt 100 ]; then echo big; else echo small; fi > $@")
genrule(name = "final", srcs = [":size_class", "//a:other"], outs = ["final.txt"], cmd = "cat $(SRCS) > $@")
"#,
    );
}

#[test]
fn incremental_builds_do_the_least_work() {
    let ws = Ws::new("incr");
    chain(&ws);
    let (code, s, err) = ws.build(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["total"], 5);
    assert_eq!(s["actions"]["executed"], 5);
    assert_eq!(s["actions"]["remote_hits"], 0);
    assert_eq!(
        s["outputs"]["//b:final"],
        serde_json::json!(["kiln-out/b/final.txt"])
    );
    assert_eq!(ws.read("kiln-out/a/upper.txt"), "HELLO\n");
    assert_eq!(ws.read("kiln-out/b/final.txt"), "small\nother\n");
    assert!(err.contains("5 actions: 5 executed, 0 cached"), "{err}");

    // A second build runs nothing.
    assert_eq!(ws.executed(&[]), 0);

    // Touching every source (same bytes) runs nothing.
    for f in ["a/in.txt", "a/other.txt"] {
        let p = ws.root().join(f);
        let t = fs::File::options().write(true).open(&p).unwrap();
        t.set_modified(std::time::SystemTime::now() + Duration::from_secs(3))
            .unwrap();
    }
    assert_eq!(ws.executed(&[]), 0);

    // Editing one source runs exactly what depends on it; `count` changes
    // (6 -> 9 bytes) but `size_class` writes the same bytes, so `final`
    // does not run (early cutoff).
    ws.write("a/in.txt", "hello!!!\n");
    assert_eq!(ws.executed(&[]), 3);
    assert_eq!(ws.read("kiln-out/a/count.txt"), "9\n");
    let explain = ws.kiln_in(&ws.root(), &["explain", "//b:final"]);
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(
        text.contains("//a:upper#0 Genrule: executed: input `a/in.txt` changed"),
        "{text}"
    );
    assert!(
        text.contains("//b:size_class#0 Genrule: executed: input `kiln-out/a/count.txt` changed"),
        "{text}"
    );
    assert!(
        text.contains("//b:final#0 Genrule: cached: outputs were up to date"),
        "{text}"
    );
    assert!(
        text.contains("//a:other#0 Genrule: cached: outputs were up to date"),
        "{text}"
    );

    // Deleting kiln-out restores everything from the cache.
    fs::remove_dir_all(ws.root().join("kiln-out")).unwrap();
    let (code, s, _) = ws.build(&[]);
    assert_eq!(code, 0);
    assert_eq!(s["actions"]["executed"], 0);
    assert_eq!(s["actions"]["local_hits"], 5);
    assert_eq!(ws.read("kiln-out/b/final.txt"), "small\nother\n");
    let explain = ws.kiln_in(&ws.root(), &["explain", "//a:upper"]);
    let text = String::from_utf8_lossy(&explain.stdout);
    assert!(
        text.contains("cached: restored from the local cache"),
        "{text}"
    );

    // Changing a command re-runs that action and says why.
    let build = ws
        .read("a/BUILD.star")
        .replace("cat $< > $@", "cat $< $< > $@");
    ws.write("a/BUILD.star", &build);
    assert_eq!(ws.executed(&[]), 2);
    let text = String::from_utf8_lossy(&ws.kiln_in(&ws.root(), &["explain", "//a:other"]).stdout)
        .into_owned();
    assert!(
        text.contains("//a:other#0 Genrule: executed: command changed"),
        "{text}"
    );

    // A new target is a new action.
    ws.write(
        "c/BUILD.star",
        "genrule(name = \"n\", srcs = [], outs = [\"n.txt\"], cmd = \"echo n > $@\")\n",
    );
    assert_eq!(ws.executed(&["//c:n"]), 1);
    let text =
        String::from_utf8_lossy(&ws.kiln_in(&ws.root(), &["explain", "//c:n"]).stdout).into_owned();
    assert!(text.contains("new action"), "{text}");
}

/// Run a system tool that must succeed.
fn sh(cwd: &Path, script: &str) {
    let o = Command::new("/bin/bash")
        .args(["-c", script])
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A genrule copying `a/a.txt`, built until its records are settled: the
/// sources and outputs were last changed well over a timestamp tick before
/// the last build, so nothing is racily recorded any more.
fn copy_workspace(ws: &Ws) {
    ws.write("a/a.txt", "aaaa\n");
    ws.write(
        "a/BUILD.star",
        "genrule(name = \"copy\", srcs = [\"a.txt\"], outs = [\"copy.txt\"], cmd = \"cat $< > $@\")\n",
    );
    assert_eq!(ws.executed(&[]), 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ws.executed(&["--profile", "/dev/null"]), 0);
    assert_eq!(ws.executed(&[]), 0);
    assert_eq!(ws.read("kiln-out/a/copy.txt"), "aaaa\n");
}

#[test]
fn same_size_edits_that_keep_the_mtime_are_rebuilt() {
    // `--profile` skips the persisted no-op record, so each case runs on
    // the no-op fast path and on the full path.
    for (case, full_path) in [
        ("cp-p", false),
        ("cp-p", true),
        ("touch-r", false),
        ("touch-r", true),
    ] {
        let ws = Ws::new(&format!("samesize-{case}-{full_path}"));
        copy_workspace(&ws);
        let a = ws.root().join("a");
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let before = (
            fs::metadata(a.join("a.txt")).unwrap(),
            ino(&a.join("a.txt")),
        );
        match case {
            // Another file of the same size and mtime copied over it.
            "cp-p" => sh(
                &a,
                "printf 'bbbb\\n' > b.txt && touch -r a.txt b.txt && cp -p b.txt a.txt",
            ),
            // Rewritten in place, the old mtime put back.
            _ => sh(
                &a,
                "touch -r a.txt ref && echo bbbb > a.txt && touch -r ref a.txt",
            ),
        }
        let after = fs::metadata(a.join("a.txt")).unwrap();
        assert_eq!(after.len(), before.0.len());
        assert_eq!(after.modified().unwrap(), before.0.modified().unwrap());
        assert_eq!(ino(&a.join("a.txt")), before.1, "{case}: same inode");
        let args: &[&str] = if full_path {
            &["--profile", "/dev/null"]
        } else {
            &[]
        };
        assert_eq!(ws.executed(args), 1, "{case}, full path: {full_path}");
        assert_eq!(ws.read("kiln-out/a/copy.txt"), "bbbb\n", "{case}");
        assert_eq!(ws.executed(&[]), 0);
    }
}

/// A loop-mounted ext4 with 128-byte inodes: whole-second timestamps, so
/// two writes within one second leave mtime and ctime unchanged.
struct CoarseFs {
    image: PathBuf,
    mount: PathBuf,
}

impl CoarseFs {
    fn new(name: &str) -> CoarseFs {
        let base = std::env::temp_dir().join(format!("kiln-coarse-{name}-{}", std::process::id()));
        let (image, mount) = (base.with_extension("img"), base);
        fs::create_dir_all(&mount).unwrap();
        let script = format!(
            "truncate -s 64M {img} && mkfs.ext4 -q -F -I 128 {img} 2>/dev/null && mount -o loop {img} {mnt}",
            img = image.display(),
            mnt = mount.display()
        );
        let o = Command::new("/bin/bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "this test needs root and a loop device to mount a filesystem with whole-second timestamps: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        CoarseFs { image, mount }
    }
}

impl Drop for CoarseFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = fs::remove_dir_all(&self.mount);
        let _ = fs::remove_file(&self.image);
    }
}

#[test]
fn an_edit_within_the_same_timestamp_tick_is_rebuilt() {
    let coarse = CoarseFs::new("tick");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    for full_path in [false, true] {
        let ws = Ws {
            dir: coarse.mount.join(format!("ws-{full_path}")),
        };
        fs::create_dir_all(ws.root()).unwrap();
        ws.write("kiln.toml", "");
        ws.write("BUILD.star", "");
        copy_workspace(&ws);
        let args: &[&str] = if full_path {
            &["--profile", "/dev/null"]
        } else {
            &[]
        };
        // Write, build and write again (same size) within one second, so
        // the file's timestamps cannot tell the two writes apart.
        let state = || {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(ws.root().join("a/a.txt")).unwrap();
            (
                m.len(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.ino(),
            )
        };
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= 10, "could not fit a build into one second");
            // Start just after a second begins (the kernel's timestamp
            // clock lags the wall clock by up to a tick).
            let wait = 1_000_000_000 - now().subsec_nanos();
            std::thread::sleep(Duration::from_nanos(wait as u64 + 30_000_000));
            let (first, then) = (
                format!("{:04}\n", 2 * tries),
                format!("{:04}\n", 2 * tries + 1),
            );
            ws.write("a/a.txt", &first);
            let recorded = state();
            assert_eq!(ws.executed(args), 1);
            assert_eq!(ws.read("kiln-out/a/copy.txt"), first);
            ws.write("a/a.txt", &then);
            if state() == recorded {
                break;
            }
        }
        assert_eq!(
            ws.executed(args),
            1,
            "an edit within the tick, full path: {full_path}"
        );
        assert_eq!(
            ws.read("kiln-out/a/copy.txt"),
            format!("{:04}\n", 2 * tries + 1)
        );
        assert_eq!(ws.executed(args), 0);
    }
}

#[test]
fn make_variables_expand_to_paths_that_exist_in_the_sandbox() {
    let ws = Ws::new("makevars");
    ws.write("a/in.txt", "données 数据\n");
    ws.write(
        "a/BUILD.star",
        r#"
genrule(name = "gen", srcs = ["in.txt"], outs = ["x.txt", "y.txt"], cmd = "cp $< $(RULEDIR)/x.txt && cp $< $(@D)/y.txt")
genrule(
    name = "use",
    srcs = [":gen"],
    outs = ["sub/out.txt"],
    cmd = "cat $(execpaths :gen) > $@ && ls $(GENDIR)/a $(BINDIR)/a/x.txt >> $@ && echo $(rootpaths :gen) '$$$$' >> $@ && test -d $(@D)",
)
"#,
    );
    assert_eq!(ws.executed(&[]), 2);
    assert_eq!(
        ws.read("kiln-out/a/sub/out.txt"),
        "données 数据\ndonnées 数据\nkiln-out/a/x.txt\n\nkiln-out/a:\nsub\nx.txt\ny.txt\na/x.txt a/y.txt $$\n"
    );
    // An undefined variable fails analysis (exit 2) naming the BUILD file,
    // instead of running as a shell command substitution.
    ws.write(
        "b/BUILD.star",
        "genrule(name = \"b\", srcs = [], outs = [\"b.txt\"], cmd = \"echo $(FOO) > $@\")\n",
    );
    let (code, _, err) = ws.build(&["//b"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "b/BUILD.star:1:1: in the `cmd` attribute of genrule `//b:b`: $(FOO) not defined"
        ),
        "{err}"
    );
    assert!(!ws.root().join("kiln-out/b/b.txt").exists());
}

#[test]
fn checkouts_in_different_directories_share_the_cache() {
    let ws = Ws::new("share");
    chain(&ws);
    assert_eq!(ws.executed(&[]), 5);
    let copy = ws.dir.join("elsewhere");
    let st = Command::new("cp")
        .arg("-r")
        .arg(ws.root())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    fs::remove_dir_all(copy.join("kiln-out")).unwrap();
    let (code, s, err) = ws.build_in(&copy, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 0, "keys hold no absolute paths");
    assert_eq!(
        fs::read_to_string(copy.join("kiln-out/b/final.txt")).unwrap(),
        "small\nother\n"
    );
}

#[test]
fn sandbox_holds_only_declared_inputs() {
    let ws = Ws::new("sandbox");
    ws.write("a/secret.txt", "secret\n");
    ws.write("a/in.txt", "in\n");
    let abs = ws.root().join("a/secret.txt");
    // A server the actions would reach if they had the host's network.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    ws.write(
        "a/BUILD.star",
        &format!(
            r#"
genrule(name = "relative", srcs = ["in.txt"], outs = ["r.txt"], cmd = "cat a/secret.txt > $@")
genrule(name = "absolute", srcs = ["in.txt"], outs = ["abs.txt"], cmd = "cat {} > $@")
genrule(name = "no_output", srcs = [], outs = ["never.txt"], cmd = "true")
genrule(name = "network", srcs = [], outs = ["net.txt"], cmd = "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected > $@")
genrule(name = "env", srcs = ["in.txt"], outs = ["env.txt"], cmd = "echo $$HOME $$LANG $$SOURCE_DATE_EPOCH > $@; ls -A > kiln-out/a/listing.txt; cat kiln-out/a/listing.txt >> $@")
"#,
            abs.display(),
            port = port,
        ),
    );
    let (code, s, err) = ws.build(&["-k", "//a:all"]);
    drop(listener);
    assert_eq!(code, 1, "{err}");
    let iso = &s["sandbox"];
    let expected_failures =
        2 + (iso["workspace_hidden"] == true) as u64 + (iso["network_isolated"] == true) as u64;
    assert_eq!(s["actions"]["failed"], expected_failures, "{err}");
    assert!(
        err.contains("ERROR: //a:relative#0 failed (Genrule): the command exited with status 1"),
        "{err}"
    );
    assert!(
        err.contains("cat: a/secret.txt: No such file or directory"),
        "{err}"
    );
    assert!(
        err.contains("  command: /bin/bash -c 'cat a/secret.txt > kiln-out/a/r.txt'"),
        "{err}"
    );
    assert!(
        err.contains("did not create its declared output(s) `kiln-out/a/never.txt`"),
        "{err}"
    );
    // Where the kernel allows namespaces, the network and the workspace
    // are out of reach; where it does not, the summary says so.
    if iso["network_isolated"] == true {
        assert!(err.contains("//a:network#0 failed"), "{err}");
    } else {
        assert!(iso["note"].as_str().unwrap().contains("network"), "{s}");
    }
    if iso["workspace_hidden"] == true {
        assert!(err.contains("//a:absolute#0 failed"), "{err}");
    } else {
        assert!(
            iso["note"].as_str().unwrap().contains("absolute path"),
            "{s}"
        );
    }
    // The environment is scrubbed and the sandbox holds only the input.
    assert_eq!(
        ws.read("kiln-out/a/env.txt"),
        "/nonexistent C 0\na\nkiln-out\n"
    );
    // Nothing partial was left for failed actions.
    assert!(!ws.root().join("kiln-out/a/r.txt").exists());
    assert!(!ws.root().join("kiln-out/a/never.txt").exists());
}

#[test]
fn corrupted_blobs_are_detected_and_rebuilt() {
    let ws = Ws::new("corrupt");
    chain(&ws);
    assert_eq!(ws.executed(&[]), 5);
    // Corrupt every blob in the cache, then lose the outputs.
    let blobs = ws.cache().join("blobs");
    for shard in fs::read_dir(&blobs).unwrap() {
        for b in fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = b.unwrap().path();
            let mut perm = fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            fs::set_permissions(&p, perm).unwrap();
            fs::write(&p, "garbage").unwrap();
        }
    }
    fs::remove_dir_all(ws.root().join("kiln-out")).unwrap();
    let (code, s, err) = ws.build(&[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 5, "every corrupt entry re-runs");
    assert_eq!(ws.read("kiln-out/b/final.txt"), "small\nother\n");
    let text = String::from_utf8_lossy(&ws.kiln_in(&ws.root(), &["explain", "//a:upper"]).stdout)
        .into_owned();
    assert!(
        text.contains("executed: cache entry corrupt: blob"),
        "{text}"
    );
}

/// Many independent slow-ish actions, for concurrency and kill tests.
fn wide(ws: &Ws, n: usize, sleep: &str) {
    let mut b = String::new();
    for i in 0..n {
        b.push_str(&format!(
            "genrule(name = \"t{i}\", srcs = [], outs = [\"t{i}.txt\"], cmd = \"sleep {sleep}; echo {i} > $@\")\n"
        ));
    }
    ws.write("w/BUILD.star", &b);
}

fn check_wide(root: &Path, n: usize) {
    for i in 0..n {
        assert_eq!(
            fs::read_to_string(root.join(format!("kiln-out/w/t{i}.txt"))).unwrap(),
            format!("{i}\n")
        );
    }
}

#[test]
fn two_processes_share_one_cache() {
    let ws = Ws::new("concurrent");
    wide(&ws, 12, "0.05");
    let other = ws.dir.join("other");
    let st = Command::new("cp")
        .arg("-r")
        .arg(ws.root())
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let spawn = |cwd: &Path| {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(["build", "--progress", "none", "--cache-dir"])
            .arg(ws.cache())
            .current_dir(cwd)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&ws.root());
    let b = spawn(&other);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    check_wide(&ws.root(), 12);
    check_wide(&other, 12);
    // Both results are in the cache: a third checkout runs nothing.
    fs::remove_dir_all(other.join("kiln-out")).unwrap();
    let (code, s, _) = ws.build_in(&other, &[]);
    assert_eq!(code, 0);
    assert_eq!(s["actions"]["executed"], 0);
}

fn wait_for_outputs(root: &Path, at_least: usize, deadline: Duration) {
    let t = Instant::now();
    while t.elapsed() < deadline {
        let n = fs::read_dir(root.join("kiln-out/w"))
            .map(|r| r.count())
            .unwrap_or(0);
        if n >= at_least {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no progress within {deadline:?}");
}

#[test]
fn sigkill_mid_build_then_rebuild_is_correct() {
    let ws = Ws::new("sigkill");
    wide(&ws, 16, "0.2");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["build", "-j2", "--progress", "none", "--cache-dir"])
        .arg(ws.cache())
        .current_dir(ws.root())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_outputs(&ws.root(), 10, Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    // Orphaned actions may still finish in the sandbox; give them a moment.
    std::thread::sleep(Duration::from_millis(400));
    let (code, s, err) = ws.build(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        s["actions"]["executed"].as_u64().unwrap() < 16,
        "finished work was kept"
    );
    check_wide(&ws.root(), 16);
    assert_eq!(ws.executed(&[]), 0);
}

#[test]
fn sigint_stops_children_and_exits_8() {
    let ws = Ws::new("sigint");
    wide(&ws, 8, "30");
    let child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["build", "-j2", "--progress", "none", "--cache-dir"])
        .arg(ws.cache())
        .current_dir(ws.root())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until both actions are running (their shells exist).
    std::thread::sleep(Duration::from_millis(700));
    let t = Instant::now();
    let st = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the 30 s actions were killed"
    );
    assert_eq!(
        out.status.code(),
        Some(8),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fs::read_dir(ws.root().join("kiln-out/w"))
            .map(|r| r.count())
            .unwrap_or(0)
            == 0,
        "no partial outputs"
    );
    let stats = ws.kiln_in(&ws.root(), &["cache", "stats"]);
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        text.contains("action results: 0"),
        "no cache entries: {text}"
    );
}

#[test]
fn profile_clean_and_cache_commands() {
    let ws = Ws::new("misc");
    chain(&ws);
    let trace = ws.dir.join("trace.json");
    let (code, _, err) = ws.build(&["--profile", trace.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let t: serde_json::Value = serde_json::from_str(&fs::read_to_string(&trace).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    for e in events {
        assert_eq!(e["ph"], "X");
        assert_eq!(e["args"]["cache"], "executed");
        assert_eq!(e["args"]["key"].as_str().unwrap().len(), 64);
    }

    let stats =
        String::from_utf8_lossy(&ws.kiln_in(&ws.root(), &["cache", "stats"]).stdout).into_owned();
    assert!(stats.contains("action results: 5"), "{stats}");

    // gc to zero drops every result; the next build runs everything again.
    let gc = ws.kiln_in(&ws.root(), &["cache", "gc", "--max-size", "0"]);
    assert!(gc.status.success());
    assert!(String::from_utf8_lossy(&gc.stdout).contains("removed 5 action results"));
    let bad = ws.kiln_in(&ws.root(), &["cache", "gc", "--max-size", "lots"]);
    assert_eq!(bad.status.code(), Some(2));

    let clean = ws.kiln_in(&ws.root(), &["clean"]);
    assert!(clean.status.success());
    assert!(!ws.root().join("kiln-out").exists());
    assert_eq!(ws.executed(&[]), 5);

    let clean = ws.kiln_in(&ws.root(), &["clean", "--cache"]);
    assert!(clean.status.success());
    assert!(!ws.cache().exists());
}

#[test]
fn toolchain_files_are_part_of_the_key() {
    let ws = Ws::new("tools");
    let tool = ws.dir.join("fake-compiler");
    fs::write(&tool, "version 1\n").unwrap();
    ws.write("tools/BUILD.star", "");
    ws.write(
        "tools/defs.star",
        r#"
def _impl(ctx):
    out = ctx.actions.declare_output("out.txt")
    ctx.actions.run(arguments = ["/bin/bash", "-c", "echo built > " + out.path], outputs = [out], tools = [ctx.attr.tool])
    return [DefaultInfo(files = [out])]

with_tool = rule(impl = _impl, attrs = {"tool": attr.string()})
"#,
    );
    ws.write(
        "a/BUILD.star",
        &format!("load(\"//tools:defs.star\", \"with_tool\")\n\nwith_tool(name = \"t\", tool = \"{}\")\n", tool.display()),
    );
    assert_eq!(ws.executed(&[]), 1);
    assert_eq!(ws.executed(&[]), 0);
    fs::write(&tool, "version 2\n").unwrap();
    assert_eq!(
        ws.executed(&[]),
        1,
        "a changed toolchain file re-runs the action"
    );
    let text =
        String::from_utf8_lossy(&ws.kiln_in(&ws.root(), &["explain", "//a:t"]).stdout).into_owned();
    assert!(text.contains("executed: toolchain changed"), "{text}");
    fs::remove_file(&tool).unwrap();
    let (code, _, err) = ws.build(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the toolchain file") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn test_targets_are_the_rules_returning_test_info() {
    let ws = Ws::new("testinfo");
    // A test rule of the workspace's own: its action fails when the test
    // fails; it returns `TestInfo` naming the file that action writes.
    ws.write(
        "tools/sh_test.star",
        r#"
def _impl(ctx):
    log = ctx.actions.declare_output(ctx.attr.name + ".log")
    ctx.actions.run(
        arguments = ["/bin/bash", "-c", "bash " + ctx.file.src.path + " 2>&1 | tee " + log.path + "; exit ${PIPESTATUS[0]}"],
        inputs = [ctx.file.src] + ctx.files.data,
        outputs = [log],
        mnemonic = "ShTest",
    )
    return [DefaultInfo(files = [log]), TestInfo(results = [log])]

sh_test = rule(impl = _impl, attrs = {
    "src": attr.label(allow_files = True, mandatory = True),
    "data": attr.label_list(allow_files = True),
})
"#,
    );
    ws.write("tools/BUILD.star", "");
    ws.write("t/pass.sh", "echo ok\n");
    ws.write("t/fail.sh", "echo 'não passou 失败' >&2; exit 1\n");
    ws.write("t/data.sh", "cat t/data.txt\n");
    ws.write(
        "t/BUILD.star",
        r#"
load("//tools:sh_test.star", "sh_test")
sh_test(name = "pass_test", src = "pass.sh")
sh_test(name = "fail_test", src = "fail.sh")
genrule(name = "not_a_test", srcs = [], outs = ["n.txt"], cmd = "echo n > $@")
"#,
    );
    let test = |pattern: &str| {
        let o = ws.kiln_in(&ws.root(), &["test", "--progress", "none", pattern]);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = test("//t/...");
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("//t:pass_test") && err.contains("PASSED"),
        "{err}"
    );
    assert!(
        err.contains("//t:fail_test") && err.contains("FAILED"),
        "{err}"
    );
    assert!(
        err.contains("não passou 失败"),
        "the failing test's output: {err}"
    );
    assert!(!err.contains("//t:not_a_test"), "{err}");
    assert!(err.contains("1 of 2 test targets failed"), "{err}");
    // JUnit XML per test target, for CI: the failing one carries its
    // output; a runner's verbose unittest lines become one testcase each.
    let pass_xml = ws.read("kiln-out/t/pass_test.test.xml");
    assert!(
        pass_xml.contains("<testsuite name=\"//t:pass_test\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\""),
        "{pass_xml}"
    );
    let fail_xml = ws.read("kiln-out/t/fail_test.test.xml");
    assert!(
        fail_xml.contains("failures=\"1\"")
            && fail_xml.contains("<testcase classname=\"kiln-out/t\" name=\"fail_test.log\"")
            && fail_xml.contains("não passou 失败"),
        "{fail_xml}"
    );
    ws.write(
        "t/unit.sh",
        "cat <<'END'\ntest_one (pkg.mod.Case.test_one) ... ok\ntest_two (pkg.mod.Case.test_two) ... skipped 'no <net>'\nEND\n",
    );
    ws.write(
        "t/BUILD.star",
        &format!(
            "{}sh_test(name = \"unit_test\", src = \"unit.sh\")\n",
            ws.read("t/BUILD.star")
        ),
    );
    let (code, err) = test("//t:unit_test");
    assert_eq!(code, 0, "{err}");
    let unit_xml = ws.read("kiln-out/t/unit_test.test.xml");
    assert!(
        unit_xml.contains("tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\"")
            && unit_xml.contains("<testcase classname=\"pkg.mod.Case\" name=\"test_one\"")
            && unit_xml.contains("<skipped message=\"no &lt;net&gt;\"/>"),
        "{unit_xml}"
    );
    // Not a test target: exit 4.
    let (code, err) = test("//t:not_a_test");
    assert_eq!(code, 4, "{err}");
    // A passing result is cached; a test whose input fails to build has no
    // status and the exit code says the build failed.
    let (code, err) = test("//t:pass_test");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 executed"), "{err}");
    // The summary says how long a test ran, or that its result was cached.
    let line = |err: &str| {
        err.lines()
            .find(|l| l.starts_with("//t:pass_test "))
            .map(|l| l["//t:pass_test".len()..].trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(line(&err), "(cached) PASSED", "{err}");
    ws.write("t/pass.sh", "sleep 0.3; echo ok again\n");
    let (code, err) = test("//t:pass_test");
    assert_eq!(code, 0, "{err}");
    let took: f64 = line(&err)
        .strip_prefix("PASSED in ")
        .and_then(|t| t.strip_suffix('s'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(took >= 0.3, "{err}");
    ws.write(
        "u/BUILD.star",
        r#"
load("//tools:sh_test.star", "sh_test")
genrule(name = "broken", srcs = [], outs = ["data.txt"], cmd = "exit 1")
sh_test(name = "data_test", src = "//t:data.sh", data = [":broken"])
"#,
    );
    let (code, err) = test("//u/...");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("//u:data_test") && err.contains("NO STATUS"),
        "{err}"
    );
}

#[test]
fn a_rule_timeout_kills_the_command() {
    let ws = Ws::new("timeout");
    ws.write(
        "t/BUILD.star",
        concat!(
            "genrule(name = \"slow\", outs = [\"slow.txt\"], cmd = \"(sleep 60; echo late > $@) & sleep 60\", timeout = 1)\n",
            "genrule(name = \"quick\", outs = [\"quick.txt\"], cmd = \"echo ok > $@\", timeout = 30)\n",
            "genrule(name = \"bad\", outs = [\"bad.txt\"], cmd = \"true\", timeout = -1)\n",
        ),
    );
    let t = Instant::now();
    let (code, _, err) = ws.build(&["//t:slow"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after 1 s"), "{err}");
    // The whole process group is killed, the background job too.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(!ws.root().join("kiln-out/t/slow.txt").exists());
    assert_eq!(ws.executed(&["//t:quick"]), 1);
    assert_eq!(ws.read("kiln-out/t/quick.txt"), "ok\n");
    let (code, _, err) = ws.build(&["//t:bad"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("t/BUILD.star:3"), "{err}");
    assert!(err.contains("must be positive"), "{err}");
}

#[test]
fn wildcards_of_build_and_test_leave_out_manual_targets() {
    let ws = Ws::new("manual");
    ws.write(
        "m/BUILD.star",
        r#"
genrule(name = "kept", srcs = [], outs = ["kept.txt"], cmd = "echo k > $@")
genrule(name = "by_hand", srcs = [], outs = ["by_hand.txt"], cmd = "echo h > $@", tags = ["manual"])
genrule(name = "needs_it", srcs = [":by_hand"], outs = ["needs.txt"], cmd = "cat $(SRCS) > $@")
"#,
    );
    ws.write("n/BUILD.star", "genrule(name = \"only\", srcs = [], outs = [\"o.txt\"], cmd = \"echo o > $@\", tags = [\"manual\", \"x\"])\n");
    // `:all` and `...` skip it; a target that depends on it still builds it.
    let (code, s, err) = ws.build(&["//m:all"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 3, "{s}");
    let requested: Vec<&String> = s["outputs"].as_object().unwrap().keys().collect();
    assert_eq!(requested, ["//m:kept", "//m:needs_it"], "{s}");
    let out = ws.root().join("kiln-out/m");
    assert!(out.join("kept.txt").exists() && out.join("needs.txt").exists());
    let (code, s, err) = ws.build(&["//n/..."]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["total"], 0, "{s}");
    assert!(!ws.root().join("kiln-out/n/o.txt").exists());
    // Named, it builds.
    assert_eq!(ws.executed(&["//n:only"]), 1);
    assert_eq!(ws.read("kiln-out/n/o.txt"), "o\n");
    // `kiln query` keeps it, as `bazel query` does.
    assert_eq!(
        ws.query("//n:all + //m:all"),
        "//m:by_hand\n//m:kept\n//m:needs_it\n//n:only\n"
    );
}

#[test]
fn common_attributes_have_their_bazel_meaning() {
    let ws = Ws::new("common");
    ws.write(
        "a/BUILD.star",
        r#"
genrule(name = "fixture", srcs = [], outs = ["f.txt"], cmd = "echo f > $@", testonly = True)
genrule(
    name = "old",
    srcs = [],
    outs = ["old.txt"],
    cmd = "echo o > $@",
    deprecation = "use //a:new — ça change",
    features = ["-layering_check"],
    licenses = ["notice"],
    compatible_with = [],
    target_compatible_with = ["@platforms//os:linux"],
    exec_compatible_with = ["@platforms//cpu:x86_64"],
)
genrule(name = "same_pkg", srcs = [":old"], outs = ["s.txt"], cmd = "cat $< > $@")
"#,
    );
    ws.write(
        "b/BUILD.star",
        r#"
genrule(name = "uses_old", srcs = ["//a:old"], outs = ["u.txt"], cmd = "cat $< > $@")
genrule(name = "test_helper", srcs = ["//a:fixture"], outs = ["v.txt"], cmd = "cat $< > $@", testonly = True)
genrule(name = "old_too", srcs = ["//a:old"], outs = ["w.txt"], cmd = "cat $< > $@", deprecation = "old")
"#,
    );
    // Accepted everywhere; a deprecated dependency from another package
    // warns once, naming the dependent's line (not from its own package,
    // nor from a target deprecated itself).
    let (code, _, err) = ws.build(&["//..."]);
    assert_eq!(code, 0, "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("WARNING")).collect();
    assert_eq!(
        warnings,
        [
            "WARNING: b/BUILD.star:2:1: `//b:uses_old` depends on deprecated target `//a:old`: use //a:new — ça change"
        ],
        "{err}"
    );
    // A target that is not testonly may not depend on one that is.
    ws.write(
        "c/BUILD.star",
        "genrule(name = \"prod\", srcs = [\"//b:test_helper\"], outs = [\"p.txt\"], cmd = \"cat $< > $@\")\n",
    );
    let (code, _, err) = ws.build(&["//c:prod"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("c/BUILD.star:1:1: `//c:prod` depends on `//b:test_helper`, which is `testonly` (declared at b/BUILD.star:3:1)")
            && err.contains("add `testonly = True` to `//c:prod`"),
        "{err}"
    );
    // ... but `kiln query` still walks it, as `bazel query` does.
    ws.query("deps(//c:prod)");
    // `exec_properties` of any rule reach each of its commands; an
    // action's own win.
    ws.write(
        "r/defs.star",
        r#"
def _impl(ctx):
    out = ctx.actions.declare_output(ctx.attr.name + ".txt")
    ctx.actions.run(arguments = ["/bin/touch", out], outputs = [out], exec_properties = {"pool": "own"})
    return [DefaultInfo(files = [out])]

touch = rule(impl = _impl)
"#,
    );
    ws.write(
        "r/BUILD.star",
        "load(\":defs.star\", \"touch\")\ntouch(name = \"t\", exec_properties = {\"OSFamily\": \"linux\", \"pool\": \"target\"})\n",
    );
    let dump = ws.query("actions(//r:t)");
    assert!(
        dump.contains("  exec_property: OSFamily=linux\n  exec_property: pool=own\n"),
        "{dump}"
    );
    // Types are checked as Bazel's.
    ws.write(
        "c/BUILD.star",
        "genrule(name = \"prod\", srcs = [], outs = [\"p.txt\"], cmd = \"true\", licenses = \"notice\")\n",
    );
    let (code, _, err) = ws.build(&["//c:prod"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "c/BUILD.star:1:1: Attribute `licenses` of `genrule` expects a list of strings"
        ),
        "{err}"
    );
}

#[test]
fn genrule_takes_bazels_attributes() {
    let ws = Ws::new("genrule-attrs");
    ws.write(
        "g/script.sh",
        "#!/bin/sh\necho \"from a source script: $1\"\n",
    );
    Command::new("chmod")
        .args(["+x"])
        .arg(ws.root().join("g/script.sh"))
        .status()
        .unwrap();
    ws.write(
        "g/BUILD.star",
        r#"
genrule(
    name = "tool",
    srcs = [],
    outs = ["tool.sh"],
    cmd = "exit 1",
    cmd_bash = "printf '#!/bin/sh\\necho made by a tool\\n' > $@",
    executable = True,
    message = "Writing the tool for %{label} — ü",
)
genrule(
    name = "use",
    srcs = [],
    tools = [":tool", "script.sh"],
    outs = ["out.txt"],
    cmd = "$(location :tool) > $@ && $(location script.sh) ok >> $@",
    local = True,
    message = "Running %{input} into %{output}",
)
genrule(name = "fetch", srcs = [], outs = ["f.txt"], cmd = "echo f > $@", tags = ["requires-network"], exec_properties = {"OSFamily": "linux"})
"#,
    );
    let o = ws.kiln_in(&ws.root(), &["build", "--progress", "plain", "//g:all"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        ws.read("kiln-out/g/out.txt"),
        "made by a tool\nfrom a source script: ok\n"
    );
    assert!(err.contains("Genrule //g:tool#0 ("), "{err}");
    assert!(
        err.contains("): Writing the tool for //g:tool — ü\n"),
        "{err}"
    );
    assert!(
        err.contains("): Running kiln-out/g/tool.sh into kiln-out/g/out.txt\n"),
        "{err}"
    );
    // `local` keeps it off a remote executor; `requires-network` gives the
    // command the network; the message is no part of the key.
    let dump = ws.query("actions(//g:use + //g:fetch)");
    assert!(dump.contains("  remote: no\n  message: Running"), "{dump}");
    assert!(dump.contains("action //g:fetch#0 Genrule\n  run: /bin/bash -c 'echo f > kiln-out/g/f.txt'\n  network: yes\n  exec_property: OSFamily=linux\n"), "{dump}");
    let text = ws.read("g/BUILD.star");
    ws.write(
        "g/BUILD.star",
        &text.replace("Running %{input}", "Now running %{input}"),
    );
    assert_eq!(ws.executed(&["//g:all"]), 0);
    // `no-cache`: its result is neither kept nor looked up, so going back
    // to an earlier input runs it again, where a cached target is restored.
    ws.write(
        "n/BUILD.star",
        "genrule(name = \"fresh\", srcs = [\"in.txt\"], outs = [\"f.txt\"], cmd = \"cp $< $@\", tags = [\"no-cache\"])\n\
         genrule(name = \"other\", srcs = [\"in.txt\"], outs = [\"o.txt\"], cmd = \"cp $< $@\")\n",
    );
    for (text, executed) in [("1", 2), ("2", 2), ("1", 1)] {
        ws.write("n/in.txt", text);
        assert_eq!(ws.executed(&["//n:all"]), executed, "in.txt = {text}");
        assert_eq!(ws.read("kiln-out/n/f.txt"), text);
    }
    assert_eq!(ws.executed(&["//n:all"]), 0, "up to date");
    assert!(ws.query("actions(//n:fresh)").contains("  cache: no\n"));
    // Errors at analysis, exit 2.
    for (rule, want) in [
        (
            "genrule(name = \"x\", srcs = [], outs = [\"x.txt\"])",
            "genrule `//h:x` needs a command: set `cmd` (or `cmd_bash`)",
        ),
        (
            "genrule(name = \"x\", srcs = [], outs = [\"a\", \"b\"], cmd = \"true\", executable = True)",
            "needs exactly one output, but `outs` has 2",
        ),
    ] {
        ws.write("h/BUILD.star", rule);
        let (code, _, err) = ws.build(&["//h:x"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
}

/// Settings, `config_setting` and `select()`: the default configuration,
/// `--config` from kiln.toml and `--set`, outputs side by side in
/// `kiln-out/` and `kiln-out/<config>/`, keys shared by actions that do
/// not depend on a setting, query as written and resolved, and select
/// errors located at the select.
#[test]
fn configurations_choose_select_branches_and_share_keys() {
    let ws = Ws::new("config");
    ws.write(
        "kiln.toml",
        "[config.debug]\n\"//settings:opt\" = \"debug\"\n\"//settings:strip\" = false\n\n[config.noop]\n\"//settings:opt\" = \"release\"\n",
    );
    ws.write(
        "settings/BUILD.star",
        r#"bool_setting(name = "strip", build_setting_default = True)
string_setting(name = "opt", build_setting_default = "release", values = ["release", "debug"])
config_setting(name = "debug", flag_values = {":opt": "debug"})
config_setting(name = "debug_unstripped", flag_values = {":opt": "debug", ":strip": "false"})
"#,
    );
    ws.write(
        "settings/defs.star",
        "FLAGS = select({\"//settings:debug\": \"-O0 -g\", \"//conditions:default\": \"-O2\"})\n",
    );
    // Non-ASCII in a select branch and a file name.
    ws.write(
        "app/BUILD.star",
        r#"load("//settings:defs.star", "FLAGS")
genrule(name = "shared", outs = ["shared.txt"], cmd = "echo même > $@")
genrule(name = "extra", outs = ["dbg-é.txt"], cmd = "echo debugging > $@")
genrule(
    name = "flags",
    srcs = [":shared"] + select({":dbg": [":extra"], "//conditions:default": []}),
    outs = ["flags.txt"],
    cmd = "(echo " + FLAGS + "; cat $(SRCS)) > $@",
)
genrule(
    name = "which",
    outs = ["which.txt"],
    cmd = select({
        "//settings:debug": "echo debug > $@",
        "//settings:debug_unstripped": "echo débogage > $@",
        "//conditions:default": "echo default > $@",
    }),
)
config_setting(name = "dbg", flag_values = {"//settings:opt": "debug"})
"#,
    );
    // Default configuration: kiln-out/.
    assert_eq!(ws.executed(&["//app:all"]), 4);
    assert_eq!(ws.read("kiln-out/app/flags.txt"), "-O2\nmême\n");
    assert_eq!(ws.read("kiln-out/app/which.txt"), "default\n");
    // --config debug: kiln-out/debug/; `shared` and `extra` keep their
    // keys (cached), `flags` and `which` depend on a setting.
    let (code, s, err) = ws.build(&["--config", "debug", "//app:all"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["actions"]["executed"], 2, "{s}");
    assert_eq!(s["actions"]["local_hits"], 2, "{s}");
    assert_eq!(
        s["outputs"]["//app:flags"],
        serde_json::json!(["kiln-out/debug/app/flags.txt"])
    );
    assert_eq!(
        ws.read("kiln-out/debug/app/flags.txt"),
        "-O0 -g\nmême\ndebugging\n"
    );
    // The most specialized of two matching conditions wins.
    assert_eq!(ws.read("kiln-out/debug/app/which.txt"), "débogage\n");
    // Both variants coexist, and each is a no-op now.
    assert_eq!(ws.read("kiln-out/app/which.txt"), "default\n");
    assert_eq!(ws.executed(&["//app:all"]), 0);
    assert_eq!(ws.executed(&["--config", "debug", "//app:all"]), 0);
    // --set alone: a directory named by the values; --set wins over --config.
    let (code, s, err) = ws.build(&["--set", "//settings:opt=debug", "//app:which"]);
    assert_eq!(code, 0, "{err}");
    let out = s["outputs"]["//app:which"][0].as_str().unwrap().to_owned();
    assert!(out.starts_with("kiln-out/cfg-"), "{out}");
    assert_eq!(ws.read(&out), "debug\n");
    let (code, s, _) = ws.build(&[
        "--config",
        "debug",
        "--set",
        "//settings:strip=True",
        "//app:which",
    ]);
    assert_eq!(code, 0);
    let out = s["outputs"]["//app:which"][0].as_str().unwrap().to_owned();
    assert!(out.starts_with("kiln-out/debug-"), "{out}");
    assert_eq!(ws.read(&out), "debug\n");
    // A configuration that sets only defaults is the default one.
    let (code, s, _) = ws.build(&["--config", "noop", "//app:which"]);
    assert_eq!(code, 0);
    assert_eq!(
        s["outputs"]["//app:which"],
        serde_json::json!(["kiln-out/app/which.txt"])
    );
    // Query: unconfigured depends on every branch and prints select() as
    // written; --config resolves.
    let deps = ws.query("deps(//app:flags)");
    assert!(
        deps.contains("//app:extra") && deps.contains("//app:dbg"),
        "{deps}"
    );
    let resolved = ws.query_with(&["deps(//app:flags)", "--config", "noop"]);
    assert!(!resolved.contains("//app:extra"), "{resolved}");
    let resolved = ws.query_with(&["deps(//app:flags)", "--config", "debug"]);
    assert!(resolved.contains("//app:extra"), "{resolved}");
    let text = ws.query_with(&["//app:flags", "--output", "build"]);
    assert!(
        text.contains(r#"srcs = ["//app:shared"] + select({"//app:dbg": ["//app:extra"], "//conditions:default": []}),"#),
        "{text}"
    );
    // Bad requests exit 2 naming what to fix.
    for (args, want) in [
        (vec!["--config", "nope"], "Unknown configuration `nope`"),
        (
            vec!["--set", "//settings:opt=fast"],
            "may be `release`, `debug`, not `fast`",
        ),
        (vec!["--set", "//settings:strip=maybe"], "is a bool_setting"),
        (vec!["--set", "//app:shared=1"], "not a build setting"),
        (
            vec!["--set", "//settings:nope=1"],
            "no target `//settings:nope`",
        ),
        (vec!["--set", "opt"], "expected LABEL=VALUE"),
    ] {
        let mut a = args.clone();
        a.push("//app:which");
        let (code, _, err) = ws.build(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // select() errors name the file and line of the select, and only a
    // build that needs the target fails.
    ws.write(
        "bad/BUILD.star",
        r#"genrule(name = "fine", outs = ["f.txt"], cmd = "echo > $@")
genrule(
    name = "nomatch",
    outs = ["n.txt"],
    cmd = select({"//settings:debug": "echo > $@"}, no_match_error = "debug builds only"),
)
config_setting(name = "release", flag_values = {"//settings:opt": "release"})
config_setting(name = "stripped", flag_values = {"//settings:strip": "true"})
genrule(
    name = "ambiguous",
    outs = ["a.txt"],
    cmd = select({":release": "echo r > $@", ":stripped": "echo s > $@"}),
)
"#,
    );
    assert_eq!(ws.executed(&["//bad:fine"]), 1);
    let (code, _, err) = ws.build(&["//bad:nomatch"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "bad/BUILD.star:5:11: No branch of select() in attribute `cmd` of `//bad:nomatch`"
        ) && err.contains("debug builds only"),
        "{err}"
    );
    assert_eq!(ws.executed(&["--config", "debug", "//bad:nomatch"]), 1);
    let (code, _, err) = ws.build(&["//bad:ambiguous"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "bad/BUILD.star:12:11: select() in attribute `cmd` of `//bad:ambiguous` is ambiguous"
        ),
        "{err}"
    );
    assert_eq!(
        ws.executed(&["--set", "//settings:strip=false", "//bad:ambiguous"]),
        1
    );
    // A configuration whose directory would mix with a package's outputs.
    ws.write("debug/BUILD.star", "");
    let (code, _, err) = ws.build(&["--config", "debug", "//..."]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("rename the configuration"), "{err}");
}

/// `kiln test` flags: `--flaky-test-attempts` (a test that fails twice,
/// then passes, against a counter server), `--runs-per-test` and
/// `--test-filter` as test rules read them (`ctx.runs_per_test`,
/// `ctx.test_filter`), and `--test-output=all|streamed`.
#[test]
fn test_flags_retry_repeat_filter_and_show_output() {
    let ws = Ws::new("testflags");
    // Answers `fail` twice, then `pass`, round and round.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (n, c) in listener.incoming().enumerate() {
            let Ok(mut c) = c else { break };
            let answer = if n % 3 == 2 { "pass\n" } else { "fail\n" };
            let _ = std::io::Write::write_all(&mut c, answer.as_bytes());
        }
    });
    ws.write(
        "tools/defs.star",
        r#"def _flaky_impl(ctx):
    out = ctx.actions.declare_output(ctx.attr.name + ".log")
    ctx.actions.run(
        arguments = ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/%d; read -r r <&3; echo \"answer: $r\" > %s; [ \"$r\" = pass ] # %s" % (ctx.attr.port, out.path, ctx.attr.salt)],
        outputs = [out],
        execution_requirements = {"requires-network": "1"},
        mnemonic = "FlakyTest",
    )
    return [DefaultInfo(files = [out]), TestInfo(results = [out])]

flaky_test = rule(impl = _flaky_impl, attrs = {"port": attr.int(), "salt": attr.string()})

def _each_impl(ctx):
    logs = []
    for name in ctx.attr.cases:
        if ctx.test_filter and ctx.test_filter not in name:
            continue
        for i in range(ctx.runs_per_test):
            out = ctx.actions.declare_output("%s/%s.%d.log" % (ctx.attr.name, name, i))
            ctx.actions.run(
                arguments = ["/bin/bash", "-c", "echo case %s run %d > %s" % (name, i, out.path)],
                outputs = [out],
                mnemonic = "Case",
            )
            logs.append(out)
    return [DefaultInfo(files = logs), TestInfo(results = logs)]

each_test = rule(impl = _each_impl, attrs = {"cases": attr.string_list()})
"#,
    );
    ws.write(
        "t/BUILD.star",
        &format!(
            "load(\"//tools:defs.star\", \"each_test\", \"flaky_test\")\nflaky_test(name = \"flaky_test\", port = {port})\neach_test(name = \"each_test\", cases = [\"alpha\", \"beta\", \"ünï\"])\n"
        ),
    );
    let test = |args: &[&str]| -> (i32, String) {
        let mut all = vec!["test", "--progress", "none"];
        all.extend_from_slice(args);
        let o = ws.kiln_in(&ws.root(), &all);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // Fails twice, passes on the third attempt: FLAKY, exit 0.
    let (code, err) = test(&["--flaky-test-attempts", "3", "//t:flaky_test"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("FLAKY? //t:flaky_test#0 failed"), "{err}");
    assert!(err.contains("attempt 3 of 3"), "{err}");
    assert!(err.contains("FLAKY, failed 2 time(s) first"), "{err}");
    assert_eq!(ws.read("kiln-out/t/flaky_test.log"), "answer: pass\n");
    // The passing result is cached.
    let (code, err) = test(&["//t:flaky_test"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(cached) PASSED"), "{err}");
    // Another key, one attempt: it fails (and nothing is cached).
    let build = ws.read("t/BUILD.star");
    ws.write(
        "t/BUILD.star",
        &build.replace("port = ", "salt = \"2\", port = "),
    );
    let (code, err) = test(&["//t:flaky_test"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("//t:flaky_test") && err.contains("FAILED"),
        "{err}"
    );
    // Runs per test and the filter reach the rule.
    let (code, err) = test(&[
        "--runs-per-test",
        "2",
        "--test-output",
        "all",
        "//t:each_test",
    ]);
    assert_eq!(code, 0, "{err}");
    for case in ["alpha", "beta", "ünï"] {
        for run in 0..2 {
            assert_eq!(
                ws.read(&format!("kiln-out/t/each_test/{case}.{run}.log")),
                format!("case {case} run {run}\n")
            );
            // `--test-output=all` prints every log.
            assert!(err.contains(&format!("case {case} run {run}\n")), "{err}");
        }
    }
    let (code, err) = test(&[
        "--test-filter",
        "ünï",
        "--test-output",
        "streamed",
        "//t:each_test",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("case ünï run 0") && !err.contains("case alpha"),
        "{err}"
    );
    // A filter that leaves no test: exit 4.
    let (code, err) = test(&["--test-filter", "nothing", "//t:each_test"]);
    assert_eq!(code, 4, "{err}");
}

/// `kiln build --watch`: one rebuild per change to a file the build
/// depends on, none for a file it does not, a BUILD edit re-analyses, and
/// Ctrl-C exits 8.
#[test]
fn watch_rebuilds_once_per_change_and_exits_8_on_ctrl_c() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let ws = Ws::new("watch");
    ws.write("a/in.txt", "one\n");
    ws.write("a/unrelated.txt", "x\n");
    ws.write(
        "a/BUILD.star",
        "genrule(name = \"c\", srcs = [\"in.txt\"], outs = [\"c.txt\"], cmd = \"cat $< > $@\")\n",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "build",
            "--watch",
            "--progress",
            "none",
            "//a:c",
            "--cache-dir",
        ])
        .arg(ws.cache())
        .current_dir(ws.root())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = Arc::new(Mutex::new(String::new()));
    let reader = {
        let err = err.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                err.lock().unwrap().push_str(&(line + "\n"));
            }
        })
    };
    let count = |what: &str| err.lock().unwrap().matches(what).count();
    let wait_for = |what: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(what) < n {
            assert!(
                Instant::now() < deadline,
                "no {n}x `{what}` in:\n{}",
                err.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("watch: waiting", 1);
    assert_eq!(ws.read("kiln-out/a/c.txt"), "one\n");
    // An edit of a source: exactly one rebuild.
    ws.write("a/in.txt", "two\n");
    wait_for("watch: waiting", 2);
    assert_eq!(ws.read("kiln-out/a/c.txt"), "two\n");
    assert_eq!(count("`a/in.txt` changed; building again"), 1);
    // A file the build does not depend on: nothing.
    ws.write("a/unrelated.txt", "y\n");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(count("building again"), 1, "{}", err.lock().unwrap());
    // A BUILD edit: analysis runs again with the new command.
    ws.write(
        "a/BUILD.star",
        "genrule(name = \"c\", srcs = [\"in.txt\"], outs = [\"c.txt\"], cmd = \"cat $< $< > $@\")\n",
    );
    wait_for("watch: waiting", 3);
    assert_eq!(ws.read("kiln-out/a/c.txt"), "two\ntwo\n");
    // Ctrl-C: exit 8.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(8), "{}", err.lock().unwrap());
}

/// `kiln lsp`: a scripted session over stdio (initialize, didOpen,
/// didChange with an error, definition of a label, hover on a rule,
/// completion of attributes and rules, shutdown, exit).
#[test]
fn lsp_session() {
    use std::io::{BufRead, BufReader, Read, Write};
    let ws = Ws::new("lsp");
    ws.write(
        "b/BUILD.star",
        "# a library\n\ngenrule(name = \"lib\", outs = [\"lib.txt\"], cmd = \"echo > $@\")\n",
    );
    let text = "genrule(\n    name = \"use\",\n    srcs = [\"//b:lib\"],\n    outs = [\"ü.txt\"],\n    cmd = \"cat $(SRCS) > $@\",\n)\n";
    ws.write("a/BUILD.star", text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("lsp")
        .current_dir(ws.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut send = |v: serde_json::Value| {
        let body = v.to_string();
        write!(input, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        input.flush().unwrap();
    };
    let mut recv = || -> serde_json::Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            output.read_line(&mut line).unwrap();
            let line = line.trim();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length:") {
                len = n.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        output.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    };
    let uri = format!("file://{}/a/BUILD.star", ws.root().display());
    send(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}));
    let r = recv();
    assert_eq!(
        r["result"]["capabilities"]["definitionProvider"], true,
        "{r}"
    );
    send(
        serde_json::json!({"jsonrpc": "2.0", "method": "textDocument/didOpen",
        "params": {"textDocument": {"uri": uri, "languageId": "starlark", "version": 1, "text": text}}}),
    );
    let r = recv();
    assert_eq!(r["params"]["diagnostics"], serde_json::json!([]), "{r}");
    // An unknown attribute, on the fourth line of the edited text.
    let bad = text.replace("outs =", "outz =");
    send(
        serde_json::json!({"jsonrpc": "2.0", "method": "textDocument/didChange",
        "params": {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": bad}]}}),
    );
    let r = recv();
    let d = &r["params"]["diagnostics"][0];
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("Unknown attribute `outz`"),
        "{r}"
    );
    assert_eq!(d["range"]["start"]["line"], 0, "{r}");
    send(
        serde_json::json!({"jsonrpc": "2.0", "method": "textDocument/didChange",
        "params": {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": text}]}}),
    );
    recv();
    // Definition of `//b:lib`: its declaration in b/BUILD.star, line 3.
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/definition",
        "params": {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}}}),
    );
    let r = recv();
    assert!(
        r["result"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("/b/BUILD.star"),
        "{r}"
    );
    assert_eq!(r["result"]["range"]["start"]["line"], 2, "{r}");
    // Hover on `genrule`: its attributes.
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 3}}}),
    );
    let r = recv();
    let md = r["result"]["contents"]["value"].as_str().unwrap();
    assert!(
        md.starts_with("**genrule** (rule)") && md.contains("`cmd`"),
        "{r}"
    );
    // Completion: attributes inside the call, rules at the top level.
    for (id, line, col, want) in [
        (4, 1, 4, ["srcs", "visibility"]),
        (5, 6, 0, ["genrule", "cap"]),
    ] {
        send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/completion",
            "params": {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}}),
        );
        let r = recv();
        let labels: Vec<&str> = r["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap())
            .collect();
        assert!(want.iter().all(|w| labels.contains(w)), "{labels:?}");
    }
    send(serde_json::json!({"jsonrpc": "2.0", "id": 6, "method": "shutdown"}));
    assert_eq!(recv()["result"], serde_json::Value::Null);
    send(serde_json::json!({"jsonrpc": "2.0", "method": "exit"}));
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `kiln fmt` and `kiln lint`: `--check` exits 1 and names what is off,
/// `fmt` rewrites (comments kept), a second `fmt` changes nothing, and
/// the repository's own BUILD files are formatted and lint-clean.
#[test]
fn fmt_and_lint() {
    let ws = Ws::new("fmt");
    let messy = "load(\"//tools:defs.star\", \"unused\")\n# The tool (ü).\nfilegroup(srcs=[\"b.txt\",\"a.txt\",\"a.txt\"], name = \"g\")  # keep\n";
    ws.write("tools/defs.star", "unused = 1\n");
    ws.write("tools/BUILD.star", "");
    ws.write("p/BUILD.star", messy);
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args(args)
            .current_dir(ws.root())
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["lint", "--check"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("p/BUILD.star:1:1: [unused-load] `unused` is loaded but never used"),
        "{out}"
    );
    assert!(
        out.contains("p/BUILD.star:3:1: [duplicate-entry] `srcs` lists \"a.txt\" twice"),
        "{out}"
    );
    assert!(out.contains("[unsorted] `srcs` is not sorted"), "{out}");
    let (code, out) = run(&["fmt", "--check"]);
    assert_eq!((code, out.as_str()), (1, "not formatted: p/BUILD.star\n"));
    assert_eq!(ws.read("p/BUILD.star"), messy, "--check writes nothing");
    let (code, _) = run(&["fmt"]);
    assert_eq!(code, 0);
    assert_eq!(
        ws.read("p/BUILD.star"),
        "load(\"//tools:defs.star\", \"unused\")\n\n# The tool (ü).\nfilegroup(\n    name = \"g\",\n    srcs = [\n        \"a.txt\",\n        \"a.txt\",\n        \"b.txt\",\n    ],\n)  # keep\n"
    );
    assert_eq!(run(&["fmt", "--check"]), (0, String::new()));
    // The repository's BUILD files.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for cmd in ["fmt", "lint"] {
        let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
            .args([cmd, "--check"])
            .current_dir(&repo)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "kiln {cmd} --check in the repository: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
}
