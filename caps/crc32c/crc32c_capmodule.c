// The CPython module `_crc32c_dynlink_cap`: resolves its provider once at
// import, then `compute(data)` invokes it.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "crc32c_cap.h"

static PyObject *raise(PyObject *type, char *err) {
  PyErr_SetString(type, err);
  free(err);
  return NULL;
}

static PyObject *compute(PyObject *self, PyObject *arg) {
  (void)self;
  Py_buffer view;
  if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
    return NULL;
  }
  uint32_t crc;
  char *err = NULL;
  int rc = crc32c_cap_compute(view.buf, (size_t)view.len, &crc, &err);
  PyBuffer_Release(&view);
  if (rc != 0) {
    return raise(PyExc_RuntimeError, err);
  }
  return PyLong_FromUnsignedLong(crc);
}

static PyObject *probe(PyObject *self, PyObject *arg) {
  (void)self;
  const char *id = PyUnicode_AsUTF8(arg);
  if (id == NULL) {
    return NULL;
  }
  char *err = NULL;
  if (crc32c_cap_probe(id, &err) != 0) {
    return raise(PyExc_LookupError, err);
  }
  Py_RETURN_NONE;
}

static PyObject *resolutions(PyObject *self, PyObject *unused) {
  (void)self;
  (void)unused;
  return PyLong_FromUnsignedLong(crc32c_cap_resolutions());
}

static PyMethodDef methods[] = {
    {"compute", compute, METH_O, "CRC-32C of a bytes-like object, through the dynlink provider."},
    {"probe", probe, METH_O, "Resolve the provider registered as `id`; LookupError naming it if none."},
    {"resolutions", resolutions, METH_NOARGS, "How many times the provider was resolved."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_crc32c_dynlink_cap", NULL, -1, methods};

PyMODINIT_FUNC PyInit__crc32c_dynlink_cap(void) {
  char *err = NULL;
  if (crc32c_cap_init(&err) != 0) {
    return raise(PyExc_ImportError, err);
  }
  return PyModule_Create(&module);
}
