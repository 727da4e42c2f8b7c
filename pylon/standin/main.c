// Stand-in for CPython as pylon's base: a WASI command that drives the
// caps' C functions, so a composed pylon can be run before CPython is in.
//
//   crc32c TEXT       CRC-32C of TEXT through the dynlink provider, twice
//   probe ID          resolve dynlink provider ID (fails for unknown ids)
//   id SCHEME         a new id from the multiplexer
//   sqlite            a table in an in-memory database: create, insert with
//                     bound parameters, select, close, use after close
//
// Exit status 0 on success, 1 with a message on stderr otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c_cap.h"
#include "id_mux_cap.h"
#include "sqlite_cap.h"

static int fail(const char *what, char *err) {
  fprintf(stderr, "%s: %s\n", what, err);
  free(err);
  return 1;
}

static int run_crc32c(const char *text) {
  char *err = NULL;
  if (crc32c_cap_init(&err) != 0) {
    return fail("init", err);
  }
  for (int i = 0; i < 2; i++) {
    uint32_t crc;
    if (crc32c_cap_compute((const uint8_t *)text, strlen(text), &crc, &err) != 0) {
      return fail("crc32c", err);
    }
    printf("crc32c(%s) = 0x%08X\n", text, crc);
  }
  printf("resolutions: %u\n", crc32c_cap_resolutions());
  return 0;
}

static int run_probe(const char *id) {
  char *err = NULL;
  if (crc32c_cap_probe(id, &err) != 0) {
    return fail("probe", err);
  }
  printf("provider %s: resolved\n", id);
  return 0;
}

static int run_id(const char *scheme) {
  char *out = NULL;
  char *err = NULL;
  if (id_mux_cap_dispatch(scheme, &out, &err) != 0) {
    return fail("id", err);
  }
  printf("%s\n", out);
  free(out);
  return 0;
}

static void print_value(const sqlite_cap_value *v) {
  switch (v->kind) {
  case SQLITE_CAP_NULL:
    printf("NULL");
    break;
  case SQLITE_CAP_INTEGER:
    printf("%lld", (long long)v->integer);
    break;
  case SQLITE_CAP_REAL:
    printf("%g", v->real);
    break;
  case SQLITE_CAP_TEXT:
    printf("'%.*s'", (int)v->len, (const char *)v->bytes);
    break;
  case SQLITE_CAP_BLOB:
    printf("x'");
    for (size_t i = 0; i < v->len; i++) {
      printf("%02x", v->bytes[i]);
    }
    printf("'");
    break;
  }
}

static int query(sqlite_cap_connection db, const char *sql, const sqlite_cap_value *params, size_t n, int print) {
  char *err = NULL;
  sqlite_cap_statement stmt;
  if (sqlite_cap_prepare(db, sql, &stmt, &err) != 0) {
    return fail("prepare", err);
  }
  sqlite_cap_rows rows;
  int rc = sqlite_cap_query(stmt, params, n, &rows, &err);
  sqlite_cap_statement_release(stmt);
  if (rc != 0) {
    return fail("query", err);
  }
  for (size_t r = 0; print && r < rows.rows; r++) {
    printf("row:");
    for (size_t c = 0; c < rows.columns; c++) {
      printf(" ");
      print_value(&rows.values[r * rows.columns + c]);
    }
    printf("\n");
  }
  sqlite_cap_rows_free(&rows);
  return 0;
}

static int run_sqlite(void) {
  char *err = NULL;
  sqlite_cap_connection db;
  if (sqlite_cap_open(":memory:", &db, &err) != 0) {
    return fail("open", err);
  }
  if (query(db, "create table t (a integer, b text, c real, d blob, e)", NULL, 0, 0)) {
    return 1;
  }
  // One prepared statement, bound and run for each row.
  sqlite_cap_statement insert;
  if (sqlite_cap_prepare(db, "insert into t values (?, ?, ?, ?, ?)", &insert, &err) != 0) {
    return fail("prepare", err);
  }
  for (int i = 1; i <= 3; i++) {
    char text[16];
    snprintf(text, sizeof text, "row %d", i);
    uint8_t blob[2] = {(uint8_t)i, 0xff};
    sqlite_cap_value params[5] = {
        {.kind = SQLITE_CAP_INTEGER, .integer = i * 10},
        {.kind = SQLITE_CAP_TEXT, .bytes = (uint8_t *)text, .len = strlen(text)},
        {.kind = SQLITE_CAP_REAL, .real = i + 0.5},
        {.kind = SQLITE_CAP_BLOB, .bytes = blob, .len = 2},
        {.kind = SQLITE_CAP_NULL},
    };
    sqlite_cap_rows rows;
    if (sqlite_cap_query(insert, params, 5, &rows, &err) != 0) {
      return fail("insert", err);
    }
    sqlite_cap_rows_free(&rows);
  }
  sqlite_cap_statement_release(insert);
  sqlite_cap_value min = {.kind = SQLITE_CAP_INTEGER, .integer = 20};
  if (query(db, "select a, b, c, d, e from t where a >= ? order by a", &min, 1, 1)) {
    return 1;
  }
  sqlite_cap_close(db);
  sqlite_cap_statement after;
  if (sqlite_cap_prepare(db, "select 1", &after, &err) == 0) {
    fprintf(stderr, "prepare after close succeeded\n");
    return 1;
  }
  printf("after close: %s\n", err);
  free(err);
  sqlite_cap_connection_release(db);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "crc32c") == 0) {
    return run_crc32c(argv[2]);
  }
  if (argc == 3 && strcmp(argv[1], "probe") == 0) {
    return run_probe(argv[2]);
  }
  if (argc == 3 && strcmp(argv[1], "id") == 0) {
    return run_id(argv[2]);
  }
  if (argc == 2 && strcmp(argv[1], "sqlite") == 0) {
    return run_sqlite();
  }
  fprintf(stderr, "usage: pylon crc32c TEXT | probe ID | id SCHEME | sqlite\n");
  return 2;
}

// Linked with -nostartfiles: run the constructors once, then main (lld 14
// would otherwise wrap every export in constructor calls).
extern void __wasm_call_ctors(void);
extern int __main_void(void);

__attribute__((export_name("_start"))) void _start(void) {
  __wasm_call_ctors();
  exit(__main_void());
}
