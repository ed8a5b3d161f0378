/* SPDX-License-Identifier: MIT */
/*
 * rtb_memory.c - memory cost of one workload: the peak of the bytes the
 * program had asked for and not yet freed, against the peak resident set of
 * the process (VmHWM).  Run in a process of its own, since VmHWM is a
 * per-process high-water mark.
 *
 * The workload is the mixed-size live set of the latency test, with more
 * slots.  VmRSS at main() is also reported: for contenders that pre-fault a
 * pool, most of the high-water mark is there before the first request, and
 * that is the price of having no page fault later.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mallopt, RUSAGE_THREAD, MAP_POPULATE, ... */
#endif
#include "rtbench.h"

#include <stdlib.h>

int rtb_memory(const struct rtb_opts *o)
{
	rtb_rng rng = {o->seed + 5};
	struct rtb_block *live = rtb_map(o->mem_slots * sizeof *live);
	size_t live_bytes = 0, peak = 0;
	uint64_t fails = 0;

	rtb_thread_prepare();
	for (size_t i = 0; i < o->mem_steps; i++) {
		struct rtb_block *b = &live[rtb_below(&rng, (uint32_t)o->mem_slots)];
		if (!b->p) {
			size_t n = rtb_mixed_size(&rng);
			b->p = malloc(n);
			if (!b->p) {
				fails++;
				continue;
			}
			b->n = n;
			rtb_fill(b->p, n);
			live_bytes += n;
		} else if (rtb_below(&rng, 5) == 0 && !o->no_realloc) {
			size_t n = rtb_mixed_size(&rng);
			unsigned char *p = realloc(b->p, n);
			if (!p) {
				fails++;
				continue;
			}
			live_bytes = live_bytes - b->n + n;
			b->p = p;
			b->n = n;
			rtb_fill(p, n);
		} else {
			free(b->p);
			b->p = NULL;
			live_bytes -= b->n;
		}
		if (live_bytes > peak)
			peak = live_bytes;
	}

	long hwm = rtb_proc_status_kib("VmHWM");
	long rss_end = rtb_proc_status_kib("VmRSS");
	for (size_t s = 0; s < o->mem_slots; s++)
		free(live[s].p);
	rtb_unmap(live, o->mem_slots * sizeof *live);

	rtb_emit("mem", "peak_requested_kib", (double)peak / 1024.0);
	rtb_emit("mem", "rss_at_main_kib", (double)o->rss_at_main_kib);
	rtb_emit("mem", "rss_end_kib", (double)rss_end);
	rtb_emit("mem", "hwm_kib", (double)hwm);
	rtb_emit("mem", "fails", (double)fails);
	return 0;
}
