// `_sqlite_cap`: connection and prepared-statement handles over the
// pylon:sqlite/database interface.
#include <stdlib.h>
#include <string.h>

#include "pylon.h"
#include "sqlite_cap.h"

typedef pylon_sqlite_database_own_connection_t own_conn;
typedef pylon_sqlite_database_own_statement_t own_stmt;

static char *take(pylon_string_t *s) {
  char *m = malloc(s->len + 1);
  memcpy(m, s->ptr, s->len);
  m[s->len] = 0;
  pylon_string_free(s);
  return m;
}

static pylon_string_t borrow_str(const char *s) { return (pylon_string_t){(uint8_t *)s, strlen(s)}; }

int sqlite_cap_open(const char *path, sqlite_cap_connection *out, char **err) {
  pylon_string_t p = borrow_str(path);
  own_conn c;
  pylon_string_t e;
  if (!pylon_sqlite_database_static_connection_open(&p, &c, &e)) {
    *err = take(&e);
    return -1;
  }
  *out = c.__handle;
  return 0;
}

int sqlite_cap_prepare(sqlite_cap_connection conn, const char *sql, sqlite_cap_statement *out, char **err) {
  pylon_string_t q = borrow_str(sql);
  own_stmt s;
  pylon_string_t e;
  pylon_sqlite_database_borrow_connection_t self = {conn};
  if (!pylon_sqlite_database_method_connection_prepare(self, &q, &s, &e)) {
    *err = take(&e);
    return -1;
  }
  *out = s.__handle;
  return 0;
}

int sqlite_cap_query(sqlite_cap_statement stmt, const sqlite_cap_value *params, size_t n, sqlite_cap_rows *rows,
                     char **err) {
  pylon_sqlite_database_value_t *wire = calloc(n ? n : 1, sizeof *wire);
  for (size_t i = 0; i < n; i++) {
    const sqlite_cap_value *v = &params[i];
    switch (v->kind) {
    case SQLITE_CAP_NULL:
      wire[i].tag = PYLON_SQLITE_DATABASE_VALUE_NULL;
      break;
    case SQLITE_CAP_INTEGER:
      wire[i].tag = PYLON_SQLITE_DATABASE_VALUE_INTEGER;
      wire[i].val.integer = v->integer;
      break;
    case SQLITE_CAP_REAL:
      wire[i].tag = PYLON_SQLITE_DATABASE_VALUE_REAL;
      wire[i].val.real = v->real;
      break;
    case SQLITE_CAP_TEXT:
      wire[i].tag = PYLON_SQLITE_DATABASE_VALUE_TEXT;
      wire[i].val.text = (pylon_string_t){v->bytes, v->len};
      break;
    case SQLITE_CAP_BLOB:
      wire[i].tag = PYLON_SQLITE_DATABASE_VALUE_BLOB;
      wire[i].val.blob = (pylon_list_u8_t){v->bytes, v->len};
      break;
    }
  }
  pylon_sqlite_database_list_value_t list = {wire, n};
  pylon_sqlite_database_list_list_value_t ret;
  pylon_string_t e;
  pylon_sqlite_database_borrow_statement_t self = {stmt};
  bool ok = pylon_sqlite_database_method_statement_query(self, &list, &ret, &e);
  free(wire);
  if (!ok) {
    *err = take(&e);
    return -1;
  }
  size_t columns = ret.len ? ret.ptr[0].len : 0;
  rows->rows = ret.len;
  rows->columns = columns;
  rows->values = calloc(ret.len * columns + 1, sizeof(sqlite_cap_value));
  for (size_t r = 0; r < ret.len; r++) {
    for (size_t c = 0; c < columns && c < ret.ptr[r].len; c++) {
      pylon_sqlite_database_value_t *w = &ret.ptr[r].ptr[c];
      sqlite_cap_value *v = &rows->values[r * columns + c];
      switch (w->tag) {
      case PYLON_SQLITE_DATABASE_VALUE_INTEGER:
        v->kind = SQLITE_CAP_INTEGER;
        v->integer = w->val.integer;
        break;
      case PYLON_SQLITE_DATABASE_VALUE_REAL:
        v->kind = SQLITE_CAP_REAL;
        v->real = w->val.real;
        break;
      case PYLON_SQLITE_DATABASE_VALUE_TEXT:
        v->kind = SQLITE_CAP_TEXT;
        v->bytes = malloc(w->val.text.len + 1);
        memcpy(v->bytes, w->val.text.ptr, w->val.text.len);
        v->len = w->val.text.len;
        break;
      case PYLON_SQLITE_DATABASE_VALUE_BLOB:
        v->kind = SQLITE_CAP_BLOB;
        v->bytes = malloc(w->val.blob.len + 1);
        memcpy(v->bytes, w->val.blob.ptr, w->val.blob.len);
        v->len = w->val.blob.len;
        break;
      default:
        v->kind = SQLITE_CAP_NULL;
      }
    }
  }
  pylon_sqlite_database_list_list_value_free(&ret);
  return 0;
}

void sqlite_cap_rows_free(sqlite_cap_rows *rows) {
  for (size_t i = 0; i < rows->rows * rows->columns; i++) {
    free(rows->values[i].bytes);
  }
  free(rows->values);
  rows->values = NULL;
  rows->rows = rows->columns = 0;
}

void sqlite_cap_close(sqlite_cap_connection conn) {
  pylon_sqlite_database_borrow_connection_t self = {conn};
  pylon_sqlite_database_method_connection_close(self);
}

void sqlite_cap_statement_release(sqlite_cap_statement stmt) {
  pylon_sqlite_database_statement_drop_own((own_stmt){stmt});
}

void sqlite_cap_connection_release(sqlite_cap_connection conn) {
  pylon_sqlite_database_connection_drop_own((own_conn){conn});
}
