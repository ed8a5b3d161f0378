# SPDX-License-Identifier: MIT
# st_lib.sh - sourced by the system test scripts.
#
# Needs: name (the test's name), RTALLOC_LIB (librtalloc.so, from meson) and
# PROBE (the st_probe program) set by the script before sourcing.
#
#   probe [VAR=value ...] -- ARGS...
#       runs PROBE ARGS with LD_PRELOAD=$RTALLOC_LIB, no RTALLOC_* variable but
#       the ones given; sets OUT (stdout), ERR (stderr), RC (exit status).
#       XDG_RUNTIME_DIR is a temporary directory (on /dev/shm: it must be a
#       tmpfs): the statistics files of probes that abort do not stay behind.
#   kv KEY          the value of KEY=... in OUT
#   lines TEXT      the number of non-empty lines of TEXT
#   no_growth TEXT  TEXT without librtalloc's one-time "the pool grew" notice
#   check COND MSG  counts a failure (and prints MSG) when COND is false
#   finish          exits 1 if any check failed, else 0

set -u
: "${name:?}" "${RTALLOC_LIB:?RTALLOC_LIB must name librtalloc.so}"
[ -f "$RTALLOC_LIB" ] || { echo "FAIL $name: no library at $RTALLOC_LIB" >&2; exit 1; }

failures=0
# On /dev/shm (a tmpfs) when there is one: librtalloc puts its statistics file
# in XDG_RUNTIME_DIR only on a tmpfs.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then st_tmp=$(mktemp -d -p /dev/shm); else st_tmp=$(mktemp -d); fi
trap 'rm -rf "$st_tmp"' EXIT

rtalloc_vars=(RTALLOC_POOL_SIZE RTALLOC_POOL_MAX RTALLOC_STACK_PREFAULT RTALLOC_MLOCK
	RTALLOC_ON_EXHAUST RTALLOC_NUMA RTALLOC_STATS RTALLOC_REPORT RTALLOC_MLOCK_WARNED RTALLOC_HUGEPAGES
	RTALLOC_FAULTS RTALLOC_PROFILE RTALLOC_PROFILE_SAVE)
clean_env=(-u LD_PRELOAD)
for v in "${rtalloc_vars[@]}"; do clean_env+=(-u "$v"); done

probe() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" "${vars[@]}" LD_PRELOAD="$RTALLOC_LIB" \
		"$PROBE" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="${vars[*]} $PROBE $*"
}

kv() { printf '%s\n' "$OUT" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }

no_growth() { printf '%s\n' "$1" | grep -v '^rtalloc: the pool grew' || true; }

lines() { if [ -z "$1" ]; then echo 0; else printf '%s\n' "$1" | grep -c .; fi; }

check() {
	if ! eval "$1"; then
		failures=$((failures + 1))
		{
			echo "FAIL $name: $2"
			echo "   command: $LAST"
			echo "   exit $RC, stdout: $OUT"
			[ -n "$ERR" ] && printf '   stderr: %s\n' "$ERR"
		} >&2
	fi
}

note() { echo "NOTE $name: $*"; }

finish() {
	if [ "$failures" -ne 0 ]; then
		echo "FAIL $name: $failures check(s) failed" >&2
		exit 1
	fi
	echo "ok $name"
	exit 0
}

# Can this process lock memory (CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK)?
# Sets LOCKABLE to 1 or 0.
probe_lockable() {
	probe RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=1 -- info
	if [ "$RC" -eq 0 ] && [ "$(kv vmlck_kb)" -ge 16384 ] 2>/dev/null; then
		LOCKABLE=1
	else
		LOCKABLE=0
		note "mlockall fails here (no CAP_IPC_LOCK, ulimit -l $(ulimit -l)): lock checks skipped"
	fi
}
