#!/usr/bin/env bash
# check_core.sh NM CORE_LIBRARY - the allocator's core holds the OS boundary:
#   buddy.o and bucket.o (the page and class layers) reference nothing but
#   librtalloc's own rt_* functions: no libc, no system call, no pthread;
#   tcache.o and alloc.o (the slow and fast paths of malloc) reference no
#   system-call wrapper: what they need of the OS goes through glue/lock/pool.
# Objects are read from the static core library (rtalloc_core).
set -uo pipefail
nm=${1:?usage: check_core.sh NM CORE_LIBRARY}
lib=${2:?usage: check_core.sh NM CORE_LIBRARY}
status=0
undefined() { # member of the archive -> its undefined symbols
	"$nm" -u "$lib" 2>/dev/null | awk -v m="$1" '/:$/ { cur = $1; next } cur ~ m && NF { print $NF }' | sort -u
}
for obj in buddy bucket; do
	syms=$(undefined "_$obj\\.c\\.o:" | grep -v -E '^(rt_|_GLOBAL_OFFSET_TABLE_$|__stack_chk_fail$)')
	if [ -n "$syms" ]; then
		echo "FAIL: $obj.c references outside librtalloc:" $syms
		status=1
	else
		echo "ok: $obj.c references only rt_* functions"
	fi
done
syscalls='^(mmap|munmap|mprotect|madvise|mremap|mlock|mlockall|munlock|munlockall|mbind|open|openat|close|read|write|ftruncate|fallocate|posix_fallocate|fstat|stat|lstat|unlink|getrlimit|setrlimit|getrusage|syscall|futex|clock_gettime|getpid|gettid|kill|pthread_mutex_lock|pthread_mutex_trylock|pthread_mutex_unlock|sched_yield|nanosleep)(64)?$'
for obj in tcache alloc; do
	syms=$(undefined "_$obj\\.c\\.o:" | grep -E "$syscalls")
	if [ -n "$syms" ]; then
		echo "FAIL: $obj.c calls the OS directly:" $syms
		status=1
	else
		echo "ok: $obj.c makes no system call of its own"
	fi
done
n=$(undefined "_buddy\\.c\\.o:" | wc -l)
[ "$n" -gt 0 ] || [ "$("$nm" "$lib" 2>/dev/null | grep -c '_buddy\.c\.o:')" -gt 0 ] || { echo "FAIL: no buddy.c object in $lib"; status=1; }
exit $status
