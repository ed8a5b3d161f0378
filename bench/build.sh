#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/build.sh [DIR] - build the benchmark programs with the system C
# compiler into DIR (default bench/.build), without meson, so that bench/run
# and bench/demo work whatever state the project's own build is in:
#   rtbench, rtdemo, librtrecipe.so, librtmlock.so, librttrace.so
# None of them links librtalloc: it is always brought in with LD_PRELOAD.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$BENCH/.build}"
CC="${CC:-cc}"
command -v "$CC" >/dev/null 2>&1 || CC=gcc
FLAGS=(-std=gnu11 -O2 -g -Wall -Wextra)

# Nothing to do when every program is newer than every source.
up_to_date() {
	local out src
	for out in rtbench rtdemo librtrecipe.so librtmlock.so librttrace.so; do
		[ -e "$OUT/$out" ] || return 1
		for src in "$BENCH"/*.c "$BENCH"/*.h "$BENCH/build.sh"; do
			[ "$src" -nt "$OUT/$out" ] && return 1
		done
	done
	return 0
}

mkdir -p "$OUT"
up_to_date && exit 0
"$CC" "${FLAGS[@]}" -o "$OUT/rtbench" \
	"$BENCH/rtbench.c" "$BENCH/rtb_common.c" "$BENCH/rtb_latency.c" \
	"$BENCH/rtb_throughput.c" "$BENCH/rtb_memory.c" "$BENCH/rtb_startup.c" \
	"$BENCH/rtb_instr.c" "$BENCH/rtb_classic.c" "$BENCH/rtb_trace.c" -lpthread -lm -ldl
"$CC" "${FLAGS[@]}" -o "$OUT/rtdemo" "$BENCH/demo.c" "$BENCH/rtb_common.c" -lpthread -lm -ldl
"$CC" "${FLAGS[@]}" -shared -fPIC -o "$OUT/librtrecipe.so" "$BENCH/rtrecipe.c"
"$CC" "${FLAGS[@]}" -shared -fPIC -o "$OUT/librtmlock.so" "$BENCH/rtmlock.c"
"$CC" "${FLAGS[@]}" -shared -fPIC -o "$OUT/librttrace.so" "$BENCH/rttrace.c"
