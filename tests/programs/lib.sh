# shellcheck shell=bash
# lib.sh - "run both ways and compare", sourced by the tests of real programs.
#
#   prog_begin NAME           a work directory, the report checks, the cleanup
#   prog_need CMD...          skip (exit 77) when a program is not installed
#   prog_both LABEL [opts] -- CMD ARGS...
#       runs CMD without librtalloc and with LD_PRELOAD=librtalloc.so
#       (RTALLOC_POOL_SIZE, RTALLOC_REPORT), alternately, PROGRAMS_REPEAT (1)
#       times each way, each run from a fresh directory; compares exit status
#       and stdout (through a normaliser) with the first run without; checks
#       each report; prints and records the best wall and cpu time each way
#       and their ratios.  Options:
#         --prep FUNC     called in the fresh directory before each run (not timed,
#                         not preloaded): input files, a repository...
#         --norm FUNC     filter stdin -> stdout applied to both outputs
#         --env VAR=VAL   for both runs (repeatable)
#         --timeout S     per run (default 60)
#         --min-mallocs N the program's own report line must count at least N
#         --expect-rc N   the exit status every run must have (default 0)
#         --stdin FILE    the programs' standard input (default /dev/null)
#       A script started as CMD may write the pid of the process to check in
#       the report (a server it starts) to the file $PROG_MAINPID_FILE.
#   prog_end                  prints the verdict; exit status of the test
#
# Environment from meson: RTALLOC_LIB (librtalloc.so), PROGRAMS_BUILD (where
# ratios.txt and the work directories go), PROGRAMS_SRC, PROJECT_SRC.
# RTALLOC_TEST_POOL overrides the pool size (32M); PROGRAMS_KEEP=1 keeps the
# work directory (outputs, reports) of passing runs too.  A run slower than
# RATIO_MLOCK0 times (1.5) the plain one is measured again with RTALLOC_MLOCK=0,
# to tell the cost of mlockall from the allocator's.
set -uo pipefail

: "${RTALLOC_LIB:?RTALLOC_LIB must name librtalloc.so}"
: "${PROGRAMS_BUILD:=$PWD}"
: "${RTALLOC_TEST_POOL:=32M}"
: "${RATIO_MLOCK0:=1.5}"
: "${PROGRAMS_REPEAT:=1}"
export LC_ALL=C.UTF-8 TZ=UTC
unset LD_PRELOAD RTALLOC_REPORT
# meson test sets MALLOC_PERTURB_, which makes glibc's malloc fill every block
# it hands out and frees: it would slow the runs without librtalloc only.
unset MALLOC_PERTURB_ MALLOC_CHECK_

PROG_NAME=
PROG_WORK=
PROG_FAILS=0

say() { printf '%s\n' "$*"; }
fail() { say "FAIL: $*"; PROG_FAILS=$((PROG_FAILS + 1)); }

prog_need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || { say "SKIP: $c is not installed (tools/setup test)"; exit 77; }
	done
}

_prog_exit() {
	local rc=$?
	if [ -n "$PROG_WORK" ] && [ -d "$PROG_WORK" ]; then
		if { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; } && [ -z "${PROGRAMS_KEEP:-}" ]; then
			rm -rf "$PROG_WORK"
		else
			say "work directory kept: $PROG_WORK"
		fi
	fi
}

prog_begin() {
	PROG_NAME=$1
	[ -f "$RTALLOC_LIB" ] || { say "FAIL: no library at $RTALLOC_LIB"; exit 1; }
	PROG_WORK=$PROGRAMS_BUILD/work/$PROG_NAME
	rm -rf "$PROG_WORK"
	mkdir -p "$PROG_WORK" "$PROGRAMS_BUILD/ratios"
	rm -f "$PROGRAMS_BUILD/ratios/$PROG_NAME--"*.txt # this test's old lines
	trap _prog_exit EXIT
	trap 'exit 130' INT TERM
	say "librtalloc: $RTALLOC_LIB (pool $RTALLOC_TEST_POOL, mlock default)"
}

# Wall-clock nanoseconds.
_now() { local t=${EPOCHREALTIME/./}; printf '%s' "$((10#$t * 1000))"; }

# _run MODE DIR TIMEOUT CMD...   MODE: base | rt | rt-nolock.
# Sets RUN_RC, RUN_NS (wall) and RUN_CPU_NS (user + system of the program and
# every process it waited for).  The program's pid is written to DIR.pid (bash
# writes $$ and execs env, which execs the program: one pid).  Only the
# program gets LD_PRELOAD, not timeout; on expiry timeout signals the whole
# process group.
_run() {
	local mode=$1 dir=$2 t=$3; shift 3
	local pre=()
	case $mode in
	rt) pre=(LD_PRELOAD="$RTALLOC_LIB" RTALLOC_POOL_SIZE="$RTALLOC_TEST_POOL" RTALLOC_REPORT="$dir.report") ;;
	rt-nolock) pre=(LD_PRELOAD="$RTALLOC_LIB" RTALLOC_POOL_SIZE="$RTALLOC_TEST_POOL" RTALLOC_MLOCK=0
			RTALLOC_REPORT="$dir.report") ;;
	esac
	local t0 t1
	t0=$(_now)
	(
		cd "$dir" || exit 99
		timeout -k 5 "$t" bash -c 'echo $$ >"$0"; exec env "$@"' "$dir.pid" \
			PROG_MAINPID_FILE="$dir.mainpid" "${_env[@]}" "${pre[@]}" "$@" \
			<"${_stdin:-/dev/null}" >"$dir.out" 2>"$dir.err"
		rc=$?
		times >"$dir.times"
		exit $rc
	)
	RUN_RC=$?
	t1=$(_now)
	RUN_NS=$((t1 - t0))
	# times: "0m1.250s 0m0.031s" for the shell, then for its children.
	RUN_CPU_NS=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%.0f", n * 1e9 }' "$dir.times" 2>/dev/null)
	: "${RUN_CPU_NS:=0}"
	if [ "$RUN_RC" -eq 124 ] || [ "$RUN_RC" -eq 137 ]; then
		say "  ($mode: timed out after ${t}s)"
	fi
}

# " (SIGSEGV)" for an exit status that is a signal's (bash: 128 + n; 124 is
# timeout's).
_signame() {
	if [ "$1" -eq 124 ]; then printf ' (timed out)'
	elif [ "$1" -gt 128 ] && [ "$1" -lt 160 ]; then printf ' (SIG%s)' "$(kill -l $(($1 - 128)) 2>/dev/null)"
	fi
}

# _check_report LABEL FILE PID MIN_MALLOCS VERBOSE: the proof that librtalloc
# ran: a report line from the program's own pid with at least MIN mallocs.
_check_report() {
	local label=$1 file=$2 pid=$3 min=$4 verbose=$5
	if [ ! -s "$file" ]; then
		fail "$label: no RTALLOC_REPORT line ($file): librtalloc was not used"
		return
	fi
	local summary
	summary=$(awk -v pid="$pid" '
		function num(k,   m) { if (match($0, "\"" k "\":[0-9]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 } return -1 }
		BEGIN { own = -1; ownf = -1 }
		{ n++; p = num("pid"); m = num("mallocs"); tm += m; if (m > 0) used++
		  if (num("locked") == 1) locked++; g += num("grows"); fl += num("failed")
		  if (num("pool_bytes") > pb) pb = num("pool_bytes"); if (num("high_water_bytes") > hw) hw = num("high_water_bytes")
		  if (p == pid) { own = m; ownf = num("minflt_since_init") } }
		END { printf "%d %d %d %d %d %d %d %d %d %d\n", n, used, tm, locked, g, fl, pb, hw, own, ownf }' "$file")
	local n used tm locked grows failed pb hw own ownf
	read -r n used tm locked grows failed pb hw own ownf <<<"$summary"
	if [ "$verbose" = 1 ]; then
		say "  report: $n process(es), $used with mallocs > 0, $tm mallocs in all; locked $locked/$n;" \
			"grows $grows, failed allocations $failed; largest pool $((pb >> 20)) MiB, high water $((hw >> 20)) MiB"
		[ "$own" -ge 0 ] && say "  the program itself (pid $pid): $own mallocs, $ownf minor faults since init"
	fi
	[ "$used" -ge 1 ] || fail "$label: no process of the run counted a malloc"
	if [ "$own" -lt 0 ]; then
		fail "$label: no report line for the program's pid $pid (it did not exit through librtalloc)"
	elif [ "$own" -lt "$min" ]; then
		fail "$label: the program counted $own mallocs, expected at least $min"
	fi
}

# LABEL BASE_NS RT_NS BASE_CPU_NS RT_CPU_NS [NOLOCK_NS [OK]]
_ratio_line() {
	local line
	line=$(awk -v l="$1" -v b="$2" -v r="$3" -v bc="$4" -v rc="$5" -v nl="${6:-}" -v ok="${7:-1}" 'BEGIN {
		printf "%-16s %8.0f %8.0f %6.2f %8.0f %8.0f %6.2f", l, b / 1e6, r / 1e6, (b > 0 ? r / b : 0),
			bc / 1e6, rc / 1e6, (bc > 0 ? rc / bc : 0)
		if (nl != "") printf "   RTALLOC_MLOCK=0: %.0f ms, wall ratio %.2f", nl / 1e6, (b > 0 ? nl / b : 0)
		if (ok != 1) printf "   (FAILED: output or exit status differs)"
		printf "\n" }')
	say "  times in ms, best of $PROGRAMS_REPEAT; ratio = with librtalloc / without:"
	say "  $(printf '%-16s %8s %8s %6s %8s %8s %6s' '' wall wall_rt ratio cpu cpu_rt ratio)"
	say "  $line"
	printf '%s\n' "$line" >"$PROGRAMS_BUILD/ratios/$PROG_NAME--$1.txt"
	# The table of every program run so far (tests may run in any order).
	{
		printf '# best of %s run(s) each way; cpu = user + system of every process\n' "$PROGRAMS_REPEAT"
		printf '%-16s %8s %8s %6s %8s %8s %6s\n' "program" "wall" "wall_rt" "ratio" "cpu" "cpu_rt" "ratio"
		cat "$PROGRAMS_BUILD"/ratios/*.txt
	} >"$PROGRAMS_BUILD/ratios.txt.tmp" && mv -f "$PROGRAMS_BUILD/ratios.txt.tmp" "$PROGRAMS_BUILD/ratios.txt"
}

_show_diff() { # A B
	say "  --- without librtalloc / +++ with librtalloc (first 40 lines):"
	diff -u "$1" "$2" | head -40 | sed 's/^/  | /'
}

# What librtalloc said on stderr (its messages start with "rtalloc: "), and
# any other difference of stderr (noted, not compared).
_show_stderr() { # BASE_ERR RT_ERR
	local said
	said=$(grep '^rtalloc: ' "$2" | sort | uniq -c | head -10)
	[ -n "$said" ] && say "  librtalloc said on stderr:" && printf '%s\n' "$said" | cut -c1-200 | sed 's/^/  | /'
	if ! cmp -s <(grep -v '^rtalloc: ' "$1") <(grep -v '^rtalloc: ' "$2"); then
		say "  note: stderr differs (not compared; first lines of the diff):"
		diff <(grep -v '^rtalloc: ' "$1") <(grep -v '^rtalloc: ' "$2") | head -10 | sed 's/^/  | /'
	fi
}

# _fresh DIR PREP: an empty directory, prepared.
_fresh() {
	rm -rf "$1" "$1".*
	mkdir -p "$1"
	[ -z "$2" ] || (cd "$1" && "$2")
}

prog_both() {
	local label=$1; shift
	local prep='' norm=cat t=60 min=1 expect=0 _env=() _stdin=''
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		case $1 in
		--prep) prep=$2; shift 2 ;;
		--norm) norm=$2; shift 2 ;;
		--env) _env+=("$2"); shift 2 ;;
		--timeout) t=$2; shift 2 ;;
		--min-mallocs) min=$2; shift 2 ;;
		--expect-rc) expect=$2; shift 2 ;;
		--stdin) _stdin=$2; shift 2 ;;
		*) say "prog_both: unknown option $1"; exit 2 ;;
		esac
	done
	shift
	say "== $label: $*"
	# Runs alternate base, rt, base, rt...; the first base run is the reference.
	local ref=$PROG_WORK/$label.base1 ok=1 r mode dir pidf
	local base_ns='' rt_ns='' base_cpu='' rt_cpu='' rt_rc=''
	for ((r = 1; r <= PROGRAMS_REPEAT; r++)); do
		for mode in base rt; do
			dir=$PROG_WORK/$label.$mode$r
			_fresh "$dir" "$prep" || { fail "$label: preparation ($prep) failed"; return 1; }
			_run "$mode" "$dir" "$t" "$@"
			"$norm" <"$dir.out" >"$dir.norm"
			if [ "$mode" = base ]; then
				if [ "$RUN_RC" -ne "$expect" ]; then
					fail "$label: the program itself (without librtalloc) exited with $RUN_RC, not $expect: the test is broken"
					sed 's/^/  base stderr: /' "$dir.err" | head -20
					return 1
				fi
				if [ "$r" -gt 1 ] && ! cmp -s "$ref.norm" "$dir.norm"; then
					fail "$label: the output varies from run to run without librtalloc: normalise it"
					_show_diff "$ref.norm" "$dir.norm"
					return 1
				fi
				[ -z "$base_ns" ] || [ "$RUN_NS" -lt "$base_ns" ] && base_ns=$RUN_NS
				[ -z "$base_cpu" ] || [ "$RUN_CPU_NS" -lt "$base_cpu" ] && base_cpu=$RUN_CPU_NS
				continue
			fi
			[ -z "$rt_ns" ] || [ "$RUN_NS" -lt "$rt_ns" ] && rt_ns=$RUN_NS
			[ -z "$rt_cpu" ] || [ "$RUN_CPU_NS" -lt "$rt_cpu" ] && rt_cpu=$RUN_CPU_NS
			rt_rc=$RUN_RC
			if [ "$RUN_RC" -ne "$expect" ]; then
				fail "$label: exit status $RUN_RC$(_signame "$RUN_RC") with librtalloc (run $r), $expect without"
				sed 's/^/  rt stderr: /' "$dir.err" | tail -30
				ok=0
			fi
			if ! cmp -s "$ref.norm" "$dir.norm"; then
				fail "$label: stdout differs with librtalloc (run $r)"
				_show_diff "$ref.norm" "$dir.norm"
				ok=0
			fi
			if [ "$ok" -eq 0 ] && [ "$r" -eq 1 ]; then
				say "  to reproduce${prep:+ in a directory made by $prep() of ${0##*/}} (a crash: gdb -batch -ex run -ex bt --args env ...):"
				say "    env${_env[*]:+ ${_env[*]@Q}} LD_PRELOAD=$RTALLOC_LIB RTALLOC_POOL_SIZE=$RTALLOC_TEST_POOL" \
					"${*@Q}${_stdin:+ <$_stdin}"
				[ "${1:-}" = bash ] && [ "${2:-}" = -c ] && say "    (the job is a bash function of ${0##*/}; PROGRAMS_KEEP=1 keeps every run's files)"
			fi
			[ "$r" -eq 1 ] && _show_stderr "$ref.err" "$dir.err"
			# The program's pid, or the one the job named in
			# $PROG_MAINPID_FILE (a server started by a script).
			pidf=$dir.pid
			[ -s "$dir.mainpid" ] && pidf=$dir.mainpid
			_check_report "$label" "$dir.report" "$(cat "$pidf" 2>/dev/null || echo 0)" "$min" \
				"$([ "$r" -eq 1 ] && echo 1)"
		done
	done
	say "  stdout: $(wc -l <"$ref.norm") lines compared over $PROGRAMS_REPEAT run(s) each way; exit status $rt_rc"
	local nolock_ns=''
	if [ "$ok" -eq 1 ] && awk -v b="$base_ns" -v r="$rt_ns" -v k="$RATIO_MLOCK0" 'BEGIN { exit !(r > k * b) }'; then
		dir=$PROG_WORK/$label.nolock
		if _fresh "$dir" "$prep"; then
			_run rt-nolock "$dir" "$t" "$@"
			nolock_ns=$RUN_NS
			"$norm" <"$dir.out" >"$dir.norm"
			if [ "$RUN_RC" -ne "$expect" ] || ! cmp -s "$ref.norm" "$dir.norm"; then
				fail "$label: with RTALLOC_MLOCK=0, exit status $RUN_RC or stdout differs"
				_show_diff "$ref.norm" "$dir.norm"
			fi
		fi
	fi
	_ratio_line "$label" "$base_ns" "$rt_ns" "$base_cpu" "$rt_cpu" "$nolock_ns" "$ok"
	[ "$ok" -eq 1 ] && say "  same stdout and exit status with librtalloc"
	# Keep what a failure needs; drop the bulk of a passing run.
	if [ "$ok" -eq 1 ] && [ -z "${PROGRAMS_KEEP:-}" ]; then
		for dir in "$PROG_WORK/$label".*; do [ -d "$dir" ] && rm -rf "$dir"; done
	fi
	return 0
}

prog_end() {
	if [ "$PROG_FAILS" -gt 0 ]; then
		say "$PROG_NAME: $PROG_FAILS failure(s)"
		exit 1
	fi
	say "$PROG_NAME: every run gave the same result with librtalloc (ratios of all programs: $PROGRAMS_BUILD/ratios.txt)"
	exit 0
}
