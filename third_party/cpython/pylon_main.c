// pylon's `main`: CPython 3.11 for wasm32-wasi with the caps built in.
//
// Linked statically with libpython3.11.a, libmpdec.a, libexpat.a, libz.a, the
// caps' objects and a generated C file that defines the caps' init table:
//
//   #include <Python.h>
//   extern PyObject *PyInit_mycap(void);
//   const struct { const char *name; PyObject *(*init)(void); } kiln_inittab[] = {
//     {"mycap", PyInit_mycap},
//     {NULL, NULL},
//   };
//
// A cap's module name must not clash with a built-in module (e.g. `_imp`).
//
// The standard library is a zip mounted in the guest at PYLON_STDLIB_ZIP
// (sys.path is the script's directory, or '' for -c / -m, then that zip).
// Like `python -E -s`: PYTHON* variables and the user site are ignored, the
// command line is parsed like python's (`-c CODE`, `-m MODULE`,
// `SCRIPT [ARGS]`, `-I`, `-X ...`).
//
// pylon always runs in Python's UTF-8 mode (PEP 540), whatever host runs
// it: WASI hands argv and the environment over as UTF-8 strings and has no
// locale encoding to fall back to (without it Python picks ASCII), so the
// command line, file names, the environment and the standard streams are
// UTF-8. An explicit utf8_mode takes precedence over `-X utf8`.
//
// Link with -nostartfiles: this file supplies `_start` (lld 14 would otherwise
// wrap every export in constructor/destructor calls), and it exports a weak
// `cabi_realloc` built on malloc/realloc (the WASI command adapter allocates
// through it; the component bindings may supply their own).
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef PYLON_HOME
#define PYLON_HOME L"/lib"
#endif
#ifndef PYLON_STDLIB_ZIP
#define PYLON_STDLIB_ZIP L"/lib/python311.zip"
#endif

extern const struct {
  const char *name;
  PyObject *(*init)(void);
} kiln_inittab[];

static void exit_on_error(PyStatus status, PyConfig *config) {
  if (PyStatus_Exception(status)) {
    PyConfig_Clear(config);
    Py_ExitStatusException(status);  // does not return
  }
}

int main(int argc, char **argv) {
  for (size_t i = 0; kiln_inittab[i].name != NULL; i++) {
    if (PyImport_AppendInittab(kiln_inittab[i].name, kiln_inittab[i].init) != 0) {
      fprintf(stderr, "pylon: cannot register module %s\n", kiln_inittab[i].name);
      return 1;
    }
  }

  // UTF-8 mode is a pre-initialization setting: it decides how argv is
  // decoded, so it is set before the arguments are parsed.
  PyPreConfig preconfig;
  PyPreConfig_InitIsolatedConfig(&preconfig);
  preconfig.isolated = 0;
  preconfig.use_environment = 0;
  preconfig.parse_argv = 1;
  preconfig.utf8_mode = 1;
  PyStatus pre = Py_PreInitializeFromBytesArgs(&preconfig, argc, argv);
  if (PyStatus_Exception(pre)) {
    Py_ExitStatusException(pre);  // does not return
  }

  PyConfig config;
  // Like `python -E -s`: the isolated config, except that the script's
  // directory (or '' for -c / -m) goes on sys.path (isolated=1 would force
  // safe_path=1) and python-style options are parsed (-I still isolates fully).
  PyConfig_InitIsolatedConfig(&config);
  config.isolated = 0;
  config.safe_path = 0;
  config.use_environment = 0;
  config.user_site_directory = 0;
  config.parse_argv = 1;
  exit_on_error(PyConfig_SetBytesArgv(&config, argc, argv), &config);
  exit_on_error(PyConfig_SetString(&config, &config.home, PYLON_HOME), &config);
  config.module_search_paths_set = 1;
  exit_on_error(PyWideStringList_Append(&config.module_search_paths, PYLON_STDLIB_ZIP), &config);

  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    if (PyStatus_IsExit(status)) {
      return status.exitcode;
    }
    Py_ExitStatusException(status);
  }
  return Py_RunMain();
}

// The canonical ABI allocator, through malloc so that the adapter and the
// guest share one heap.
__attribute__((__weak__, __export_name__("cabi_realloc")))
void *cabi_realloc(void *ptr, size_t old_size, size_t align, size_t new_size) {
  (void)old_size;
  if (new_size == 0) {
    return (void *)align;
  }
  void *ret = realloc(ptr, new_size);
  if (!ret) {
    abort();
  }
  return ret;
}

// The exit status reaches the host exactly. wasi-libc's `_Exit` calls the
// preview1 `proc_exit`, which the WASI adapter maps to `wasi:cli/exit#exit`
// with `ok` or `err`: every non-zero status would arrive as 1. These
// definitions take the place of libc's (`_Exit.o`, which defines both, is
// then never linked): status 0 goes through `proc_exit` as before, any
// other through `exit-with-code` (wasi:cli 0.2.12, served by wasmtime and
// by kiln's host), truncated to 8 bits as POSIX `exit` does.
__attribute__((__import_module__("wasi:cli/exit@0.2.12"), __import_name__("exit-with-code")))
extern void pylon_exit_with_code(int32_t status_code);
__attribute__((__import_module__("wasi_snapshot_preview1"), __import_name__("proc_exit")))
extern void pylon_proc_exit(int32_t status);

_Noreturn void _Exit(int status) {
  status &= 0xff;
  if (status == 0) {
    pylon_proc_exit(0);
  } else {
    pylon_exit_with_code(status);
  }
  __builtin_unreachable();
}

_Noreturn void _exit(int status) {
  _Exit(status);
}

// Linked with -nostartfiles: run the constructors once, then main with the
// WASI arguments (wasi-libc's __main_void fetches argv and calls main).
extern void __wasm_call_ctors(void);
extern int __main_void(void);

__attribute__((__export_name__("_start")))
void _start(void) {
  __wasm_call_ctors();
  exit(__main_void());
}
