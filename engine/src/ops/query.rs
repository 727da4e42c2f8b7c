//! `kiln query`: a small Bazel-compatible query language over the target
//! graph, and `actions(...)`, which dumps declared actions.
//!
//! Grammar (operators left-associative, equal precedence, as in Bazel):
//! ```text
//! expr := term { ("+" | "union" | "^" | "intersect" | "-" | "except") term }
//! term := NAME "(" expr { "," expr } ")" | "(" expr ")" | WORD
//! ```
//! Functions: `deps(x)`, `deps(x, depth)`, `rdeps(universe, x)`,
//! `rdeps(universe, x, depth)`, `kind(regex, x)`, `filter(regex, x)`, and at
//! the top level only `actions(x)`. WORDs are target patterns.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt::Write as _;

use petgraph::Direction;
use petgraph::graph::NodeIndex;

use crate::analysis::{AnalysisError, analyze};
use crate::error::ErrorClass;
use crate::graph::target::{GraphError, TargetGraph};
use crate::label::{LabelError, TargetPattern};
use crate::load::loader::Loader;

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One label per line.
    Label,
    /// `<kind> <label>` per line.
    LabelKind,
    /// A Graphviz digraph of the result and the edges among it.
    Dot,
    /// A JSON array of `{"label", "kind", "deps"}`.
    Json,
}

/// Errors of `kiln query`.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The expression does not parse or is misused.
    #[error("Invalid query `{expr}`: {message}")]
    Syntax {
        /// The expression.
        expr: String,
        /// What is wrong.
        message: String,
    },
    /// A bad pattern in the expression.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// Loading failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Analysis (for `actions(...)`) failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

impl QueryError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            QueryError::Graph(e) => e.class(),
            QueryError::Analysis(e) => e.class(),
            _ => ErrorClass::User,
        }
    }
}

/// A parsed query expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A target pattern.
    Pattern(TargetPattern),
    /// A plain word used as a function argument (regex, depth).
    Word(String),
    /// `f(args...)`.
    Call(String, Vec<Expr>),
    /// `a op b`.
    Binary(SetOp, Box<Expr>, Box<Expr>),
}

/// Set operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// `+`, `union`.
    Union,
    /// `^`, `intersect`.
    Intersect,
    /// `-`, `except`.
    Except,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Word(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::Open);
            }
            ')' => {
                chars.next();
                out.push(Tok::Close);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '"' | '\'' => {
                chars.next();
                let mut w = String::new();
                loop {
                    match chars.next() {
                        Some(x) if x == c => break,
                        Some(x) => w.push(x),
                        None => {
                            return Err(format!("unterminated quoted word starting with {c}{w}"));
                        }
                    }
                }
                out.push(Tok::Word(w));
            }
            _ => {
                let mut w = String::new();
                while let Some(&x) = chars.peek() {
                    if x.is_whitespace() || matches!(x, '(' | ')' | ',') {
                        break;
                    }
                    w.push(x);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

const FUNCTIONS: &[&str] = &["deps", "rdeps", "kind", "filter", "actions"];

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut lhs = self.term()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Word(w)) => match w.as_str() {
                    "+" | "union" => SetOp::Union,
                    "^" | "intersect" => SetOp::Intersect,
                    "-" | "except" => SetOp::Except,
                    _ => {
                        return Err(format!(
                            "expected an operator (`+`, `^`, `-`) or the end, found `{w}`"
                        ));
                    }
                },
                _ => return Ok(lhs),
            };
            self.pos += 1;
            let rhs = self.term()?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_close()?;
                Ok(e)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::Open) {
                    if !FUNCTIONS.contains(&w.as_str()) {
                        return Err(format!(
                            "unknown function `{w}`; known functions: {}",
                            FUNCTIONS.join(", ")
                        ));
                    }
                    self.pos += 1;
                    let mut args = vec![self.arg()?];
                    while self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                        args.push(self.arg()?);
                    }
                    self.expect_close()?;
                    return Ok(Expr::Call(w, args));
                }
                Ok(Expr::Word(w))
            }
            Some(t) => Err(format!(
                "unexpected `{}`",
                match t {
                    Tok::Close => ")",
                    Tok::Comma => ",",
                    _ => "?",
                }
            )),
            None => Err("unexpected end of the expression".to_owned()),
        }
    }

    fn arg(&mut self) -> Result<Expr, String> {
        self.expr()
    }

    fn expect_close(&mut self) -> Result<(), String> {
        if self.peek() == Some(&Tok::Close) {
            self.pos += 1;
            Ok(())
        } else {
            Err("expected `)`".to_owned())
        }
    }
}

/// Parse a query expression.
pub fn parse(expr: &str) -> Result<Expr, QueryError> {
    let syntax = |message: String| QueryError::Syntax {
        expr: expr.to_owned(),
        message,
    };
    let toks = tokenize(expr).map_err(syntax)?;
    let mut p = Parser { toks, pos: 0 };
    let e = p.expr().map_err(syntax)?;
    if p.pos != p.toks.len() {
        return Err(syntax("unexpected text after the expression".to_owned()));
    }
    resolve_patterns(e, expr, true)
}

/// Turn words in set positions into patterns, checking arities.
fn resolve_patterns(e: Expr, src: &str, top: bool) -> Result<Expr, QueryError> {
    let syntax = |message: String| QueryError::Syntax {
        expr: src.to_owned(),
        message,
    };
    Ok(match e {
        Expr::Word(w) => Expr::Pattern(TargetPattern::parse(&w)?),
        Expr::Binary(op, a, b) => Expr::Binary(
            op,
            Box::new(resolve_patterns(*a, src, false)?),
            Box::new(resolve_patterns(*b, src, false)?),
        ),
        Expr::Call(f, args) => {
            let n = args.len();
            let mut args = args.into_iter();
            let set = |args: &mut std::vec::IntoIter<Expr>| {
                resolve_patterns(args.next().unwrap_or(Expr::Word(String::new())), src, false)
            };
            let word = |e: Option<Expr>, what: &str| match e {
                Some(Expr::Word(w)) => Ok(Expr::Word(w)),
                _ => Err(syntax(format!("`{f}` expects {what}"))),
            };
            let out = match (f.as_str(), n) {
                ("deps", 1) | ("actions", 1) => vec![set(&mut args)?],
                ("deps", 2) => vec![
                    set(&mut args)?,
                    word(args.next(), "an integer depth as its second argument")?,
                ],
                ("rdeps", 2) => vec![set(&mut args)?, set(&mut args)?],
                ("rdeps", 3) => vec![
                    set(&mut args)?,
                    set(&mut args)?,
                    word(args.next(), "an integer depth as its third argument")?,
                ],
                ("kind", 2) | ("filter", 2) => vec![
                    word(args.next(), "a regular expression as its first argument")?,
                    set(&mut args)?,
                ],
                _ => return Err(syntax(format!("`{f}` does not take {n} argument(s)"))),
            };
            if f == "actions" && !top {
                return Err(syntax(
                    "`actions(...)` can only be the whole query".to_owned(),
                ));
            }
            if let Some(Expr::Word(d)) = out
                .get(if f == "rdeps" { 2 } else { 1 })
                .filter(|_| f.ends_with("deps"))
                && d.parse::<usize>().is_err()
            {
                return Err(syntax(format!(
                    "`{f}` depth must be a non-negative integer, got `{d}`"
                )));
            }
            Expr::Call(f, out)
        }
        Expr::Pattern(p) => Expr::Pattern(p),
    })
}

fn patterns(e: &Expr, out: &mut Vec<TargetPattern>) {
    match e {
        Expr::Pattern(p) => out.push(p.clone()),
        Expr::Word(_) => {}
        Expr::Call(_, args) => args.iter().for_each(|a| patterns(a, out)),
        Expr::Binary(_, a, b) => {
            patterns(a, out);
            patterns(b, out);
        }
    }
}

type Set = BTreeSet<NodeIndexByLabel>;

/// A node ordered by its label, so sets iterate in label order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NodeIndexByLabel(NodeIndex, u32);

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

struct Eval<'a> {
    g: &'a TargetGraph,
    rank: HashMap<NodeIndex, u32>,
    src: &'a str,
}

impl Eval<'_> {
    fn wrap(&self, n: NodeIndex) -> NodeIndexByLabel {
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

    fn eval(&self, e: &Expr) -> Result<Set, QueryError> {
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

/// Run a query and return what `kiln query` prints.
pub fn run(loader: &Loader, expr_text: &str, format: OutputFormat) -> Result<String, QueryError> {
    let expr = parse(expr_text)?;
    let mut pats = Vec::new();
    patterns(&expr, &mut pats);
    let g = TargetGraph::load(loader, &pats)?;
    let mut order: Vec<NodeIndex> = g.graph.node_indices().collect();
    order.sort_by(|a, b| g.graph[*a].label.cmp(&g.graph[*b].label));
    let rank = order
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, i as u32))
        .collect();
    let ev = Eval {
        g: &g,
        rank,
        src: expr_text,
    };

    if let Expr::Call(f, args) = &expr
        && f == "actions"
    {
        let targets = ev.eval(&args[0])?;
        let roots: Vec<NodeIndex> = targets.iter().map(|n| n.0).collect();
        let analysis = analyze(loader, &g, &roots)?;
        crate::plan::check_action_graph(&analysis)?;
        let mut s = String::new();
        for n in &targets {
            if let Some(ids) = analysis.actions_of.get(&g.graph[n.0].label) {
                for id in ids {
                    s.push_str(&analysis.actions[id.0].dump());
                }
            }
        }
        return Ok(s);
    }

    let result = ev.eval(&expr)?;
    let mut s = String::new();
    match format {
        OutputFormat::Label => {
            for n in &result {
                let _ = writeln!(s, "{}", g.graph[n.0].label);
            }
        }
        OutputFormat::LabelKind => {
            for n in &result {
                let _ = writeln!(s, "{} {}", g.graph[n.0].kind_string(), g.graph[n.0].label);
            }
        }
        OutputFormat::Dot => {
            s.push_str("digraph kiln {\n");
            for n in &result {
                let _ = writeln!(s, "  \"{}\"", g.graph[n.0].label);
            }
            for n in &result {
                for m in g.deps(n.0) {
                    if result.contains(&ev.wrap(m)) {
                        let _ = writeln!(
                            s,
                            "  \"{}\" -> \"{}\"",
                            g.graph[n.0].label, g.graph[m].label
                        );
                    }
                }
            }
            s.push_str("}\n");
        }
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = result
                .iter()
                .map(|n| {
                    let node = &g.graph[n.0];
                    let deps: Vec<String> = g
                        .deps(n.0)
                        .iter()
                        .map(|m| g.graph[*m].label.to_string())
                        .collect();
                    let mut o = serde_json::json!({
                        "label": node.label.to_string(),
                        "kind": node.kind_string(),
                        "deps": deps,
                    });
                    if let Some(d) = node.decl() {
                        o["location"] = serde_json::Value::String(d.location.to_string());
                    }
                    o
                })
                .collect();
            s = serde_json::to_string_pretty(&items).unwrap_or_default();
            s.push('\n');
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert!(matches!(parse("deps(//a:b)").unwrap(), Expr::Call(f, _) if f == "deps"));
        assert!(matches!(
            parse("//a:b + //c:d ^ //e/...").unwrap(),
            Expr::Binary(SetOp::Intersect, _, _)
        ));
        assert!(parse("deps(//a:b, 2)").is_ok());
        assert!(parse("kind('genrule', //...)").is_ok());
        assert!(parse("rdeps(//..., //a:b, 1)").is_ok());
        for bad in [
            "deps(//a:b",
            "deps(//a:b, x)",
            "nope(//a)",
            "//a:b //c:d",
            "deps(actions(//a:b))",
            "kind(//a:b)",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }
}
