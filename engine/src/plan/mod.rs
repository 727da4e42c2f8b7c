//! Planning: from analysis to the one action graph execution runs.
//!
//! A [`Plan`] is the needed actions in dependency order, with the edges
//! between them and what the requested targets produce. It is the only
//! action graph: `kiln build`, `kiln test`, `kiln run`, `kiln explain`,
//! `kiln query 'actions(...)'` (for its checks) and the persisted no-op path
//! all use it. This module also owns the plan's persisted form and when it
//! is still valid (`persist.rs`: watched files, engine stamp) and the no-op
//! record that proves a build has nothing to do (`uptodate.rs`).
//!
//! Planning reads analysis; execution (`exec/`) reads only a `Plan`.

pub mod persist;
pub mod uptodate;

use std::collections::HashMap;

use kiln_cache::codec::{Reader, Writer};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::action::Action;
use crate::analysis::{Analysis, AnalysisError};
use crate::artifact::Artifact;
use crate::graph::config::ConfigRequest;
use crate::graph::find_cycle;
use crate::graph::target::TargetGraph;
use crate::label::{Label, TargetPattern};
use crate::load::provider::{RUN_INFO, TEST_INFO};

/// A requested target as the plan records it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanTarget {
    /// The target.
    pub label: Label,
    /// Its `DefaultInfo` files (execution paths).
    pub outputs: Vec<String>,
    /// `Some` for a test target (it returned `TestInfo`): the files its
    /// test actions write.
    pub test_results: Option<Vec<String>>,
    /// `Some` for a runnable target (it returned `RunInfo`).
    pub run: Option<RunTarget>,
}

/// What `kiln run` invokes, from a target's `RunInfo` (execution paths).
#[derive(Debug, Clone, PartialEq)]
pub struct RunTarget {
    /// The component (WASI command world).
    pub component: String,
    /// Its dynlink plan, if any.
    pub dynlink_plan: Option<String>,
    /// The stdlib zip, whose directory is mounted at `/lib`, if any.
    pub stdlib: Option<String>,
}

impl PlanTarget {
    fn new(label: &Label, files: &[Artifact], a: &Analysis) -> PlanTarget {
        let providers = a.providers.get(label);
        let find = |id| providers.and_then(|ps| ps.iter().find(|p| p.0.id == id));
        let paths = |v: Vec<Artifact>| v.iter().map(|f| f.path().to_owned()).collect::<Vec<_>>();
        let one = |p: &crate::load::provider::ProviderInstance, field: &str| {
            paths(p.field_files(field)).into_iter().next()
        };
        PlanTarget {
            label: label.clone(),
            outputs: paths(files.to_vec()),
            test_results: find(TEST_INFO).map(|p| paths(p.field_files("results"))),
            run: find(RUN_INFO).and_then(|p| {
                Some(RunTarget {
                    component: one(p, "component")?,
                    dynlink_plan: one(p, "dynlink_plan"),
                    stdlib: one(p, "stdlib"),
                })
            }),
        }
    }

    /// Encode (in persisted plans and no-op records).
    pub fn encode(&self, w: &mut Writer) {
        w.str(&self.label.to_string());
        put_list(w, &self.outputs);
        match &self.test_results {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                put_list(w, r);
            }
        }
        match &self.run {
            None => w.u8(0),
            Some(r) => {
                w.u8(1);
                w.str(&r.component);
                w.str(r.dynlink_plan.as_deref().unwrap_or(""));
                w.str(r.stdlib.as_deref().unwrap_or(""));
            }
        }
    }

    /// Decode what [`PlanTarget::encode`] wrote.
    pub fn decode(r: &mut Reader) -> Option<PlanTarget> {
        let label = Label::parse_absolute(r.str()?).ok()?;
        let outputs = get_list(r)?;
        let test_results = match r.u8()? {
            0 => None,
            _ => Some(get_list(r)?),
        };
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let run = match r.u8()? {
            0 => None,
            _ => Some(RunTarget {
                component: r.str()?.to_owned(),
                dynlink_plan: opt(r.str()?),
                stdlib: opt(r.str()?),
            }),
        };
        Some(PlanTarget {
            label,
            outputs,
            test_results,
            run,
        })
    }
}

fn put_list(w: &mut Writer, v: &[String]) {
    w.u32(v.len() as u32);
    v.iter().for_each(|x| w.str(x));
}

fn get_list(r: &mut Reader) -> Option<Vec<String>> {
    let n = r.u32()?;
    (0..n).map(|_| r.str().map(str::to_owned)).collect()
}

impl Plan {
    /// The plan for the targets `keep` accepts only: those targets and the
    /// actions they need, in the same order. (`kiln test` runs the test
    /// targets of a plan made for its patterns, without analysing again.)
    pub fn restrict(self, keep: impl Fn(&PlanTarget) -> bool) -> Plan {
        let targets: Vec<PlanTarget> = self.targets.into_iter().filter(|t| keep(t)).collect();
        let producer: HashMap<&str, usize> = self
            .actions
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.outputs.iter().map(move |o| (o.path(), i)))
            .collect();
        let mut needed = vec![false; self.actions.len()];
        let mut stack: Vec<usize> = targets
            .iter()
            .flat_map(|t| t.outputs.iter())
            .filter_map(|o| producer.get(o.as_str()).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut needed[i], true) {
                stack.extend(self.deps[i].iter().map(|d| *d as usize));
            }
        }
        let mut new_index = vec![u32::MAX; needed.len()];
        let mut next = 0;
        for (i, n) in needed.iter().enumerate() {
            if *n {
                new_index[i] = next;
                next += 1;
            }
        }
        let (actions, deps) = self
            .actions
            .into_iter()
            .zip(self.deps)
            .zip(&needed)
            .filter(|(_, n)| **n)
            .map(|((a, d), _)| (a, d.iter().map(|d| new_index[*d as usize]).collect()))
            .unzip();
        Plan {
            out_dir: self.out_dir,
            actions,
            deps,
            targets,
        }
    }
}

/// Every action's inputs are sources or some action's outputs, and the
/// actions form no cycle (reported as `//a:x#0 -> //b:y#0 -> //a:x#0`).
pub fn check_action_graph(a: &Analysis) -> Result<(), AnalysisError> {
    let mut graph: DiGraph<usize, ()> =
        DiGraph::with_capacity(a.actions.len(), a.actions.len() * 2);
    let nodes: Vec<NodeIndex> = (0..a.actions.len()).map(|i| graph.add_node(i)).collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, act) in a.actions.iter().enumerate() {
        for o in &act.outputs {
            producer.insert(o.path(), i);
        }
    }
    for (i, act) in a.actions.iter().enumerate() {
        for input in act.inputs.iter().filter(|x| !x.is_source()) {
            let Some(&p) = producer.get(input.path()) else {
                return Err(AnalysisError::Located {
                    location: act.location.clone(),
                    message: format!(
                        "Action `{}` reads `{}`, which no action produces",
                        act.name(),
                        input.path()
                    ),
                });
            };
            graph.update_edge(nodes[i], nodes[p], ());
        }
    }
    if let Some(cycle) = find_cycle(&graph, |n| graph[n]) {
        let names: Vec<String> = cycle
            .iter()
            .map(|n| a.actions[graph[*n]].name().to_string())
            .collect();
        return Err(AnalysisError::Located {
            location: a.actions[graph[cycle[0]]].location.clone(),
            message: format!("Action cycle: {}", names.join(" -> ")),
        });
    }
    Ok(())
}

/// Actions in dependency order and what the requested targets produce.
///
/// Invariant: every index in `deps[i]` is smaller than `i` (producers come
/// first), and `deps[i]` is sorted and free of duplicates.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The directory under `kiln-out/` where this configuration's outputs
    /// live in the workspace (`None`: `kiln-out/` itself, the default
    /// configuration). Execution paths do not include it.
    pub out_dir: Option<String>,
    /// The needed actions.
    pub actions: Vec<Action>,
    /// For each action, the actions producing its non-source inputs.
    pub deps: Vec<Vec<u32>>,
    /// Each requested rule target: its default outputs and what the
    /// engine's built-in providers say about it.
    pub targets: Vec<PlanTarget>,
}

/// What a command asks to build: target patterns in a configuration.
/// Persisted plans and no-op records are kept per request.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// The patterns.
    pub patterns: Vec<TargetPattern>,
    /// `--config` and `--set`.
    pub config: ConfigRequest,
}

impl Plan {
    /// Where execution path `p` is in the workspace (relative to its
    /// root): outputs of a non-default configuration are below
    /// `kiln-out/<out_dir>/`.
    pub fn workspace_path<'a>(&self, p: &'a str) -> std::borrow::Cow<'a, str> {
        crate::artifact::workspace_path(p, self.out_dir.as_deref())
    }

    /// The actions the requested targets (`g.roots`) need: the producers
    /// of their `DefaultInfo` files, transitively. Fails when an action
    /// reads an output nobody produces, or on an action cycle.
    pub fn from_analysis(g: &TargetGraph, a: &Analysis) -> Result<Plan, AnalysisError> {
        check_action_graph(a)?;
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, act) in a.actions.iter().enumerate() {
            for o in &act.outputs {
                producer.insert(o.path(), i);
            }
        }
        let mut targets = Vec::new();
        let mut needed = vec![false; a.actions.len()];
        let mut stack = Vec::new();
        for r in &g.roots {
            let node = &g.graph[*r];
            if node.decl().is_none() {
                continue;
            }
            let files = a.default_files(&node.label);
            for f in &files {
                if let Some(&p) = producer.get(f.path()) {
                    stack.push(p);
                }
            }
            targets.push(PlanTarget::new(&node.label, &files, a));
        }
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut needed[i], true) {
                continue;
            }
            for input in &a.actions[i].inputs {
                if let Some(&p) = producer.get(input.path()) {
                    stack.push(p);
                }
            }
        }
        // Topological order: producers first (the action graph is acyclic).
        let mut order = Vec::new();
        let mut state = vec![0u8; a.actions.len()];
        for start in (0..a.actions.len()).filter(|i| needed[*i]) {
            let mut st = vec![(start, false)];
            while let Some((i, done)) = st.pop() {
                if done {
                    state[i] = 2;
                    order.push(i);
                    continue;
                }
                if state[i] != 0 {
                    continue;
                }
                state[i] = 1;
                st.push((i, true));
                let mut ps: Vec<usize> = a.actions[i]
                    .inputs
                    .iter()
                    .filter_map(|x| producer.get(x.path()).copied())
                    .collect();
                ps.sort_unstable();
                ps.dedup();
                for p in ps.into_iter().rev() {
                    if state[p] == 0 {
                        st.push((p, false));
                    }
                }
            }
        }
        let new_index: HashMap<usize, u32> = order
            .iter()
            .enumerate()
            .map(|(n, i)| (*i, n as u32))
            .collect();
        let actions: Vec<Action> = order.iter().map(|i| a.actions[*i].clone()).collect();
        let deps = order
            .iter()
            .map(|i| {
                let mut d: Vec<u32> = a.actions[*i]
                    .inputs
                    .iter()
                    .filter_map(|x| producer.get(x.path()).map(|p| new_index[p]))
                    .collect();
                d.sort_unstable();
                d.dedup();
                d
            })
            .collect();
        Ok(Plan {
            out_dir: g.configuration.as_ref().and_then(|c| c.out_dir()),
            actions,
            deps,
            targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::action::{ActionKind, CommandAction};
    use crate::error::Location;

    fn action(name: &str, inputs: &[&Artifact]) -> Action {
        let owner = Label::parse_absolute(&format!("//p:{name}")).unwrap();
        Action {
            outputs: vec![Artifact::output(&owner, &format!("{name}.out"))],
            owner,
            index: 0,
            mnemonic: "Test".into(),
            kind: ActionKind::Command(CommandAction {
                argv: vec!["true".into()],
                env: BTreeMap::new(),
                tools: Vec::new(),
                network: false,
                ..Default::default()
            }),
            inputs: inputs.iter().map(|a| (*a).clone()).collect(),
            location: Location {
                file: "p/BUILD.star".into(),
                line: 1,
                col: 1,
            },
        }
    }

    fn target(a: &Action, test: bool) -> PlanTarget {
        PlanTarget {
            label: a.owner.clone(),
            outputs: vec![a.outputs[0].path().to_owned()],
            test_results: test.then(|| vec![a.outputs[0].path().to_owned()]),
            run: None,
        }
    }

    #[test]
    fn restrict_keeps_the_chosen_targets_and_what_they_need() {
        let a = action("a", &[]);
        let b = action("b", &[&a.outputs[0]]);
        let c = action("c", &[]);
        let plan = Plan {
            out_dir: None,
            targets: vec![target(&b, true), target(&c, false)],
            actions: vec![a.clone(), c.clone(), b.clone()],
            deps: vec![vec![], vec![], vec![0]],
        };
        let tests = plan.clone().restrict(|t| t.test_results.is_some());
        assert_eq!(tests.actions, vec![a, b]);
        assert_eq!(tests.deps, vec![vec![], vec![0]]);
        assert_eq!(tests.targets, vec![target(&tests.actions[1], true)]);
        let others = plan.restrict(|t| t.test_results.is_none());
        assert_eq!(others.actions, vec![c]);
        assert_eq!(others.deps, vec![Vec::<u32>::new()]);
    }
}
