//! Evaluating a parsed query over the target graph: sets of nodes in label
//! order, the closure functions (`deps`, `rdeps`) and the filters.

use std::collections::{BTreeSet, HashMap, VecDeque};

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use super::QueryError;
use super::parse::{Expr, SetOp};
use crate::graph::target::TargetGraph;
use crate::label::TargetPattern;

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

    pub(super) fn eval(&self, e: &Expr) -> Result<Set, QueryError> {
        Ok(match e {
            Expr::Pattern(p) => self.pattern(p),
            Expr::Word(w) => {
                return Err(QueryError::Syntax {
                    expr: self.src.to_owned(),
                    message: format!("`{w}` is not a target set"),
                });
            }
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
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
                    "deps" => {
                        self.closure(&self.eval(&args[0])?, Direction::Outgoing, depth(1), None)
                    }
                    "rdeps" => {
                        let universe =
                            self.closure(&self.eval(&args[0])?, Direction::Outgoing, None, None);
                        let from: Set = self
                            .eval(&args[1])?
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
                        let set = self.eval(&args[1])?;
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
                    _ => Set::new(),
                }
            }
        })
    }
}
