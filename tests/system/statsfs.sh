#!/bin/bash
# SPDX-License-Identifier: MIT
#
# statsfs.sh ST_LIMITS -- where the statistics region's file may live
# (RTALLOC_LIB from meson; st_limits is linked with librtalloc).
#
#  - XDG_RUNTIME_DIR on a FULL tmpfs (400k, filled; the region is about
#    210 KiB): 600 threads alive at once,
#    each allocating, never die of SIGBUS (the file's blocks are reserved at
#    creation, or there is no file): one line on stderr, rtalloc_stats works,
#    the statistics stay in the process (exported=0) and no file is left;
#  - the same tmpfs with room: the file is there (exported=1), no message;
#  - XDG_RUNTIME_DIR not on a tmpfs: not used (/dev/shm instead), no message.
# The tmpfs is mounted in a private mount namespace (unshare -m), so it goes
# away with the test whatever happens; skipped when mounting is not permitted.
name=statsfs
LIMITS=${1:?st_limits path}
PROBE=$LIMITS
. "$(dirname "$0")/st_lib.sh"

mnt=$st_tmp/mnt
mkdir "$mnt"
if ! unshare -m sh -c 'mount -t tmpfs -o size=400k none "$0"' "$mnt" 2>/dev/null; then
	echo "SKIP $name: cannot mount a tmpfs in a private mount namespace (needs root: unshare -m, mount)"
	exit 77
fi

# in_tmpfs FILL VAR=value... -- ARGS: st_limits ARGS with XDG_RUNTIME_DIR on a
# fresh 400k tmpfs, filled first when FILL is 1.
in_tmpfs() {
	local fill=$1
	shift
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	OUT=$(unshare -m sh -c '
		mount -t tmpfs -o size=400k none "$0" || exit 99
		if [ "$1" = 1 ]; then dd if=/dev/zero of="$0/fill" bs=4k 2>/dev/null; fi
		shift
		env "$@"
		rc=$?
		ls -A "$0" >"$0.ls"
		exit $rc' "$mnt" "$fill" "${clean_env[@]}" XDG_RUNTIME_DIR="$mnt" RTALLOC_MLOCK=0 \
		RTALLOC_POOL_SIZE=16M "${vars[@]}" "$LIMITS" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LEFT=$(grep -v '^fill$' "$mnt.ls")
	LAST="(XDG_RUNTIME_DIR on a 400k tmpfs, filled: $fill) ${vars[*]} $LIMITS $*"
}

# A full tmpfs: 600 threads, no SIGBUS, one message, statistics in-process.
in_tmpfs 1 -- threads 600
check '[ $RC -eq 0 ]' "full tmpfs, 600 threads: exit $RC (135: SIGBUS)"
check '[ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: .*statistics"' \
	"full tmpfs: want one line about the statistics file, got $(lines "$ERR")"
check '[ "$(kv threads)" -ge 600 ] && [ "$(kv exported)" = 0 ]' \
	"full tmpfs: rtalloc_stats: threads $(kv threads), exported $(kv exported) (want >= 600, 0)"
check '[ -z "$LEFT" ]' "full tmpfs: a file was left behind: $LEFT"

# Room on the tmpfs: the file is created there, silently.
in_tmpfs 0 -- stats
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "tmpfs with room: exit $RC or a message"
check '[ "$(kv exported)" = 1 ] && [ "$(kv xdg_file)" = 1 ]' \
	"tmpfs with room: exported $(kv exported), file in XDG_RUNTIME_DIR $(kv xdg_file) (want 1, 1)"
in_tmpfs 0 -- threads 600
check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv threads)" -ge 600 ] && [ "$(kv exported)" = 1 ]' \
	"tmpfs with room, 600 threads: exit $RC, threads $(kv threads), exported $(kv exported)"
check '[ -z "$LEFT" ]' "tmpfs with room: the file was left behind: $LEFT"

# XDG_RUNTIME_DIR on another filesystem: not used.
disk=$(mktemp -d)
trap 'rm -rf "$st_tmp" "$disk"' EXIT
if [ "$(stat -f -c %T "$disk")" != tmpfs ]; then
	OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$disk" RTALLOC_MLOCK=0 RTALLOC_POOL_SIZE=16M \
		"$LIMITS" stats 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="XDG_RUNTIME_DIR=$disk ($(stat -f -c %T "$disk")) $LIMITS stats"
	check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv xdg_file)" = 0 ]' \
		"XDG_RUNTIME_DIR not on a tmpfs: used anyway (file there $(kv xdg_file)) or a message"
else
	note "$disk is a tmpfs: the check of a directory on another filesystem is skipped"
fi

finish
