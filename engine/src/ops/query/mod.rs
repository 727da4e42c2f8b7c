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
//!
//! Files: `parse.rs` (tokens, grammar, checks), `eval.rs` (sets over the
//! target graph); this file runs a query and renders its result.

mod eval;
mod parse;

use crate::load::string_literal;
use std::collections::HashMap;
use std::fmt::Write as _;

use petgraph::graph::NodeIndex;

use crate::analysis::{AnalysisError, analyze};
use crate::error::ErrorClass;
use crate::graph::config::ConfigRequest;
use crate::graph::target::{GraphError, TargetGraph};
use crate::label::{LabelError, PackagePath};
use crate::load::attr::{AttrValue, default_value};
use crate::load::loader::{LoadError, Loader};
use crate::load::rule::TargetDecl;
use crate::workspace::Workspace;

use self::eval::Eval;
pub use self::parse::{Expr, SetOp, parse};

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// One label per line.
    Label,
    /// `<kind> <label>` per line.
    LabelKind,
    /// Each rule target as a BUILD call (after `load()`s and defaults:
    /// the attributes that differ from their default), preceded by the
    /// `# file:line:column` that declared it.
    Build,
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
    /// The loader could not start (the built-in ruleset).
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl QueryError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            QueryError::Graph(e) => e.class(),
            QueryError::Analysis(e) => e.class(),
            QueryError::Load(e) => e.class(),
            _ => ErrorClass::User,
        }
    }
}

/// Run the query `expr_text` in workspace `ws`; what `kiln query` prints.
pub fn query(ws: Workspace, expr_text: &str, format: OutputFormat) -> Result<String, QueryError> {
    query_in(ws, expr_text, format, None)
}

/// [`query`] in a configuration (`kiln query --config X`): selects are
/// resolved, so `deps()` follows only the branches that apply and
/// `--output build` prints the values chosen. Without one the graph is
/// unconfigured: every branch is a dependency and selects print as
/// written. `actions()` always analyzes a configured graph (the default
/// configuration when none is given).
pub fn query_in(
    ws: Workspace,
    expr_text: &str,
    format: OutputFormat,
    config: Option<&ConfigRequest>,
) -> Result<String, QueryError> {
    let loader = Loader::new(ws)?;
    run(&loader, expr_text, format, config)
}

/// For `buildfiles`/`rbuildfiles`: each loaded package's BUILD.star and
/// the workspace `.star` files it loads (transitively), as source-file
/// nodes added to `g` (labelled in the package holding each file); the
/// BUILD.star first.
fn package_files(loader: &Loader, g: &mut TargetGraph) -> HashMap<PackagePath, Vec<NodeIndex>> {
    let ws = loader.workspace().clone();
    let mut out = HashMap::new();
    let packages: Vec<_> = g.packages.values().cloned().collect();
    for p in packages {
        let mut paths = vec![p.build_file.clone()];
        paths.extend(loader.star_closure(&p.loads));
        let mut nodes = Vec::new();
        for f in paths {
            let Some(label) = file_label(&ws, &f) else {
                continue;
            };
            let n = match g.index.get(&label) {
                Some(&n) => n,
                None => {
                    let n = g.graph.add_node(crate::graph::target::TargetNode {
                        label: label.clone(),
                        kind: crate::graph::target::NodeKind::Source,
                    });
                    g.index.insert(label, n);
                    n
                }
            };
            nodes.push(n);
        }
        out.insert(p.path.clone(), nodes);
    }
    out
}

/// The label of workspace file `path`: in the nearest package above it.
fn file_label(ws: &Workspace, path: &str) -> Option<crate::label::Label> {
    let mut dir = path;
    while let Some((d, _)) = dir.rsplit_once('/') {
        dir = d;
        let pkg = PackagePath::new(d).ok()?;
        if ws.package_exists(&pkg) {
            let name = crate::label::TargetName::new(&path[d.len() + 1..]).ok()?;
            return Some(crate::label::Label { package: pkg, name });
        }
    }
    let name = crate::label::TargetName::new(path).ok()?;
    Some(crate::label::Label {
        package: PackagePath::root(),
        name,
    })
}

/// Run the query `expr_text` with `loader`; the rendered result.
fn run(
    loader: &Loader,
    expr_text: &str,
    format: OutputFormat,
    config: Option<&ConfigRequest>,
) -> Result<String, QueryError> {
    let expr = parse(expr_text)?;
    let mut pats = Vec::new();
    parse::patterns(&expr, &mut pats);
    let default = ConfigRequest::default();
    let config = match &expr {
        Expr::Call(f, _) if f == "actions" => Some(config.unwrap_or(&default)),
        _ => config,
    };
    let files = parse::calls(&expr, "buildfiles") || parse::calls(&expr, "rbuildfiles");
    if parse::calls(&expr, "rbuildfiles") || parse::calls(&expr, "siblings") {
        // Which BUILD files load a file, and the other targets of a
        // package (with their dependencies): every package is in the
        // universe.
        pats.push(crate::label::TargetPattern::Recursive(
            crate::label::PackagePath::root(),
        ));
    }
    let mut g = TargetGraph::load(loader, &pats, false, config)?;
    let build_files = if files {
        package_files(loader, &mut g)
    } else {
        HashMap::new()
    };
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
        build_files,
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
        OutputFormat::Build => {
            for n in &result {
                if let Some(d) = g.graph[n.0].decl() {
                    s.push_str(&build_text(d, &g.graph[n.0].label.package));
                }
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

fn starlark_list(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

fn starlark_dict<'a>(kv: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let items: Vec<String> = kv
        .into_iter()
        .map(|(k, v)| format!("{}: {}", string_literal(k), string_literal(v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

fn attr_literal(v: &AttrValue) -> String {
    match v {
        AttrValue::Str(s) => string_literal(s),
        AttrValue::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Label(l) => l
            .as_ref()
            .map_or("None".to_owned(), |l| string_literal(&l.to_string())),
        AttrValue::LabelList(ls) => {
            starlark_list(ls.iter().map(|l| string_literal(&l.to_string())))
        }
        AttrValue::StrList(xs) => starlark_list(xs.iter().map(|x| string_literal(x))),
        AttrValue::StrDict(kv) => starlark_dict(kv.iter().map(|(k, v)| (k, v))),
        AttrValue::LabelStrDict(kv) => {
            let keys: Vec<String> = kv.iter().map(|(l, _)| l.to_string()).collect();
            starlark_dict(keys.iter().zip(kv.iter().map(|(_, v)| v)))
        }
        AttrValue::Output(o) => o
            .as_ref()
            .map_or("None".to_owned(), |o| string_literal(&o.to_string())),
        AttrValue::OutputList(os) => {
            starlark_list(os.iter().map(|o| string_literal(&o.to_string())))
        }
    }
}

/// A `select()` (joined with `+` to other parts) as a BUILD file writes it.
fn select_literal(sel: &crate::load::select::Selectable) -> String {
    use crate::load::select::{DEFAULT_CONDITION, Part};
    let parts: Vec<String> = sel
        .parts
        .iter()
        .map(|p| match p {
            Part::Plain(v) => attr_literal(v),
            Part::Select(x) => {
                let mut items: Vec<String> = x
                    .branches
                    .iter()
                    .map(|(l, v)| {
                        format!("{}: {}", string_literal(&l.to_string()), attr_literal(v))
                    })
                    .collect();
                if let Some(v) = &x.default {
                    items.push(format!(
                        "{}: {}",
                        string_literal(DEFAULT_CONDITION),
                        attr_literal(v)
                    ));
                }
                let extra = if x.no_match_error.is_empty() {
                    String::new()
                } else {
                    format!(", no_match_error = {}", string_literal(&x.no_match_error))
                };
                format!("select({{{}}}{extra})", items.join(", "))
            }
        })
        .collect();
    parts.join(" + ")
}

/// `d` as `kiln query --output build` prints it.
fn build_text(d: &TargetDecl, pkg: &crate::label::PackagePath) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}", d.location);
    let _ = writeln!(s, "{}(", d.rule.kind());
    let _ = writeln!(s, "    name = {},", string_literal(d.name.as_str()));
    for (i, ((name, spec), v)) in d.rule.attrs.iter().zip(&d.attrs).enumerate() {
        // A select() as written, while the target is unconfigured.
        if let Some((_, sel)) = d.selects.iter().find(|(j, _)| *j == i) {
            let _ = writeln!(s, "    {name} = {},", select_literal(sel));
            continue;
        }
        if default_value(spec, pkg).ok().as_ref() == Some(v) {
            continue;
        }
        let _ = writeln!(s, "    {name} = {},", attr_literal(v));
    }
    if !d.tags.is_empty() {
        let _ = writeln!(
            s,
            "    tags = {},",
            starlark_list(d.tags.iter().map(|t| string_literal(t)))
        );
    }
    if d.testonly != d.rule.kind().ends_with("_test") {
        let _ = writeln!(
            s,
            "    testonly = {},",
            if d.testonly { "True" } else { "False" }
        );
    }
    if let Some(why) = &d.deprecation {
        let _ = writeln!(s, "    deprecation = {},", string_literal(why));
    }
    if !d.exec_properties.is_empty() {
        let _ = writeln!(
            s,
            "    exec_properties = {},",
            starlark_dict(d.exec_properties.iter().map(|(k, v)| (k, v)))
        );
    }
    if let Some(vis) = &d.visibility {
        let rules = vis.0.iter().map(|r| string_literal(&r.to_string()));
        let _ = writeln!(s, "    visibility = {},", starlark_list(rules));
    }
    s.push_str(")\n");
    s
}
