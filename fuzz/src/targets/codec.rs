//! Binary record targets: the persisted plan and no-op record
//! (`plan_codec`), and the cache's records (`cache_codec`).
//!
//! Both hold decoders to two promises: arbitrary bytes give `None`,
//! never a panic or an allocation their size cannot back; and what
//! decodes re-encodes to bytes that decode and re-encode to the same
//! bytes (encoding normalizes: interned labels, merged artifacts).
//!
//! The plan seeds are real: the fixture workspaces of
//! `tests/fixtures/actions/` loaded, analyzed and planned by the engine,
//! then encoded as `kiln build` persists them.

use std::path::{Path, PathBuf};

use kiln_cache::codec::{Reader, Writer};
use kiln_cache::{ActionResult, Digest, OutputEntry, Stat};
use kiln_engine::analysis::analyze;
use kiln_engine::exec::record::Record;
use kiln_engine::graph::config::ConfigRequest;
use kiln_engine::graph::target::TargetGraph;
use kiln_engine::label::TargetPattern;
use kiln_engine::load::loader::Loader;
use kiln_engine::plan::{Plan, persist, uptodate};
use kiln_engine::workspace::Workspace;

use super::{Run, Target, regression_seeds, repo_root};

/// Tokens of kiln's binary records: magics, format numbers, small
/// length-prefixed strings, stats.
const RECORD_DICT: &[&[u8]] = &[
    b"KILNPLAN",
    b"KILNUP2D",
    &[11, 0, 0, 0],
    &[3, 0, 0, 0],
    &[0, 0, 0, 0],
    &[1, 0, 0, 0],
    &[0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0x7f],
    &[4, 0, 0, 0, b'/', b'/', b':', b'a'],
    &[3, 0, 0, 0, b'a', b'/', b'b'],
    &[1, 0, 0, 0, 0xff],
    &[1, 0, 0, 0, 0xc3],
    &[1],
    &[0],
    &[0xff; 8],
    &[0; 32],
];

/// `plan_codec`: `plan::persist::decode` (the plan file, stamp and
/// watched files not compared), `plan::uptodate::decode` and
/// `uptodate::changed_offset` (the no-op record).
pub const PLAN_CODEC: Target = Target {
    name: "plan_codec",
    about: "persisted plan and no-op record decoding (engine/src/plan/persist.rs, uptodate.rs, action kinds' codecs)",
    max_len: 256 * 1024,
    dict: RECORD_DICT,
    seeds: plan_seeds,
    setup: plan_setup,
};

/// The stamp seeds are encoded with (decoding here accepts any).
const STAMP: &[u8] = b"kiln-fuzz";

fn stat(n: u64) -> Stat {
    Stat {
        size: n,
        mtime_ns: 1_700_000_000_000_000_000 + n as i64,
        ctime_ns: -(n as i64),
        inode: n * 7,
        racy: n % 2 == 1,
    }
}

/// Plans of the fixture workspaces that load and analyze.
fn fixture_plans() -> Vec<Plan> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/fixtures/actions"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("ws"))
        .filter(|p| p.join("kiln.toml").is_file())
        .collect();
    dirs.sort();
    let all = [TargetPattern::Recursive(
        kiln_engine::label::PackagePath::root(),
    )];
    let config = ConfigRequest::default();
    dirs.iter()
        .filter_map(|d| {
            let ws = Workspace::discover(d).ok()?;
            let loader = Loader::new(ws).ok()?;
            let g = TargetGraph::load(&loader, &all, true, Some(&config)).ok()?;
            let a = analyze(&loader, &g, &g.roots).ok()?;
            Plan::from_analysis(&g, &a).ok()
        })
        .collect()
}

fn plan_seeds() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for (i, plan) in fixture_plans().into_iter().enumerate() {
        let watched: persist::Watched = [
            ("kiln.toml", Some(stat(1))),
            ("BUILD.star", Some(stat(2))),
            ("gone/BUILD.star", None),
        ]
        .iter()
        .map(|(f, s)| ((*f).to_owned(), *s))
        .collect();
        let mut plan = plan;
        if i % 2 == 1 {
            plan.out_dir = Some("debug".to_owned());
        }
        v.push(persist::encode(STAMP, &watched, &plan));
        let files: Vec<(PathBuf, Option<Stat>)> = plan
            .actions
            .iter()
            .flat_map(|a| a.outputs.iter().chain(&a.inputs))
            .enumerate()
            .map(|(n, f)| {
                (
                    PathBuf::from(f.path()),
                    (n % 3 != 0).then(|| stat(n as u64)),
                )
            })
            .collect();
        let done = uptodate::NoOp {
            total: plan.actions.len(),
            changed: plan.actions.iter().map(|a| a.name().to_string()).collect(),
            targets: plan.targets,
            out_dir: plan.out_dir,
        };
        v.push(uptodate::encode(
            STAMP,
            Path::new("/home/u/.cache/kiln"),
            Some(stat(3)),
            &files,
            &done,
        ));
    }
    v.extend(regression_seeds("plan_codec"));
    v
}

fn plan_setup() -> Run {
    Box::new(|b| {
        let mut accepted = false;
        if let Some((plan, watched)) = persist::decode(b, |_| true, |_, _| true) {
            let once = persist::encode(STAMP, &watched, &plan);
            let (plan2, watched2) =
                persist::decode(&once, |_| true, |_, _| true).expect("a re-encoded plan decodes");
            assert_eq!(
                persist::encode(STAMP, &watched2, &plan2),
                once,
                "a plan re-encodes to the same bytes"
            );
            accepted = true;
        }
        if let Some(r) = uptodate::decode(b) {
            let once = encode_record(&r);
            let r2 = uptodate::decode(&once).expect("a re-encoded no-op record decodes");
            assert_eq!(
                encode_record(&r2),
                once,
                "a no-op record re-encodes to the same bytes"
            );
            accepted = true;
        }
        if let Some(at) = uptodate::changed_offset(b) {
            assert!(at <= b.len());
        }
        accepted
    })
}

fn encode_record(r: &uptodate::Record) -> Vec<u8> {
    let files: Vec<(PathBuf, Option<Stat>)> = r
        .files
        .iter()
        .map(|(p, s)| (PathBuf::from(p), *s))
        .collect();
    uptodate::encode(
        r.stamp,
        Path::new(r.cache_dir),
        r.plan_state,
        &files,
        &r.done,
    )
}

/// `cache_codec`: `ActionResult::decode`, `exec::record::Record::decode`
/// and the `codec::Reader` primitives in any order.
pub const CACHE_CODEC: Target = Target {
    name: "cache_codec",
    about: "cache records: kiln_cache::ActionResult, exec::record::Record and codec::Reader (cache/src/result.rs, codec.rs, engine/src/exec/record.rs)",
    max_len: 64 * 1024,
    dict: RECORD_DICT,
    seeds: cache_seeds,
    setup: cache_setup,
};

fn cache_seeds() -> Vec<Vec<u8>> {
    let d = |s: &str| Digest::of(s.as_bytes());
    let results = [
        ActionResult {
            outputs: Vec::new(),
            log: None,
        },
        ActionResult {
            outputs: vec![
                OutputEntry {
                    path: "kiln-out/a/x.o".to_owned(),
                    digest: d("x"),
                    size: 1,
                    executable: false,
                },
                OutputEntry {
                    path: "kiln-out/a/tool".to_owned(),
                    digest: d("tool"),
                    size: 1 << 40,
                    executable: true,
                },
            ],
            log: Some(d("log")),
        },
    ];
    let mut v: Vec<Vec<u8>> = results.iter().map(ActionResult::encode).collect();
    v.push(
        Record {
            reason: "inputs changed: `a/x.c`".to_owned(),
            key: d("key"),
            command: d("cmd"),
            inputs: vec![("a/x.c".to_owned(), d("x.c")), ("é".to_owned(), d(""))],
        }
        .encode(),
    );
    // A script for the reader: each op code, then its operand.
    let mut w = Writer::default();
    for op in 0..8u8 {
        w.u8(op);
        match op {
            0 => w.u8(7),
            1 => w.u32(42),
            2 => w.u64(u64::MAX),
            3 => w.bytes(b"bytes"),
            4 => w.str("str"),
            5 => w.digest(&d("digest")),
            6 => w.stat(Some(stat(9))),
            _ => w.stat(None),
        }
    }
    v.push(w.0);
    v.extend(regression_seeds("cache_codec"));
    v
}

fn cache_setup() -> Run {
    Box::new(|b| {
        let mut accepted = false;
        if let Some(r) = ActionResult::decode(b) {
            assert_eq!(
                ActionResult::decode(&r.encode()).as_ref(),
                Some(&r),
                "an action result round-trips"
            );
            accepted = true;
        }
        if let Some(r) = Record::decode(b) {
            assert_eq!(
                Record::decode(&r.encode()).as_ref(),
                Some(&r),
                "a run record round-trips"
            );
            accepted = true;
        }
        // The reader primitives, driven by the input itself: an op code,
        // then that op's read, until the input runs out.
        let mut r = Reader(b);
        while let Some(op) = r.u8() {
            let before = r.0.len();
            let ok = match op % 9 {
                0 => r.u8().is_some(),
                1 => r.u32().is_some(),
                2 => r.u64().is_some(),
                3 => r.bytes().is_some(),
                4 => r.str().is_some(),
                5 => r.digest().is_some(),
                6 | 7 => r.stat().is_some(),
                _ => {
                    let n = r.u8().map_or(0, usize::from);
                    r.take(n).is_some()
                }
            };
            assert!(r.0.len() <= before, "a read never grows the input");
            if !ok {
                break;
            }
        }
        accepted
    })
}
