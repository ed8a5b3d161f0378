/* SPDX-License-Identifier: MIT */
/*
 * statread.c - the one reader of a statistics region (statread.h).
 *
 * How statistics flow, in one direction:
 *   counting   a thread counts in its own cache only: the fast paths in the
 *              bin of their class (fastpath.h), the slow paths and real-time
 *              sections in rt_tcache.st (tcache.c); an arena counts in its
 *              record under its lock (arena.c, pool.c).
 *   folding    once, in tcache.c: at a refill or flush the thread folds its
 *              bins into rt_tcache.fold (constant cost) and hands st + fold
 *              to stats.c, which writes the slot (rt_stats_publish_thread);
 *              an arena's lock holder writes its record (rt_stats_publish_arena).
 *   exporting  stats.c alone writes the region (stats.h), each record under
 *              its seqlock; an exiting thread moves its totals to exited.
 *   reading    here, alone: rtalloc_stats() (stats.c; live threads' exact
 *              counts from their caches, through the thread registry) and
 *              rtalloc-stat (another process's region: the slots as last
 *              published) both call rt_sr_read, which sums arenas and
 *              threads and keeps the exit_seq window; they only print.
 * Nothing read comes back into a counter.
 */
#include <string.h>

#include "statread.h"

static const char *const class_names[RT_STATS_CLASSES] = {
	"-", "16", "32", "64", "128", "256", "512", "1K", "2K", "4K", "8K", "16K", "32K", "huge",
};

const char *rt_sr_class_name(unsigned c) { return c < RT_STATS_CLASSES ? class_names[c] : "-"; }

#define REGION_LEN (sizeof(struct rt_stats_region))
#define REGION_V1_LEN RT_STATS_REGION_V1_SIZE

enum rt_sr_status rt_sr_check(const struct rt_stats_region *m, size_t mapped, int32_t pid)
{
	if (mapped < REGION_V1_LEN)
		return RT_SR_BAD;
	uint64_t magic = __atomic_load_n(&m->magic, __ATOMIC_ACQUIRE);
	if (magic == 0)
		return RT_SR_INIT;
	uint32_t size = __atomic_load_n(&m->size, __ATOMIC_RELAXED);
	uint32_t narenas = __atomic_load_n(&m->narenas, __ATOMIC_RELAXED);
	if (magic != RT_STATS_MAGIC || __atomic_load_n(&m->version, __ATOMIC_RELAXED) != RT_STATS_VERSION ||
	    (size != REGION_LEN && size != REGION_V1_LEN) || size > mapped ||
	    __atomic_load_n(&m->pid, __ATOMIC_RELAXED) != pid ||
	    __atomic_load_n(&m->nslots, __ATOMIC_RELAXED) != RT_STATS_SLOTS || narenas < 1 ||
	    narenas > RT_STATS_ARENAS)
		return RT_SR_BAD;
	return RT_SR_OK;
}

unsigned rt_sr_slot(const struct rt_stats_region *m, unsigned i, struct rt_stats_slot *out)
{
	memset(out, 0, sizeof(*out));
	if (i >= RT_STATS_SLOTS)
		return 0;
	unsigned got = rt_seq_read(&m->slots[i].seq, out, &m->slots[i], sizeof(*out)) != 0 ? RT_SR_TORN : 0;
	return out->tid != 0 ? got | RT_SR_LIVE : got;
}

/* The arena records, clamped to the layout's count whatever the header says
 * now (another process may rewrite it after rt_sr_check), and their sums. */
static void read_arenas(const struct rt_stats_region *m, struct rt_sr_figures *f)
{
	f->narenas = __atomic_load_n(&m->narenas, __ATOMIC_RELAXED);
	if (f->narenas > RT_STATS_ARENAS)
		f->narenas = RT_STATS_ARENAS;
	for (unsigned i = 0; i < f->narenas; i++) { /* bound: RT_STATS_ARENAS */
		struct rt_stats_arena *a = &f->arenas[i];
		if (rt_seq_read(&m->arenas[i].seq, a, &m->arenas[i], sizeof(*a)) != 0)
			f->torn = true;
		f->pool_bytes = rt_sr_sat_add(f->pool_bytes, a->pool_bytes);
		f->max_bytes = rt_sr_sat_add(f->max_bytes, a->max_bytes);
		f->free_bytes = rt_sr_sat_add(f->free_bytes, a->free_bytes);
		f->min_free_bytes = rt_sr_sat_add(f->min_free_bytes, a->min_free_bytes);
		f->grows = rt_sr_sat_add(f->grows, a->grows);
		f->arena_failed = rt_sr_sat_add(f->arena_failed, a->failed);
		f->huge_allocs = rt_sr_sat_add(f->huge_allocs, a->huge_allocs);
		f->huge_frees = rt_sr_sat_add(f->huge_frees, a->huge_frees);
		if (a->last_grow_ns > f->last_grow_ns)
			f->last_grow_ns = a->last_grow_ns;
		for (unsigned c = 0; c < RT_STATS_CLASSES; c++) /* bound: the classes */
			f->class_units[c] = rt_sr_sat_add(f->class_units[c], a->class_units[c]);
	}
}

/* Live threads plus what exited threads left, inside one stable exit_seq
 * window: an exiting thread moves its totals to exited and leaves its slot
 * (and the registry) inside one window of its own, so a pass that sees
 * exit_seq even and unchanged from start to end counts every thread once.
 * While the window moves, the pass is repeated (bounded); the last one
 * counts what it saw and marks the figures torn. */
static void read_threads(const struct rt_stats_region *m, const struct rt_sr_source *src,
			 struct rt_sr_figures *f)
{
	unsigned passes = src->passes < 1 ? 1 : src->passes > RT_SR_PASSES_MAX ? RT_SR_PASSES_MAX : src->passes;
	bool torn = false;
	for (unsigned tries = 0; tries < passes; tries++) { /* bound: RT_SR_PASSES_MAX passes */
		if (tries && src->pause)
			src->pause();
		uint32_t e1 = __atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE);
		bool last = tries + 1 == passes;
		if ((e1 & 1) && !last)
			continue; /* a thread is leaving */
		struct {
			struct rt_tcounters exited;
			uint64_t threads_exited;
		} ex = {0};
		_Static_assert(offsetof(struct rt_stats_region, threads_exited) ==
				       offsetof(struct rt_stats_region, exited) + sizeof(struct rt_tcounters),
			       "exited totals and their count are adjacent");
		rt_seq_read(&m->exit_seq, &ex, &m->exited, sizeof(ex));
		f->exited = ex.exited;
		f->threads_exited = ex.threads_exited;
		f->total = ex.exited;
		f->nlive = 0;
		torn = e1 & 1;
		for (unsigned i = 0; i < RT_STATS_SLOTS; i++) { /* bound: RT_STATS_SLOTS */
			struct rt_tcounters c;
			unsigned got = src->thread(src->ctx, i, f->nlive, &c);
			if (got & RT_SR_TORN)
				torn = true;
			if (!(got & RT_SR_LIVE))
				continue;
			f->nlive++;
			rt_sr_add_counters(&f->total, &c);
		}
		if (!(e1 & 1) && __atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE) == e1)
			break;
		torn = true;
	}
	f->torn |= torn;
}

void rt_sr_read(const struct rt_stats_region *m, const struct rt_sr_source *src, struct rt_sr_figures *f)
{
	memset(f, 0, sizeof(*f));
	f->flags = __atomic_load_n(&m->flags, __ATOMIC_RELAXED);
	f->init_ns = __atomic_load_n(&m->init_ns, __ATOMIC_RELAXED);
	f->init_duration_ns = __atomic_load_n(&m->init_duration_ns, __ATOMIC_RELAXED);
	/* the fault baseline moves at each rtalloc_init(): read once */
	f->init_minflt = __atomic_load_n(&m->init_minflt, __ATOMIC_RELAXED);
	f->init_majflt = __atomic_load_n(&m->init_majflt, __ATOMIC_RELAXED);
	f->pool_size = __atomic_load_n(&m->pool_size, __ATOMIC_RELAXED);
	f->pool_max = __atomic_load_n(&m->pool_max, __ATOMIC_RELAXED);
	f->threads_unslotted = __atomic_load_n(&m->threads_unslotted, __ATOMIC_RELAXED);
	f->last_failure_ns = __atomic_load_n(&m->last_failure_ns, __ATOMIC_RELAXED);
	read_arenas(m, f);
	read_threads(m, src, f);
}

bool rt_sr_has_heaps(const struct rt_stats_region *m, size_t mapped)
{
	return mapped >= REGION_LEN && __atomic_load_n(&m->size, __ATOMIC_RELAXED) >= REGION_LEN;
}

unsigned rt_sr_heaps(const struct rt_stats_region *m, struct rt_stats_heap out[RT_STATS_HEAPS], bool *torn)
{
	unsigned n = 0;
	for (unsigned i = 0; i < RT_STATS_HEAPS; i++) { /* bound: RT_STATS_HEAPS */
		struct rt_stats_heap *hp = &out[n];
		memset(hp, 0, sizeof(*hp));
		if (rt_seq_read(&m->heaps[i].seq, hp, &m->heaps[i], sizeof(*hp)) != 0)
			*torn = true;
		if (hp->flags & RT_STATS_HEAP_USED)
			n++;
	}
	return n;
}

void rt_sr_heap_object(const struct rt_stats_heap *rec, struct rt_stats_heap *h)
{
	struct rt_stats_heap now = {0};
	if (rt_seq_read(&rec->seq, &now, rec, sizeof(now)) == 0 && (now.flags & RT_STATS_HEAP_USED) &&
	    memcmp(now.name, h->name, sizeof(h->name)) == 0)
		*h = now;
}
