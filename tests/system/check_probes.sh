#!/usr/bin/env bash
# check_probes.sh READELF LIBRARY PROBES_H HAVE_SDT - the USDT probes of
# lib/probes.h's table are in the built library (provider rtalloc), every one
# of them and no other, and each is a nop with no semaphore (no cost when
# nothing traces).  Skipped (77) when the build has no <sys/sdt.h>.
set -uo pipefail
readelf=${1:?usage: check_probes.sh READELF LIBRARY PROBES_H HAVE_SDT}
lib=${2:?}; hdr=${3:?}; have=${4:?}
[ "$have" = true ] || { echo "SKIP: built without sys/sdt.h (install systemtap-sdt-dev)"; exit 77; }
want=$(sed -n '/^ \*   probe  /,/^ \*$/p' "$hdr" | sed -n '2,$s/^ \*   \([a-z_][a-z_]*\) .*/\1/p' | sort -u)
notes=$("$readelf" -n --wide "$lib")
have_names=$(printf '%s\n' "$notes" | awk '/Provider: rtalloc/ { getline; if ($1 == "Name:") print $2 }' | sort -u)
status=0
[ -n "$want" ] || { echo "FAIL: no probe table in $hdr"; exit 1; }
for p in $want; do
	printf '%s\n' "$have_names" | grep -qx "$p" && echo "ok: probe $p" ||
		{ echo "FAIL: probe $p (lib/probes.h) is not in $lib"; status=1; }
done
for p in $have_names; do
	printf '%s\n' "$want" | grep -qx "$p" ||
		{ echo "FAIL: probe $p is in $lib but not in lib/probes.h's table"; status=1; }
done
if printf '%s\n' "$notes" | grep -A2 'Provider: rtalloc' | grep -q 'Semaphore: 0x0*[1-9a-f]'; then
	echo "FAIL: a probe has a semaphore (a memory load on its path)"; status=1
fi
exit $status
