//! Per-BUILD-file state while it is evaluated: the package, its default
//! visibility, and the targets declared so far.
//!
//! Owns `BuildContext` (reached by natives through `Evaluator::extra`), the
//! `package()` native and `Visibility`. The rule call that declares a target
//! is in `rule.rs`; evaluating the file is `loader.rs`.

// Starlark context types: `#[derive(ProvidesStaticType)]` expands to an
// `unsafe impl`; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list::ListRef;
use starlark::values::{ProvidesStaticType, Value};

use super::rule::TargetDecl;
use crate::error::Location;
use crate::label::{Label, PackagePath, TargetName};

/// One entry of a `visibility` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VisibilityRule {
    /// `//visibility:public`.
    Public,
    /// `//visibility:private`: only the target's own package.
    Private,
    /// `//pkg:__pkg__`: targets of that package.
    Package(PackagePath),
    /// `//pkg:__subpackages__`: that package and every one below it.
    Subpackages(PackagePath),
}

impl std::fmt::Display for VisibilityRule {
    /// As written in BUILD files.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VisibilityRule::Public => write!(f, "//visibility:public"),
            VisibilityRule::Private => write!(f, "//visibility:private"),
            VisibilityRule::Package(p) => write!(f, "//{}:__pkg__", p.as_str()),
            VisibilityRule::Subpackages(p) => write!(f, "//{}:__subpackages__", p.as_str()),
        }
    }
}

/// A target's visibility: who may depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility(pub Vec<VisibilityRule>);

impl Visibility {
    /// Everyone.
    pub fn public() -> Self {
        Visibility(vec![VisibilityRule::Public])
    }

    /// Only the target's own package.
    pub fn private() -> Self {
        Visibility(vec![VisibilityRule::Private])
    }

    /// Parse a `visibility = [...]` value written in package `pkg`.
    pub fn from_value(v: Value, pkg: &PackagePath) -> Result<Self, String> {
        let items = ListRef::from_value(v).ok_or_else(|| {
            format!(
                "`visibility` expects a list of strings, got a value of type `{}`",
                v.get_type()
            )
        })?;
        let mut rules = Vec::new();
        for x in items.content() {
            let s = x.unpack_str().ok_or_else(|| {
                format!(
                    "`visibility` expects a list of strings, got an element of type `{}`",
                    x.get_type()
                )
            })?;
            rules.push(Self::parse_one(s, pkg)?);
        }
        Ok(Visibility(rules))
    }

    fn parse_one(s: &str, pkg: &PackagePath) -> Result<VisibilityRule, String> {
        let l = Label::parse_relative(s, pkg).map_err(|e| e.to_string())?;
        Ok(match (l.package.as_str(), l.name.as_str()) {
            ("visibility", "public") => VisibilityRule::Public,
            ("visibility", "private") => VisibilityRule::Private,
            (_, "__pkg__") => VisibilityRule::Package(l.package),
            (_, "__subpackages__") => VisibilityRule::Subpackages(l.package),
            _ => {
                return Err(format!(
                    "Invalid visibility `{s}`: expected `//visibility:public`, `//visibility:private`, `//pkg:__pkg__` or `//pkg:__subpackages__`"
                ));
            }
        })
    }

    /// Whether a target in package `owner` with this visibility may be
    /// depended on from package `from`.
    pub fn allows(&self, owner: &PackagePath, from: &PackagePath) -> bool {
        from == owner
            || self.0.iter().any(|r| match r {
                VisibilityRule::Public => true,
                VisibilityRule::Private => false,
                VisibilityRule::Package(p) => from == p,
                VisibilityRule::Subpackages(p) => from.is_within(p),
            })
    }
}

/// What a BUILD file declared.
#[derive(Debug, Default, Clone)]
pub struct Declared {
    /// Targets in declaration order.
    pub targets: Vec<TargetDecl>,
    /// Name -> index into `targets` (rules) for duplicate checks.
    pub names: BTreeMap<TargetName, usize>,
    /// Predeclared output name -> index of the declaring target.
    pub outputs: BTreeMap<TargetName, usize>,
    /// `package(default_visibility = ...)`, if called.
    pub default_visibility: Option<Visibility>,
}

/// Context of one BUILD file's evaluation, reached through `eval.extra`.
#[derive(ProvidesStaticType)]
pub struct BuildContext {
    /// The package being evaluated.
    pub package: PackagePath,
    /// Workspace-relative path of its BUILD.star.
    pub build_file: String,
    /// What has been declared so far.
    pub declared: RefCell<Declared>,
}

impl BuildContext {
    /// A context for `package`.
    pub fn new(package: PackagePath, build_file: String) -> Self {
        BuildContext {
            package,
            build_file,
            declared: RefCell::new(Declared::default()),
        }
    }

    /// The start of the BUILD file, when no better location is known.
    pub fn file_location(&self) -> Location {
        Location {
            file: self.build_file.clone(),
            line: 1,
            col: 1,
        }
    }

    /// Record a target, rejecting duplicate names and outputs.
    pub fn declare(&self, decl: TargetDecl) -> Result<(), String> {
        let mut d = self.declared.borrow_mut();
        let idx = d.targets.len();
        let label = |n: &TargetName| Label {
            package: self.package.clone(),
            name: n.clone(),
        };
        if let Some(&prev) = d.names.get(&decl.name) {
            return Err(format!(
                "Duplicate target name `{}`: it is already declared at {}; give one of them another name",
                decl.name, d.targets[prev].location
            ));
        }
        if let Some(&prev) = d.outputs.get(&decl.name) {
            return Err(format!(
                "Target name `{}` clashes with an output of `{}` declared at {}",
                decl.name,
                label(&d.targets[prev].name),
                d.targets[prev].location
            ));
        }
        for out in decl.predeclared_outputs() {
            let prev = d.outputs.get(out).or_else(|| d.names.get(out)).copied();
            if let Some(prev) = prev {
                return Err(format!(
                    "Output `{}` of `{}` is already declared by `{}` at {}; two targets cannot declare the same output",
                    out,
                    label(&decl.name),
                    label(&d.targets[prev].name),
                    d.targets[prev].location
                ));
            }
            if out == &decl.name {
                return Err(format!(
                    "Output `{out}` of `{}` has the same name as its target",
                    label(&decl.name)
                ));
            }
        }
        for out in decl.predeclared_outputs() {
            let o = out.clone();
            if d.outputs.insert(o, idx).is_some() {
                return Err(format!(
                    "Output `{out}` is listed twice in `{}`",
                    label(&decl.name)
                ));
            }
        }
        d.names.insert(decl.name.clone(), idx);
        d.targets.push(decl);
        Ok(())
    }
}

/// Registers `package()`.
///
/// ```python
/// package(default_visibility = ["//caps:__subpackages__"])
/// ```
#[starlark_module]
pub fn register(builder: &mut GlobalsBuilder) {
    fn package<'v>(
        #[starlark(require = named)] default_visibility: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<starlark::values::none::NoneType> {
        let Some(ctx) = eval.extra.and_then(|e| e.downcast_ref::<BuildContext>()) else {
            anyhow::bail!("`package()` can only be called in a BUILD.star file");
        };
        let mut d = ctx.declared.borrow_mut();
        if !d.targets.is_empty() {
            anyhow::bail!("`package()` must be called before any target is declared");
        }
        if d.default_visibility.is_some() {
            anyhow::bail!("`package()` can be called only once per BUILD.star file");
        }
        if let Some(v) = default_visibility {
            d.default_visibility =
                Some(Visibility::from_value(v, &ctx.package).map_err(anyhow::Error::msg)?);
        }
        Ok(starlark::values::none::NoneType)
    }
}
