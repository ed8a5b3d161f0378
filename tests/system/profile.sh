#!/bin/bash
# SPDX-License-Identifier: MIT
#
# profile.sh ST_PROFILE RTALLOC_STAT -- the recorded profile (RTALLOC_LIB from
# meson; st_profile is linked with librtalloc).
#
#  - without a profile, the real-time loop's first cycles take slow paths;
#    RTALLOC_PROFILE_SAVE writes what it needed (the format, its lines);
#  - with that profile (RTALLOC_PROFILE), none: the pool sized from it (the
#    peak and a quarter, rounded up to a MiB), the thread's caches filled to
#    its peaks by rtalloc_thread_prepare; saved again, the same numbers (the
#    round trip);
#  - a bad or stale file, each kind: one line naming RTALLOC_PROFILE, the file
#    and the line, and the profile ignored (slow paths again, the pool the
#    default);
#  - RTALLOC_POOL_SIZE below the profile's peak: it wins, with one line;
#  - rtalloc-stat --profile PID of the live process: the same format and the
#    same numbers as the file the process writes at its exit.
name=profile
PROG=${1:?st_profile path}
TOOL=${2:?rtalloc-stat path}
PROBE=$PROG
. "$(dirname "$0")/st_lib.sh"

# run VAR=value... [-- ARGS]: PROG with only these RTALLOC_* variables.
run() {
	local vars=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do vars+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	OUT=$(timeout 30 env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_MLOCK=0 "${vars[@]}" \
		"$PROG" "$@" 2>"$st_tmp/err")
	RC=$?
	ERR=$(cat "$st_tmp/err")
	LAST="${vars[*]} $PROG $*"
}
val() { printf '%s\n' "$OUT" | sed -n "s/^$1=//p" | head -n 1; }
# The lines of a profile file that carry numbers (not its comment).
numbers() { grep -v '^#' "$1"; }

P1=$st_tmp/p1
run RTALLOC_POOL_SIZE=8M RTALLOC_PROFILE_SAVE="$P1"
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "the first run: exit 0, nothing on stderr"
check '[ "$(val first_rt_slow)" -gt 0 ]' "without a profile the first cycles take slow paths"
check '[ -f "$P1" ] && [ "$(head -n 1 "$P1")" = "rtalloc-profile 1" ]' "RTALLOC_PROFILE_SAVE: a profile, version 1"
for c in 64 8192 131072; do
	check 'grep -Eq "^thread \"audio\" class '$c' peak [1-9][0-9]*$" "$P1"' "the profile has audio's class $c"
	check 'grep -Eq "^class '$c' peak [1-9][0-9]*$" "$P1"' "the profile has the process's class $c"
done
check 'grep -Eq "^pool_peak_bytes [1-9][0-9]*$" "$P1"' "the profile has the pool's peak"
check '[ "$(sed -n "s/^large_peak_blocks //p" "$P1")" -ge 2 ]' "the profile has 2 huge blocks live at once"
peak=$(sed -n 's/^pool_peak_bytes //p' "$P1")

# With the profile: no slow path in any cycle, the pool from the peak.
P2=$st_tmp/p2
run RTALLOC_PROFILE="$P1" RTALLOC_PROFILE_SAVE="$P2"
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "with the profile: exit 0, nothing on stderr"
check '[ "$(val first_rt_slow)" -eq 0 ] && [ "$(val rt_slow)" -eq 0 ]' \
	"with the profile no slow path in the real-time sections"
want=$(( (peak + peak / 4 + 1048575) / 1048576 * 1048576 ))
check '[ "$(val pool)" -eq "$want" ]' "the pool: the peak $peak and a quarter, rounded up to a MiB ($want)"
check '[ "$(grep "^thread " "$P1")" = "$(grep "^thread " "$P2")" ]' \
	"the round trip: saved again with the profile, the same threads' numbers"$'\n'"$(cat "$P1" "$P2")"

# Bad or stale files: one line, the profile ignored.
bad() { # WHAT LINE CONTENT
	local f=$st_tmp/bad
	printf '%b' "$3" >"$f"
	run RTALLOC_POOL_SIZE=8M RTALLOC_PROFILE="$f"
	check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_PROFILE=\"$f\": line '$2': .*; the profile is ignored$"' \
		"$1: want one line naming RTALLOC_PROFILE, the file and line $2"
	check '[ "$(val first_rt_slow)" -gt 0 ] && [ "$(val pool)" -eq 8388608 ]' "$1: the profile must be ignored"
}
good=$(cat "$P1")
bad "another version" 1 'rtalloc-profile 2\npool_peak_bytes 1000\n'
bad "not a profile" 1 'hello\n'
bad "an empty file" 1 ''
bad "an unknown class size" 3 'rtalloc-profile 1\npool_peak_bytes 1000\nclass 48 peak 3\n'
bad "a number that overflows" 2 'rtalloc-profile 1\npool_peak_bytes 99999999999999999999\n'
bad "a peak too large" 2 'rtalloc-profile 1\nthread "audio" class 64 peak 4294967296\n'
bad "a thread name too long" 2 'rtalloc-profile 1\nthread "abcdefghijklmnopq" class 64 peak 3\n'
bad "an unknown line" 4 'rtalloc-profile 1\n# comment\n\nsize 3\n'
bad "text after a line" 2 'rtalloc-profile 1\npool_peak_bytes 100 200\n'
long=$( { echo "rtalloc-profile 1"; for i in $(seq 1 1100); do printf '# %060d\n' "$i"; done; } )
bad "longer than the buffer" 1 "$long"
# A good profile with a stale line at its end: nothing of it applies.
bad "a good profile, then a bad line" "$(( $(printf '%s\n' "$good" | wc -l) + 1 ))" "$good\nclass 3 peak 1\n"
run RTALLOC_POOL_SIZE=8M RTALLOC_PROFILE="$st_tmp/missing"
check '[ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_PROFILE=\"$st_tmp/missing\": cannot open it"' \
	"a missing file: one line"

# An explicit pool size below the profile's peak wins, with one line.
printf 'rtalloc-profile 1\npool_peak_bytes 67108864\n' >"$st_tmp/big"
run RTALLOC_POOL_SIZE=8M RTALLOC_PROFILE="$st_tmp/big"
check '[ "$(val pool)" -eq 8388608 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -q "^rtalloc: RTALLOC_PROFILE=.*below the recorded peak"' \
	"RTALLOC_POOL_SIZE below the peak: it wins, with one line"

# rtalloc-stat --profile PID: the live process's profile, the same as at its exit.
P4=$st_tmp/p4
mkfifo "$st_tmp/in"
env "${clean_env[@]}" XDG_RUNTIME_DIR="$st_tmp" RTALLOC_MLOCK=0 RTALLOC_POOL_SIZE=8M RTALLOC_PROFILE_SAVE="$P4" \
	"$PROG" wait <"$st_tmp/in" >"$st_tmp/out" 2>"$st_tmp/err" &
pid=$!
exec 8>"$st_tmp/in"
for _ in $(seq 1 200); do grep -q '^ready' "$st_tmp/out" && break; sleep 0.05; done
XDG_RUNTIME_DIR="$st_tmp" "$TOOL" --profile "$pid" >"$st_tmp/p3" 2>"$st_tmp/tool.err"
RC=$?
exec 8>&-
wait $pid
OUT=$(cat "$st_tmp/p3") ERR=$(cat "$st_tmp/tool.err") LAST="$TOOL --profile $pid"
check '[ $RC -eq 0 ] && [ "$(head -n 1 "$st_tmp/p3")" = "rtalloc-profile 1" ]' "rtalloc-stat --profile: a profile"
sel() { grep -E '^(thread "audio"|pool_peak_bytes|large_peak_blocks)' "$1"; }
check '[ -n "$(sel "$st_tmp/p3")" ] && [ "$(sel "$st_tmp/p3")" = "$(sel "$P4")" ]' \
	"rtalloc-stat --profile: the numbers the process writes at exit"$'\n'"$(cat "$st_tmp/p3" "$P4")"
finish
