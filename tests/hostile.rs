//! Hostile input through the `kiln` binary: BUILD and `.star` files built to
//! break the parser or exhaust memory, sources and outputs that try to
//! leave the workspace, and actions that misbehave (symlinked outputs,
//! writes outside the sandbox, runaway processes, floods of output, fork
//! bombs). Each gets a clear error naming the file and line (or the action)
//! and the right exit code; nothing panics, nothing escapes.

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/fs.rs"]
mod support;

use support::{Tmp, fresh_tmp};

fn tmp(name: &str) -> Tmp {
    fresh_tmp(&format!("hostile-{name}"))
}

fn kiln(ws: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .arg("--cache-dir")
        .arg(ws.join("../cache"))
        .current_dir(ws)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A build of `//...` must exit `code` with every `needles` in stderr, and
/// no panic or stack overflow.
fn expect(ws: &Path, what: &str, code: i32, needles: &[&str]) -> Output {
    let o = kiln(ws, &["build", "//...", "--summary-json", "summary.json"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(code), "{what}:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{what}: `{n}` not in:\n{err}");
    }
    for bad in ["panicked", "overflowed its stack", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{what}:\n{err}");
    }
    o
}

#[test]
fn build_files_that_attack_the_parser_and_the_heap() {
    let t = tmp("starlark");
    let ws = t.0.join("ws");
    fs::create_dir_all(&ws).unwrap();
    fs::write(ws.join("kiln.toml"), "").unwrap();
    let build = |bytes: &[u8]| fs::write(ws.join("BUILD.star"), bytes).unwrap();

    build(b"x = 1\ngenrule(name = \"a\", outs = [\"a\"], cmd = \"echo \xff > $@\")\n");
    expect(
        &ws,
        "invalid UTF-8",
        2,
        &["BUILD.star:2:47:", "not valid UTF-8"],
    );
    build(b"x = 1\ny = \"a\x00b\"\n");
    expect(&ws, "NUL byte", 2, &["BUILD.star:2:7:", "NUL byte"]);
    build(format!("x = {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).as_bytes());
    expect(
        &ws,
        "10,000-deep nesting",
        2,
        &["BUILD.star:1:205:", "nested more than 200 deep"],
    );
    build(format!("x = 1{}\n", " + 1".repeat(100_000)).as_bytes());
    expect(
        &ws,
        "100,000-operator chain",
        2,
        &["BUILD.star:1:", "operators in one statement"],
    );
    build(format!("x = {}True\n", "not ".repeat(10_000)).as_bytes());
    expect(&ws, "10,000 `not`s", 2, &["BUILD.star:1:", "operators"]);

    // Big but sound: a 10 MB line and a 1,000,000-element list load.
    build(format!("x = \"{}\"\n", "a".repeat(10_000_000)).as_bytes());
    expect(&ws, "10 MB line", 0, &[]);
    let mut list = String::from("x = [");
    for i in 0..1_000_000 {
        list.push_str(&format!("{i},"));
    }
    list.push_str("]\n");
    build(list.as_bytes());
    expect(&ws, "1,000,000-element list", 0, &[]);

    // Gigabytes: stopped at the memory limit with exit 2, not killed.
    build(b"n = 1 << 30\nx = \"a\" * n\ny = x + x\nz = y + y\n");
    let t0 = Instant::now();
    expect(
        &ws,
        "string multiplied to gigabytes",
        2,
        &["BUILD.star:", "MiB of memory"],
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
    build(b"x = \"a\" * 2147483647\ny = \"\".join([x] * 100)\n");
    expect(
        &ws,
        "join of gigabytes",
        2,
        &["BUILD.star", "MiB of memory"],
    );

    // A deep load() chain: stopped with the chain's depth.
    for i in 0..300 {
        fs::write(
            ws.join(format!("l{i}.star")),
            format!("load(\":l{}.star\", \"v\")\nw = v\n", i + 1),
        )
        .unwrap();
    }
    fs::write(ws.join("l300.star"), "v = 1\n").unwrap();
    build(b"load(\":l0.star\", \"w\")\n");
    expect(
        &ws,
        "300-deep load chain",
        2,
        &["l99.star:1:6:", "`load()` chain deeper than 100"],
    );
}

#[test]
fn sources_and_outputs_stay_in_the_workspace() {
    let t = tmp("paths");
    let ws = t.0.join("ws");
    let p = ws.join("p");
    fs::create_dir_all(&p).unwrap();
    fs::write(ws.join("kiln.toml"), "").unwrap();
    fs::write(ws.join("BUILD.star"), "").unwrap();
    fs::write(t.0.join("outside.txt"), "secret\n").unwrap();
    std::os::unix::fs::symlink(t.0.join("outside.txt"), p.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("/dev/null", p.join("null")).unwrap();
    fs::create_dir_all(t.0.join("elsewhere")).unwrap();
    fs::write(t.0.join("elsewhere/passwd"), "secret\n").unwrap();
    std::os::unix::fs::symlink(t.0.join("elsewhere"), p.join("linkdir")).unwrap();
    fs::create_dir(p.join("dir")).unwrap();
    assert!(
        Command::new("mkfifo")
            .arg(p.join("fifo"))
            .status()
            .unwrap()
            .success()
    );
    fs::write(p.join("sp ace.txt"), "spaces\n").unwrap();
    fs::write(p.join("dollar $x.txt"), "dollar\n").unwrap();
    // Names kiln cannot use as labels must not disturb `//...`.
    fs::create_dir_all(ws.join("new\nline")).unwrap();
    fs::write(ws.join("new\nline/BUILD.star"), "").unwrap();
    {
        use std::os::unix::ffi::OsStrExt;
        let odd = ws.join(std::ffi::OsStr::from_bytes(b"bad\xffname"));
        fs::create_dir_all(&odd).unwrap();
        fs::write(odd.join("x.txt"), "x").unwrap();
    }
    let rule = |body: &str| fs::write(p.join("BUILD.star"), body).unwrap();

    for (src, why) in [
        ("../kiln.toml", "`..` segments"),
        ("/etc/passwd", "must not start or end with `/`"),
        ("link.txt", "outside the workspace"),
        ("null", "outside the workspace"),
        ("linkdir/passwd", "is a symlink to"),
        ("dir", "is a directory"),
        ("fifo", "is a FIFO"),
        ("new\\nline.txt", "not allowed"),
    ] {
        rule(&format!(
            "genrule(name = \"g\", srcs = [\"{src}\"], outs = [\"g.out\"], cmd = \"cat $(SRCS) > $@\")\n"
        ));
        expect(&ws, src, 2, &["p/BUILD.star:1:1:", why]);
    }
    for (out, why) in [
        ("../escape", "`..` segments"),
        ("/tmp/abs", "must not start or end with `/`"),
    ] {
        rule(&format!(
            "genrule(name = \"g\", outs = [\"{out}\"], cmd = \"echo > $@\")\n"
        ));
        expect(&ws, out, 2, &["p/BUILD.star:1:1:", why]);
    }
    assert!(!ws.join("escape").exists() && !t.0.join("escape").exists());

    // Spaces, quotes and `$` in names survive the shell.
    rule(
        "genrule(name = \"g\", srcs = [\"sp ace.txt\", \"dollar $x.txt\"], outs = [\"o u t.txt\"], cmd = \"cat $(SRCS) > $@; cat $(location sp ace.txt) >> $@\")\n\
         genrule(name = \"ü\", srcs = [\"sp ace.txt\"], outs = [\"ö ü.txt\"], cmd = \"cat $< > $@\")\n",
    );
    expect(&ws, "odd names", 0, &[]);
    assert_eq!(
        fs::read_to_string(ws.join("kiln-out/p/o u t.txt")).unwrap(),
        "spaces\ndollar\nspaces\n"
    );
    assert_eq!(
        fs::read_to_string(ws.join("kiln-out/p/ö ü.txt")).unwrap(),
        "spaces\n"
    );
}

#[test]
fn actions_that_misbehave() {
    let t = tmp("actions");
    let ws = t.0.join("ws");
    fs::create_dir_all(&ws).unwrap();
    fs::write(ws.join("kiln.toml"), "").unwrap();
    let rule = |body: &str| fs::write(ws.join("BUILD.star"), body).unwrap();
    let marker = format!("kiln-hostile-marker-{}", std::process::id());

    rule("genrule(name = \"g\", outs = [\"g.out\"], cmd = \"ln -s /etc/passwd $@\")\n");
    expect(&ws, "output symlink", 1, &["not a regular file"]);
    assert!(!ws.join("kiln-out/g.out").exists());
    rule("genrule(name = \"g\", outs = [\"g.out\"], cmd = \"mkdir $@\")\n");
    expect(&ws, "directory output", 1, &["not a regular file"]);

    // Writes to /tmp and $HOME land nowhere anyone else can see.
    rule(&format!(
        "genrule(name = \"g\", outs = [\"g.out\"], cmd = \"echo x > /tmp/{marker}; echo x > $$HOME/{marker} 2>/dev/null; ls /tmp > $@\")\n"
    ));
    let o = expect(&ws, "writes outside", 0, &[]);
    assert!(!Path::new(&format!("/tmp/{marker}")).exists());
    assert!(o.status.success());
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["sandbox"]["tmp_private"], true, "{summary}");

    // A runaway command: its timeout kills the whole tree, and processes it
    // left behind (even in a session of their own) die with it.
    rule(&format!(
        "genrule(name = \"g\", outs = [\"g.out\"], cmd = \"(setsid sh -c 'sleep 300; true' {marker} &); sleep 300\", timeout = 2)\n"
    ));
    let t0 = Instant::now();
    expect(&ws, "runaway", 1, &["timed out after 2 s"]);
    assert!(t0.elapsed() < Duration::from_secs(30));
    let survivors: Vec<String> = fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker) && c.contains("sleep 300"))
        .collect();
    assert!(
        survivors.is_empty(),
        "processes survived their action: {survivors:?}"
    );

    // Gigabytes of output: the log is cut to its tail, kiln stays small.
    rule(
        "genrule(name = \"g\", outs = [\"g.out\"], cmd = \"head -c 2000000000 /dev/zero | tr '\\\\0' x; echo the-end; exit 1\")\n",
    );
    let o = expect(&ws, "flood of output", 1, &["the-end"]);
    assert!(
        o.stderr.len() < 1 << 20,
        "log not capped: {} bytes",
        o.stderr.len()
    );

    // A fork bomb: bounded by the process limit, then by the timeout.
    rule(
        "genrule(name = \"g\", outs = [\"g.out\"], cmd = \"b() { b | b & }; b; sleep 60\", timeout = 5)\n",
    );
    let t0 = Instant::now();
    let o = expect(&ws, "fork bomb", 1, &["timed out after 5 s"]);
    assert!(t0.elapsed() < Duration::from_secs(60));
    let _ = o;
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(ws.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["sandbox"]["process_limit"], true, "{summary}");
}
