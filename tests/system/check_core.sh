#!/usr/bin/env bash
# check_core.sh NM CORE_LIBRARY [FACE_LIBRARY] - the library holds its
# boundaries, read from the undefined symbols of each object:
#   buddy.o, arena.o   (the page and class layers) reference nothing but
#                      librtalloc's own rt_* functions;
#   os.o               is the only object that makes system calls;
#   lock.o             the only one that calls pthread_mutex_*;
#   glue.o             the only one that reaches into glibc's internals;
#   every other object references rt_* and libc's string functions only
#   (report.o also stdio: rtalloc_stats_print writes to a FILE; interpose.o
#   and cxx.o, in FACE_LIBRARY, also the dynamic linker's lookups and the
#   C++ runtime they forward to).
# Objects are read from static libraries: the core (rtalloc_core) and the
# objects of librtalloc.so that the core does not have.
set -uo pipefail
nm=${1:?usage: check_core.sh NM CORE_LIBRARY [FACE_LIBRARY]}
core=${2:?usage: check_core.sh NM CORE_LIBRARY [FACE_LIBRARY]}
face=${3:-}
status=0

members() { # archive -> the source file name of each member (buddy, os, ...)
	"$nm" -A "$1" 2>/dev/null | sed -n 's|^[^:]*:\([^:]*/\)\{0,1\}\([A-Za-z0-9_]*\)\.c\.o:.*|\2|p' |
		sed 's/^lib_//' | sort -u
}
undefined() { # archive member -> its undefined symbols
	"$nm" -u "$1" 2>/dev/null | awk -v m="$2" '/:$/ { cur = $1; next }
		cur ~ ("(^|/)(lib_)?" m "\\.c\\.o:$") && NF { print $NF }' | sort -u
}

toolchain='_GLOBAL_OFFSET_TABLE_|__stack_chk_fail'
strings='memcpy|memmove|memset|memcmp|bcmp|strlen|strnlen|strcmp|strncmp|strchr|strrchr|strstr|strerrorname_np|__errno_location'
declare -A allowed=(
	[buddy]="^(rt_.*|$toolchain)$"
	[arena]="^(rt_.*|$toolchain)$"
	[os]='.*'
	[lock]="^(rt_.*|$toolchain|pthread_mutex_.*|pthread_mutexattr_.*)$"
	[glue]="^(rt_.*|$toolchain|__libc_mallopt|_IO_list_lock|_IO_list_unlock|__libc_single_threaded|environ|getauxval)$"
	[report]="^(rt_.*|$toolchain|$strings|fprintf|fputc|fwrite|stderr)$"
	[interpose]="^(rt_.*|$toolchain|$strings|dlsym)$"
	[cxx]="^(rt_.*|$toolchain|$strings|dlsym|dlopen|dlclose|_ZSt.*)$"
)
other="^(rt_.*|$toolchain|$strings)$"

check() { # archive
	local lib=$1 n=0
	for obj in $(members "$lib"); do
		n=$((n + 1))
		local re=${allowed[$obj]:-$other}
		local bad
		bad=$(undefined "$lib" "$obj" | grep -v -E "$re")
		if [ -n "$bad" ]; then
			echo "FAIL: $obj.c references outside its boundary:" $bad
			status=1
		else
			echo "ok: $obj.c"
		fi
	done
	[ "$n" -gt 0 ] || { echo "FAIL: no object in $lib"; status=1; }
}

check "$core"
for must in buddy arena os lock glue tcache alloc; do
	members "$core" | grep -qx "$must" || { echo "FAIL: no $must.c object in $core"; status=1; }
done
if [ -n "$face" ]; then
	check "$face"
	for must in interpose cxx; do
		members "$face" | grep -qx "$must" || { echo "FAIL: no $must.c object in $face"; status=1; }
	done
fi
exit $status
