//! `select()`: attribute values that depend on the configuration.
//!
//! Owns the `select` native and the value it returns, and the coerced form
//! a target keeps ([`Selectable`]): the parts of an attribute joined with
//! `+`, each a plain value or a select whose branches are keyed by
//! `config_setting` labels. Which branch applies is decided when a
//! configured target graph is built (`graph/config.rs`); an unconfigured
//! graph (`kiln query` without `--config`) keeps every branch.
//!
//! A select's branches are kept as plain data (provider fields' [`Data`])
//! rather than Starlark values, so a select defined in a `.star` file
//! (`OPT = select(...)`, loaded by BUILD files) freezes like any constant.

// Starlark value types: `#[derive(ProvidesStaticType)]` expands to an
// `unsafe impl`; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::fmt;

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, Value,
    starlark_value,
};

use super::attr::{AttrSpec, AttrType, AttrValue, coerce};
use super::provider::Data;
use crate::error::Location;
use crate::label::{Label, PackagePath};

/// The key of the branch taken when no condition matches.
pub const DEFAULT_CONDITION: &str = "//conditions:default";

/// One part of a value written with `select()`, as written.
#[derive(Clone, Debug, PartialEq, Allocative)]
enum RawPart {
    Plain(Data),
    Select {
        branches: Vec<(String, Data)>,
        no_match_error: String,
        #[allocative(skip)]
        location: Location,
    },
}

/// What `select()` returns, and `select() + x`.
#[derive(
    Clone, Debug, PartialEq, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
pub struct SelectValue {
    parts: Vec<RawPart>,
}

starlark_simple_value!(SelectValue);

impl fmt::Display for SelectValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|p| match p {
                RawPart::Plain(d) => format!("{d:?}"),
                RawPart::Select { branches, .. } => format!(
                    "select({{{}}})",
                    branches
                        .iter()
                        .map(|(k, _)| format!("{k:?}: ..."))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        write!(f, "{}", parts.join(" + "))
    }
}

impl SelectValue {
    fn joined(&self, other: Value, other_first: bool) -> Option<starlark::Result<SelectValue>> {
        let mut theirs = match SelectValue::from_value(other) {
            Some(s) => s.parts.clone(),
            None => match Data::from_value(other, "select()") {
                Ok(d) => vec![RawPart::Plain(d)],
                Err(_) => return None,
            },
        };
        let mut parts = self.parts.clone();
        if other_first {
            theirs.append(&mut parts);
            parts = theirs;
        } else {
            parts.append(&mut theirs);
        }
        Some(Ok(SelectValue { parts }))
    }
}

#[starlark_value(type = "select")]
impl<'v> StarlarkValue<'v> for SelectValue {
    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        self.joined(rhs, false).map(|r| r.map(|s| heap.alloc(s)))
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        self.joined(lhs, true).map(|r| r.map(|s| heap.alloc(s)))
    }
}

/// One `select()` of a target's attribute, coerced.
#[derive(Clone, Debug, PartialEq)]
pub struct Select {
    /// `config_setting` label -> value, in the order written (the default
    /// branch is not among them).
    pub branches: Vec<(Label, AttrValue)>,
    /// The `//conditions:default` value.
    pub default: Option<AttrValue>,
    /// `no_match_error`, or empty.
    pub no_match_error: String,
    /// Where `select()` was called.
    pub location: Location,
}

/// One part of a [`Selectable`].
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// A value that does not depend on the configuration.
    Plain(AttrValue),
    /// A `select()`.
    Select(Select),
}

/// An attribute written with `select()`: its parts joined with `+`.
#[derive(Clone, Debug, PartialEq)]
pub struct Selectable {
    /// The parts, in order.
    pub parts: Vec<Part>,
}

impl Selectable {
    /// Coerce `v` to `spec`'s type if it is a `select()` (or a sum with
    /// one); `Ok(None)` when it is a plain value. The error is the part
    /// of the message after "Attribute `x` of `rule`".
    pub fn coerce<'v>(
        spec: &AttrSpec,
        v: Value<'v>,
        pkg: &PackagePath,
        heap: Heap<'v>,
    ) -> Result<Option<Selectable>, String> {
        let Some(raw) = SelectValue::from_value(v) else {
            return Ok(None);
        };
        if matches!(spec.ty, AttrType::Output | AttrType::OutputList) {
            return Err(
                "is an output and cannot use select(): outputs are the same in every configuration"
                    .to_owned(),
            );
        }
        let joinable = matches!(
            spec.ty,
            AttrType::String
                | AttrType::LabelList
                | AttrType::StringList
                | AttrType::StringDict
                | AttrType::LabelKeyedStringDict
        );
        if raw.parts.len() > 1 && !joinable {
            return Err(format!(
                "joins select() with `+`, but {} cannot be joined",
                spec.ty.describe()
            ));
        }
        let coerce_data = |d: &Data| coerce(spec, d.to_value(heap), pkg);
        let mut parts = Vec::new();
        for p in &raw.parts {
            parts.push(match p {
                RawPart::Plain(d) => Part::Plain(coerce_data(d)?),
                RawPart::Select {
                    branches,
                    no_match_error,
                    location,
                } => {
                    let mut out = Select {
                        branches: Vec::new(),
                        default: None,
                        no_match_error: no_match_error.clone(),
                        location: location.clone(),
                    };
                    for (k, d) in branches {
                        let value = coerce_data(d)
                            .map_err(|e| format!("in the select() branch `{k}` {e}"))?;
                        if k == DEFAULT_CONDITION {
                            out.default = Some(value);
                            continue;
                        }
                        let l = Label::parse_relative(k, pkg).map_err(|e| {
                            format!("has a select() key `{k}` that is not a label: {}", e.reason)
                        })?;
                        if out.branches.iter().any(|(x, _)| *x == l) {
                            return Err(format!("has a select() with the key `{l}` twice"));
                        }
                        out.branches.push((l, value));
                    }
                    Part::Select(out)
                }
            });
        }
        Ok(Some(Selectable { parts }))
    }

    /// Every value any branch could give, joined: what an unconfigured
    /// target graph (`kiln query`) sees. For a type that cannot be joined
    /// (one label, a bool), the default branch, else the first.
    pub fn unconfigured(&self) -> AttrValue {
        let mut out: Option<AttrValue> = None;
        for p in &self.parts {
            let values: Vec<&AttrValue> = match p {
                Part::Plain(v) => vec![v],
                Part::Select(s) => s
                    .branches
                    .iter()
                    .map(|(_, v)| v)
                    .chain(&s.default)
                    .collect(),
            };
            for v in values {
                out = Some(match out {
                    None => v.clone(),
                    Some(acc) => match acc.clone().concat(v.clone()) {
                        Ok(joined) => joined,
                        Err(_) => acc,
                    },
                });
            }
        }
        out.unwrap_or(AttrValue::Label(None))
    }

    /// Every label any branch names.
    pub fn labels(&self) -> Vec<&Label> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                Part::Plain(v) => out.extend(v.labels()),
                Part::Select(s) => {
                    for (_, v) in &s.branches {
                        out.extend(v.labels());
                    }
                    if let Some(v) = &s.default {
                        out.extend(v.labels());
                    }
                }
            }
        }
        out
    }

    /// The `config_setting` labels its selects test.
    pub fn conditions(&self) -> impl Iterator<Item = &Label> {
        self.parts
            .iter()
            .flat_map(|p| match p {
                Part::Plain(_) => [].iter(),
                Part::Select(s) => s.branches.iter(),
            })
            .map(|(l, _)| l)
    }
}

/// Registers `select()`.
pub fn register(builder: &mut GlobalsBuilder) {
    select_native(builder);
}

#[starlark_module]
fn select_native(builder: &mut GlobalsBuilder) {
    /// `select({":cond": value, "//conditions:default": other})`: the
    /// value of the branch whose `config_setting` matches the
    /// configuration.
    fn select<'v>(
        #[starlark(require = pos)] branches: Value<'v>,
        #[starlark(require = named, default = "")] no_match_error: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<SelectValue> {
        let Some(d) = DictRef::from_value(branches) else {
            anyhow::bail!(
                "select() expects a dict of condition label to value, got a value of type `{}`",
                branches.get_type()
            );
        };
        if d.is_empty() {
            anyhow::bail!("select() needs at least one branch");
        }
        let mut out = Vec::new();
        for (k, v) in d.iter() {
            let Some(k) = k.unpack_str() else {
                anyhow::bail!(
                    "select() keys are condition labels (strings), got a key of type `{}`",
                    k.get_type()
                );
            };
            let v = Data::from_value(v, "a select() branch").map_err(|_| {
                anyhow::anyhow!(
                    "select() branch `{k}` holds a value of type `{}`; a branch is a string, bool, int, list or dict",
                    v.get_type()
                )
            })?;
            out.push((k.to_owned(), v));
        }
        let location = eval
            .call_stack_top_location()
            .map(|s| Location::from_span(&s))
            .unwrap_or(Location {
                file: String::new(),
                line: 1,
                col: 1,
            });
        Ok(SelectValue {
            parts: vec![RawPart::Select {
                branches: out,
                no_match_error: no_match_error.to_owned(),
                location,
            }],
        })
    }
}
