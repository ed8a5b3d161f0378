#!/bin/bash
# SPDX-License-Identifier: MIT
#
# mlockmode.sh ST_MLOCKMODE -- what each RTALLOC_MLOCK mode locks and makes
# resident, and RTALLOC_HUGEPAGES (RTALLOC_LIB from meson).  Counted in KiB
# from VmLck and mincore, never timed:
#  - all (1, the default): everything is locked and resident, so the program's
#    own madvise(MADV_DONTNEED) fails (EINVAL: what aborts node/V8), a new
#    mapping is locked, the BSS and a new thread's whole stack are resident;
#  - onfault: the pool locked and resident, every other page locked when it is
#    first touched: the untouched BSS and the untouched part of a thread's
#    stack stay out of memory; rtalloc_thread_prepare pre-faults (so locks)
#    the stack it is told to (RTALLOC_STACK_PREFAULT);
#  - pool: VmLck is the pool and its descriptors, nothing else; a new mapping
#    is not locked and madvise(MADV_DONTNEED) on it works; the BSS and a
#    thread's stack are not made resident; growth of the pool is locked;
#  - RTALLOC_HUGEPAGES: 1 (default) puts the pool in transparent huge pages
#    where the kernel has them (THP "madvise" or "always"), 0 never does;
#  - bad values are reported once, naming the variable, and the default used;
#  - a large block keeps only its pages (rounded to an eighth of its buddy
#    block from 16 MiB on): malloc(pool/4 + 4K) in a 64M pool holds 20M, not
#    the 32M block, the rest serves other requests, and all of it comes back.
# Lock checks are skipped (with a note) where mlockall cannot succeed.
name=mlockmode
BIN=${1:?st_mlockmode path}
PROBE=$BIN
. "$(dirname "$0")/st_lib.sh"

M=$((1 << 20))
POOL=$((8 * M))
probe_lockable() {
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=1 -- info $POOL
	if [ "$RC" -eq 0 ] && [ "$(kv vmlck_kb)" -ge 8192 ] 2>/dev/null; then LOCKABLE=1; else LOCKABLE=0; fi
}
probe_lockable
if [ $LOCKABLE = 0 ]; then
	note "mlockall fails here (no CAP_IPC_LOCK, ulimit -l $(ulimit -l)): lock checks skipped"
else
	# all: the default and its names.
	for v in DEFAULT 1 all; do
		if [ $v = DEFAULT ]; then probe RTALLOC_POOL_SIZE=$POOL -- info $POOL
		else probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=$v -- info $POOL; fi
		check '[ $RC -eq 0 ] && [ -z "$(no_growth "$ERR")" ]' "RTALLOC_MLOCK=$v: exit $RC or a message"
		check '[ "$(kv madvise)" = EINVAL ]' "RTALLOC_MLOCK=$v: madvise(MADV_DONTNEED) gave $(kv madvise), want EINVAL (locked)"
		check '[ "$(kv map_lck_kb)" -ge 1024 ]' "RTALLOC_MLOCK=$v: a new mapping added $(kv map_lck_kb) kB to VmLck"
		check '[ "$(kv bss_kb)" -ge 16000 ]' "RTALLOC_MLOCK=$v: only $(kv bss_kb) kB of the BSS resident"
		check '[ "$(kv stack_kb)" -ge 4096 ]' "RTALLOC_MLOCK=$v: only $(kv stack_kb) kB of a new thread's stack resident"
	done

	# onfault: the pool locked, the rest locked as touched.
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=onfault RTALLOC_STACK_PREFAULT=256K -- info $POOL
	check '[ $RC -eq 0 ] && [ -z "$(no_growth "$ERR")" ]' "RTALLOC_MLOCK=onfault: exit $RC or a message"
	check '[ "$(kv vmlck_kb)" -ge 8192 ]' "RTALLOC_MLOCK=onfault: VmLck $(kv vmlck_kb) kB < the pool"
	check '[ "$(kv map_lck_kb)" -ge 1024 ]' "RTALLOC_MLOCK=onfault: a new mapping is not locked (VmLck +$(kv map_lck_kb) kB)"
	check '[ "$(kv bss_kb)" -eq 0 ]' "RTALLOC_MLOCK=onfault: $(kv bss_kb) kB of the untouched BSS resident"
	check '[ "$(kv stack_kb)" -lt 1024 ]' "RTALLOC_MLOCK=onfault: $(kv stack_kb) kB of a new thread's stack resident at its start"
	check '[ "$(kv stack_prep_kb)" -ge 256 ] && [ "$(kv stack_prep_kb)" -lt 2048 ]' \
		"RTALLOC_MLOCK=onfault: $(kv stack_prep_kb) kB of the stack resident after rtalloc_thread_prepare (want 256K..2M)"
	check '[ "$(kv grow_lck_kb)" -ge 16384 ]' "RTALLOC_MLOCK=onfault: growth added $(kv grow_lck_kb) kB to VmLck, want the 16M grown"

	# pool: the pool and its descriptors, nothing else.
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=pool -- info $POOL
	check '[ $RC -eq 0 ] && [ -z "$(no_growth "$ERR")" ]' "RTALLOC_MLOCK=pool: exit $RC or a message"
	check '[ "$(kv vmlck_kb)" -ge 8192 ] && [ "$(kv vmlck_kb)" -le $((8192 + 64)) ]' \
		"RTALLOC_MLOCK=pool: VmLck $(kv vmlck_kb) kB, want the 8M pool and its 48K of descriptors"
	check '[ "$(kv madvise)" = 0 ]' "RTALLOC_MLOCK=pool: madvise(MADV_DONTNEED) on the program's own mapping gave $(kv madvise)"
	check '[ "$(kv map_lck_kb)" -eq 0 ]' "RTALLOC_MLOCK=pool: a new mapping added $(kv map_lck_kb) kB to VmLck"
	check '[ "$(kv bss_kb)" -eq 0 ]' "RTALLOC_MLOCK=pool: $(kv bss_kb) kB of the untouched BSS resident"
	check '[ "$(kv stack_kb)" -lt 1024 ]' "RTALLOC_MLOCK=pool: $(kv stack_kb) kB of a new thread's stack resident"
	check '[ "$(kv grow_lck_kb)" -ge 16384 ]' "RTALLOC_MLOCK=pool: growth added $(kv grow_lck_kb) kB to VmLck, want the 16M grown"

	# A child of fork locks again in its mode (locks are not inherited).
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=pool -- fork
	check '[ $RC -eq 0 ] && [ "$(kv child_vmlck_kb)" -ge 8192 ] && [ "$(kv child_vmlck_kb)" -le $((8192 + 64)) ]' \
		"RTALLOC_MLOCK=pool: a child of fork has VmLck $(kv child_vmlck_kb) kB, want the pool's"
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=onfault -- fork
	check '[ $RC -eq 0 ] && [ "$(kv child_vmlck_kb)" -ge $((8192 + 1024)) ]' \
		"RTALLOC_MLOCK=onfault: a child of fork has VmLck $(kv child_vmlck_kb) kB, want the pool and more"
fi

# off: nothing locked, madvise works.
probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=0 -- info $POOL
check '[ $RC -eq 0 ] && [ -z "$(no_growth "$ERR")" ] && [ "$(kv vmlck_kb)" = 0 ] && [ "$(kv madvise)" = 0 ]' \
	"RTALLOC_MLOCK=0: VmLck $(kv vmlck_kb) kB, madvise $(kv madvise)"

# Bad values: one line naming the variable, the default used.
for v in pools onfaults "pool,require" ""; do
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK="$v" -- info $POOL
	check '[ $RC -eq 0 ] && [ "$(lines "$(no_growth "$ERR")")" -eq 1 ] && printf "%s" "$ERR" | grep -qF "RTALLOC_MLOCK=\"$v\""' \
		"RTALLOC_MLOCK=\"$v\": want one line naming the variable"
	[ $LOCKABLE = 1 ] && check '[ "$(kv madvise)" = EINVAL ]' "RTALLOC_MLOCK=\"$v\": the default (all) was not used"
done
for v in 2 maybe ""; do
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_HUGEPAGES="$v" -- huge
	check '[ $RC -eq 0 ] && [ "$(lines "$ERR")" -eq 1 ] && printf "%s" "$ERR" | grep -qF "RTALLOC_HUGEPAGES=\"$v\""' \
		"RTALLOC_HUGEPAGES=\"$v\": want one line naming the variable"
done

# Large blocks: the tail of the buddy block is given back.
probe RTALLOC_POOL_SIZE=64M RTALLOC_ON_EXHAUST=fail RTALLOC_MLOCK=0 -- trim $((64 * M))
check '[ $RC -eq 0 ] && [ "$(kv usable)" = $((20 * M)) ]' "malloc(pool/4 + 4K): usable size $(kv usable), want 20M (5/8 of the 32M block)"
check '[ "$(kv got1)" -ge 680 ]' "beside a block of pool/4 + 4K, only $(kv got1) blocks of 64K fit in the 64M pool (the 32M block is held whole?)"
check '[ "$(kv got2)" -ge $(( $(kv got1) + 310 )) ]' "after freeing it, $(kv got2) blocks of 64K fit, $(kv got1) beside it: its pages did not all come back"

# Huge pages: where the kernel has THP for madvised memory.
thp=/sys/kernel/mm/transparent_hugepage/enabled
if [ -r $thp ] && ! grep -q '\[never\]' $thp; then
	# (RTALLOC_MLOCK=pool: under MCL_FUTURE the probe's own mapping would be
	# populated with 4 KiB pages by mmap, before its madvise)
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_MLOCK=pool -- huge
	check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_HUGEPAGES default: exit $RC or a message"
	if [ "$(kv ctl_kb)" -gt 0 ] 2>/dev/null; then
		check '[ "$(kv thp_kb)" -ge 2048 ]' \
			"RTALLOC_HUGEPAGES default: $(kv thp_kb) kB of the pool in huge pages ($(cat $thp))"
	else
		note "the kernel gives no huge page now (memory fragmented?): huge page check skipped"
	fi
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_HUGEPAGES=0 -- huge
	check '[ $RC -eq 0 ] && [ -z "$ERR" ] && [ "$(kv thp_kb)" = 0 ]' \
		"RTALLOC_HUGEPAGES=0: $(kv thp_kb) kB of the pool in huge pages"
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_HUGEPAGES=0 RTALLOC_MLOCK=0 -- huge
	check '[ $RC -eq 0 ] && [ "$(kv thp_kb)" = 0 ]' "RTALLOC_HUGEPAGES=0 RTALLOC_MLOCK=0: $(kv thp_kb) kB in huge pages"
else
	note "no transparent huge pages here ($thp): huge page checks skipped"
	probe RTALLOC_POOL_SIZE=$POOL RTALLOC_HUGEPAGES=1 -- huge
	check '[ $RC -eq 0 ] && [ -z "$ERR" ]' "RTALLOC_HUGEPAGES=1 without THP: exit $RC or a message"
fi

finish
