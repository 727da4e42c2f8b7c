// SQLite's C API (the part CPython's `_sqlite3` module calls) over the WIT
// interface `pylon:sqlite/capi`, served by the SQLite provider. Databases,
// statements, blobs and backups are the provider's numbered handles wrapped
// in the structs `sqlite3.h` declares opaque; what SQLite hands out as
// pointers valid for a while (column names, the current row's text, error
// messages) is kept here. Every call that can reach user code (SQL
// functions, collations, the authorizer, the progress handler, the trace
// callback, destructors) returns an `outcome`; `run` answers the callbacks
// it is suspended on with the C callbacks registered here, until it is done.
#include <sqlite3.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pylon.h"

typedef pylon_sqlite_capi_value_t wit_value;
typedef pylon_sqlite_capi_outcome_t wit_outcome;
typedef pylon_sqlite_capi_answer_t wit_answer;
typedef pylon_sqlite_capi_reply_t wit_reply;

// ---- values: a column of the current row, or a function argument ----

// A value as SQLite's sqlite3_column_*/sqlite3_value_* present it: `conv`
// is made on demand (text and blob bytes with a NUL after them, a number
// rendered as text) and lives as long as the value.
typedef struct {
  const wit_value *v;
  char *conv;
  int conv_len;
} cell;

struct sqlite3_value {
  cell c;
};

static int cell_type(const cell *c) {
  if (c->v == NULL) return SQLITE_NULL;
  switch (c->v->tag) {
    case PYLON_SQLITE_CAPI_VALUE_INTEGER: return SQLITE_INTEGER;
    case PYLON_SQLITE_CAPI_VALUE_REAL: return SQLITE_FLOAT;
    case PYLON_SQLITE_CAPI_VALUE_TEXT: return SQLITE_TEXT;
    case PYLON_SQLITE_CAPI_VALUE_BLOB: return SQLITE_BLOB;
    default: return SQLITE_NULL;
  }
}

// The value as NUL-terminated text (NULL for SQL NULL or out of memory).
static const char *cell_text(cell *c) {
  if (c->conv) return c->conv;
  int t = cell_type(c);
  if (t == SQLITE_NULL) return NULL;
  if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
    const pylon_list_u8_t *l = t == SQLITE_TEXT ? &c->v->val.text : &c->v->val.blob;
    c->conv = malloc(l->len + 1);
    if (c->conv == NULL) return NULL;
    if (l->len) memcpy(c->conv, l->ptr, l->len);
    c->conv[l->len] = 0;
    c->conv_len = (int)l->len;
    return c->conv;
  }
  if (t == SQLITE_INTEGER) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)c->v->val.integer);
    c->conv = malloc((size_t)n + 1);
    if (c->conv == NULL) return NULL;
    memcpy(c->conv, buf, (size_t)n + 1);
    c->conv_len = n;
    return c->conv;
  }
  // A REAL's text is SQLite's own rendering, from the provider.
  pylon_list_u8_t text;
  pylon_sqlite_capi_real_text(c->v->val.real, &text);
  c->conv = malloc(text.len + 1);
  if (c->conv != NULL) {
    if (text.len) memcpy(c->conv, text.ptr, text.len);
    c->conv[text.len] = 0;
    c->conv_len = (int)text.len;
  }
  pylon_list_u8_free(&text);
  return c->conv;
}

// sqlite3_value_blob: a zero-length text or blob is a NULL pointer.
static const void *cell_blob(cell *c) {
  int t = cell_type(c);
  if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
    const pylon_list_u8_t *l = t == SQLITE_TEXT ? &c->v->val.text : &c->v->val.blob;
    return l->len ? l->ptr : NULL;
  }
  return cell_text(c);
}

static int cell_bytes(cell *c) {
  int t = cell_type(c);
  if (t == SQLITE_TEXT) return (int)c->v->val.text.len;
  if (t == SQLITE_BLOB) return (int)c->v->val.blob.len;
  if (t == SQLITE_NULL) return 0;
  return cell_text(c) ? c->conv_len : 0;
}

// SQLite's text-to-integer (sqlite3Atoi64): leading spaces, a sign, the
// digits that follow, saturated.
static sqlite3_int64 text_to_int64(const char *z) {
  if (z == NULL) return 0;
  while (*z == ' ' || *z == '\t' || *z == '\n' || *z == '\f' || *z == '\r') z++;
  int neg = 0;
  if (*z == '-' || *z == '+') neg = *z++ == '-';
  uint64_t u = 0;
  int over = 0;
  for (; *z >= '0' && *z <= '9'; z++) {
    if (u > (UINT64_MAX - 9) / 10) over = 1;
    u = u * 10 + (uint64_t)(*z - '0');
  }
  if (neg) return over || u > (uint64_t)INT64_MAX + 1 ? INT64_MIN : (sqlite3_int64)(0 - u);
  return over || u > (uint64_t)INT64_MAX ? INT64_MAX : (sqlite3_int64)u;
}

static sqlite3_int64 real_to_int64(double r) {
  if (isnan(r)) return 0;
  if (r <= (double)INT64_MIN) return INT64_MIN;
  if (r >= (double)INT64_MAX) return INT64_MAX;
  return (sqlite3_int64)r;
}

static sqlite3_int64 cell_int64(cell *c) {
  switch (cell_type(c)) {
    case SQLITE_INTEGER: return c->v->val.integer;
    case SQLITE_FLOAT: return real_to_int64(c->v->val.real);
    case SQLITE_TEXT:
    case SQLITE_BLOB: return text_to_int64(cell_text(c));
    default: return 0;
  }
}

static double cell_double(cell *c) {
  switch (cell_type(c)) {
    case SQLITE_INTEGER: return (double)c->v->val.integer;
    case SQLITE_FLOAT: return c->v->val.real;
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
      const char *z = cell_text(c);
      return z ? strtod(z, NULL) : 0.0;
    }
    default: return 0.0;
  }
}

static void cell_release(cell *c) {
  free(c->conv);
  c->conv = NULL;
}

// ---- handles ----

struct sqlite3 {
  uint32_t h;
  // The connection itself (until closed) plus each statement, blob and
  // backup of it: a closed connection's statements may still be finalized
  // (sqlite3_close_v2 leaves a zombie), so this stays until they are.
  int refs;
  int closed;
  char *errmsg;  // sqlite3_errmsg's answer, until the next call
  // Registry ids of the authorizer, progress handler and trace callback.
  uint32_t authorizer, progress, trace;
};

struct sqlite3_stmt {
  uint32_t h;  // 0: the statement a trace callback is given
  sqlite3 *db;
  int ncol, nparam, readonly;
  char **names, **decltypes, **params;
  // The row of the last step that returned SQLITE_ROW.
  pylon_sqlite_capi_list_value_t row;
  cell *cells;
  // A trace callback's statement: its sqlite3_expanded_sql.
  char *expanded;
};

struct sqlite3_blob {
  uint32_t h;
  sqlite3 *db;
};

struct sqlite3_backup {
  uint32_t h;
};

struct sqlite3_context {
  void *app;
  sqlite3 *db;
  uint64_t instance;
  void *local;  // aggregate context of a `final` with no step before it
  wit_answer result;
};

static void db_unref(sqlite3 *db);

// ---- the registry of callbacks: a user-data id is an index + 1 ----

typedef struct {
  int used;
  sqlite3 *db;
  void *app;
  void (*func)(sqlite3_context *, int, sqlite3_value **);
  void (*step)(sqlite3_context *, int, sqlite3_value **);
  void (*final)(sqlite3_context *);
  void (*value)(sqlite3_context *);
  void (*inverse)(sqlite3_context *, int, sqlite3_value **);
  int (*compare)(void *, int, const void *, int, const void *);
  int (*authorize)(void *, int, const char *, const char *, const char *, const char *);
  int (*progress)(void *);
  int (*trace)(unsigned, void *, void *, void *);
  void (*destroy)(void *);
} entry;

static entry *entries;
static size_t n_entries;

static uint32_t registry_add(const entry *e) {
  size_t i = 0;
  while (i < n_entries && entries[i].used) i++;
  if (i == n_entries) {
    size_t n = n_entries ? n_entries * 2 : 16;
    entry *grown = realloc(entries, n * sizeof *grown);
    if (grown == NULL) return 0;
    memset(grown + n_entries, 0, (n - n_entries) * sizeof *grown);
    entries = grown;
    n_entries = n;
  }
  entries[i] = *e;
  entries[i].used = 1;
  return (uint32_t)i + 1;
}

// A copy of entry `id` (callbacks may register others, moving the table).
static int registry_get(uint32_t id, entry *out) {
  if (id == 0 || id > n_entries || !entries[id - 1].used) return 0;
  *out = entries[id - 1];
  return 1;
}

static void registry_drop(uint32_t id) {
  if (id != 0 && id <= n_entries) memset(&entries[id - 1], 0, sizeof(entry));
}

// ---- aggregate contexts by instance ----

typedef struct {
  uint64_t instance;
  void *block;
} aggregate;

static aggregate *aggregates;
static size_t n_aggregates, cap_aggregates;

static aggregate *aggregate_find(uint64_t instance) {
  for (size_t i = 0; i < n_aggregates; i++)
    if (aggregates[i].instance == instance) return &aggregates[i];
  return NULL;
}

static void aggregate_drop(uint64_t instance) {
  aggregate *a = aggregate_find(instance);
  if (a == NULL) return;
  free(a->block);
  *a = aggregates[--n_aggregates];
}

void *sqlite3_aggregate_context(sqlite3_context *ctx, int n) {
  if (ctx == NULL) return NULL;
  if (ctx->instance == 0) {
    if (ctx->local == NULL && n > 0) ctx->local = calloc(1, (size_t)n);
    return ctx->local;
  }
  aggregate *a = aggregate_find(ctx->instance);
  if (a) return a->block;
  if (n <= 0) return NULL;
  if (n_aggregates == cap_aggregates) {
    size_t c = cap_aggregates ? cap_aggregates * 2 : 8;
    aggregate *grown = realloc(aggregates, c * sizeof *grown);
    if (grown == NULL) return NULL;
    aggregates = grown;
    cap_aggregates = c;
  }
  void *block = calloc(1, (size_t)n);
  if (block == NULL) return NULL;
  aggregates[n_aggregates].instance = ctx->instance;
  aggregates[n_aggregates].block = block;
  n_aggregates++;
  return block;
}

void *sqlite3_user_data(sqlite3_context *ctx) { return ctx ? ctx->app : NULL; }

sqlite3 *sqlite3_context_db_handle(sqlite3_context *ctx) { return ctx ? ctx->db : NULL; }

// ---- results of SQL functions ----

static void answer_release(wit_answer *a) {
  if (a->tag == PYLON_SQLITE_CAPI_ANSWER_VALUE) {
    if (a->val.value.tag == PYLON_SQLITE_CAPI_VALUE_TEXT) free(a->val.value.val.text.ptr);
    if (a->val.value.tag == PYLON_SQLITE_CAPI_VALUE_BLOB) free(a->val.value.val.blob.ptr);
  } else if (a->tag == PYLON_SQLITE_CAPI_ANSWER_ERROR) {
    free(a->val.error.f1.ptr);
  }
  memset(a, 0, sizeof *a);
}

static int is_error(sqlite3_context *ctx) { return ctx->result.tag == PYLON_SQLITE_CAPI_ANSWER_ERROR; }

static void set_value(sqlite3_context *ctx, const wit_value *v) {
  if (is_error(ctx)) return;  // as in SQLite, an error set stays set
  answer_release(&ctx->result);
  ctx->result.tag = PYLON_SQLITE_CAPI_ANSWER_VALUE;
  ctx->result.val.value = *v;
}

// Copies `n` bytes (a NULL `z`: none) into a list the answer owns.
static int copy_bytes(pylon_list_u8_t *out, const void *z, size_t n) {
  out->ptr = NULL;
  out->len = 0;
  if (z == NULL || n == 0) return 1;
  out->ptr = malloc(n);
  if (out->ptr == NULL) return 0;
  memcpy(out->ptr, z, n);
  out->len = n;
  return 1;
}

static void release_data(const void *z, void (*del)(void *)) {
  if (z != NULL && del != SQLITE_STATIC && del != SQLITE_TRANSIENT) del((void *)z);
}

static void set_error(sqlite3_context *ctx, int code, const char *msg, int n) {
  answer_release(&ctx->result);
  ctx->result.tag = PYLON_SQLITE_CAPI_ANSWER_ERROR;
  ctx->result.val.error.f0 = code;
  if (msg == NULL) msg = "";
  size_t len = n < 0 ? strlen(msg) : (size_t)n;
  copy_bytes(&ctx->result.val.error.f1, msg, len);
}

void sqlite3_result_null(sqlite3_context *ctx) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_NULL};
  set_value(ctx, &v);
}

void sqlite3_result_int64(sqlite3_context *ctx, sqlite3_int64 x) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_INTEGER};
  v.val.integer = x;
  set_value(ctx, &v);
}

void sqlite3_result_double(sqlite3_context *ctx, double x) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_REAL};
  v.val.real = x;
  set_value(ctx, &v);
}

static void result_bytes(sqlite3_context *ctx, uint8_t tag, const void *z, size_t n, void (*del)(void *)) {
  if (z == NULL) {
    sqlite3_result_null(ctx);
  } else if (!is_error(ctx)) {
    wit_value v = {.tag = tag};
    if (!copy_bytes(tag == PYLON_SQLITE_CAPI_VALUE_TEXT ? &v.val.text : &v.val.blob, z, n)) {
      set_error(ctx, SQLITE_NOMEM, "out of memory", -1);
    } else {
      set_value(ctx, &v);
    }
  }
  release_data(z, del);
}

void sqlite3_result_text(sqlite3_context *ctx, const char *z, int n, void (*del)(void *)) {
  result_bytes(ctx, PYLON_SQLITE_CAPI_VALUE_TEXT, z, z == NULL ? 0 : n < 0 ? strlen(z) : (size_t)n, del);
}

void sqlite3_result_blob(sqlite3_context *ctx, const void *z, int n, void (*del)(void *)) {
  // As in SQLite, a NULL pointer is SQL NULL, a non-NULL one with no bytes
  // a zero-length blob.
  result_bytes(ctx, PYLON_SQLITE_CAPI_VALUE_BLOB, z, n < 0 ? 0 : (size_t)n, del);
}

void sqlite3_result_error(sqlite3_context *ctx, const char *msg, int n) { set_error(ctx, SQLITE_ERROR, msg, n); }

void sqlite3_result_error_nomem(sqlite3_context *ctx) { set_error(ctx, SQLITE_NOMEM, "out of memory", -1); }

void sqlite3_result_error_toobig(sqlite3_context *ctx) { set_error(ctx, SQLITE_TOOBIG, "string or blob too big", -1); }

// ---- callbacks and the outcome loop ----

static char *dup_bytes(const pylon_list_u8_t *l) {
  char *s = malloc(l->len + 1);
  if (s == NULL) return NULL;
  if (l->len) memcpy(s, l->ptr, l->len);
  s[l->len] = 0;
  return s;
}

static char *dup_option(const pylon_option_list_u8_t *o) { return o->is_some ? dup_bytes(&o->val) : NULL; }

static void call_function(const pylon_sqlite_capi_func_call_t *call, wit_answer *answer) {
  entry e;
  if (!registry_get(call->user_data, &e)) return;  // unknown: NULL
  sqlite3_context ctx = {.app = e.app, .db = e.db, .instance = call->instance};
  int argc = (int)call->args.len;
  sqlite3_value stack_vals[8];
  sqlite3_value *stack_argv[8];
  sqlite3_value *vals = stack_vals;
  sqlite3_value **argv = stack_argv;
  if (argc > 8) {
    vals = calloc((size_t)argc, sizeof *vals);
    argv = calloc((size_t)argc, sizeof *argv);
    if (vals == NULL || argv == NULL) {
      free(vals);
      free(argv);
      answer->tag = PYLON_SQLITE_CAPI_ANSWER_ERROR;
      answer->val.error.f0 = SQLITE_NOMEM;
      return;
    }
  }
  for (int i = 0; i < argc; i++) {
    vals[i].c.v = &call->args.ptr[i];
    vals[i].c.conv = NULL;
    vals[i].c.conv_len = 0;
    argv[i] = &vals[i];
  }
  switch (call->kind) {
    case PYLON_SQLITE_CAPI_FUNC_KIND_SCALAR:
      if (e.func) e.func(&ctx, argc, argv);
      break;
    case PYLON_SQLITE_CAPI_FUNC_KIND_STEP:
      if (e.step) e.step(&ctx, argc, argv);
      break;
    case PYLON_SQLITE_CAPI_FUNC_KIND_FINAL:
      if (e.final) e.final(&ctx);
      break;
    case PYLON_SQLITE_CAPI_FUNC_KIND_VALUE:
      if (e.value) e.value(&ctx);
      break;
    case PYLON_SQLITE_CAPI_FUNC_KIND_INVERSE:
      if (e.inverse) e.inverse(&ctx, argc, argv);
      break;
  }
  if (call->kind == PYLON_SQLITE_CAPI_FUNC_KIND_FINAL && call->instance != 0) aggregate_drop(call->instance);
  for (int i = 0; i < argc; i++) cell_release(&vals[i].c);
  if (vals != stack_vals) {
    free(vals);
    free(argv);
  }
  free(ctx.local);
  *answer = ctx.result;
}

static int call_authorize(const pylon_sqlite_capi_authorize_call_t *call) {
  entry e;
  if (!registry_get(call->user_data, &e) || e.authorize == NULL) return SQLITE_OK;
  char *a1 = dup_option(&call->arg1), *a2 = dup_option(&call->arg2);
  char *a3 = dup_option(&call->arg3), *a4 = dup_option(&call->arg4);
  int rc = e.authorize(e.app, call->action, a1, a2, a3, a4);
  free(a1);
  free(a2);
  free(a3);
  free(a4);
  return rc;
}

static void call_trace(const pylon_sqlite_capi_trace_call_t *call) {
  entry e;
  if (!registry_get(call->user_data, &e) || e.trace == NULL) return;
  // The statement a trace callback sees: sqlite3_expanded_sql gives the
  // expansion SQLite made for it, sqlite3_db_handle its database.
  struct sqlite3_stmt stmt;
  memset(&stmt, 0, sizeof stmt);
  stmt.db = e.db;
  stmt.expanded = dup_option(&call->expanded);
  char *sql = dup_bytes(&call->sql);
  if (sql != NULL) e.trace(SQLITE_TRACE_STMT, e.app, &stmt, sql);
  free(sql);
  free(stmt.expanded);
}

static void answer_callback(const pylon_sqlite_capi_callback_t *cb, wit_answer *answer) {
  entry e;
  switch (cb->tag) {
    case PYLON_SQLITE_CAPI_CALLBACK_FUNCTION:
      call_function(&cb->val.function, answer);
      break;
    case PYLON_SQLITE_CAPI_CALLBACK_COMPARE: {
      const pylon_sqlite_capi_compare_call_t *c = &cb->val.compare;
      int r = 0;
      if (registry_get(c->user_data, &e) && e.compare)
        r = e.compare(e.app, (int)c->a.len, c->a.len ? c->a.ptr : (const void *)"", (int)c->b.len, c->b.len ? c->b.ptr : (const void *)"");
      answer->tag = PYLON_SQLITE_CAPI_ANSWER_INTEGER;
      answer->val.integer = r;
      break;
    }
    case PYLON_SQLITE_CAPI_CALLBACK_AUTHORIZE:
      answer->tag = PYLON_SQLITE_CAPI_ANSWER_INTEGER;
      answer->val.integer = call_authorize(&cb->val.authorize);
      break;
    case PYLON_SQLITE_CAPI_CALLBACK_PROGRESS:
      answer->tag = PYLON_SQLITE_CAPI_ANSWER_INTEGER;
      answer->val.integer = registry_get(cb->val.progress, &e) && e.progress ? e.progress(e.app) : 0;
      break;
    case PYLON_SQLITE_CAPI_CALLBACK_TRACE:
      call_trace(&cb->val.trace);
      break;
    case PYLON_SQLITE_CAPI_CALLBACK_DESTROY:
      if (registry_get(cb->val.destroy, &e)) {
        registry_drop(cb->val.destroy);
        if (e.destroy) e.destroy(e.app);
      }
      break;
  }
}

// Answers the callbacks `o` is suspended on until the call is done; the
// reply (its row included) is then the caller's.
static wit_reply run(wit_outcome *o) {
  while (o->tag == PYLON_SQLITE_CAPI_OUTCOME_CALLBACK) {
    uint32_t suspension = o->val.callback.f0;
    wit_answer answer;
    memset(&answer, 0, sizeof answer);
    answer.tag = PYLON_SQLITE_CAPI_ANSWER_NONE;
    answer_callback(&o->val.callback.f1, &answer);
    pylon_sqlite_capi_callback_free(&o->val.callback.f1);
    wit_outcome next;
    pylon_sqlite_capi_resume(suspension, &answer, &next);
    answer_release(&answer);
    *o = next;
  }
  return o->val.done;
}

// `run`, for a call whose reply carries no row.
static int run_code(wit_outcome *o) {
  wit_reply r = run(o);
  pylon_sqlite_capi_list_value_free(&r.row);
  return r.code;
}

// ---- library ----

static pylon_list_u8_t borrow(const char *s) {
  pylon_list_u8_t l = {(uint8_t *)s, s ? strlen(s) : 0};
  return l;
}

const char *sqlite3_libversion(void) {
  static char *version;
  if (version == NULL) {
    pylon_string_t s;
    pylon_sqlite_capi_libversion(&s);
    version = dup_bytes((const pylon_list_u8_t *)&s);
    pylon_string_free(&s);
  }
  return version ? version : "";
}

int sqlite3_libversion_number(void) {
  static int number;
  if (number == 0) number = pylon_sqlite_capi_libversion_number();
  return number;
}

int sqlite3_threadsafe(void) { return pylon_sqlite_capi_threadsafe(); }

int sqlite3_complete(const char *sql) {
  pylon_list_u8_t l = borrow(sql);
  return sql ? pylon_sqlite_capi_complete(&l) : 0;
}

typedef struct errstr_entry {
  int code;
  char *text;
  struct errstr_entry *next;
} errstr_entry;

const char *sqlite3_errstr(int code) {
  static errstr_entry *cache;
  for (errstr_entry *e = cache; e; e = e->next)
    if (e->code == code) return e->text;
  pylon_string_t s;
  pylon_sqlite_capi_errstr(code, &s);
  errstr_entry *e = malloc(sizeof *e);
  char *text = dup_bytes((const pylon_list_u8_t *)&s);
  pylon_string_free(&s);
  if (e == NULL || text == NULL) {
    free(e);
    free(text);
    return "out of memory";
  }
  e->code = code;
  e->text = text;
  e->next = cache;
  cache = e;
  return text;
}

int sqlite3_initialize(void) { return pylon_sqlite_capi_initialize(); }

int sqlite3_shutdown(void) { return pylon_sqlite_capi_shutdown(); }

int sqlite3_enable_shared_cache(int enable) { return pylon_sqlite_capi_enable_shared_cache(enable); }

void *sqlite3_malloc64(sqlite3_uint64 n) {
  // As SQLite's allocator: no block for zero bytes.
  if (n == 0 || n > SIZE_MAX) return NULL;
  return malloc((size_t)n);
}

void sqlite3_free(void *p) { free(p); }

int sqlite3_stricmp(const char *a, const char *b) {
  if (a == NULL) return b ? -1 : 0;
  if (b == NULL) return 1;
  const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
  for (;;) {
    int c = *x, d = *y;
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (d >= 'A' && d <= 'Z') d += 'a' - 'A';
    if (c != d || c == 0) return c - d;
    x++;
    y++;
  }
}

int sqlite3_sleep(int ms) {
  if (ms < 0) ms = 0;
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&t, &t) != 0) {
  }
  return ms;
}

// ---- connections ----

static void db_unref(sqlite3 *db) {
  if (--db->refs > 0) return;
  // Callbacks SQLite can no longer make: those it never destroys (the
  // authorizer, progress handler and trace callback; functions and
  // collations registered without a destructor).
  for (size_t i = 0; i < n_entries; i++)
    if (entries[i].used && entries[i].db == db) registry_drop((uint32_t)i + 1);
  free(db->errmsg);
  free(db);
}

// The provider resolves a relative path against its own working directory,
// not this program's (WASI's working directory is each module's libc's), so
// a relative database path or `file:` URI path is made absolute here. NULL
// when `filename` needs nothing (or on failure: it goes as it is).
static char *absolute_name(const char *filename, int flags) {
  if (filename[0] == 0 || filename[0] == '/' || strcmp(filename, ":memory:") == 0) return NULL;
  int uri = (flags & SQLITE_OPEN_URI) && strncmp(filename, "file:", 5) == 0;
  const char *path = uri ? filename + 5 : filename;
  if (uri) {
    size_t len = strcspn(path, "?#");
    // `file://authority/path` and `file:/path` are absolute; `file:` and
    // `file:?...` a temporary database, `file::memory:` an in-memory one.
    if (path[0] == '/' || len == 0 || (len == 8 && strncmp(path, ":memory:", 8) == 0)) return NULL;
  }
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
  // A URI's path is percent-encoded: so is the directory put before it.
  char *out = malloc(strlen(filename) + 3 * strlen(cwd) + 2);
  if (out == NULL) return NULL;
  char *o = out;
  if (uri) {
    memcpy(o, "file:", 5);
    o += 5;
    for (const unsigned char *c = (const unsigned char *)cwd; *c; c++) {
      if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || strchr("-._~/", *c)) {
        *o++ = (char)*c;
      } else {
        o += sprintf(o, "%%%02X", *c);
      }
    }
  } else {
    strcpy(o, cwd);
    o += strlen(cwd);
  }
  if (o[-1] != '/') *o++ = '/';
  strcpy(o, path);
  return out;
}

int sqlite3_open_v2(const char *filename, sqlite3 **out, int flags, const char *vfs) {
  (void)vfs;  // the provider's default VFS
  if (out == NULL) return SQLITE_MISUSE;
  *out = NULL;
  if (filename == NULL) filename = "";
  char *absolute = absolute_name(filename, flags);
  pylon_list_u8_t name = borrow(absolute ? absolute : filename);
  pylon_tuple2_s32_u32_t r;
  pylon_sqlite_capi_open(&name, flags, &r);
  free(absolute);
  if (r.f1 == 0) return r.f0;
  sqlite3 *db = calloc(1, sizeof *db);
  if (db == NULL) {
    wit_outcome o;
    pylon_sqlite_capi_close(r.f1, &o);
    run_code(&o);
    return SQLITE_NOMEM;
  }
  db->h = r.f1;
  db->refs = 1;
  *out = db;
  return r.f0;
}

int sqlite3_close_v2(sqlite3 *db) {
  if (db == NULL) return SQLITE_OK;
  if (db->closed) return SQLITE_MISUSE;
  wit_outcome o;
  pylon_sqlite_capi_close(db->h, &o);
  int rc = run_code(&o);
  if (rc == SQLITE_OK) {
    db->closed = 1;
    db_unref(db);
  }
  return rc;
}

// The provider closes connections as sqlite3_close_v2 does; CPython calls
// sqlite3_close only on a connection with no statements (a failed open).
int sqlite3_close(sqlite3 *db) { return sqlite3_close_v2(db); }

int sqlite3_errcode(sqlite3 *db) { return db ? pylon_sqlite_capi_errcode(db->h) : SQLITE_NOMEM; }

int sqlite3_extended_errcode(sqlite3 *db) { return db ? pylon_sqlite_capi_extended_errcode(db->h) : SQLITE_NOMEM; }

const char *sqlite3_errmsg(sqlite3 *db) {
  if (db == NULL) return sqlite3_errstr(SQLITE_NOMEM);
  pylon_list_u8_t l;
  pylon_sqlite_capi_errmsg(db->h, &l);
  char *msg = dup_bytes(&l);
  pylon_list_u8_free(&l);
  if (msg == NULL) return sqlite3_errstr(SQLITE_NOMEM);
  free(db->errmsg);
  db->errmsg = msg;
  return msg;
}

int sqlite3_changes(sqlite3 *db) { return pylon_sqlite_capi_changes(db->h); }

int sqlite3_total_changes(sqlite3 *db) { return pylon_sqlite_capi_total_changes(db->h); }

sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db) { return pylon_sqlite_capi_last_insert_rowid(db->h); }

int sqlite3_get_autocommit(sqlite3 *db) { return pylon_sqlite_capi_get_autocommit(db->h); }

int sqlite3_busy_timeout(sqlite3 *db, int ms) { return pylon_sqlite_capi_busy_timeout(db->h, ms); }

void sqlite3_interrupt(sqlite3 *db) {
  if (db) pylon_sqlite_capi_interrupt(db->h);
}

int sqlite3_limit(sqlite3 *db, int id, int value) { return pylon_sqlite_capi_limit(db->h, id, value); }

int sqlite3_exec(sqlite3 *db, const char *sql, int (*callback)(void *, int, char **, char **), void *arg, char **errmsg) {
  (void)arg;
  if (errmsg) *errmsg = NULL;
  if (db == NULL || callback != NULL) return SQLITE_MISUSE;  // no row callbacks over the interface
  if (sql == NULL) sql = "";
  pylon_list_u8_t l = borrow(sql);
  wit_outcome o;
  pylon_sqlite_capi_exec(db->h, &l, &o);
  int rc = run_code(&o);
  if (rc != SQLITE_OK && errmsg) {
    const char *msg = sqlite3_errmsg(db);
    *errmsg = malloc(strlen(msg) + 1);
    if (*errmsg) strcpy(*errmsg, msg);
  }
  return rc;
}

// Registers `e` for a create-* call; 0 when it has nothing to call.
static uint32_t register_for(sqlite3 *db, entry *e, int *nomem) {
  *nomem = 0;
  if (!e->func && !e->step && !e->final && !e->value && !e->inverse && !e->compare && !e->destroy) return 0;
  e->db = db;
  uint32_t id = registry_add(e);
  if (id == 0) *nomem = 1;
  return id;
}

// After a create-* call: a failed one keeps no reference to the user data
// (its destructor, if SQLite was to run it, came as a callback).
static void registered(uint32_t id, int rc) {
  if (rc != SQLITE_OK) registry_drop(id);
}

// Registers function `e` for `db` in `id`; out of memory, runs its
// destructor (as SQLite does when a function's creation fails) and says
// SQLITE_NOMEM.
static int register_function(sqlite3 *db, entry *e, uint32_t *id) {
  int nomem;
  *id = register_for(db, e, &nomem);
  if (!nomem) return SQLITE_OK;
  if (e->destroy) e->destroy(e->app);
  return SQLITE_NOMEM;
}

int sqlite3_create_function_v2(sqlite3 *db, const char *name, int n_arg, int flags, void *app, void (*func)(sqlite3_context *, int, sqlite3_value **),
                               void (*step)(sqlite3_context *, int, sqlite3_value **), void (*final)(sqlite3_context *), void (*destroy)(void *)) {
  if (db == NULL || name == NULL || (func && (step || final)) || (!func && (step != NULL) != (final != NULL))) {
    // SQLite's misuse checks, before any registration: it runs the
    // destructor as for any failure.
    if (destroy) destroy(app);
    return SQLITE_MISUSE;
  }
  entry e = {.app = app, .func = func, .step = step, .final = final, .destroy = destroy};
  uint32_t id;
  if (register_function(db, &e, &id) != SQLITE_OK) return SQLITE_NOMEM;
  pylon_list_u8_t l = borrow(name);
  wit_outcome o;
  pylon_sqlite_capi_create_function(db->h, &l, n_arg, flags, id, func != NULL, step != NULL, destroy != NULL, &o);
  int rc = run_code(&o);
  registered(id, rc);
  return rc;
}

int sqlite3_create_window_function(sqlite3 *db, const char *name, int n_arg, int flags, void *app, void (*step)(sqlite3_context *, int, sqlite3_value **),
                                   void (*final)(sqlite3_context *), void (*value)(sqlite3_context *),
                                   void (*inverse)(sqlite3_context *, int, sqlite3_value **), void (*destroy)(void *)) {
  int define = step != NULL;
  if (db == NULL || name == NULL || (step != NULL) != (final != NULL) || (value != NULL) != (inverse != NULL) || (value && !step)) {
    if (destroy) destroy(app);
    return SQLITE_MISUSE;
  }
  entry e = {.app = app, .step = step, .final = final, .value = value, .inverse = inverse, .destroy = destroy};
  uint32_t id;
  if (register_function(db, &e, &id) != SQLITE_OK) return SQLITE_NOMEM;
  pylon_list_u8_t l = borrow(name);
  wit_outcome o;
  pylon_sqlite_capi_create_window_function(db->h, &l, n_arg, flags, id, define, destroy != NULL, &o);
  int rc = run_code(&o);
  registered(id, rc);
  return rc;
}

int sqlite3_create_collation_v2(sqlite3 *db, const char *name, int rep, void *arg, int (*compare)(void *, int, const void *, int, const void *),
                                void (*destroy)(void *)) {
  (void)rep;  // the interface's collations are SQLITE_UTF8
  if (db == NULL || name == NULL) return SQLITE_MISUSE;
  entry e = {.app = arg, .compare = compare, .destroy = destroy};
  int nomem;
  uint32_t id = register_for(db, &e, &nomem);
  if (nomem) return SQLITE_NOMEM;
  pylon_list_u8_t l = borrow(name);
  wit_outcome o;
  pylon_sqlite_capi_create_collation(db->h, &l, id, compare != NULL, destroy != NULL, &o);
  int rc = run_code(&o);
  registered(id, rc);
  return rc;
}

// The registration of a connection's authorizer, progress handler or
// trace callback (0 when `set` is false: removing it); the caller drops the
// one it replaces once the provider has replaced it.
static uint32_t replace_slot(sqlite3 *db, const entry *e, int set, int *nomem) {
  *nomem = 0;
  if (!set) return 0;
  entry copy = *e;
  copy.db = db;
  uint32_t id = registry_add(&copy);
  if (id == 0) *nomem = 1;
  return id;
}

// After the provider answered `rc` for the registration `id` meant for the
// connection's `slot`: on success `id` replaces what the slot held, else
// `id` is dropped.
static int keep_slot(int rc, uint32_t id, uint32_t *slot) {
  if (rc != SQLITE_OK) {
    registry_drop(id);
    return rc;
  }
  registry_drop(*slot);
  *slot = id;
  return rc;
}

int sqlite3_set_authorizer(sqlite3 *db, int (*authorize)(void *, int, const char *, const char *, const char *, const char *), void *arg) {
  if (db == NULL) return SQLITE_MISUSE;
  entry e = {.app = arg, .authorize = authorize};
  int nomem;
  uint32_t id = replace_slot(db, &e, authorize != NULL, &nomem);
  if (nomem) return SQLITE_NOMEM;
  return keep_slot(pylon_sqlite_capi_set_authorizer(db->h, id ? &id : NULL), id, &db->authorizer);
}

void sqlite3_progress_handler(sqlite3 *db, int n, int (*progress)(void *), void *arg) {
  if (db == NULL) return;
  entry e = {.app = arg, .progress = progress};
  int nomem;
  uint32_t id = replace_slot(db, &e, progress != NULL && n > 0, &nomem);
  if (nomem) return;
  pylon_sqlite_capi_progress_handler(db->h, n, id ? &id : NULL);
  keep_slot(SQLITE_OK, id, &db->progress);
}

int sqlite3_trace_v2(sqlite3 *db, unsigned mask, int (*trace)(unsigned, void *, void *, void *), void *ctx) {
  if (db == NULL) return SQLITE_MISUSE;
  entry e = {.app = ctx, .trace = trace};
  int nomem;
  // Statement tracing is what the interface carries; other events are
  // never reported.
  uint32_t id = replace_slot(db, &e, trace != NULL && (mask & SQLITE_TRACE_STMT), &nomem);
  if (nomem) return SQLITE_NOMEM;
  return keep_slot(pylon_sqlite_capi_trace(db->h, id ? &id : NULL), id, &db->trace);
}

unsigned char *sqlite3_serialize(sqlite3 *db, const char *schema, sqlite3_int64 *size, unsigned int flags) {
  if (size) *size = -1;
  // SQLITE_SERIALIZE_NOCOPY: the provider's database is not in this
  // memory, so there is never a contiguous copy to point at; SQLite answers
  // NULL in that case too (the caller asks again for a copy).
  if (db == NULL || (flags & SQLITE_SERIALIZE_NOCOPY)) return NULL;
  pylon_list_u8_t name = borrow(schema ? schema : "main");
  pylon_list_u8_t data;
  if (!pylon_sqlite_capi_serialize(db->h, &name, &data)) return NULL;
  // sqlite3_free (free) releases it: a block of our own, never empty.
  unsigned char *copy = malloc(data.len ? data.len : 1);
  if (copy != NULL) {
    if (data.len) memcpy(copy, data.ptr, data.len);
    if (size) *size = (sqlite3_int64)data.len;
  }
  pylon_list_u8_free(&data);
  return copy;
}

int sqlite3_deserialize(sqlite3 *db, const char *schema, unsigned char *data, sqlite3_int64 size, sqlite3_int64 buf_size, unsigned flags) {
  (void)buf_size;  // the provider's copy is resizeable
  int rc;
  if (db == NULL || size < 0) {
    rc = SQLITE_MISUSE;
  } else {
    pylon_list_u8_t name = borrow(schema ? schema : "main");
    pylon_list_u8_t bytes = {data, data ? (size_t)size : 0};
    rc = pylon_sqlite_capi_deserialize(db->h, &name, &bytes);
  }
  // The bytes were copied across: the buffer SQLite would have owned.
  if (flags & SQLITE_DESERIALIZE_FREEONCLOSE) free(data);
  return rc;
}

// ---- statements ----

static void free_names(char **names, int n) {
  if (names == NULL) return;
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static void stmt_clear_row(sqlite3_stmt *s) {
  if (s->cells) {
    for (size_t i = 0; i < s->row.len; i++) cell_release(&s->cells[i]);
    free(s->cells);
    s->cells = NULL;
  }
  pylon_sqlite_capi_list_value_free(&s->row);
  s->row.ptr = NULL;
  s->row.len = 0;
}

static void stmt_clear_info(sqlite3_stmt *s) {
  free_names(s->names, s->ncol);
  free_names(s->decltypes, s->ncol);
  free_names(s->params, s->nparam);
  s->names = s->decltypes = s->params = NULL;
  s->ncol = s->nparam = 0;
}

// The statement's shape (column names, declared types, parameter names).
static int stmt_load_info(sqlite3_stmt *s) {
  pylon_sqlite_capi_statement_info_t info;
  pylon_sqlite_capi_info(s->h, &info);
  stmt_clear_info(s);
  int ok = 1;
  s->ncol = (int)info.column_names.len;
  s->nparam = (int)info.parameter_names.len;
  s->readonly = info.readonly;
  s->names = calloc(s->ncol ? (size_t)s->ncol : 1, sizeof(char *));
  s->decltypes = calloc(s->ncol ? (size_t)s->ncol : 1, sizeof(char *));
  s->params = calloc(s->nparam ? (size_t)s->nparam : 1, sizeof(char *));
  if (!s->names || !s->decltypes || !s->params) {
    ok = 0;
  } else {
    for (int i = 0; i < s->ncol; i++) {
      s->names[i] = dup_bytes(&info.column_names.ptr[i]);
      if (i < (int)info.column_decltypes.len) s->decltypes[i] = dup_option(&info.column_decltypes.ptr[i]);
    }
    for (int i = 0; i < s->nparam; i++) s->params[i] = dup_option(&info.parameter_names.ptr[i]);
  }
  pylon_sqlite_capi_statement_info_free(&info);
  if (!ok) {
    free(s->names);
    free(s->decltypes);
    free(s->params);
    s->names = s->decltypes = s->params = NULL;
    s->ncol = s->nparam = 0;
  }
  return ok;
}

int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **out, const char **tail) {
  if (out) *out = NULL;
  if (tail) *tail = sql;
  if (db == NULL || out == NULL || sql == NULL) return SQLITE_MISUSE;
  // nByte < 0: up to the NUL; else at most nByte bytes, ending at a NUL.
  size_t len = 0;
  if (n < 0) {
    len = strlen(sql);
  } else {
    while (len < (size_t)n && sql[len]) len++;
  }
  pylon_list_u8_t l = {(uint8_t *)sql, len};
  wit_outcome o;
  pylon_sqlite_capi_prepare(db->h, &l, &o);
  wit_reply r = run(&o);
  pylon_sqlite_capi_list_value_free(&r.row);
  if (tail) *tail = sql + (r.tail <= len ? r.tail : len);
  if (r.code != SQLITE_OK || r.handle == 0) return r.code;
  sqlite3_stmt *s = calloc(1, sizeof *s);
  if (s != NULL) s->h = r.handle;
  if (s == NULL || !stmt_load_info(s)) {
    free(s);
    wit_outcome f;
    pylon_sqlite_capi_finalize(r.handle, &f);
    run_code(&f);
    return SQLITE_NOMEM;
  }
  s->db = db;
  db->refs++;
  *out = s;
  return SQLITE_OK;
}

int sqlite3_step(sqlite3_stmt *s) {
  if (s == NULL || s->h == 0) return SQLITE_MISUSE;
  stmt_clear_row(s);
  wit_outcome o;
  pylon_sqlite_capi_step(s->h, &o);
  wit_reply r = run(&o);
  if (r.code != SQLITE_ROW) {
    pylon_sqlite_capi_list_value_free(&r.row);
    return r.code;
  }
  s->row = r.row;
  s->cells = calloc(r.row.len ? r.row.len : 1, sizeof(cell));
  if (s->cells == NULL) {
    stmt_clear_row(s);
    return SQLITE_NOMEM;
  }
  for (size_t i = 0; i < r.row.len; i++) s->cells[i].v = &r.row.ptr[i];
  // A statement SQLite prepared again (the schema changed) may have a new
  // shape.
  if ((int)r.row.len != s->ncol) stmt_load_info(s);
  return SQLITE_ROW;
}

int sqlite3_reset(sqlite3_stmt *s) {
  if (s == NULL || s->h == 0) return SQLITE_OK;
  stmt_clear_row(s);
  wit_outcome o;
  pylon_sqlite_capi_reset(s->h, &o);
  return run_code(&o);
}

int sqlite3_finalize(sqlite3_stmt *s) {
  if (s == NULL || s->h == 0) return SQLITE_OK;
  stmt_clear_row(s);
  wit_outcome o;
  pylon_sqlite_capi_finalize(s->h, &o);
  int rc = run_code(&o);
  stmt_clear_info(s);
  sqlite3 *db = s->db;
  free(s);
  db_unref(db);
  return rc;
}

sqlite3 *sqlite3_db_handle(sqlite3_stmt *s) { return s ? s->db : NULL; }

int sqlite3_stmt_readonly(sqlite3_stmt *s) { return s ? s->readonly : 1; }

int sqlite3_column_count(sqlite3_stmt *s) { return s ? s->ncol : 0; }

int sqlite3_data_count(sqlite3_stmt *s) { return s ? (int)s->row.len : 0; }

const char *sqlite3_column_name(sqlite3_stmt *s, int i) { return s && i >= 0 && i < s->ncol ? s->names[i] : NULL; }

const char *sqlite3_column_decltype(sqlite3_stmt *s, int i) { return s && i >= 0 && i < s->ncol ? s->decltypes[i] : NULL; }

int sqlite3_bind_parameter_count(sqlite3_stmt *s) { return s ? s->nparam : 0; }

const char *sqlite3_bind_parameter_name(sqlite3_stmt *s, int i) { return s && i >= 1 && i <= s->nparam ? s->params[i - 1] : NULL; }

// Column `i` of the current row; a NULL value when there is none.
static cell *column(sqlite3_stmt *s, int i) {
  static cell null_cell;
  if (s == NULL || s->cells == NULL || i < 0 || (size_t)i >= s->row.len) return &null_cell;
  return &s->cells[i];
}

int sqlite3_column_type(sqlite3_stmt *s, int i) { return cell_type(column(s, i)); }

sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *s, int i) { return cell_int64(column(s, i)); }

double sqlite3_column_double(sqlite3_stmt *s, int i) { return cell_double(column(s, i)); }

const unsigned char *sqlite3_column_text(sqlite3_stmt *s, int i) { return (const unsigned char *)cell_text(column(s, i)); }

const void *sqlite3_column_blob(sqlite3_stmt *s, int i) { return cell_blob(column(s, i)); }

int sqlite3_column_bytes(sqlite3_stmt *s, int i) { return cell_bytes(column(s, i)); }

static int bind(sqlite3_stmt *s, int i, wit_value *v) {
  if (s == NULL || s->h == 0) return SQLITE_MISUSE;
  return pylon_sqlite_capi_bind(s->h, i, v);
}

int sqlite3_bind_null(sqlite3_stmt *s, int i) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_NULL};
  return bind(s, i, &v);
}

int sqlite3_bind_int64(sqlite3_stmt *s, int i, sqlite3_int64 x) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_INTEGER};
  v.val.integer = x;
  return bind(s, i, &v);
}

int sqlite3_bind_double(sqlite3_stmt *s, int i, double x) {
  wit_value v = {.tag = PYLON_SQLITE_CAPI_VALUE_REAL};
  v.val.real = x;
  return bind(s, i, &v);
}

// Text and blobs are copied across by the call, so the data is released
// right after it, as SQLite releases data it no longer needs.
int sqlite3_bind_text(sqlite3_stmt *s, int i, const char *z, int n, void (*del)(void *)) {
  wit_value v = {.tag = z ? PYLON_SQLITE_CAPI_VALUE_TEXT : PYLON_SQLITE_CAPI_VALUE_NULL};
  if (z) {
    v.val.text.ptr = (uint8_t *)z;
    v.val.text.len = n < 0 ? strlen(z) : (size_t)n;
  }
  int rc = bind(s, i, &v);
  release_data(z, del);
  return rc;
}

int sqlite3_bind_blob(sqlite3_stmt *s, int i, const void *z, int n, void (*del)(void *)) {
  wit_value v = {.tag = z ? PYLON_SQLITE_CAPI_VALUE_BLOB : PYLON_SQLITE_CAPI_VALUE_NULL};
  if (z) {
    v.val.blob.ptr = (uint8_t *)z;
    v.val.blob.len = n < 0 ? 0 : (size_t)n;
  }
  int rc = bind(s, i, &v);
  release_data(z, del);
  return rc;
}

char *sqlite3_expanded_sql(sqlite3_stmt *s) {
  if (s == NULL) return NULL;
  if (s->h == 0) {
    // A trace callback's statement: the expansion SQLite made for it.
    if (s->expanded == NULL) return NULL;
    char *copy = malloc(strlen(s->expanded) + 1);
    if (copy) strcpy(copy, s->expanded);
    return copy;
  }
  pylon_list_u8_t l;
  if (!pylon_sqlite_capi_expanded_sql(s->h, &l)) return NULL;
  char *copy = dup_bytes(&l);
  pylon_list_u8_free(&l);
  return copy;
}

// ---- function arguments ----

int sqlite3_value_type(sqlite3_value *v) { return v ? cell_type(&v->c) : SQLITE_NULL; }

sqlite3_int64 sqlite3_value_int64(sqlite3_value *v) { return v ? cell_int64(&v->c) : 0; }

double sqlite3_value_double(sqlite3_value *v) { return v ? cell_double(&v->c) : 0.0; }

const unsigned char *sqlite3_value_text(sqlite3_value *v) { return v ? (const unsigned char *)cell_text(&v->c) : NULL; }

const void *sqlite3_value_blob(sqlite3_value *v) { return v ? cell_blob(&v->c) : NULL; }

int sqlite3_value_bytes(sqlite3_value *v) { return v ? cell_bytes(&v->c) : 0; }

// ---- incremental blob I/O ----

int sqlite3_blob_open(sqlite3 *db, const char *schema, const char *table, const char *col, sqlite3_int64 row, int flags, sqlite3_blob **out) {
  if (out) *out = NULL;
  if (db == NULL || out == NULL || table == NULL || col == NULL) return SQLITE_MISUSE;
  pylon_list_u8_t s = borrow(schema ? schema : "main"), t = borrow(table), c = borrow(col);
  wit_outcome o;
  pylon_sqlite_capi_blob_open(db->h, &s, &t, &c, row, flags != 0, &o);
  wit_reply r = run(&o);
  pylon_sqlite_capi_list_value_free(&r.row);
  if (r.code != SQLITE_OK || r.handle == 0) return r.code != SQLITE_OK ? r.code : SQLITE_ERROR;
  sqlite3_blob *b = malloc(sizeof *b);
  if (b == NULL) {
    pylon_sqlite_capi_blob_close(r.handle);
    return SQLITE_NOMEM;
  }
  b->h = r.handle;
  b->db = db;
  db->refs++;
  *out = b;
  return SQLITE_OK;
}

int sqlite3_blob_bytes(sqlite3_blob *b) { return b ? pylon_sqlite_capi_blob_bytes(b->h) : 0; }

int sqlite3_blob_read(sqlite3_blob *b, void *z, int n, int offset) {
  if (b == NULL) return SQLITE_MISUSE;
  pylon_list_u8_t data;
  int32_t err;
  if (!pylon_sqlite_capi_blob_read(b->h, offset, n, &data, &err)) return err;
  size_t len = n < 0 ? 0 : data.len <= (size_t)n ? data.len : (size_t)n;
  if (len) memcpy(z, data.ptr, len);
  pylon_list_u8_free(&data);
  return SQLITE_OK;
}

int sqlite3_blob_write(sqlite3_blob *b, const void *z, int n, int offset) {
  if (b == NULL) return SQLITE_MISUSE;
  pylon_list_u8_t data = {(uint8_t *)z, n < 0 ? 0 : (size_t)n};
  return pylon_sqlite_capi_blob_write(b->h, offset, &data);
}

int sqlite3_blob_close(sqlite3_blob *b) {
  if (b == NULL) return SQLITE_OK;
  int rc = pylon_sqlite_capi_blob_close(b->h);
  sqlite3 *db = b->db;
  free(b);
  db_unref(db);
  return rc;
}

// ---- online backup ----

sqlite3_backup *sqlite3_backup_init(sqlite3 *dest, const char *dest_name, sqlite3 *source, const char *source_name) {
  if (dest == NULL || source == NULL) return NULL;
  pylon_list_u8_t d = borrow(dest_name ? dest_name : "main"), s = borrow(source_name ? source_name : "main");
  uint32_t h = pylon_sqlite_capi_backup_init(dest->h, &d, source->h, &s);
  if (h == 0) return NULL;
  sqlite3_backup *b = malloc(sizeof *b);
  if (b == NULL) {
    pylon_sqlite_capi_backup_finish(h);
    return NULL;
  }
  b->h = h;
  return b;
}

int sqlite3_backup_step(sqlite3_backup *b, int pages) { return b ? pylon_sqlite_capi_backup_step(b->h, pages) : SQLITE_MISUSE; }

int sqlite3_backup_remaining(sqlite3_backup *b) { return b ? pylon_sqlite_capi_backup_remaining(b->h) : 0; }

int sqlite3_backup_pagecount(sqlite3_backup *b) { return b ? pylon_sqlite_capi_backup_pagecount(b->h) : 0; }

int sqlite3_backup_finish(sqlite3_backup *b) {
  if (b == NULL) return SQLITE_OK;
  int rc = pylon_sqlite_capi_backup_finish(b->h);
  free(b);
  return rc;
}
