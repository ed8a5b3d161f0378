/* SPDX-License-Identifier: MIT */
/*
 * statread.h - the one reader of a statistics region (stats.h): compiled
 * into librtalloc, where rtalloc_stats() reads the process's own region, and
 * linked into rtalloc-stat, which reads another process's.  It checks the
 * header, copies the arena records and sums them, reads the threads' totals
 * inside one stable exit_seq window, the heap records, and names the size
 * classes.  Its callers only print (FreeBSD's libmemstat beside UMA).
 *
 * Everything here reads memory another process may write while we read, or
 * have forged: every index it uses is a constant or clamped to one, every
 * loop bound is a constant, sums saturate, and a header is refused before
 * anything else is read.  It needs nothing of the allocator (no rt.h) and
 * nothing of the OS: the caller maps the region and says how to wait.
 * No symbol of it is exported from librtalloc.so (hidden, rt_sr_*).
 */
#ifndef RT_STATREAD_H
#define RT_STATREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#ifndef RT_HIDDEN
#define RT_HIDDEN __attribute__((visibility("hidden")))
#endif

/* The header check (rt_sr_check). */
enum rt_sr_status {
	RT_SR_OK,
	RT_SR_INIT, /* magic not there yet: the process is initialising */
	RT_SR_BAD,  /* wrong magic, version, size, pid, slot or arena count */
};

/* What one read of a region gives.  Sums over arenas and threads saturate. */
struct rt_sr_figures {
	uint32_t flags;   /* RT_STATS_F_* */
	uint32_t narenas; /* the header's, at most RT_STATS_ARENAS */
	uint64_t init_ns, init_duration_ns, init_minflt, init_majflt, pool_size, pool_max;
	uint64_t threads_exited, threads_unslotted, last_failure_ns;
	struct rt_tcounters exited; /* left by exited threads */
	struct rt_tcounters total;  /* exited plus every live thread counted (maxima: the largest) */
	uint32_t nlive;             /* live threads counted */
	bool torn; /* a seqlock read gave up: some figures may be off by one update */
	struct rt_stats_arena arenas[RT_STATS_ARENAS];
	/* over the arenas */
	uint64_t pool_bytes, max_bytes, free_bytes, min_free_bytes, grows, last_grow_ns;
	uint64_t arena_failed, huge_allocs, huge_frees, class_units[RT_STATS_CLASSES];
};

/* Where live threads' counters come from: the region's slots (rtalloc-stat:
 * rt_sr_slot), or the threads' caches themselves (rtalloc_stats, stats.c).
 * thread() gives the counters of slot i's thread in *c and returns
 * RT_SR_LIVE if there is one, | RT_SR_TORN if they may be torn; nth is how
 * many live threads this pass has counted before it (where to keep its
 * details).  A pass over the slots is repeated, after pause(), while a
 * thread exits meanwhile (exit_seq moved), at most passes times; the last
 * pass counts whatever it saw and the figures are marked torn. */
enum { RT_SR_LIVE = 1, RT_SR_TORN = 2 };
struct rt_sr_source {
	unsigned (*thread)(void *ctx, unsigned i, unsigned nth, struct rt_tcounters *c);
	void (*pause)(void);
	unsigned passes; /* 1 .. RT_SR_PASSES_MAX */
	void *ctx;
};
#define RT_SR_PASSES_MAX 1000

/* Is the header at m (mapped bytes of it) a complete region of this layout,
 * written by process pid? */
RT_HIDDEN enum rt_sr_status rt_sr_check(const struct rt_stats_region *m, size_t mapped, int32_t pid);
/* The figures of a region rt_sr_check accepted. */
RT_HIDDEN void rt_sr_read(const struct rt_stats_region *m, const struct rt_sr_source *src,
			  struct rt_sr_figures *f);
/* Slot i of the region as its thread last published it; returns RT_SR_LIVE
 * (a thread holds it) | RT_SR_TORN (the thread kept writing). */
RT_HIDDEN unsigned rt_sr_slot(const struct rt_stats_region *m, unsigned i, struct rt_stats_slot *out);
/* Does the region (mapped bytes of it) carry heap records? */
RT_HIDDEN bool rt_sr_has_heaps(const struct rt_stats_region *m, size_t mapped);
/* The heap records in use, in registry order, into out; their number.
 * *torn is set when a record kept changing. */
RT_HIDDEN unsigned rt_sr_heaps(const struct rt_stats_region *m, struct rt_stats_heap out[RT_STATS_HEAPS],
			       bool *torn);
/* A shared heap's own record (RT_HEAP_FIG_OFFSET in its object) replaces
 * *h when it is complete, in use and names the same heap. */
RT_HIDDEN void rt_sr_heap_object(const struct rt_stats_heap *rec, struct rt_stats_heap *h);
/* "16" .. "32K", "huge"; "-" for class 0 and beyond RT_STATS_CLASSES. */
RT_HIDDEN const char *rt_sr_class_name(unsigned c);

static inline uint64_t rt_sr_sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static inline uint64_t rt_sr_sub0(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

/* Counters come from another process: sums saturate, never wrap; maxima
 * (RT_TMAXIMA) keep the largest. */
static inline void rt_sr_add_counters(struct rt_tcounters *sum, const struct rt_tcounters *c)
{
#define RT_SR_X_ADD(name, key, text) sum->name = rt_sr_sat_add(sum->name, c->name);
#define RT_SR_X_MAX(name, key, text) sum->name = c->name > sum->name ? c->name : sum->name;
	RT_TCOUNTERS(RT_SR_X_ADD)
	RT_TMAXIMA(RT_SR_X_MAX)
#undef RT_SR_X_MAX
#undef RT_SR_X_ADD
}

static inline uint64_t rt_sr_in_use(const struct rt_sr_figures *f)
{
	return rt_sr_sub0(f->pool_bytes, f->free_bytes);
}

static inline uint64_t rt_sr_high_water(const struct rt_sr_figures *f)
{
	return rt_sr_sub0(f->pool_bytes, f->min_free_bytes);
}

#endif /* RT_STATREAD_H */
