// The CPython module `_id_mux_cap`: `dispatch(scheme)` over the one
// multiplexer interface.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "id_mux_cap.h"

static PyObject *dispatch(PyObject *self, PyObject *arg) {
  (void)self;
  const char *scheme = PyUnicode_AsUTF8(arg);
  if (scheme == NULL) {
    return NULL;
  }
  char *out = NULL;
  char *err = NULL;
  if (id_mux_cap_dispatch(scheme, &out, &err) != 0) {
    PyErr_SetString(PyExc_ValueError, err);
    free(err);
    return NULL;
  }
  PyObject *r = PyUnicode_FromString(out);
  free(out);
  return r;
}

static PyMethodDef methods[] = {
    {"dispatch", dispatch, METH_O, "A new id of `scheme` (ulid, nanoid, ksuid); ValueError otherwise."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_id_mux_cap", NULL, -1, methods};

PyMODINIT_FUNC PyInit__id_mux_cap(void) { return PyModule_Create(&module); }
