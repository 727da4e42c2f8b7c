//! Text targets: labels, target patterns, query expressions and
//! `kiln.toml`. Inputs are read as UTF-8, invalid sequences replaced, so
//! every input reaches the parser.

use kiln_engine::label::{Label, PackagePath, TargetName, TargetPattern};

use super::{Run, Target, quoted_strings, regression_seeds, repo_file_contents};

/// Tokens of labels and patterns.
const LABEL_DICT: &[&[u8]] = &[
    b"//",
    b":",
    b"/",
    b"...",
    b"/...",
    b".",
    b"..",
    b"@",
    b"@repo//",
    b":all",
    b":*",
    b":all-targets",
    b"__pkg__",
    b"__subpackages__",
    b"//visibility:public",
    b"\\",
    b"\"",
    b"'",
    b"\x00",
    b"\n",
    b"\xc3\xa9",
    b"\xe2\x80\xae",
    b"\xff",
    b"//:",
    b"pkg/sub",
];

/// `label`: `Label::parse_absolute`, `Label::parse_relative` (in the root
/// package and in `pkg/sub`), `PackagePath::new` and `TargetName::new`;
/// a parsed label prints as a label that parses to itself.
pub const LABEL: Target = Target {
    name: "label",
    about: "Label, PackagePath and TargetName parsing (engine/src/label.rs), with a print-and-reparse check",
    max_len: 512,
    dict: LABEL_DICT,
    seeds: label_seeds,
    setup: label_setup,
};

fn label_seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "//a/b:c",
        "//a/b",
        "//:x",
        ":t",
        "t",
        "sub/file.txt",
        "//a:sub/file.txt",
        "//visibility:public",
        "//pkg:__subpackages__",
        "@repo//a:b",
        "//a//b:c",
        "//a/../b:c",
        "//a:b:c",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.extend(quoted_strings("BUILD.star", |s| {
        s.starts_with("//") || s.starts_with(':')
    }));
    v.extend(regression_seeds("label"));
    v
}

fn label_setup() -> Run {
    let bases = [Some(PackagePath::root()), PackagePath::new("pkg/sub").ok()];
    Box::new(move |b| {
        let s = String::from_utf8_lossy(b);
        let mut accepted = false;
        if let Ok(l) = Label::parse_absolute(&s) {
            check_label(&l);
            accepted = true;
        }
        for base in bases.iter().flatten() {
            if let Ok(l) = Label::parse_relative(&s, base) {
                check_label(&l);
                accepted = true;
            }
        }
        if let Ok(p) = PackagePath::new(&s) {
            assert_eq!(PackagePath::new(p.as_str()).as_ref(), Ok(&p));
            let _ = (p.last_segment(), p.join("x"), p.to_string());
            accepted = true;
        }
        if let Ok(n) = TargetName::new(&s) {
            assert_eq!(TargetName::new(n.as_str()).as_ref(), Ok(&n));
            accepted = true;
        }
        accepted
    })
}

/// A label prints as text that parses back to it.
fn check_label(l: &Label) {
    let text = l.to_string();
    assert_eq!(
        Label::parse_absolute(&text).as_ref(),
        Ok(l),
        "`{text}` does not parse back to the label it prints"
    );
    assert!(l.package.is_within(&PackagePath::root()));
    let _ = l.file_path();
}

/// `pattern`: `TargetPattern::parse`; a parsed pattern prints as a
/// pattern that parses to itself.
pub const PATTERN: Target = Target {
    name: "pattern",
    about: "TargetPattern::parse (engine/src/label.rs), with a print-and-reparse check",
    max_len: 512,
    dict: LABEL_DICT,
    seeds: pattern_seeds,
    setup: pattern_setup,
};

fn pattern_seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "//...",
        "//pkg/...",
        "//pkg:all",
        "//pkg:*",
        "//pkg:all-targets",
        "pkg/...",
        "//pkg:name",
        "//pkg",
        "...",
        "//:all",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for args in repo_file_contents("args") {
        let args = String::from_utf8_lossy(&args);
        let mut lines = args.lines();
        if matches!(lines.next(), Some("build" | "test")) {
            v.extend(lines.map(|l| l.as_bytes().to_vec()));
        }
    }
    v.extend(regression_seeds("pattern"));
    v
}

fn pattern_setup() -> Run {
    Box::new(|b| {
        let s = String::from_utf8_lossy(b);
        let Ok(p) = TargetPattern::parse(&s) else {
            return false;
        };
        let text = p.to_string();
        assert_eq!(
            TargetPattern::parse(&text).as_ref(),
            Ok(&p),
            "`{text}` does not parse back to the pattern it prints"
        );
        true
    })
}

/// `query`: the query language's parser, `ops::query::parse`.
pub const QUERY: Target = Target {
    name: "query",
    about: "the query expression parser (engine/src/ops/query/parse.rs)",
    // The longest command-line argument Linux passes.
    max_len: 128 * 1024,
    dict: &[
        b"deps(",
        b"rdeps(",
        b"kind(",
        b"filter(",
        b"actions(",
        b"somepath(",
        b"allpaths(",
        b"tests(",
        b"attr(",
        b"labels(",
        b"buildfiles(",
        b"rbuildfiles(",
        b"siblings(",
        b"(",
        b")",
        b", ",
        b" + ",
        b" - ",
        b" ^ ",
        b" union ",
        b" intersect ",
        b" except ",
        b"let ",
        b" = ",
        b" in ",
        b"$v",
        b"$",
        b"\"",
        b"'",
        b"//...",
        b"//a:b",
        b":all",
        b"1",
        b"-1",
        b"99999999999999999999",
        b".*",
        b"[",
        b"\x00",
    ],
    seeds: query_seeds,
    setup: query_setup,
};

fn query_seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "deps(//a:b)",
        "deps(//a:b, 2)",
        "rdeps(//..., //a:b, 1)",
        "kind('genrule', //...)",
        "let v = deps(//a) in $v - //a:all",
        "somepath(//a, //b) + allpaths(//a, //b) ^ //c:all",
        "attr(tags, 'manual', //...)",
        "labels(srcs, //a:b)",
        "actions(//...)",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for args in repo_file_contents("args") {
        let args = String::from_utf8_lossy(&args);
        let mut lines = args.lines();
        if lines.next() == Some("query")
            && let Some(expr) = lines.next()
        {
            v.push(expr.as_bytes().to_vec());
        }
    }
    v.extend(regression_seeds("query"));
    v
}

fn query_setup() -> Run {
    Box::new(|b| kiln_engine::ops::query::parse(&String::from_utf8_lossy(b)).is_ok())
}

/// `kiln_toml`: `workspace::parse_config`, and the error's message.
pub const KILN_TOML: Target = Target {
    name: "kiln_toml",
    about: "kiln.toml parsing and its located errors (engine/src/workspace.rs)",
    max_len: 16 * 1024,
    dict: &[
        b"default_visibility = \"private\"\n",
        b"remote_cache = \"grpc://127.0.0.1:9\"\n",
        b"remote_executor = ",
        b"remote_instance_name = ",
        b"remote_upload = false\n",
        b"remote_header = [\"a=1\", \"b = 2\"]\n",
        b"remote_timeout = ",
        b"remote_download_outputs = \"toplevel\"\n",
        b"[config.debug]\n",
        b"[config.",
        b"\"//settings:opt\" = \"debug\"\n",
        b"[[",
        b"]]",
        b"[",
        b"]",
        b"{",
        b"}",
        b"=",
        b"\"",
        b"'''",
        b"\"\"\"",
        b"\n",
        b"#",
        b".",
        b"18446744073709551616",
        b"-9223372036854775808",
        b"1979-05-27T07:32:00Z",
        b"\xc3\xa9",
        b"\xe2\x80\xae",
        b"\x00",
        b"\\u",
    ],
    seeds: kiln_toml_seeds,
    setup: kiln_toml_setup,
};

fn kiln_toml_seeds() -> Vec<Vec<u8>> {
    let mut v = repo_file_contents("kiln.toml");
    v.push(
        b"default_visibility = \"private\"\nremote_cache = \"http://127.0.0.1:8080/c\"\n\
          remote_instance_name = \"main\"\nremote_upload = false\n\
          remote_header = [\"authorization=Bearer x\"]\nremote_timeout = 5\n\
          remote_download_outputs = \"all\"\n[config.opt]\n\"//s:fast\" = true\n"
            .to_vec(),
    );
    v.extend(regression_seeds("kiln_toml"));
    v
}

fn kiln_toml_setup() -> Run {
    Box::new(
        |b| match kiln_engine::workspace::parse_config(&String::from_utf8_lossy(b)) {
            Ok(_) => true,
            Err(e) => {
                let _ = e.to_string();
                false
            }
        },
    )
}
