#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mlockuser.sh ST_PROBE -- locking under a default unprivileged account
# (RTALLOC_LIB from meson): uid 65534, no capabilities, ulimit -l 8192.
#  - a 1 MiB pool is locked (VmLck >= the pool): the reserved address space
#    (RTALLOC_POOL_MAX, the growth room) does not count against the limit;
#  - a shell pipeline whose pool cannot be locked says so exactly once (the
#    first process; its forks and the programs it runs are quiet), naming the
#    limit needed ("ulimit -l N", N above 8192); with a 1 MiB pool, the note
#    that little is left for thread stacks is said at most once as well.
name=mlockuser
PROBE=$(realpath "${1:?st_probe path}")
. "$(dirname "$0")/st_lib.sh"

if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null || { echo "SKIP $name: setpriv (util-linux) not installed" >&2; exit 77; }
	as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --)
	setpriv --reuid=65534 --regid=65534 --clear-groups true 2>/dev/null ||
		{ echo "SKIP $name: setpriv cannot switch to uid 65534" >&2; exit 77; }
	chmod 711 "$st_tmp"
	mkdir "$st_tmp/u" && chown 65534:65534 "$st_tmp/u"
	udir=$st_tmp/u
else
	capeff=$((16#$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status)))
	[ $((capeff & (1 << 14))) -eq 0 ] || { echo "SKIP $name: CAP_IPC_LOCK and not root" >&2; exit 77; }
	as_user=()
	udir=$st_tmp
fi

# user LIMIT COMMAND...: ulimit -l LIMIT (set before the switch: raising it
# needs root), then as uid 65534, in $udir.
user() {
	local limit=$1
	shift
	OUT=$(cd "$udir" && bash -c 'ulimit -l "$0" || exit 99; exec "$@"' "$limit" "${as_user[@]}" env \
		"${clean_env[@]}" -u RTALLOC_MLOCK_WARNED XDG_RUNTIME_DIR="$udir" LD_PRELOAD="$RTALLOC_LIB" "$@" \
		2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="ulimit -l $limit; ${as_user[*]} $*"
}

user 8192 RTALLOC_POOL_SIZE=1M "$PROBE" info
[ $RC -ne 99 ] || { echo "SKIP $name: cannot set ulimit -l 8192" >&2; exit 77; }
check '[ $RC -eq 0 ]' "1 MiB pool: exit $RC"
check '[ "$(kv vmlck_kb)" -ge 1024 ] 2>/dev/null' "1 MiB pool under ulimit -l 8192: VmLck $(kv vmlck_kb) kB, want >= 1024"
check '! printf "%s" "$ERR" | grep -q "mlockall failed"' "1 MiB pool under ulimit -l 8192: mlockall failed"

# The default pool (64M) cannot be locked under 8 MiB: one line for the
# whole pipeline (sh, its forks, cat).
user 8192 sh -c 'true | true | cat /dev/null; true | cat /dev/null'
check '[ $RC -eq 0 ]' "pipeline: exit $RC"
check '[ "$(lines "$ERR")" -eq 1 ]' "pipeline: $(lines "$ERR") lines on stderr, want exactly 1"
check 'printf "%s" "$ERR" | grep -q "^rtalloc: mlockall failed"' "pipeline: not the mlockall line"
need=$(printf '%s' "$ERR" | sed -n 's/.*ulimit -l \([0-9][0-9]*\).*/\1/p' | head -n 1)
check '[ -n "$need" ] && [ "$need" -gt 8192 ]' "pipeline: no needed figure (ulimit -l N, N > 8192): '$need'"

# A 1 MiB pool locks, but leaves little room under 8 MiB for threads: that
# is said once for the whole pipeline too.
user 8192 RTALLOC_POOL_SIZE=1M sh -c 'true | true | cat /dev/null'
check '[ $RC -eq 0 ]' "pipeline, 1 MiB pool: exit $RC"
check '[ "$(lines "$ERR")" -le 1 ]' "pipeline, 1 MiB pool: $(lines "$ERR") lines on stderr, want at most 1"
check '! printf "%s" "$ERR" | grep -q "mlockall failed"' "pipeline, 1 MiB pool: mlockall failed"

# ... and that figure is enough: under it the same pool locks, silently.
if [ -n "$need" ]; then
	user "$need" "$PROBE" info
	if [ $RC -eq 99 ]; then
		note "cannot raise ulimit -l to $need here: the figure is not tried"
	else
		check '[ $RC -eq 0 ] && [ "$(kv vmlck_kb)" -ge 65536 ] 2>/dev/null' \
			"ulimit -l $need (the figure given): VmLck $(kv vmlck_kb) kB, want >= 65536"
		check '[ -z "$ERR" ]' "ulimit -l $need (the figure given): a message"
	fi
fi

finish
