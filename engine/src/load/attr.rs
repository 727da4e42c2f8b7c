//! Typed rule attributes: the `attr.*` natives and coercion of BUILD values.
//!
//! Owns `AttrSpec` (what `attr.string(...)` returns), the closed `AttrType`
//! enum, and `AttrValue`, the plain data a BUILD file's argument is coerced
//! to at load time. Labels are parsed here relative to the calling package;
//! whether they exist is decided later, when the target graph is built
//! (`graph/`). Turning values back into Starlark for `ctx.attr` is in
//! `analysis/`.

// Starlark value types: `#[derive(ProvidesStaticType)]` expands to an
// `unsafe impl`; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::tuple::TupleRef;
use starlark::values::{
    NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, UnpackValue, Value,
    starlark_value,
};

use crate::label::{Label, PackagePath, TargetName};

/// The type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Allocative)]
pub enum AttrType {
    /// `attr.string()`.
    String,
    /// `attr.bool()`.
    Bool,
    /// `attr.int()`.
    Int,
    /// `attr.label()`: one dependency.
    Label,
    /// `attr.label_list()`: dependencies.
    LabelList,
    /// `attr.string_list()`.
    StringList,
    /// `attr.string_dict()`.
    StringDict,
    /// `attr.label_keyed_string_dict()`: dependencies, each with a string.
    LabelKeyedStringDict,
    /// `attr.output()`: one file this target predeclares.
    Output,
    /// `attr.output_list()`: files this target predeclares.
    OutputList,
}

impl AttrType {
    /// How the expected value is described in messages.
    pub fn describe(self) -> &'static str {
        match self {
            AttrType::String => "a string",
            AttrType::Bool => "a bool",
            AttrType::Int => "an int",
            AttrType::Label => "a label string",
            AttrType::LabelList => "a list of label strings",
            AttrType::StringList => "a list of strings",
            AttrType::StringDict => "a dict of string to string",
            AttrType::LabelKeyedStringDict => "a dict of label string to string",
            AttrType::Output => "an output file name",
            AttrType::OutputList => "a list of output file names",
        }
    }
}

/// An attribute declaration.
///
/// Invariant: `default` has the shape of `ty` (checked when declared); a
/// mandatory attribute has no default.
#[derive(
    Clone, Debug, PartialEq, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
pub struct AttrSpec {
    /// Its type.
    pub ty: AttrType,
    /// Whether a BUILD file must set it.
    pub mandatory: bool,
    /// Value when not set.
    #[allocative(skip)]
    pub default: AttrDefault,
    /// For label attributes: whether a label may name a source file.
    pub allow_files: bool,
    /// For strings: the allowed values (empty: any).
    pub values: Vec<String>,
    /// Documentation.
    pub doc: String,
}

/// An attribute's default, before a package is known (labels in defaults
/// are parsed relative to the target's package when applied).
#[derive(Clone, Debug, PartialEq)]
pub enum AttrDefault {
    /// A string (also for label and output types).
    Str(String),
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i64),
    /// A list of strings.
    StrList(Vec<String>),
    /// A dict of strings.
    StrDict(Vec<(String, String)>),
    /// No value (`None` for label and output).
    None,
}

starlark_simple_value!(AttrSpec);

impl fmt::Display for AttrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<attr {:?}>", self.ty)
    }
}

#[starlark_value(type = "attribute")]
impl<'v> StarlarkValue<'v> for AttrSpec {}

/// A coerced attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i64),
    /// One label, or none when unset and optional.
    Label(Option<Label>),
    /// Labels, in the order written.
    LabelList(Vec<Label>),
    /// Strings.
    StrList(Vec<String>),
    /// A string dict, in the order written.
    StrDict(Vec<(String, String)>),
    /// A label-keyed string dict, in the order written.
    LabelStrDict(Vec<(Label, String)>),
    /// A predeclared output (name relative to the package), or none.
    Output(Option<TargetName>),
    /// Predeclared outputs.
    OutputList(Vec<TargetName>),
}

impl AttrValue {
    /// The labels this value names (for dependency edges).
    pub fn labels(&self) -> Vec<&Label> {
        match self {
            AttrValue::Label(Some(l)) => vec![l],
            AttrValue::LabelList(ls) => ls.iter().collect(),
            AttrValue::LabelStrDict(kv) => kv.iter().map(|(l, _)| l).collect(),
            _ => Vec::new(),
        }
    }

    /// `self + other`, as Starlark's `+` joins the values `select()`
    /// branches are concatenated with: lists append, strings join, dicts
    /// merge (a key in both is an error, as in Bazel).
    pub fn concat(self, other: AttrValue) -> Result<AttrValue, String> {
        fn merge<K: PartialEq + fmt::Display, V>(
            mut a: Vec<(K, V)>,
            b: Vec<(K, V)>,
        ) -> Result<Vec<(K, V)>, String> {
            for (k, v) in b {
                if a.iter().any(|(x, _)| *x == k) {
                    return Err(format!(
                        "joins two dicts that both have the key `{k}`; a key may come from one part only"
                    ));
                }
                a.push((k, v));
            }
            Ok(a)
        }
        Ok(match (self, other) {
            (AttrValue::Str(a), AttrValue::Str(b)) => AttrValue::Str(a + &b),
            (AttrValue::LabelList(mut a), AttrValue::LabelList(b)) => {
                a.extend(b);
                AttrValue::LabelList(a)
            }
            (AttrValue::StrList(mut a), AttrValue::StrList(b)) => {
                a.extend(b);
                AttrValue::StrList(a)
            }
            (AttrValue::StrDict(a), AttrValue::StrDict(b)) => AttrValue::StrDict(merge(a, b)?),
            (AttrValue::LabelStrDict(a), AttrValue::LabelStrDict(b)) => {
                AttrValue::LabelStrDict(merge(a, b)?)
            }
            _ => {
                return Err(
                    "joins values with `+` that cannot be joined (only lists, strings and dicts can)"
                        .to_owned(),
                );
            }
        })
    }
}

fn type_error(ty: AttrType, v: Value) -> String {
    format!(
        "expects {}, got a value of type `{}`",
        ty.describe(),
        v.get_type()
    )
}

fn list_items<'v>(v: Value<'v>) -> Option<&'v [Value<'v>]> {
    ListRef::from_value(v)
        .map(|l| l.content())
        .or_else(|| TupleRef::from_value(v).map(|t| t.content()))
}

fn strings(ty: AttrType, v: Value) -> Result<Vec<String>, String> {
    let items = list_items(v).ok_or_else(|| type_error(ty, v))?;
    items
        .iter()
        .map(|x| {
            x.unpack_str().map(str::to_owned).ok_or_else(|| {
                format!(
                    "expects {}, got an element of type `{}`",
                    ty.describe(),
                    x.get_type()
                )
            })
        })
        .collect()
}

fn output_name(s: &str) -> Result<TargetName, String> {
    if s.starts_with("//") || s.starts_with(':') {
        return Err(format!(
            "expects an output file name relative to the package, got the label `{s}`"
        ));
    }
    TargetName::new(s).map_err(|e| format!("has an invalid output name `{s}`: {}", e.reason))
}

fn label(s: &str, pkg: &PackagePath) -> Result<Label, String> {
    Label::parse_relative(s, pkg).map_err(|e| format!("has an invalid label `{s}`: {}", e.reason))
}

/// Coerce a BUILD value to `spec`'s type. The error is the part of the
/// message after "Attribute `x` of `rule`".
pub fn coerce(spec: &AttrSpec, v: Value, pkg: &PackagePath) -> Result<AttrValue, String> {
    let ty = spec.ty;
    let out = match ty {
        AttrType::String => {
            let s = v.unpack_str().ok_or_else(|| type_error(ty, v))?;
            if !spec.values.is_empty() && !spec.values.iter().any(|x| x == s) {
                return Err(format!(
                    "must be one of {}, got `{s}`",
                    quoted(&spec.values)
                ));
            }
            AttrValue::Str(s.to_owned())
        }
        AttrType::Bool => AttrValue::Bool(v.unpack_bool().ok_or_else(|| type_error(ty, v))?),
        AttrType::Int => match i64::unpack_value(v) {
            Ok(Some(i)) if v.unpack_bool().is_none() => AttrValue::Int(i),
            _ => return Err(type_error(ty, v)),
        },
        AttrType::Label if v.is_none() => AttrValue::Label(None),
        AttrType::Label => AttrValue::Label(Some(label(
            v.unpack_str().ok_or_else(|| type_error(ty, v))?,
            pkg,
        )?)),
        AttrType::LabelList => AttrValue::LabelList(
            strings(ty, v)?
                .iter()
                .map(|s| label(s, pkg))
                .collect::<Result<_, _>>()?,
        ),
        AttrType::StringList => AttrValue::StrList(strings(ty, v)?),
        AttrType::StringDict => {
            let d = DictRef::from_value(v).ok_or_else(|| type_error(ty, v))?;
            let mut out = Vec::with_capacity(d.len());
            for (k, x) in d.iter() {
                match (k.unpack_str(), x.unpack_str()) {
                    (Some(k), Some(x)) => out.push((k.to_owned(), x.to_owned())),
                    _ => {
                        return Err(format!(
                            "expects a dict of string to string, got an entry `{}: {}`",
                            k.get_type(),
                            x.get_type()
                        ));
                    }
                }
            }
            AttrValue::StrDict(out)
        }
        AttrType::LabelKeyedStringDict => {
            let d = DictRef::from_value(v).ok_or_else(|| type_error(ty, v))?;
            let mut out: Vec<(Label, String)> = Vec::with_capacity(d.len());
            for (k, x) in d.iter() {
                match (k.unpack_str(), x.unpack_str()) {
                    (Some(k), Some(x)) => {
                        let l = label(k, pkg)?;
                        if out.iter().any(|(o, _)| *o == l) {
                            return Err(format!("names `{l}` twice"));
                        }
                        out.push((l, x.to_owned()));
                    }
                    _ => {
                        return Err(format!(
                            "expects a dict of label string to string, got an entry `{}: {}`",
                            k.get_type(),
                            x.get_type()
                        ));
                    }
                }
            }
            AttrValue::LabelStrDict(out)
        }
        AttrType::Output if v.is_none() => AttrValue::Output(None),
        AttrType::Output => AttrValue::Output(Some(output_name(
            v.unpack_str().ok_or_else(|| type_error(ty, v))?,
        )?)),
        AttrType::OutputList => AttrValue::OutputList(
            strings(ty, v)?
                .iter()
                .map(|s| output_name(s))
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(out)
}

/// The value of an unset attribute in package `pkg`.
pub fn default_value(spec: &AttrSpec, pkg: &PackagePath) -> Result<AttrValue, String> {
    Ok(match (&spec.default, spec.ty) {
        (AttrDefault::Str(s), AttrType::Label) => AttrValue::Label(Some(label(s, pkg)?)),
        (AttrDefault::Str(s), AttrType::Output) => AttrValue::Output(Some(output_name(s)?)),
        (AttrDefault::Str(s), _) => AttrValue::Str(s.clone()),
        (AttrDefault::Bool(b), _) => AttrValue::Bool(*b),
        (AttrDefault::Int(i), _) => AttrValue::Int(*i),
        (AttrDefault::StrList(xs), AttrType::LabelList) => {
            AttrValue::LabelList(xs.iter().map(|s| label(s, pkg)).collect::<Result<_, _>>()?)
        }
        (AttrDefault::StrList(xs), AttrType::OutputList) => AttrValue::OutputList(
            xs.iter()
                .map(|s| output_name(s))
                .collect::<Result<_, _>>()?,
        ),
        (AttrDefault::StrList(xs), _) => AttrValue::StrList(xs.clone()),
        (AttrDefault::StrDict(xs), AttrType::LabelKeyedStringDict) => AttrValue::LabelStrDict(
            xs.iter()
                .map(|(k, v)| Ok((label(k, pkg)?, v.clone())))
                .collect::<Result<_, String>>()?,
        ),
        (AttrDefault::StrDict(xs), _) => AttrValue::StrDict(xs.clone()),
        (AttrDefault::None, AttrType::Output) => AttrValue::Output(None),
        (AttrDefault::None, _) => AttrValue::Label(None),
    })
}

fn quoted(xs: &[String]) -> String {
    xs.iter()
        .map(|x| format!("`{x}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn spec(ty: AttrType, mandatory: bool, default: AttrDefault, doc: &str) -> AttrSpec {
    AttrSpec {
        ty,
        mandatory,
        default,
        allow_files: false,
        values: Vec::new(),
        doc: doc.to_owned(),
    }
}

fn strs(v: Option<UnpackListOrTuple<String>>) -> Vec<String> {
    v.map(|l| l.items).unwrap_or_default()
}

/// The `default` of `attr.<what>(...)` for a dict attribute, checked to be
/// a dict of strings.
fn dict_default(default: Option<Value>, what: &str) -> anyhow::Result<Vec<(String, String)>> {
    let Some(v) = default else {
        return Ok(Vec::new());
    };
    let probe = spec(AttrType::StringDict, false, AttrDefault::None, "");
    match coerce(&probe, v, &PackagePath::root()) {
        Ok(AttrValue::StrDict(x)) => Ok(x),
        Ok(_) => Ok(Vec::new()),
        Err(e) => anyhow::bail!("`attr.{what}(default = ...)` {e}"),
    }
}

/// Registers the `attr` namespace.
///
/// ```python
/// my_rule = rule(
///     impl = _impl,
///     attrs = {
///         "srcs": attr.label_list(allow_files = True),
///         "out": attr.output(mandatory = True),
///         "mode": attr.string(default = "static", values = ["static", "dynlink"]),
///     },
/// )
/// ```
pub fn register(builder: &mut GlobalsBuilder) {
    builder.namespace("attr", attr_natives);
}

#[starlark_module]
fn attr_natives(builder: &mut GlobalsBuilder) {
    fn string(
        #[starlark(require = named, default = "")] default: &str,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named)] values: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let mut s = spec(
            AttrType::String,
            mandatory,
            AttrDefault::Str(default.to_owned()),
            doc,
        );
        s.values = strs(values);
        if !s.values.is_empty() && !mandatory && !s.values.iter().any(|v| v == default) {
            anyhow::bail!(
                "The default `{default}` is not one of the allowed values {}",
                quoted(&s.values)
            );
        }
        Ok(s)
    }

    fn bool(
        #[starlark(require = named, default = false)] default: bool,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        Ok(spec(
            AttrType::Bool,
            mandatory,
            AttrDefault::Bool(default),
            doc,
        ))
    }

    fn int(
        #[starlark(require = named, default = 0)] default: i64,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        Ok(spec(
            AttrType::Int,
            mandatory,
            AttrDefault::Int(default),
            doc,
        ))
    }

    fn label(
        #[starlark(require = named)] default: Option<&str>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = false)] allow_files: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let d = default
            .map(|s| AttrDefault::Str(s.to_owned()))
            .unwrap_or(AttrDefault::None);
        let mut s = spec(AttrType::Label, mandatory, d, doc);
        s.allow_files = allow_files;
        Ok(s)
    }

    fn label_list(
        #[starlark(require = named)] default: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = false)] allow_files: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let mut s = spec(
            AttrType::LabelList,
            mandatory,
            AttrDefault::StrList(strs(default)),
            doc,
        );
        s.allow_files = allow_files;
        Ok(s)
    }

    fn source_list(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let mut s = spec(
            AttrType::LabelList,
            mandatory,
            AttrDefault::StrList(Vec::new()),
            doc,
        );
        s.allow_files = true;
        Ok(s)
    }

    fn string_list(
        #[starlark(require = named)] default: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        Ok(spec(
            AttrType::StringList,
            mandatory,
            AttrDefault::StrList(strs(default)),
            doc,
        ))
    }

    fn string_dict<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let d = dict_default(default, "string_dict")?;
        Ok(spec(
            AttrType::StringDict,
            mandatory,
            AttrDefault::StrDict(d),
            doc,
        ))
    }

    fn label_keyed_string_dict<'v>(
        #[starlark(require = named)] default: Option<Value<'v>>,
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = false)] allow_files: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        let d = dict_default(default, "label_keyed_string_dict")?;
        let mut s = spec(
            AttrType::LabelKeyedStringDict,
            mandatory,
            AttrDefault::StrDict(d),
            doc,
        );
        s.allow_files = allow_files;
        Ok(s)
    }

    fn output(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        Ok(spec(AttrType::Output, mandatory, AttrDefault::None, doc))
    }

    fn output_list(
        #[starlark(require = named, default = false)] mandatory: bool,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<AttrSpec> {
        Ok(spec(
            AttrType::OutputList,
            mandatory,
            AttrDefault::StrList(Vec::new()),
            doc,
        ))
    }
}
