// The runtime every generated module shares: argument parsing, the
// per-call cleanup list, value conversion helpers and resource objects.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define K_UNUSED __attribute__((unused))

// One flat core-wasm value of the canonical ABI. A variant's payload slots
// are written through the case's own type and read through the joined one:
// with the slots zeroed first this is the ABI's bitcast and zero-extension.
typedef union {
  int32_t i32;
  int64_t i64;
  float f32;
  double f64;
} kflat;

// Where a value sits in a call, for error messages ("`echo` argument `x`,
// field `y`, element 3: ...").
typedef struct kpath {
  const char *what;
  Py_ssize_t index;
  const struct kpath *up;
} kpath;

// What a call must undo or finish once the import returned (or failed
// before it was made): references, memory, buffers, and resource handles
// moved into the callee.
enum { K_REF, K_MEM, K_BUF, K_MOVE };
typedef struct {
  int kind;
  void *p;
} kitem;
typedef struct {
  kitem *items;
  Py_ssize_t n, cap;
  kitem inline_items[16];
} kcall;

// A resource handle held by a Python object.
typedef struct {
  PyObject_HEAD int32_t handle;
  int alive;
  void (*drop)(int32_t);
} kres;

static void kcall_init(kcall *c) {
  c->items = c->inline_items;
  c->n = 0;
  c->cap = 16;
}

static void kitem_undo(kitem it, int made) {
  switch (it.kind) {
    case K_REF:
      Py_DECREF((PyObject *)it.p);
      break;
    case K_MEM:
      free(it.p);
      break;
    case K_BUF:
      PyBuffer_Release((Py_buffer *)it.p);
      PyMem_Free(it.p);
      break;
    case K_MOVE:
      if (made) {
        ((kres *)it.p)->alive = 0;
      }
      Py_DECREF((PyObject *)it.p);
      break;
  }
}

// Remember `p`; on failure it is undone at once and -1 returned.
static int kcall_push(kcall *c, int kind, void *p) {
  if (c->n == c->cap) {
    Py_ssize_t cap = c->cap * 2;
    kitem *items = PyMem_Malloc(sizeof(kitem) * (size_t)cap);
    if (items == NULL) {
      kitem_undo((kitem){kind, p}, 0);
      PyErr_NoMemory();
      return -1;
    }
    memcpy(items, c->items, sizeof(kitem) * (size_t)c->n);
    if (c->items != c->inline_items) {
      PyMem_Free(c->items);
    }
    c->items = items;
    c->cap = cap;
  }
  c->items[c->n++] = (kitem){kind, p};
  return 0;
}

// Undo everything; `made`: the call was made (moved handles are gone).
static void kcall_done(kcall *c, int made) {
  for (Py_ssize_t i = c->n - 1; i >= 0; i--) {
    kitem_undo(c->items[i], made);
  }
  if (c->items != c->inline_items) {
    PyMem_Free(c->items);
  }
  c->items = c->inline_items;
  c->n = 0;
}

// Raise `type` with the value's place in the call before `detail`.
K_UNUSED static void k_err(PyObject *type, const kpath *p, const char *fmt, ...) {
  const kpath *chain[32];
  int n = 0;
  for (const kpath *q = p; q != NULL && n < 32; q = q->up) {
    chain[n++] = q;
  }
  char where[768];
  size_t len = 0;
  where[0] = 0;
  for (int i = n - 1; i >= 0; i--) {
    int w;
    if (chain[i]->index >= 0) {
      w = snprintf(where + len, sizeof where - len, "%s%s %zd", len ? ", " : "", chain[i]->what, chain[i]->index);
    } else {
      w = snprintf(where + len, sizeof where - len, "%s%s", len ? ", " : "", chain[i]->what);
    }
    if (w < 0 || (size_t)w >= sizeof where - len) {
      break;
    }
    len += (size_t)w;
  }
  va_list ap;
  va_start(ap, fmt);
  PyObject *detail = PyUnicode_FromFormatV(fmt, ap);
  va_end(ap);
  if (detail == NULL) {
    return;
  }
  PyErr_Format(type, "%s: %U", where, detail);
  Py_DECREF(detail);
}

// Arguments by position or keyword into `out[n]` (borrowed references).
K_UNUSED static int k_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names,
                           Py_ssize_t n, PyObject **out, const char *fname) {
  if (nargs > n) {
    PyErr_Format(PyExc_TypeError, "%s() takes %zd argument%s (%zd given)", fname, n, n == 1 ? "" : "s", nargs);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    out[i] = i < nargs ? args[i] : NULL;
  }
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; k++) {
    PyObject *key = PyTuple_GET_ITEM(kwnames, k);
    Py_ssize_t i = 0;
    while (i < n && PyUnicode_CompareWithASCIIString(key, names[i]) != 0) {
      i++;
    }
    if (i == n) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", fname, key);
      return -1;
    }
    if (out[i] != NULL) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname, names[i]);
      return -1;
    }
    out[i] = args[nargs + k];
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    if (out[i] == NULL) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", fname, names[i]);
      return -1;
    }
  }
  return 0;
}

// The same for a tuple and a dict (a constructor's `tp_new`).
K_UNUSED static int k_args_tuple(PyObject *args, PyObject *kwargs, const char *const *names, Py_ssize_t n,
                                 PyObject **out, const char *fname) {
  Py_ssize_t nargs = PyTuple_GET_SIZE(args);
  Py_ssize_t nkw = kwargs ? PyDict_GET_SIZE(kwargs) : 0;
  PyObject *stack[64];
  if (nargs + nkw > 64) {
    PyErr_Format(PyExc_TypeError, "%s() got too many arguments", fname);
    return -1;
  }
  for (Py_ssize_t i = 0; i < nargs; i++) {
    stack[i] = PyTuple_GET_ITEM(args, i);
  }
  PyObject *kwnames = NULL;
  if (nkw) {
    kwnames = PyTuple_New(nkw);
    if (kwnames == NULL) {
      return -1;
    }
    Py_ssize_t pos = 0, k = 0;
    PyObject *key, *value;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
      Py_INCREF(key);
      PyTuple_SET_ITEM(kwnames, k, key);
      stack[nargs + k] = value;
      k++;
    }
  }
  int rc = k_args(stack, nargs, kwnames, names, n, out, fname);
  Py_XDECREF(kwnames);
  return rc;
}

K_UNUSED static int k_bool(PyObject *o, const kpath *p, int32_t *out) {
  if (!PyBool_Check(o)) {
    k_err(PyExc_TypeError, p, "expected bool, got %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  *out = o == Py_True;
  return 0;
}

K_UNUSED static int k_int(PyObject *o, const kpath *p, const char *ty, long long lo, long long hi, long long *out) {
  if (!PyLong_Check(o)) {
    k_err(PyExc_TypeError, p, "expected int for %s, got %s", ty, Py_TYPE(o)->tp_name);
    return -1;
  }
  int overflow = 0;
  long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
  if (v == -1 && PyErr_Occurred()) {
    return -1;
  }
  if (overflow || v < lo || v > hi) {
    k_err(PyExc_OverflowError, p, "%R is out of range for %s", o, ty);
    return -1;
  }
  *out = v;
  return 0;
}

K_UNUSED static int k_u64(PyObject *o, const kpath *p, uint64_t *out) {
  if (!PyLong_Check(o)) {
    k_err(PyExc_TypeError, p, "expected int for u64, got %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  unsigned long long v = PyLong_AsUnsignedLongLong(o);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
      return -1;
    }
    PyErr_Clear();
    k_err(PyExc_OverflowError, p, "%R is out of range for u64", o);
    return -1;
  }
  *out = v;
  return 0;
}

// A float or int as a double (`ty`: the WIT type, for messages).
static int k_double(PyObject *o, const kpath *p, const char *ty, double *out) {
  if (!PyFloat_Check(o) && !PyLong_Check(o)) {
    k_err(PyExc_TypeError, p, "expected float for %s, got %s", ty, Py_TYPE(o)->tp_name);
    return -1;
  }
  *out = PyFloat_AsDouble(o);
  return *out == -1.0 && PyErr_Occurred() ? -1 : 0;
}

K_UNUSED static int k_f64(PyObject *o, const kpath *p, double *out) { return k_double(o, p, "f64", out); }

K_UNUSED static int k_f32(PyObject *o, const kpath *p, float *out) {
  double v;
  if (k_double(o, p, "f32", &v) < 0) {
    return -1;
  }
  float f = (float)v;
  if (isinf(f) && isfinite(v)) {
    k_err(PyExc_OverflowError, p, "%R is out of range for f32", o);
    return -1;
  }
  *out = f;
  return 0;
}

K_UNUSED static int k_char(PyObject *o, const kpath *p, int32_t *out) {
  if (!PyUnicode_Check(o) || PyUnicode_GET_LENGTH(o) != 1) {
    k_err(PyExc_TypeError, p, "expected a str of one character for char, got %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  Py_UCS4 ch = PyUnicode_READ_CHAR(o, 0);
  if (ch >= 0xD800 && ch <= 0xDFFF) {
    k_err(PyExc_ValueError, p, "U+%04X is a surrogate, not a Unicode scalar value for char", (unsigned)ch);
    return -1;
  }
  *out = (int32_t)ch;
  return 0;
}

// A str as UTF-8: a pointer into the object (no copy) and its length.
K_UNUSED static int k_string(PyObject *o, const kpath *p, int32_t *ptr, int32_t *len) {
  if (!PyUnicode_Check(o)) {
    k_err(PyExc_TypeError, p, "expected str for string, got %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  Py_ssize_t n;
  const char *s = PyUnicode_AsUTF8AndSize(o, &n);
  if (s == NULL) {
    return -1;
  }
  *ptr = (int32_t)(intptr_t)s;
  *len = (int32_t)n;
  return 0;
}

// A bytes-like object for list<u8>: its buffer, held until the call ends.
K_UNUSED static int k_bytes(PyObject *o, const kpath *p, kcall *c, int32_t *ptr, int32_t *len) {
  if (PyBytes_CheckExact(o)) {
    *ptr = (int32_t)(intptr_t)PyBytes_AS_STRING(o);
    *len = (int32_t)PyBytes_GET_SIZE(o);
    return 0;
  }
  if (!PyObject_CheckBuffer(o)) {
    k_err(PyExc_TypeError, p, "expected a bytes-like object for list<u8>, got %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  Py_buffer *view = PyMem_Malloc(sizeof(Py_buffer));
  if (view == NULL) {
    PyErr_NoMemory();
    return -1;
  }
  if (PyObject_GetBuffer(o, view, PyBUF_SIMPLE) < 0) {
    PyMem_Free(view);
    return -1;
  }
  if (kcall_push(c, K_BUF, view) < 0) {
    return -1;
  }
  *ptr = (int32_t)(intptr_t)view->buf;
  *len = (int32_t)view->len;
  return 0;
}

// A sequence's items (a list or tuple kept alive by the call).
K_UNUSED static PyObject *k_seq(PyObject *o, const kpath *p, kcall *c, const char *ty) {
  if (PyUnicode_Check(o) || PyBytes_Check(o) || !PySequence_Check(o)) {
    k_err(PyExc_TypeError, p, "expected a sequence for %s, got %s", ty, Py_TYPE(o)->tp_name);
    return NULL;
  }
  PyObject *fast = PySequence_Fast(o, ty);
  if (fast == NULL || kcall_push(c, K_REF, fast) < 0) {
    return NULL;
  }
  return fast;
}

// Memory for a lowered list or record, freed when the call ends.
K_UNUSED static uint8_t *k_alloc(kcall *c, size_t size) {
  uint8_t *m = malloc(size ? size : 1);
  if (m == NULL) {
    PyErr_NoMemory();
    return NULL;
  }
  if (kcall_push(c, K_MEM, m) < 0) {
    return NULL;
  }
  return m;
}

// `o.name`, kept alive by the call.
K_UNUSED static PyObject *k_attr(PyObject *o, const char *name, kcall *c) {
  PyObject *v = PyObject_GetAttrString(o, name);
  if (v == NULL || kcall_push(c, K_REF, v) < 0) {
    return NULL;
  }
  return v;
}

K_UNUSED static int k_instance(PyObject *o, PyObject *cls, const kpath *p, const char *ty) {
  int ok = PyObject_IsInstance(o, cls);
  if (ok < 0) {
    return -1;
  }
  if (!ok) {
    k_err(PyExc_TypeError, p, "expected %s, got %s", ty, Py_TYPE(o)->tp_name);
    return -1;
  }
  return 0;
}

// Which case class of a variant `o` is.
K_UNUSED static int k_case(PyObject *o, PyObject *const *cases, int n, const kpath *p, const char *ty) {
  for (int i = 0; i < n; i++) {
    if ((PyObject *)Py_TYPE(o) == cases[i]) {
      return i;
    }
  }
  for (int i = 0; i < n; i++) {
    int ok = PyObject_IsInstance(o, cases[i]);
    if (ok < 0) {
      return -1;
    }
    if (ok) {
      return i;
    }
  }
  k_err(PyExc_TypeError, p, "expected a case of %s, got %s", ty, Py_TYPE(o)->tp_name);
  return -1;
}

// The handle of a live resource object of type `t`; `move`: ownership
// passes to the callee once the call is made.
K_UNUSED static int k_handle(PyObject *o, PyTypeObject *t, const kpath *p, kcall *c, int move, int32_t *out) {
  if (!PyObject_TypeCheck(o, t)) {
    k_err(PyExc_TypeError, p, "expected %s, got %s", t->tp_name, Py_TYPE(o)->tp_name);
    return -1;
  }
  kres *r = (kres *)o;
  if (!r->alive) {
    k_err(PyExc_ValueError, p, "this %s is closed", t->tp_name);
    return -1;
  }
  if (move) {
    for (Py_ssize_t i = 0; i < c->n; i++) {
      if (c->items[i].kind == K_MOVE && c->items[i].p == o) {
        k_err(PyExc_ValueError, p, "this %s is already passed by value in this call", t->tp_name);
        return -1;
      }
    }
    Py_INCREF(o);
    if (kcall_push(c, K_MOVE, o) < 0) {
      return -1;
    }
  }
  *out = r->handle;
  return 0;
}

// A new object of resource type `t` owning `handle` (dropped on failure).
K_UNUSED static PyObject *k_wrap(PyTypeObject *t, int32_t handle, void (*drop)(int32_t)) {
  kres *r = (kres *)t->tp_alloc(t, 0);
  if (r == NULL) {
    drop(handle);
    return NULL;
  }
  r->handle = handle;
  r->alive = 1;
  r->drop = drop;
  return (PyObject *)r;
}

static void kres_dealloc(PyObject *o) {
  kres *r = (kres *)o;
  if (r->alive) {
    r->alive = 0;
    r->drop(r->handle);
  }
  PyTypeObject *t = Py_TYPE(o);
  t->tp_free(o);
  Py_DECREF(t);
}

static PyObject *kres_close(PyObject *o, PyObject *unused) {
  (void)unused;
  kres *r = (kres *)o;
  if (r->alive) {
    r->alive = 0;
    r->drop(r->handle);
  }
  Py_RETURN_NONE;
}

static PyObject *kres_enter(PyObject *o, PyObject *unused) {
  (void)unused;
  Py_INCREF(o);
  return o;
}

static PyObject *kres_exit(PyObject *o, PyObject *args) {
  (void)args;
  return kres_close(o, NULL);
}

static PyObject *kres_closed(PyObject *o, void *unused) {
  (void)unused;
  return PyBool_FromLong(!((kres *)o)->alive);
}

static PyObject *kres_repr(PyObject *o) {
  kres *r = (kres *)o;
  if (!r->alive) {
    return PyUnicode_FromFormat("<%s closed>", Py_TYPE(o)->tp_name);
  }
  return PyUnicode_FromFormat("<%s handle %d>", Py_TYPE(o)->tp_name, (int)r->handle);
}

static PyGetSetDef kres_getset[] = {
    {"closed", kres_closed, NULL, "Whether the handle was dropped (or moved into a call).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define K_RES_METHODS                                                                             \
  {"close", kres_close, METH_NOARGS, "Drop the handle (the provider frees the resource)."},       \
      {"__enter__", kres_enter, METH_NOARGS, NULL}, {"__exit__", kres_exit, METH_VARARGS, NULL},

static PyObject *k_no_new(PyTypeObject *t, PyObject *args, PyObject *kwargs) {
  (void)args;
  (void)kwargs;
  PyErr_Format(PyExc_TypeError, "%s has no constructor in its WIT; functions of its interface return it",
               t->tp_name);
  return NULL;
}

// A resource type with `methods` and `tp_new` (NULL: no constructor).
K_UNUSED static PyTypeObject *k_resource_type(const char *name, const char *doc, PyMethodDef *methods,
                                              newfunc tp_new) {
  PyType_Slot slots[] = {
      {Py_tp_dealloc, (void *)kres_dealloc},
      {Py_tp_repr, (void *)kres_repr},
      {Py_tp_methods, methods},
      {Py_tp_getset, kres_getset},
      {Py_tp_doc, (void *)doc},
      {Py_tp_new, (void *)(tp_new ? tp_new : k_no_new)},
      {0, NULL},
  };
  PyType_Spec spec = {name, sizeof(kres), 0, Py_TPFLAGS_DEFAULT, slots};
  return (PyTypeObject *)PyType_FromSpec(&spec);
}

// Run generated Python source in a module's namespace.
K_UNUSED static int k_exec(PyObject *module, const char *src, const char *filename) {
  PyObject *d = PyModule_GetDict(module);
  if (PyDict_GetItemString(d, "__builtins__") == NULL &&
      PyDict_SetItemString(d, "__builtins__", PyEval_GetBuiltins()) < 0) {
    return -1;
  }
  PyObject *code = Py_CompileString(src, filename, Py_file_input);
  if (code == NULL) {
    return -1;
  }
  PyObject *r = PyEval_EvalCode(code, d, d);
  Py_DECREF(code);
  if (r == NULL) {
    return -1;
  }
  Py_DECREF(r);
  return 0;
}

// `module.name`, a new reference kept for the module's life.
K_UNUSED static PyObject *k_get(PyObject *module, const char *name) {
  PyObject *v = PyObject_GetAttrString(module, name);
  return v;
}

// The `n` items of iterable `seq` into `out[n]` (new references).
static int k_items(PyObject *seq, const char *what, PyObject **out, Py_ssize_t n) {
  PyObject *fast = PySequence_Fast(seq, what);
  if (fast == NULL) {
    return -1;
  }
  if (PySequence_Fast_GET_SIZE(fast) != n) {
    PyErr_Format(PyExc_RuntimeError, "%s has %zd items, the WIT %zd", what, PySequence_Fast_GET_SIZE(fast), n);
    Py_DECREF(fast);
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    out[i] = PySequence_Fast_GET_ITEM(fast, i);
    Py_INCREF(out[i]);
  }
  Py_DECREF(fast);
  return 0;
}

// A variant class's case classes (its `_cases`) into `out[n]`.
K_UNUSED static int k_get_items(PyObject *cls, const char *name, PyObject **out, Py_ssize_t n) {
  PyObject *t = PyObject_GetAttrString(cls, name);
  if (t == NULL) {
    return -1;
  }
  int rc = k_items(t, name, out, n);
  Py_DECREF(t);
  return rc;
}

// An enum class's members in definition order into `out[n]`.
K_UNUSED static int k_enum_members(PyObject *cls, PyObject **out, Py_ssize_t n) {
  return k_items(cls, "enum members", out, n);
}

// A new submodule `parent.name`, registered in sys.modules.
K_UNUSED static PyObject *k_submodule(PyObject *parent, const char *full, const char *name, const char *doc) {
  PyObject *m = PyModule_New(full);
  if (m == NULL) {
    return NULL;
  }
  if (doc != NULL) {
    PyObject *d = PyUnicode_FromString(doc);
    if (d == NULL || PyModule_AddObject(m, "__doc__", d) < 0) {
      Py_XDECREF(d);
      Py_DECREF(m);
      return NULL;
    }
  }
  PyObject *modules = PyImport_GetModuleDict();
  if (PyDict_SetItemString(modules, full, m) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  Py_INCREF(m);
  if (PyModule_AddObject(parent, name, m) < 0) {
    Py_DECREF(m);
    Py_DECREF(m);
    return NULL;
  }
  return m;
}

// A value wrapped in a class: `cls(value)`.
K_UNUSED static PyObject *k_call1(PyObject *cls, PyObject *value) {
  if (value == NULL) {
    return NULL;
  }
  PyObject *r = PyObject_CallOneArg(cls, value);
  Py_DECREF(value);
  return r;
}

// Raise `cls(value)` (stealing `value`; NULL value: None).
K_UNUSED static PyObject *k_raise(PyObject *cls, PyObject *value) {
  if (value == NULL) {
    if (PyErr_Occurred()) {
      return NULL;
    }
    value = Py_None;
    Py_INCREF(value);
  }
  PyObject *e = PyObject_CallOneArg(cls, value);
  Py_DECREF(value);
  if (e != NULL) {
    PyErr_SetObject(cls, e);
    Py_DECREF(e);
  }
  return NULL;
}
