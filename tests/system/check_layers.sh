#!/usr/bin/env bash
# check_layers.sh NM LIBRARY... - data flows one way between librtalloc's
# layers: every reference from one object to a function or variable of
# another goes to the same layer or a lower one, except the few hooks
# listed below (each a documented upward call).  The layers, bottom first,
# are those of lib/rt.h's map; the objects are read from static libraries
# (the core, and the objects librtalloc.so adds to it).
set -uo pipefail
set -f # the hooks hold "*"
nm=${1:?usage: check_layers.sh NM LIBRARY...}
shift

# file -> layer (0 = bottom).  Files of one layer may call each other.
declare -A layer=(
	[os]=0 [glue]=0 [say]=0 [lock]=0 [options]=0
	[buddy]=1 [stats]=1 [statread]=1 [profile]=1 [profile_fmt]=1 [faults]=1 [faults_sym]=1
	[arena]=2
	[pool]=3 [limits]=3 [mlock]=3
	[tcache]=4
	[alloc]=5 [init]=5 [fork]=5 [report]=5 [heap]=5 [heap_block]=5 [heap_wait]=5 [heap_shm]=5 [heap_debug]=5
	[interpose]=6 [cxx]=6
)
# Upward references allowed: "from symbol", with why.
hooks=(
	# The arena's growth hook: arena.c calls the function pointer
	# a->grow (pool.c) when its buddy is empty (the one call upwards).
	# rt_g is the allocator's state (rt.h), defined where the pool fills it.
	"* rt_g"
)

objects() { # archive -> "file symbol-kind symbol" for defined and undefined symbols
	"$nm" -A "$1" 2>/dev/null | awk '{
		split($1, a, ":"); o = a[2]; sub(/.*\//, "", o); sub(/^lib_/, "", o); sub(/\.c\.o$/, "", o)
		if (NF >= 3) print o, $(NF-1), $NF; else print o, $1 == "" ? "U" : $(NF-1), $NF }'
}
all=$(for lib in "$@"; do objects "$lib"; done)
defs=$(printf '%s\n' "$all" | awk '$2 ~ /^[TDBRCVW]$/ { print $3, $1 }' | sort -u)
uses=$(printf '%s\n' "$all" | awk '$2 == "U" && $3 ~ /^rt_/ { print $3, $1 }' | sort -u)
status=0
unknown=
while read -r sym from to; do
	[ "$from" = "$to" ] && continue
	lf=${layer[$from]:-}; lt=${layer[$to]:-}
	if [ -z "$lf" ] || [ -z "$lt" ]; then
		unknown="$unknown $from $to"
		continue
	fi
	[ "$lt" -le "$lf" ] && continue
	ok=
	for h in "${hooks[@]}"; do
		set -- $h
		if { [ "$1" = '*' ] || [ "$1" = "$from" ]; } && [ "$2" = "$sym" ]; then ok=1; fi
	done
	[ -n "$ok" ] && continue
	echo "FAIL: $from.c (layer $lf) uses $sym of $to.c (layer $lt)"
	status=1
done < <(join <(printf '%s\n' "$uses") <(printf '%s\n' "$defs") | sort -k2)
if [ -n "$unknown" ]; then
	echo "FAIL: files without a layer in check_layers.sh:" $(printf '%s\n' $unknown | sort -u)
	status=1
fi
[ $status -eq 0 ] && echo "ok: every reference goes to the same or a lower layer (hooks: ${#hooks[@]})"
exit $status
