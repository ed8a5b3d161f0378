#!/bin/bash
# SPDX-License-Identifier: MIT
#
# secure.sh ST_LIMITS -- a setuid-root program linked with librtalloc, run by
# an unprivileged user (nobody), ignores every RTALLOC_* variable and
# XDG_RUNTIME_DIR (AT_SECURE), as glibc ignores MALLOC_* (RTALLOC_LIB from
# meson; st_limits finds the library through its absolute RUNPATH, $ORIGIN
# being ignored in secure-execution mode).
#
#  - RTALLOC_REPORT=<a directory only root may enter>/x: no file created;
#  - RTALLOC_POOL_SIZE, RTALLOC_POOL_MAX, RTALLOC_STATS=0, RTALLOC_MLOCK=0:
#    rtalloc_stats shows the defaults (64M pool, exported, locked);
#  - XDG_RUNTIME_DIR=<that directory>: the statistics file is not put there;
#  - no message (nothing was "wrong" with the values: they are not read).
# The same program run by root without setuid honours them (the control).
# Skipped unless run as root with setpriv and a filesystem that honours setuid.
name=secure
LIMITS=${1:?st_limits path}
PROBE=$LIMITS
. "$(dirname "$0")/st_lib.sh"

M=$((1 << 20))
skip() { echo "SKIP $name: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root: cannot make a setuid-root program"
command -v setpriv >/dev/null || skip "no setpriv"

# The program, setuid root, in a directory nobody can enter; a directory only
# root can enter for the report and the statistics.
# (not in st_tmp, on /dev/shm, which may be mounted nosuid)
suid_tmp=$(mktemp -d)
trap 'rm -rf "$st_tmp" "$suid_tmp"' EXIT
pub=$suid_tmp/pub
priv=$suid_tmp/priv
mkdir -m 0755 "$pub" && mkdir -m 0700 "$priv" && chmod 0755 "$suid_tmp"
case " $(findmnt -n -o OPTIONS --target "$suid_tmp" 2>/dev/null | tr , ' ') " in
*" nosuid "*) skip "$suid_tmp is on a filesystem mounted nosuid" ;;
esac
cp "$LIMITS" "$pub/st_limits" && chown root:root "$pub/st_limits" && chmod 4755 "$pub/st_limits"
as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
"${as_nobody[@]}" test -x "$pub/st_limits" || skip "nobody cannot run $pub/st_limits"
"${as_nobody[@]}" test -r "$RTALLOC_LIB" || skip "nobody cannot read $RTALLOC_LIB"

hostile=(RTALLOC_REPORT="$priv/x" RTALLOC_POOL_SIZE=2M RTALLOC_POOL_MAX=4M RTALLOC_STATS=0
	RTALLOC_MLOCK=0 RTALLOC_NUMA=off XDG_RUNTIME_DIR="$priv")

# The control: root, no setuid: every variable honoured.
OUT=$(env "${clean_env[@]}" "${hostile[@]}" "$pub/st_limits" stats 2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="(root) ${hostile[*]} st_limits stats"
check '[ $RC -eq 0 ] && [ "$(kv pool)" = $((2 * M)) ] && [ "$(kv exported)" = 0 ] && [ -f "$priv/x" ]' \
	"the control run does not honour the variables"
rm -f "$priv/x"

# nobody runs it setuid root.
OUT=$(env "${clean_env[@]}" "${hostile[@]}" "${as_nobody[@]}" "$pub/st_limits" stats 2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="(nobody, setuid root) ${hostile[*]} st_limits stats"
if [ $RC -ne 0 ] && printf '%s' "$ERR" | grep -q 'error while loading shared libraries'; then
	skip "the setuid program cannot load librtalloc as nobody: $ERR"
fi
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "setuid: exit $RC or a message"
check '[ ! -e "$priv/x" ]' "setuid: RTALLOC_REPORT created $(ls -l "$priv/x" 2>/dev/null)"
check '[ "$(kv pool)" = $((64 * M)) ] && [ "$(kv max)" = $((1024 * M)) ]' \
	"setuid: pool $(kv pool), max $(kv max): RTALLOC_POOL_SIZE/MAX were honoured (want 64M, 1G)"
check '[ "$(kv exported)" = 1 ]' "setuid: RTALLOC_STATS=0 was honoured"
check '[ "$(kv locked)" = 1 ]' "setuid: RTALLOC_MLOCK=0 was honoured"
check '[ "$(kv xdg_file)" = 0 ]' "setuid: the statistics file was put in XDG_RUNTIME_DIR"
check '[ -z "$(ls -A "$priv")" ]' "setuid: files were created in the private directory: $(ls -A "$priv")"

# XDG_RUNTIME_DIR alone (statistics on): the file goes to /dev/shm, not there.
OUT=$(env "${clean_env[@]}" XDG_RUNTIME_DIR="$priv" "${as_nobody[@]}" "$pub/st_limits" stats 2>"$st_tmp/err")
RC=$?
ERR=$(cat "$st_tmp/err")
LAST="(nobody, setuid root) XDG_RUNTIME_DIR=$priv st_limits stats"
check '[ $RC -eq 0 ] && [ "$(kv exported)" = 1 ] && [ "$(kv xdg_file)" = 0 ]' \
	"setuid: the statistics file was put in XDG_RUNTIME_DIR (exported $(kv exported), there $(kv xdg_file))"

finish
