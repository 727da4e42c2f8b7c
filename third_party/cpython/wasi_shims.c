// Corrections to the WASI libc that pylon links, applied at link time with
// wasm-ld's `--wrap=SYMBOL` (the base's link flags name each symbol, so a
// reference to SYMBOL resolves to `__wrap_SYMBOL` here, which calls the
// libc's own `__real_SYMBOL`).
//
// - Paths that are not UTF-8. The component model passes file names as
//   `string`s: the WASI preview1 adapter converts a preview1 path to one
//   and traps on invalid UTF-8, which kills the whole interpreter (e.g.
//   `os.stat(b"\xff")`, or a `str` path with surrogate escapes). Such a
//   file name cannot exist under WASI preview 2, so every path-taking
//   preview1 call checks its paths first and fails with EILSEQ instead:
//   Python raises `OSError: [Errno 25] Illegal byte sequence`.
// - `utimensat(..., NULL, ...)` and `futimens(fd, NULL)` must set both
//   timestamps to the current time; this libc sets them to 0 (the Unix
//   epoch), so `os.utime(path)` and `pathlib.Path.touch()` did, and it
//   fails on `UTIME_NOW` with EINVAL. Both are passed on as the current
//   time read from the realtime clock, which the libc converts correctly.

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <wasi/api.h>

// Whether `s` (NUL-terminated) is UTF-8 as the component model's `string`
// requires: no overlong forms, no surrogates, nothing above U+10FFFF.
static int valid_utf8(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) {
        lo = 0xA0;
      } else if (c == 0xED) {
        hi = 0x9F;
      }
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) {
        lo = 0x90;
      } else if (c == 0xF4) {
        hi = 0x8F;
      }
    } else {
      return 0;
    }
    // The first continuation byte has the narrowed range, the rest the
    // full one; the terminating NUL fails the range check.
    if (p[1] < lo || p[1] > hi) {
      return 0;
    }
    for (int i = 2; i <= n; i++) {
      if (p[i] < 0x80 || p[i] > 0xBF) {
        return 0;
      }
    }
    p += n + 1;
  }
  return 1;
}

#define CHECK(path)                                                            \
  do {                                                                         \
    if (!valid_utf8(path)) {                                                   \
      return __WASI_ERRNO_ILSEQ;                                               \
    }                                                                          \
  } while (0)

__wasi_errno_t __real___wasi_path_create_directory(__wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_create_directory(__wasi_fd_t fd, const char *path) {
  CHECK(path);
  return __real___wasi_path_create_directory(fd, path);
}

__wasi_errno_t __real___wasi_path_filestat_get(__wasi_fd_t, __wasi_lookupflags_t, const char *,
                                               __wasi_filestat_t *);
__wasi_errno_t __wrap___wasi_path_filestat_get(__wasi_fd_t fd, __wasi_lookupflags_t flags,
                                               const char *path, __wasi_filestat_t *out) {
  CHECK(path);
  return __real___wasi_path_filestat_get(fd, flags, path, out);
}

__wasi_errno_t __real___wasi_path_filestat_set_times(__wasi_fd_t, __wasi_lookupflags_t,
                                                     const char *, __wasi_timestamp_t,
                                                     __wasi_timestamp_t, __wasi_fstflags_t);
__wasi_errno_t __wrap___wasi_path_filestat_set_times(__wasi_fd_t fd, __wasi_lookupflags_t flags,
                                                     const char *path, __wasi_timestamp_t atim,
                                                     __wasi_timestamp_t mtim,
                                                     __wasi_fstflags_t fst_flags) {
  CHECK(path);
  return __real___wasi_path_filestat_set_times(fd, flags, path, atim, mtim, fst_flags);
}

__wasi_errno_t __real___wasi_path_link(__wasi_fd_t, __wasi_lookupflags_t, const char *,
                                       __wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_link(__wasi_fd_t old_fd, __wasi_lookupflags_t old_flags,
                                       const char *old_path, __wasi_fd_t new_fd,
                                       const char *new_path) {
  CHECK(old_path);
  CHECK(new_path);
  return __real___wasi_path_link(old_fd, old_flags, old_path, new_fd, new_path);
}

__wasi_errno_t __real___wasi_path_open(__wasi_fd_t, __wasi_lookupflags_t, const char *,
                                       __wasi_oflags_t, __wasi_rights_t, __wasi_rights_t,
                                       __wasi_fdflags_t, __wasi_fd_t *);
__wasi_errno_t __wrap___wasi_path_open(__wasi_fd_t fd, __wasi_lookupflags_t dirflags,
                                       const char *path, __wasi_oflags_t oflags,
                                       __wasi_rights_t base, __wasi_rights_t inheriting,
                                       __wasi_fdflags_t fdflags, __wasi_fd_t *out) {
  CHECK(path);
  return __real___wasi_path_open(fd, dirflags, path, oflags, base, inheriting, fdflags, out);
}

__wasi_errno_t __real___wasi_path_readlink(__wasi_fd_t, const char *, uint8_t *, __wasi_size_t,
                                           __wasi_size_t *);
__wasi_errno_t __wrap___wasi_path_readlink(__wasi_fd_t fd, const char *path, uint8_t *buf,
                                           __wasi_size_t len, __wasi_size_t *out) {
  CHECK(path);
  return __real___wasi_path_readlink(fd, path, buf, len, out);
}

__wasi_errno_t __real___wasi_path_remove_directory(__wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_remove_directory(__wasi_fd_t fd, const char *path) {
  CHECK(path);
  return __real___wasi_path_remove_directory(fd, path);
}

__wasi_errno_t __real___wasi_path_rename(__wasi_fd_t, const char *, __wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_rename(__wasi_fd_t fd, const char *old_path, __wasi_fd_t new_fd,
                                         const char *new_path) {
  CHECK(old_path);
  CHECK(new_path);
  return __real___wasi_path_rename(fd, old_path, new_fd, new_path);
}

__wasi_errno_t __real___wasi_path_symlink(const char *, __wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_symlink(const char *old_path, __wasi_fd_t fd,
                                          const char *new_path) {
  CHECK(old_path);
  CHECK(new_path);
  return __real___wasi_path_symlink(old_path, fd, new_path);
}

__wasi_errno_t __real___wasi_path_unlink_file(__wasi_fd_t, const char *);
__wasi_errno_t __wrap___wasi_path_unlink_file(__wasi_fd_t fd, const char *path) {
  CHECK(path);
  return __real___wasi_path_unlink_file(fd, path);
}

// `times` with NULL or UTIME_NOW replaced by the current time, in `buf`.
static const struct timespec *explicit_times(const struct timespec *times,
                                             struct timespec buf[2]) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  for (int i = 0; i < 2; i++) {
    buf[i] = (times == NULL || times[i].tv_nsec == UTIME_NOW) ? now : times[i];
  }
  return buf;
}

int __real_utimensat(int, const char *, const struct timespec[2], int);
int __wrap_utimensat(int fd, const char *path, const struct timespec times[2], int flag) {
  struct timespec buf[2];
  return __real_utimensat(fd, path, explicit_times(times, buf), flag);
}

int __real_futimens(int, const struct timespec[2]);
int __wrap_futimens(int fd, const struct timespec times[2]) {
  struct timespec buf[2];
  return __real_futimens(fd, explicit_times(times, buf));
}
