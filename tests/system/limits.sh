#!/bin/bash
# SPDX-License-Identifier: MIT
#
# limits.sh ST_PROBE ST_LIMITS -- sizes the machine or the process cannot give
# (RTALLOC_LIB from meson).
#
#  - sizes no process can address (100T, 2^64-1, for RTALLOC_POOL_SIZE and
#    RTALLOC_POOL_MAX): exactly one line naming the variable the user set and
#    the limit, then the default pool; no crash, no libnuma exit;
#  - a pool beyond the memory available (MemAvailable, the commit limit under
#    strict overcommit), checked BEFORE anything is touched: these runs read a
#    /proc/meminfo of our own (a private mount namespace) with small figures,
#    so a check that did not refuse would pre-fault a few hundred MiB at most;
#    the machine's real MemAvailable + 1G runs only inside a memory cgroup of
#    256M (a broken check is then killed there, never by the global OOM killer);
#  - RLIMIT_AS (ulimit -v): the reservation fits what the limit leaves, one line
#    when it cannot honour the configured pool, threads start, and a failing
#    posix_memalign leaves errno at ENOMEM (st_limits aslimit);
#  - no pool possible at all (ulimit -d 400): the program is not ended.
name=limits
PROBE=${1:?st_probe path}
LIMITS=${2:?st_limits path}
. "$(dirname "$0")/st_lib.sh"

M=$((1 << 20))
K=1024

# one_line VAR LIMIT: exactly one message, naming VAR and LIMIT.
one_line() {
	want_var=$1 want_limit=$2
	check '[ $RC -eq 0 ]' "$1: exit $RC"
	check '[ "$(lines "$ERR")" -eq 1 ]' "$1: $(lines "$ERR") lines on stderr, want exactly 1"
	check 'printf "%s" "$ERR" | grep -qF -- "$want_var" && printf "%s" "$ERR" | grep -qF -- "$want_limit"' \
		"$1: the message does not name $1 and $2"
}

# ---- sizes no process can address: refused as they are read ------------------
for v in 100T 18446744073709551615 4398046511105; do
	probe RTALLOC_POOL_SIZE=$v -- info
	one_line "RTALLOC_POOL_SIZE=\"$v\"" "4T"
	check '[ "$(kv arena)" = $((64 * M)) ]' "RTALLOC_POOL_SIZE=$v: arena $(kv arena), want the default 64M"
	check '! printf "%s" "$ERR" | grep -q RTALLOC_POOL_MAX' "RTALLOC_POOL_SIZE=$v: the message names RTALLOC_POOL_MAX"
	probe RTALLOC_POOL_SIZE=2M RTALLOC_POOL_MAX=$v -- fill 65536 1M
	one_line "RTALLOC_POOL_MAX=\"$v\"" "4T"
	check '[ "$(kv got)" = $M ] && [ "$(kv arena)" = $((2 * M)) ]' "RTALLOC_POOL_MAX=$v: the pool does not work"
done
# A huge pool that is addressable but not there: one line, the default.
probe RTALLOC_POOL_SIZE=3T -- info
one_line RTALLOC_POOL_SIZE=\"3T\" MemAvailable
check '[ "$(kv arena)" = $((64 * M)) ]' "RTALLOC_POOL_SIZE=3T: arena $(kv arena), want the default 64M"
check '! printf "%s" "$ERR" | grep -q RTALLOC_POOL_MAX' "RTALLOC_POOL_SIZE=3T: the message names RTALLOC_POOL_MAX"

# ---- memory: our own /proc/meminfo --------------------------------------------
# fake MEMINFO_TEXT OVERCOMMIT -- probe args: run the probe in a mount namespace
# where /proc/meminfo and /proc/sys/vm/overcommit_memory say so.
fake_ok=0
if unshare -m true 2>/dev/null; then
	fake_ok=1
else
	note "no private mount namespace (unshare -m): the MemAvailable checks with small figures are skipped"
fi
fake() {
	printf '%s\n' "$1" >"$st_tmp/meminfo"
	printf '%s\n' "$2" >"$st_tmp/overcommit"
	shift 2
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	OUT=$(unshare -m sh -c 'mount --bind "$0" /proc/meminfo && mount --bind "$1" /proc/sys/vm/overcommit_memory &&
		shift && exec "$@"' "$st_tmp/meminfo" "$st_tmp/overcommit" \
		env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" "${vars[@]}" LD_PRELOAD="$RTALLOC_LIB" \
		"$PROBE" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="(MemAvailable $(grep MemAvailable "$st_tmp/meminfo")) ${vars[*]} $PROBE $*"
}
if [ $fake_ok = 1 ]; then
	mi="MemTotal: 4000000 kB
MemFree: 100000 kB
MemAvailable: $((100 * K)) kB
CommitLimit: 8000000 kB
Committed_AS: 10000 kB"
	# 200M > 15/16 of 100M: refused before anything is touched; the default fits.
	fake "$mi" 0 RTALLOC_POOL_SIZE=200M -- info
	one_line 'RTALLOC_POOL_SIZE="200M"' MemAvailable
	check '[ "$(kv arena)" = $((64 * M)) ]' "MemAvailable 100M, RTALLOC_POOL_SIZE=200M: arena $(kv arena), want 64M"
	# A value just above 15/16 of it, and one just below.
	fake "$mi" 0 RTALLOC_POOL_SIZE=$((94 * M)) -- info
	one_line "RTALLOC_POOL_SIZE=\"$((94 * M))\"" MemAvailable
	fake "$mi" 0 RTALLOC_POOL_SIZE=90M -- info
	check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv arena)" = $((90 * M)) ]' "MemAvailable 100M: a 90M pool refused"
	# Not even the default fits (MemAvailable 40M): one line, what fits.
	mi40=$(printf '%s\n' "$mi" | sed "s/^MemAvailable:.*/MemAvailable: $((40 * K)) kB/")
	fake "$mi40" 0 -- info
	one_line "default pool" MemAvailable
	check '[ "$(kv arena)" -gt $((16 * M)) ] && [ "$(kv arena)" -le $((38 * M)) ]' \
		"MemAvailable 40M: arena $(kv arena), want what fits (16M < pool <= 37.5M)"
	# Strict overcommit: what CommitLimit - Committed_AS leaves (50M).
	mis=$(printf '%s\n' "$mi" | sed "s/^MemAvailable:.*/MemAvailable: 8000000 kB/;
		s/^CommitLimit:.*/CommitLimit: $((200 * K)) kB/; s/^Committed_AS:.*/Committed_AS: $((150 * K)) kB/")
	fake "$mis" 2 RTALLOC_POOL_SIZE=100M -- info
	one_line 'RTALLOC_POOL_SIZE="100M"' 'commit limit'
	check '[ "$(kv arena)" -le $((50 * M)) ]' "strict overcommit: arena $(kv arena) beyond the commit limit"
	fake "$mis" 0 RTALLOC_POOL_SIZE=100M -- info   # the same figures, overcommit on: fine
	check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv arena)" = $((100 * M)) ]' "overcommit 0: a 100M pool refused"
fi

# The machine's own MemAvailable + 1G, only inside a 256M memory cgroup (v1).
memcg=$(sed -n 's/^[0-9]*:memory:\(.*\)$/\1/p' /proc/self/cgroup)
cg=/sys/fs/cgroup/memory$memcg/rtalloc-limits-$$
avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)
if [ -n "$memcg" ] && [ -n "$avail_kb" ] && mkdir "$cg" 2>/dev/null; then
	if echo $((256 * M)) >"$cg/memory.limit_in_bytes" 2>/dev/null; then
		big=$((avail_kb * K + 1024 * M))
		OUT=$(sh -c 'echo $$ > "$0/tasks" && exec "$@"' "$cg" \
			env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_POOL_SIZE=$big RTALLOC_MLOCK=0 \
			LD_PRELOAD="$RTALLOC_LIB" "$PROBE" info 2>"$st_tmp/err")
		RC=$?
		ERR=$(cat "$st_tmp/err")
		LAST="RTALLOC_POOL_SIZE=$big (MemAvailable + 1G) in a 256M memory cgroup"
		one_line "RTALLOC_POOL_SIZE=\"$big\"" MemAvailable
	else
		note "cannot limit a memory cgroup: the real MemAvailable + 1G check is skipped"
	fi
	rmdir "$cg" 2>/dev/null
else
	note "no memory cgroup of our own: the real MemAvailable + 1G check is skipped"
fi

# ---- RLIMIT_AS ------------------------------------------------------------------
# 200M: the default pool fits (the reservation shrinks to it, silently).
run_as() { # KiB VAR=value... -- args
	local kib=$1
	shift
	OUT=$(ulimit -v "$kib" && probe "$@" && printf '%s' "$OUT" && exit $RC)
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="ulimit -v $kib; $*"
}
run_as $((200 * K)) -- fill 65536 16M
check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv got)" = $((16 * M)) ]' "ulimit -v 200M: the default pool failed"
run_as $((200 * K)) RTALLOC_POOL_MAX=1G -- info
one_line 'RTALLOC_POOL_MAX="1G"' RLIMIT_AS
check '[ "$(kv arena)" = $((64 * M)) ]' "ulimit -v 200M, RTALLOC_POOL_MAX=1G: arena $(kv arena)"
run_as $((200 * K)) RTALLOC_POOL_SIZE=512M -- info
one_line 'RTALLOC_POOL_SIZE="512M"' RLIMIT_AS
check '[ "$(kv arena)" = $((64 * M)) ]' "ulimit -v 200M, RTALLOC_POOL_SIZE=512M: arena $(kv arena)"
# 60M: not even the default fits; what fits, one line; the program runs.
run_as $((60 * K)) -- fill 4096 1M
one_line "default pool" RLIMIT_AS
check '[ "$(kv got)" = $M ]' "ulimit -v 60M: the program could not allocate 1M"

# A later rtalloc_init() beyond the largest pool (4 TiB), or SIZE_MAX (a
# rounding wrapped to 0: "success", nothing grown): ENOMEM, nothing committed.
OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_POOL_SIZE=2M RTALLOC_POOL_MAX=8M \
	"$LIMITS" init-huge 2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="RTALLOC_POOL_SIZE=2M RTALLOC_POOL_MAX=8M $LIMITS init-huge"
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "rtalloc_init with a pool beyond 4 TiB or the memory there is"

# Limits so low that no pool can be set up (RLIMIT_DATA 400K): malloc fails,
# but nothing librtalloc brings along ends the program (libnuma's constructor
# did: exit 1, "Out of memory allocating bitmask").
ECHO=$(command -v echo)
OUT=$(ulimit -d 400 && env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" LD_PRELOAD="$RTALLOC_LIB" "$ECHO" alive \
	2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="ulimit -d 400; $ECHO alive"
check '[ $RC -eq 0 ] && [ "$OUT" = alive ]' "no pool possible: the program was ended (exit $RC)"
check '! printf "%s" "$ERR" | grep -q bitmask' "no pool possible: libnuma ended the program"

# A program that sets RLIMIT_AS to 200M and runs itself under it: threads
# start, and a failing posix_memalign leaves errno at ENOMEM.
OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" "$LIMITS" aslimit 200 2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="$LIMITS aslimit 200"
# (the refusals of the huge posix_memalign are reported, once)
check '[ $RC -eq 0 ] && [ -z "$(printf "%s\n" "$ERR" | grep -v "^rtalloc: an allocation was refused")" ]' \
	"RLIMIT_AS 200M: threads or posix_memalign failed"

finish
