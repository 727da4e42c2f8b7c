//! The fuzzer under `cargo test`: every committed regression input
//! (`fuzz/regressions/<target>/`) replays without a crash, and every
//! target survives a short fixed-seed run (2,000 executions or 3 s,
//! whichever comes first). Longer runs: `tests/fuzz/run.sh`.

use std::time::Duration;

use kiln_fuzz::run::{self, Options};
use kiln_fuzz::targets::{self, Target};

#[test]
fn regression_inputs_replay_without_crashing() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for t in targets::all() {
        let files = targets::regression_files(t.name);
        let inputs: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(f).expect("a readable regression input"))
            .collect();
        replayed += inputs.len();
        for (f, r) in files.iter().zip(run::replay(t, &inputs)) {
            if let Err(c) = r {
                failures.push(format!("{}: {:?}: {}", f.display(), c.kind, c.message));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(replayed > 0, "no regression inputs found");
    // Every directory names a target (a renamed target would silently
    // stop replaying its inputs).
    for e in std::fs::read_dir(targets::regressions_dir()).expect("fuzz/regressions") {
        let name = e.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            targets::find(&name).is_some(),
            "fuzz/regressions/{name} is not a target"
        );
    }
}

fn smoke(name: &str) {
    let t: &'static Target = targets::find(name).expect("a target");
    let r = run::fuzz(
        t,
        &Options {
            time: Some(Duration::from_secs(3)),
            runs: Some(2_000),
            seed: 1,
            ..Options::default()
        },
    );
    let found: Vec<String> = r
        .found
        .iter()
        .map(|c| {
            format!(
                "{:?}: {} (input {:?})",
                c.kind,
                c.message,
                String::from_utf8_lossy(&c.input)
            )
        })
        .collect();
    assert_eq!(r.crashes, 0, "{name} crashed: {found:#?}");
    assert!(r.executions > 0);
}

macro_rules! smoke_tests {
    ($($name:ident)*) => {
        $(#[test]
        fn $name() {
            smoke(stringify!($name));
        })*

        /// Every target has a smoke test.
        #[test]
        fn every_target_is_smoked() {
            let mut listed = [$(stringify!($name)),*];
            listed.sort_unstable();
            let mut all: Vec<&str> = targets::all().iter().map(|t| t.name).collect();
            all.sort_unstable();
            assert_eq!(listed.to_vec(), all);
        }
    };
}

smoke_tests! {
    label pattern query build_file kiln_toml plan_codec cache_codec reapi_result http_result
}
