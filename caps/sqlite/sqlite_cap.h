// The C side of `_sqlite_cap`: SQLite connections and prepared statements
// held as resource handles of the SQLite provider plugged into pylon.
//
// Errors: functions return 0 on success, or -1 and set `*err` to a message
// the caller frees with `free`.
#ifndef SQLITE_CAP_H
#define SQLITE_CAP_H

#include <stddef.h>
#include <stdint.h>

enum sqlite_cap_kind { SQLITE_CAP_NULL, SQLITE_CAP_INTEGER, SQLITE_CAP_REAL, SQLITE_CAP_TEXT, SQLITE_CAP_BLOB };

// One value: a parameter to bind, or a column of a row. `bytes`/`len` hold
// text (UTF-8, not NUL-terminated) and blobs.
typedef struct {
  enum sqlite_cap_kind kind;
  int64_t integer;
  double real;
  uint8_t *bytes;
  size_t len;
} sqlite_cap_value;

// Rows of a query: `rows * columns` values, row-major.
typedef struct {
  size_t rows;
  size_t columns;
  sqlite_cap_value *values;
} sqlite_cap_rows;

// Handles (the provider's resources). 0 is never a valid handle.
typedef int32_t sqlite_cap_connection;
typedef int32_t sqlite_cap_statement;

int sqlite_cap_open(const char *path, sqlite_cap_connection *out, char **err);
int sqlite_cap_prepare(sqlite_cap_connection conn, const char *sql, sqlite_cap_statement *out, char **err);
// Bind `params` (qmark order), run, and return every row.
int sqlite_cap_query(sqlite_cap_statement stmt, const sqlite_cap_value *params, size_t n, sqlite_cap_rows *rows,
                     char **err);
void sqlite_cap_rows_free(sqlite_cap_rows *rows);
// Close the database; the handle stays valid (later calls fail cleanly).
void sqlite_cap_close(sqlite_cap_connection conn);
void sqlite_cap_statement_release(sqlite_cap_statement stmt);
void sqlite_cap_connection_release(sqlite_cap_connection conn);

#endif
