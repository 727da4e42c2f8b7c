/* config.h for liblzma 5.4.1 on wasm32-wasip1 (zig's clang, wasi-libc),
 * written by hand in place of configure's output: what
 * `./configure --host=wasm32-wasi --disable-threads --enable-static
 * --disable-shared` would find, with every filter, match finder and check. */

/* Package. */
#define PACKAGE "xz"
#define PACKAGE_BUGREPORT "xz@tukaani.org"
#define PACKAGE_NAME "XZ Utils"
#define PACKAGE_STRING "XZ Utils 5.4.1"
#define PACKAGE_TARNAME "xz"
#define PACKAGE_URL "https://tukaani.org/xz/"
#define PACKAGE_VERSION "5.4.1"

/* configure's default (no --enable-debug). */
#define NDEBUG 1

/* Integrity checks (SHA-256 is liblzma's own: no system SHA-256). */
#define HAVE_CHECK_CRC32 1
#define HAVE_CHECK_CRC64 1
#define HAVE_CHECK_SHA256 1

/* Encoders. */
#define HAVE_ENCODERS 1
#define HAVE_ENCODER_LZMA1 1
#define HAVE_ENCODER_LZMA2 1
#define HAVE_ENCODER_DELTA 1
#define HAVE_ENCODER_X86 1
#define HAVE_ENCODER_POWERPC 1
#define HAVE_ENCODER_IA64 1
#define HAVE_ENCODER_ARM 1
#define HAVE_ENCODER_ARMTHUMB 1
#define HAVE_ENCODER_ARM64 1
#define HAVE_ENCODER_SPARC 1

/* Decoders. */
#define HAVE_DECODERS 1
#define HAVE_DECODER_LZMA1 1
#define HAVE_DECODER_LZMA2 1
#define HAVE_DECODER_DELTA 1
#define HAVE_DECODER_X86 1
#define HAVE_DECODER_POWERPC 1
#define HAVE_DECODER_IA64 1
#define HAVE_DECODER_ARM 1
#define HAVE_DECODER_ARMTHUMB 1
#define HAVE_DECODER_ARM64 1
#define HAVE_DECODER_SPARC 1
#define HAVE_LZIP_DECODER 1

/* Match finders. */
#define HAVE_MF_HC3 1
#define HAVE_MF_HC4 1
#define HAVE_MF_BT2 1
#define HAVE_MF_BT3 1
#define HAVE_MF_BT4 1

/* Headers and types wasi-libc has. */
#define STDC_HEADERS 1
#define HAVE_STDBOOL_H 1
#define HAVE__BOOL 1
#define HAVE_STDINT_H 1
#define HAVE_INTTYPES_H 1
#define HAVE_LIMITS_H 1
#define HAVE_STDIO_H 1
#define HAVE_STDLIB_H 1
#define HAVE_STRING_H 1
#define HAVE_STRINGS_H 1
#define HAVE_SYS_PARAM_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TIME_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_UNISTD_H 1
#define HAVE_FCNTL_H 1
#define HAVE_WCHAR_H 1
#define HAVE_UINTPTR_T 1

/* wasm32: 32-bit size_t, little endian (WORDS_BIGENDIAN stays undefined). */
#define SIZEOF_SIZE_T 4

/* clang's builtins. */
#define HAVE___BUILTIN_BSWAPXX 1
#define HAVE___BUILTIN_ASSUME_ALIGNED 1

/* A static library: no -fvisibility=hidden, no symbol versions. */
#define HAVE_VISIBILITY 0

/* Left undefined on purpose:
 * - MYTHREAD_POSIX and friends: single-threaded (mythread_once runs the
 *   function directly).
 * - TUKLIB_PHYSMEM_* and TUKLIB_CPUCORES_*: WASI has no way to ask, so
 *   lzma_physmem() and lzma_cputhreads() return 0 ("unknown").
 * - TUKLIB_FAST_UNALIGNED_ACCESS: configure enables it only on x86, PowerPC
 *   and some ARM; elsewhere integers are read through memcpy.
 * - HAVE_USABLE_CLMUL, HAVE_IMMINTRIN_H, HAVE_CPUID_H: x86 only, so CRC64
 *   is the generic slice-by-four code.
 * - HAVE_FUNC_ATTRIBUTE_CONSTRUCTOR: only used to pick the CLMUL CRC64 or
 *   to fill the HAVE_SMALL CRC tables; neither is built here.
 * - HAVE_SMALL: the default, table-driven build. */

/* Extensions, as AC_USE_SYSTEM_EXTENSIONS defines them. */
#ifndef _GNU_SOURCE
#	define _GNU_SOURCE 1
#endif
