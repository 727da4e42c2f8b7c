//! The target graph: every target reachable from the requested patterns,
//! with an edge from each target to what it depends on.
//!
//! Nodes are rule targets, source files and generated files (a rule's
//! predeclared outputs). Building the graph loads packages in waves: the
//! packages the patterns name first, then, all at once and in parallel, every
//! package the last wave's labels point into. Label resolution, the
//! "missing" errors and visibility are checked here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};

use super::config::{
    Condition, ConfigKind, ConfigRequest, Configuration, RawPackages, condition, configure_package,
};
use super::find_cycle;
use crate::error::{ErrorClass, Location};
use crate::label::{Label, PackagePath, TargetPattern};
use crate::load::attr::AttrValue;
use crate::load::loader::{LoadError, Loader, Package};
use crate::load::rule::TargetDecl;
use crate::workspace::Workspace;

/// What a node is.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A rule target: index into its package's declared targets.
    Rule {
        /// Its package.
        package: Arc<Package>,
        /// Index into `package.declared.targets`.
        index: usize,
    },
    /// A checked-in file.
    Source,
    /// An output predeclared by the rule `rule` of the same package.
    Generated {
        /// The rule that declares it.
        rule: Label,
    },
}

/// A node of the target graph.
#[derive(Clone, Debug)]
pub struct TargetNode {
    /// Its label.
    pub label: Label,
    /// Rule, source or generated file.
    pub kind: NodeKind,
}

impl TargetNode {
    /// The rule declaration, for rule nodes.
    pub fn decl(&self) -> Option<&TargetDecl> {
        match &self.kind {
            NodeKind::Rule { package, index } => package.declared.targets.get(*index),
            _ => None,
        }
    }

    /// The kind as `kind()` queries match it: `genrule rule`,
    /// `source file`, `generated file`.
    pub fn kind_string(&self) -> String {
        match &self.kind {
            NodeKind::Rule { .. } => {
                format!("{} rule", self.decl().map(|d| d.rule.kind()).unwrap_or("?"))
            }
            NodeKind::Source => "source file".to_owned(),
            NodeKind::Generated { .. } => "generated file".to_owned(),
        }
    }
}

/// Errors building the target graph.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    /// A BUILD or .star file failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A problem with a label in a target's attributes, or a cycle.
    #[error("{location}: {message}")]
    Located {
        /// The depending target's declaration.
        location: Location,
        /// What is wrong and what to do.
        message: String,
    },
    /// A pattern that matches nothing, or an unknown command-line target.
    #[error("{0}")]
    Pattern(String),
}

impl GraphError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            GraphError::Load(e) => e.class(),
            _ => ErrorClass::User,
        }
    }
}

/// The loaded target graph.
pub struct TargetGraph {
    /// Nodes and dependency edges (from dependent to dependency).
    pub graph: DiGraph<TargetNode, ()>,
    /// Label -> node.
    pub index: HashMap<Label, NodeIndex>,
    /// Every loaded package.
    pub packages: BTreeMap<PackagePath, Arc<Package>>,
    /// The targets the patterns named, sorted.
    pub roots: Vec<NodeIndex>,
    /// Directories walked to expand recursive patterns (workspace-relative).
    pub walked_dirs: Vec<String>,
    /// Warnings for the user (`deprecation`), sorted, each once.
    pub warnings: Vec<String>,
    /// The configuration its selects were resolved in; `None` for an
    /// unconfigured graph (`kiln query` without `--config`), which keeps
    /// every branch.
    pub configuration: Option<Configuration>,
    /// BUILD files read to configure it (settings named on the command
    /// line or in kiln.toml) besides those of `packages`.
    pub consulted: Vec<String>,
}

struct Builder<'a> {
    loader: &'a Loader,
    g: TargetGraph,
    missing_pkgs: BTreeMap<PackagePath, String>,
    /// Loading for a build: `manual` targets are left out of wildcards,
    /// `testonly` is enforced and `deprecation` warns.
    build: bool,
    warnings: BTreeSet<String>,
    /// Packages as evaluated, before configuring.
    raw: RawPackages,
    /// Conditions evaluated so far.
    conditions: BTreeMap<Label, Condition>,
    /// Targets whose selects could not be resolved: an error only if the
    /// build needs them.
    config_errors: HashMap<Label, GraphError>,
}

/// Whether `pkg` differs between configurations: it has a select or
/// declares a build setting.
fn needs_configuring(pkg: &Package) -> bool {
    pkg.declared.targets.iter().any(|d| {
        !d.selects.is_empty()
            || matches!(
                ConfigKind::of(d),
                Some(ConfigKind::Bool | ConfigKind::String)
            )
    })
}

/// The declaration of `l`, loading its package (unconfigured) if needed.
fn raw_decl(
    loader: &Loader,
    raw: &mut RawPackages,
    l: &Label,
) -> Result<Option<TargetDecl>, String> {
    if !raw.contains_key(&l.package) {
        match loader.load_package(&l.package) {
            Ok(p) => {
                raw.insert(l.package.clone(), Arc::new(p));
            }
            Err(LoadError::NoPackage(..)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        }
    }
    let p = &raw[&l.package];
    Ok(p.declared
        .names
        .get(&l.name)
        .map(|&i| p.declared.targets[i].clone()))
}

impl TargetGraph {
    /// Load the graph of everything `patterns` need. For a `build` (build,
    /// test, run), wildcards leave out targets tagged `manual`, a target
    /// that is not `testonly` may not depend on one that is, and depending
    /// on a `deprecation` target warns, as in Bazel; `kiln query` does
    /// none of this, as `bazel query` does not.
    ///
    /// With `config`, every `select()` takes the branch its configuration
    /// chooses (an empty request is the default configuration); without,
    /// the graph is unconfigured and depends on every branch.
    pub fn load(
        loader: &Loader,
        patterns: &[TargetPattern],
        build: bool,
        config: Option<&ConfigRequest>,
    ) -> Result<TargetGraph, GraphError> {
        let ws = loader.workspace();
        let mut raw = RawPackages::new();
        let configuration = match config {
            Some(req) => Some(
                Configuration::new(req, ws, &mut |l| raw_decl(loader, &mut raw, l))
                    .map_err(GraphError::Pattern)?,
            ),
            None => None,
        };
        // `kiln-out/<dir>/` must not be where a package's outputs go.
        if let Some(dir) = configuration.as_ref().and_then(Configuration::out_dir)
            && ws.root.join(&dir).is_dir()
        {
            return Err(GraphError::Pattern(format!(
                "The outputs of {} would go to `kiln-out/{dir}/`, where the outputs of the workspace's directory `{dir}/` go; rename the configuration in kiln.toml",
                configuration
                    .as_ref()
                    .map(Configuration::describe)
                    .unwrap_or_default()
            )));
        }
        let mut want: BTreeSet<PackagePath> = BTreeSet::new();
        let mut walked_dirs = Vec::new();
        for p in patterns {
            match p {
                TargetPattern::Single(l) => {
                    want.insert(l.package.clone());
                }
                TargetPattern::AllInPackage(pkg) => {
                    want.insert(pkg.clone());
                }
                TargetPattern::Recursive(pkg) => {
                    let (found, dirs) = ws
                        .walk_packages(pkg)
                        .map_err(|e| GraphError::Pattern(e.to_string()))?;
                    walked_dirs.extend(dirs);
                    if found.is_empty() {
                        return Err(GraphError::Pattern(format!(
                            "Pattern `{p}` matches no package: no `BUILD.star` at or below `{pkg}`"
                        )));
                    }
                    want.extend(found);
                }
            }
        }
        let mut b = Builder {
            loader,
            g: TargetGraph {
                graph: DiGraph::new(),
                index: HashMap::new(),
                packages: BTreeMap::new(),
                roots: Vec::new(),
                walked_dirs,
                warnings: Vec::new(),
                configuration,
                consulted: Vec::new(),
            },
            missing_pkgs: BTreeMap::new(),
            build,
            warnings: BTreeSet::new(),
            raw,
            conditions: BTreeMap::new(),
            config_errors: HashMap::new(),
        };
        b.load_wave(want.into_iter().collect())?;
        let mut frontier = Vec::new();
        for p in patterns {
            match p {
                TargetPattern::Single(l) => {
                    if !b.g.packages.contains_key(&l.package) {
                        return Err(GraphError::Pattern(format!(
                            "Package `{}` does not exist: there is no `{}`",
                            l.package,
                            Workspace::build_file(&l.package)
                        )));
                    }
                    let n = b.resolve(l, true).ok_or_else(|| {
                        GraphError::Pattern(format!("Target `{l}` does not exist: `{}` declares no such target and there is no such file", Workspace::build_file(&l.package)))
                    })?;
                    b.g.roots.push(n);
                    frontier.push(n);
                }
                TargetPattern::AllInPackage(pkg) | TargetPattern::Recursive(pkg) => {
                    let pkgs: Vec<Arc<Package>> =
                        b.g.packages
                            .values()
                            .filter(|x| match p {
                                TargetPattern::AllInPackage(_) => &x.path == pkg,
                                _ => x.path.is_within(pkg),
                            })
                            .cloned()
                            .collect();
                    for package in pkgs {
                        for index in 0..package.declared.targets.len() {
                            // As in Bazel, a wildcard does not select a
                            // target tagged `manual`; naming it does.
                            if build && package.declared.targets[index].is_manual() {
                                continue;
                            }
                            let n = b.rule_node(&package, index);
                            b.g.roots.push(n);
                            frontier.push(n);
                        }
                    }
                }
            }
        }
        let mut done: BTreeSet<NodeIndex> = BTreeSet::new();
        while !frontier.is_empty() {
            // Load every package the frontier's labels point into, at once.
            let mut need = BTreeSet::new();
            for &n in &frontier {
                if let Some(d) = b.g.graph[n].decl() {
                    for l in d.attrs.iter().flat_map(|v| v.labels()).chain(&d.conditions) {
                        {
                            if !b.g.packages.contains_key(&l.package)
                                && !b.missing_pkgs.contains_key(&l.package)
                            {
                                need.insert(l.package.clone());
                            }
                        }
                    }
                }
            }
            b.load_wave(need.into_iter().collect())?;
            let mut next = Vec::new();
            for n in std::mem::take(&mut frontier) {
                if !done.insert(n) {
                    continue;
                }
                for m in b.add_edges(n)? {
                    if !done.contains(&m) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
        }
        b.g.roots
            .sort_by(|a, c| b.g.graph[*a].label.cmp(&b.g.graph[*c].label));
        b.g.roots.dedup();
        let mut g = b.g;
        g.warnings = b.warnings.into_iter().collect();
        g.consulted = b
            .raw
            .values()
            .filter(|p| !g.packages.contains_key(&p.path))
            .map(|p| p.build_file.clone())
            .collect();
        if let Some(cycle) = find_cycle(&g.graph, |n| g.graph[n].label.clone()) {
            let chain: Vec<String> = cycle
                .iter()
                .map(|n| g.graph[*n].label.to_string())
                .collect();
            let location = g.graph[cycle[0]]
                .decl()
                .map(|d| d.location.clone())
                .unwrap_or(Location {
                    file: String::new(),
                    line: 1,
                    col: 1,
                });
            return Err(GraphError::Located {
                location,
                message: format!(
                    "Dependency cycle: {}; remove one of these dependencies",
                    chain.join(" -> ")
                ),
            });
        }
        Ok(g)
    }

    /// The node of a label, if loaded.
    pub fn node(&self, l: &Label) -> Option<NodeIndex> {
        self.index.get(l).copied()
    }

    /// Direct dependencies of `n`, sorted by label.
    pub fn deps(&self, n: NodeIndex) -> Vec<NodeIndex> {
        let mut v: Vec<NodeIndex> = self.graph.neighbors(n).collect();
        v.sort_by(|a, b| self.graph[*a].label.cmp(&self.graph[*b].label));
        v.dedup();
        v
    }
}

impl Builder<'_> {
    fn load_wave(&mut self, pkgs: Vec<PackagePath>) -> Result<(), GraphError> {
        if pkgs.is_empty() {
            return Ok(());
        }
        let fresh: Vec<PackagePath> = pkgs
            .iter()
            .filter(|p| !self.raw.contains_key(*p))
            .cloned()
            .collect();
        let results = self.loader.load_packages(&fresh);
        for (p, r) in fresh.into_iter().zip(results) {
            match r {
                Ok(pkg) => {
                    self.raw.insert(p, Arc::new(pkg));
                }
                Err(LoadError::NoPackage(_, f)) => {
                    self.missing_pkgs.insert(p, f);
                }
                Err(e) => return Err(e.into()),
            }
        }
        for p in pkgs {
            let Some(pkg) = self.raw.get(&p).cloned() else {
                continue;
            };
            // A package with no select and no setting is the same in every
            // configuration: shared as loaded.
            let pkg = if needs_configuring(&pkg)
                && let Some(config) = self.g.configuration.clone()
            {
                Arc::new(self.configure(&pkg, &config)?)
            } else {
                pkg
            };
            self.g.packages.insert(p, pkg);
        }
        Ok(())
    }

    /// Evaluate the conditions `d`'s selects test (loading the packages of
    /// `config_setting`s and settings as needed).
    fn evaluate_conditions(
        &mut self,
        d: &TargetDecl,
        config: &Configuration,
    ) -> Result<(), GraphError> {
        for l in &d.conditions {
            if self.conditions.contains_key(l) {
                continue;
            }
            let located = |message: String| GraphError::Located {
                location: d.location.clone(),
                message,
            };
            let Some(cd) = raw_decl(self.loader, &mut self.raw, l).map_err(located)? else {
                return Err(located(format!(
                    "select() in `{}` tests `{l}`, which does not exist: declare it with config_setting() in `{}`",
                    d.name,
                    Workspace::build_file(&l.package)
                )));
            };
            if ConfigKind::of(&cd) != Some(ConfigKind::Condition) {
                return Err(located(format!(
                    "select() in `{}` tests `{l}`, a `{}` target; a select() key must be a config_setting (or `//conditions:default`)",
                    d.name,
                    cd.rule.kind()
                )));
            }
            let (loader, raw) = (self.loader, &mut self.raw);
            let c = condition(l, &cd, config, &mut |s| raw_decl(loader, raw, s))
                .map_err(GraphError::Pattern)?;
            self.conditions.insert(l.clone(), c);
        }
        Ok(())
    }

    /// `pkg` in `config`: its conditions evaluated (loading the packages
    /// of `config_setting`s and settings as needed), then configured.
    fn configure(&mut self, pkg: &Package, config: &Configuration) -> Result<Package, GraphError> {
        for d in &pkg.declared.targets {
            if let Err(e) = self.evaluate_conditions(d, config) {
                let label = Label {
                    package: pkg.path.clone(),
                    name: d.name.clone(),
                };
                self.config_errors.insert(label, e);
            }
        }
        let (pkg, errors) = configure_package(pkg, &self.conditions, config);
        for (label, location, message) in errors {
            self.config_errors
                .entry(label)
                .or_insert(GraphError::Located { location, message });
        }
        Ok(pkg)
    }

    fn add(&mut self, label: Label, kind: NodeKind) -> NodeIndex {
        if let Some(&n) = self.g.index.get(&label) {
            return n;
        }
        let n = self.g.graph.add_node(TargetNode {
            label: label.clone(),
            kind,
        });
        self.g.index.insert(label, n);
        n
    }

    fn rule_node(&mut self, package: &Arc<Package>, index: usize) -> NodeIndex {
        let label = Label {
            package: package.path.clone(),
            name: package.declared.targets[index].name.clone(),
        };
        self.add(
            label,
            NodeKind::Rule {
                package: package.clone(),
                index,
            },
        )
    }

    /// The node for `l` in a loaded package: a rule, a generated file, or
    /// (when `allow_files`) an existing source file.
    fn resolve(&mut self, l: &Label, allow_files: bool) -> Option<NodeIndex> {
        if let Some(&n) = self.g.index.get(l) {
            return Some(n);
        }
        let package = self.g.packages.get(&l.package)?.clone();
        if let Some(&i) = package.declared.names.get(&l.name) {
            return Some(self.rule_node(&package, i));
        }
        if let Some(&i) = package.declared.outputs.get(&l.name) {
            let rule = self.rule_node(&package, i);
            let rule_label = self.g.graph[rule].label.clone();
            let n = self.add(l.clone(), NodeKind::Generated { rule: rule_label });
            self.g.graph.update_edge(n, rule, ());
            return Some(n);
        }
        if allow_files && source_problem(&self.loader.workspace().root, &l.file_path()).is_none() {
            return Some(self.add(l.clone(), NodeKind::Source));
        }
        None
    }

    /// Resolve `n`'s labels into edges; returns the new dependency nodes.
    fn add_edges(&mut self, n: NodeIndex) -> Result<Vec<NodeIndex>, GraphError> {
        let mut out = Vec::new();
        let node = self.g.graph[n].clone();
        if let NodeKind::Generated { rule } = &node.kind {
            if let Some(&r) = self.g.index.get(rule) {
                out.push(r);
            }
            return Ok(out);
        }
        let Some(decl) = node.decl() else {
            return Ok(out);
        };
        if let Some(e) = self.config_errors.get(&node.label) {
            return Err(e.clone());
        }
        // The config_settings its selects test are dependencies too.
        let condition_spec = crate::load::attr::AttrSpec {
            ty: crate::load::attr::AttrType::LabelList,
            mandatory: false,
            default: crate::load::attr::AttrDefault::None,
            allow_files: false,
            values: Vec::new(),
            doc: String::new(),
        };
        let conditions = (
            ("select()".to_owned(), condition_spec),
            AttrValue::LabelList(decl.conditions.clone()),
        );
        let attrs = decl
            .rule
            .attrs
            .iter()
            .zip(&decl.attrs)
            .chain(std::iter::once((&conditions.0, &conditions.1)));
        for ((attr_name, spec), value) in attrs {
            for l in value.labels() {
                let err = |message: String| GraphError::Located {
                    location: decl.location.clone(),
                    message,
                };
                if let Some(build) = self.missing_pkgs.get(&l.package) {
                    return Err(err(format!(
                        "Attribute `{attr_name}` of `{}` names `{l}`, but package `{}` does not exist (there is no `{build}`); create it or fix the label",
                        node.label, l.package
                    )));
                }
                let Some(m) = self.resolve(l, spec.allow_files) else {
                    let msg = if spec.allow_files {
                        let why = source_problem(&self.loader.workspace().root, &l.file_path())
                            .unwrap_or_else(|| "the file does not exist".to_owned());
                        format!(
                            "Missing source file `{}`: attribute `{attr_name}` of `{}` names `{l}`, but `{}` declares no such target and {why}",
                            l.file_path(),
                            node.label,
                            Workspace::build_file(&l.package)
                        )
                    } else {
                        format!(
                            "Unknown target `{l}` in attribute `{attr_name}` of `{}`: `{}` declares no such target",
                            node.label,
                            Workspace::build_file(&l.package)
                        )
                    };
                    return Err(err(msg));
                };
                self.check_visibility(&node, m)?;
                if self.build {
                    self.check_testonly_and_deprecation(&node, m)?;
                }
                self.g.graph.update_edge(n, m, ());
                out.push(m);
            }
        }
        Ok(out)
    }

    /// The rule target behind node `n` (itself, or a generated file's rule).
    fn rule_of(&self, n: NodeIndex) -> Option<&TargetNode> {
        let target = &self.g.graph[n];
        match &target.kind {
            NodeKind::Source => None,
            NodeKind::Rule { .. } => Some(target),
            NodeKind::Generated { rule } => Some(&self.g.graph[self.g.index[rule]]),
        }
    }

    fn check_testonly_and_deprecation(
        &mut self,
        from: &TargetNode,
        to: NodeIndex,
    ) -> Result<(), GraphError> {
        let (Some(from_decl), Some(to_rule)) = (from.decl(), self.rule_of(to)) else {
            return Ok(());
        };
        let Some(to_decl) = to_rule.decl() else {
            return Ok(());
        };
        if to_decl.testonly && !from_decl.testonly {
            return Err(GraphError::Located {
                location: from_decl.location.clone(),
                message: format!(
                    "`{}` depends on `{}`, which is `testonly` (declared at {}), but is not `testonly` itself; add `testonly = True` to `{}` or depend on something else",
                    from.label, to_rule.label, to_decl.location, from.label
                ),
            });
        }
        // As in Bazel: not within a package, nor from a deprecated target.
        if let Some(why) = &to_decl.deprecation
            && from_decl.deprecation.is_none()
            && from.label.package != to_rule.label.package
        {
            let w = format!(
                "{}: `{}` depends on deprecated target `{}`: {why}",
                from_decl.location, from.label, to_rule.label
            );
            self.warnings.insert(w);
        }
        Ok(())
    }

    fn check_visibility(&self, from: &TargetNode, to: NodeIndex) -> Result<(), GraphError> {
        let target = &self.g.graph[to];
        let Some(rule_node) = self.rule_of(to) else {
            return Ok(());
        };
        let NodeKind::Rule { package, .. } = &rule_node.kind else {
            return Ok(());
        };
        let Some(decl) = rule_node.decl() else {
            return Ok(());
        };
        let vis = decl
            .visibility
            .as_ref()
            .unwrap_or(&package.default_visibility);
        if vis.allows(&package.path, &from.label.package) {
            return Ok(());
        }
        let from_decl = from.decl().map(|d| d.location.clone()).unwrap_or(Location {
            file: String::new(),
            line: 1,
            col: 1,
        });
        Err(GraphError::Located {
            location: from_decl,
            message: format!(
                "Target `{}` is not visible from `{}`; add `{}:__pkg__` to the `visibility` of `{}` (declared at {})",
                target.label, from.label, from.label.package, rule_node.label, decl.location
            ),
        })
    }
}

/// Why the workspace file `rel` cannot be a source (`None`: it can): a
/// source is a regular file inside the workspace, or a symlink to one.
fn source_problem(root: &std::path::Path, rel: &str) -> Option<String> {
    use std::os::unix::fs::FileTypeExt;
    let p = root.join(rel);
    if std::fs::symlink_metadata(&p).is_err() {
        return Some("the file does not exist".to_owned());
    }
    // Through a symlink (the file's own or a directory's on the way), the
    // path may lead out of the workspace.
    match std::fs::canonicalize(&p) {
        Err(_) => return Some("the file is a dangling symlink; fix or remove it".to_owned()),
        Ok(target)
            if !target.starts_with(root)
                && !std::fs::canonicalize(root).is_ok_and(|r| target.starts_with(r)) =>
        {
            return Some(format!(
                "the path is a symlink to `{}` (or lies under one), outside the workspace; copy the file into the workspace (sources must be inside it)",
                target.display()
            ));
        }
        Ok(_) => {}
    }
    let m = match std::fs::metadata(&p) {
        Ok(m) => m,
        Err(_) => return Some("the file does not exist".to_owned()),
    };
    let t = m.file_type();
    let kind = if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Some(format!(
        "the path is {kind}, not a file; name regular files as sources"
    ))
}
