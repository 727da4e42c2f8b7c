//! `provider()`: typed records that rule implementations return and read.
//!
//! Owns the provider definition value (`MyInfo = provider(fields = [...])`),
//! provider instances, and `Data`, the plain-data form their fields are kept
//! in. Instances hold no Starlark heap values, so an analysis result can move
//! from one target's evaluation to its dependents' without sharing heaps. The
//! built-in providers the engine reads are defined here too: `DefaultInfo`
//! (a target's files), `TestInfo` (a test target: the files its test runs
//! write) and `RunInfo` (what `kiln run` invokes). Who returns providers
//! and who reads them is `analysis/` and the planner (`plan/`).

// Starlark value types: `#[derive(ProvidesStaticType)]` expands to an
// `unsafe impl`; no unsafe code is written by hand here.
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use starlark::environment::GlobalsBuilder;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::tuple::TupleRef;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkPagablePanic, StarlarkValue, UnpackValue, Value,
    ValueLike, starlark_value,
};

use crate::artifact::Artifact;
use crate::label::Label;

/// Identity of a provider definition; unique in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Allocative)]
pub struct ProviderId(u64);

/// The id of the built-in `DefaultInfo`.
pub const DEFAULT_INFO: ProviderId = ProviderId(0);

/// The id of the built-in `TestInfo(results = [...])`: returned by test
/// rules, whose `results` are the files their test actions write (an
/// action writing one fails when its test fails). `kiln test` runs the
/// targets that return it.
pub const TEST_INFO: ProviderId = ProviderId(1);

/// The id of the built-in `RunInfo(component, dynlink_plan, stdlib)`: what
/// `kiln run` invokes (a component with the WASI command world, its
/// dynlink plan and the stdlib zip whose directory is mounted at `/lib`).
pub const RUN_INFO: ProviderId = ProviderId(2);

static NEXT_PROVIDER: AtomicU64 = AtomicU64::new(3);

/// Plain data held in a provider field.
#[derive(Clone, Debug, PartialEq, Allocative)]
pub enum Data {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int.
    Int(i64),
    /// A string.
    Str(String),
    /// A label.
    Label(#[allocative(skip)] Label),
    /// A file.
    Artifact(Artifact),
    /// A list or tuple (tuples come back as lists).
    List(Vec<Data>),
    /// A dict, in insertion order.
    Dict(Vec<(Data, Data)>),
    /// A nested provider instance.
    Provider(ProviderInstance),
}

impl Data {
    /// Convert a Starlark value; `what` names it in the error.
    pub fn from_value(v: Value, what: &str) -> anyhow::Result<Data> {
        if v.is_none() {
            return Ok(Data::None);
        }
        if let Some(b) = v.unpack_bool() {
            return Ok(Data::Bool(b));
        }
        if let Some(s) = v.unpack_str() {
            return Ok(Data::Str(s.to_owned()));
        }
        if let Ok(Some(i)) = i64::unpack_value(v) {
            return Ok(Data::Int(i));
        }
        if let Some(a) = v.downcast_ref::<Artifact>() {
            return Ok(Data::Artifact(a.clone()));
        }
        if let Some(l) = v.downcast_ref::<LabelValue>() {
            return Ok(Data::Label(l.0.clone()));
        }
        if let Some(p) = v.downcast_ref::<ProviderInstance>() {
            return Ok(Data::Provider(p.clone()));
        }
        if let Some(l) = ListRef::from_value(v) {
            return l
                .content()
                .iter()
                .map(|x| Data::from_value(*x, what))
                .collect::<Result<_, _>>()
                .map(Data::List);
        }
        if let Some(t) = TupleRef::from_value(v) {
            return t
                .content()
                .iter()
                .map(|x| Data::from_value(*x, what))
                .collect::<Result<_, _>>()
                .map(Data::List);
        }
        if let Some(d) = DictRef::from_value(v) {
            let mut out = Vec::with_capacity(d.len());
            for (k, x) in d.iter() {
                out.push((Data::from_value(k, what)?, Data::from_value(x, what)?));
            }
            return Ok(Data::Dict(out));
        }
        anyhow::bail!(
            "{what} holds a value of type `{}`; provider fields hold data only (None, bool, int, string, label, File, list, tuple, dict or a provider)",
            v.get_type()
        )
    }

    /// Allocate this data on a Starlark heap.
    pub fn to_value<'v>(&self, heap: Heap<'v>) -> Value<'v> {
        match self {
            Data::None => Value::new_none(),
            Data::Bool(b) => Value::new_bool(*b),
            Data::Int(i) => heap.alloc(*i),
            Data::Str(s) => heap.alloc(s.as_str()),
            Data::Label(l) => heap.alloc(LabelValue(l.clone())),
            Data::Artifact(a) => heap.alloc(a.clone()),
            Data::List(xs) => heap.alloc(AllocList(xs.iter().map(|x| x.to_value(heap)))),
            Data::Dict(xs) => heap.alloc(AllocDict(
                xs.iter().map(|(k, v)| (k.to_value(heap), v.to_value(heap))),
            )),
            Data::Provider(p) => heap.alloc(p.clone()),
        }
    }

    /// The artifacts in this data, depth first (for `DefaultInfo.files`).
    pub fn artifacts(&self, out: &mut Vec<Artifact>) {
        match self {
            Data::Artifact(a) => out.push(a.clone()),
            Data::List(xs) => xs.iter().for_each(|x| x.artifacts(out)),
            _ => {}
        }
    }
}

/// A label as a Starlark value (`ctx.label`): `str()` gives `//pkg:name`,
/// and it has `.package` and `.name`.
#[derive(
    Clone, Debug, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
pub struct LabelValue(#[allocative(skip)] pub Label);

starlark_simple_value!(LabelValue);

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[starlark_value(type = "Label")]
impl<'v> StarlarkValue<'v> for LabelValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "name" => Some(heap.alloc(self.0.name.as_str())),
            "package" => Some(heap.alloc(self.0.package.as_str())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["name".to_owned(), "package".to_owned()]
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<LabelValue>()
            .is_some_and(|o| o == self))
    }
}

/// A provider definition: the value `provider()` returns, callable to make
/// instances.
///
/// Invariant: `fields` is sorted and has no duplicates; `name` is set once,
/// when the definition is assigned to a global (`MyInfo = provider(...)`).
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct ProviderDef {
    /// Process-unique identity.
    pub id: ProviderId,
    /// Allowed field names.
    pub fields: Arc<Vec<String>>,
    /// The global name it was exported as.
    #[allocative(skip)]
    pub name: OnceLock<String>,
}

starlark_simple_value!(ProviderDef);

impl ProviderDef {
    fn new(id: ProviderId, fields: Vec<String>, name: Option<&str>) -> Self {
        let lock = OnceLock::new();
        if let Some(n) = name {
            let _ = lock.set(n.to_owned());
        }
        ProviderDef {
            id,
            fields: Arc::new(fields),
            name: lock,
        }
    }

    /// The exported name, or `<anonymous provider>`.
    pub fn display_name(&self) -> &str {
        self.name
            .get()
            .map(String::as_str)
            .unwrap_or("<anonymous provider>")
    }

    /// The built-in `DefaultInfo(files = [...])`.
    pub fn default_info() -> Self {
        ProviderDef::new(DEFAULT_INFO, vec!["files".to_owned()], Some("DefaultInfo"))
    }

    /// The built-in `TestInfo(results = [...])`.
    pub fn test_info() -> Self {
        ProviderDef::new(TEST_INFO, vec!["results".to_owned()], Some("TestInfo"))
    }

    /// The built-in `RunInfo(component, dynlink_plan, stdlib)`.
    pub fn run_info() -> Self {
        let fields = ["component", "dynlink_plan", "stdlib"];
        ProviderDef::new(
            RUN_INFO,
            fields.iter().map(|f| f.to_string()).collect(),
            Some("RunInfo"),
        )
    }
}

impl fmt::Display for ProviderDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<provider {}>", self.display_name())
    }
}

#[starlark_value(type = "provider")]
impl<'v> StarlarkValue<'v> for ProviderDef {
    fn export_as(
        &self,
        variable_name: &str,
        _eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn invoke(
        &self,
        _me: Value<'v>,
        args: &Arguments<'v, '_>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let mut fields = BTreeMap::new();
        for (k, v) in args.names_map()? {
            let k = k.as_str();
            if self.fields.binary_search_by(|f| f.as_str().cmp(k)).is_err() {
                return Err(starlark::Error::new_native(anyhow::anyhow!(
                    "Provider `{}` has no field `{k}`; its fields are: {}",
                    self.display_name(),
                    self.fields.join(", ")
                )));
            }
            let data = Data::from_value(v, &format!("Field `{k}` of `{}`", self.display_name()))
                .map_err(starlark::Error::new_native)?;
            fields.insert(k.to_owned(), data);
        }
        Ok(eval.heap().alloc(ProviderInstance(Arc::new(InstanceData {
            id: self.id,
            name: self.display_name().to_owned(),
            fields,
        }))))
    }
}

/// The fields of one provider instance.
#[derive(Debug, PartialEq, Allocative)]
pub struct InstanceData {
    /// Which provider this is an instance of.
    pub id: ProviderId,
    /// The provider's name, for messages.
    pub name: String,
    /// Field values; absent fields read as `None`.
    pub fields: BTreeMap<String, Data>,
}

/// A provider instance as a Starlark value.
#[derive(
    Clone, Debug, PartialEq, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic,
)]
pub struct ProviderInstance(pub Arc<InstanceData>);

starlark_simple_value!(ProviderInstance);

impl ProviderInstance {
    /// A `DefaultInfo` holding `files`.
    pub fn default_info(files: Vec<Artifact>) -> Self {
        let mut fields = BTreeMap::new();
        fields.insert(
            "files".to_owned(),
            Data::List(files.into_iter().map(Data::Artifact).collect()),
        );
        ProviderInstance(Arc::new(InstanceData {
            id: DEFAULT_INFO,
            name: "DefaultInfo".to_owned(),
            fields,
        }))
    }

    /// The files of a `DefaultInfo` (empty for other providers).
    pub fn files(&self) -> Vec<Artifact> {
        self.field_files("files")
    }

    /// The files in field `name` (none when absent or `None`).
    pub fn field_files(&self, name: &str) -> Vec<Artifact> {
        let mut out = Vec::new();
        if let Some(d) = self.0.fields.get(name) {
            d.artifacts(&mut out);
        }
        out
    }
}

impl fmt::Display for ProviderInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.0.name)?;
        for (i, k) in self.0.fields.keys().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k} = ...")?;
        }
        f.write_str(")")
    }
}

#[starlark_value(type = "provider_instance")]
impl<'v> StarlarkValue<'v> for ProviderInstance {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        self.0.fields.get(attribute).map(|d| d.to_value(heap))
    }

    fn dir_attr(&self) -> Vec<String> {
        self.0.fields.keys().cloned().collect()
    }
}

/// Registers this family's load-time natives: `provider()`, `DefaultInfo`,
/// `TestInfo` and `RunInfo`.
///
/// ```python
/// MyInfo = provider(fields = ["headers", "objects"])
/// ```
pub fn register(builder: &mut GlobalsBuilder) {
    natives(builder);
    builder.set("DefaultInfo", ProviderDef::default_info());
    builder.set("TestInfo", ProviderDef::test_info());
    builder.set("RunInfo", ProviderDef::run_info());
}

#[starlark_module]
fn natives(builder: &mut GlobalsBuilder) {
    fn provider<'v>(
        #[starlark(require = named, default = UnpackListOrTuple::default())]
        fields: starlark::values::list_or_tuple::UnpackListOrTuple<String>,
        #[starlark(require = named, default = "")] doc: &str,
    ) -> anyhow::Result<ProviderDef> {
        let _ = doc;
        let mut fields = fields.items;
        fields.sort();
        if let Some(w) = fields.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!(
                "Field `{}` is listed twice in `provider(fields = ...)`",
                w[0]
            );
        }
        let id = ProviderId(NEXT_PROVIDER.fetch_add(1, Ordering::Relaxed));
        Ok(ProviderDef::new(id, fields, None))
    }
}

use starlark::values::list_or_tuple::UnpackListOrTuple;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_through_the_heap() {
        let d = Data::List(vec![
            Data::Int(3),
            Data::Str("a".into()),
            Data::None,
            Data::Bool(true),
        ]);
        starlark::environment::Module::with_temp_heap(|m| {
            let v = d.to_value(m.heap());
            assert_eq!(Data::from_value(v, "x").unwrap(), d);
        });
    }
}
