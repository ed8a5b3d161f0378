/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c - a consistent copy of a statistics region and of the figures of
 * its shared heaps (rtalloc-stat).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rs.h"

/* ==== snapshots ========================================================================== */

struct snap snap_a, snap_b;
bool snap_shared_heaps = true;

/* Counters come from another process: sums saturate, never wrap. */
void add_counters(struct rt_tcounters *sum, const struct rt_tcounters *c)
{
#define RS_X_ADD(name, text) sum->name = sat_add(sum->name, c->name);
	RT_TCOUNTERS(RS_X_ADD)
#undef RS_X_ADD
}

/* A shared heap's figures as of the last operation of any process bound to
 * it, from the record the heap's object carries (stats.h, RT_HEAP_FIG_OFFSET);
 * the process's own record (as of its own last operation) when the object
 * is gone, too short or not readable.  0, or -1 when the object was
 * truncated while we read it (SIGBUS), with the message in s->heap_error. */
static int shared_heap_now(struct snap *s, struct rt_stats_heap *h)
{
	char name[sizeof(h->name) + 1], path[sizeof(RT_HEAP_SHM_PREFIX) + sizeof(name)];
	memcpy(name, h->name, sizeof(h->name));
	name[sizeof(h->name)] = '\0';
	snprintf(path, sizeof(path), "%s%s", RT_HEAP_SHM_PREFIX, name);
	int fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct stat st;
	size_t len = RT_HEAP_FIG_OFFSET + sizeof(struct rt_stats_heap);
	void *m = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= len
			  ? mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)
			  : MAP_FAILED;
	close(fd);
	if (m == MAP_FAILED)
		return 0;
	const struct rt_stats_heap *src = (const void *)((const char *)m + RT_HEAP_FIG_OFFSET);
	struct rt_stats_heap now = {0};
	BUS_GUARD(goto truncated);
	int rc = rt_seq_read(&src->seq, &now, src, sizeof(now));
	BUS_UNGUARD();
	if (rc == 0 && (now.flags & RT_STATS_HEAP_USED) && memcmp(now.name, h->name, sizeof(h->name)) == 0)
		*h = now;
	munmap(m, len);
	return 0;
truncated:
	munmap(m, len);
	snprintf(s->heap_error, sizeof(s->heap_error), "/dev/shm%s", esc(path));
	return -1;
}

/* Live slots plus what exited threads left, inside one stable exit_seq window (the
 * library's own reader does the same), so no thread is counted twice or missed. */
static void read_threads(const struct rt_stats_region *m, struct snap *s)
{
	for (int tries = 0; tries < 50; tries++) { /* bound: 50 attempts, ~2.5 ms of pauses */
		if (tries)
			pause_us(50);
		uint32_t e1 = __atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE);
		if ((e1 & 1) && tries < 49)
			continue; /* a thread is leaving; the last attempt reads anyway (marked torn) */
		struct {
			struct rt_tcounters exited;
			uint64_t threads_exited;
		} ex;
		_Static_assert(offsetof(struct rt_stats_region, threads_exited) ==
				       offsetof(struct rt_stats_region, exited) + sizeof(struct rt_tcounters),
			       "exited totals and their count are adjacent");
		rt_seq_read(&m->exit_seq, &ex, &m->exited, sizeof(ex));
		s->exited = ex.exited;
		s->threads_exited = ex.threads_exited;
		s->nlive = 0;
		bool torn = false;
		for (unsigned i = 0; i < RT_STATS_SLOTS; i++) { /* bound: the slots */
			struct rt_stats_slot slot = {0};
			if (rt_seq_read(&m->slots[i].seq, &slot, &m->slots[i], sizeof(slot)) != 0)
				torn = true;
			if (slot.tid == 0)
				continue;
			struct tslot *t = &s->live[s->nlive++];
			t->tid = slot.tid;
			t->in_rt = slot.in_rt;
			t->c = slot.c;
		}
		s->torn = torn || (e1 & 1);
		if (__atomic_load_n(&m->exit_seq, __ATOMIC_ACQUIRE) == e1 && !(e1 & 1))
			return;
		s->torn = true;
	}
}

/* A consistent copy of the region, or an error: RG_IO, the region truncated under
 * us; RG_HEAP_IO, a shared heap's object truncated under us (s->heap_error). */
enum region_status snap_read(const struct region *r, struct snap *s)
{
	const struct rt_stats_region *m = r->map;
	memset(s, 0, sizeof(*s));
	BUS_GUARD(return RG_IO);
	s->taken_ns = now_ns(CLOCK_MONOTONIC);
	s->flags = __atomic_load_n(&m->flags, __ATOMIC_RELAXED);
	s->narenas = m->narenas;
	if (s->narenas > RT_STATS_ARENAS)
		s->narenas = RT_STATS_ARENAS;
	s->init_ns = m->init_ns;
	s->init_duration_ns = m->init_duration_ns;
	s->init_minflt = m->init_minflt;
	s->init_majflt = m->init_majflt;
	s->pool_size = m->pool_size;
	s->pool_max = m->pool_max;
	s->threads_unslotted = __atomic_load_n(&m->threads_unslotted, __ATOMIC_RELAXED);
	s->last_failure_ns = __atomic_load_n(&m->last_failure_ns, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < s->narenas; i++) {
		struct rt_stats_arena *a = &s->arenas[i];
		if (rt_seq_read(&m->arenas[i].seq, a, &m->arenas[i], sizeof(*a)) != 0)
			s->torn = true;
		s->pool_bytes = sat_add(s->pool_bytes, a->pool_bytes);
		s->max_bytes = sat_add(s->max_bytes, a->max_bytes);
		s->free_bytes = sat_add(s->free_bytes, a->free_bytes);
		s->min_free_bytes = sat_add(s->min_free_bytes, a->min_free_bytes);
		s->grows = sat_add(s->grows, a->grows);
		s->arena_failed = sat_add(s->arena_failed, a->failed);
		s->huge_allocs = sat_add(s->huge_allocs, a->huge_allocs);
		s->huge_frees = sat_add(s->huge_frees, a->huge_frees);
		if (a->last_grow_ns > s->last_grow_ns)
			s->last_grow_ns = a->last_grow_ns;
		for (unsigned c = 0; c < RT_STATS_CLASSES; c++) /* bound: the classes */
			s->class_units[c] = sat_add(s->class_units[c], a->class_units[c]);
	}
	read_threads(m, s);
	s->have_heaps = __atomic_load_n(&m->size, __ATOMIC_RELAXED) >= REGION_V2_LEN && r->len >= REGION_V2_LEN;
	for (unsigned i = 0; s->have_heaps && i < RT_STATS_HEAPS; i++) {
		struct rt_stats_heap *hp = &s->heaps[s->nheaps];
		if (rt_seq_read(&m->heaps[i].seq, hp, &m->heaps[i], sizeof(*hp)) != 0)
			s->torn = true;
		if (hp->flags & RT_STATS_HEAP_USED)
			s->nheaps++;
	}
	s->have_faults = __atomic_load_n(&m->size, __ATOMIC_RELAXED) >= REGION_LEN && r->len >= REGION_LEN;
	if (s->have_faults) /* whole words, no seqlock (stats.h) */
		for (size_t i = 0; i < sizeof(s->faults) / 8; i++) /* bound: the part's words */
			((uint64_t *)&s->faults)[i] = __atomic_load_n((const uint64_t *)&m->faults + i,
								      __ATOMIC_RELAXED);
	BUS_UNGUARD();
	/* Each object is read under a guard of its own (guards do not nest). */
	for (unsigned i = 0; snap_shared_heaps && i < s->nheaps; i++) /* bound: RT_STATS_HEAPS */
		if ((s->heaps[i].flags & RT_STATS_HEAP_SHARED) && shared_heap_now(s, &s->heaps[i]) != 0)
			return RG_HEAP_IO;
	s->total = s->exited;
	for (unsigned i = 0; i < s->nlive; i++)
		add_counters(&s->total, &s->live[i].c);
	return RG_OK;
}

uint64_t in_use(const struct snap *s)
{
	return s->pool_bytes > s->free_bytes ? s->pool_bytes - s->free_bytes : 0;
}

uint64_t high_water(const struct snap *s)
{
	return s->pool_bytes > s->min_free_bytes ? s->pool_bytes - s->min_free_bytes : 0;
}

const struct tslot *slot_of(const struct snap *s, pid_t tid)
{
	for (unsigned i = 0; i < s->nlive; i++)
		if (s->live[i].tid == tid)
			return &s->live[i];
	return NULL;
}


void snap_error(pid_t pid, const char *comm, const struct region *r, const struct snap *s,
		enum region_status st)
{
	if (st == RG_HEAP_IO)
		say("process %d (%s): shared heap object %s cannot be read (truncated while it was read)",
		    (int)pid, esc(comm), s->heap_error);
	else
		say("process %d (%s): statistics file %s %s", (int)pid, esc(comm), esc(r->path), region_why(st));
}
