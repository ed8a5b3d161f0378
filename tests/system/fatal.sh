#!/bin/bash
# SPDX-License-Identifier: MIT
#
# fatal.sh ST_DIE ST_PROBE -- no statistics file stays behind a process that
# librtalloc aborts (RTALLOC_LIB from meson): a double free, the
# RTALLOC_ON_EXHAUST=abort refusal, a bad C++ alignment and, without the
# right to lock memory, RTALLOC_MLOCK=require.  Each aborts (134) and its
# XDG_RUNTIME_DIR (a fresh directory on /dev/shm) holds no rtalloc-*.stats.
name=fatal
DIE=${1:?st_die path}
PROBE=${2:?st_probe path}
. "$(dirname "$0")/st_lib.sh"

# die MODE VAR=value...: run st_die MODE in a directory of its own.
die() {
	local mode=$1
	shift
	dir=$(mktemp -d -p "$st_tmp")
	OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$dir" RTALLOC_POOL_SIZE=1M RTALLOC_POOL_MAX=4M "$@" \
		LD_PRELOAD="$RTALLOC_LIB" "$DIE" "$mode" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="$* $DIE $mode (XDG_RUNTIME_DIR=$dir)"
	LEFT=$(ls "$dir")
}

# The file is really made there (else the checks below prove nothing).
die live
check '[ $RC -eq 0 ] && [ -z "$LEFT" ]' "a clean exit: exit $RC, files left: $LEFT"
OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$dir" LD_PRELOAD="$RTALLOC_LIB" \
	bash -c 'ls "$XDG_RUNTIME_DIR"' 2>/dev/null)
check 'printf "%s" "$OUT" | grep -q "^rtalloc-[0-9]*-[0-9]*\.stats$"' \
	"no statistics file in XDG_RUNTIME_DIR while a process runs: $OUT"

die doublefree
check '[ $RC -eq 134 ]' "double free: exit $RC, want 134"
check 'printf "%s" "$ERR" | grep -q "double free"' "double free: no message"
check '[ -z "$LEFT" ]' "double free: left behind: $LEFT"

die oom RTALLOC_ON_EXHAUST=abort
check '[ $RC -eq 134 ]' "RTALLOC_ON_EXHAUST=abort: exit $RC, want 134"
check '[ -z "$LEFT" ]' "RTALLOC_ON_EXHAUST=abort: left behind: $LEFT"

die cxx-align
if [ $RC -ne 77 ]; then
	check '[ $RC -eq 134 ]' "operator new with alignment 3: exit $RC, want 134"
	check '[ -z "$LEFT" ]' "operator new with alignment 3: left behind: $LEFT"
fi

# RTALLOC_MLOCK=require without CAP_IPC_LOCK (root: dropped with setpriv).
if command -v setpriv >/dev/null && setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock true 2>/dev/null; then
	dir=$(mktemp -d -p "$st_tmp")
	OUT=$(setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock -- bash -c 'ulimit -l 64 && exec env "$@"' bash \
		"${clean_env[@]}" XDG_RUNTIME_DIR="$dir" RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=require \
		LD_PRELOAD="$RTALLOC_LIB" "$PROBE" info 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="setpriv ... ulimit -l 64; RTALLOC_MLOCK=require $PROBE info"
	LEFT=$(ls "$dir")
	check '[ $RC -eq 134 ]' "RTALLOC_MLOCK=require unlocked: exit $RC, want 134"
	check '[ -z "$LEFT" ]' "RTALLOC_MLOCK=require: left behind: $LEFT"
else
	note "setpriv cannot drop CAP_IPC_LOCK: RTALLOC_MLOCK=require not tried"
fi

finish
