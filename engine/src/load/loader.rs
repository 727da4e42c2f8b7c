//! Evaluating `.star` and `BUILD.star` files.
//!
//! Owns the two dialects, the globals every file sees, the built-in ruleset
//! (embedded from the repository's `rules/`), the memoized cache of
//! evaluated `.star` modules with load-cycle detection, the registry of
//! rule implementations, and parallel evaluation of BUILD files into
//! `Package`s. Resolving the labels that packages mention is `graph/`.

use std::collections::HashMap;
use std::fs;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use starlark::environment::{FrozenModule, Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::{AstModule, Dialect, DialectTypes};
use starlark::values::OwnedFrozenValueTyped;

use super::build_file::{BuildContext, Declared, Visibility};
use super::rule::{FrozenRuleDef, RuleId, RuleSchema};
use super::{attr, build_file, provider, rule, select};
use crate::error::{ErrorClass, Location, format_starlark_error};
use crate::label::{Label, PackagePath};
use crate::workspace::Workspace;

/// The built-in ruleset: `(file name, source)`. Adding a rule kind is one
/// file in `rules/` and one line here.
pub const RULESET: &[(&str, &str)] = &[
    (
        "settings.star",
        include_str!("../../../rules/settings.star"),
    ),
    ("genrule.star", include_str!("../../../rules/genrule.star")),
    (
        "filegroup.star",
        include_str!("../../../rules/filegroup.star"),
    ),
    (
        "wit_library.star",
        include_str!("../../../rules/wit_library.star"),
    ),
    (
        "wasm_common.star",
        include_str!("../../../rules/wasm_common.star"),
    ),
    (
        "provider.star",
        include_str!("../../../rules/provider.star"),
    ),
    ("cc.star", include_str!("../../../rules/cc.star")),
    ("fetch.star", include_str!("../../../rules/fetch.star")),
    ("cap.star", include_str!("../../../rules/cap.star")),
    ("compose.star", include_str!("../../../rules/compose.star")),
    ("cpython.star", include_str!("../../../rules/cpython.star")),
    (
        "pylon_test.star",
        include_str!("../../../rules/pylon_test.star"),
    ),
    (
        "cpython_test.star",
        include_str!("../../../rules/cpython_test.star"),
    ),
];

/// How built-in ruleset files are named in labels and messages.
pub const BUILTIN_PREFIX: &str = "@kiln//rules:";

/// Errors while loading files.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// An error located in a file.
    #[error("{location}: {message}")]
    Located {
        /// Where.
        location: Location,
        /// What went wrong and what to do.
        message: String,
    },
    /// An error from Starlark, already formatted as `file:line:col: message`.
    #[error("{0}")]
    Starlark(String),
    /// A package that does not exist.
    #[error("Package `{0}` does not exist: there is no `{1}`; create it or fix the label")]
    NoPackage(PackagePath, String),
    /// A file kiln could not read.
    #[error("Cannot read `{path}`: {message}")]
    Io {
        /// Workspace-relative path.
        path: String,
        /// The OS error.
        message: String,
    },
}

impl LoadError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            LoadError::Io { .. } => ErrorClass::Environment,
            _ => ErrorClass::User,
        }
    }
}

impl From<starlark::Error> for LoadError {
    fn from(e: starlark::Error) -> Self {
        LoadError::Starlark(format_starlark_error(&e))
    }
}

/// A loaded package: what its BUILD file declared.
#[derive(Debug)]
pub struct Package {
    /// Its path.
    pub path: PackagePath,
    /// Workspace-relative path of its BUILD.star.
    pub build_file: String,
    /// The declared targets and outputs.
    pub declared: Declared,
    /// Visibility of targets that do not set `visibility`.
    pub default_visibility: Visibility,
    /// The files its BUILD.star loads directly (`.star` files by
    /// workspace-relative path, built-in ones as `@kiln//rules:x.star`).
    pub loads: Vec<String>,
}

/// The dialect of BUILD.star files: data only.
pub fn build_dialect() -> Dialect {
    Dialect {
        enable_def: false,
        enable_lambda: false,
        enable_load: true,
        enable_keyword_only_arguments: false,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Disable,
        enable_load_reexport: false,
        enable_top_level_stmt: false,
        enable_f_strings: false,
        ..Dialect::Standard
    }
}

/// The dialect of `.star` files: functions allowed.
pub fn star_dialect() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: true,
        enable_types: DialectTypes::Enable,
        enable_load_reexport: false,
        enable_top_level_stmt: true,
        ..Dialect::Standard
    }
}

fn globals() -> Globals {
    let mut b = GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Json,
        LibraryExtension::Map,
        LibraryExtension::Filter,
        LibraryExtension::Debug,
    ]);
    attr::register(&mut b);
    build_file::register(&mut b);
    provider::register(&mut b);
    rule::register(&mut b);
    select::register(&mut b);
    b.build()
}

/// Evaluated `.star` modules by file name, and the registry of rule
/// implementations found in them.
#[derive(Default)]
struct StarCache {
    modules: HashMap<String, Result<FrozenModule, LoadError>>,
    /// Each evaluated file's direct loads (resolved file names).
    loads: HashMap<String, Vec<String>>,
}

/// Loads packages; shared by every thread of a command.
pub struct Loader {
    ws: Workspace,
    globals: Globals,
    prelude: Vec<FrozenModule>,
    star: Mutex<StarCache>,
    rule_impls: Mutex<HashMap<RuleId, OwnedFrozenValueTyped<FrozenRuleDef>>>,
}

struct MapLoader<'a>(&'a HashMap<String, FrozenModule>);

impl FileLoader for MapLoader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        self.0.get(path).cloned().ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "Internal error: `{path}` was not preloaded"
            ))
        })
    }
}

impl Loader {
    /// A loader for `ws` with the built-in ruleset evaluated.
    pub fn new(ws: Workspace) -> Result<Self, LoadError> {
        let loader = Loader {
            ws,
            globals: globals(),
            prelude: Vec::new(),
            star: Mutex::new(StarCache::default()),
            rule_impls: Mutex::new(HashMap::new()),
        };
        let mut prelude = Vec::new();
        {
            let mut cache = loader.star.lock().unwrap_or_else(|e| e.into_inner());
            for (name, _) in RULESET {
                let id = format!("{BUILTIN_PREFIX}{name}");
                prelude.push(loader.load_star(&mut cache, &id, &mut Vec::new(), None)?);
            }
        }
        Ok(Loader { prelude, ..loader })
    }

    /// The workspace.
    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// The definition of a rule kind (its implementation function inside).
    pub fn rule_impl(&self, id: RuleId) -> Option<OwnedFrozenValueTyped<FrozenRuleDef>> {
        self.rule_impls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    /// Workspace-relative paths of the `.star` files evaluated so far.
    pub fn star_files(&self) -> Vec<String> {
        let cache = self.star.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<String> = cache
            .modules
            .keys()
            .filter(|f| !f.starts_with(BUILTIN_PREFIX))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// A digest of the built-in ruleset's sources.
    pub fn ruleset_digest() -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for (name, src) in RULESET {
            h.update(name.as_bytes());
            h.update(&(src.len() as u64).to_le_bytes());
            h.update(src.as_bytes());
        }
        *h.finalize().as_bytes()
    }

    /// Every name a BUILD file may use without `load()`: the globals and
    /// the built-in ruleset's symbols.
    pub fn build_names(&self) -> std::collections::HashSet<String> {
        let mut out: std::collections::HashSet<String> = self
            .globals
            .names()
            .map(|n| n.as_str().to_owned())
            .collect();
        for m in &self.prelude {
            out.extend(m.names().map(|n| n.as_str().to_owned()));
        }
        out
    }

    /// The rule kinds of the built-in ruleset, by name, sorted.
    pub fn builtin_rules(&self) -> Vec<(String, Arc<RuleSchema>)> {
        let mut out = Vec::new();
        for m in &self.prelude {
            for name in m.names() {
                let Ok(v) = m.get(name.as_str()) else {
                    continue;
                };
                if let Ok(def) = v.downcast::<FrozenRuleDef>() {
                    out.push((name.as_str().to_owned(), def.as_ref().schema.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }

    /// The globals every file sees.
    pub fn globals(&self) -> &Globals {
        &self.globals
    }

    /// Resolve a `load()` argument written in file `from_file` (in package
    /// `from_pkg`) to a file name: `@kiln//rules:x.star` or a
    /// workspace-relative path.
    fn resolve_load(
        &self,
        id: &str,
        from_pkg: &PackagePath,
        from_builtin: bool,
    ) -> Result<String, String> {
        if let Some(name) = id.strip_prefix(BUILTIN_PREFIX) {
            return if RULESET.iter().any(|(n, _)| *n == name) {
                Ok(id.to_owned())
            } else {
                Err(format!("There is no built-in rule file `{id}`"))
            };
        }
        if from_builtin && id.starts_with(':') {
            return self.resolve_load(&format!("{BUILTIN_PREFIX}{}", &id[1..]), from_pkg, true);
        }
        let label = Label::parse_relative(id, from_pkg).map_err(|e| e.to_string())?;
        if !label.name.as_str().ends_with(".star") {
            return Err(format!(
                "`load()` expects a `.star` file label such as `//tools:defs.star`, got `{id}`"
            ));
        }
        Ok(label.file_path())
    }

    fn read_source(&self, file: &str) -> Option<Result<String, LoadError>> {
        if let Some(name) = file.strip_prefix(BUILTIN_PREFIX) {
            return RULESET
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, src)| Ok((*src).to_owned()));
        }
        match fs::read(self.ws.path(file)) {
            Ok(b) => Some(
                super::limits::check_source(file, b)
                    .map_err(|(location, message)| LoadError::Located { location, message }),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(LoadError::Io {
                path: file.to_owned(),
                message: e.to_string(),
            })),
        }
    }

    /// Resolve and evaluate the loads of `ast`; returns module id -> module
    /// and the files loaded.
    fn preload(
        &self,
        cache: &mut StarCache,
        ast: &AstModule,
        pkg: &PackagePath,
        from_builtin: bool,
        stack: &mut Vec<String>,
    ) -> Result<(HashMap<String, FrozenModule>, Vec<String>), LoadError> {
        let mut out = HashMap::new();
        let mut files = Vec::new();
        for l in ast.loads() {
            let loc = Location::from_span(&l.span);
            let file = self
                .resolve_load(l.module_id, pkg, from_builtin)
                .map_err(|message| LoadError::Located {
                    location: loc.clone(),
                    message,
                })?;
            let m = self.load_star(cache, &file, stack, Some(loc))?;
            out.insert(l.module_id.to_owned(), m);
            files.push(file);
        }
        Ok((out, files))
    }

    /// The workspace `.star` files `direct` load, transitively, with
    /// `direct` themselves (built-in ones left out), sorted.
    pub fn star_closure(&self, direct: &[String]) -> Vec<String> {
        let cache = self.star.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = std::collections::BTreeSet::new();
        let mut todo: Vec<&str> = direct.iter().map(String::as_str).collect();
        while let Some(f) = todo.pop() {
            if f.starts_with(BUILTIN_PREFIX) || !seen.insert(f.to_owned()) {
                continue;
            }
            if let Some(next) = cache.loads.get(f) {
                todo.extend(next.iter().map(String::as_str));
            }
        }
        seen.into_iter().collect()
    }

    /// Evaluate a `.star` file (memoized), its loads first.
    fn load_star(
        &self,
        cache: &mut StarCache,
        file: &str,
        stack: &mut Vec<String>,
        from: Option<Location>,
    ) -> Result<FrozenModule, LoadError> {
        if let Some(r) = cache.modules.get(file) {
            return r.clone();
        }
        if stack.len() >= super::limits::MAX_LOAD_DEPTH {
            let message = format!(
                "`load()` chain deeper than {} files (from `{}`); flatten it",
                super::limits::MAX_LOAD_DEPTH,
                display_file(&stack[0])
            );
            return Err(match from {
                Some(location) => LoadError::Located { location, message },
                None => LoadError::Starlark(message),
            });
        }
        if let Some(pos) = stack.iter().position(|f| f == file) {
            let mut chain: Vec<String> = stack[pos..].iter().map(|f| display_file(f)).collect();
            chain.push(display_file(file));
            let message = format!(
                "Load cycle: {}; remove one of these `load()`s",
                chain.join(" -> ")
            );
            return Err(match from {
                Some(location) => LoadError::Located { location, message },
                None => LoadError::Starlark(message),
            });
        }
        let src = match self.read_source(file) {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                cache.modules.insert(file.to_owned(), Err(e.clone()));
                return Err(e);
            }
            None => {
                let message = format!(
                    "Cannot load `{}`: the file does not exist",
                    display_file(file)
                );
                return Err(match from {
                    Some(location) => LoadError::Located { location, message },
                    None => LoadError::Starlark(message),
                });
            }
        };
        let builtin = file.starts_with(BUILTIN_PREFIX);
        let pkg = if builtin {
            PackagePath::root()
        } else {
            PackagePath::new(file.rsplit_once('/').map(|(d, _)| d).unwrap_or(""))
                .unwrap_or_else(|_| PackagePath::root())
        };
        stack.push(file.to_owned());
        let result = AstModule::parse(file, src, &star_dialect())
            .map_err(LoadError::from)
            .and_then(|ast| {
                let (loads, files) = self.preload(cache, &ast, &pkg, builtin, stack)?;
                cache.loads.insert(file.to_owned(), files);
                // `.star` files see the globals only; the ruleset is
                // available to them through `load("@kiln//rules:x.star", ...)`.
                let frozen = Module::with_temp_heap(|module| -> Result<FrozenModule, LoadError> {
                    {
                        let ml = MapLoader(&loads);
                        let mut eval = Evaluator::new(&module);
                        eval.set_loader(&ml);
                        super::guard::guarded(file, &mut eval, |e| {
                            e.eval_module(ast, &self.globals)
                        })
                        .map_err(|(location, message)| {
                            LoadError::Located { location, message }
                        })??;
                    }
                    module.freeze().map_err(|e| {
                        LoadError::Starlark(format!(
                            "{}: cannot freeze module: {e:?}",
                            display_file(file)
                        ))
                    })
                })?;
                self.register_rules(&frozen);
                Ok(frozen)
            });
        stack.pop();
        cache.modules.insert(file.to_owned(), result.clone());
        result
    }

    fn register_rules(&self, m: &FrozenModule) {
        let mut reg = self.rule_impls.lock().unwrap_or_else(|e| e.into_inner());
        for name in m.names() {
            let Ok(v) = m.get(name.as_str()) else {
                continue;
            };
            let Ok(def) = v.downcast::<FrozenRuleDef>() else {
                continue;
            };
            reg.entry(def.as_ref().schema.id).or_insert(def);
        }
    }

    /// Evaluate one package's BUILD.star.
    pub fn load_package(&self, pkg: &PackagePath) -> Result<Package, LoadError> {
        let build_file = Workspace::build_file(pkg);
        match fs::read(self.ws.path(&build_file)) {
            Ok(b) => self.load_package_bytes(pkg, b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(LoadError::NoPackage(pkg.clone(), build_file))
            }
            Err(e) => Err(LoadError::Io {
                path: build_file,
                message: e.to_string(),
            }),
        }
    }

    /// Evaluate `src` as the BUILD.star of `pkg` (an editor's unsaved
    /// text, for `kiln lsp`; files it loads come from disk), checked as a
    /// file on disk is.
    pub fn load_package_source(
        &self,
        pkg: &PackagePath,
        src: String,
    ) -> Result<Package, LoadError> {
        self.load_package_bytes(pkg, src.into_bytes())
    }

    /// [`Loader::load_package`] of these bytes: checked (`limits.rs`),
    /// then evaluated.
    fn load_package_bytes(&self, pkg: &PackagePath, bytes: Vec<u8>) -> Result<Package, LoadError> {
        let build_file = Workspace::build_file(pkg);
        let src = super::limits::check_source(&build_file, bytes)
            .map_err(|(location, message)| LoadError::Located { location, message })?;
        let ast = AstModule::parse(&build_file, src, &build_dialect())
            .map_err(|e| build_syntax_error(&e))?;
        let (loads, loaded) = if ast.loads().is_empty() {
            (HashMap::new(), Vec::new())
        } else {
            let mut cache = self.star.lock().unwrap_or_else(|e| e.into_inner());
            self.preload(&mut cache, &ast, pkg, false, &mut Vec::new())?
        };
        let ctx = BuildContext::new(pkg.clone(), build_file.clone());
        Module::with_temp_heap(|module| -> Result<(), LoadError> {
            for p in &self.prelude {
                module.import_public_symbols(p);
            }
            let ml = MapLoader(&loads);
            let mut eval = Evaluator::new(&module);
            eval.set_loader(&ml);
            eval.extra = Some(&ctx);
            super::guard::guarded(&build_file, &mut eval, |e| {
                e.eval_module(ast, &self.globals)
            })
            .map_err(|(location, message)| LoadError::Located { location, message })??;
            Ok(())
        })?;
        let declared = ctx.declared.into_inner();
        let default_visibility = declared.default_visibility.clone().unwrap_or_else(|| {
            if self.ws.config.default_private {
                Visibility::private()
            } else {
                Visibility::public()
            }
        });
        Ok(Package {
            path: pkg.clone(),
            build_file,
            declared,
            default_visibility,
            loads: loaded,
        })
    }

    /// Evaluate several packages in parallel; results in the same order.
    pub fn load_packages(&self, pkgs: &[PackagePath]) -> Vec<Result<Package, LoadError>> {
        pkgs.par_iter().map(|p| self.load_package(p)).collect()
    }
}

fn display_file(f: &str) -> String {
    if f.starts_with(BUILTIN_PREFIX) {
        f.to_owned()
    } else {
        format!("//{f}")
    }
}

/// BUILD-specific wording for the errors the data-only dialect produces.
fn build_syntax_error(e: &starlark::Error) -> LoadError {
    const HINT: &str = "BUILD.star files hold data only (rule calls and `load()`); put logic in a `.star` file and `load()` it";
    let msg = format_starlark_error(e);
    for (starlark_says, what) in [
        ("`def` is not allowed in this dialect", "`def`"),
        ("`lambda` is not allowed in this dialect", "`lambda`"),
        (
            "`for` cannot be used outside `def` in this dialect",
            "A top-level `for`",
        ),
        (
            "`if` cannot be used outside `def` in this dialect",
            "A top-level `if`",
        ),
    ] {
        if let Some(prefix) = msg.strip_suffix(starlark_says) {
            return LoadError::Starlark(format!("{prefix}{what} is not allowed here: {HINT}"));
        }
    }
    LoadError::Starlark(msg)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use starlark::analysis::AstModuleLint;

    use super::*;

    /// The gate "a lint pass over every `.star`": the built-in ruleset must
    /// lint clean, with name resolution against the real globals.
    #[test]
    fn ruleset_lints_clean() {
        let g = globals();
        let names: HashSet<String> = g.names().map(|n| n.as_str().to_owned()).collect();
        for (name, src) in RULESET {
            let ast = AstModule::parse(name, (*src).to_owned(), &star_dialect()).unwrap();
            let lints: Vec<String> = ast
                .lint(Some(&names))
                .iter()
                .map(|l| format!("{}: {}", l.location, l.problem))
                .collect();
            assert!(lints.is_empty(), "{name}: {lints:#?}");
        }
    }

    /// Regression (found by `kiln-fuzz build_file`): an editor's unsaved
    /// text (`kiln lsp`) skipped the checks a BUILD file on disk gets, so
    /// deep nesting overflowed the stack and a NUL byte was accepted.
    #[test]
    fn unsaved_text_is_checked_like_a_file() {
        let loader = Loader::new(Workspace {
            root: "/nonexistent-kiln-workspace".into(),
            config: Default::default(),
        })
        .unwrap();
        let pkg = PackagePath::new("app").unwrap();
        let deep = format!("x = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = loader.load_package_source(&pkg, deep).unwrap_err();
        assert!(e.to_string().contains("nested more than"), "{e}");
        let e = loader
            .load_package_source(&pkg, "x = 1\0\n".to_owned())
            .unwrap_err();
        assert!(e.to_string().contains("NUL byte"), "{e}");
    }
}
