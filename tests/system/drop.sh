#!/bin/bash
# SPDX-License-Identifier: MIT
#
# drop.sh ST_DROP RTALLOC_STAT ST_DROP_LINKED -- a daemon that starts as root and drops to
# uid 65534 (RTALLOC_LIB from meson).  For setresuid, setuid, setreuid and
# seteuid (a temporary drop still in force at exit): exit 0, a thread starts
# after the drop, no statistics file left in /dev/shm; rtalloc-stat PID (as
# root) sees the process after the drop; with RTALLOC_REPORT the report is
# written, or refused in one line, never an abort; an XDG_RUNTIME_DIR the new
# user cannot write (0700 root) leaves no file either; nor does a setuid-root
# program (linked) run by nobody that drops to nobody (its file, named for
# nobody, was created by euid 0).
name=drop
DROP=$(realpath "${1:?st_drop path}")
STAT=$(realpath "${2:?rtalloc-stat path}")
LINKED=$(realpath "${3:?st_drop_linked path}")
. "$(dirname "$0")/st_lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "SKIP $name: needs root (drops from root to uid 65534)" >&2; exit 77; }
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "SKIP $name: no /dev/shm" >&2; exit 77; }
chmod 711 "$st_tmp"

# drop HOW [VAR=value...]: st_drop HOW, statistics in /dev/shm (no
# XDG_RUNTIME_DIR), RLIMIT_MEMLOCK 8192 KiB (a default account's).
drop() {
	local how=$1
	shift
	OUT=$(cd "$st_tmp" && bash -c 'ulimit -l 8192 2>/dev/null; exec env "$@"' bash "${clean_env[@]}" \
		-u XDG_RUNTIME_DIR RTALLOC_POOL_SIZE=16M "$@" LD_PRELOAD="$RTALLOC_LIB" "$DROP" "$how" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="$* $DROP $how"
	PID=$(kv pid)
	LEFT=$(ls /dev/shm | grep "^rtalloc-[0-9]*-$PID\.stats$")
}

for how in setresuid setuid setreuid seteuid; do
	drop $how
	check '[ $RC -eq 0 ] && printf "%s" "$OUT" | grep -q "^done"' "$how: exit $RC"
	check '[ -n "$PID" ] && [ -z "$LEFT" ]' "$how: left in /dev/shm: $LEFT"
	check '! printf "%s" "$ERR" | grep -v "^rtalloc: uid 65534 may lock only" | grep -q .' \
		"$how: unexpected messages"
done

# rtalloc-stat PID, as root, after the drop.
mkfifo "$st_tmp/go.fifo" && exec 3<>"$st_tmp/go.fifo" || { echo "FAIL $name: no FIFO" >&2; exit 1; }
for how in setresuid setuid; do
	(cd "$st_tmp" && exec env "${clean_env[@]}" -u XDG_RUNTIME_DIR RTALLOC_POOL_SIZE=16M LD_PRELOAD="$RTALLOC_LIB" \
		"$DROP" $how wait <&3 >"$st_tmp/out" 2>"$st_tmp/err") &
	bg=$!
	for _ in $(seq 100); do grep -q dropped "$st_tmp/out" 2>/dev/null && break; sleep 0.1; done
	PID=$(sed -n 's/^pid=//p' "$st_tmp/out")
	OUT=$("$STAT" "$PID" 2>&1)
	RC=$?
	ERR=""
	LAST="$STAT $PID (after $how)"
	check '[ $RC -eq 0 ]' "rtalloc-stat PID after $how: exit $RC"
	check 'printf "%s" "$OUT" | grep -q "$PID"' "rtalloc-stat PID after $how does not show the process"
	echo go >&3
	wait $bg
	RC=$?
	OUT=$(cat "$st_tmp/out")
	LAST="$DROP $how wait"
	check '[ $RC -eq 0 ]' "$how (waiting): exit $RC"
	check '! ls /dev/shm | grep -q "^rtalloc-[0-9]*-$PID\.stats$"' "$how (waiting): file left"
done

# RTALLOC_REPORT: a file the new user cannot open (one line, no report), a
# file it can, and stderr.
mkdir "$st_tmp/rootonly" && chmod 700 "$st_tmp/rootonly"
drop setresuid RTALLOC_REPORT="$st_tmp/rootonly/report.json"
check '[ $RC -eq 0 ] && [ -z "$LEFT" ]' "RTALLOC_REPORT unwritable after the drop: exit $RC, left: $LEFT"
check '[ "$(printf "%s\n" "$ERR" | grep -c "RTALLOC_REPORT")" -eq 1 ]' "RTALLOC_REPORT unwritable: not one line"
mkdir "$st_tmp/open" && chmod 777 "$st_tmp/open"
drop setresuid RTALLOC_REPORT="$st_tmp/open/report.json"
check '[ $RC -eq 0 ] && [ -z "$LEFT" ]' "RTALLOC_REPORT after the drop: exit $RC, left: $LEFT"
check 'grep -q "\"pid\":$PID" "$st_tmp/open/report.json"' "RTALLOC_REPORT after the drop: no report"
drop setuid RTALLOC_REPORT=stderr
check '[ $RC -eq 0 ] && [ -z "$LEFT" ]' "RTALLOC_REPORT=stderr after the drop: exit $RC, left: $LEFT"
check 'printf "%s" "$ERR" | grep -q "\"pid\":$PID"' "RTALLOC_REPORT=stderr after the drop: no report"

# XDG_RUNTIME_DIR only root can write: the file goes at the drop (one line).
mkdir "$st_tmp/xdg" && chmod 700 "$st_tmp/xdg"
drop setresuid XDG_RUNTIME_DIR="$st_tmp/xdg"
check '[ $RC -eq 0 ]' "XDG_RUNTIME_DIR 0700 root: exit $RC"
check '[ -z "$(ls "$st_tmp/xdg")" ]' "XDG_RUNTIME_DIR 0700 root: left: $(ls "$st_tmp/xdg")"
check 'printf "%s" "$ERR" | grep -q "statistics file .* is removed now"' "XDG_RUNTIME_DIR 0700 root: no line"

# A setuid-root program run by nobody, dropping back to nobody.
suid_tmp=$(mktemp -d)
trap 'rm -rf "$st_tmp" "$suid_tmp"' EXIT
chmod 755 "$suid_tmp"
case " $(findmnt -n -o OPTIONS --target "$suid_tmp" 2>/dev/null | tr , ' ') " in
*" nosuid "*) note "$suid_tmp is on a filesystem mounted nosuid: setuid program not tried" ;;
*)
	cp "$LINKED" "$suid_tmp/st_drop" && chown root:root "$suid_tmp/st_drop" && chmod 4755 "$suid_tmp/st_drop"
	OUT=$(cd "$suid_tmp" && env "${clean_env[@]}" -u XDG_RUNTIME_DIR \
		setpriv --reuid=65534 --regid=65534 --clear-groups "$suid_tmp/st_drop" setuid 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="(nobody) setuid-root st_drop setuid"
	PID=$(kv pid)
	if [ $RC -ne 0 ] && printf '%s' "$ERR" | grep -q 'error while loading shared libraries'; then
		note "nobody cannot load the build's librtalloc: setuid program not tried"
	else
		check '[ $RC -eq 0 ] && [ -n "$PID" ]' "setuid-root program dropping to nobody: exit $RC"
		check '! ls /dev/shm | grep -q "^rtalloc-[0-9]*-$PID\.stats$"' \
			"setuid-root program dropping to nobody: file left: $(ls -ln /dev/shm | grep "\-$PID\.stats")"
	fi
	;;
esac

finish
