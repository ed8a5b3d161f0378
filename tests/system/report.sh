#!/bin/bash
# SPDX-License-Identifier: MIT
#
# report.sh ST_PROBE -- RTALLOC_REPORT with what it may name (RTALLOC_LIB from
# meson).
#
#  - a regular file: one JSON line appended per run;
#  - a FIFO without a reader, or with one: the exit does not hang, one line on
#    stderr, nothing written into the FIFO;
#  - a directory, a path in a missing directory, a symbolic link (even to a
#    regular file): one line naming the variable, no report, nothing created;
#  - stderr: the JSON line on stderr, also for a program that closes its
#    stderr at exit (ls: coreutils' close_stdout, an atexit handler that runs
#    before the library's destructor).
name=report
PROBE=${1:?st_probe path}
. "$(dirname "$0")/st_lib.sh"

# refused WHAT: exit 0 (no hang), one line naming RTALLOC_REPORT and the path.
refused() {
	check '[ $RC -eq 0 ]' "$1: exit $RC (124: the exit hung)"
	check '[ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_REPORT="' \
		"$1: want one line naming RTALLOC_REPORT, got $(lines "$ERR")"
}
# run VAR=value... -- CMD ARGS: like probe, for any program, with a timeout.
run() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	OUT=$(timeout 20 env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_POOL_SIZE=2M "${vars[@]}" \
		LD_PRELOAD="$RTALLOC_LIB" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="${vars[*]} $*"
}

# A regular file: appended.
run RTALLOC_REPORT="$st_tmp/r" -- "$PROBE" info
run RTALLOC_REPORT="$st_tmp/r" -- "$PROBE" info
json='{"rtalloc":'
check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(grep -cF "$json" "$st_tmp/r")" -eq 2 ]' \
	"a regular file: want two JSON lines after two runs"

# A FIFO without a reader: the exit must not block on it.
mkfifo "$st_tmp/fifo"
run RTALLOC_REPORT="$st_tmp/fifo" -- "$PROBE" info
refused "a FIFO without a reader"
# With a reader: refused too (not a regular file), and the reader sees nothing.
(timeout 20 cat "$st_tmp/fifo" >"$st_tmp/fifo.out") &
reader=$!
sleep 0.2
run RTALLOC_REPORT="$st_tmp/fifo" -- "$PROBE" info
refused "a FIFO with a reader"
exec 9<>"$st_tmp/fifo" # let the reader finish if nothing opened the FIFO (<>: never blocks)
exec 9>&-
wait $reader
check '[ ! -s "$st_tmp/fifo.out" ]' "a FIFO with a reader: the report was written into it"

# A directory, a missing directory, a symbolic link.
run RTALLOC_REPORT="$st_tmp" -- "$PROBE" info
refused "a directory"
run RTALLOC_REPORT="$st_tmp/none/r" -- "$PROBE" info
refused "a missing directory"
check '[ ! -e "$st_tmp/none" ]' "a missing directory was created"
ln -s "$st_tmp/target" "$st_tmp/link"
run RTALLOC_REPORT="$st_tmp/link" -- "$PROBE" info
refused "a symbolic link to a missing file"
check '[ ! -e "$st_tmp/target" ]' "a symbolic link was followed"
: >"$st_tmp/target"
run RTALLOC_REPORT="$st_tmp/link" -- "$PROBE" info
refused "a symbolic link to a regular file"
check '[ ! -s "$st_tmp/target" ]' "a symbolic link was followed"

# stderr: the probe, and ls, which closes stderr before our destructor runs.
run RTALLOC_REPORT=stderr -- "$PROBE" info
check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -qF "$json"' \
	"RTALLOC_REPORT=stderr: want the JSON line on stderr"
LS=$(command -v ls)
run RTALLOC_REPORT=stderr -- "$LS" "$st_tmp"
check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -qF "$json"' \
	"RTALLOC_REPORT=stderr ls: want the JSON line on stderr"
# ls with its stderr on a pipe: the same.
ERR=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_POOL_SIZE=2M RTALLOC_REPORT=stderr \
	LD_PRELOAD="$RTALLOC_LIB" "$LS" "$st_tmp" 2>&1 >/dev/null | cat)
LAST="RTALLOC_REPORT=stderr ls 2>&1 | cat"
check 'printf "%s" "$ERR" | grep -qF "$json"' "RTALLOC_REPORT=stderr ls, stderr a pipe: no JSON line"

finish
