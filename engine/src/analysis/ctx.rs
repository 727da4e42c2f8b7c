//! The `ctx` a rule implementation receives, and `ctx.actions.*`.
//!
//! Owns `AnalysisContext` (one target's analysis state, reached by natives
//! through `Evaluator::extra`), the `ctx` value, the `Dependency` values in
//! `ctx.attr`, and the action-declaring natives. The action data itself is
//! `action/`; the order in which targets are analyzed is `mod.rs`.

// Starlark value types: `#[derive(ProvidesStaticType, Trace)]` expand to
// `unsafe impl`s; no unsafe code is written by hand here.
#![allow(unsafe_code)]
// Starlark natives take their named parameters as Rust arguments.
#![allow(clippy::too_many_arguments)]

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::coerce::Coerce;
use starlark::environment::{Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::AllocList;
use starlark::values::list::ListRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneType;
use starlark::values::structs::AllocStruct;
use starlark::values::tuple::TupleRef;
use starlark::values::{
    Freeze, Heap, NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, Trace,
    UnpackValue, Value, ValueLifetimeless, ValueLike, starlark_value,
};

use crate::action::{Action, ActionKind};
use crate::artifact::{Artifact, ArtifactKind};
use crate::error::Location;
use crate::label::{Label, TargetName};
use crate::load::provider::{LabelValue, ProviderDef, ProviderInstance};

/// One target's analysis state.
#[derive(ProvidesStaticType)]
pub struct AnalysisContext {
    /// The workspace root (analysis reads source WIT files under it).
    pub root: std::path::PathBuf,
    /// Source files read during analysis, execroot-relative.
    pub read: RefCell<Vec<String>>,
    /// The target being analyzed.
    pub label: Label,
    /// Outputs this target declared: path -> (artifact, where).
    pub declared: RefCell<BTreeMap<String, (Artifact, Location)>>,
    /// Output path -> index of the action producing it.
    pub produced: RefCell<BTreeMap<String, usize>>,
    /// Actions declared so far, in order.
    pub actions: RefCell<Vec<Action>>,
    /// Files of each dependency, for `$(location ...)`.
    pub dep_files: HashMap<Label, Vec<Artifact>>,
    /// Predeclared outputs by label, for `$(location ...)` of an own output.
    pub own_files: RefCell<HashMap<Label, Vec<Artifact>>>,
    /// The target's `tags`: as in Bazel, execution requirements of each of
    /// its commands (`no-remote-exec`, `requires-network`, `no-cache`, ...).
    pub tags: Vec<String>,
    /// The target's `exec_properties`, for each of its commands.
    pub exec_properties: BTreeMap<String, String>,
}

impl AnalysisContext {
    fn declare(&self, name: &str, location: Location) -> anyhow::Result<Artifact> {
        let n = TargetName::new(name)
            .map_err(|e| anyhow::anyhow!("Cannot declare output `{name}`: {}", e.reason))?;
        let a = Artifact::output(&self.label, n.as_str());
        let mut d = self.declared.borrow_mut();
        if let Some((_, prev)) = d.get(a.path()) {
            anyhow::bail!(
                "Output `{name}` of `{}` is already declared at {prev}",
                self.label
            );
        }
        d.insert(a.path().to_owned(), (a.clone(), location));
        Ok(a)
    }

    /// Record a predeclared output (`attr.output`).
    pub fn predeclare(&self, name: &TargetName, location: Location) -> Artifact {
        let a = Artifact::output(&self.label, name.as_str());
        self.declared
            .borrow_mut()
            .insert(a.path().to_owned(), (a.clone(), location));
        let l = Label {
            package: self.label.package.clone(),
            name: name.clone(),
        };
        self.own_files.borrow_mut().insert(l, vec![a.clone()]);
        a
    }

    fn add_action(
        &self,
        mnemonic: &str,
        kind: ActionKind,
        inputs: Vec<Artifact>,
        outputs: Vec<Artifact>,
        location: Location,
    ) -> anyhow::Result<()> {
        if outputs.is_empty() {
            anyhow::bail!("An action must have at least one output");
        }
        let declared = self.declared.borrow();
        let mut produced = self.produced.borrow_mut();
        let index = self.actions.borrow().len();
        let mut outs = BTreeMap::new();
        for o in outputs {
            let owned = matches!(&o.0.kind, ArtifactKind::Output { owner } if owner == &self.label);
            if !owned || !declared.contains_key(o.path()) {
                anyhow::bail!(
                    "Action output `{}` was not declared by `{}`; declare it with `ctx.actions.declare_output`",
                    o.path(),
                    self.label
                );
            }
            if let Some(&prev) = produced.get(o.path()) {
                anyhow::bail!(
                    "Output `{}` is already produced by action #{prev} of `{}`",
                    o.path(),
                    self.label
                );
            }
            outs.insert(o.path().to_owned(), o);
        }
        for p in outs.keys() {
            produced.insert(p.clone(), index);
        }
        let mut ins = BTreeMap::new();
        for i in inputs {
            if outs.contains_key(i.path()) {
                anyhow::bail!(
                    "`{}` is both an input and an output of the same action",
                    i.path()
                );
            }
            ins.insert(i.path().to_owned(), i);
        }
        self.actions.borrow_mut().push(Action {
            owner: self.label.clone(),
            index,
            mnemonic: mnemonic.to_owned(),
            kind,
            inputs: ins.into_values().collect(),
            outputs: outs.into_values().collect(),
            location,
        });
        Ok(())
    }

    /// The files `$(location ARG)` names: a dependency's files, or one of
    /// this target's predeclared outputs.
    fn location_files(&self, arg: &str) -> Result<Vec<Artifact>, String> {
        let l = Label::parse_relative(arg, &self.label.package).map_err(|e| e.to_string())?;
        let own = self.own_files.borrow();
        self.dep_files
            .get(&l)
            .or_else(|| own.get(&l))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "`{l}` is not a dependency of `{}`; add it to `srcs` or `tools`",
                    self.label
                )
            })
    }

    fn expand_location(&self, text: &str) -> anyhow::Result<String> {
        super::make_vars::expand_locations(text, &|arg| self.location_files(arg))
            .map_err(|e| anyhow::anyhow!("in `{}`: {e}", self.label))
    }
}

fn actx<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a AnalysisContext> {
    eval.extra
        .and_then(|e| e.downcast_ref::<AnalysisContext>())
        .ok_or_else(|| anyhow::anyhow!("`ctx` can only be used while its rule implementation runs"))
}

fn here(eval: &Evaluator) -> Location {
    eval.call_stack_top_location()
        .map(|s| Location::from_span(&s))
        .unwrap_or(Location {
            file: String::new(),
            line: 1,
            col: 1,
        })
}

/// A dependency as seen in `ctx.attr`: its label and providers;
/// `dep[DefaultInfo]` reads one.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct Dependency {
    /// The dependency's label.
    #[allocative(skip)]
    pub label: Label,
    /// What its analysis returned.
    #[allocative(skip)]
    pub providers: Arc<Vec<ProviderInstance>>,
}

starlark_simple_value!(Dependency);

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<dependency {}>", self.label)
    }
}

#[starlark_value(type = "Dependency")]
impl<'v> StarlarkValue<'v> for Dependency {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        (attribute == "label").then(|| heap.alloc(LabelValue(self.label.clone())))
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["label".to_owned()]
    }

    // A dependency is a dict key in `label_keyed_string_dict` attributes.
    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<Dependency>()
            .is_some_and(|o| o.label == self.label))
    }

    fn write_hash(
        &self,
        hasher: &mut starlark::collections::StarlarkHasher,
    ) -> starlark::Result<()> {
        use std::hash::Hash;
        self.label.to_string().hash(hasher);
        Ok(())
    }

    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let def = index.downcast_ref::<ProviderDef>().ok_or_else(|| {
            starlark::Error::new_native(anyhow::anyhow!(
                "A dependency is indexed by a provider, e.g. `dep[DefaultInfo]`, got `{}`",
                index.get_type()
            ))
        })?;
        self.providers
            .iter()
            .find(|p| p.0.id == def.id)
            .map(|p| heap.alloc(p.clone()))
            .ok_or_else(|| {
                starlark::Error::new_native(anyhow::anyhow!(
                    "`{}` does not provide `{}`",
                    self.label,
                    def.display_name()
                ))
            })
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<ProviderDef>()
            .is_some_and(|d| self.providers.iter().any(|p| p.0.id == d.id)))
    }
}

/// `ctx.actions`: declares outputs and actions of the current target.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct Actions;

starlark_simple_value!(Actions);

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ctx.actions>")
    }
}

fn all_actions_methods(builder: &mut MethodsBuilder) {
    declare_methods(builder);
    crate::action::kinds::register_natives(builder);
}

starlark::methods_static!(ACTIONS_METHODS = all_actions_methods);

#[starlark_value(type = "actions")]
impl<'v> StarlarkValue<'v> for Actions {
    fn get_methods() -> Option<&'static Methods> {
        Some(ACTIONS_METHODS.methods())
    }
}

/// Declare an output file of the target being analyzed (for the natives
/// in `action/kinds/` that name their own outputs).
pub(crate) fn declare_output(eval: &mut Evaluator, name: &str) -> anyhow::Result<Artifact> {
    let loc = here(eval);
    actx(eval)?.declare(name, loc)
}

/// The `tags` of the target being analysed.
pub(crate) fn target_tags(eval: &Evaluator) -> Vec<String> {
    actx(eval).map(|a| a.tags.clone()).unwrap_or_default()
}

/// The `exec_properties` of the target being analysed.
pub(crate) fn target_exec_properties(eval: &Evaluator) -> BTreeMap<String, String> {
    actx(eval)
        .map(|a| a.exec_properties.clone())
        .unwrap_or_default()
}

/// The label of the target being analysed, as text.
pub(crate) fn target_label(eval: &Evaluator) -> anyhow::Result<String> {
    Ok(actx(eval)?.label.to_string())
}

/// Declare an action of the target being analyzed (for the natives in
/// `action/kinds/`): where the Starlark call is, then
/// [`AnalysisContext::add_action`].
pub(crate) fn declare_action(
    eval: &mut Evaluator,
    mnemonic: &str,
    kind: ActionKind,
    inputs: Vec<Artifact>,
    outputs: Vec<Artifact>,
) -> anyhow::Result<NoneType> {
    let loc = here(eval);
    actx(eval)?.add_action(mnemonic, kind, inputs, outputs, loc)?;
    Ok(NoneType)
}

/// The files in `v` (a file, or nested lists of files), for a native's
/// parameter named `what`.
pub(crate) fn collect_files(v: Value, what: &str, out: &mut Vec<Artifact>) -> anyhow::Result<()> {
    if let Some(a) = v.downcast_ref::<Artifact>() {
        out.push(a.clone());
        return Ok(());
    }
    let items = ListRef::from_value(v)
        .map(|l| l.content())
        .or_else(|| TupleRef::from_value(v).map(|t| t.content()));
    let Some(items) = items else {
        anyhow::bail!(
            "`{what}` expects files (or lists of files), got a value of type `{}`",
            v.get_type()
        );
    };
    for x in items {
        collect_files(*x, what, out)?;
    }
    Ok(())
}

/// An argv from strings, ints, files (whose paths are used and which
/// become inputs) and nested lists of them.
pub(crate) fn collect_args(
    v: Value,
    argv: &mut Vec<String>,
    inputs: &mut Vec<Artifact>,
) -> anyhow::Result<()> {
    if let Some(s) = v.unpack_str() {
        argv.push(s.to_owned());
    } else if let Some(a) = v.downcast_ref::<Artifact>() {
        argv.push(a.path().to_owned());
        inputs.push(a.clone());
    } else if let (None, Ok(Some(i))) = (v.unpack_bool(), i64::unpack_value(v)) {
        argv.push(i.to_string());
    } else if let Some(items) = ListRef::from_value(v)
        .map(|l| l.content())
        .or_else(|| TupleRef::from_value(v).map(|t| t.content()))
    {
        for x in items {
            collect_args(*x, argv, inputs)?;
        }
    } else {
        anyhow::bail!(
            "`arguments` holds a value of type `{}`; expected strings, ints, files or lists of them",
            v.get_type()
        );
    }
    Ok(())
}

/// `ctx.actions.declare_output` (and Bazel's `declare_file`). The natives
/// that declare actions live with their kinds (`action/kinds/`).
///
/// ```python
/// out = ctx.actions.declare_output("lib.o")
/// ```
#[starlark_module]
fn declare_methods(builder: &mut MethodsBuilder) {
    /// Declare an output file of this target at `kiln-out/<package>/<name>`.
    fn declare_output<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Artifact> {
        let loc = here(eval);
        actx(eval)?.declare(name, loc)
    }

    /// Bazel's name for `declare_output`.
    fn declare_file<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Artifact> {
        let loc = here(eval);
        actx(eval)?.declare(name, loc)
    }
}

/// The `ctx` passed to a rule implementation.
#[derive(
    Debug, Trace, Freeze, Coerce, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
#[repr(C)]
pub struct CtxGen<V: ValueLifetimeless> {
    /// `ctx.label`.
    pub label: V,
    /// `ctx.attr`: attribute values (dependencies as `Dependency`).
    pub attr: V,
    /// `ctx.files`: the files of each label attribute.
    pub files: V,
    /// `ctx.file`: the single file of each label attribute, or `None`.
    pub file: V,
    /// `ctx.outputs`: predeclared outputs.
    pub outputs: V,
    /// `ctx.actions`.
    pub actions: V,
    /// `ctx.build_setting_value`: for a build setting, its value in this
    /// configuration (`None` for other rules).
    pub build_setting_value: V,
    /// `ctx.test_filter`: `kiln test --test-filter`, or `None`; test rules
    /// run only the tests it selects.
    pub test_filter: V,
    /// `ctx.runs_per_test`: `kiln test --runs-per-test` (1 by default);
    /// test rules declare that many runs of each test.
    pub runs_per_test: V,
}

starlark_complex_value!(pub Ctx);

impl<V: ValueLifetimeless> fmt::Display for CtxGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<ctx>")
    }
}

starlark::methods_static!(CTX_METHODS = ctx_methods);

#[starlark_value(type = "ctx")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for CtxGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        Some(match attribute {
            "label" => self.label.to_value(),
            "attr" => self.attr.to_value(),
            "files" => self.files.to_value(),
            "file" => self.file.to_value(),
            "outputs" => self.outputs.to_value(),
            "actions" => self.actions.to_value(),
            "build_setting_value" => self.build_setting_value.to_value(),
            "test_filter" => self.test_filter.to_value(),
            "runs_per_test" => self.runs_per_test.to_value(),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        [
            "label",
            "attr",
            "files",
            "file",
            "outputs",
            "actions",
            "build_setting_value",
            "test_filter",
            "runs_per_test",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn get_methods() -> Option<&'static Methods> {
        Some(CTX_METHODS.methods())
    }
}

/// Methods of `ctx`: `expand_location(text)`, and `toolchain(name)`, a
/// struct of the named toolchain's entries (`cc`, `cflags`,
/// `sysroot_setup`, ... for `"c"`; `cargo`, `rustc` for `"rust"`;
/// `wasm_opt` for `"binaryen"`) and its
/// `files`, to pass as `ctx.actions.run(tools = ...)`.
#[starlark_module]
fn ctx_methods(builder: &mut MethodsBuilder) {
    /// The toolchain called `name` (`"c"`, `"cxx"`, `"rust"`, `"python"`,
    /// `"binaryen"`).
    fn toolchain<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let t = crate::toolchain::get(name)?;
        let heap = eval.heap();
        let mut fields: Vec<(&str, Value<'v>)> = t
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), heap.alloc(v.as_str())))
            .collect();
        fields.push((
            "files",
            heap.alloc(AllocList(t.files.iter().map(|f| f.as_str()))),
        ));
        Ok(heap.alloc(AllocStruct(fields)))
    }

    /// Expand `$(location LABEL)` / `$(locations LABEL)` (and the
    /// `execpath`/`rootpath` spellings) to the paths of a dependency's
    /// files, leaving every other `$(...)` as written (Bazel's
    /// `ctx.expand_location`).
    fn expand_location<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] text: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        actx(eval)?.expand_location(text)
    }

    /// Bazel's `ctx.expand_make_variables`: expand `$(NAME)`, `$X`, the
    /// location functions and `$$` in `command` (the value of attribute
    /// `attribute_name`), with the built-in variables (`RULEDIR`, `GENDIR`,
    /// `BINDIR`) and `additional_substitutions`. A name that is not defined
    /// fails analysis at the target's declaration:
    ///
    /// ```python
    /// cmd = ctx.expand_make_variables("cmd", ctx.attr.cmd, {"OUTS": outs})
    /// ```
    fn expand_make_variables<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = pos)] attribute_name: &str,
        #[starlark(require = pos)] command: &str,
        #[starlark(require = pos)] additional_substitutions: DictRef<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<String> {
        let ctx = actx(eval)?;
        let mut vars = super::make_vars::builtin_vars(ctx.label.package.as_str());
        for (k, v) in additional_substitutions.iter() {
            let (Some(k), Some(v)) = (k.unpack_str(), v.unpack_str()) else {
                anyhow::bail!(
                    "`additional_substitutions` maps names to strings, got `{}: {}`",
                    k.get_type(),
                    v.get_type()
                );
            };
            vars.insert(k.to_owned(), v.to_owned());
        }
        super::make_vars::expand(command, &vars, &|arg| ctx.location_files(arg)).map_err(|error| {
            anyhow::Error::new(super::make_vars::AttributeExpansionError {
                attribute: attribute_name.to_owned(),
                error,
            })
        })
    }

    /// Which of `imports` each plug serves, by the rule the `compose`
    /// action applies to components (`action/kinds/compose.rs`): `plugs`
    /// maps a name to the interfaces it exports; the result maps each name
    /// to the imports it serves (empty: an unused plug).
    ///
    /// ```python
    /// served = ctx.match_plugs(imports = ["a:b/c@1.0.0"], plugs = {"//p": ["a:b/c@1.0.0"]})
    /// ```
    fn match_plugs<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] imports: UnpackListOrTuple<String>,
        #[starlark(require = named)] plugs: DictRef<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let imports: std::collections::BTreeSet<String> = imports.items.into_iter().collect();
        let mut list = Vec::new();
        for (k, v) in plugs.iter() {
            let name = k.unpack_str().ok_or_else(|| {
                anyhow::anyhow!("`plugs` maps names (strings) to lists of interfaces")
            })?;
            let exports = UnpackListOrTuple::<String>::unpack_value(v)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    anyhow::anyhow!("the exports of plug `{name}` must be a list of strings")
                })?;
            list.push((name.to_owned(), exports.items));
        }
        let matched = crate::action::kinds::compose::match_plugs(&imports, &list);
        let heap = eval.heap();
        Ok(heap.alloc(starlark::values::dict::AllocDict(
            matched
                .into_iter()
                .map(|(name, served)| (name, heap.alloc(AllocList(served)))),
        )))
    }

    /// Read the WIT `world` (`ns:pkg/name`) from source `.wit` files during
    /// analysis: a struct with `name` (`ns:pkg/name@version`), `imports` and
    /// `exports` (interface names with versions, sorted). Lets a rule check
    /// a composition before anything is built. The files become part of
    /// what a persisted plan depends on.
    fn wit_world<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] wit: Value<'v>,
        #[starlark(require = named)] world: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = actx(eval)?;
        let mut files = Vec::new();
        collect_files(wit, "wit", &mut files)?;
        for f in &files {
            if !matches!(f.0.kind, ArtifactKind::Source) {
                anyhow::bail!(
                    "`{}` is made by an action; `ctx.wit_world` reads WIT during analysis and needs source files",
                    f.path()
                );
            }
        }
        let paths: Vec<&str> = files.iter().map(Artifact::path).collect();
        let w = super::wit::world_of(&ctx.root, &paths, world).map_err(anyhow::Error::msg)?;
        ctx.read
            .borrow_mut()
            .extend(paths.iter().map(|p| (*p).to_owned()));
        let heap = eval.heap();
        Ok(heap.alloc(AllocStruct([
            ("name", heap.alloc(w.name)),
            ("imports", heap.alloc(AllocList(w.imports))),
            ("exports", heap.alloc(AllocList(w.exports))),
        ])))
    }
}
