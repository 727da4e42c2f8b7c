#!/usr/bin/env bash
# Cross-build CPython 3.11.2 for wasm32-wasi as static libraries + headers, and
# a zipped, precompiled pure-Python standard library.
#
# usage: cpython.sh PYTHON_ORIG_TAR ZLIB_WASI_TAR OUT_CPYTHON_TAR OUT_STDLIB_ZIP [GUEST_ZIP_PATH]
#   PYTHON_ORIG_TAR  python3.11_3.11.2.orig.tar.gz (pristine upstream 3.11.2)
#   ZLIB_WASI_TAR    zlib-wasi.tar.gz from zlib.sh (include/, lib/libz.a)
#   OUT_CPYTHON_TAR  written: lib/{libpython3.11,libmpdec,libexpat,libz}.a,
#                    include/python3.11/ (Include/ + generated pyconfig.h)
#   OUT_STDLIB_ZIP   written: Lib/ without tests/GUI/ensurepip, plus the
#                    generated _sysconfigdata module, with legacy-layout .pyc
#                    (unchecked-hash), deterministic
#   GUEST_ZIP_PATH   where the zip is mounted in the guest; only used for the
#                    file names recorded in the .pyc files (default
#                    /lib/python311.zip)
# env: BUILD_PYTHON  a native CPython 3.11 for the build (default /usr/bin/python3.11)
set -euo pipefail
[ $# -ge 4 ] && [ $# -le 5 ] || {
  echo "usage: $0 PYTHON_ORIG_TAR ZLIB_WASI_TAR OUT_CPYTHON_TAR OUT_STDLIB_ZIP [GUEST_ZIP_PATH]" >&2; exit 2; }
py_tar=$(realpath "$1")
zlib_tar=$(realpath "$2")
out_tar=$(realpath -m "$3")
out_zip=$(realpath -m "$4")
guest_zip=${5:-/lib/python311.zip}
build_python=${BUILD_PYTHON:-/usr/bin/python3.11}
jobs=$(nproc)

"$build_python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' || {
  echo "cpython.sh: $build_python is not a Python 3.11" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cpython-wasi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Build paths end up in _sysconfigdata and the Makefile; they are rewritten to
# this fixed prefix in the outputs.
fixed_prefix=/kiln-build

# Clean sysroot: Debian's clang would otherwise also search the host /usr/include.
sysroot=$tmp/sysroot
mkdir -p "$sysroot/lib"
ln -sfn /usr/include/wasm32-wasi "$sysroot/include"
ln -sfn /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasi"

mkdir -p "$tmp/zlib" "$tmp/pkgconfig" "$tmp/src"
tar --no-same-owner -xzf "$zlib_tar" -C "$tmp/zlib"
tar --no-same-owner -xzf "$py_tar" -C "$tmp/src" --strip-components=1
src=$tmp/src
cd "$src"

log() { echo "cpython.sh: $(date -u +%T) $*" >&2; }
run_logged() { # name cmd...
  local name=$1; shift
  "$@" >"$tmp/$name.log" 2>&1 || { tail -n 60 "$tmp/$name.log" >&2; echo "cpython.sh: $name failed" >&2; exit 1; }
}

# Source patches, applied by exact text (a changed source fails the build):
# - `_Py_abspath`: a relative path joined to a working directory that ends
#   in a separator (the guest's `/`) gets no second one, and leading `./`
#   segments are dropped, so a script run as `script.py` or `./script.py` is
#   `/script.py` in `__file__` and tracebacks (not `//script.py`).
"$build_python" -I - Python/fileutils.c <<'PY'
import sys
path = sys.argv[1]
with open(path, encoding="utf8") as f:
    text = f.read()
old = """    size_t cwd_len = wcslen(cwd);
    size_t path_len = wcslen(path);
    size_t len = cwd_len + 1 + path_len + 1;"""
new = """    while (path[0] == L'.' && path[1] == (wchar_t)SEP) {
        path += 2;
        while (path[0] == (wchar_t)SEP) {
            path++;
        }
    }
    size_t cwd_len = wcslen(cwd);
    size_t path_len = wcslen(path);
    size_t len = cwd_len + 1 + path_len + 1;"""
old2 = """    *abspath = (wchar_t)SEP;
    abspath++;

    memcpy(abspath, path, path_len * sizeof(wchar_t));"""
new2 = """    if (cwd_len == 0 || cwd[cwd_len - 1] != (wchar_t)SEP) {
        *abspath = (wchar_t)SEP;
        abspath++;
    }

    memcpy(abspath, path, path_len * sizeof(wchar_t));"""
for a, b in ((old, new), (old2, new2)):
    if text.count(a) != 1:
        sys.exit(f"cpython.sh: the _Py_abspath patch does not apply to {path}")
    text = text.replace(a, b)
with open(path, "w", encoding="utf8") as f:
    f.write(text)
PY

log configure
# OPT: CPython's default (-DNDEBUG -g -fwrapv -O3 -Wall) without -g (no debug
# info: 3x smaller archive, no paths) and with -O2 (smaller code).
export CONFIG_SITE=$src/Tools/wasm/config.site-wasm32-wasi
export PKG_CONFIG_LIBDIR=$tmp/pkgconfig PKG_CONFIG_PATH=
run_logged configure ./configure \
  --host=wasm32-unknown-wasi --build="$(./config.guess)" \
  --with-build-python="$build_python" \
  --without-ensurepip \
  CC="clang --target=wasm32-wasi --sysroot=$sysroot" \
  CPP="clang --target=wasm32-wasi --sysroot=$sysroot -E" \
  AR=llvm-ar RANLIB=llvm-ranlib READELF=true \
  OPT="-DNDEBUG -fwrapv -O2 -Wall -ffile-prefix-map=$tmp=$fixed_prefix" \
  ZLIB_CFLAGS="-I$tmp/zlib/include" ZLIB_LIBS="-L$tmp/zlib/lib -lz"

# Every module we need must be built in (static), never missing/disabled.
for m in zlib _json _sre math _struct binascii _datetime _decimal; do
  grep -Eq "^$m( |$)" Modules/Setup.stdlib Modules/Setup.bootstrap || {
    echo "cpython.sh: module $m is not configured as built-in" >&2
    grep -n "$m" Modules/Setup.stdlib Modules/Setup.bootstrap >&2 || true
    exit 1; }
done

log make
# clang 14 ignores SOURCE_DATE_EPOCH: pin the build date that getbuildinfo.c
# puts into sys.version (DATE/TIME are used nowhere else). Given on make's
# command line, so it stays out of pyconfig.h and the Makefile
# (pybuilddir.txt, i.e. _sysconfigdata, is made first and without it: make
# exports command-line variables and sysconfig reads them from the environment.)
run_logged make-sysconfig make pybuilddir.txt
run_logged make make -j"$jobs" \
  "CPPFLAGS=-DDATE='\"Jan  1 1970\"' -DTIME='\"00:00:00\"'" \
  libpython3.11.a Modules/_decimal/libmpdec/libmpdec.a Modules/expat/libexpat.a

log package
stage=$tmp/stage
mkdir -p "$stage/lib" "$stage/include/python3.11"
cp libpython3.11.a Modules/_decimal/libmpdec/libmpdec.a Modules/expat/libexpat.a \
   "$tmp/zlib/lib/libz.a" "$stage/lib/"
cp -R Include/. "$stage/include/python3.11/"
cp pyconfig.h "$stage/include/python3.11/"
mkdir -p "$(dirname "$out_tar")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w \
  -C "$stage" -c include lib | gzip -n -9 >"$out_tar"

# The generated _sysconfigdata module, with the build paths made fixed. It is
# rewritten from its values, not with sed: pprint wraps lines by length, so
# the layout depends on the length of the build path.
builddir_lib=$src/$(cat pybuilddir.txt)
sysconfigdata=$(cd "$builddir_lib" && ls _sysconfigdata_*.py)
mkdir -p "$tmp/extra"
"$build_python" -I - "$builddir_lib/$sysconfigdata" "$tmp/extra/$sysconfigdata" "$tmp" "$fixed_prefix" <<'PY'
import pprint, sys
src, dst, old, new = sys.argv[1:5]
ns = {}
with open(src, encoding="utf8") as f:
    exec(f.read(), ns)
build_time_vars = {k: v.replace(old, new) if isinstance(v, str) else v
                   for k, v in ns["build_time_vars"].items()}
with open(dst, "w", encoding="utf8") as f:  # as sysconfig._generate_posix_vars writes it
    f.write("# system configuration generated and used by the sysconfig module\n")
    f.write("build_time_vars = ")
    pprint.pprint(build_time_vars, stream=f)
PY
if grep -q "$tmp" "$tmp/extra/$sysconfigdata" "$stage/include/python3.11/pyconfig.h"; then
  echo "cpython.sh: build path left in the outputs" >&2; exit 1
fi

# Zip the stdlib: sorted entries, fixed timestamps and modes, unchecked-hash pyc.
# Files are compiled in sorted order with a fixed hash seed: marshal's output
# depends on reference counts (FLAG_REF), so keep the process history fixed.
mkdir -p "$(dirname "$out_zip")"
PYTHONHASHSEED=0 "$build_python" -P -s -S - "$src/Lib" "$tmp/extra" "$out_zip" "$guest_zip" <<'PY'
import importlib.util, marshal, os, sys, zipfile

lib, extra, out, guest = sys.argv[1:5]
SKIP_DIRS = {"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo",
             "ensurepip", "site-packages", "__pycache__", "__phello__"}
SKIP_FILES = {"turtle.py"}
DATE = (1980, 1, 1, 0, 0, 0)

files = {}  # archive name -> host path
for root in (lib, extra):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for f in filenames:
            if f in SKIP_FILES or f.endswith((".pyc", ".pyo", ".exe", ".dll")):
                continue
            p = os.path.join(dirpath, f)
            files[os.path.relpath(p, root).replace(os.sep, "/")] = p

def pyc(name, path):
    with open(path, "rb") as fh:
        source = fh.read()
    code = compile(source, guest + "/" + name, "exec", dont_inherit=True, optimize=0)
    # PEP 552 header: magic, flags (hash-based, unchecked), source hash, code.
    return (importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little")
            + importlib.util.source_hash(source) + marshal.dumps(code))

def add(zf, name, data):
    zi = zipfile.ZipInfo(name, DATE)
    zi.external_attr = 0o644 << 16
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi.create_system = 3
    zf.writestr(zi, data, compresslevel=9)

entries = {}
for name, path in sorted(files.items()):
    with open(path, "rb") as fh:
        entries[name] = fh.read()
    if name.endswith(".py"):
        try:
            entries[name + "c"] = pyc(name, path)
        except SyntaxError as e:  # e.g. lib2to3 test data; keep the source only
            print(f"stdlib.zip: not compiled: {name}: {e}", file=sys.stderr)
with zipfile.ZipFile(out, "w") as zf:
    for name in sorted(entries):
        add(zf, name, entries[name])
print(f"stdlib.zip: {len(entries)} entries", file=sys.stderr)
PY
log done
