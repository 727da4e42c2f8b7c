// Hand-written C beside the generated module: `_kitchen_cap.live_via_c()`
// calls the provider through the C bindings (`pylon.h`) directly, and the
// generated module's init adds it through `_kitchen_cap_extend`.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pylon.h"

static PyObject *live_via_c(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromUnsignedLong(kiln_kitchen_types_live_counters());
}

static PyMethodDef extra[] = {
    {"live_via_c", live_via_c, METH_NOARGS, "live-counters, called from hand-written C."},
    {NULL, NULL, 0, NULL},
};

int _kitchen_cap_extend(PyObject *module) { return PyModule_AddFunctions(module, extra); }
