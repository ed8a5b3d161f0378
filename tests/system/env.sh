#!/bin/bash
# SPDX-License-Identifier: MIT
#
# env.sh ST_PROBE -- the RTALLOC_* environment variables (RTALLOC_LIB from meson).
#
#  - RTALLOC_POOL_SIZE takes K/M/G suffixes (any case, optional i and B):
#    the pool (mallinfo2().arena) is exactly that size, and locked (VmLck);
#  - a bad value of any variable prints exactly one line on stderr naming the
#    variable and the value, and the default is used (observed per variable);
#  - RTALLOC_MLOCK=0|off|no locks nothing (VmLck 0); 1|on|try, require and the
#    default lock at least the pool, and not the unused reserve;
#  - RTALLOC_REPORT=file appends one JSON line at exit; a too long path is
#    refused with one line;
#  - valid settings of every variable print nothing at all.
# Lock checks are skipped (with a note) where mlockall cannot succeed.
name=env
PROBE=${1:?st_probe path}
. "$(dirname "$0")/st_lib.sh"

M=$((1 << 20))
probe_lockable

# ---- sizes and suffixes ------------------------------------------------------
for v in 3M 3m 3MiB 3mib 3MB 3mb 3072K 3072k 3072KiB 3072kb 3145728; do
	probe RTALLOC_POOL_SIZE=$v -- info
	check '[ $RC -eq 0 ]' "RTALLOC_POOL_SIZE=$v: exit $RC"
	check '[ "$(kv arena)" = $((3 * M)) ]' "RTALLOC_POOL_SIZE=$v: arena $(kv arena), want $((3 * M))"
	check '[ -z "$ERR" ]' "RTALLOC_POOL_SIZE=$v: unexpected message"
	if [ $LOCKABLE = 1 ]; then
		check '[ "$(kv vmlck_kb)" -ge 3072 ]' "RTALLOC_POOL_SIZE=$v: VmLck $(kv vmlck_kb) kB < the pool"
	fi
done
probe RTALLOC_POOL_SIZE=256K -- info   # the smallest accepted
check '[ "$(kv arena)" = $((256 * 1024)) ] && [ -z "$ERR" ]' "RTALLOC_POOL_SIZE=256K not accepted"
probe RTALLOC_POOL_SIZE=16M RTALLOC_POOL_MAX=1G -- info
check '[ "$(kv arena)" = $((16 * M)) ] && [ -z "$ERR" ]' "RTALLOC_POOL_MAX=1G not accepted"

# ---- bad values: one line naming variable and value; the default is used -----
# bad VAR VALUE [VAR=value...] -- ARGS: run, check the one message.
bad() {
	local var=$1 val=$2
	shift 2
	probe "$var=$val" "$@"
	check '[ $RC -eq 0 ]' "$var=\"$val\": exit $RC"
	# (not counting the notice of a first growth: the defaults of RTALLOC_POOL_MAX
	# and RTALLOC_ON_EXHAUST are seen by growing the pool)
	local e
	e=$(no_growth "$ERR")
	check '[ "$(lines "$e")" -eq 1 ]' "$var=\"$val\": $(lines "$e") lines on stderr, want exactly 1"
	check 'printf "%s" "$ERR" | grep -qF -- "$var=\"$val\""' \
		"$var=\"$val\": the message does not name the variable and the value"
}

for v in 16X "" -1 255K 1.5M " 16M" 0x1000000 99999999999999999999 99999999T; do
	bad RTALLOC_POOL_SIZE "$v" -- info
	check '[ "$(kv arena)" = $((64 * M)) ]' "RTALLOC_POOL_SIZE=\"$v\": arena $(kv arena), want the default 64M"
done
# Default pool_max: 16 pools but at least 1 GiB, so a 1M pool grows to 32M.
for v in lots 100K ""; do
	bad RTALLOC_POOL_MAX "$v" RTALLOC_POOL_SIZE=1M -- fill 65536 32M
	check '[ "$(kv got)" = $((32 * M)) ] && [ "$(kv errno)" = 0 ]' \
		"RTALLOC_POOL_MAX=\"$v\": the default limit (1G) was not used"
done
# Stack pre-fault: 1M shows in VmStk, 0 and the default (128K) do not reach it.
probe RTALLOC_POOL_SIZE=1M RTALLOC_STACK_PREFAULT=1M -- info
check '[ "$(kv vmstk_kb)" -ge 1024 ]' "RTALLOC_STACK_PREFAULT=1M: VmStk $(kv vmstk_kb) kB"
probe RTALLOC_POOL_SIZE=1M RTALLOC_STACK_PREFAULT=0 -- info
check '[ "$(kv vmstk_kb)" -lt 1024 ] && [ -z "$ERR" ]' "RTALLOC_STACK_PREFAULT=0: VmStk $(kv vmstk_kb) kB"
for v in big -5 1M1; do
	bad RTALLOC_STACK_PREFAULT "$v" RTALLOC_POOL_SIZE=1M -- info
	check '[ "$(kv vmstk_kb)" -ge 128 ] && [ "$(kv vmstk_kb)" -lt 1024 ]' \
		"RTALLOC_STACK_PREFAULT=\"$v\": VmStk $(kv vmstk_kb) kB, want the default (128K) pre-faulted"
done
for v in maybe 2 "" yes; do
	bad RTALLOC_MLOCK "$v" RTALLOC_POOL_SIZE=16M -- info
	if [ $LOCKABLE = 1 ]; then
		check '[ "$(kv vmlck_kb)" -ge 16384 ]' \
			"RTALLOC_MLOCK=\"$v\": VmLck $(kv vmlck_kb) kB, want the default (locked pool)"
	fi
done
for v in explode 1 ""; do
	bad RTALLOC_ON_EXHAUST "$v" RTALLOC_POOL_SIZE=1M RTALLOC_POOL_MAX=8M -- fill 65536 3M
	check '[ "$(kv got)" = $((3 * M)) ] && [ "$(kv errno)" = 0 ]' \
		"RTALLOC_ON_EXHAUST=\"$v\": the default (grow) was not used"
done
for v in remote 0 ""; do
	bad RTALLOC_NUMA "$v" RTALLOC_POOL_SIZE=2M -- info
	check '[ "$(kv arena)" = $((2 * M)) ]' "RTALLOC_NUMA=\"$v\": arena $(kv arena)"
done
for v in 2 maybe ""; do
	bad RTALLOC_STATS "$v" RTALLOC_POOL_SIZE=2M -- info
	check '[ "$(kv arena)" = $((2 * M)) ]' "RTALLOC_STATS=\"$v\": arena $(kv arena)"
done

# RTALLOC_REPORT: a path (one JSON line appended at exit); too long a path is
# refused with one line naming the variable, and the program runs on.
probe RTALLOC_POOL_SIZE=2M RTALLOC_REPORT="$st_tmp/report" -- info
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_REPORT=file: exit $RC or a message"
check '[ -f "$st_tmp/report" ] && [ "$(lines "$(cat "$st_tmp/report")")" -eq 1 ]' \
	"RTALLOC_REPORT=file: not exactly one line in the report"
check 'grep -q "\"pool_bytes\":$((2 * M))[,}]" "$st_tmp/report"' "RTALLOC_REPORT=file: no pool_bytes of 2M in the report"
long=$st_tmp/$(printf 'x%.0s' $(seq 300))
probe RTALLOC_POOL_SIZE=2M RTALLOC_REPORT="$long" -- info
check '[ $RC -eq 0 ] && [ "$(kv arena)" = $((2 * M)) ]' "RTALLOC_REPORT=<300 characters>: exit $RC"
check '[ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q RTALLOC_REPORT' \
	"RTALLOC_REPORT=<300 characters>: want one line naming the variable"
check '[ ! -e "$long" ]' "RTALLOC_REPORT=<300 characters>: a report was written"

# Two bad variables: one line each.
probe RTALLOC_POOL_SIZE=x RTALLOC_MLOCK=y -- info
check '[ "$(lines "$ERR")" -eq 2 ]' "two bad variables: $(lines "$ERR") lines on stderr, want 2"

# ---- RTALLOC_MLOCK ---------------------------------------------------------------
for v in 0 off no; do
	probe RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=$v -- info
	check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_MLOCK=$v: exit $RC or a message"
	check '[ "$(kv vmlck_kb)" = 0 ]' "RTALLOC_MLOCK=$v: VmLck $(kv vmlck_kb) kB, want 0"
done
if [ $LOCKABLE = 1 ]; then
	for v in 1 on try require DEFAULT; do
		if [ $v = DEFAULT ]; then
			probe RTALLOC_POOL_SIZE=16M -- info
		else
			probe RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=$v -- info
		fi
		check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_MLOCK=$v: exit $RC or a message"
		check '[ "$(kv vmlck_kb)" -ge 16384 ]' "RTALLOC_MLOCK=$v: VmLck $(kv vmlck_kb) kB < the 16M pool"
	done
	# The reserve beyond the pool is not counted as locked (pool_max 1G here).
	probe RTALLOC_POOL_SIZE=16M RTALLOC_POOL_MAX=1G -- info
	check '[ "$(kv vmlck_kb)" -lt $((200 * 1024)) ]' \
		"VmLck $(kv vmlck_kb) kB with a 16M pool: the unused reserve is locked"
fi

# ---- every variable valid: silence -----------------------------------------------
probe RTALLOC_POOL_SIZE=8M RTALLOC_POOL_MAX=64M RTALLOC_STACK_PREFAULT=256K RTALLOC_MLOCK=0 \
	RTALLOC_ON_EXHAUST=fail RTALLOC_NUMA=off RTALLOC_STATS=0 -- info
check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv arena)" = $((8 * M)) ]' "valid settings were not taken silently"
for v in grow fail abort; do
	probe RTALLOC_POOL_SIZE=2M RTALLOC_ON_EXHAUST=$v -- info
	check '[ -z "$ERR" ]' "RTALLOC_ON_EXHAUST=$v rejected"
done
for v in local interleave off; do
	probe RTALLOC_POOL_SIZE=2M RTALLOC_NUMA=$v -- info
	check '[ -z "$ERR" ] && [ "$(kv arena)" = $((2 * M)) ]' "RTALLOC_NUMA=$v rejected"
done

finish
