#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/traces/record.sh - record python.trace.gz again: run python-work.py
# under librttrace.so (bench/rttrace.c) with PYTHONMALLOC=malloc (so that
# every Python object comes from malloc, not from Python's own small-object
# allocator) and a fixed hash seed, then turn the raw records into a trace
# with mktrace.py.  The trace depends on the Python version and on its
# standard library: the committed one says which in its first line.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/../build.sh" "$HERE/../.build"
PY="${PYTHON:-/usr/bin/python3}"
LIBDIR="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
VER="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
RAW="$(mktemp)"
trap 'rm -f "$RAW" "$HERE/python.trace"' EXIT
RTTRACE_OUT="$RAW" PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
	LD_PRELOAD="$HERE/../.build/librttrace.so" "$PY" "$HERE/python-work.py" "$LIBDIR"
python3 "$HERE/mktrace.py" "$RAW" "$HERE/python.trace" \
	"python3 $VER (PYTHONMALLOC=malloc) running bench/traces/python-work.py on its $LIBDIR"
gzip -9 -n -f "$HERE/python.trace"
ls -l "$HERE/python.trace.gz"
