//! The persisted plan, and when it is still valid.
//!
//! A plan (`mod.rs`) is what execution needs from loading and analysis. It is saved in
//! `kiln-out/.kiln/plan-<request digest>` (patterns and configuration) together with the state
//! (size, mtime, ctime, inode) of every file loading read: `kiln.toml`, each
//! BUILD.star and `.star` file, and each directory walked for a recursive
//! pattern, plus the engine version, the built-in ruleset's digest and the
//! `kiln` binary's own state. While all of them match, the next build reuses
//! the plan without running Starlark at all (DESIGN.md section 6: a no-op
//! near ninja's time). Any mismatch, or a file in a format this version does
//! not know, means loading and analysis run again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use kiln_cache::Stat;
use kiln_cache::codec::{Reader as R, Writer as W};

use super::{Plan, PlanTarget, Request};
use crate::action::{Action, ActionKind};
use crate::artifact::{Artifact, ArtifactKind};
use crate::error::Location;
use crate::graph::target::TargetGraph;
use crate::label::Label;
use crate::load::loader::Loader;

/// Format version of the persisted plan.
const PLAN_FORMAT: u32 = 11;

/// Where persisted plans live in a workspace.
pub fn plan_dir(root: &Path) -> PathBuf {
    crate::artifact::state_dir(root)
}

fn plan_path(root: &Path, req: &Request) -> PathBuf {
    super::uptodate::plan_file(root, req)
}

/// The files (and directories) whose state decides if a plan is current.
pub fn watched_files(loader: &Loader, g: &TargetGraph, read: &BTreeSet<String>) -> Vec<String> {
    let mut v = vec![crate::workspace::CONFIG_FILE.to_owned()];
    v.extend(read.iter().cloned());
    v.extend(g.packages.values().map(|p| p.build_file.clone()));
    v.extend(g.consulted.iter().cloned());
    v.extend(loader.star_files());
    v.extend(g.walked_dirs.iter().map(|d| {
        if d.is_empty() {
            ".".to_owned()
        } else {
            d.clone()
        }
    }));
    v.sort();
    v.dedup();
    v
}

/// The stat of a path, if it exists.
pub fn stat_of(p: &Path) -> Option<Stat> {
    fs::metadata(p).ok().map(|m| Stat::of(&m))
}

/// What identifies this kiln build: version, key version, ruleset, binary.
pub fn engine_stamp() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(env!("CARGO_PKG_VERSION").as_bytes());
    b.extend(crate::action::key::KEY_VERSION.to_le_bytes());
    b.extend(Loader::ruleset_digest());
    if let Some(st) = std::env::current_exe().ok().and_then(|p| stat_of(&p)) {
        b.extend(st.size.to_le_bytes());
        b.extend(st.mtime_ns.to_le_bytes());
        b.extend(st.ctime_ns.to_le_bytes());
    }
    b
}

/// The files a plan depends on, with the state they had when it was made.
pub type Watched = Vec<(String, Option<Stat>)>;

/// Save `plan`, valid while `watched` keep their current state. Returns
/// the watched files with those states. `since_ns` is when loading began
/// to read them: a file changed after that (or within a timestamp
/// granularity before it) is recorded as racy, which invalidates the plan.
pub fn save(
    root: &Path,
    req: &Request,
    watched: &[String],
    since_ns: i64,
    plan: &Plan,
) -> std::io::Result<Watched> {
    let states: Watched = watched
        .iter()
        .map(|f| {
            let st = fs::metadata(root.join(f))
                .ok()
                .map(|m| Stat::since(&m, since_ns));
            (f.clone(), st)
        })
        .collect();
    let bytes = encode(&engine_stamp(), &states, plan);
    let dir = plan_dir(root);
    fs::create_dir_all(&dir)?;
    let path = plan_path(root, req);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, &bytes)?;
    kiln_cache::fault::point("plan_persist");
    fs::rename(&tmp, &path)?;
    Ok(states)
}

/// The saved plan for `patterns`, if every watched file is unchanged, with
/// those files' states.
pub fn load(root: &Path, req: &Request) -> Option<(Plan, Watched)> {
    let bytes = fs::read(plan_path(root, req)).ok()?;
    decode(
        &bytes,
        |stamp| stamp == engine_stamp().as_slice(),
        |f, want| kiln_cache::stat::unchanged(want, stat_of(&root.join(f)).as_ref()),
    )
}

/// The bytes of a persisted plan file: a header (magic, format, the
/// engine `stamp`, the `watched` files with their states), then `plan`.
/// What [`save`] writes; public for the fuzzer's seeds.
#[doc(hidden)]
pub fn encode(stamp: &[u8], watched: &[(String, Option<Stat>)], plan: &Plan) -> Vec<u8> {
    let mut w = W(Vec::with_capacity(64 * 1024 + plan.actions.len() * 256));
    w.0.extend(b"KILNPLAN");
    w.u32(PLAN_FORMAT);
    w.bytes(stamp);
    w.u32(watched.len() as u32);
    for (f, st) in watched {
        w.str(f);
        w.stat(*st);
    }
    encode_plan(&mut w, plan);
    w.0
}

/// Read what [`encode`] wrote: `None` for bytes of another format, a
/// stamp `stamp_ok` rejects, a watched file `fresh` says changed (given
/// its path and recorded state), or malformed data. Never panics, and
/// allocates in proportion to `bytes` whatever its counts say. What
/// [`load`] runs; public for the fuzzer (`kiln-fuzz plan_codec`).
#[doc(hidden)]
pub fn decode(
    bytes: &[u8],
    stamp_ok: impl FnOnce(&[u8]) -> bool,
    mut fresh: impl FnMut(&str, Option<&Stat>) -> bool,
) -> Option<(Plan, Watched)> {
    let mut r = R(bytes);
    if r.take(8)? != b"KILNPLAN" || r.u32()? != PLAN_FORMAT || !stamp_ok(r.bytes()?) {
        return None;
    }
    let n = r.u32()?;
    let mut watched = Vec::with_capacity(capacity(n, &r));
    for _ in 0..n {
        let f = r.str()?;
        let want = r.stat()?;
        if !fresh(f, want.as_ref()) {
            return None;
        }
        watched.push((f.to_owned(), want));
    }
    decode_plan(&mut r).map(|p| (p, watched))
}

/// A capacity for `n` decoded items that the remaining input can back:
/// every item takes at least one byte, so a corrupt count cannot make a
/// reader allocate more than its input's size in items.
fn capacity(n: u32, r: &R) -> usize {
    (n as usize).min(r.0.len())
}

fn encode_plan(w: &mut W, p: &Plan) {
    w.str(p.out_dir.as_deref().unwrap_or(""));
    // Owner labels are shared by many artifacts: intern them.
    let mut labels: BTreeMap<String, u32> = BTreeMap::new();
    for a in &p.actions {
        let n = labels.len() as u32;
        labels.entry(a.owner.to_string()).or_insert(n);
        for x in a.inputs.iter().chain(&a.outputs) {
            if let ArtifactKind::Output { owner } = &x.0.kind {
                let n = labels.len() as u32;
                labels.entry(owner.to_string()).or_insert(n);
            }
        }
    }
    let mut by_index: Vec<&str> = vec![""; labels.len()];
    for (l, i) in &labels {
        by_index[*i as usize] = l;
    }
    w.u32(by_index.len() as u32);
    for l in &by_index {
        w.str(l);
    }
    // Artifacts are shared by their producer and consumers: a table of
    // unique artifacts, referenced by index.
    let mut arts: HashMap<&str, u32> = HashMap::new();
    let mut art_list: Vec<&Artifact> = Vec::new();
    for a in &p.actions {
        for x in a.outputs.iter().chain(&a.inputs) {
            arts.entry(x.path()).or_insert_with(|| {
                art_list.push(x);
                (art_list.len() - 1) as u32
            });
        }
    }
    w.u32(art_list.len() as u32);
    for a in &art_list {
        w.str(a.path());
        match &a.0.kind {
            ArtifactKind::Source => w.u32(u32::MAX),
            ArtifactKind::Output { owner } => w.u32(labels[&owner.to_string()]),
        }
    }
    let art = |w: &mut W, a: &Artifact| w.u32(arts[a.path()]);
    w.u32(p.actions.len() as u32);
    for (a, deps) in p.actions.iter().zip(&p.deps) {
        w.u32(labels[&a.owner.to_string()]);
        w.u32(a.index as u32);
        w.str(&a.mnemonic);
        w.str(&a.location.file);
        w.u32(a.location.line as u32);
        w.u32(a.location.col as u32);
        a.kind.encode(w);
        w.u32(a.inputs.len() as u32);
        a.inputs.iter().for_each(|x| art(w, x));
        w.u32(a.outputs.len() as u32);
        a.outputs.iter().for_each(|x| art(w, x));
        w.u32(deps.len() as u32);
        deps.iter().for_each(|d| w.u32(*d));
    }
    w.u32(p.targets.len() as u32);
    p.targets.iter().for_each(|t| t.encode(w));
}

fn decode_plan(r: &mut R) -> Option<Plan> {
    let out_dir = Some(r.str()?.to_owned()).filter(|d| !d.is_empty());
    let nl = r.u32()?;
    let mut labels = Vec::with_capacity(capacity(nl, r));
    for _ in 0..nl {
        labels.push(Label::parse_absolute(r.str()?).ok()?);
    }
    let nart = r.u32()?;
    let mut arts = Vec::with_capacity(capacity(nart, r));
    for _ in 0..nart {
        let path = r.str()?.to_owned();
        let owner = r.u32()?;
        arts.push(if owner == u32::MAX {
            Artifact::source(path)
        } else {
            Artifact(std::sync::Arc::new(crate::artifact::ArtifactData {
                path,
                kind: ArtifactKind::Output {
                    owner: labels.get(owner as usize)?.clone(),
                },
            }))
        });
    }
    let art = |r: &mut R, _: &[Label]| -> Option<Artifact> { arts.get(r.u32()? as usize).cloned() };
    let na = r.u32()?;
    let mut actions = Vec::with_capacity(capacity(na, r));
    let mut deps = Vec::with_capacity(capacity(na, r));
    for _ in 0..na {
        let owner = labels.get(r.u32()? as usize)?.clone();
        let index = r.u32()? as usize;
        let mnemonic = r.str()?.to_owned();
        let location = Location {
            file: r.str()?.to_owned(),
            line: r.u32()? as usize,
            col: r.u32()? as usize,
        };
        let kind = ActionKind::decode(r)?;
        let ni = r.u32()?;
        let inputs = (0..ni)
            .map(|_| art(r, &labels))
            .collect::<Option<Vec<_>>>()?;
        let no = r.u32()?;
        let outputs = (0..no)
            .map(|_| art(r, &labels))
            .collect::<Option<Vec<_>>>()?;
        let nd = r.u32()?;
        deps.push((0..nd).map(|_| r.u32()).collect::<Option<Vec<_>>>()?);
        if outputs.is_empty() || deps.last()?.iter().any(|d| *d as usize >= actions.len()) {
            return None;
        }
        actions.push(Action {
            owner,
            index,
            mnemonic,
            kind,
            inputs,
            outputs,
            location,
        });
    }
    let nt = r.u32()?;
    let targets = (0..nt)
        .map(|_| PlanTarget::decode(r))
        .collect::<Option<Vec<_>>>()?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Plan {
        out_dir,
        actions,
        deps,
        targets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{CommandAction, WriteAction};

    #[test]
    fn plan_round_trips() {
        let owner = Label::parse_absolute("//p:t").unwrap();
        let dep = Label::parse_absolute("//q:u").unwrap();
        let a = Action {
            owner: owner.clone(),
            index: 1,
            mnemonic: "Genrule".into(),
            kind: ActionKind::Command(CommandAction {
                argv: vec!["/bin/bash".into(), "-c".into(), "x".into()],
                env: [("A".to_owned(), "b".to_owned())].into_iter().collect(),
                tools: vec!["/usr/bin/tool".into()],
                network: true,
                exec_properties: [("OSFamily".to_owned(), "linux".to_owned())]
                    .into_iter()
                    .collect(),
                no_remote_exec: true,
                timeout: Some(30),
                progress_message: "Making u.out for //p:t — ü".into(),
                no_cache: true,
            }),
            inputs: vec![
                Artifact::source("p/s.txt".into()),
                Artifact::output(&dep, "u.out"),
            ],
            outputs: vec![Artifact::output(&owner, "t.out")],
            location: Location {
                file: "p/BUILD.star".into(),
                line: 3,
                col: 1,
            },
        };
        let w = Action {
            kind: ActionKind::Write(WriteAction {
                content: "hi\n".into(),
                is_executable: true,
            }),
            index: 0,
            inputs: vec![],
            outputs: vec![Artifact::output(&dep, "u.out")],
            owner: dep.clone(),
            ..a.clone()
        };
        let plan = Plan {
            out_dir: Some("debug".into()),
            actions: vec![w, a],
            deps: vec![vec![], vec![0]],
            targets: vec![PlanTarget {
                label: owner,
                outputs: vec!["kiln-out/p/t.out".into()],
                test_results: Some(vec!["kiln-out/p/t.out".into()]),
                run: Some(super::super::RunTarget {
                    component: "kiln-out/p/t.out".into(),
                    dynlink_plan: None,
                    stdlib: Some("kiln-out/p/lib/x.zip".into()),
                }),
            }],
        };
        let mut wr = W(Vec::new());
        encode_plan(&mut wr, &plan);
        assert_eq!(decode_plan(&mut R(&wr.0)), Some(plan));
        assert_eq!(
            decode_plan(&mut R(&wr.0[..wr.0.len() - 1])),
            None,
            "truncated data is rejected"
        );
    }
}
