//! `rule()`: rule kinds defined in Starlark, and the targets BUILD files
//! declare by calling them.
//!
//! Owns the rule definition value, `RuleSchema` (its kind name and typed
//! attributes), and the checking of a BUILD call's arguments into a
//! `TargetDecl`. Running the rule's implementation is `analysis/`; where the
//! declared target goes is `build_file.rs`.

// Starlark value types: `#[derive(ProvidesStaticType, Trace)]` expand to
// `unsafe impl`s; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use starlark::coerce::Coerce;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::values::dict::DictRef;
use starlark::values::{
    Freeze, NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, Trace, Value,
    ValueLifetimeless, ValueLike, starlark_value,
};

use super::attr::{AttrDefault, AttrSpec, AttrType, AttrValue, coerce, default_value};
use super::build_file::{BuildContext, Visibility};
use super::select::Selectable;
use crate::error::Location;
use crate::label::{Label, TargetName};

/// Identity of a rule kind; unique in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Allocative)]
pub struct RuleId(pub u64);

static NEXT_RULE: AtomicU64 = AtomicU64::new(1);

/// Attributes every rule has, whatever it declares: Bazel's common
/// attributes. `testonly` is checked when a build loads the graph and
/// `deprecation` warns the targets that depend on one; `features`,
/// `licenses` and the platform constraints (`compatible_with`,
/// `target_compatible_with`, `exec_compatible_with`) are accepted, checked
/// to be lists of strings, and have no effect (kiln has no platforms or
/// toolchain features). `exec_properties` go to a remote executor with
/// every command the target runs (an action's own win).
pub const IMPLICIT_ATTRS: &[&str] = &[
    "name",
    "visibility",
    "tags",
    "testonly",
    "deprecation",
    "features",
    "licenses",
    "compatible_with",
    "target_compatible_with",
    "exec_compatible_with",
    "exec_properties",
];

/// The built-in rules that define configurations (`rules/settings.star`):
/// their attributes cannot use `select()`.
pub const CONFIGURATION_RULES: &[&str] = &["bool_setting", "string_setting", "config_setting"];

/// What a rule kind accepts.
///
/// Invariant: `attrs` is sorted by name, has no duplicates and none of the
/// implicit attribute names.
#[derive(Debug, Allocative)]
pub struct RuleSchema {
    /// Process-unique identity.
    pub id: RuleId,
    /// The name the rule was exported as (`genrule`); set once.
    #[allocative(skip)]
    pub kind: OnceLock<String>,
    /// The `.star` file that defined it.
    pub file: String,
    /// Declared attributes.
    pub attrs: Vec<(String, AttrSpec)>,
    /// Documentation.
    pub doc: String,
}

impl RuleSchema {
    /// The rule kind, as `kind()` queries match it.
    pub fn kind(&self) -> &str {
        self.kind
            .get()
            .map(String::as_str)
            .unwrap_or("<anonymous rule>")
    }

    fn valid_names(&self) -> String {
        let mut names: Vec<&str> = self
            .attrs
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(IMPLICIT_ATTRS.iter().copied())
            .collect();
        names.sort();
        names.join(", ")
    }
}

/// A target as a BUILD file declared it: checked attribute values, labels
/// not yet resolved.
#[derive(Debug, Clone)]
pub struct TargetDecl {
    /// The target's name.
    pub name: TargetName,
    /// Its rule kind.
    pub rule: Arc<RuleSchema>,
    /// Values of `rule.attrs`, in the same order (defaults applied).
    pub attrs: Vec<AttrValue>,
    /// Its `visibility`, or `None` to use the package default.
    pub visibility: Option<Visibility>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `testonly`: only test targets and other `testonly` targets may
    /// depend on it (rules named `*_test` are `testonly` by default).
    pub testonly: bool,
    /// `deprecation`: why depending on it is discouraged.
    pub deprecation: Option<String>,
    /// `exec_properties`: platform properties for a remote executor, for
    /// every command of the target.
    pub exec_properties: Vec<(String, String)>,
    /// Where the rule was called.
    pub location: Location,
    /// Attributes written with `select()`: index into `attrs`, and the
    /// value as written. While unconfigured, `attrs[i]` holds every
    /// branch joined ([`Selectable::unconfigured`]); configuring the
    /// target replaces it with the branch that applies and empties this.
    pub selects: Vec<(usize, Selectable)>,
    /// The `config_setting` targets its selects test (dependencies in
    /// every configuration).
    pub conditions: Vec<Label>,
    /// For a build setting (`bool_setting`, `string_setting`) in a
    /// configured graph: its value there.
    pub setting_value: Option<AttrValue>,
}

impl TargetDecl {
    /// The value of attribute `name`, if the rule declares it.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        let i = self
            .rule
            .attrs
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        self.attrs.get(i)
    }

    /// Tagged `manual`: wildcard patterns (`:all`, `...`) of build, test
    /// and run leave it out, as Bazel's do; `kiln query` keeps it.
    pub fn is_manual(&self) -> bool {
        self.tags.iter().any(|t| t == "manual")
    }

    /// The predeclared output names (`attr.output` / `attr.output_list`).
    pub fn predeclared_outputs(&self) -> Vec<&TargetName> {
        let mut out = Vec::new();
        for v in &self.attrs {
            match v {
                AttrValue::Output(Some(n)) => out.push(n),
                AttrValue::OutputList(ns) => out.extend(ns),
                _ => {}
            }
        }
        out
    }
}

/// A rule definition: what `rule()` returns; calling it in a BUILD file
/// declares a target.
#[derive(
    Debug, Trace, Freeze, Coerce, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
#[repr(C)]
pub struct RuleDefGen<V: ValueLifetimeless> {
    /// The implementation function, `impl(ctx) -> [providers]`.
    pub implementation: V,
    /// Kind and attributes.
    #[freeze(identity)]
    #[trace(static)]
    pub schema: Arc<RuleSchema>,
}

starlark_complex_value!(pub RuleDef);

impl<V: ValueLifetimeless> fmt::Display for RuleDefGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<rule {}>", self.schema.kind())
    }
}

fn native_err(msg: String) -> starlark::Error {
    starlark::Error::new_native(anyhow::anyhow!(msg))
}

#[starlark_value(type = "rule")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for RuleDefGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.schema.kind.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let kind = self.schema.kind();
        let Some(ctx) = eval.extra.and_then(|e| e.downcast_ref::<BuildContext>()) else {
            return Err(native_err(format!(
                "Rule `{kind}` can only be called while a BUILD.star file is evaluated, not from a `.star` file's top level or a rule implementation"
            )));
        };
        if self.schema.kind.get().is_none() {
            return Err(native_err(
                "This rule was never assigned to a global variable; write `my_rule = rule(...)` at the top level of a `.star` file".to_owned(),
            ));
        }
        let location = eval
            .call_stack_top_location()
            .map(|s| Location::from_span(&s))
            .unwrap_or_else(|| ctx.file_location());
        if args.len()? != args.names_map()?.len() {
            return Err(native_err(format!(
                "Rule `{kind}` takes only named arguments, e.g. `{kind}(name = \"x\", ...)`"
            )));
        }
        let schema = &self.schema;
        let mut values: Vec<Option<AttrValue>> = vec![None; schema.attrs.len()];
        let mut name = None;
        let mut visibility = None;
        let mut tags = Vec::new();
        let mut testonly = kind.ends_with("_test");
        let mut deprecation = None;
        let mut exec_properties = Vec::new();
        let mut selects = Vec::new();
        let coerce_implicit = |k: &str, ty: AttrType, v: Value<'v>| {
            let spec = AttrSpec {
                ty,
                mandatory: false,
                default: AttrDefault::None,
                allow_files: false,
                values: Vec::new(),
                doc: String::new(),
            };
            coerce(&spec, v, &ctx.package)
                .map_err(|e| native_err(format!("Attribute `{k}` of `{kind}` {e}")))
        };
        for (k, v) in args.names_map()? {
            let k = k.as_str();
            match k {
                "name" => {
                    let s = v.unpack_str().ok_or_else(|| {
                        native_err(format!("Attribute `name` of `{kind}` expects a string, got a value of type `{}`", v.get_type()))
                    })?;
                    name =
                        Some(TargetName::new(s).map_err(|e| {
                            native_err(format!("Attribute `name` of `{kind}`: {e}"))
                        })?);
                }
                "visibility" => {
                    visibility = Some(Visibility::from_value(v, &ctx.package).map_err(native_err)?);
                }
                "tags" => {
                    if let AttrValue::StrList(t) = coerce_implicit(k, AttrType::StringList, v)? {
                        tags = t;
                    }
                }
                "testonly" => {
                    if let AttrValue::Bool(b) = coerce_implicit(k, AttrType::Bool, v)? {
                        testonly = b;
                    }
                }
                "deprecation" => {
                    if let AttrValue::Str(d) = coerce_implicit(k, AttrType::String, v)? {
                        deprecation = (!d.is_empty()).then_some(d);
                    }
                }
                "exec_properties" => {
                    if let AttrValue::StrDict(d) = coerce_implicit(k, AttrType::StringDict, v)? {
                        exec_properties = d;
                    }
                }
                // Accepted with Bazel's types; no meaning here.
                "features"
                | "licenses"
                | "compatible_with"
                | "target_compatible_with"
                | "exec_compatible_with" => {
                    coerce_implicit(k, AttrType::StringList, v)?;
                }
                _ => {
                    let Ok(i) = schema.attrs.binary_search_by(|(n, _)| n.as_str().cmp(k)) else {
                        return Err(native_err(format!(
                            "Unknown attribute `{k}` for rule `{kind}`; expected one of: {}",
                            schema.valid_names()
                        )));
                    };
                    let spec = &schema.attrs[i].1;
                    let err = |e: String| native_err(format!("Attribute `{k}` of `{kind}` {e}"));
                    if let Some(sel) =
                        Selectable::coerce(spec, v, &ctx.package, eval.heap()).map_err(err)?
                    {
                        if CONFIGURATION_RULES.contains(&kind) {
                            return Err(err(format!(
                                "uses select(), which `{kind}` does not allow: a configuration cannot depend on itself"
                            )));
                        }
                        values[i] = Some(sel.unconfigured());
                        selects.push((i, sel));
                        continue;
                    }
                    let val = coerce(spec, v, &ctx.package).map_err(err)?;
                    values[i] = Some(val);
                }
            }
        }
        let Some(name) = name else {
            return Err(native_err(format!(
                "Missing mandatory attribute `name` for rule `{kind}`"
            )));
        };
        let mut attrs = Vec::with_capacity(values.len());
        for ((attr_name, spec), v) in schema.attrs.iter().zip(values) {
            match v {
                Some(v) => attrs.push(v),
                None if spec.mandatory => {
                    return Err(native_err(format!(
                        "Missing mandatory attribute `{attr_name}` for rule `{kind}` (target `{name}`)"
                    )));
                }
                None => attrs.push(default_value(spec, &ctx.package).map_err(|e| {
                    native_err(format!(
                        "Default of attribute `{attr_name}` of `{kind}`: {e}"
                    ))
                })?),
            }
        }
        let decl = TargetDecl {
            name,
            rule: schema.clone(),
            attrs,
            visibility,
            tags,
            testonly,
            deprecation,
            exec_properties,
            location,
            conditions: {
                let mut c: Vec<Label> = selects
                    .iter()
                    .flat_map(|(_, s): &(usize, Selectable)| s.conditions().cloned())
                    .collect();
                c.sort();
                c.dedup();
                c
            },
            selects,
            setting_value: None,
        };
        ctx.declare(decl).map_err(native_err)?;
        Ok(Value::new_none())
    }
}

/// Registers `rule()`.
///
/// ```python
/// def _impl(ctx):
///     out = ctx.actions.declare_output(ctx.attr.name + ".txt")
///     ctx.actions.write(out, ctx.attr.text)
///     return [DefaultInfo(files = [out])]
///
/// text_file = rule(impl = _impl, attrs = {"text": attr.string(mandatory = True)})
/// ```
#[starlark_module]
pub fn register(builder: &mut GlobalsBuilder) {
    fn rule<'v>(
        #[starlark(require = named)] r#impl: Value<'v>,
        #[starlark(require = named)] attrs: Option<Value<'v>>,
        #[starlark(require = named, default = "")] doc: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<RuleDef<'v>> {
        if r#impl.get_type() != "function" {
            anyhow::bail!(
                "`rule(impl = ...)` expects a function, got a value of type `{}`",
                r#impl.get_type()
            );
        }
        let mut specs = Vec::new();
        if let Some(attrs) = attrs {
            let d = DictRef::from_value(attrs).ok_or_else(|| {
                anyhow::anyhow!(
                    "`rule(attrs = ...)` expects a dict of name to `attr.*()`, got `{}`",
                    attrs.get_type()
                )
            })?;
            for (k, v) in d.iter() {
                let k = k.unpack_str().ok_or_else(|| {
                    anyhow::anyhow!("Attribute names must be strings, got `{}`", k.get_type())
                })?;
                if IMPLICIT_ATTRS.contains(&k) {
                    anyhow::bail!(
                        "Attribute `{k}` is implicit in every rule and cannot be declared"
                    );
                }
                let spec = v
                    .downcast_ref::<AttrSpec>()
                    .ok_or_else(|| anyhow::anyhow!("Attribute `{k}` must be declared with `attr.*()`, got a value of type `{}`", v.get_type()))?;
                specs.push((k.to_owned(), spec.clone()));
            }
        }
        specs.sort_by(|a, b| a.0.cmp(&b.0));
        let file = eval
            .call_stack_top_location()
            .map(|s| s.filename().to_owned())
            .unwrap_or_default();
        Ok(RuleDef {
            implementation: r#impl,
            schema: Arc::new(RuleSchema {
                id: RuleId(NEXT_RULE.fetch_add(1, Ordering::Relaxed)),
                kind: OnceLock::new(),
                file,
                attrs: specs,
                doc: doc.to_owned(),
            }),
        })
    }
}
