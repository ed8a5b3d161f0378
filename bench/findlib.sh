#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/findlib.sh [--no-build] [LOG] - print the path of librtalloc.so.
#
# Looks in the project's build directory (build/gcc/ of tools/test, build/) and uses what
# is there.  Otherwise (unless --no-build) builds or updates the library in a
# private directory, bench/.build/meson/, with the project's meson.build (log
# in LOG, default /dev/null), leaving the developers' own build/ untouched.
# Prints nothing and exits 1 when there is no library.
set -uo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
PRIVATE="$BENCH/.build/meson"
BUILD=1
if [ "${1:-}" = --no-build ]; then
	BUILD=0
	shift
fi
LOG="${1:-/dev/null}"

first_existing() { # paths...
	local c
	for c in "$@"; do
		[ -e "$c" ] && { printf '%s\n' "$c"; return 0; }
	done
	return 1
}

# The developers' own build, as it is.
first_existing "$ROOT/build/gcc/librtalloc.so" "$ROOT/build/librtalloc.so" && exit 0

# Else the private build, brought up to date with the sources (incremental).
if [ "$BUILD" = 1 ] && [ -f "$ROOT/meson.build" ] &&
	command -v meson >/dev/null && command -v ninja >/dev/null; then
	{
		[ -f "$PRIVATE/build.ninja" ] ||
			meson setup "$PRIVATE" "$ROOT" -Dtests=disabled -Dbench=disabled
		meson compile -C "$PRIVATE"
	} >"$LOG" 2>&1 || echo "bench/findlib.sh: building librtalloc failed" >&2
fi
first_existing "$PRIVATE/lib/librtalloc.so" "$PRIVATE/librtalloc.so"
