#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/traces/record.sh - record the traces again, each under librttrace.so
# (bench/rttrace.c), the raw records turned into a trace by mktrace.py:
#   python.trace.gz  python-work.py with PYTHONMALLOC=malloc (so that every
#                    Python object comes from malloc, not from Python's own
#                    small-object allocator) and a fixed hash seed;
#   sqlite.trace.gz  sqlite3 :memory: running sqlite-work.sql.
# A trace depends on the program's version (and Python's on its standard
# library): the first line of each says which.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$HERE/../build.sh" "$HERE/../.build"
TRACER="$HERE/../.build/librttrace.so"
RAW="$(mktemp)"
trap 'rm -f "$RAW" "$HERE/python.trace" "$HERE/sqlite.trace"' EXIT

PY="${PYTHON:-/usr/bin/python3}"
LIBDIR="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
VER="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
RTTRACE_OUT="$RAW" PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 \
	LD_PRELOAD="$TRACER" "$PY" "$HERE/python-work.py" "$LIBDIR"
python3 "$HERE/mktrace.py" "$RAW" "$HERE/python.trace" \
	"python3 $VER (PYTHONMALLOC=malloc) running bench/traces/python-work.py on its $LIBDIR"
gzip -9 -n -f "$HERE/python.trace"

SQ="${SQLITE3:-sqlite3}"
VER="$("$SQ" --version | cut -d' ' -f1)"
RTTRACE_OUT="$RAW" LD_PRELOAD="$TRACER" "$SQ" :memory: <"$HERE/sqlite-work.sql"
python3 "$HERE/mktrace.py" "$RAW" "$HERE/sqlite.trace" \
	"sqlite3 $VER running bench/traces/sqlite-work.sql on :memory:"
gzip -9 -n -f "$HERE/sqlite.trace"
ls -l "$HERE"/*.trace.gz
