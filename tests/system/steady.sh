#!/bin/bash
# SPDX-License-Identifier: MIT
#
# steady.sh ST_STEADY THREADS -- the steady-state proof, system-call half
# (RTALLOC_LIB from meson).
#
# Runs `st_steady THREADS` with LD_PRELOAD=librtalloc.so under
#   strace -f -e trace=%memory,getppid
# The program calls getppid() exactly twice, around its steady phase (every
# thread created and warmed up before the first, all done before the second).
# Between the two markers there must be ZERO memory system calls: mmap,
# munmap, brk, madvise, mprotect, mremap, mlock*, munlock*, mbind... (strace's
# %memory class), from any thread.  The program itself checks for zero page
# faults in the same phase and that the pool did not grow.
name=steady-syscalls
PROG=${1:?st_steady path}
THREADS=${2:?threads}
name="steady-syscalls-$THREADS"
set -u
: "${RTALLOC_LIB:?RTALLOC_LIB must name librtalloc.so}"
skip() { echo "SKIP $name: $*" >&2; exit 77; }
fail() { echo "FAIL $name: $*" >&2; exit 1; }

command -v strace >/dev/null || skip "strace not installed"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
strace -f -qq -o /dev/null -e trace=getppid true 2>"$tmp/probe" || skip "strace cannot trace here: $(head -n 1 "$tmp/probe")"
opts=(-f -qq -o "$tmp/trace" -e trace=%memory,getppid)
# Stop the tracee only on the traced calls (much faster) when strace can.
strace --seccomp-bpf -f -qq -o /dev/null -e trace=getppid true 2>/dev/null && opts=(--seccomp-bpf "${opts[@]}")

strace "${opts[@]}" -E LD_PRELOAD="$RTALLOC_LIB" -E RTALLOC_POOL_SIZE=16M \
	"$PROG" "$THREADS" >"$tmp/out" 2>"$tmp/err"
rc=$?
cat "$tmp/out"
[ $rc -eq 77 ] && skip "$(cat "$tmp/err")"
[ $rc -eq 0 ] || { cat "$tmp/err" >&2; fail "st_steady $THREADS under strace exited $rc"; }

markers=$(grep -c 'getppid(' "$tmp/trace")
[ "$markers" -eq 2 ] || fail "expected exactly 2 getppid() markers in the trace, found $markers"

# Lines are "PID name(args...) = result" (or "<unfinished ...>", whose
# "<... name resumed>" continuation does not match the pattern).
awk '
	/ getppid\(/ { m++; next }
	m == 1 && /^[0-9]+ +[a-z_0-9]+\(/ { print > "'"$tmp/inside"'" }
	m != 1 && /^[0-9]+ +[a-z_0-9]+\(/ { outside++ }
	END { print outside + 0 > "'"$tmp/outside"'" }
' "$tmp/trace"
inside=0
[ -f "$tmp/inside" ] && inside=$(wc -l <"$tmp/inside")
echo "memory system calls: $(cat "$tmp/outside") outside the steady phase, $inside inside (strace ${opts[0]})"
if [ "$inside" -ne 0 ]; then
	echo "memory system calls in the steady phase (first 20):" >&2
	head -n 20 "$tmp/inside" >&2
	fail "$inside memory system call(s) between the markers"
fi
echo "ok $name"
