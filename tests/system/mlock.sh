#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mlock.sh ST_PROBE -- RTALLOC_MLOCK when mlockall must fail (RTALLOC_LIB from meson).
#
# The probe runs without CAP_IPC_LOCK (dropped from the bounding and
# inheritable sets with setpriv when we are root) and with ulimit -l 1024, so
# that mlockall(MCL_CURRENT) of a 16M pool fails:
#  - RTALLOC_MLOCK=require: the process aborts (SIGABRT) before main with a
#    message naming RTALLOC_MLOCK=require, after the mlockall advice line;
#  - the default (try): exactly one line, with the ulimit -l / CAP_IPC_LOCK
#    advice, and the program runs on, unlocked;
#  - RTALLOC_MLOCK=0: silence, unlocked;
#  - RTALLOC_MLOCK=pool: a small pool is locked under the limit, a large one
#    is not, with one line naming the limit it needs.
name=mlock
PROBE=${1:?st_probe path}
. "$(dirname "$0")/st_lib.sh"

CAP_IPC_LOCK_BIT=$((1 << 14))
capeff=$((16#$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)))

if [ "$(id -u)" -eq 0 ] || [ $((capeff & CAP_IPC_LOCK_BIT)) -ne 0 ]; then
	command -v setpriv >/dev/null || { echo "SKIP $name: setpriv (util-linux) not installed" >&2; exit 77; }
	if ! setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock true 2>/dev/null; then
		echo "SKIP $name: cannot drop CAP_IPC_LOCK here (setpriv failed)" >&2
		exit 77
	fi
	drop=(setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock --)
else
	drop=() # not root and no CAP_IPC_LOCK: nothing to drop
fi

# unlocked VAR=value... -- ARGS: the probe without CAP_IPC_LOCK, ulimit -l 1024.
unlocked() {
	local vars=()
	while [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	OUT=$("${drop[@]}" bash -c 'ulimit -l 1024 || exit 99; exec env "$@"' bash \
		"${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" "${vars[@]}" LD_PRELOAD="$RTALLOC_LIB" \
		"$PROBE" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="${drop[*]} bash -c 'ulimit -l 1024; exec ...' ${vars[*]} $PROBE $*"
}

# Make sure the setting holds: CAP_IPC_LOCK gone, 1 MiB limit.
unlocked RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=0 -- info
[ $RC -ne 99 ] || { echo "SKIP $name: cannot set ulimit -l 1024" >&2; exit 77; }
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_MLOCK=0: exit $RC or a message"
check '[ $((16#$(kv capeff) & CAP_IPC_LOCK_BIT)) -eq 0 ]' "CAP_IPC_LOCK still effective in the probe"
check '[ "$(kv vmlck_kb)" = 0 ]' "RTALLOC_MLOCK=0: VmLck $(kv vmlck_kb) kB"

# require: abort with a clear message, before main (no output).
unlocked RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=require -- info
check '[ $RC -eq 134 ]' "RTALLOC_MLOCK=require without the right to lock: exit $RC, want SIGABRT (134)"
check '[ -z "$OUT" ]' "RTALLOC_MLOCK=require: main() ran"
check 'printf "%s" "$ERR" | grep -q "RTALLOC_MLOCK=require"' "RTALLOC_MLOCK=require: no message naming the setting"
check 'printf "%s" "$ERR" | grep -q "mlockall failed"' "RTALLOC_MLOCK=require: no message saying mlockall failed"
check 'printf "%s" "$ERR" | grep -qi "abort"' "RTALLOC_MLOCK=require: the message does not say it aborts"

# pool: a small pool locks under the limit (no other mapping is charged to
# it); a pool beyond the limit: one line with the limit it needs.
unlocked RTALLOC_POOL_SIZE=512K RTALLOC_MLOCK=pool -- info
check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv vmlck_kb)" -ge 512 ]' \
	"RTALLOC_MLOCK=pool, 512K pool under ulimit -l 1024: VmLck $(kv vmlck_kb) kB or a message"
unlocked RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=pool -- info
check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && [ "$(kv vmlck_kb)" = 0 ]' \
	"RTALLOC_MLOCK=pool, 16M pool under ulimit -l 1024: want one line and nothing locked"
check 'printf "%s" "$ERR" | grep -q "mlock of the pool failed.*ulimit -l 17408"' \
	"RTALLOC_MLOCK=pool: the message does not name the pool and the limit it needs (17408 KiB)"

# default and explicit try: one clear line, the program runs on unlocked.
for v in DEFAULT 1; do
	if [ $v = DEFAULT ]; then
		unlocked RTALLOC_POOL_SIZE=16M -- info
	else
		unlocked RTALLOC_POOL_SIZE=16M RTALLOC_MLOCK=$v -- info
	fi
	check '[ $RC -eq 0 ]' "RTALLOC_MLOCK=$v without the right to lock: exit $RC, want 0"
	check '[ "$(kv arena)" = $((16 << 20)) ]' "RTALLOC_MLOCK=$v: the program did not run on"
	check '[ "$(lines "$ERR")" -eq 1 ]' "RTALLOC_MLOCK=$v: $(lines "$ERR") lines on stderr, want exactly 1"
	check 'printf "%s" "$ERR" | grep -q "ulimit -l"' "RTALLOC_MLOCK=$v: no ulimit -l advice"
	check 'printf "%s" "$ERR" | grep -q "CAP_IPC_LOCK"' "RTALLOC_MLOCK=$v: no CAP_IPC_LOCK advice"
	check 'printf "%s" "$ERR" | grep -q "^rtalloc: "' "RTALLOC_MLOCK=$v: the line does not start with rtalloc:"
done

finish
