//! Evaluating a parsed query over the target graph: sets of nodes in label
//! order, the closure functions (`deps`, `rdeps`) and the filters.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::QueryError;
use super::parse::{Expr, SetOp};
use crate::graph::target::TargetGraph;
use crate::label::{PackagePath, TargetPattern};
use crate::load::attr::AttrValue;
use crate::load::rule::TargetDecl;

pub(super) type Set = BTreeSet<NodeIndexByLabel>;

/// A node ordered by its label, so sets iterate in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NodeIndexByLabel(pub(super) NodeIndex, u32);

impl PartialOrd for NodeIndexByLabel {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeIndexByLabel {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.1.cmp(&other.1)
    }
}

pub(super) struct Eval<'a> {
    pub(super) g: &'a TargetGraph,
    pub(super) rank: HashMap<NodeIndex, u32>,
    pub(super) src: &'a str,
    /// For `buildfiles`/`rbuildfiles`: each package's BUILD.star node
    /// first, then the `.star` files it loads.
    pub(super) build_files: HashMap<PackagePath, Vec<NodeIndex>>,
}

impl Eval<'_> {
    pub(super) fn wrap(&self, n: NodeIndex) -> NodeIndexByLabel {
        NodeIndexByLabel(n, self.rank[&n])
    }

    fn pattern(&self, p: &TargetPattern) -> Set {
        let mut out = Set::new();
        match p {
            TargetPattern::Single(l) => {
                if let Some(n) = self.g.node(l) {
                    out.insert(self.wrap(n));
                }
            }
            TargetPattern::AllInPackage(_) | TargetPattern::Recursive(_) => {
                for (path, pkg) in &self.g.packages {
                    let hit = match p {
                        TargetPattern::AllInPackage(x) => path == x,
                        TargetPattern::Recursive(x) => path.is_within(x),
                        TargetPattern::Single(_) => false,
                    };
                    if !hit {
                        continue;
                    }
                    for t in &pkg.declared.targets {
                        let l = crate::label::Label {
                            package: path.clone(),
                            name: t.name.clone(),
                        };
                        if let Some(n) = self.g.node(&l) {
                            out.insert(self.wrap(n));
                        }
                    }
                }
            }
        }
        out
    }

    fn closure(
        &self,
        from: &Set,
        dir: Direction,
        depth: Option<usize>,
        within: Option<&Set>,
    ) -> Set {
        let mut out: Set = from.clone();
        let mut q: VecDeque<(NodeIndex, usize)> = from.iter().map(|n| (n.0, 0)).collect();
        while let Some((n, d)) = q.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for m in self.g.graph.neighbors_directed(n, dir) {
                let w = self.wrap(m);
                if within.is_some_and(|u| !u.contains(&w)) {
                    continue;
                }
                if out.insert(w) {
                    q.push_back((m, d + 1));
                }
            }
        }
        out
    }

    fn regex(&self, w: &str) -> Result<regex::Regex, QueryError> {
        regex::Regex::new(w).map_err(|e| QueryError::Syntax {
            expr: self.src.to_owned(),
            message: format!("bad regular expression `{w}`: {e}"),
        })
    }

    /// The nodes on one shortest dependency path from a node of `from` to
    /// a node of `to` (empty when there is none).
    fn somepath(&self, from: &Set, to: &Set) -> Set {
        let mut parent: HashMap<NodeIndex, Option<NodeIndex>> = HashMap::new();
        let mut q: VecDeque<NodeIndex> = VecDeque::new();
        for n in from {
            parent.insert(n.0, None);
            q.push_back(n.0);
        }
        while let Some(n) = q.pop_front() {
            if to.contains(&self.wrap(n)) {
                let mut path = Set::new();
                let mut at = Some(n);
                while let Some(m) = at {
                    path.insert(self.wrap(m));
                    at = parent[&m];
                }
                return path;
            }
            for m in self.g.deps(n) {
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                    e.insert(Some(n));
                    q.push_back(m);
                }
            }
        }
        Set::new()
    }

    /// An attribute of a rule target as `attr()` matches it: strings as
    /// written, booleans `0`/`1`, lists `[a, b]`, dicts `{k: v}`.
    fn attr_text(d: &TargetDecl, name: &str) -> Option<String> {
        let list = |items: Vec<String>| format!("[{}]", items.join(", "));
        let dict = |items: Vec<String>| format!("{{{}}}", items.join(", "));
        Some(match name {
            "name" => d.name.to_string(),
            "tags" => list(d.tags.clone()),
            _ => match d.attr(name)? {
                AttrValue::Str(s) => s.clone(),
                AttrValue::Bool(b) => u8::from(*b).to_string(),
                AttrValue::Int(i) => i.to_string(),
                AttrValue::Label(l) => l.as_ref().map(|l| l.to_string()).unwrap_or_default(),
                AttrValue::LabelList(ls) => list(ls.iter().map(|l| l.to_string()).collect()),
                AttrValue::StrList(v) => list(v.clone()),
                AttrValue::StrDict(kv) => {
                    dict(kv.iter().map(|(k, v)| format!("{k}: {v}")).collect())
                }
                AttrValue::LabelStrDict(kv) => {
                    dict(kv.iter().map(|(k, v)| format!("{k}: {v}")).collect())
                }
                AttrValue::Output(o) => o.as_ref().map(|o| o.to_string()).unwrap_or_default(),
                AttrValue::OutputList(os) => list(os.iter().map(|o| o.to_string()).collect()),
            },
        })
    }

    pub(super) fn eval(&self, e: &Expr) -> Result<Set, QueryError> {
        self.eval_in(e, &[])
    }

    /// Evaluate `e` with the `let` variables `env` (innermost last).
    fn eval_in(&self, e: &Expr, env: &[(&str, Set)]) -> Result<Set, QueryError> {
        let word = |e: &Expr| match e {
            Expr::Word(w) => w.clone(),
            _ => String::new(),
        };
        Ok(match e {
            Expr::Pattern(p) => self.pattern(p),
            Expr::Var(name) => env
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            Expr::Let(name, value, body) => {
                let v = self.eval_in(value, env)?;
                let mut inner: Vec<(&str, Set)> = env.to_vec();
                inner.push((name, v));
                self.eval_in(body, &inner)?
            }
            Expr::Word(w) => {
                return Err(QueryError::Syntax {
                    expr: self.src.to_owned(),
                    message: format!("`{w}` is not a target set"),
                });
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.eval_in(a, env)?, self.eval_in(b, env)?);
                match op {
                    SetOp::Union => a.union(&b).copied().collect(),
                    SetOp::Intersect => a.intersection(&b).copied().collect(),
                    SetOp::Except => a.difference(&b).copied().collect(),
                }
            }
            Expr::Call(f, args) => {
                let depth = |i: usize| match args.get(i) {
                    Some(Expr::Word(d)) => d.parse::<usize>().ok(),
                    _ => None,
                };
                match f.as_str() {
                    "deps" => self.closure(
                        &self.eval_in(&args[0], env)?,
                        Direction::Outgoing,
                        depth(1),
                        None,
                    ),
                    "rdeps" => {
                        let universe = self.closure(
                            &self.eval_in(&args[0], env)?,
                            Direction::Outgoing,
                            None,
                            None,
                        );
                        let from: Set = self
                            .eval_in(&args[1], env)?
                            .intersection(&universe)
                            .copied()
                            .collect();
                        self.closure(&from, Direction::Incoming, depth(2), Some(&universe))
                    }
                    "kind" | "filter" => {
                        let Expr::Word(w) = &args[0] else {
                            return Ok(Set::new());
                        };
                        let re = self.regex(w)?;
                        let set = self.eval_in(&args[1], env)?;
                        set.into_iter()
                            .filter(|n| {
                                let node = &self.g.graph[n.0];
                                if f == "kind" {
                                    re.is_match(&node.kind_string())
                                } else {
                                    re.is_match(&node.label.to_string())
                                }
                            })
                            .collect()
                    }
                    "somepath" => {
                        self.somepath(&self.eval_in(&args[0], env)?, &self.eval_in(&args[1], env)?)
                    }
                    "allpaths" => {
                        let down = self.closure(
                            &self.eval_in(&args[0], env)?,
                            Direction::Outgoing,
                            None,
                            None,
                        );
                        let up = self.closure(
                            &self.eval_in(&args[1], env)?,
                            Direction::Incoming,
                            None,
                            None,
                        );
                        down.intersection(&up).copied().collect()
                    }
                    // Test rules are named `*_test`, as in Bazel.
                    "tests" => self
                        .eval_in(&args[0], env)?
                        .into_iter()
                        .filter(|n| {
                            self.g.graph[n.0]
                                .decl()
                                .is_some_and(|d| d.rule.kind().ends_with("_test"))
                        })
                        .collect(),
                    "attr" => {
                        let (name, re) = (word(&args[0]), self.regex(&word(&args[1]))?);
                        self.eval_in(&args[2], env)?
                            .into_iter()
                            .filter(|n| {
                                self.g.graph[n.0]
                                    .decl()
                                    .and_then(|d| Self::attr_text(d, &name))
                                    .is_some_and(|t| re.is_match(&t))
                            })
                            .collect()
                    }
                    "buildfiles" => {
                        let mut out = Set::new();
                        for n in self.eval_in(&args[0], env)? {
                            let pkg = &self.g.graph[n.0].label.package;
                            for &f in self.build_files.get(pkg).into_iter().flatten() {
                                out.insert(self.wrap(f));
                            }
                        }
                        out
                    }
                    "rbuildfiles" => {
                        let mut wanted = Set::new();
                        for a in args {
                            wanted.extend(self.eval_in(a, env)?);
                        }
                        let mut out = Set::new();
                        for files in self.build_files.values() {
                            if files.iter().any(|f| wanted.contains(&self.wrap(*f))) {
                                out.insert(self.wrap(files[0]));
                            }
                        }
                        out
                    }
                    "siblings" => {
                        let mut out = Set::new();
                        for n in self.eval_in(&args[0], env)? {
                            let pkg = &self.g.graph[n.0].label.package;
                            let Some(p) = self.g.packages.get(pkg) else {
                                continue;
                            };
                            for t in &p.declared.targets {
                                let l = crate::label::Label {
                                    package: pkg.clone(),
                                    name: t.name.clone(),
                                };
                                if let Some(m) = self.g.node(&l) {
                                    out.insert(self.wrap(m));
                                }
                            }
                        }
                        out
                    }
                    "labels" => {
                        let name = word(&args[0]);
                        let mut out = Set::new();
                        for n in self.eval_in(&args[1], env)? {
                            let Some(d) = self.g.graph[n.0].decl() else {
                                continue;
                            };
                            for l in d.attr(&name).map(AttrValue::labels).unwrap_or_default() {
                                if let Some(m) = self.g.node(l) {
                                    out.insert(self.wrap(m));
                                }
                            }
                        }
                        out
                    }
                    _ => Set::new(),
                }
            }
        })
    }
}
