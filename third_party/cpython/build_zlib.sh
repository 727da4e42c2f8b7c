#!/usr/bin/env bash
# Build zlib for wasm32-wasi as a static library.
# usage: zlib.sh ZLIB_ORIG_TARBALL OUTPUT_TAR_GZ
# Output tarball: include/zlib.h, include/zconf.h, lib/libz.a
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 ZLIB_ORIG_TARBALL OUTPUT_TAR_GZ" >&2; exit 2; }
src_tar=$(realpath "$1")
out=$(realpath -m "$2")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zlib-wasi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Clean sysroot: Debian's clang would otherwise also search the host /usr/include.
sysroot=$tmp/sysroot
mkdir -p "$sysroot/lib"
ln -sfn /usr/include/wasm32-wasi "$sysroot/include"
ln -sfn /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasi"

mkdir "$tmp/src"
tar --no-same-owner -xf "$src_tar" -C "$tmp/src" --strip-components=1
cd "$tmp/src"
CC="clang --target=wasm32-wasi --sysroot=$sysroot" \
CFLAGS="-O2 -ffile-prefix-map=$tmp=." \
AR=llvm-ar ARFLAGS=rcD RANLIB=llvm-ranlib \
CHOST=wasm32-wasi \
  ./configure --static --prefix=/ >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log" >&2; exit 1; }
make -j"$(nproc)" libz.a >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; exit 1; }

stage=$tmp/stage
mkdir -p "$stage/include" "$stage/lib"
cp zlib.h zconf.h "$stage/include/"
cp libz.a "$stage/lib/"
mkdir -p "$(dirname "$out")"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rwX,go+rX,go-w -C "$stage" -c include lib \
  | gzip -n -9 >"$out"
