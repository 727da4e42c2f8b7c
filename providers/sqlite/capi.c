// pylon:sqlite/capi: SQLite's C API as a provider component, call for call
// (see sqlite.wit), over SQLite's amalgamation.
//
// Handles. Databases, statements, blobs and backups live in tables here;
// a handle is (generation << 20 | index + 1), so 0 is never one and a
// stale handle (its slot reused) is refused. A bad handle gives
// SQLITE_MISUSE (or what SQLite's API armor returns for NULL: 0, -1).
//
// Callbacks (suspension). SQLite calls user code through function
// pointers; the cap's code cannot be called from here (no re-entering the
// caller), so every export that returns `outcome` does its SQLite work in a
// "run": a coroutine made with Binaryen's Asyncify, driven from inside
// this module. The run has its own C stack (SQLite's frames keep pointers
// into it) and its own Asyncify save buffer. When SQLite calls a
// trampoline (xFunc, xStep, ..., xCompare, the authorizer, the progress
// handler, trace, xDestroy), the trampoline stores the callback in the run
// and calls `suspend`, which unwinds the wasm stack into the save buffer;
// the export returns `callback((id, ...))`. `resume(id, answer)` rewinds
// the run: execution continues inside the trampoline, which applies the
// answer, and SQLite goes on until the next callback or the end of the
// original call, whose reply `resume` returns. Runs nest (a callback may
// call the provider again), are resumed last-suspended-first, and are at
// most MAX_RUNS deep: beyond that a call runs without suspending and its
// callbacks fail (functions: an error result; authorizer: SQLITE_DENY).
// Exports that return no outcome (serialize, deserialize, blob-close,
// backup-finish, ...) can still make SQLite call back (the authorizer for
// deserialize's internal ATTACH, the destructors of a zombie connection's
// functions): there the authorizer allows, the progress handler continues,
// trace is skipped, and a destructor's `destroy` callback is delivered at
// the start of the next call that returns an outcome.
//
// Files. WASI has no file locking and no mmap. SQLite's WASI support
// (SQLITE_WASI) leaves mmap out; its default VFS there would be
// `unix-dotfile` (lock directories next to the database, left behind when
// an instance dies). This build makes `unix` the default VFS
// (-DSQLITE_DEFAULT_UNIX_VFS) with POSIX advisory locks that always
// succeed (its `fcntl` system call replaced): SQLite's own in-process lock
// tables still order the connections of this instance, nothing locks
// across processes. Randomness comes from WASI's random_get.

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi_provider.h"
#include "sqlite3.h"

typedef capi_provider_list_u8_t bytes_t;
typedef exports_pylon_sqlite_capi_value_t value_t;
typedef exports_pylon_sqlite_capi_list_value_t values_t;
typedef exports_pylon_sqlite_capi_callback_t callback_t;
typedef exports_pylon_sqlite_capi_answer_t answer_t;
typedef exports_pylon_sqlite_capi_reply_t reply_t;
typedef exports_pylon_sqlite_capi_outcome_t outcome_t;
typedef capi_provider_option_list_u8_t opt_bytes_t;

// ---------------------------------------------------------------- memory

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();
  return p;
}

// A list for the caller (freed by the bindings' post-return when len > 0).
static bytes_t bytes_dup(const void *p, size_t n) {
  bytes_t b = {NULL, 0};
  if (p && n) {
    b.ptr = xmalloc(n);
    memcpy(b.ptr, p, n);
    b.len = n;
  }
  return b;
}

static bytes_t bytes_str(const char *s) { return bytes_dup(s, s ? strlen(s) : 0); }

static opt_bytes_t opt_str(const char *s) {
  opt_bytes_t o = {false, {NULL, 0}};
  if (s) {
    o.is_some = true;
    o.val = bytes_str(s);
  }
  return o;
}

// Parameters are owned by the callee; an empty list's pointer is not an
// allocation.
static void bytes_free(bytes_t *b) {
  if (b->len) free(b->ptr);
  b->ptr = NULL;
  b->len = 0;
}

// A NUL-terminated copy of a byte list, which is freed.
static char *take_cstr(bytes_t *b) {
  char *s = xmalloc(b->len + 1);
  if (b->len) memcpy(s, b->ptr, b->len);
  s[b->len] = 0;
  bytes_free(b);
  return s;
}

static void value_free(value_t *v) {
  if (v->tag == EXPORTS_PYLON_SQLITE_CAPI_VALUE_TEXT) bytes_free(&v->val.text);
  if (v->tag == EXPORTS_PYLON_SQLITE_CAPI_VALUE_BLOB) bytes_free(&v->val.blob);
  v->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_NULL;
}

static void answer_free(answer_t *a) {
  if (a->tag == EXPORTS_PYLON_SQLITE_CAPI_ANSWER_VALUE) value_free(&a->val.value);
  if (a->tag == EXPORTS_PYLON_SQLITE_CAPI_ANSWER_ERROR) bytes_free(&a->val.error.f1);
  a->tag = EXPORTS_PYLON_SQLITE_CAPI_ANSWER_NONE;
}

// A SQLite value as a WIT value, its type as sqlite3_value_type reports it.
static value_t from_sqlite_value(sqlite3_value *v) {
  value_t out;
  memset(&out, 0, sizeof out);
  switch (sqlite3_value_type(v)) {
  case SQLITE_INTEGER:
    out.tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_INTEGER;
    out.val.integer = sqlite3_value_int64(v);
    break;
  case SQLITE_FLOAT:
    out.tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_REAL;
    out.val.real = sqlite3_value_double(v);
    break;
  case SQLITE_TEXT: {
    const unsigned char *t = sqlite3_value_text(v);
    out.tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_TEXT;
    out.val.text = bytes_dup(t, (size_t)sqlite3_value_bytes(v));
    break;
  }
  case SQLITE_BLOB: {
    const void *b = sqlite3_value_blob(v);
    out.tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_BLOB;
    out.val.blob = bytes_dup(b, (size_t)sqlite3_value_bytes(v));
    break;
  }
  default:
    out.tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_NULL;
  }
  return out;
}

// The current row of a statement that returned SQLITE_ROW.
static values_t row_values(sqlite3_stmt *st) {
  values_t row = {NULL, 0};
  int n = sqlite3_data_count(st);
  if (n <= 0) return row;
  row.ptr = xmalloc(sizeof(value_t) * (size_t)n);
  row.len = (size_t)n;
  for (int i = 0; i < n; i++) {
    value_t *out = &row.ptr[i];
    memset(out, 0, sizeof *out);
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
      out->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_INTEGER;
      out->val.integer = sqlite3_column_int64(st, i);
      break;
    case SQLITE_FLOAT:
      out->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_REAL;
      out->val.real = sqlite3_column_double(st, i);
      break;
    case SQLITE_TEXT: {
      const unsigned char *t = sqlite3_column_text(st, i);
      out->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_TEXT;
      out->val.text = bytes_dup(t, (size_t)sqlite3_column_bytes(st, i));
      break;
    }
    case SQLITE_BLOB: {
      const void *b = sqlite3_column_blob(st, i);
      out->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_BLOB;
      out->val.blob = bytes_dup(b, (size_t)sqlite3_column_bytes(st, i));
      break;
    }
    default:
      out->tag = EXPORTS_PYLON_SQLITE_CAPI_VALUE_NULL;
    }
  }
  return row;
}

// ---------------------------------------------------------------- handles

typedef struct {
  void *p;       // the SQLite object; NULL: free
  uint32_t gen;  // bumped when the slot is freed
  int busy;      // statements: a suspended run is inside it; databases:
                 // how many suspended runs work on it
  int closing;   // databases: a `close` is under way
} slot_t;

typedef struct {
  slot_t *v;
  uint32_t n, cap;
} table_t;

#define INDEX_BITS 20
#define INDEX_MASK ((1u << INDEX_BITS) - 1)

static table_t dbs, stmts, blobs, backups;

static uint32_t handle_of(table_t *t, uint32_t i) {
  return ((t->v[i].gen & 0xfffu) << INDEX_BITS) | (i + 1);
}

// The slot index of handle `h`, or -1.
static int slot_index(table_t *t, uint32_t h) {
  uint32_t i = (h & INDEX_MASK);
  if (i == 0) return -1;
  i -= 1;
  if (i >= t->n || !t->v[i].p) return -1;
  if (((t->v[i].gen & 0xfffu) << INDEX_BITS) != (h & ~INDEX_MASK)) return -1;
  return (int)i;
}

// A new handle for `p`, or 0 when the table is full.
static uint32_t slot_new(table_t *t, void *p) {
  uint32_t i;
  for (i = 0; i < t->n; i++)
    if (!t->v[i].p) break;
  if (i == t->n) {
    if (t->n == INDEX_MASK - 1) return 0;
    if (t->n == t->cap) {
      uint32_t cap = t->cap ? t->cap * 2 : 16;
      slot_t *v = realloc(t->v, sizeof(slot_t) * cap);
      if (!v) return 0;
      t->v = v;
      t->cap = cap;
    }
    t->v[t->n].gen = 1;
    t->n++;
  }
  t->v[i].p = p;
  t->v[i].busy = 0;
  t->v[i].closing = 0;
  return handle_of(t, i);
}

static void slot_free(table_t *t, int i) {
  t->v[i].p = NULL;
  t->v[i].busy = 0;
  t->v[i].closing = 0;
  t->v[i].gen++;
}

// A database handle that may be used (not closing), or NULL.
static sqlite3 *db_get(uint32_t h) {
  int i = slot_index(&dbs, h);
  if (i < 0 || dbs.v[i].closing) return NULL;
  return dbs.v[i].p;
}

static sqlite3_stmt *stmt_get(uint32_t h) {
  int i = slot_index(&stmts, h);
  return i < 0 ? NULL : stmts.v[i].p;
}

// ---------------------------------------------------------------- WASI

// SQLite's constants for WASI, where wasi-libc defines none (as in
// sqlite3.c's SQLITE_WASI section).
#ifndef F_RDLCK
#define F_RDLCK 0
#define F_WRLCK 1
#define F_UNLCK 2
#if __LONG_MAX == 0x7fffffffL
#define F_GETLK 12
#define F_SETLK 13
#define F_SETLKW 14
#else
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#endif
#endif

// The `unix` VFS's fcntl: advisory locks always granted (no other process
// shares this instance's lock tables; SQLite orders this instance's own
// connections itself), everything else passed to wasi-libc.
static int wasi_fcntl(int fd, int op, ...) {
  va_list ap;
  va_start(ap, op);
  if (op == F_SETLK || op == F_SETLKW) {
    va_end(ap);
    return 0;
  }
  if (op == F_GETLK) {
    struct flock *l = va_arg(ap, struct flock *);
    va_end(ap);
    l->l_type = F_UNLCK;
    return 0;
  }
  int arg = va_arg(ap, int);
  va_end(ap);
  return fcntl(fd, op, arg);
}

// Randomness from WASI's random_get (the unix VFS reads /dev/urandom,
// which WASI has not, and falls back to the time).
static int wasi_randomness(sqlite3_vfs *vfs, int n, char *buf) {
  (void)vfs;
  memset(buf, 0, (size_t)n);
  for (int off = 0; off < n;) {
    int k = n - off > 256 ? 256 : n - off;
    if (getentropy(buf + off, (size_t)k) != 0) break;
    off += k;
  }
  return n;
}

static int init_rc = -1;

static int ensure_init(void) {
  if (init_rc == SQLITE_OK) return SQLITE_OK;
  int rc = sqlite3_initialize();
  if (rc != SQLITE_OK) return rc;
  sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
  if (unix_vfs) {
    unix_vfs->xSetSystemCall(unix_vfs, "fcntl", (sqlite3_syscall_ptr)wasi_fcntl);
    unix_vfs->xRandomness = wasi_randomness;
  }
  init_rc = SQLITE_OK;
  return SQLITE_OK;
}

// ---------------------------------------------------------------- Asyncify

#define AIMPORT(n) __attribute__((import_module("asyncify"), import_name(n)))
AIMPORT("start_unwind") void asyncify_start_unwind(void *);
AIMPORT("stop_unwind") void asyncify_stop_unwind(void);
AIMPORT("start_rewind") void asyncify_start_rewind(void *);
AIMPORT("stop_rewind") void asyncify_stop_rewind(void);

__asm__(".globaltype __stack_pointer, i32\n");

static inline void *get_sp(void) {
  void *p;
  __asm__ volatile("global.get __stack_pointer\n\tlocal.set %0" : "=r"(p) : : "memory");
  return p;
}

static inline void set_sp(void *p) {
  __asm__ volatile("local.get %0\n\tglobal.set __stack_pointer" : : "r"(p) : "memory");
}

// Runs nested deeper than this run without suspending.
#define MAX_RUNS 32
// Each run's C stack (SQLite recurses; the main stack is as large).
#define RUN_STACK (512 * 1024)
// Each run's Asyncify save buffer: the wasm locals of every frame between
// the run's entry and the trampoline (about 400 bytes for step -> a
// function; the parser's recursion, for the authorizer, needs more). Too
// small traps (unreachable), never corrupts.
#define RUN_SAVE (256 * 1024)

enum { R_FREE, R_RUNNING, R_SUSPENDING, R_SUSPENDED, R_REWINDING, R_DONE };

enum op {
  OP_CLOSE,
  OP_EXEC,
  OP_CREATE_FUNCTION,
  OP_CREATE_WINDOW_FUNCTION,
  OP_CREATE_COLLATION,
  OP_PREPARE,
  OP_STEP,
  OP_RESET,
  OP_FINALIZE,
  OP_BLOB_OPEN,
};

// One call of an export that returns an outcome: its arguments and reply.
typedef struct {
  enum op op;
  int db;    // dbs slot index, or -1
  int stmt;  // stmts slot index, or -1
  uint32_t db_handle;
  char *s1, *s2, *s3;  // NUL-terminated copies of text arguments
  size_t n1;           // prepare: the SQL's length
  int32_t i1, i2;
  int64_t row;
  uint32_t user_data;
  bool b1, b2, b3;
  reply_t reply;
} call_t;

typedef struct run {
  struct {
    void *cur, *end;
  } ad;  // Asyncify's data: where the next frame is saved, and the end
  int state;
  uint32_t gen;
  void *sp;        // the run's __stack_pointer while suspended
  char *stack;     // RUN_STACK bytes
  char *save;      // RUN_SAVE bytes
  callback_t cb;   // the callback it is suspended on
  answer_t answer; // the answer `resume` brought
  call_t call;
} run_t;

static run_t runs[MAX_RUNS];
static run_t *cur_run;       // the run executing now, or NULL
static int refusing;         // a call too deeply nested runs now
static run_t *suspended[MAX_RUNS];  // suspended runs, innermost last
static int n_suspended;

// Destroy callbacks SQLite made where none could be returned, delivered
// at the start of the next run.
static uint32_t *deferred;
static size_t n_deferred, cap_deferred;

static void defer_destroy(uint32_t user_data) {
  if (n_deferred == cap_deferred) {
    size_t cap = cap_deferred ? cap_deferred * 2 : 8;
    uint32_t *d = realloc(deferred, sizeof(uint32_t) * cap);
    if (!d) return;
    deferred = d;
    cap_deferred = cap;
  }
  deferred[n_deferred++] = user_data;
}

// Suspend the current run; returns when it is resumed (the answer in
// `cur_run->answer`). Not instrumented by Asyncify: on rewind it is called
// again and stops the rewind.
__attribute__((noinline)) static void suspend(void) {
  run_t *r = cur_run;
  if (r->state == R_REWINDING) {
    asyncify_stop_rewind();
    r->state = R_RUNNING;
    return;
  }
  r->state = R_SUSPENDING;
  asyncify_start_unwind(&r->ad);
}

// Whether a trampoline may suspend now.
static int can_suspend(void) { return cur_run != NULL && cur_run->state == R_RUNNING; }

static void run_entry(run_t *r);

// Start or continue run `r` on its own stack until it finishes or
// suspends. Not instrumented (it stops unwinds and starts rewinds).
__attribute__((noinline)) static void drive(run_t *r) {
  run_t *prev = cur_run;
  void *caller_sp = get_sp();
  cur_run = r;
  if (r->state == R_REWINDING) {
    set_sp(r->sp);
    asyncify_start_rewind(&r->ad);
  } else {
    r->state = R_RUNNING;
    r->ad.cur = r->save;
    r->ad.end = r->save + RUN_SAVE;
    set_sp(r->stack + RUN_STACK);
  }
  run_entry(r);
  if (r->state == R_SUSPENDING) {
    asyncify_stop_unwind();
    r->sp = get_sp();
    r->state = R_SUSPENDED;
  } else {
    r->state = R_DONE;
  }
  set_sp(caller_sp);
  cur_run = prev;
}

static run_t *run_new(void) {
  for (int i = 0; i < MAX_RUNS; i++) {
    run_t *r = &runs[i];
    if (r->state != R_FREE) continue;
    if (!r->stack) {
      r->stack = malloc(RUN_STACK);
      r->save = malloc(RUN_SAVE);
      if (!r->stack || !r->save) {
        free(r->stack);
        free(r->save);
        r->stack = r->save = NULL;
        return NULL;
      }
      r->gen = 1;
    }
    memset(&r->call, 0, sizeof r->call);
    memset(&r->cb, 0, sizeof r->cb);
    memset(&r->answer, 0, sizeof r->answer);
    r->call.db = -1;
    r->call.stmt = -1;
    return r;
  }
  return NULL;
}

static uint32_t run_id(run_t *r) {
  return ((r->gen & 0xffffffu) << 8) | (uint32_t)(r - runs + 1);
}

static void call_release(call_t *c) {
  free(c->s1);
  free(c->s2);
  free(c->s3);
  c->s1 = c->s2 = c->s3 = NULL;
  if (c->db >= 0 && (uint32_t)c->db < dbs.n && dbs.v[c->db].busy > 0) dbs.v[c->db].busy--;
  if (c->stmt >= 0 && (uint32_t)c->stmt < stmts.n) stmts.v[c->stmt].busy = 0;
}

static void done_code(outcome_t *ret, int code) {
  memset(ret, 0, sizeof *ret);
  ret->tag = EXPORTS_PYLON_SQLITE_CAPI_OUTCOME_DONE;
  ret->val.done.code = code;
}

// After drive: the outcome of run `r`.
static void run_outcome(run_t *r, outcome_t *ret) {
  memset(ret, 0, sizeof *ret);
  if (r->state == R_SUSPENDED) {
    suspended[n_suspended++] = r;
    ret->tag = EXPORTS_PYLON_SQLITE_CAPI_OUTCOME_CALLBACK;
    ret->val.callback.f0 = run_id(r);
    ret->val.callback.f1 = r->cb;  // the bindings' post-return frees it
    memset(&r->cb, 0, sizeof r->cb);
    return;
  }
  ret->tag = EXPORTS_PYLON_SQLITE_CAPI_OUTCOME_DONE;
  ret->val.done = r->call.reply;
  call_release(&r->call);
  r->state = R_FREE;
  r->gen++;
}

static void do_call(call_t *c);

// Instrumented by Asyncify (it may suspend), so never inlined into
// `drive`, which is not.
__attribute__((noinline)) static void run_entry(run_t *r) {
  // Destroy callbacks deferred from calls that could not suspend.
  while (n_deferred > 0) {
    uint32_t ud = deferred[--n_deferred];
    r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_DESTROY;
    r->cb.val.destroy = ud;
    suspend();
    answer_free(&cur_run->answer);
  }
  do_call(&r->call);
}

// Run call `c` (its fields set by the export): in a run that can suspend,
// or, nested deeper than MAX_RUNS, right here with callbacks refused.
static void start(call_t *c, outcome_t *ret) {
  run_t *r = run_new();
  if (!r) {
    int was = refusing;
    refusing = 1;
    do_call(c);
    refusing = was;
    memset(ret, 0, sizeof *ret);
    ret->tag = EXPORTS_PYLON_SQLITE_CAPI_OUTCOME_DONE;
    ret->val.done = c->reply;
    call_release(c);
    return;
  }
  r->call = *c;
  drive(r);
  run_outcome(r, ret);
}

void exports_pylon_sqlite_capi_resume(uint32_t suspension, answer_t *answer, outcome_t *ret) {
  uint32_t i = suspension & 0xffu;
  run_t *r = (i >= 1 && i <= MAX_RUNS) ? &runs[i - 1] : NULL;
  if (!r || r->state != R_SUSPENDED || run_id(r) != suspension || n_suspended == 0 ||
      suspended[n_suspended - 1] != r) {
    // Unknown, finished, or not the innermost suspension.
    answer_free(answer);
    done_code(ret, SQLITE_MISUSE);
    return;
  }
  n_suspended--;
  r->answer = *answer;
  r->state = R_REWINDING;
  drive(r);
  run_outcome(r, ret);
}

// ---------------------------------------------------------------- trampolines

// What a registered function or collation carries as SQLite's user data.
typedef struct {
  uint32_t user_data;
  uint32_t db;
  bool destroy;
} app_t;

static app_t *app_new(uint32_t user_data, uint32_t db, bool destroy) {
  app_t *a = xmalloc(sizeof *a);
  a->user_data = user_data;
  a->db = db;
  a->destroy = destroy;
  return a;
}

static const char REFUSED[] = "pylon:sqlite/capi: callbacks nested too deeply";
static const char NOT_HERE[] = "pylon:sqlite/capi: this call cannot make callbacks";

// Apply answer `a` as the result of a function call.
static void apply_result(sqlite3_context *ctx, answer_t *a) {
  switch (a->tag) {
  case EXPORTS_PYLON_SQLITE_CAPI_ANSWER_VALUE: {
    value_t *v = &a->val.value;
    switch (v->tag) {
    case EXPORTS_PYLON_SQLITE_CAPI_VALUE_INTEGER:
      sqlite3_result_int64(ctx, v->val.integer);
      break;
    case EXPORTS_PYLON_SQLITE_CAPI_VALUE_REAL:
      sqlite3_result_double(ctx, v->val.real);
      break;
    case EXPORTS_PYLON_SQLITE_CAPI_VALUE_TEXT:
      if (v->val.text.len)
        sqlite3_result_text64(ctx, (const char *)v->val.text.ptr, v->val.text.len, free, SQLITE_UTF8);
      else
        sqlite3_result_text64(ctx, "", 0, SQLITE_STATIC, SQLITE_UTF8);
      v->val.text.len = 0;  // SQLite owns it now
      break;
    case EXPORTS_PYLON_SQLITE_CAPI_VALUE_BLOB:
      if (v->val.blob.len)
        sqlite3_result_blob64(ctx, v->val.blob.ptr, v->val.blob.len, free);
      else
        sqlite3_result_zeroblob(ctx, 0);
      v->val.blob.len = 0;
      break;
    default:
      sqlite3_result_null(ctx);
    }
    break;
  }
  case EXPORTS_PYLON_SQLITE_CAPI_ANSWER_ERROR: {
    int code = a->val.error.f0;
    if (code == SQLITE_NOMEM) {
      sqlite3_result_error_nomem(ctx);
    } else if (code == SQLITE_TOOBIG) {
      sqlite3_result_error_toobig(ctx);
    } else {
      sqlite3_result_error(ctx, (const char *)a->val.error.f1.ptr, (int)a->val.error.f1.len);
      if (code != SQLITE_ERROR && code != SQLITE_OK) sqlite3_result_error_code(ctx, code);
    }
    break;
  }
  case EXPORTS_PYLON_SQLITE_CAPI_ANSWER_INTEGER:
    sqlite3_result_int64(ctx, a->val.integer);
    break;
  default:
    sqlite3_result_null(ctx);
  }
  answer_free(a);
}

// The answer's integer, or `other` for any other answer.
static int answer_int(answer_t *a, int none, int other) {
  int v = a->tag == EXPORTS_PYLON_SQLITE_CAPI_ANSWER_INTEGER ? a->val.integer
          : a->tag == EXPORTS_PYLON_SQLITE_CAPI_ANSWER_NONE  ? none
                                                             : other;
  answer_free(a);
  return v;
}

static void func_callback(sqlite3_context *ctx, int kind, uint64_t instance, int argc, sqlite3_value **argv) {
  app_t *app = sqlite3_user_data(ctx);
  if (!can_suspend()) {
    sqlite3_result_error(ctx, refusing ? REFUSED : NOT_HERE, -1);
    return;
  }
  run_t *r = cur_run;
  exports_pylon_sqlite_capi_func_call_t *fc = &r->cb.val.function;
  r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_FUNCTION;
  fc->user_data = app->user_data;
  fc->kind = (exports_pylon_sqlite_capi_func_kind_t)kind;
  fc->db = app->db;
  fc->instance = instance;
  fc->args.len = argc > 0 ? (size_t)argc : 0;
  fc->args.ptr = fc->args.len ? xmalloc(sizeof(value_t) * fc->args.len) : NULL;
  for (int i = 0; i < argc; i++) fc->args.ptr[i] = from_sqlite_value(argv[i]);
  suspend();
  apply_result(ctx, &cur_run->answer);
}

static uint64_t agg_instance(sqlite3_context *ctx, int n) {
  return (uint64_t)(uintptr_t)sqlite3_aggregate_context(ctx, n);
}

static void t_func(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  func_callback(ctx, EXPORTS_PYLON_SQLITE_CAPI_FUNC_KIND_SCALAR, 0, argc, argv);
}

static void t_step(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  func_callback(ctx, EXPORTS_PYLON_SQLITE_CAPI_FUNC_KIND_STEP, agg_instance(ctx, 8), argc, argv);
}

static void t_final(sqlite3_context *ctx) {
  func_callback(ctx, EXPORTS_PYLON_SQLITE_CAPI_FUNC_KIND_FINAL, agg_instance(ctx, 0), 0, NULL);
}

static void t_value(sqlite3_context *ctx) {
  func_callback(ctx, EXPORTS_PYLON_SQLITE_CAPI_FUNC_KIND_VALUE, agg_instance(ctx, 8), 0, NULL);
}

static void t_inverse(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  func_callback(ctx, EXPORTS_PYLON_SQLITE_CAPI_FUNC_KIND_INVERSE, agg_instance(ctx, 8), argc, argv);
}

static int t_compare(void *p, int na, const void *a, int nb, const void *b) {
  app_t *app = p;
  if (!can_suspend()) return 0;
  run_t *r = cur_run;
  r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_COMPARE;
  r->cb.val.compare.user_data = app->user_data;
  r->cb.val.compare.a = bytes_dup(a, na > 0 ? (size_t)na : 0);
  r->cb.val.compare.b = bytes_dup(b, nb > 0 ? (size_t)nb : 0);
  suspend();
  return answer_int(&cur_run->answer, 0, 0);
}

static int t_authorize(void *p, int action, const char *a1, const char *a2, const char *a3, const char *a4) {
  if (!can_suspend()) return refusing ? SQLITE_DENY : SQLITE_OK;
  run_t *r = cur_run;
  exports_pylon_sqlite_capi_authorize_call_t *ac = &r->cb.val.authorize;
  r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_AUTHORIZE;
  ac->user_data = (uint32_t)(uintptr_t)p;
  ac->action = action;
  ac->arg1 = opt_str(a1);
  ac->arg2 = opt_str(a2);
  ac->arg3 = opt_str(a3);
  ac->arg4 = opt_str(a4);
  suspend();
  return answer_int(&cur_run->answer, SQLITE_OK, SQLITE_DENY);
}

static int t_progress(void *p) {
  if (!can_suspend()) return 0;
  run_t *r = cur_run;
  r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_PROGRESS;
  r->cb.val.progress = (uint32_t)(uintptr_t)p;
  suspend();
  return answer_int(&cur_run->answer, 0, 1);
}

static int t_trace(unsigned type, void *p, void *stmt, void *x) {
  if (type != SQLITE_TRACE_STMT || !can_suspend()) return 0;
  run_t *r = cur_run;
  exports_pylon_sqlite_capi_trace_call_t *tc = &r->cb.val.trace;
  r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_TRACE;
  tc->user_data = (uint32_t)(uintptr_t)p;
  tc->sql = bytes_str((const char *)x);
  char *expanded = sqlite3_expanded_sql((sqlite3_stmt *)stmt);
  tc->expanded = opt_str(expanded);
  sqlite3_free(expanded);
  suspend();
  answer_free(&cur_run->answer);
  return 0;
}

static void t_destroy(void *p) {
  app_t *app = p;
  if (app->destroy) {
    if (can_suspend()) {
      run_t *r = cur_run;
      r->cb.tag = EXPORTS_PYLON_SQLITE_CAPI_CALLBACK_DESTROY;
      r->cb.val.destroy = app->user_data;
      suspend();
      answer_free(&cur_run->answer);
    } else {
      defer_destroy(app->user_data);
    }
  }
  free(app);
}

// ---------------------------------------------------------------- calls

static void do_call(call_t *c) {
  reply_t *rep = &c->reply;
  sqlite3 *db = c->db >= 0 ? dbs.v[c->db].p : NULL;
  sqlite3_stmt *st = c->stmt >= 0 ? stmts.v[c->stmt].p : NULL;
  switch (c->op) {
  case OP_CLOSE: {
    rep->code = sqlite3_close_v2(db);
    // Re-read the slot: callbacks may have grown the table.
    if (rep->code == SQLITE_OK) {
      slot_free(&dbs, c->db);
      c->db = -1;
    } else {
      dbs.v[c->db].closing = 0;
    }
    break;
  }
  case OP_EXEC:
    rep->code = sqlite3_exec(db, c->s1, NULL, NULL, NULL);
    break;
  case OP_CREATE_FUNCTION: {
    app_t *app = app_new(c->user_data, c->db_handle, c->b3);
    rep->code = sqlite3_create_function_v2(db, c->s1, c->i1, c->i2, app, c->b1 ? t_func : NULL,
                                           c->b2 ? t_step : NULL, c->b2 ? t_final : NULL, t_destroy);
    break;
  }
  case OP_CREATE_WINDOW_FUNCTION: {
    app_t *app = app_new(c->user_data, c->db_handle, c->b2);
    rep->code = sqlite3_create_window_function(db, c->s1, c->i1, c->i2, app, c->b1 ? t_step : NULL,
                                               c->b1 ? t_final : NULL, c->b1 ? t_value : NULL,
                                               c->b1 ? t_inverse : NULL, t_destroy);
    break;
  }
  case OP_CREATE_COLLATION: {
    app_t *app = app_new(c->user_data, c->db_handle, c->b2);
    rep->code = sqlite3_create_collation_v2(db, c->s1, SQLITE_UTF8, app, c->b1 ? t_compare : NULL, t_destroy);
    // Unlike every other interface, a failed create_collation_v2 does not
    // call xDestroy (so neither is the cap called back).
    if (rep->code != SQLITE_OK) free(app);
    break;
  }
  case OP_PREPARE: {
    sqlite3_stmt *out = NULL;
    const char *tail = NULL;
    rep->code = sqlite3_prepare_v2(db, c->s1, (int)c->n1 + 1, &out, &tail);
    if (out) {
      rep->handle = slot_new(&stmts, out);
      if (!rep->handle) {
        sqlite3_finalize(out);
        rep->code = SQLITE_NOMEM;
      }
    }
    size_t used = tail ? (size_t)(tail - c->s1) : 0;
    rep->tail = (uint32_t)(used > c->n1 ? c->n1 : used);
    break;
  }
  case OP_STEP:
    rep->code = sqlite3_step(st);
    if (rep->code == SQLITE_ROW) rep->row = row_values(st);
    break;
  case OP_RESET:
    rep->code = sqlite3_reset(st);
    break;
  case OP_FINALIZE:
    rep->code = sqlite3_finalize(st);
    slot_free(&stmts, c->stmt);
    c->stmt = -1;
    break;
  case OP_BLOB_OPEN: {
    sqlite3_blob *b = NULL;
    rep->code = sqlite3_blob_open(db, c->s1, c->s2, c->s3, c->row, c->b1 ? 1 : 0, &b);
    if (b) {
      rep->handle = slot_new(&blobs, b);
      if (!rep->handle) {
        sqlite3_blob_close(b);
        rep->code = SQLITE_NOMEM;
      }
    }
    break;
  }
  }
}

// A call on database `h`: its slot, counted busy until the call ends.
static int call_on_db(call_t *c, uint32_t h) {
  int i = slot_index(&dbs, h);
  if (i < 0 || dbs.v[i].closing) return 0;
  c->db = i;
  c->db_handle = h;
  dbs.v[i].busy++;
  return 1;
}

// A call on statement `h`, which no suspended call may be inside.
static int call_on_stmt(call_t *c, uint32_t h) {
  int i = slot_index(&stmts, h);
  if (i < 0 || stmts.v[i].busy) return 0;
  c->stmt = i;
  stmts.v[i].busy = 1;
  return 1;
}

// A new call of kind `op`, on no database or statement yet.
static call_t new_call(enum op op) {
  call_t c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.stmt = -1;
  c.db = -1;
  return c;
}

// A call on database `h` with the text `text` (taken) as its `s1`; false,
// with SQLITE_MISUSE done in `ret`, when `h` is no open database.
static bool call_on_db_text(call_t *c, uint32_t h, bytes_t *text, outcome_t *ret) {
  char *s = take_cstr(text);
  if (!call_on_db(c, h)) {
    free(s);
    done_code(ret, SQLITE_MISUSE);
    return false;
  }
  c->s1 = s;
  return true;
}

// ---------------------------------------------------------------- library

void exports_pylon_sqlite_capi_libversion(capi_provider_string_t *ret) {
  capi_provider_string_dup(ret, sqlite3_libversion());
}

int32_t exports_pylon_sqlite_capi_libversion_number(void) { return sqlite3_libversion_number(); }

int32_t exports_pylon_sqlite_capi_threadsafe(void) { return sqlite3_threadsafe(); }

int32_t exports_pylon_sqlite_capi_complete(bytes_t *sql) {
  char *s = take_cstr(sql);
  int rc = sqlite3_complete(s);
  free(s);
  return rc;
}

void exports_pylon_sqlite_capi_errstr(int32_t code, capi_provider_string_t *ret) {
  capi_provider_string_dup(ret, sqlite3_errstr(code));
}

int32_t exports_pylon_sqlite_capi_initialize(void) { return ensure_init(); }

int32_t exports_pylon_sqlite_capi_shutdown(void) {
  int rc = sqlite3_shutdown();
  if (rc == SQLITE_OK) init_rc = -1;
  return rc;
}

int32_t exports_pylon_sqlite_capi_enable_shared_cache(int32_t enable) {
  return sqlite3_enable_shared_cache(enable);
}

int32_t exports_pylon_sqlite_capi_compileoption_used(capi_provider_string_t *name) {
  char *s = xmalloc(name->len + 1);
  if (name->len) memcpy(s, name->ptr, name->len);
  s[name->len] = 0;
  capi_provider_string_free(name);
  int rc = sqlite3_compileoption_used(s);
  free(s);
  return rc;
}

// What SQLite's vdbeMemRenderNum writes for a REAL.
void exports_pylon_sqlite_capi_real_text(double x, capi_provider_list_u8_t *ret) {
  char buf[64];
  sqlite3_snprintf((int)sizeof buf, buf, "%!.15g", x);
  size_t n = strlen(buf);
  ret->ptr = xmalloc(n ? n : 1);
  memcpy(ret->ptr, buf, n);
  ret->len = n;
}

// ---------------------------------------------------------------- connections

void exports_pylon_sqlite_capi_open(bytes_t *filename, int32_t flags, capi_provider_tuple2_s32_u32_t *ret) {
  char *name = take_cstr(filename);
  ret->f0 = ensure_init();
  ret->f1 = 0;
  if (ret->f0 != SQLITE_OK) {
    free(name);
    return;
  }
  sqlite3 *db = NULL;
  ret->f0 = sqlite3_open_v2(name, &db, flags, NULL);
  free(name);
  if (db) {
    ret->f1 = slot_new(&dbs, db);
    if (!ret->f1) {
      sqlite3_close_v2(db);
      ret->f0 = SQLITE_NOMEM;
    }
  }
}

void exports_pylon_sqlite_capi_close(uint32_t db, outcome_t *ret) {
  call_t c = new_call(OP_CLOSE);
  int i = slot_index(&dbs, db);
  // Not while a suspended call works on it, nor twice.
  if (i < 0 || dbs.v[i].closing || dbs.v[i].busy) {
    done_code(ret, SQLITE_MISUSE);
    return;
  }
  c.db = i;
  c.db_handle = db;
  dbs.v[i].closing = 1;
  start(&c, ret);
}

int32_t exports_pylon_sqlite_capi_errcode(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_errcode(d) : SQLITE_MISUSE;
}

int32_t exports_pylon_sqlite_capi_extended_errcode(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_extended_errcode(d) : SQLITE_MISUSE;
}

void exports_pylon_sqlite_capi_errmsg(uint32_t db, bytes_t *ret) {
  sqlite3 *d = db_get(db);
  *ret = bytes_str(d ? sqlite3_errmsg(d) : sqlite3_errstr(SQLITE_MISUSE));
}

int32_t exports_pylon_sqlite_capi_changes(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_changes(d) : 0;
}

int32_t exports_pylon_sqlite_capi_total_changes(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_total_changes(d) : 0;
}

int64_t exports_pylon_sqlite_capi_last_insert_rowid(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_last_insert_rowid(d) : 0;
}

int32_t exports_pylon_sqlite_capi_get_autocommit(uint32_t db) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_get_autocommit(d) : 0;
}

int32_t exports_pylon_sqlite_capi_busy_timeout(uint32_t db, int32_t ms) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_busy_timeout(d, ms) : SQLITE_MISUSE;
}

void exports_pylon_sqlite_capi_interrupt(uint32_t db) {
  sqlite3 *d = db_get(db);
  if (d) sqlite3_interrupt(d);
}

int32_t exports_pylon_sqlite_capi_limit(uint32_t db, int32_t id, int32_t new_value) {
  sqlite3 *d = db_get(db);
  return d ? sqlite3_limit(d, id, new_value) : -1;
}

void exports_pylon_sqlite_capi_exec(uint32_t db, bytes_t *sql, outcome_t *ret) {
  call_t c = new_call(OP_EXEC);
  if (!call_on_db_text(&c, db, sql, ret)) return;
  start(&c, ret);
}

void exports_pylon_sqlite_capi_create_function(uint32_t db, bytes_t *name, int32_t n_arg, int32_t flags,
                                               uint32_t user_data, bool scalar, bool aggregate, bool destroy,
                                               outcome_t *ret) {
  call_t c = new_call(OP_CREATE_FUNCTION);
  if (!call_on_db_text(&c, db, name, ret)) return;
  c.i1 = n_arg;
  c.i2 = flags;
  c.user_data = user_data;
  c.b1 = scalar;
  c.b2 = aggregate;
  c.b3 = destroy;
  start(&c, ret);
}

void exports_pylon_sqlite_capi_create_window_function(uint32_t db, bytes_t *name, int32_t n_arg, int32_t flags,
                                                      uint32_t user_data, bool define, bool destroy,
                                                      outcome_t *ret) {
  call_t c = new_call(OP_CREATE_WINDOW_FUNCTION);
  if (!call_on_db_text(&c, db, name, ret)) return;
  c.i1 = n_arg;
  c.i2 = flags;
  c.user_data = user_data;
  c.b1 = define;
  c.b2 = destroy;
  start(&c, ret);
}

void exports_pylon_sqlite_capi_create_collation(uint32_t db, bytes_t *name, uint32_t user_data, bool define,
                                                bool destroy, outcome_t *ret) {
  call_t c = new_call(OP_CREATE_COLLATION);
  if (!call_on_db_text(&c, db, name, ret)) return;
  c.user_data = user_data;
  c.b1 = define;
  c.b2 = destroy;
  start(&c, ret);
}

int32_t exports_pylon_sqlite_capi_set_authorizer(uint32_t db, uint32_t *maybe_user_data) {
  sqlite3 *d = db_get(db);
  if (!d) return SQLITE_MISUSE;
  if (maybe_user_data) return sqlite3_set_authorizer(d, t_authorize, (void *)(uintptr_t)*maybe_user_data);
  return sqlite3_set_authorizer(d, NULL, NULL);
}

void exports_pylon_sqlite_capi_progress_handler(uint32_t db, int32_t n, uint32_t *maybe_user_data) {
  sqlite3 *d = db_get(db);
  if (!d) return;
  if (maybe_user_data)
    sqlite3_progress_handler(d, n, t_progress, (void *)(uintptr_t)*maybe_user_data);
  else
    sqlite3_progress_handler(d, 0, NULL, NULL);
}

int32_t exports_pylon_sqlite_capi_trace(uint32_t db, uint32_t *maybe_user_data) {
  sqlite3 *d = db_get(db);
  if (!d) return SQLITE_MISUSE;
  if (maybe_user_data)
    return sqlite3_trace_v2(d, SQLITE_TRACE_STMT, t_trace, (void *)(uintptr_t)*maybe_user_data);
  return sqlite3_trace_v2(d, 0, NULL, NULL);
}

bool exports_pylon_sqlite_capi_serialize(uint32_t db, bytes_t *schema, bytes_t *ret) {
  char *s = take_cstr(schema);
  sqlite3 *d = db_get(db);
  ret->ptr = NULL;
  ret->len = 0;
  if (!d) {
    free(s);
    return false;
  }
  sqlite3_int64 size = 0;
  unsigned char *data = sqlite3_serialize(d, s, &size, 0);
  free(s);
  if (!data) return false;
  *ret = bytes_dup(data, (size_t)size);
  sqlite3_free(data);
  return true;
}

int32_t exports_pylon_sqlite_capi_deserialize(uint32_t db, bytes_t *schema, bytes_t *data) {
  char *s = take_cstr(schema);
  sqlite3 *d = db_get(db);
  if (!d) {
    free(s);
    bytes_free(data);
    return SQLITE_MISUSE;
  }
  // SQLite owns the buffer from here (freed on close, even on error).
  unsigned char *buf = sqlite3_malloc64(data->len ? data->len : 1);
  if (!buf) {
    free(s);
    bytes_free(data);
    return SQLITE_NOMEM;
  }
  if (data->len) memcpy(buf, data->ptr, data->len);
  sqlite3_int64 n = (sqlite3_int64)data->len;
  bytes_free(data);
  int rc = sqlite3_deserialize(d, s, buf, n, n, SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
  free(s);
  return rc;
}

// ---------------------------------------------------------------- statements

void exports_pylon_sqlite_capi_prepare(uint32_t db, bytes_t *sql, outcome_t *ret) {
  call_t c = new_call(OP_PREPARE);
  size_t n = sql->len;
  char *s = take_cstr(sql);
  if (!call_on_db(&c, db)) {
    free(s);
    done_code(ret, SQLITE_MISUSE);
    return;
  }
  c.s1 = s;
  c.n1 = n;
  start(&c, ret);
}

void exports_pylon_sqlite_capi_info(uint32_t stmt, exports_pylon_sqlite_capi_statement_info_t *ret) {
  memset(ret, 0, sizeof *ret);
  sqlite3_stmt *st = stmt_get(stmt);
  if (!st) return;
  int n = sqlite3_column_count(st);
  if (n > 0) {
    ret->column_names.ptr = xmalloc(sizeof(bytes_t) * (size_t)n);
    ret->column_names.len = (size_t)n;
    ret->column_decltypes.ptr = xmalloc(sizeof(opt_bytes_t) * (size_t)n);
    ret->column_decltypes.len = (size_t)n;
    for (int i = 0; i < n; i++) {
      ret->column_names.ptr[i] = bytes_str(sqlite3_column_name(st, i));
      ret->column_decltypes.ptr[i] = opt_str(sqlite3_column_decltype(st, i));
    }
  }
  int p = sqlite3_bind_parameter_count(st);
  if (p > 0) {
    ret->parameter_names.ptr = xmalloc(sizeof(opt_bytes_t) * (size_t)p);
    ret->parameter_names.len = (size_t)p;
    for (int i = 0; i < p; i++) ret->parameter_names.ptr[i] = opt_str(sqlite3_bind_parameter_name(st, i + 1));
  }
  ret->readonly = sqlite3_stmt_readonly(st) != 0;
}

static void stmt_call(enum op op, uint32_t stmt, outcome_t *ret) {
  call_t c = new_call(op);
  if (!call_on_stmt(&c, stmt)) {
    done_code(ret, SQLITE_MISUSE);
    return;
  }
  start(&c, ret);
}

void exports_pylon_sqlite_capi_step(uint32_t stmt, outcome_t *ret) { stmt_call(OP_STEP, stmt, ret); }

void exports_pylon_sqlite_capi_reset(uint32_t stmt, outcome_t *ret) { stmt_call(OP_RESET, stmt, ret); }

void exports_pylon_sqlite_capi_finalize(uint32_t stmt, outcome_t *ret) { stmt_call(OP_FINALIZE, stmt, ret); }

int32_t exports_pylon_sqlite_capi_bind(uint32_t stmt, int32_t index, value_t *value) {
  int i = slot_index(&stmts, stmt);
  if (i < 0 || stmts.v[i].busy) {
    value_free(value);
    return SQLITE_MISUSE;
  }
  sqlite3_stmt *st = stmts.v[i].p;
  switch (value->tag) {
  case EXPORTS_PYLON_SQLITE_CAPI_VALUE_INTEGER:
    return sqlite3_bind_int64(st, index, value->val.integer);
  case EXPORTS_PYLON_SQLITE_CAPI_VALUE_REAL:
    return sqlite3_bind_double(st, index, value->val.real);
  case EXPORTS_PYLON_SQLITE_CAPI_VALUE_TEXT: {
    bytes_t t = value->val.text;
    // SQLite frees the bytes (even when binding fails).
    if (t.len) return sqlite3_bind_text64(st, index, (const char *)t.ptr, t.len, free, SQLITE_UTF8);
    return sqlite3_bind_text64(st, index, "", 0, SQLITE_STATIC, SQLITE_UTF8);
  }
  case EXPORTS_PYLON_SQLITE_CAPI_VALUE_BLOB: {
    bytes_t b = value->val.blob;
    if (b.len) return sqlite3_bind_blob64(st, index, b.ptr, b.len, free);
    return sqlite3_bind_zeroblob(st, index, 0);
  }
  default:
    return sqlite3_bind_null(st, index);
  }
}

bool exports_pylon_sqlite_capi_expanded_sql(uint32_t stmt, bytes_t *ret) {
  ret->ptr = NULL;
  ret->len = 0;
  sqlite3_stmt *st = stmt_get(stmt);
  if (!st) return false;
  char *s = sqlite3_expanded_sql(st);
  if (!s) return false;
  *ret = bytes_str(s);
  sqlite3_free(s);
  return true;
}

// ---------------------------------------------------------------- blobs

void exports_pylon_sqlite_capi_blob_open(uint32_t db, bytes_t *schema, bytes_t *table, bytes_t *column, int64_t row,
                                         bool writable, outcome_t *ret) {
  call_t c = new_call(OP_BLOB_OPEN);
  char *s1 = take_cstr(schema), *s2 = take_cstr(table), *s3 = take_cstr(column);
  if (!call_on_db(&c, db)) {
    free(s1);
    free(s2);
    free(s3);
    done_code(ret, SQLITE_MISUSE);
    return;
  }
  c.s1 = s1;
  c.s2 = s2;
  c.s3 = s3;
  c.row = row;
  c.b1 = writable;
  start(&c, ret);
}

static sqlite3_blob *blob_get(uint32_t h) {
  int i = slot_index(&blobs, h);
  return i < 0 ? NULL : blobs.v[i].p;
}

int32_t exports_pylon_sqlite_capi_blob_bytes(uint32_t blob) {
  sqlite3_blob *b = blob_get(blob);
  return b ? sqlite3_blob_bytes(b) : 0;
}

bool exports_pylon_sqlite_capi_blob_read(uint32_t blob, int32_t offset, int32_t n, bytes_t *ret, int32_t *err) {
  ret->ptr = NULL;
  ret->len = 0;
  sqlite3_blob *b = blob_get(blob);
  if (!b) {
    *err = SQLITE_MISUSE;
    return false;
  }
  // Out of range (or negative): SQLite's own answer, without allocating
  // `n` bytes first. An expired blob reports 0 bytes: SQLite answers
  // SQLITE_ABORT for it (after its own range check, against the old size).
  int size = sqlite3_blob_bytes(b);
  if (n < 0 || offset < 0 || (size > 0 && (int64_t)offset + n > size) || (int64_t)offset + n > 0x7fffffff) {
    *err = sqlite3_blob_read(b, NULL, -1, offset);
    if (*err == SQLITE_OK) *err = SQLITE_ERROR;
    return false;
  }
  unsigned char *buf = malloc(n ? (size_t)n : 1);
  if (!buf) {
    *err = SQLITE_NOMEM;
    return false;
  }
  int rc = sqlite3_blob_read(b, buf, n, offset);
  if (rc != SQLITE_OK) {
    free(buf);
    *err = rc;
    return false;
  }
  if (n == 0) {
    free(buf);
    return true;
  }
  ret->ptr = buf;
  ret->len = (size_t)n;
  return true;
}

int32_t exports_pylon_sqlite_capi_blob_write(uint32_t blob, int32_t offset, bytes_t *data) {
  sqlite3_blob *b = blob_get(blob);
  int rc = b ? sqlite3_blob_write(b, data->len ? data->ptr : (const void *)"", (int)data->len, offset) : SQLITE_MISUSE;
  bytes_free(data);
  return rc;
}

int32_t exports_pylon_sqlite_capi_blob_close(uint32_t blob) {
  int i = slot_index(&blobs, blob);
  if (i < 0) return SQLITE_MISUSE;
  sqlite3_blob *b = blobs.v[i].p;
  slot_free(&blobs, i);
  return sqlite3_blob_close(b);
}

// ---------------------------------------------------------------- backups

uint32_t exports_pylon_sqlite_capi_backup_init(uint32_t dest, bytes_t *dest_name, uint32_t source,
                                               bytes_t *source_name) {
  char *dn = take_cstr(dest_name), *sn = take_cstr(source_name);
  sqlite3 *d = db_get(dest), *s = db_get(source);
  uint32_t h = 0;
  if (d && s) {
    sqlite3_backup *b = sqlite3_backup_init(d, dn, s, sn);
    if (b) {
      h = slot_new(&backups, b);
      if (!h) sqlite3_backup_finish(b);
    }
  }
  free(dn);
  free(sn);
  return h;
}

static sqlite3_backup *backup_get(uint32_t h) {
  int i = slot_index(&backups, h);
  return i < 0 ? NULL : backups.v[i].p;
}

int32_t exports_pylon_sqlite_capi_backup_step(uint32_t backup, int32_t pages) {
  sqlite3_backup *b = backup_get(backup);
  return b ? sqlite3_backup_step(b, pages) : SQLITE_MISUSE;
}

int32_t exports_pylon_sqlite_capi_backup_remaining(uint32_t backup) {
  sqlite3_backup *b = backup_get(backup);
  return b ? sqlite3_backup_remaining(b) : 0;
}

int32_t exports_pylon_sqlite_capi_backup_pagecount(uint32_t backup) {
  sqlite3_backup *b = backup_get(backup);
  return b ? sqlite3_backup_pagecount(b) : 0;
}

int32_t exports_pylon_sqlite_capi_backup_finish(uint32_t backup) {
  int i = slot_index(&backups, backup);
  if (i < 0) return SQLITE_MISUSE;
  sqlite3_backup *b = backups.v[i].p;
  slot_free(&backups, i);
  return sqlite3_backup_finish(b);
}
