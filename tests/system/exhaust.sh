#!/bin/bash
# SPDX-License-Identifier: MIT
#
# exhaust.sh ST_PROBE -- RTALLOC_ON_EXHAUST with a 1M pool that may grow to 4M
# (RTALLOC_LIB from meson).  The probe does the detailed checks (st_probe.c):
#  - grow:  small and large requests beyond the pool succeed, mallinfo2().arena
#           grows, never beyond RTALLOC_POOL_MAX, and beyond it NULL + ENOMEM,
#           the first refusal reported in one line (the next ones are not);
#  - fail:  NULL with errno ENOMEM (malloc, calloc, posix_memalign, realloc
#           keeping the block), no growth, and a free makes room again;
#  - abort: a message on stderr and SIGABRT.
name=exhaust
PROBE=${1:?st_probe path}
. "$(dirname "$0")/st_lib.sh"

pool=(RTALLOC_POOL_SIZE=1M RTALLOC_POOL_MAX=4M)

probe "${pool[@]}" RTALLOC_ON_EXHAUST=grow -- exhaust grow 1M 4M
check '[ $RC -eq 0 ]' "grow: exit $RC"
# At most one notice of growth (later ones are only counted), and exactly one
# line for the refusals at RTALLOC_POOL_MAX (the probe is refused several
# times), naming the variable.
refused=$(no_growth "$ERR")
check '[ "$(lines "$ERR")" -le 2 ] && [ "$(lines "$refused")" -eq 1 ]' "grow: want one growth notice and one refusal line"
check 'printf "%s" "$refused" | grep -q "^rtalloc: an allocation was refused.*RTALLOC_POOL_MAX (4096 KiB)"' \
	"grow: the refusal at RTALLOC_POOL_MAX is not reported, or does not name the variable and the limit"
echo "$OUT"

probe "${pool[@]}" RTALLOC_ON_EXHAUST=fail -- exhaust fail 1M 4M
check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "fail: exit $RC"
echo "$OUT"

probe "${pool[@]}" RTALLOC_ON_EXHAUST=abort -- exhaust abort 1M 4M
check '[ $RC -eq 134 ]' "abort: exit $RC, want SIGABRT (134)"
check '[ "$(lines "$ERR")" -eq 1 ]' "abort: $(lines "$ERR") lines on stderr, want one message"
check 'printf "%s" "$ERR" | grep -q "^rtalloc: out of memory"' "abort: no out-of-memory message"
check 'printf "%s" "$ERR" | grep -q "65536 bytes"' "abort: the message does not give the request's size"
check 'printf "%s" "$ERR" | grep -q "RTALLOC_ON_EXHAUST=abort"' "abort: the message does not name the policy"
echo "abort: $ERR"

finish
