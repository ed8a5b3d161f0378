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
	BUS_GUARD(goto truncated);
	rt_sr_heap_object(src, h);
	BUS_UNGUARD();
	munmap(m, len);
	return 0;
truncated:
	munmap(m, len);
	snprintf(s->heap_error, sizeof(s->heap_error), "/dev/shm%s", esc(path));
	return -1;
}

/* rt_sr_read's source of live threads: the region's slots, as each thread
 * last published it; the live ones are kept in s->live, in slot order. */
struct slots_ctx {
	const struct rt_stats_region *m;
	struct snap *s;
};

static unsigned from_slot(void *ctx, unsigned i, unsigned nth, struct rt_tcounters *c)
{
	struct slots_ctx *x = ctx;
	struct rt_stats_slot slot;
	unsigned got = rt_sr_slot(x->m, i, &slot);
	if ((got & RT_SR_LIVE) && nth < RT_STATS_SLOTS) {
		struct tslot *t = &x->s->live[nth];
		t->tid = slot.tid;
		t->in_rt = slot.in_rt;
		t->c = slot.c;
	}
	*c = slot.c;
	return got;
}

static void pause_50us(void) { pause_us(50); }

/* A consistent copy of the region, or an error: RG_IO, the region truncated under
 * us; RG_HEAP_IO, a shared heap's object truncated under us (s->heap_error). */
enum region_status snap_read(const struct region *r, struct snap *s)
{
	const struct rt_stats_region *m = r->map;
	memset(s, 0, sizeof(*s));
	struct slots_ctx ctx = {m, s};
	/* bound: 50 passes over the slots, ~2.5 ms of pauses while threads exit */
	const struct rt_sr_source src = {from_slot, pause_50us, 50, &ctx};
	BUS_GUARD(return RG_IO);
	s->taken_ns = now_ns(CLOCK_MONOTONIC);
	rt_sr_read(m, &src, &s->f);
	s->have_heaps = rt_sr_has_heaps(m, r->len);
	if (s->have_heaps)
		s->nheaps = rt_sr_heaps(m, s->heaps, &s->f.torn);
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
	return RG_OK;
}

const struct tslot *slot_of(const struct snap *s, pid_t tid)
{
	for (unsigned i = 0; i < s->f.nlive; i++) /* bound: RT_STATS_SLOTS */
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
