/* SPDX-License-Identifier: MIT */
/* stats.h - what stats.c sums for readers (mallinfo2, rtalloc_stats). */
#ifndef RT_STATS_H
#define RT_STATS_H

#include <stddef.h>
#include <stdint.h>

struct rt_totals {
	size_t pool_bytes;     /* committed pool over all arenas */
	size_t free_bytes;     /* in the buddy allocators (not counting partial pages, caches) */
	size_t min_free_bytes; /* lowest free ever, summed over arenas */
	uint64_t grows, huge_allocs, foreign_frees;
};

__attribute__((visibility("hidden"))) void rt_stats_totals(struct rt_totals *t);

#endif /* RT_STATS_H */
