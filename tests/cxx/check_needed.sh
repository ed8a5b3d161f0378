#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_needed.sh READELF LIBRARY C_PROGRAM
#
# librtalloc's operator new/delete are written in C so that C programs do not
# pay for C++: neither librtalloc.so nor a C program linked with it may need a
# C++ runtime (libstdc++, libc++, libsupc++).  The C program must need
# librtalloc (else the check would prove nothing).
set -u
readelf=${1:?readelf}
lib=${2:?library}
prog=${3:?C program}
name=needed

needed() {
	"$readelf" -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p'
}

status=0
for f in "$lib" "$prog"; do
	[ -f "$f" ] || { echo "FAIL $name: no file $f" >&2; exit 1; }
	list=$(needed "$f") || { echo "FAIL $name: readelf -d $f failed" >&2; exit 1; }
	[ -n "$list" ] || { echo "FAIL $name: $f needs nothing, not even libc?" >&2; exit 1; }
	cxx=$(echo "$list" | grep -E '^lib(stdc\+\+|c\+\+|supc\+\+)' || true)
	if [ -n "$cxx" ]; then
		echo "FAIL $name: $f needs a C++ runtime:" $cxx >&2
		status=1
	fi
	echo "$(basename "$f") needs:" $list
done
if ! needed "$prog" | grep -q '^librtalloc\.so'; then
	echo "FAIL $name: $prog is not linked with librtalloc" >&2
	status=1
fi
[ $status -eq 0 ] && echo "ok $name: no C++ runtime in the NEEDED lists"
exit $status
