//! Analysis: running each rule's implementation to get its providers and
//! actions.
//!
//! Owns the order of analysis (dependencies first, each level of the target
//! graph in parallel on rayon, one Starlark heap per target), the
//! conversion of attribute values into `ctx.attr`/`ctx.files`, and the checks
//! that span targets (two targets declaring one output). The `ctx` value and
//! `ctx.actions.*` are in `ctx.rs`; the target graph is `graph/`.

pub mod ctx;
pub mod make_vars;
pub mod wit;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use petgraph::graph::NodeIndex;
use rayon::prelude::*;
use starlark::environment::Module;
use starlark::eval::Evaluator;
use starlark::values::list::{AllocList, ListRef};
use starlark::values::structs::AllocStruct;
use starlark::values::{Value, ValueLike};

use self::ctx::{Actions, AnalysisContext, Ctx, Dependency};
use crate::action::{Action, ActionId};
use crate::artifact::Artifact;
use crate::error::{ErrorClass, Location, format_starlark_error};
use crate::graph::target::{NodeKind, TargetGraph};
use crate::label::Label;
use crate::load::attr::AttrValue;
use crate::load::loader::Loader;
use crate::load::provider::{DEFAULT_INFO, LabelValue, ProviderInstance};

/// Errors during analysis.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalysisError {
    /// A rule implementation failed or returned something malformed.
    #[error("{message}\n  while analyzing `{target}` (declared at {declared})")]
    Rule {
        /// `file:line:col: message`.
        message: String,
        /// The target being analyzed.
        target: Label,
        /// Where it was declared.
        declared: Location,
    },
    /// A conflict between targets.
    #[error("{location}: {message}")]
    Located {
        /// Where.
        location: Location,
        /// What and what to do.
        message: String,
    },
    /// A bug: a rule kind without a registered implementation.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl AnalysisError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            AnalysisError::Internal(_) => ErrorClass::Internal,
            _ => ErrorClass::User,
        }
    }
}

/// What analysis produced.
#[derive(Default)]
pub struct Analysis {
    /// Providers of each analyzed rule target.
    pub providers: HashMap<Label, Arc<Vec<ProviderInstance>>>,
    /// Every action, sorted by (owner, index); `ActionId` indexes this.
    pub actions: Vec<Action>,
    /// Actions of each analyzed target.
    pub actions_of: BTreeMap<Label, Vec<ActionId>>,
    /// Source files read during analysis (by `ctx.wit_world`): a persisted
    /// plan is valid only while they are unchanged.
    pub read_files: BTreeSet<String>,
}

impl Analysis {
    /// The files a target's `DefaultInfo` lists.
    pub fn default_files(&self, l: &Label) -> Vec<Artifact> {
        self.providers
            .get(l)
            .map(|ps| files_of(ps))
            .unwrap_or_default()
    }
}

/// One target's analysis: its providers and its actions.
type TargetResult = (Vec<ProviderInstance>, Vec<Action>, Vec<String>);

/// Analyze every rule target reachable from `roots`.
pub fn analyze(
    loader: &Loader,
    g: &TargetGraph,
    roots: &[NodeIndex],
) -> Result<Analysis, AnalysisError> {
    // Level of each reachable node: 0 for leaves, 1 + max over deps.
    let mut level: HashMap<NodeIndex, usize> = HashMap::new();
    let mut stack: Vec<(NodeIndex, bool)> = roots.iter().map(|n| (*n, false)).collect();
    while let Some((n, expanded)) = stack.pop() {
        if level.contains_key(&n) {
            continue;
        }
        if expanded {
            let l = g
                .graph
                .neighbors(n)
                .map(|m| level.get(&m).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0);
            level.insert(n, l);
        } else {
            stack.push((n, true));
            for m in g.graph.neighbors(n) {
                if !level.contains_key(&m) {
                    stack.push((m, false));
                }
            }
        }
    }
    let mut by_level: BTreeMap<usize, Vec<NodeIndex>> = BTreeMap::new();
    for (n, l) in &level {
        if matches!(g.graph[*n].kind, NodeKind::Rule { .. }) {
            by_level.entry(*l).or_default().push(*n);
        }
    }
    let mut out = Analysis::default();
    let mut actions: Vec<Action> = Vec::new();
    for (_, mut nodes) in by_level {
        nodes.sort_by(|a, b| g.graph[*a].label.cmp(&g.graph[*b].label));
        let results: Vec<Result<TargetResult, AnalysisError>> = nodes
            .par_iter()
            .map(|n| analyze_one(loader, g, *n, &out.providers))
            .collect();
        for (n, r) in nodes.iter().zip(results) {
            let (providers, acts, read) = r?;
            out.read_files.extend(read);
            out.providers
                .insert(g.graph[*n].label.clone(), Arc::new(providers));
            actions.extend(acts);
        }
    }
    actions.sort_by(|a, b| (&a.owner, a.index).cmp(&(&b.owner, b.index)));
    check_outputs(&actions, |l| {
        g.node(l)
            .and_then(|n| g.graph[n].decl())
            .map(|d| d.location.clone())
    })?;
    for (i, a) in actions.iter().enumerate() {
        out.actions_of
            .entry(a.owner.clone())
            .or_default()
            .push(ActionId(i));
    }
    out.actions = actions;
    Ok(out)
}

fn check_outputs(
    actions: &[Action],
    declared_at: impl Fn(&Label) -> Option<Location>,
) -> Result<(), AnalysisError> {
    let mut seen: HashMap<&str, &Action> = HashMap::new();
    for a in actions {
        for o in &a.outputs {
            if let Some(prev) = seen.insert(o.path(), a) {
                let at = |l: &Label| declared_at(l).map(|x| x.to_string()).unwrap_or_default();
                return Err(AnalysisError::Located {
                    location: declared_at(&a.owner).unwrap_or_else(|| a.location.clone()),
                    message: format!(
                        "Output `{}` of `{}` is already declared by `{}` (declared at {}, output declared at {}); two targets cannot declare the same output",
                        o.path(),
                        a.owner,
                        prev.owner,
                        at(&prev.owner),
                        prev.location
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Providers of any node: analyzed rules, or a `DefaultInfo` of one file.
fn node_providers(
    g: &TargetGraph,
    n: NodeIndex,
    done: &HashMap<Label, Arc<Vec<ProviderInstance>>>,
) -> Arc<Vec<ProviderInstance>> {
    let node = &g.graph[n];
    match &node.kind {
        NodeKind::Rule { .. } => done.get(&node.label).cloned().unwrap_or_default(),
        NodeKind::Source => Arc::new(vec![ProviderInstance::default_info(vec![
            Artifact::source(node.label.file_path()),
        ])]),
        NodeKind::Generated { rule } => Arc::new(vec![ProviderInstance::default_info(vec![
            Artifact::output(rule, node.label.name.as_str()),
        ])]),
    }
}

fn files_of(ps: &[ProviderInstance]) -> Vec<Artifact> {
    ps.iter()
        .find(|p| p.0.id == DEFAULT_INFO)
        .map(ProviderInstance::files)
        .unwrap_or_default()
}

fn analyze_one(
    loader: &Loader,
    g: &TargetGraph,
    n: NodeIndex,
    done: &HashMap<Label, Arc<Vec<ProviderInstance>>>,
) -> Result<TargetResult, AnalysisError> {
    let node = &g.graph[n];
    let decl = node
        .decl()
        .ok_or_else(|| AnalysisError::Internal(format!("`{}` is not a rule", node.label)))?;
    let implementation = loader.rule_impl(decl.rule.id).ok_or_else(|| {
        AnalysisError::Internal(format!(
            "no implementation registered for rule `{}`",
            decl.rule.kind()
        ))
    })?;
    let rule_err = |message: String| AnalysisError::Rule {
        message,
        target: node.label.clone(),
        declared: decl.location.clone(),
    };

    // Dependencies by label, with their providers.
    let mut deps: HashMap<Label, Dependency> = HashMap::new();
    for m in g.graph.neighbors(n) {
        let label = g.graph[m].label.clone();
        deps.insert(
            label.clone(),
            Dependency {
                label,
                providers: node_providers(g, m, done),
            },
        );
    }
    let dep_files = deps
        .iter()
        .map(|(l, d)| (l.clone(), files_of(&d.providers)))
        .collect();
    let actx = AnalysisContext {
        root: loader.workspace().root.clone(),
        read: Default::default(),
        label: node.label.clone(),
        declared: Default::default(),
        produced: Default::default(),
        actions: Default::default(),
        dep_files,
        own_files: Default::default(),
        tags: decl.tags.clone(),
        exec_properties: decl.exec_properties.iter().cloned().collect(),
    };

    let providers =
        Module::with_temp_heap(|module| -> Result<Vec<ProviderInstance>, AnalysisError> {
            let heap = module.heap();
            let mut attr = Vec::new();
            let mut files = Vec::new();
            let mut file = Vec::new();
            let mut outputs = Vec::new();
            let dep_value = |l: &Label| heap.alloc(deps[l].clone());
            for ((name, _), v) in decl.rule.attrs.iter().zip(&decl.attrs) {
                let value = match v {
                    AttrValue::Str(s) => heap.alloc(s.as_str()),
                    AttrValue::Bool(b) => Value::new_bool(*b),
                    AttrValue::Int(i) => heap.alloc(*i),
                    AttrValue::StrList(xs) => heap.alloc(AllocList(xs.iter().map(|x| x.as_str()))),
                    AttrValue::StrDict(xs) => heap.alloc(starlark::values::dict::AllocDict(
                        xs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    )),
                    AttrValue::Label(None) => Value::new_none(),
                    AttrValue::Label(Some(l)) => dep_value(l),
                    AttrValue::LabelList(ls) => heap.alloc(AllocList(ls.iter().map(dep_value))),
                    AttrValue::LabelStrDict(kv) => heap.alloc(starlark::values::dict::AllocDict(
                        kv.iter().map(|(l, v)| (dep_value(l), v.as_str())),
                    )),
                    AttrValue::Output(o) => {
                        let a = o
                            .as_ref()
                            .map(|o| actx.predeclare(o, decl.location.clone()));
                        let v = a.map(|a| heap.alloc(a)).unwrap_or_else(Value::new_none);
                        outputs.push((name.as_str(), v));
                        v
                    }
                    AttrValue::OutputList(os) => {
                        let arts: Vec<Artifact> = os
                            .iter()
                            .map(|o| actx.predeclare(o, decl.location.clone()))
                            .collect();
                        let v = heap.alloc(AllocList(arts));
                        outputs.push((name.as_str(), v));
                        v
                    }
                };
                attr.push((name.as_str(), value));
                if let AttrValue::Label(_) | AttrValue::LabelList(_) | AttrValue::LabelStrDict(_) =
                    v
                {
                    let fs: Vec<Artifact> = v
                        .labels()
                        .iter()
                        .flat_map(|l| files_of(&deps[l].providers))
                        .collect();
                    file.push((
                        name.as_str(),
                        if let [one] = fs.as_slice() {
                            heap.alloc(one.clone())
                        } else {
                            Value::new_none()
                        },
                    ));
                    files.push((name.as_str(), heap.alloc(AllocList(fs))));
                }
            }
            attr.push(("name", heap.alloc(node.label.name.as_str())));
            attr.push((
                "tags",
                heap.alloc(AllocList(decl.tags.iter().map(|t| t.as_str()))),
            ));
            let ctx = heap.alloc(Ctx {
                label: heap.alloc(LabelValue(node.label.clone())),
                attr: heap.alloc(AllocStruct(attr)),
                files: heap.alloc(AllocStruct(files)),
                file: heap.alloc(AllocStruct(file)),
                outputs: heap.alloc(AllocStruct(outputs)),
                actions: heap.alloc(Actions),
                // A setting's configured value; unconfigured, its default.
                build_setting_value: match decl
                    .setting_value
                    .as_ref()
                    .or_else(|| decl.attr("build_setting_default"))
                {
                    Some(AttrValue::Bool(b)) => Value::new_bool(*b),
                    Some(AttrValue::Str(s))
                        if crate::graph::config::ConfigKind::of(decl).is_some() =>
                    {
                        heap.alloc(s.as_str())
                    }
                    _ => Value::new_none(),
                },
                test_filter: match g
                    .configuration
                    .as_ref()
                    .and_then(|c| c.test_filter.as_deref())
                {
                    Some(f) => heap.alloc(f),
                    None => Value::new_none(),
                },
                runs_per_test: heap.alloc(
                    g.configuration
                        .as_ref()
                        .map_or(1, |c| c.runs_per_test.max(1)),
                ),
            });
            let def = implementation.owned_frozen_value_typed(module.frozen_heap());
            let f = def.as_ref().implementation.to_value();
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(&actx);
            let ret = crate::load::guard::guarded(&decl.rule.file, &mut eval, |e| {
                e.eval_function(f, &[ctx], &[])
            })
            .map_err(|(location, message)| AnalysisError::Located { location, message })?
            .map_err(|e| {
                // A make-variable error is the BUILD file's, as in Bazel.
                if let starlark::ErrorKind::Native(n) = e.kind()
                    && let Some(x) = n.downcast_ref::<make_vars::AttributeExpansionError>()
                {
                    return AnalysisError::Located {
                        location: decl.location.clone(),
                        message: format!(
                            "in the `{}` attribute of {} `{}`: {}",
                            x.attribute,
                            decl.rule.kind(),
                            node.label,
                            x.error
                        ),
                    };
                }
                rule_err(format_starlark_error(&e))
            })?;
            returned_providers(ret, decl.rule.kind())
                .map_err(|m| rule_err(format!("{}: {m}", decl.rule.file)))
        })?;

    let mut providers = providers;
    if !providers.iter().any(|p| p.0.id == DEFAULT_INFO) {
        // Default: the predeclared outputs.
        let outs: Vec<Artifact> = decl
            .predeclared_outputs()
            .iter()
            .map(|o| Artifact::output(&node.label, o.as_str()))
            .collect();
        providers.push(ProviderInstance::default_info(outs));
    }
    let declared = actx.declared.into_inner();
    let produced = actx.produced.into_inner();
    for (path, (_, loc)) in &declared {
        if !produced.contains_key(path) {
            return Err(rule_err(format!(
                "{loc}: Output `{path}` was declared but no action produces it; pass it in the `outputs` of an action or do not declare it"
            )));
        }
    }
    Ok((providers, actx.actions.into_inner(), actx.read.into_inner()))
}

fn returned_providers(ret: Value, kind: &str) -> Result<Vec<ProviderInstance>, String> {
    if ret.is_none() {
        return Ok(Vec::new());
    }
    let list = ListRef::from_value(ret).ok_or_else(|| {
        format!("The implementation of rule `{kind}` must return a list of providers, got a value of type `{}`", ret.get_type())
    })?;
    let mut out: Vec<ProviderInstance> = Vec::new();
    for v in list.content() {
        let p = v.downcast_ref::<ProviderInstance>().ok_or_else(|| {
            format!("The implementation of rule `{kind}` returned a `{}` in its list; only provider instances are allowed", v.get_type())
        })?;
        if out.iter().any(|q| q.0.id == p.0.id) {
            return Err(format!(
                "The implementation of rule `{kind}` returned `{}` twice",
                p.0.name
            ));
        }
        out.push(p.clone());
    }
    Ok(out)
}
