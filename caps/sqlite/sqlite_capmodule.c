// The CPython module `_sqlite_cap`: connections (capsules owning a provider
// handle) and `execute(conn, sql, params)` through a prepared statement.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sqlite_cap.h"

static PyObject *Error;

#define CAPSULE "_sqlite_cap.connection"

static PyObject *fail(char *err) {
  PyErr_SetString(Error, err);
  free(err);
  return NULL;
}

static void release(PyObject *capsule) {
  sqlite_cap_connection *c = PyCapsule_GetPointer(capsule, CAPSULE);
  if (c != NULL) {
    sqlite_cap_connection_release(*c);
    free(c);
  }
}

static int connection_of(PyObject *capsule, sqlite_cap_connection *out) {
  sqlite_cap_connection *c = PyCapsule_GetPointer(capsule, CAPSULE);
  if (c == NULL) {
    return -1;
  }
  *out = *c;
  return 0;
}

static PyObject *open_db(PyObject *self, PyObject *arg) {
  (void)self;
  const char *path = PyUnicode_AsUTF8(arg);
  if (path == NULL) {
    return NULL;
  }
  sqlite_cap_connection conn;
  char *err = NULL;
  if (sqlite_cap_open(path, &conn, &err) != 0) {
    return fail(err);
  }
  sqlite_cap_connection *c = malloc(sizeof *c);
  *c = conn;
  return PyCapsule_New(c, CAPSULE, release);
}

static int to_value(PyObject *o, sqlite_cap_value *v) {
  memset(v, 0, sizeof *v);
  if (o == Py_None) {
    v->kind = SQLITE_CAP_NULL;
  } else if (PyLong_Check(o)) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
      PyErr_SetString(Error, "integer parameter does not fit in 64 bits");
      return -1;
    }
    v->kind = SQLITE_CAP_INTEGER;
    v->integer = x;
  } else if (PyFloat_Check(o)) {
    v->kind = SQLITE_CAP_REAL;
    v->real = PyFloat_AsDouble(o);
  } else if (PyUnicode_Check(o)) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) {
      return -1;
    }
    v->kind = SQLITE_CAP_TEXT;
    v->bytes = (uint8_t *)s;
    v->len = (size_t)n;
  } else if (PyBytes_Check(o)) {
    v->kind = SQLITE_CAP_BLOB;
    v->bytes = (uint8_t *)PyBytes_AS_STRING(o);
    v->len = (size_t)PyBytes_GET_SIZE(o);
  } else {
    PyErr_Format(Error, "unsupported parameter type: %s", Py_TYPE(o)->tp_name);
    return -1;
  }
  return 0;
}

static PyObject *from_value(const sqlite_cap_value *v) {
  switch (v->kind) {
  case SQLITE_CAP_INTEGER:
    return PyLong_FromLongLong(v->integer);
  case SQLITE_CAP_REAL:
    return PyFloat_FromDouble(v->real);
  case SQLITE_CAP_TEXT:
    return PyUnicode_DecodeUTF8((const char *)v->bytes, (Py_ssize_t)v->len, "replace");
  case SQLITE_CAP_BLOB:
    return PyBytes_FromStringAndSize((const char *)v->bytes, (Py_ssize_t)v->len);
  default:
    Py_RETURN_NONE;
  }
}

// execute(conn, sql, params: tuple) -> list of row tuples
static PyObject *execute(PyObject *self, PyObject *args) {
  (void)self;
  PyObject *capsule;
  const char *sql;
  PyObject *params;
  if (!PyArg_ParseTuple(args, "OsO!", &capsule, &sql, &PyTuple_Type, &params)) {
    return NULL;
  }
  sqlite_cap_connection conn;
  if (connection_of(capsule, &conn) < 0) {
    return NULL;
  }
  // Bytes-like parameters other than bytes become bytes first.
  PyObject *fixed = PyTuple_New(PyTuple_GET_SIZE(params));
  if (fixed == NULL) {
    return NULL;
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(params); i++) {
    PyObject *p = PyTuple_GET_ITEM(params, i);
    if (PyByteArray_Check(p) || PyMemoryView_Check(p)) {
      p = PyBytes_FromObject(p);
      if (p == NULL) {
        Py_DECREF(fixed);
        return NULL;
      }
    } else {
      Py_INCREF(p);
    }
    PyTuple_SET_ITEM(fixed, i, p);
  }
  size_t n = (size_t)PyTuple_GET_SIZE(fixed);
  sqlite_cap_value *values = calloc(n ? n : 1, sizeof *values);
  for (size_t i = 0; i < n; i++) {
    if (to_value(PyTuple_GET_ITEM(fixed, (Py_ssize_t)i), &values[i]) < 0) {
      free(values);
      Py_DECREF(fixed);
      return NULL;
    }
  }
  char *err = NULL;
  sqlite_cap_statement stmt;
  if (sqlite_cap_prepare(conn, sql, &stmt, &err) != 0) {
    free(values);
    Py_DECREF(fixed);
    return fail(err);
  }
  sqlite_cap_rows rows;
  int rc = sqlite_cap_query(stmt, values, n, &rows, &err);
  sqlite_cap_statement_release(stmt);
  free(values);
  Py_DECREF(fixed);
  if (rc != 0) {
    return fail(err);
  }
  PyObject *list = PyList_New((Py_ssize_t)rows.rows);
  for (size_t r = 0; list != NULL && r < rows.rows; r++) {
    PyObject *row = PyTuple_New((Py_ssize_t)rows.columns);
    if (row == NULL) {
      Py_CLEAR(list);
      break;
    }
    for (size_t c = 0; c < rows.columns; c++) {
      PyObject *v = from_value(&rows.values[r * rows.columns + c]);
      if (v == NULL) {
        Py_DECREF(row);
        Py_CLEAR(list);
        break;
      }
      PyTuple_SET_ITEM(row, (Py_ssize_t)c, v);
    }
    if (list != NULL) {
      PyList_SET_ITEM(list, (Py_ssize_t)r, row);
    }
  }
  sqlite_cap_rows_free(&rows);
  return list;
}

static PyObject *close_db(PyObject *self, PyObject *capsule) {
  (void)self;
  sqlite_cap_connection conn;
  if (connection_of(capsule, &conn) < 0) {
    return NULL;
  }
  sqlite_cap_close(conn);
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"open", open_db, METH_O, "Open a database; returns a connection handle."},
    {"execute", execute, METH_VARARGS, "execute(conn, sql, params) -> list of row tuples."},
    {"close", close_db, METH_O, "Close a connection; later use raises Error."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_sqlite_cap", NULL, -1, methods};

PyMODINIT_FUNC PyInit__sqlite_cap(void) {
  PyObject *m = PyModule_Create(&module);
  if (m == NULL) {
    return NULL;
  }
  Error = PyErr_NewException("pylon_sqlite.Error", PyExc_Exception, NULL);
  if (Error == NULL || PyModule_AddObjectRef(m, "Error", Error) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
