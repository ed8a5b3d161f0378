/* SPDX-License-Identifier: MIT */
/*
 * stats.c - figures for readers: sums of counters that only grow (4.4BSD's
 * kmemstats).  Readers take each arena's lock in turn; writers never wait for
 * a reader longer than one arena's summing.
 */
#include <string.h>

#include "rt.h"
#include "stats.h"

void rt_stats_totals(struct rt_totals *t)
{
	memset(t, 0, sizeof(*t));
	if (!rt_ready())
		return;
	for (unsigned i = 0; i < rt_g.narenas; i++) { /* bound: RT_MAX_ARENAS */
		struct rt_arena *a = &rt_g.arenas[i];
		rt_arena_lock(a);
		t->pool_bytes += (size_t)(a->buddy.committed - a->buddy.skew) << RT_PAGE_SHIFT;
		t->free_bytes += a->buddy.free_pages << RT_PAGE_SHIFT;
		t->min_free_bytes += a->buddy.min_free_pages << RT_PAGE_SHIFT;
		t->grows += a->grows;
		t->huge_allocs += a->huge_allocs;
		rt_arena_unlock(a);
	}
	t->foreign_frees = rt_tcache_foreign_frees();
}
