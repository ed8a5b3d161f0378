/* SPDX-License-Identifier: MIT */
/*
 * heap_debug.c - the hooks the heap tests call (heap.h, "Tests:"): a
 * heap's checker under its lock, a process that dies holding a heap's or
 * the registry's lock, and the counts of what heap functions asked of the
 * kernel.  Not part of the production library: built only into the core
 * static library the tests link (meson.build), never into librtalloc.so.
 * The counts themselves (rt_heap_counts) are kept by the files that make
 * the calls.
 */
#include "heap_int.h"

const char *rt_heap_check(rtalloc_heap_t *h)
{
	if (!rt_heap_valid(h))
		return "not a heap";
	if (rt_heap_lock(h) != 0)
		return "heap lock unrecoverable";
	const char *why = rt_heap_blocks_check(h);
	rt_heap_unlock(h);
	return why;
}

void rt_heap_debug_hold(rtalloc_heap_t *h, int scramble, int notify_fd)
{
	if (!rt_heap_valid(h) || rt_heap_lock(h) != 0)
		rt_os_exit_now(3);
	if (scramble) /* a page taken from the buddy, not yet given a class */
		rt_heap_pages_alloc(h, 0);
	if (rt_os_write_all(notify_fd, "x", 1) != 0)
		rt_os_exit_now(4);
	for (;;) /* bound: none, on purpose: this process waits to be killed */
		rt_os_sleep_ns(1000000000L);
}

unsigned rt_heap_recoveries(rtalloc_heap_t *h)
{
	return rt_heap_valid(h) ? h->hdr->recoveries : 0;
}

size_t rt_heap_header_bytes(void)
{
	return sizeof(struct rt_heap_hdr);
}

void rt_heap_debug_syscalls(unsigned *wakes, unsigned *probes)
{
	*wakes = rt_heap_counts.wakes;
	*probes = rt_heap_counts.probes;
}

void rt_heap_debug_prio_reads(unsigned *reads, unsigned *under_lock)
{
	*reads = rt_heap_counts.prio_reads;
	*under_lock = rt_heap_counts.prio_locked;
}

void rt_heap_debug_hold_registry(int notify_fd, const int *release)
{
	rt_heap_registry_init();
	rt_mutex_lock(&rt_heap_reg_lock);
	if (rt_os_write_all(notify_fd, "r", 1) != 0)
		rt_os_abort();
	while (!__atomic_load_n(release, __ATOMIC_ACQUIRE)) /* bound: none (a test's holder) */
		rt_os_sleep_ns(1000000);
	rt_mutex_unlock(&rt_heap_reg_lock);
}
