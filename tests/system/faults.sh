#!/bin/bash
# SPDX-License-Identifier: MIT
#
# faults.sh ST_FAULTS ST_NOPERF RTALLOC_STAT -- RTALLOC_FAULTS=locate
# (RTALLOC_LIB from meson; ST_FAULTS is linked with librtalloc).
#
#  - the loop's faults on a fresh stack page, a fresh anonymous page and a
#    fresh page of a file mapping are in the RTALLOC_REPORT line under the
#    functions that took them (touch_new_stack_page, touch_fresh_map_page,
#    touch_file_page: static functions, no -rdynamic) with the kinds stack,
#    anonymous and "file PATH", each at least once; in a thread of its own
#    and in the main thread; after a fork the child's loop runs too;
#  - rtalloc-stat PID shows the same places (text and JSON);
#  - an unprivileged process (uid 65534, kernel.perf_event_paranoid <= 2)
#    locates them too;
#  - with perf_event_open refused (st_noperf: a seccomp filter, EACCES): one
#    line naming RTALLOC_FAULTS and the reason, the program runs, the report
#    says "unavailable" and still counts the faults;
#  - without RTALLOC_FAULTS, or with 0: nothing located, nothing said;
#  - a bad value: one line naming RTALLOC_FAULTS, and nothing located.
name=faults
FAULTS=${1:?st_faults path}
NOPERF=${2:?st_noperf path}
STAT=${3:?rtalloc-stat path}
RTALLOC_LIB=${RTALLOC_LIB:?}
. "$(dirname "$0")/st_lib.sh"
command -v python3 >/dev/null || { echo "SKIP $name: no python3"; exit 77; }

# run [VAR=value...] -- CMD ARGS: the report to $st_tmp/report (emptied
# first); OUT, ERR, RC, REPORT (its last line).  No mlockall: it would
# fault every page in before the loop, which is the point of it but not of
# this test.
run() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	shift
	: >"$st_tmp/report"
	OUT=$(timeout 30 env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_POOL_SIZE=2M RTALLOC_MLOCK=0 \
		RTALLOC_REPORT="$st_tmp/report" "${vars[@]}" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	REPORT=$(tail -n 1 "$st_tmp/report")
	LAST="${vars[*]} $*"
}

# places JSON WHERE: "function kind count" lines of a report line
# (WHERE=report) or of rtalloc-stat -j's output (WHERE=stat).
places() {
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
p = d.get("rt_fault_places", []) if sys.argv[2] == "report" else (d["faults"]["located"] or {}).get("places", [])
for r in p:
    print(r["function"], r["kind"].replace(" ", "_"), r["count"])
' "$1" "$2" 2>/dev/null
}

# has PLACES FUNCTION KIND: a line for FUNCTION with KIND and a count >= 1.
has() {
	awk -v f="$2" -v k="$3" '$1 == f && $2 == k && $3 >= 1 { ok = 1 } END { exit !ok }' <<<"$1"
}

# located WHAT PLACES FILE: the three functions with their kinds (check
# evaluates its condition in its own frame: the arguments go through globals).
located() {
	L_P=$2 L_F="file_$3"
	check 'has "$L_P" touch_new_stack_page stack' "$1: no touch_new_stack_page (stack) in: $(echo $2)"
	check 'has "$L_P" touch_fresh_map_page anonymous' "$1: no touch_fresh_map_page (anonymous) in: $(echo $2)"
	check 'has "$L_P" touch_file_page "$L_F"' "$1: no touch_file_page (file $3) in: $(echo $2)"
}

key() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "-"))' "$1" "$2" 2>/dev/null; }

for mode in thread main fork; do
	run RTALLOC_FAULTS=locate -- "$FAULTS" $mode "$st_tmp/map"
	check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "$mode: exit $RC, stderr: $ERR"
	P=$(places "$REPORT" report)
	located "$mode" "$P" "$st_tmp/map"
	check '[ "$(key "$REPORT" rt_faults_located)" -ge 3 ]' "$mode: rt_faults_located: $(key "$REPORT" rt_faults_located)"
done

# rtalloc-stat on the live process, after its loop.
run RTALLOC_FAULTS=locate -- "$FAULTS" thread "$st_tmp/map" "$STAT"
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "rtalloc-stat: exit $RC, stderr: $ERR"
check 'printf "%s\n" "$OUT" | grep -qE "^ +[0-9]+ +touch_new_stack_page +stack$"' \
	"rtalloc-stat: no text row for touch_new_stack_page (stack): $OUT"
check 'printf "%s\n" "$OUT" | grep -qE "^ +[0-9]+ +touch_fresh_map_page +anonymous$"' \
	"rtalloc-stat: no text row for touch_fresh_map_page (anonymous)"
run RTALLOC_FAULTS=locate -- "$FAULTS" thread "$st_tmp/map" "$STAT" -j
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "rtalloc-stat -j: exit $RC, stderr: $ERR"
located "rtalloc-stat -j" "$(places "$OUT" stat)" "$st_tmp/map"

# Unprivileged: uid 65534 may open events on its own threads at
# perf_event_paranoid <= 2 (3 and above: the unavailable message).
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 2)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
	nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	mkdir -m 1777 "$st_tmp/u"
	# the programs must be reachable by uid 65534 (the build tree may not be)
	cp "$FAULTS" "$st_tmp/u/" && cp "$RTALLOC_LIB" "$st_tmp/u/librtalloc.so.0" &&
		chmod 755 "$st_tmp/u/"* && chmod 755 "$st_tmp"
	ufaults="$st_tmp/u/$(basename "$FAULTS")"
	: >"$st_tmp/u/report" && chmod 666 "$st_tmp/u/report"
	LAST="unprivileged $ufaults thread"
	OUT=$(timeout 30 "${nobody[@]}" env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp/u" RTALLOC_POOL_SIZE=2M \
		RTALLOC_MLOCK=0 RTALLOC_REPORT="$st_tmp/u/report" RTALLOC_FAULTS=locate \
		LD_LIBRARY_PATH="$st_tmp/u" "$ufaults" thread "$st_tmp/u/map" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	REPORT=$(tail -n 1 "$st_tmp/u/report")
	if [ "$paranoid" -le 2 ]; then
		check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "unprivileged: exit $RC, stderr: $ERR"
		located unprivileged "$(places "$REPORT" report)" "$st_tmp/u/map"
		# More rings than the user may lock (RLIMIT_MEMLOCK 0: only
		# kernel.perf_event_mlock_kb per CPU, 20 KiB a ring): one line, the
		# threads without a ring counted as unlocated.
		LAST="unprivileged, ulimit -l 0: $ufaults threads"
		OUT=$(ulimit -l 0 && timeout 60 "${nobody[@]}" env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp/u" \
			RTALLOC_POOL_SIZE=2M RTALLOC_MLOCK=0 RTALLOC_REPORT="$st_tmp/u/report" RTALLOC_FAULTS=locate \
			LD_LIBRARY_PATH="$st_tmp/u" "$ufaults" threads "$st_tmp/u/map" 2>"$st_tmp/err")
		RC=$?
		ERR=$(cat "$st_tmp/err")
		REPORT=$(tail -n 1 "$st_tmp/u/report")
		check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -le 1 ]' "many rings: exit $RC, stderr: $ERR"
		check '[ -z "$ERR" ] || printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_FAULTS=locate: a thread.s perf ring (20 KiB) cannot be mapped (mmap: EPERM"' \
			"many rings: the message: $ERR"
		check 'has "$(places "$REPORT" report)" touch_new_stack_page stack' "many rings: nothing located: $REPORT"
		check '[ $(( $(key "$REPORT" rt_faults_located) + $(key "$REPORT" rt_faults_unlocated) )) -ge "$(key "$REPORT" rt_minflt)" ]' \
			"many rings: located + unlocated < rt_minflt: $REPORT"
	else
		check '[ $RC -eq 0 ] && printf "%s" "$ERR" | grep -q "perf events are unavailable"' \
			"unprivileged, perf_event_paranoid $paranoid: want the unavailable line, got: $ERR"
	fi
else
	# not root: every run above was unprivileged already
	echo "note $name: not root, the runs above were the unprivileged case"
fi

# perf_event_open refused: one line, the program runs, faults still counted.
run RTALLOC_FAULTS=locate -- "$NOPERF" "$FAULTS" thread "$st_tmp/map"
if [ $RC -eq 77 ]; then
	echo "note $name: no seccomp filter here, the refused case is not tried"
else
	check '[ $RC -eq 0 ]' "refused: exit $RC"
	check '[ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_FAULTS=locate: perf events are unavailable (perf_event_open: EACCES"' \
		"refused: want one line naming RTALLOC_FAULTS and EACCES, got: $ERR"
	check '[ "$(key "$REPORT" rt_faults_located)" = "unavailable (EACCES)" ]' \
		"refused: rt_faults_located is $(key "$REPORT" rt_faults_located)"
	check '[ "$(key "$REPORT" rt_minflt)" -ge 3 ]' "refused: faults not counted any more: $REPORT"
	run RTALLOC_FAULTS=locate -- "$NOPERF" "$FAULTS" thread "$st_tmp/map" "$STAT"
	check '[ $RC -eq 0 ] && printf "%s" "$OUT" | grep -q "located (RTALLOC_FAULTS=locate): no, perf events are unavailable (EACCES)"' \
		"refused: rtalloc-stat does not say it: $OUT"
fi

# Off: nothing located, nothing said.
for v in unset 0 off; do
	if [ $v = unset ]; then run -- "$FAULTS" thread "$st_tmp/map"; else run RTALLOC_FAULTS=$v -- "$FAULTS" thread "$st_tmp/map"; fi
	check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ -n "$REPORT" ]' "RTALLOC_FAULTS $v: exit $RC, stderr: $ERR"
	check '! printf "%s" "$REPORT" | grep -q rt_fault' "RTALLOC_FAULTS $v: the report locates: $REPORT"
	check '[ "$(key "$REPORT" rt_minflt)" -ge 3 ]' "RTALLOC_FAULTS $v: the faults are not counted: $REPORT"
done

# A bad value: one line naming it, the default (off).
run RTALLOC_FAULTS=yes -- "$FAULTS" thread "$st_tmp/map"
check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_FAULTS=\"yes\" is not"' \
	"a bad value: want one line naming RTALLOC_FAULTS, got: $ERR"
check '! printf "%s" "$REPORT" | grep -q rt_fault' "a bad value: the report locates: $REPORT"

finish
