#!/usr/bin/env bash
# gcc (driver, cc1, as) compiling librtalloc's own sources with -O2: the
# assembly of each file and the objects' `size` must be identical.
. "$(dirname "$0")/lib.sh"
prog_begin gcc
prog_need gcc size sha256sum
# A snapshot of the sources, so that every run compiles the same text.
SRC=$PROG_WORK/src
mkdir -p "$SRC"
cp -r "$PROJECT_SRC/include" "$PROJECT_SRC/lib" "$SRC/"
FLAGS=(-std=gnu11 -O2 -g0 -D_GNU_SOURCE -ftls-model=initial-exec -fPIC -I"$SRC/include" -I"$SRC/lib")
# bash -c SCRIPT _ FLAGS...: -S and -c of every lib/*.c, then a digest of each
# .s and the sizes of the objects.
prog_both gcc-O2 --env "SRC=$SRC" --timeout 120 -- bash -c \
	'gcc "$@" -S "$SRC"/lib/*.c && gcc "$@" -c "$SRC"/lib/*.c && sha256sum ./*.s && size ./*.o' _ "${FLAGS[@]}"
prog_end
