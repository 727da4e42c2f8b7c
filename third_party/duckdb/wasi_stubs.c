/* What DuckDB calls that WASI's emulated mman leaves undefined. They are
 * hints or pinning requests with no meaning in a wasm linear memory:
 * report success and do nothing. (msync is only reached for files mapped
 * shared, which the emulated mmap refuses first.) */
#include <stddef.h>

int madvise(void *addr, size_t len, int advice) {
    (void)addr;
    (void)len;
    (void)advice;
    return 0;
}

int mlock(const void *addr, size_t len) {
    (void)addr;
    (void)len;
    return 0;
}

int munlock(const void *addr, size_t len) {
    (void)addr;
    (void)len;
    return 0;
}

int msync(void *addr, size_t len, int flags) {
    (void)addr;
    (void)len;
    (void)flags;
    return 0;
}
