//! The generator behind `ctx.actions.wit_bindgen_py`: one C file holding a
//! CPython extension module for everything a WIT world imports.
//!
//! The module calls the world's imports directly, lowering Python values
//! into the canonical ABI and lifting results back (no C bindings in
//! between), so a `list<u8>` argument is passed as a pointer into the
//! Python object. Each imported interface becomes a submodule
//! (`<module>.<interface>`, also in `sys.modules`); world-level functions
//! and types sit on the module itself. Types become Python classes
//! (records, variants with a class per case, `enum.Enum`, `enum.Flag`),
//! defined by Python source embedded in the C file and run at import;
//! resources become C types holding the handle. The shapes are described
//! in `rules/cap.star`.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::load::string_literal;
use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use wit_bindgen_core::wit_parser::abi::{AbiVariant, FlatTypes, WasmType};
use wit_bindgen_core::wit_parser::{
    Docs, Function, FunctionKind, Handle, Int, InterfaceId, Resolve, SizeAlign, Type, TypeDefKind,
    TypeId, WorldId, WorldItem, WorldKey,
};

/// What to do about a function a generated cap cannot call.
const FIX: &str = "leave it out of the world the cap imports, or write the cap's C by hand without `generate`";

/// The runtime every generated module starts with.
const RUNTIME_C: &str = include_str!("runtime.c");
/// The Python classes every generated module defines first.
const RUNTIME_PY: &str = include_str!("runtime.py");

/// One flat core-wasm value type (wasm32: pointers and lengths are i32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flat {
    I32,
    I64,
    F32,
    F64,
}

impl Flat {
    fn of(t: WasmType) -> Flat {
        match t {
            WasmType::I32 | WasmType::Pointer | WasmType::Length => Flat::I32,
            WasmType::I64 | WasmType::PointerOrI64 => Flat::I64,
            WasmType::F32 => Flat::F32,
            WasmType::F64 => Flat::F64,
        }
    }

    fn member(self) -> &'static str {
        match self {
            Flat::I32 => "i32",
            Flat::I64 => "i64",
            Flat::F32 => "f32",
            Flat::F64 => "f64",
        }
    }

    fn c_type(self) -> &'static str {
        match self {
            Flat::I32 => "int32_t",
            Flat::I64 => "int64_t",
            Flat::F32 => "float",
            Flat::F64 => "double",
        }
    }
}

/// A namespace of the generated module: the module itself (world-level
/// items) or one imported interface's submodule.
struct Scope {
    /// Attribute name on the module (empty for the module itself).
    attr: String,
    /// Full module name (`<module>.<attr>`).
    full: String,
    /// The wasm import module of its functions.
    import_module: String,
    docs: String,
    /// Python source defining its classes.
    py: String,
    uses_enum: bool,
    /// `PyMethodDef` entries of its functions.
    methods: String,
    /// The class raised for a returned `err`.
    error_class: String,
    /// Classes to fetch after the source ran, in definition order.
    classes: Vec<(TypeId, String)>,
    /// Resources defined here.
    resources: Vec<TypeId>,
}

impl Scope {
    fn new(full: String, attr: String, import_module: String, docs: String) -> Scope {
        Scope {
            attr,
            full,
            import_module,
            docs,
            py: String::new(),
            uses_enum: false,
            methods: String::new(),
            error_class: "Error".into(),
            classes: Vec::new(),
            resources: Vec::new(),
        }
    }
}

/// What each kind of per-type C function is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Fn {
    /// Python -> flat values.
    Lower,
    /// Python -> memory.
    Store,
    /// memory -> Python.
    Load,
    /// flat values -> Python.
    Lift,
    /// Free what the callee allocated inside a value in memory.
    Free,
}

struct Gen<'a> {
    resolve: &'a Resolve,
    sizes: SizeAlign,
    module: String,
    scopes: Vec<Scope>,
    /// Per-type functions requested and not yet written.
    queue: Vec<(Fn, TypeId)>,
    requested: HashSet<(Fn, TypeId)>,
    /// Forward declarations, statics and imports.
    decls: String,
    /// Per-type functions.
    types_c: String,
    /// Per-function lowering, bodies and wrappers.
    funcs_c: String,
    /// Resource method tables and constructors.
    resources_c: String,
    next_fn: usize,
    /// Each resource's method table entries and constructor docs.
    resource_methods: HashMap<TypeId, String>,
    ctor_doc: HashMap<TypeId, String>,
}

/// Generate the C source of CPython module `module` for what `world`
/// imports.
pub fn generate(resolve: &Resolve, world: WorldId, module: &str) -> Result<String, String> {
    let mut sizes = SizeAlign::default();
    sizes
        .fill(resolve)
        .map_err(|e| format!("cannot lay out the WIT types: {e:#}"))?;
    let mut g = Gen {
        resolve,
        sizes,
        module: module.to_owned(),
        scopes: Vec::new(),
        queue: Vec::new(),
        requested: HashSet::new(),
        decls: String::new(),
        types_c: String::new(),
        funcs_c: String::new(),
        resources_c: String::new(),
        next_fn: 0,
        resource_methods: HashMap::new(),
        ctor_doc: HashMap::new(),
    };
    g.run(world)?;
    Ok(g.finish())
}

/// A Python identifier for a WIT name in snake case (keywords get `_`).
fn py_snake(name: &str) -> String {
    escape_keyword(name.to_snake_case())
}

/// A Python class name for a WIT name.
fn py_class(name: &str) -> String {
    escape_keyword(name.to_upper_camel_case())
}

fn escape_keyword(s: String) -> String {
    const KEYWORDS: &[&str] = &[
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
        "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global",
        "if", "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return",
        "try", "while", "with", "yield", "match", "case", "type",
    ];
    if KEYWORDS.contains(&s.as_str()) {
        s + "_"
    } else {
        s
    }
}

/// A C string literal.
fn c_str(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n\"\n\""),
            b'?' => out.push_str("\\?"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
    out
}

fn docs(d: &Docs) -> String {
    d.contents.clone().unwrap_or_default().trim().to_owned()
}

fn int_c(i: Int) -> &'static str {
    match i {
        Int::U8 => "uint8_t",
        Int::U16 => "uint16_t",
        Int::U32 => "uint32_t",
        Int::U64 => "uint64_t",
    }
}

impl<'a> Gen<'a> {
    /// Follow type aliases.
    fn dealias(&self, ty: &Type) -> Type {
        let mut ty = *ty;
        while let Type::Id(id) = ty {
            match &self.resolve.types[id].kind {
                TypeDefKind::Type(t) => ty = *t,
                _ => break,
            }
        }
        ty
    }

    fn kind(&self, id: TypeId) -> &'a TypeDefKind {
        &self.resolve.types[id].kind
    }

    /// The WIT spelling of a type, for messages.
    fn wit_name(&self, ty: &Type) -> String {
        match ty {
            Type::Bool => "bool".into(),
            Type::U8 => "u8".into(),
            Type::U16 => "u16".into(),
            Type::U32 => "u32".into(),
            Type::U64 => "u64".into(),
            Type::S8 => "s8".into(),
            Type::S16 => "s16".into(),
            Type::S32 => "s32".into(),
            Type::S64 => "s64".into(),
            Type::F32 => "f32".into(),
            Type::F64 => "f64".into(),
            Type::Char => "char".into(),
            Type::String => "string".into(),
            Type::ErrorContext => "error-context".into(),
            Type::Id(id) => {
                let t = &self.resolve.types[*id];
                if let Some(n) = &t.name {
                    return n.clone();
                }
                match &t.kind {
                    TypeDefKind::List(e) => format!("list<{}>", self.wit_name(e)),
                    TypeDefKind::Option(e) => format!("option<{}>", self.wit_name(e)),
                    TypeDefKind::Tuple(tt) => format!(
                        "tuple<{}>",
                        tt.types.iter().map(|x| self.wit_name(x)).collect::<Vec<_>>().join(", ")
                    ),
                    TypeDefKind::Result(r) => format!(
                        "result<{}, {}>",
                        r.ok.map(|x| self.wit_name(&x)).unwrap_or_else(|| "_".into()),
                        r.err.map(|x| self.wit_name(&x)).unwrap_or_else(|| "_".into())
                    ),
                    TypeDefKind::Handle(Handle::Own(r)) => {
                        format!("own<{}>", self.wit_name(&Type::Id(*r)))
                    }
                    TypeDefKind::Handle(Handle::Borrow(r)) => {
                        format!("borrow<{}>", self.wit_name(&Type::Id(*r)))
                    }
                    TypeDefKind::Type(t) => self.wit_name(t),
                    _ => "type".into(),
                }
            }
        }
    }

    /// The flat values of a type, variant payload slots joined
    /// (wit-parser's flattening). More than a direct call passes
    /// (`MAX_FLAT_PARAMS`) comes back as that many plus one: such values
    /// only ever go through memory.
    fn flat(&self, ty: &Type) -> Vec<Flat> {
        let mut buf = [WasmType::I32; Resolve::MAX_FLAT_PARAMS];
        let mut flat = FlatTypes::new(&mut buf);
        if !self.resolve.push_flat(ty, &mut flat) {
            return vec![Flat::I32; Resolve::MAX_FLAT_PARAMS + 1];
        }
        flat.to_vec().into_iter().map(Flat::of).collect()
    }

    /// The offsets of fields of these types laid out as a record.
    fn offsets<'b>(&self, types: impl IntoIterator<Item = &'b Type>) -> Vec<usize> {
        self.sizes
            .field_offsets(types)
            .iter()
            .map(|(o, _)| o.size_wasm32())
            .collect()
    }

    /// The statement checking that `o` is an instance of record `id`.
    fn record_check(&self, id: TypeId, tyname: &str) -> String {
        format!(
            "if (k_instance(o, {}, p, {}) < 0) return -1;\n",
            self.class_var(id),
            c_str(&format!("record `{tyname}`"))
        )
    }

    fn size(&self, ty: &Type) -> usize {
        self.sizes.size(ty).size_wasm32()
    }

    fn align(&self, ty: &Type) -> usize {
        self.sizes.align(ty).align_wasm32()
    }

    fn payload_offset<'b>(&self, tag: Int, cases: impl IntoIterator<Item = Option<&'b Type>>) -> usize {
        self.sizes.payload_offset(tag, cases).size_wasm32()
    }

    /// Whether a value of `ty` in memory holds allocations to free.
    fn has_ptr(&self, ty: &Type) -> bool {
        match self.dealias(ty) {
            Type::String => true,
            Type::Id(id) => match self.kind(id) {
                TypeDefKind::List(_) => true,
                TypeDefKind::Record(r) => r.fields.iter().any(|f| self.has_ptr(&f.ty)),
                TypeDefKind::Tuple(t) => t.types.iter().any(|x| self.has_ptr(x)),
                TypeDefKind::Variant(v) => v.cases.iter().any(|c| c.ty.is_some_and(|t| self.has_ptr(&t))),
                TypeDefKind::Option(t) => self.has_ptr(t),
                TypeDefKind::Result(r) => {
                    r.ok.is_some_and(|t| self.has_ptr(&t)) || r.err.is_some_and(|t| self.has_ptr(&t))
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// Fail for types the generator does not map.
    fn check_type(&self, ty: &Type, what: &str) -> Result<(), String> {
        match self.dealias(ty) {
            Type::ErrorContext => Err(format!("{what} uses `error-context`, which generated caps do not support ({FIX})")),
            Type::Id(id) => match self.kind(id) {
                TypeDefKind::Record(r) => r.fields.iter().try_for_each(|f| self.check_type(&f.ty, what)),
                TypeDefKind::Tuple(t) => t.types.iter().try_for_each(|x| self.check_type(x, what)),
                TypeDefKind::Variant(v) => v
                    .cases
                    .iter()
                    .filter_map(|c| c.ty.as_ref())
                    .try_for_each(|x| self.check_type(x, what)),
                TypeDefKind::Option(t) | TypeDefKind::List(t) => self.check_type(t, what),
                TypeDefKind::Result(r) => {
                    r.ok.iter().chain(r.err.iter()).try_for_each(|x| self.check_type(x, what))
                }
                TypeDefKind::Enum(_)
                | TypeDefKind::Flags(_)
                | TypeDefKind::Handle(_)
                | TypeDefKind::Resource => Ok(()),
                TypeDefKind::Future(_) => Err(format!("{what} uses a `future`, which generated caps do not support ({FIX})")),
                TypeDefKind::Stream(_) => Err(format!("{what} uses a `stream`, which generated caps do not support ({FIX})")),
                TypeDefKind::Map(..) => Err(format!("{what} uses a `map`, which generated caps do not support ({FIX})")),
                TypeDefKind::FixedLengthList(..) => {
                    Err(format!("{what} uses a fixed-length list, which generated caps do not support ({FIX})"))
                }
                _ => Err(format!("{what} uses a type generated caps do not support")),
            },
            _ => Ok(()),
        }
    }

    /// The C function name of `(kind, id)`, queued for writing.
    fn call(&mut self, f: Fn, id: TypeId) -> String {
        if self.requested.insert((f, id)) {
            self.queue.push((f, id));
        }
        let p = match f {
            Fn::Lower => "kl",
            Fn::Store => "ks",
            Fn::Load => "kd",
            Fn::Lift => "kf",
            Fn::Free => "kx",
        };
        format!("{p}_{}", id.index())
    }

    /// The Python class variable of a named type.
    fn class_var(&self, id: TypeId) -> String {
        format!("kc_{}", id.index())
    }

    fn resource_of(&self, id: TypeId) -> TypeId {
        let mut id = id;
        while let TypeDefKind::Type(Type::Id(next)) = self.kind(id) {
            id = *next;
        }
        id
    }

    // ---- Python -> flat ------------------------------------------------

    /// Statements lowering Python object `o` of `ty` into the flat slots
    /// at `f` (`kflat *`), in a function returning -1 on failure.
    fn lower(&mut self, ty: &Type, o: &str, f: &str, p: &str) -> String {
        match self.dealias(ty) {
            Type::Bool => format!("if (k_bool({o}, {p}, &({f})[0].i32) < 0) return -1;\n"),
            Type::Char => format!("if (k_char({o}, {p}, &({f})[0].i32) < 0) return -1;\n"),
            Type::String => format!(
                "if (k_string({o}, {p}, &({f})[0].i32, &({f})[1].i32) < 0) return -1;\n"
            ),
            Type::F32 => format!("if (k_f32({o}, {p}, &({f})[0].f32) < 0) return -1;\n"),
            Type::F64 => format!("if (k_f64({o}, {p}, &({f})[0].f64) < 0) return -1;\n"),
            Type::U64 => format!(
                "{{ uint64_t t; if (k_u64({o}, {p}, &t) < 0) return -1; ({f})[0].i64 = (int64_t)t; }}\n"
            ),
            Type::S64 => format!(
                "{{ long long t; if (k_int({o}, {p}, \"s64\", LLONG_MIN, LLONG_MAX, &t) < 0) return -1; ({f})[0].i64 = (int64_t)t; }}\n"
            ),
            t @ (Type::U8 | Type::U16 | Type::U32 | Type::S8 | Type::S16 | Type::S32) => {
                let (name, lo, hi, cast) = int_range(t);
                format!(
                    "{{ long long t; if (k_int({o}, {p}, \"{name}\", {lo}, {hi}, &t) < 0) return -1; ({f})[0].i32 = (int32_t)({cast})t; }}\n"
                )
            }
            Type::ErrorContext => "return -1;\n".into(),
            Type::Id(id) => {
                let func = self.call(Fn::Lower, id);
                format!("if ({func}({o}, {f}, c, {p}) < 0) return -1;\n")
            }
        }
    }

    /// Statements storing Python object `o` of `ty` at `m` (`uint8_t *`).
    fn store(&mut self, ty: &Type, o: &str, m: &str, p: &str) -> String {
        match self.dealias(ty) {
            Type::Bool => format!(
                "{{ int32_t t; if (k_bool({o}, {p}, &t) < 0) return -1; *(uint8_t *)({m}) = (uint8_t)t; }}\n"
            ),
            Type::Char => format!(
                "{{ int32_t t; if (k_char({o}, {p}, &t) < 0) return -1; *(int32_t *)({m}) = t; }}\n"
            ),
            Type::String => format!(
                "{{ int32_t sp, sl; if (k_string({o}, {p}, &sp, &sl) < 0) return -1; ((int32_t *)({m}))[0] = sp; ((int32_t *)({m}))[1] = sl; }}\n"
            ),
            Type::F32 => format!(
                "{{ float t; if (k_f32({o}, {p}, &t) < 0) return -1; memcpy({m}, &t, 4); }}\n"
            ),
            Type::F64 => format!(
                "{{ double t; if (k_f64({o}, {p}, &t) < 0) return -1; memcpy({m}, &t, 8); }}\n"
            ),
            Type::U64 => format!(
                "{{ uint64_t t; if (k_u64({o}, {p}, &t) < 0) return -1; memcpy({m}, &t, 8); }}\n"
            ),
            Type::S64 => format!(
                "{{ long long t; if (k_int({o}, {p}, \"s64\", LLONG_MIN, LLONG_MAX, &t) < 0) return -1; int64_t w = (int64_t)t; memcpy({m}, &w, 8); }}\n"
            ),
            t @ (Type::U8 | Type::U16 | Type::U32 | Type::S8 | Type::S16 | Type::S32) => {
                let (name, lo, hi, cast) = int_range(t);
                format!(
                    "{{ long long t; if (k_int({o}, {p}, \"{name}\", {lo}, {hi}, &t) < 0) return -1; {cast} w = ({cast})t; memcpy({m}, &w, sizeof w); }}\n"
                )
            }
            Type::ErrorContext => "return -1;\n".into(),
            Type::Id(id) => {
                let func = self.call(Fn::Store, id);
                format!("if ({func}({o}, {m}, c, {p}) < 0) return -1;\n")
            }
        }
    }

    /// An expression: a new Python object for the `ty` in memory at `m`.
    fn load(&mut self, ty: &Type, m: &str) -> String {
        match self.dealias(ty) {
            Type::String => format!(
                "PyUnicode_DecodeUTF8((const char *)(intptr_t)((const int32_t *)({m}))[0], ((const int32_t *)({m}))[1], NULL)"
            ),
            Type::Id(id) => {
                let func = self.call(Fn::Load, id);
                format!("{func}({m})")
            }
            t => scalar_to_py(t, &|ct| format!("*(const {ct} *)({m})")),
        }
    }

    /// An expression: a new Python object for the `ty` in flat slots `f`.
    fn lift(&mut self, ty: &Type, f: &str) -> String {
        match self.dealias(ty) {
            Type::Bool => format!("PyBool_FromLong(({f})[0].i32 != 0)"),
            Type::String => format!(
                "PyUnicode_DecodeUTF8((const char *)(intptr_t)({f})[0].i32, ({f})[1].i32, NULL)"
            ),
            Type::Id(id) => {
                let func = self.call(Fn::Lift, id);
                format!("{func}({f})")
            }
            t => {
                let member = self.flat(&t)[0].member();
                scalar_to_py(t, &|ct| format!("({ct})({f})[0].{member}"))
            }
        }
    }

    /// Statements freeing what the callee allocated in the `ty` at `m`.
    fn free(&mut self, ty: &Type, m: &str) -> String {
        if !self.has_ptr(ty) {
            return String::new();
        }
        match self.dealias(ty) {
            Type::String => format!(
                "if (((int32_t *)({m}))[1]) free((void *)(intptr_t)((int32_t *)({m}))[0]);\n"
            ),
            Type::Id(id) => {
                let func = self.call(Fn::Free, id);
                format!("{func}({m});\n")
            }
            _ => String::new(),
        }
    }

    /// Write every queued per-type function.
    fn drain(&mut self) {
        while let Some((f, id)) = self.queue.pop() {
            let body = match f {
                Fn::Lower => self.gen_lower(id),
                Fn::Store => self.gen_store(id),
                Fn::Load => self.gen_load(id),
                Fn::Lift => self.gen_lift(id),
                Fn::Free => self.gen_free(id),
            };
            let n = id.index();
            let sig = match f {
                Fn::Lower => format!("static int kl_{n}(PyObject *o, kflat *f, kcall *c, const kpath *p)"),
                Fn::Store => format!("static int ks_{n}(PyObject *o, uint8_t *m, kcall *c, const kpath *p)"),
                Fn::Load => format!("static PyObject *kd_{n}(const uint8_t *m)"),
                Fn::Lift => format!("static PyObject *kf_{n}(const kflat *f)"),
                Fn::Free => format!("static void kx_{n}(uint8_t *m)"),
            };
            let _ = writeln!(self.decls, "{sig};");
            let _ = write!(self.types_c, "\n{sig} {{\n{body}}}\n");
        }
    }

    fn gen_lower(&mut self, id: TypeId) -> String {
        let mut s = String::new();
        let tyname = self.wit_name(&Type::Id(id));
        match self.kind(id).clone() {
            TypeDefKind::Record(r) => {
                s.push_str(&self.record_check(id, &tyname));
                let mut at = 0;
                for field in &r.fields {
                    let v = py_snake(&field.name);
                    let inner = self.lower(&field.ty, "v", &format!("f + {at}"), "&q");
                    let _ = write!(
                        s,
                        "{{ PyObject *v = k_attr(o, {}, c); if (v == NULL) return -1; kpath q = {{{}, -1, p}};\n{inner}}}\n",
                        c_str(&v),
                        c_str(&format!("field `{}`", field.name))
                    );
                    at += self.flat(&field.ty).len();
                }
            }
            TypeDefKind::Tuple(t) => {
                s.push_str(&tuple_items(t.types.len(), &tyname));
                let mut at = 0;
                for (i, ty) in t.types.iter().enumerate() {
                    let inner = self.lower(ty, "v", &format!("f + {at}"), "&q");
                    let _ = write!(
                        s,
                        "{{ PyObject *v = PySequence_Fast_GET_ITEM(seq, {i}); kpath q = {{\"item\", {i}, p}};\n{inner}}}\n"
                    );
                    at += self.flat(ty).len();
                }
            }
            TypeDefKind::Flags(fl) => {
                let cls = self.class_var(id);
                let _ = writeln!(
                    s,
                    "if (k_instance(o, {cls}, p, {}) < 0) return -1;\nPyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\nuint64_t bits; if (k_u64(v, p, &bits) < 0) return -1;",
                    c_str(&format!("flags `{tyname}`"))
                );
                for w in 0..fl.repr().count() {
                    let _ = writeln!(s, "f[{w}].i32 = (int32_t)(uint32_t)(bits >> {});", 32 * w);
                }
            }
            TypeDefKind::Enum(e) => {
                let cls = self.class_var(id);
                let _ = writeln!(
                    s,
                    "if (k_instance(o, {cls}, p, {}) < 0) return -1;\nPyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\nlong long t; if (k_int(v, p, \"enum\", 0, {}, &t) < 0) return -1;\nf[0].i32 = (int32_t)t;",
                    c_str(&format!("enum `{tyname}`")),
                    e.cases.len().saturating_sub(1)
                );
            }
            TypeDefKind::Variant(v) => {
                let _ = writeln!(
                    s,
                    "int i = k_case(o, kcases_{}, {}, p, {}); if (i < 0) return -1;\nf[0].i32 = i;\nswitch (i) {{",
                    id.index(),
                    v.cases.len(),
                    c_str(&format!("variant `{tyname}`"))
                );
                for (i, case) in v.cases.iter().enumerate() {
                    let _ = write!(s, "case {i}: ");
                    if let Some(ty) = &case.ty {
                        let inner = self.lower(ty, "v", "f + 1", "&q");
                        let _ = write!(
                            s,
                            "{{ PyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1; kpath q = {{{}, -1, p}};\n{inner}}}\n",
                            c_str(&format!("case `{}`", case.name))
                        );
                    }
                    s.push_str("break;\n");
                }
                s.push_str("}\n");
            }
            TypeDefKind::Option(t) => {
                let nested = self.is_option(&t);
                let unwrap = if nested {
                    "if (k_instance(o, k_Some, p, \"Some(...) (a nested option)\") < 0) return -1;\nPyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\n"
                } else {
                    "PyObject *v = o;\n"
                };
                let inner = self.lower(&t, "v", "f + 1", "p");
                let _ = write!(
                    s,
                    "if (o == Py_None) {{ f[0].i32 = 0; return 0; }}\nf[0].i32 = 1;\n{unwrap}{inner}"
                );
            }
            TypeDefKind::Result(r) => {
                let _ = writeln!(
                    s,
                    "int i; int ok = PyObject_IsInstance(o, k_Ok); if (ok < 0) return -1;\nif (ok) i = 0; else {{ int err = PyObject_IsInstance(o, k_Err); if (err < 0) return -1; if (!err) {{ k_err(PyExc_TypeError, p, \"expected Ok(...) or Err(...) for %s, got %s\", {}, Py_TYPE(o)->tp_name); return -1; }} i = 1; }}\nf[0].i32 = i;",
                    c_str(&tyname)
                );
                for (i, ty) in [r.ok, r.err].iter().enumerate() {
                    if let Some(ty) = ty {
                        let inner = self.lower(ty, "v", "f + 1", "p");
                        let _ = write!(
                            s,
                            "if (i == {i}) {{ PyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\n{inner}}}\n"
                        );
                    }
                }
            }
            TypeDefKind::List(t) => {
                if self.dealias(&t) == Type::U8 {
                    s.push_str("if (k_bytes(o, p, c, &f[0].i32, &f[1].i32) < 0) return -1;\n");
                } else {
                    let size = self.size(&t);
                    let inner = self.store(&t, "v", &format!("m + (size_t)i * {size}"), "&q");
                    let _ = write!(
                        s,
                        "PyObject *seq = k_seq(o, p, c, {}); if (seq == NULL) return -1;\nPy_ssize_t n = PySequence_Fast_GET_SIZE(seq);\nuint8_t *m = k_alloc(c, (size_t)n * {size}); if (m == NULL) return -1;\nfor (Py_ssize_t i = 0; i < n; i++) {{ PyObject *v = PySequence_Fast_GET_ITEM(seq, i); kpath q = {{\"element\", i, p}};\n{inner}}}\nf[0].i32 = (int32_t)(intptr_t)m; f[1].i32 = (int32_t)n;\n",
                        c_str(&tyname)
                    );
                }
            }
            TypeDefKind::Handle(h) => {
                let (r, mv) = match h {
                    Handle::Own(r) => (r, 1),
                    Handle::Borrow(r) => (r, 0),
                };
                let r = self.resource_of(r);
                let _ = writeln!(s, "if (k_handle(o, kt_{}, p, c, {mv}, &f[0].i32) < 0) return -1;", r.index());
            }
            _ => s.push_str("(void)o; (void)f; (void)c; (void)p; return -1;\n"),
        }
        s.push_str("return 0;\n");
        s
    }

    fn gen_store(&mut self, id: TypeId) -> String {
        let mut s = String::new();
        let tyname = self.wit_name(&Type::Id(id));
        match self.kind(id).clone() {
            TypeDefKind::Record(r) => {
                s.push_str(&self.record_check(id, &tyname));
                let offsets = self.offsets(r.fields.iter().map(|f| &f.ty));
                for (field, off) in r.fields.iter().zip(offsets) {
                    let inner = self.store(&field.ty, "v", &format!("m + {off}"), "&q");
                    let _ = write!(
                        s,
                        "{{ PyObject *v = k_attr(o, {}, c); if (v == NULL) return -1; kpath q = {{{}, -1, p}};\n{inner}}}\n",
                        c_str(&py_snake(&field.name)),
                        c_str(&format!("field `{}`", field.name))
                    );
                }
            }
            TypeDefKind::Tuple(t) => {
                s.push_str(&tuple_items(t.types.len(), &tyname));
                let offsets = self.offsets(t.types.iter());
                for (i, (ty, off)) in t.types.iter().zip(offsets).enumerate() {
                    let inner = self.store(ty, "v", &format!("m + {off}"), "&q");
                    let _ = write!(
                        s,
                        "{{ PyObject *v = PySequence_Fast_GET_ITEM(seq, {i}); kpath q = {{\"item\", {i}, p}};\n{inner}}}\n"
                    );
                }
            }
            TypeDefKind::Flags(_) | TypeDefKind::Enum(_) | TypeDefKind::Handle(_) => {
                // Lower to flat slots, then write them as the memory form.
                let n = self.flat(&Type::Id(id)).len().max(1);
                let lower = self.call(Fn::Lower, id);
                let _ = writeln!(s, "kflat f[{n}]; memset(f, 0, sizeof f);\nif ({lower}(o, f, c, p) < 0) return -1;");
                s.push_str(&self.flat_to_mem(id));
            }
            TypeDefKind::Variant(v) => {
                let tag = v.tag();
                let off = self.payload_offset(tag, v.cases.iter().map(|c| c.ty.as_ref()));
                let _ = writeln!(
                    s,
                    "int i = k_case(o, kcases_{}, {}, p, {}); if (i < 0) return -1;\n{{ {} t = ({})i; memcpy(m, &t, sizeof t); }}\nswitch (i) {{",
                    id.index(),
                    v.cases.len(),
                    c_str(&format!("variant `{tyname}`")),
                    int_c(tag),
                    int_c(tag)
                );
                for (i, case) in v.cases.iter().enumerate() {
                    let _ = write!(s, "case {i}: ");
                    if let Some(ty) = &case.ty {
                        let inner = self.store(ty, "v", &format!("m + {off}"), "&q");
                        let _ = write!(
                            s,
                            "{{ PyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1; kpath q = {{{}, -1, p}};\n{inner}}}\n",
                            c_str(&format!("case `{}`", case.name))
                        );
                    }
                    s.push_str("break;\n");
                }
                s.push_str("}\n");
            }
            TypeDefKind::Option(t) => {
                let off = self.payload_offset(Int::U8, [None, Some(&t)]);
                let nested = self.is_option(&t);
                let unwrap = if nested {
                    "if (k_instance(o, k_Some, p, \"Some(...) (a nested option)\") < 0) return -1;\nPyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\n"
                } else {
                    "PyObject *v = o;\n"
                };
                let inner = self.store(&t, "v", &format!("m + {off}"), "p");
                let _ = write!(
                    s,
                    "if (o == Py_None) {{ m[0] = 0; return 0; }}\nm[0] = 1;\n{unwrap}{inner}"
                );
            }
            TypeDefKind::Result(r) => {
                let off = self.payload_offset(Int::U8, [r.ok.as_ref(), r.err.as_ref()]);
                let _ = writeln!(
                    s,
                    "int i; int ok = PyObject_IsInstance(o, k_Ok); if (ok < 0) return -1;\nif (ok) i = 0; else {{ int err = PyObject_IsInstance(o, k_Err); if (err < 0) return -1; if (!err) {{ k_err(PyExc_TypeError, p, \"expected Ok(...) or Err(...) for %s, got %s\", {}, Py_TYPE(o)->tp_name); return -1; }} i = 1; }}\nm[0] = (uint8_t)i;",
                    c_str(&tyname)
                );
                for (i, ty) in [r.ok, r.err].iter().enumerate() {
                    if let Some(ty) = ty {
                        let inner = self.store(ty, "v", &format!("m + {off}"), "p");
                        let _ = write!(
                            s,
                            "if (i == {i}) {{ PyObject *v = k_attr(o, \"value\", c); if (v == NULL) return -1;\n{inner}}}\n"
                        );
                    }
                }
            }
            TypeDefKind::List(_) => {
                let lower = self.call(Fn::Lower, id);
                let _ = writeln!(
                    s,
                    "kflat f[2]; memset(f, 0, sizeof f);\nif ({lower}(o, f, c, p) < 0) return -1;\n((int32_t *)m)[0] = f[0].i32; ((int32_t *)m)[1] = f[1].i32;"
                );
            }
            _ => s.push_str("(void)o; (void)m; (void)c; (void)p; return -1;\n"),
        }
        s.push_str("return 0;\n");
        s
    }

    /// Statements writing the flat slots `f` of a flags, enum or handle
    /// value as its memory form at `m`.
    fn flat_to_mem(&self, id: TypeId) -> String {
        match self.kind(id) {
            TypeDefKind::Flags(fl) => match fl.flags.len() {
                0 => String::new(),
                1..=8 => "m[0] = (uint8_t)f[0].i32;\n".into(),
                9..=16 => "{ uint16_t t = (uint16_t)f[0].i32; memcpy(m, &t, 2); }\n".into(),
                _ => {
                    let mut s = String::new();
                    for w in 0..fl.repr().count() {
                        let _ = writeln!(s, "memcpy(m + {}, &f[{w}].i32, 4);", 4 * w);
                    }
                    s
                }
            },
            TypeDefKind::Enum(e) => {
                let tag = e.tag();
                format!("{{ {} t = ({})f[0].i32; memcpy(m, &t, sizeof t); }}\n", int_c(tag), int_c(tag))
            }
            _ => "memcpy(m, &f[0].i32, 4);\n".into(),
        }
    }

    fn is_option(&self, ty: &Type) -> bool {
        matches!(self.dealias(ty), Type::Id(id) if matches!(self.kind(id), TypeDefKind::Option(_)))
    }

    fn gen_load(&mut self, id: TypeId) -> String {
        let mut s = String::new();
        match self.kind(id).clone() {
            TypeDefKind::Record(r) => {
                let cls = self.class_var(id);
                let n = r.fields.len();
                let offsets = self.offsets(r.fields.iter().map(|f| &f.ty));
                let _ = writeln!(s, "PyObject *a[{}] = {{0}}; PyObject *r = NULL;", n.max(1));
                for (i, (field, off)) in r.fields.iter().zip(offsets).enumerate() {
                    let e = self.load(&field.ty, &format!("m + {off}"));
                    let _ = writeln!(s, "a[{i}] = {e}; if (a[{i}] == NULL) goto done;");
                }
                let _ = writeln!(
                    s,
                    "r = PyObject_Vectorcall({cls}, a, {n}, NULL);\ndone:\nfor (int i = 0; i < {}; i++) Py_XDECREF(a[i]);\n(void)m;\nreturn r;",
                    n.max(1)
                );
            }
            TypeDefKind::Tuple(t) => {
                let n = t.types.len();
                let offsets = self.offsets(t.types.iter());
                let _ = writeln!(s, "PyObject *r = PyTuple_New({n}); if (r == NULL) return NULL;");
                for (i, (ty, off)) in t.types.iter().zip(offsets).enumerate() {
                    let e = self.load(ty, &format!("m + {off}"));
                    let _ = writeln!(s, "{{ PyObject *v = {e}; if (v == NULL) {{ Py_DECREF(r); return NULL; }} PyTuple_SET_ITEM(r, {i}, v); }}");
                }
                s.push_str("(void)m;\nreturn r;\n");
            }
            TypeDefKind::Flags(fl) => {
                let cls = self.class_var(id);
                let bits = match fl.flags.len() {
                    0 => "0".to_owned(),
                    1..=8 => "m[0]".to_owned(),
                    9..=16 => "(uint64_t)(m[0] | (m[1] << 8))".to_owned(),
                    _ => {
                        let mut terms = Vec::new();
                        for w in 0..fl.repr().count() {
                            terms.push(format!("((uint64_t)(*(const uint32_t *)(m + {})) << {})", 4 * w, 32 * w));
                        }
                        terms.join(" | ")
                    }
                };
                let _ = writeln!(s, "(void)m;\nreturn PyObject_CallFunction({cls}, \"K\", (unsigned long long)({bits}));");
            }
            TypeDefKind::Enum(e) => {
                let tag = e.tag();
                let _ = writeln!(
                    s,
                    "{} t; memcpy(&t, m, sizeof t);\nif ((size_t)t >= {}) {{ PyErr_SetString(PyExc_RuntimeError, \"enum discriminant out of range\"); return NULL; }}\nPy_INCREF(kmembers_{}[t]); return kmembers_{}[t];",
                    int_c(tag),
                    e.cases.len(),
                    id.index(),
                    id.index()
                );
            }
            TypeDefKind::Variant(v) => {
                let tag = v.tag();
                let off = self.payload_offset(tag, v.cases.iter().map(|c| c.ty.as_ref()));
                let _ = writeln!(s, "{} t; memcpy(&t, m, sizeof t);\nswitch (t) {{", int_c(tag));
                for (i, case) in v.cases.iter().enumerate() {
                    match &case.ty {
                        Some(ty) => {
                            let e = self.load(ty, &format!("m + {off}"));
                            let _ = writeln!(s, "case {i}: return k_call1(kcases_{}[{i}], {e});", id.index());
                        }
                        None => {
                            let _ = writeln!(s, "case {i}: return PyObject_CallNoArgs(kcases_{}[{i}]);", id.index());
                        }
                    }
                }
                s.push_str("}\nPyErr_SetString(PyExc_RuntimeError, \"variant discriminant out of range\");\nreturn NULL;\n");
            }
            TypeDefKind::Option(t) => {
                let off = self.payload_offset(Int::U8, [None, Some(&t)]);
                let e = self.load(&t, &format!("m + {off}"));
                if self.is_option(&t) {
                    let _ = writeln!(s, "if (m[0] == 0) Py_RETURN_NONE;\nreturn k_call1(k_Some, {e});");
                } else {
                    let _ = writeln!(s, "if (m[0] == 0) Py_RETURN_NONE;\nreturn {e};");
                }
            }
            TypeDefKind::Result(r) => {
                let off = self.payload_offset(Int::U8, [r.ok.as_ref(), r.err.as_ref()]);
                let ok = match &r.ok {
                    Some(t) => self.load(t, &format!("m + {off}")),
                    None => "Py_NewRef(Py_None)".into(),
                };
                let err = match &r.err {
                    Some(t) => self.load(t, &format!("m + {off}")),
                    None => "Py_NewRef(Py_None)".into(),
                };
                let _ = writeln!(s, "if (m[0] == 0) return k_call1(k_Ok, {ok});\nreturn k_call1(k_Err, {err});");
            }
            TypeDefKind::List(t) => {
                if self.dealias(&t) == Type::U8 {
                    s.push_str("return PyBytes_FromStringAndSize((const char *)(intptr_t)((const int32_t *)m)[0], ((const int32_t *)m)[1]);\n");
                } else {
                    let size = self.size(&t);
                    let e = self.load(&t, &format!("base + (size_t)i * {size}"));
                    let _ = writeln!(
                        s,
                        "const uint8_t *base = (const uint8_t *)(intptr_t)((const int32_t *)m)[0]; int32_t n = ((const int32_t *)m)[1];\nPyObject *r = PyList_New(n); if (r == NULL) return NULL;\nfor (int32_t i = 0; i < n; i++) {{ PyObject *v = {e}; if (v == NULL) {{ Py_DECREF(r); return NULL; }} PyList_SET_ITEM(r, i, v); }}\nreturn r;"
                    );
                }
            }
            TypeDefKind::Handle(h) => {
                let r = match h {
                    Handle::Own(r) | Handle::Borrow(r) => self.resource_of(r),
                };
                let _ = writeln!(s, "return k_wrap(kt_{0}, *(const int32_t *)m, kdrop_{0});", r.index());
            }
            _ => s.push_str("(void)m;\nreturn NULL;\n"),
        }
        s
    }

    fn gen_lift(&mut self, id: TypeId) -> String {
        // Values with one flat slot (the only ones lifted from a direct
        // result) are written to memory form and loaded; others are never
        // lifted from slots.
        let mut s = String::new();
        let size = self.size(&Type::Id(id)).max(8);
        let load = self.load(&Type::Id(id), "m");
        match self.kind(id) {
            TypeDefKind::Flags(_) | TypeDefKind::Enum(_) | TypeDefKind::Handle(_) => {
                let _ = writeln!(s, "uint8_t m[{size}] __attribute__((aligned(8))); memset(m, 0, sizeof m);");
                s.push_str(&self.flat_to_mem(id));
                let _ = writeln!(s, "return {load};");
            }
            TypeDefKind::Variant(v) if v.cases.iter().all(|c| c.ty.is_none()) => {
                let tag = v.tag();
                let _ = writeln!(
                    s,
                    "uint8_t m[{size}] __attribute__((aligned(8))); memset(m, 0, sizeof m);\n{{ {} t = ({})f[0].i32; memcpy(m, &t, sizeof t); }}\nreturn {load};",
                    int_c(tag),
                    int_c(tag)
                );
            }
            TypeDefKind::Result(r) if r.ok.is_none() && r.err.is_none() => {
                let _ = writeln!(s, "uint8_t m[{size}] __attribute__((aligned(8))); memset(m, 0, sizeof m);\nm[0] = (uint8_t)f[0].i32;\nreturn {load};");
            }
            TypeDefKind::Record(r) if r.fields.len() == 1 => {
                let inner = self.lift(&r.fields[0].ty, "f");
                let cls = self.class_var(id);
                let _ = writeln!(s, "PyObject *v = {inner}; if (v == NULL) return NULL;\nPyObject *r = PyObject_CallOneArg({cls}, v); Py_DECREF(v); return r;");
            }
            TypeDefKind::Tuple(t) if t.types.len() == 1 => {
                let inner = self.lift(&t.types[0], "f");
                let _ = writeln!(s, "PyObject *v = {inner}; if (v == NULL) return NULL;\nPyObject *r = PyTuple_Pack(1, v); Py_DECREF(v); return r;");
            }
            _ => {
                let _ = writeln!(s, "(void)f;\nPyErr_SetString(PyExc_RuntimeError, \"unsupported direct result\");\nreturn NULL;");
            }
        }
        s
    }

    fn gen_free(&mut self, id: TypeId) -> String {
        let mut s = String::new();
        match self.kind(id).clone() {
            TypeDefKind::Record(r) => {
                let offsets = self.offsets(r.fields.iter().map(|f| &f.ty));
                for (field, off) in r.fields.iter().zip(offsets) {
                    s.push_str(&self.free(&field.ty, &format!("m + {off}")));
                }
            }
            TypeDefKind::Tuple(t) => {
                let offsets = self.offsets(t.types.iter());
                for (ty, off) in t.types.iter().zip(offsets) {
                    s.push_str(&self.free(ty, &format!("m + {off}")));
                }
            }
            TypeDefKind::Variant(v) => {
                let tag = v.tag();
                let off = self.payload_offset(tag, v.cases.iter().map(|c| c.ty.as_ref()));
                let _ = writeln!(s, "{} t; memcpy(&t, m, sizeof t);\nswitch (t) {{", int_c(tag));
                for (i, case) in v.cases.iter().enumerate() {
                    if let Some(ty) = &case.ty {
                        let f = self.free(ty, &format!("m + {off}"));
                        let _ = writeln!(s, "case {i}: {{ {f} }} break;");
                    }
                }
                s.push_str("default: break;\n}\n");
            }
            TypeDefKind::Option(t) => {
                let off = self.payload_offset(Int::U8, [None, Some(&t)]);
                let f = self.free(&t, &format!("m + {off}"));
                let _ = writeln!(s, "if (m[0] == 1) {{ {f} }}");
            }
            TypeDefKind::Result(r) => {
                let off = self.payload_offset(Int::U8, [r.ok.as_ref(), r.err.as_ref()]);
                if let Some(t) = &r.ok {
                    let f = self.free(t, &format!("m + {off}"));
                    let _ = writeln!(s, "if (m[0] == 0) {{ {f} }}");
                }
                if let Some(t) = &r.err {
                    let f = self.free(t, &format!("m + {off}"));
                    let _ = writeln!(s, "if (m[0] == 1) {{ {f} }}");
                }
            }
            TypeDefKind::List(t) => {
                let size = self.size(&t);
                let f = self.free(&t, &format!("base + (size_t)i * {size}"));
                let _ = writeln!(
                    s,
                    "uint8_t *base = (uint8_t *)(intptr_t)((int32_t *)m)[0]; int32_t n = ((int32_t *)m)[1];"
                );
                if !f.is_empty() {
                    let _ = writeln!(s, "for (int32_t i = 0; i < n; i++) {{ {f} }}");
                }
                s.push_str("if (n) free(base);\n");
            }
            _ => {}
        }
        s.push_str("(void)m;\n");
        s
    }

    // ---- scopes, classes, functions ------------------------------------

    fn run(&mut self, world_id: WorldId) -> Result<(), String> {
        let world = &self.resolve.worlds[world_id];
        // The module itself: world-level functions and types.
        self.scopes.push(Scope::new(
            self.module.clone(),
            String::new(),
            "$root".into(),
            docs(&world.docs),
        ));
        let imports: Vec<(WorldKey, WorldItem)> =
            world.imports.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // One submodule per imported interface, named after it (with its
        // package when two share a name).
        let iface_name = |key: &WorldKey, id: InterfaceId| match key {
            WorldKey::Name(n) => n.clone(),
            WorldKey::Interface(_) => self.resolve.interfaces[id].name.clone().unwrap_or_default(),
        };
        let mut uses: HashMap<String, usize> = HashMap::new();
        for (key, item) in &imports {
            if let WorldItem::Interface { id, .. } = item {
                *uses.entry(py_snake(&iface_name(key, *id))).or_default() += 1;
            }
        }
        let mut iface_scope: HashMap<InterfaceId, usize> = HashMap::new();
        let mut new_scopes = Vec::new();
        for (key, item) in &imports {
            let WorldItem::Interface { id, .. } = item else {
                continue;
            };
            let iface = &self.resolve.interfaces[*id];
            let name = iface_name(key, *id);
            let mut attr = py_snake(&name);
            if uses[&attr] > 1
                && let Some(pkg) = iface.package
            {
                let pn = &self.resolve.packages[pkg].name;
                attr = py_snake(&format!("{}-{}-{}", pn.namespace, pn.name, name));
            }
            iface_scope.insert(*id, self.scopes.len() + new_scopes.len());
            new_scopes.push(Scope::new(
                format!("{}.{attr}", self.module),
                attr,
                self.resolve.name_world_key(key),
                docs(&iface.docs),
            ));
        }
        self.scopes.extend(new_scopes);

        // Classes: every named type of each scope. A type named `error`
        // takes the exception's name, which becomes `Error_`.
        let mut type_ids: Vec<(usize, TypeId)> = Vec::new();
        for (_, item) in &imports {
            match item {
                WorldItem::Interface { id, .. } => {
                    let s = iface_scope[id];
                    type_ids.extend(self.resolve.interfaces[*id].types.values().map(|t| (s, *t)));
                }
                WorldItem::Type { id, .. } => type_ids.push((0, *id)),
                WorldItem::Function(_) => {}
            }
        }
        for (s, id) in &type_ids {
            if self.resolve.types[*id].name.as_deref().map(py_class).as_deref() == Some("Error") {
                self.scopes[*s].error_class = "Error_".into();
            }
        }
        for (s, id) in type_ids {
            self.define_class(s, id)?;
        }

        // Functions; those of `wasi:` interfaces that use what generated
        // caps do not support are left out instead of failing the build.
        for (_, item) in &imports {
            match item {
                WorldItem::Interface { id, .. } => {
                    let s = iface_scope[id];
                    let wasi = self.scopes[s].import_module.starts_with("wasi:");
                    for func in self.resolve.interfaces[*id].functions.values() {
                        match self.function(s, func) {
                            Ok(()) => {}
                            Err(_) if wasi => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                WorldItem::Function(func) => self.function(0, func)?,
                WorldItem::Type { .. } => {}
            }
        }
        self.drain();
        Ok(())
    }

    /// The Python class of named type `id` in scope `s`.
    fn define_class(&mut self, s: usize, id: TypeId) -> Result<(), String> {
        let t = &self.resolve.types[id];
        let Some(cls) = t.name.as_deref().map(py_class) else {
            return Ok(());
        };
        let wit = t.name.clone().unwrap_or_default();
        let doc = docs(&t.docs);
        let doc_line = |kind: &str| {
            if doc.is_empty() {
                string_literal(&format!("WIT {kind} `{wit}`."))
            } else {
                string_literal(&doc)
            }
        };
        let mut py = String::new();
        let var = self.class_var(id);
        match t.kind.clone() {
            TypeDefKind::Record(r) => {
                let fields: Vec<String> = r.fields.iter().map(|f| py_snake(&f.name)).collect();
                let slots: String = fields.iter().map(|f| format!("{}, ", string_literal(f))).collect();
                let _ = writeln!(py, "class {cls}(_Record):\n    {}\n    __slots__ = ({slots})\n    __match_args__ = ({slots})\n", doc_line("record"));
                let _ = writeln!(py, "    def __init__(self{}):", fields.iter().map(|f| format!(", {f}")).collect::<String>());
                if fields.is_empty() {
                    py.push_str("        pass\n");
                }
                for f in &fields {
                    let _ = writeln!(py, "        self.{f} = {f}");
                }
                self.scopes[s].classes.push((id, cls.clone()));
            }
            TypeDefKind::Variant(v) => {
                let _ = writeln!(py, "class {cls}(_Variant):\n    {}\n    __slots__ = ()\n", doc_line("variant"));
                let mut cases = Vec::new();
                for (i, case) in v.cases.iter().enumerate() {
                    let cn = py_class(&case.name);
                    let cdoc = docs(&case.docs);
                    let cdoc = if cdoc.is_empty() { format!("Case `{}` of `{wit}`.", case.name) } else { cdoc };
                    let _ = writeln!(
                        py,
                        "class _c({cls}):\n    {}\n    __slots__ = ()\n    tag = {}\n    index = {i}\n    has_payload = {}\n_c.__name__ = {}\n_c.__qualname__ = {}\n{cls}.{cn} = _c\n",
                        string_literal(&cdoc),
                        string_literal(&case.name),
                        if case.ty.is_some() { "True" } else { "False" },
                        string_literal(&cn),
                        string_literal(&format!("{cls}.{cn}")),
                    );
                    cases.push(format!("{cls}.{cn}"));
                }
                let _ = writeln!(py, "{cls}._cases = ({})\ndel _c\n", cases.iter().map(|c| format!("{c}, ")).collect::<String>());
                self.scopes[s].classes.push((id, cls.clone()));
                let _ = writeln!(self.decls, "static PyObject *kcases_{}[{}];", id.index(), v.cases.len().max(1));
            }
            TypeDefKind::Enum(e) => {
                self.scopes[s].uses_enum = true;
                let _ = writeln!(py, "class {cls}(_enum.Enum):\n    {}", doc_line("enum"));
                for (i, case) in e.cases.iter().enumerate() {
                    let _ = writeln!(py, "    {} = {i}", escape_keyword(case.name.to_shouty_snake_case()));
                }
                py.push('\n');
                self.scopes[s].classes.push((id, cls.clone()));
                let _ = writeln!(self.decls, "static PyObject *kmembers_{}[{}];", id.index(), e.cases.len().max(1));
            }
            TypeDefKind::Flags(f) => {
                self.scopes[s].uses_enum = true;
                let _ = writeln!(py, "class {cls}(_enum.Flag):\n    {}", doc_line("flags"));
                for (i, flag) in f.flags.iter().enumerate() {
                    let _ = writeln!(py, "    {} = {}", escape_keyword(flag.name.to_shouty_snake_case()), 1u64 << i);
                }
                py.push('\n');
                self.scopes[s].classes.push((id, cls.clone()));
            }
            TypeDefKind::Resource => {
                self.scopes[s].resources.push(id);
                let _ = writeln!(self.decls, "static PyTypeObject *kt_{0};", id.index());
                let _ = writeln!(
                    self.decls,
                    "__attribute__((__import_module__({}), __import_name__({})))\nextern void kimp_{3}_drop_{2}(int32_t);\nK_UNUSED static void kdrop_{2}(int32_t h) {{ kimp_{3}_drop_{2}(h); }}",
                    c_str(&self.scopes[s].import_module),
                    c_str(&format!("[resource-drop]{wit}")),
                    id.index(),
                    self.module
                );
                return Ok(());
            }
            _ => return Ok(()),
        }
        if !matches!(t.kind, TypeDefKind::Resource) {
            let _ = writeln!(self.decls, "static PyObject *{var};");
        }
        self.scopes[s].py.push_str(&py);
        Ok(())
    }

    /// The Python callable for one imported function.
    fn function(&mut self, s: usize, func: &Function) -> Result<(), String> {
        let what = format!("{}: function `{}`", self.resolve.render_location(func.span), func.name);
        if !matches!(
            func.kind,
            FunctionKind::Freestanding
                | FunctionKind::Method(_)
                | FunctionKind::Static(_)
                | FunctionKind::Constructor(_)
        ) {
            return Err(format!("{what} is async; generated caps support synchronous functions only ({FIX})"));
        }
        for p in &func.params {
            self.check_type(&p.ty, &what)?;
        }
        if let Some(r) = &func.result {
            self.check_type(r, &what)?;
        }
        let n = self.next_fn;
        self.next_fn += 1;
        let is_method = matches!(func.kind, FunctionKind::Method(_));
        let py_params: Vec<&wit_bindgen_core::wit_parser::Param> =
            func.params.iter().skip(usize::from(is_method)).collect();
        let names: Vec<String> = py_params.iter().map(|p| py_snake(&p.name)).collect();

        // The import, as the canonical ABI lowers it.
        let sig = self.resolve.wasm_signature(AbiVariant::GuestImport, func);
        let (indirect, retptr) = (sig.indirect_params, sig.retptr);
        let params: Vec<Flat> = sig.params.iter().map(|t| Flat::of(*t)).collect();
        let result: Option<Flat> = sig.results.first().map(|t| Flat::of(*t));
        let c_params: Vec<&str> = params.iter().map(|f| f.c_type()).collect();
        let _ = writeln!(
            self.decls,
            "__attribute__((__import_module__({}), __import_name__({})))\nextern {} kimp_{}_{n}({});",
            c_str(&self.scopes[s].import_module),
            c_str(&func.name),
            result.map_or("void", Flat::c_type),
            self.module,
            if c_params.is_empty() { "void".to_owned() } else { c_params.join(", ") }
        );
        // The flat arguments lowering fills (the return pointer is not one).
        let lowered = &params[..params.len() - usize::from(retptr)];

        // Lowering of all arguments: `kp_N(a, f, c, self)`.
        let mut lower = String::new();
        if indirect {
            let offsets: Vec<usize> = self
                .sizes
                .field_offsets(func.params.iter().map(|p| &p.ty))
                .iter()
                .map(|(o, _)| o.size_wasm32())
                .collect();
            let size = self.sizes.params(func.params.iter().map(|p| &p.ty)).size.size_wasm32();
            let _ = writeln!(lower, "uint8_t *m = k_alloc(c, {size}); if (m == NULL) return -1;\nf[0].i32 = (int32_t)(intptr_t)m;");
            for (i, (p, off)) in func.params.iter().zip(offsets).enumerate() {
                let o = self.arg_expr(i, is_method);
                let body = self.store(&p.ty, &o, &format!("m + {off}"), "&q");
                let _ = write!(lower, "{{ kpath q = {{{}, -1, NULL}};\n{body}}}\n", c_str(&self.arg_what(func, &p.name, is_method && i == 0)));
            }
        } else {
            let mut at = 0;
            for (i, p) in func.params.iter().enumerate() {
                let o = self.arg_expr(i, is_method);
                let body = self.lower(&p.ty, &o, &format!("f + {at}"), "&q");
                let _ = write!(lower, "{{ kpath q = {{{}, -1, NULL}};\n{body}}}\n", c_str(&self.arg_what(func, &p.name, is_method && i == 0)));
                at += self.flat(&p.ty).len();
            }
        }
        let _ = write!(
            self.funcs_c,
            "\nstatic int kp_{n}(PyObject *const *a, kflat *f, kcall *c, PyObject *self) {{\n(void)a; (void)f; (void)c; (void)self;\n{lower}return 0;\n}}\n"
        );

        // The body: lower, call, lift.
        let nflat = lowered.len().max(1);
        let args: Vec<String> = lowered
            .iter()
            .enumerate()
            .map(|(i, fl)| format!("f[{i}].{}", fl.member()))
            .collect();
        let mut body = format!(
            "kcall cc; kcall_init(&cc); kcall *c = &cc;\nkflat f[{nflat}]; memset(f, 0, sizeof f);\nif (kp_{n}(a, f, c, self) < 0) {{ kcall_done(c, 0); return NULL; }}\n"
        );
        let err_var = format!("kerr_{s}");
        let m = self.module.clone();
        match &func.result {
            None => {
                let _ = writeln!(body, "kimp_{m}_{n}({});\nkcall_done(c, 1);\nPy_RETURN_NONE;", args.join(", "));
            }
            Some(rt) if !retptr => {
                let j = result.map_or("i32", Flat::member);
                let _ = writeln!(body, "kflat rv; memset(&rv, 0, sizeof rv);\nrv.{j} = kimp_{m}_{n}({});\nkcall_done(c, 1);", args.join(", "));
                match self.top_result(rt) {
                    Some(_) => {
                        let _ = writeln!(body, "if (rv.i32 == 0) Py_RETURN_NONE;\nreturn k_raise({err_var}, NULL);");
                    }
                    None => {
                        let e = self.lift(rt, "&rv");
                        let _ = writeln!(body, "return {e};");
                    }
                }
            }
            Some(rt) => {
                let size = self.size(rt);
                let align = self.align(rt).max(8);
                let mut call_args = args.clone();
                call_args.push("(int32_t)(intptr_t)ret".into());
                let _ = writeln!(
                    body,
                    "uint8_t ret[{size}] __attribute__((aligned({align})));\nkimp_{m}_{n}({});\nkcall_done(c, 1);\nPyObject *r;",
                    call_args.join(", ")
                );
                match self.top_result(rt) {
                    Some((ok, err)) => {
                        let off = self.payload_offset(Int::U8, [ok.as_ref(), err.as_ref()]);
                        let okv = match &ok {
                            Some(t) => self.load(t, &format!("ret + {off}")),
                            None => "Py_NewRef(Py_None)".into(),
                        };
                        let errv = match &err {
                            Some(t) => self.load(t, &format!("ret + {off}")),
                            None => "Py_NewRef(Py_None)".into(),
                        };
                        let _ = writeln!(body, "if (ret[0] == 0) r = {okv}; else r = k_raise({err_var}, {errv});");
                    }
                    None => {
                        let e = self.load(rt, "ret");
                        let _ = writeln!(body, "r = {e};");
                    }
                }
                let fr = self.free(rt, "ret");
                let _ = writeln!(body, "{fr}return r;");
            }
        }
        let _ = write!(self.funcs_c, "\nstatic PyObject *kb_{n}(PyObject *self, PyObject *const *a) {{\n{body}}}\n");

        // The Python-facing callable.
        let pyname = match func.kind {
            FunctionKind::Method(_) | FunctionKind::Static(_) => {
                let n = py_snake(func.item_name());
                if n == "close" || n == "closed" { format!("{n}_") } else { n }
            }
            _ => py_snake(func.item_name()),
        };
        let names_c = if names.is_empty() {
            "NULL".to_owned()
        } else {
            let _ = writeln!(
                self.funcs_c,
                "static const char *const knames_{n}[] = {{{}}};",
                names.iter().map(|x| c_str(x)).collect::<Vec<_>>().join(", ")
            );
            format!("knames_{n}")
        };
        let np = names.len();
        let qual = match func.kind {
            FunctionKind::Method(r) | FunctionKind::Static(r) | FunctionKind::Constructor(r) => {
                format!("{}.{pyname}", self.classes_or_resource_name(r))
            }
            _ => pyname.clone(),
        };
        let _ = write!(
            self.funcs_c,
            "static PyObject *kw_{n}(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {{\nPyObject *a[{}];\nif (k_args(args, nargs, kwnames, {names_c}, {np}, a, {}) < 0) return NULL;\nreturn kb_{n}(self, a);\n}}\n",
            np.max(1),
            c_str(&qual)
        );
        let fdoc = docs(&func.docs);
        let sig_doc = format!(
            "{pyname}({}{})\n--\n\n{}",
            match func.kind {
                FunctionKind::Method(_) => "$self, /, ",
                FunctionKind::Static(_) => "",
                _ => "$module, /, ",
            },
            names.join(", "),
            if fdoc.is_empty() { format!("WIT `{}`.", func.name) } else { fdoc.clone() }
        );
        match func.kind {
            FunctionKind::Constructor(r) => {
                let r = self.resource_of(r);
                let _ = write!(
                    self.resources_c,
                    "\nstatic PyObject *knew_{0}(PyTypeObject *t, PyObject *args, PyObject *kwargs) {{\n(void)t;\nPyObject *a[{1}];\nif (k_args_tuple(args, kwargs, {names_c}, {np}, a, {2}) < 0) return NULL;\nreturn kb_{n}(NULL, a);\n}}\n",
                    r.index(),
                    np.max(1),
                    c_str(&qual)
                );
                self.ctor_doc.insert(r, fdoc);
            }
            FunctionKind::Method(r) | FunctionKind::Static(r) => {
                let r = self.resource_of(r);
                let flags = if matches!(func.kind, FunctionKind::Static(_)) {
                    "METH_FASTCALL | METH_KEYWORDS | METH_STATIC"
                } else {
                    "METH_FASTCALL | METH_KEYWORDS"
                };
                self.resource_methods.entry(r).or_default().push_str(&format!(
                    "{{{}, (PyCFunction)(void (*)(void))kw_{n}, {flags}, {}}},\n",
                    c_str(&pyname),
                    c_str(&sig_doc)
                ));
            }
            _ => {
                let _ = writeln!(
                    self.scopes[s].methods,
                    "{{{}, (PyCFunction)(void (*)(void))kw_{n}, METH_FASTCALL | METH_KEYWORDS, {}}},",
                    c_str(&pyname),
                    c_str(&sig_doc)
                );
            }
        }
        Ok(())
    }

    fn classes_or_resource_name(&self, r: TypeId) -> String {
        let r = self.resource_of(r);
        py_class(self.resolve.types[r].name.as_deref().unwrap_or("resource"))
    }

    /// The C expression of argument `i` (a method's first is `self`).
    fn arg_expr(&self, i: usize, is_method: bool) -> String {
        if is_method {
            if i == 0 { "self".into() } else { format!("a[{}]", i - 1) }
        } else {
            format!("a[{i}]")
        }
    }

    fn arg_what(&self, func: &Function, param: &str, is_self: bool) -> String {
        if is_self {
            format!("`{}` self", func.name)
        } else {
            format!("`{}` argument `{}`", func.name, param)
        }
    }

    /// `(ok, err)` when `ty` is a `result` (a return that raises).
    fn top_result(&self, ty: &Type) -> Option<(Option<Type>, Option<Type>)> {
        match self.dealias(ty) {
            Type::Id(id) => match self.kind(id) {
                TypeDefKind::Result(r) => Some((r.ok, r.err)),
                _ => None,
            },
            _ => None,
        }
    }
}

impl Gen<'_> {
    /// The whole C file.
    fn finish(self) -> String {
        let m = &self.module;
        let mut out = format!(
            "// The CPython module `{m}`, generated by kiln from a WIT world\n// (`ctx.actions.wit_bindgen_py`). Do not edit.\n\n"
        );
        out.push_str(RUNTIME_C);
        out.push_str("\n// ---- generated ----\n\nstatic PyObject *k_Some, *k_Ok, *k_Err;\n");
        for i in 0..self.scopes.len() {
            let _ = writeln!(out, "static PyObject *kerr_{i};");
        }
        out.push_str(&self.decls);
        out.push_str(&self.types_c);
        out.push_str(&self.funcs_c);
        out.push_str(&self.resources_c);
        for sc in &self.scopes {
            for r in &sc.resources {
                let methods = self.resource_methods.get(r).map(String::as_str).unwrap_or("");
                let _ = write!(
                    out,
                    "\nstatic PyMethodDef kmeth_{}[] = {{\n{methods}K_RES_METHODS{{NULL, NULL, 0, NULL}},\n}};\n",
                    r.index()
                );
            }
        }
        for (i, sc) in self.scopes.iter().enumerate() {
            let _ = write!(out, "\nstatic PyMethodDef kfuncs_{i}[] = {{\n{}{{NULL, NULL, 0, NULL}},\n}};\n", sc.methods);
            let mut py = String::new();
            if sc.uses_enum {
                py.push_str("import enum as _enum\n\n");
            }
            py.push_str(&sc.py);
            let what = if sc.attr.is_empty() {
                "this world's functions".to_owned()
            } else {
                format!("interface `{}`", sc.import_module)
            };
            let _ = writeln!(
                py,
                "class {}(_Error):\n    {}\n",
                sc.error_class,
                string_literal(&format!("An `err` returned by a function of {what}; `value` is its payload."))
            );
            let _ = writeln!(out, "static const char ksrc_{i}[] =\n{};", c_str(&py));
        }
        let _ = writeln!(out, "\nstatic const char kruntime_py[] =\n{};", c_str(RUNTIME_PY));
        let doc = &self.scopes[0].docs;
        let _ = write!(
            out,
            "\nstatic struct PyModuleDef kmoduledef = {{PyModuleDef_HEAD_INIT, {}, {}, -1, kfuncs_0, NULL, NULL, NULL, NULL}};\n",
            c_str(m),
            if doc.is_empty() { "NULL".to_owned() } else { c_str(doc) }
        );
        let _ = write!(
            out,
            "\n// Hand-written C of the same cap may define this to add to the module.\n__attribute__((weak)) int {m}_extend(PyObject *module);\n\nPyMODINIT_FUNC PyInit_{m}(void) {{\nPyObject *m = PyModule_Create(&kmoduledef);\nif (m == NULL) return NULL;\nPyObject *s = NULL;\nif (k_exec(m, kruntime_py, {}) < 0) goto fail;\nif ((k_Some = k_get(m, \"Some\")) == NULL || (k_Ok = k_get(m, \"Ok\")) == NULL || (k_Err = k_get(m, \"Err\")) == NULL) goto fail;\n",
            c_str(&format!("<{m} runtime>"))
        );
        for (i, sc) in self.scopes.iter().enumerate() {
            out.push_str("{\n");
            if sc.attr.is_empty() {
                out.push_str("s = m; Py_INCREF(s);\n");
            } else {
                let _ = writeln!(
                    out,
                    "s = k_submodule(m, {}, {}, {}); if (s == NULL) goto fail;",
                    c_str(&sc.full),
                    c_str(&sc.attr),
                    if sc.docs.is_empty() { "NULL".to_owned() } else { c_str(&sc.docs) }
                );
                out.push_str("for (int i = 0; i < 3; i++) { static const char *const base[] = {\"_Record\", \"_Variant\", \"_Error\"}; PyObject *b = k_get(m, base[i]); if (b == NULL || PyModule_AddObject(s, base[i], b) < 0) { Py_XDECREF(b); goto fail; } }\n");
            }
            let _ = writeln!(out, "if (k_exec(s, ksrc_{i}, {}) < 0) goto fail;", c_str(&format!("<{}>", sc.full)));
            for (id, name) in &sc.classes {
                let _ = writeln!(out, "if ((kc_{} = k_get(s, {})) == NULL) goto fail;", id.index(), c_str(name));
            }
            for (id, _) in &sc.classes {
                match &self.resolve.types[*id].kind {
                    TypeDefKind::Variant(v) => {
                        let _ = writeln!(
                            out,
                            "if (k_get_items(kc_{0}, \"_cases\", kcases_{0}, {1}) < 0) goto fail;",
                            id.index(),
                            v.cases.len()
                        );
                    }
                    TypeDefKind::Enum(e) => {
                        let _ = writeln!(
                            out,
                            "if (k_enum_members(kc_{0}, kmembers_{0}, {1}) < 0) goto fail;",
                            id.index(),
                            e.cases.len()
                        );
                    }
                    _ => {}
                }
            }
            let _ = writeln!(out, "if ((kerr_{i} = k_get(s, {})) == NULL) goto fail;", c_str(&sc.error_class));
            for r in &sc.resources {
                let t = &self.resolve.types[*r];
                let cls = py_class(t.name.as_deref().unwrap_or("resource"));
                let d = docs(&t.docs);
                let cdoc = self.ctor_doc.get(r).cloned().unwrap_or_default();
                let full_doc = match (d.is_empty(), cdoc.is_empty()) {
                    (true, true) => format!("WIT resource `{}`.", t.name.as_deref().unwrap_or("")),
                    (false, true) => d,
                    (true, false) => cdoc,
                    (false, false) => format!("{d}\n\n{cdoc}"),
                };
                let new = if self.ctor_doc.contains_key(r) { format!("knew_{}", r.index()) } else { "NULL".into() };
                let _ = writeln!(
                    out,
                    "if ((kt_{0} = k_resource_type({1}, {2}, kmeth_{0}, {new})) == NULL) goto fail;\nif (PyModule_AddObjectRef(s, {3}, (PyObject *)kt_{0}) < 0) goto fail;",
                    r.index(),
                    c_str(&format!("{}.{cls}", sc.full)),
                    c_str(&full_doc),
                    c_str(&cls)
                );
            }
            if i > 0 {
                let _ = writeln!(out, "if (PyModule_AddFunctions(s, kfuncs_{i}) < 0) goto fail;");
            }
            out.push_str("Py_CLEAR(s);\n}\n");
        }
        let _ = write!(
            out,
            "if ({m}_extend != NULL && {m}_extend(m) < 0) goto fail;\nreturn m;\nfail:\nPy_XDECREF(s);\nPy_DECREF(m);\nreturn NULL;\n}}\n"
        );
        out
    }
}

/// An expression: a new Python object for scalar `t`, whose C value of
/// type `ct` is `read(ct)`.
fn scalar_to_py(t: Type, read: &dyn std::ops::Fn(&str) -> String) -> String {
    let (make, ct) = match t {
        Type::Bool => return format!("PyBool_FromLong({} != 0)", read("uint8_t")),
        Type::U8 => ("PyLong_FromLong", "uint8_t"),
        Type::S8 => ("PyLong_FromLong", "int8_t"),
        Type::U16 => ("PyLong_FromLong", "uint16_t"),
        Type::S16 => ("PyLong_FromLong", "int16_t"),
        Type::U32 => ("PyLong_FromUnsignedLong", "uint32_t"),
        Type::S32 => ("PyLong_FromLong", "int32_t"),
        Type::U64 => ("PyLong_FromUnsignedLongLong", "uint64_t"),
        Type::S64 => ("PyLong_FromLongLong", "int64_t"),
        Type::F32 => ("PyFloat_FromDouble", "float"),
        Type::F64 => ("PyFloat_FromDouble", "double"),
        Type::Char => ("PyUnicode_FromOrdinal", "int32_t"),
        _ => return "NULL".into(),
    };
    format!("{make}({})", read(ct))
}

/// Statements taking `o` as a sequence of exactly `n` items into `seq`.
fn tuple_items(n: usize, tyname: &str) -> String {
    format!(
        "PyObject *seq = k_seq(o, p, c, {0}); if (seq == NULL) return -1;\nif (PySequence_Fast_GET_SIZE(seq) != {n}) {{ k_err(PyExc_TypeError, p, \"expected {n} items for %s, got %zd\", {0}, PySequence_Fast_GET_SIZE(seq)); return -1; }}\n",
        c_str(tyname)
    )
}

fn int_range(t: Type) -> (&'static str, &'static str, &'static str, &'static str) {
    match t {
        Type::U8 => ("u8", "0", "255", "uint8_t"),
        Type::U16 => ("u16", "0", "65535", "uint16_t"),
        Type::U32 => ("u32", "0", "4294967295LL", "uint32_t"),
        Type::S8 => ("s8", "-128", "127", "int8_t"),
        Type::S16 => ("s16", "-32768", "32767", "int16_t"),
        _ => ("s32", "-2147483648LL", "2147483647LL", "int32_t"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wit_bindgen_core::wit_parser::Resolve;

    const WIT: &str = r#"
package t:t@0.1.0;
interface api {
  variant v { a(f32), b(s64), c(string), d }
  record r { x: u8, y: option<option<u32>> }
  resource res { constructor(); close: func(); }
  f: func(a: v, b: r, c: list<u8>) -> result<r, string>;
  g: func(h: borrow<res>) -> u32;
  h: func(x: result<f32, s32>) -> u32;
  k: func(x: option<f64>, y: result<f32, f64>);
}
world w { import api; }
"#;

    fn generated() -> String {
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("t.wit", WIT).unwrap();
        let world = resolve.select_world(&[pkg], Some("w")).unwrap();
        generate(&resolve, world, "_t").unwrap()
    }

    #[test]
    fn variant_payload_slots_join_as_the_canonical_abi_says() {
        let c = generated();
        // v: [disc, join(f32, i64, i32) = i64, len]; r: [u8, disc, disc, u32];
        // list<u8>: [ptr, len]; the result comes back through memory.
        let want = "(int32_t, int64_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t);";
        assert!(
            c.lines().any(|l| l.starts_with("extern void kimp__t_") && l.ends_with(want)),
            "{}",
            c.lines().filter(|l| l.starts_with("extern")).collect::<Vec<_>>().join("\n")
        );
        // join(f32, s32) = i32; join(f32, f64) = i64; f64 alone stays f64.
        let import = |name: &str| {
            let at = c.find(&format!("__import_name__(\"{name}\")")).unwrap();
            c[at..].lines().nth(1).unwrap().to_owned()
        };
        assert!(import("h").ends_with("(int32_t, int32_t);"), "{}", import("h"));
        assert!(
            import("k").ends_with("(int32_t, double, int32_t, int64_t);"),
            "{}",
            import("k")
        );
        assert!(c.contains("__import_name__(\"[resource-drop]res\")"));
    }

    #[test]
    fn python_names_follow_python() {
        assert_eq!(py_snake("column-count"), "column_count");
        assert_eq!(py_snake("from"), "from_");
        assert_eq!(py_class("hot-pink"), "HotPink");
        assert_eq!(py_class("none"), "None_");
        let c = generated();
        assert!(c.contains("{\"close_\", "), "WIT's close is close_");
        assert!(c.contains("class V(_Variant)"));
        assert!(c.contains("class R(_Record)"));
        assert!(c.contains("PyInit__t(void)"));
    }

    #[test]
    fn c_strings_are_escaped() {
        assert_eq!(c_str("a\"b\\c?"), "\"a\\\"b\\\\c\\?\"");
        assert_eq!(c_str("é"), "\"\\303\\251\"");
        assert_eq!(c_str("x\ny"), "\"x\\n\"\n\"y\"");
    }

    #[test]
    fn unsupported_functions_are_named_with_their_place() {
        let wit = "package t:u;\ninterface api {\n  f: func() -> stream<u8>;\n}\nworld w { import api; }\n";
        let mut resolve = Resolve::default();
        let pkg = resolve.push_str("dir/ü.wit", wit).unwrap();
        let world = resolve.select_world(&[pkg], Some("w")).unwrap();
        let err = generate(&resolve, world, "_u").unwrap_err();
        assert!(err.starts_with("dir/ü.wit:3:3: function `f` uses a `stream`"), "{err}");
        assert!(err.contains("leave it out of the world"), "{err}");
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generated(), generated());
    }
}
