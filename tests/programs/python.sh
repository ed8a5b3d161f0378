#!/usr/bin/env bash
# python3 (Debian's, /usr/bin/python3): dicts, strings, json, threads; once
# with Python's own small-object allocator and once with PYTHONMALLOC=malloc,
# where every object goes through malloc.
. "$(dirname "$0")/lib.sh"
prog_begin python3
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { say "SKIP: no python3"; exit 77; }
W=$PROGRAMS_SRC/workload.py
prog_both python3 --env PYTHONHASHSEED=0 -- "$PY" "$W"
prog_both python3-malloc --env PYTHONHASHSEED=0 --env PYTHONMALLOC=malloc --min-mallocs 1000000 -- "$PY" "$W"
prog_end
