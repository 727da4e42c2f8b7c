//! Loads a generated workspace of 10,000 genrule targets through the `kiln`
//! binary and checks the answers against the graph's own arithmetic.
//!
//! The graph has the shape of the shared benchmark generator: package
//! `p<k>` holds targets `t<i>`; each reads its source `s<i>.txt` and the
//! outputs of targets `(k-1, i)` and `(k-1, (7i+3) mod T)`.

// Integration tests drive the `kiln` binary and system tools directly.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

const P: usize = 100;
const T: usize = 100;

fn deps_of(k: usize, i: usize) -> BTreeSet<(usize, usize)> {
    if k == 0 {
        BTreeSet::new()
    } else {
        [(k - 1, i), (k - 1, (i * 7 + 3) % T)].into_iter().collect()
    }
}

fn generate(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("kiln.toml"), "").unwrap();
    fs::write(root.join("BUILD.star"), "").unwrap();
    for k in 0..P {
        let dir = root.join(format!("p{k:03}"));
        fs::create_dir_all(&dir).unwrap();
        let mut build = String::new();
        for i in 0..T {
            fs::write(dir.join(format!("s{i}.txt")), format!("source {k} {i}\n")).unwrap();
            let mut srcs = vec![format!("\"s{i}.txt\"")];
            srcs.extend(
                deps_of(k, i)
                    .iter()
                    .map(|(dk, di)| format!("\"//p{dk:03}:t{di}\"")),
            );
            build.push_str(&format!(
                "genrule(\n    name = \"t{i}\",\n    srcs = [{}],\n    outs = [\"t{i}.out\"],\n    cmd = \"cat $(SRCS) | cksum > $@\",\n)\n",
                srcs.join(", ")
            ));
        }
        fs::write(dir.join("BUILD.star"), build).unwrap();
    }
}

fn kiln(root: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kiln {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn ten_thousand_targets() {
    let root = std::env::temp_dir().join(format!("kiln-scale-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    generate(&root);

    // Every rule target is found.
    let all = kiln(&root, &["query", "//..."]);
    assert_eq!(all.lines().count(), P * T);
    assert!(all.lines().all(|l| l.starts_with("//p")));

    // deps() of the top target: its rule closure plus one source per rule.
    let mut rules = BTreeSet::new();
    let mut stack = vec![(P - 1, 0)];
    while let Some(n) = stack.pop() {
        if rules.insert(n) {
            stack.extend(deps_of(n.0, n.1));
        }
    }
    let deps = kiln(&root, &["query", "deps(//p099:t0)"]);
    let mut want: Vec<String> = rules
        .iter()
        .flat_map(|(k, i)| [format!("//p{k:03}:t{i}"), format!("//p{k:03}:s{i}.txt")])
        .collect();
    want.sort();
    assert_eq!(deps.lines().collect::<Vec<_>>(), want);

    // rdeps() of the deepest source: every target its edit must re-run.
    let mut dirty: BTreeSet<(usize, usize)> = [(0, 0)].into_iter().collect();
    for k in 1..P {
        for i in 0..T {
            if deps_of(k, i).iter().any(|d| dirty.contains(d)) {
                dirty.insert((k, i));
            }
        }
    }
    let rdeps = kiln(
        &root,
        &["query", "kind(genrule, rdeps(//..., //p000:s0.txt))"],
    );
    assert_eq!(rdeps.lines().count(), dirty.len());

    // Analysis of everything declares one action per target, in order.
    let actions = kiln(&root, &["query", "actions(//...)"]);
    let heads: Vec<&str> = actions
        .lines()
        .filter(|l| l.starts_with("action "))
        .collect();
    assert_eq!(heads.len(), P * T);
    assert_eq!(heads[0], "action //p000:t0#0 Genrule");
    assert!(actions.contains("  run: /bin/bash -c 'cat p099/s0.txt kiln-out/p098/t0.out kiln-out/p098/t3.out | cksum > kiln-out/p099/t0.out'\n"));

    fs::remove_dir_all(&root).unwrap();
}
