/* SPDX-License-Identifier: MIT */
/*
 * heap.c - heaps: pools apart from the process's pool (rtalloc_heap_*).
 * This file: the public API (create, create_in, destroy, alloc, free,
 * inquire, offsets, rtalloc_thread_use_heap), the registry of this
 * process's heaps, fork, a heap's figures for rtalloc-stat, its growth, and
 * the hooks through which the core's free/realloc reach a heap's block.
 *
 * The heap files
 *   heap.c        the API, the registry, fork, figures, growth (this file)
 *   heap_block.c  the blocks inside a heap: its layout (header, page
 *                 descriptors, data), pages from the regions' buddies,
 *                 small blocks carved from pages of their class, the
 *                 lock-held alloc/free and block validation, offsets; the
 *                 heap's robust lock, the recovery after a holder that
 *                 died, and the checker (the layout is described there)
 *   heap_wait.c   rtalloc_heap_alloc_timed: waiter records, the hand-over
 *                 of a freed block to the first in line, futex waits/wakes
 *   heap_shm.c    named shared heaps: the shm object (create, bind, unbind,
 *                 unlink), the checks of an object another process made,
 *                 stale names, the processes a heap records
 *   heap_debug.c  the hooks of the tests (heap.h's "Tests:"), in the
 *                 tests' core library only
 *   heap_int.h    what they share: the header's and the handle's layout,
 *                 the functions each file offers the others
 * Calls between them: heap.c -> heap_block.c, heap_wait.c, heap_shm.c;
 * heap_shm.c, heap_wait.c and heap_debug.c -> heap_block.c and heap.c (the
 * registry, the figures, and for alloc_timed rt_heap_alloc_or_grow);
 * heap_block.c -> heap_wait.c only to hand a freed block to a waiter
 * (rt_heap_serve_waiters) and to settle waiter records in recovery.
 *
 * A shared heap's memory is written by other processes, which need not be
 * trusted: bind checks every field of the header against the object and
 * the layout rtalloc_heap_create makes (hdr_check), and refuses objects of
 * another owner (owner_ok); afterwards every index read from the heap's
 * memory is checked where it is used (heap_block.c: idx_ok, page_addr,
 * bud_in, rt_heap_block_live, small_alloc; buddy.c's list links), and what
 * is impossible aborts with a message instead of reaching outside the
 * mapping.  What no
 * check can stop: a peer that may write the object can corrupt the blocks
 * and lists (within the mapping), hold the lock for ever, or rewrite the
 * lock's own words while another process holds it (glibc keeps a robust
 * mutex's list links in the mutex).
 *
 * Bounds: alloc = one bit scan + at most RT_ORDER_MAX splits per region
 * tried (at most RTALLOC_HEAP_REGIONS); free = at most RT_ORDER_MAX merges,
 * plus, when threads wait, at most RTALLOC_HEAP_WAITERS rounds each
 * choosing among RTALLOC_HEAP_WAITERS records (a round drops the record of
 * a dead waiter, or ends), and at most one block handed over.  A free that
 * hands a block to a waiter makes one system call (FUTEX_WAKE); the waiter,
 * once it has the block, hands the next one (the baton), so a free that
 * makes room for several waiters still wakes one.  Whether a waiter lives
 * is a load of its record's robust lock, not a system call.  Nothing else
 * on the alloc/free paths calls the kernel, except a heap's growth
 * (RTALLOC_HEAP_GROW).  rtalloc_heap_alloc_timed reads the caller's
 * priority (pthread_getschedparam) before it takes the lock.  Recovery
 * after a process died holding the lock walks every page
 * (O(pages * RT_ORDER_MAX)): not real-time, and rare.
 *
 * Synchronization table
 *   what                        written by                    read by
 *   header, descriptors, data   the holder of hdr->lock       the holder of hdr->lock
 *     hdr->lock: PTHREAD_PRIO_INHERIT, ROBUST, and PROCESS_SHARED for
 *     shared heaps.  hdr->dirty is 1 while a holder works: a holder that
 *     dies leaves it set, and the next locker (EOWNERDEAD) rebuilds the
 *     lists and counters from the descriptors (recover(), heap_block.c),
 *     then marks the mutex consistent.
 *   shared header's buddy lists the holder, from its own bud  the next holder, into its bud
 *     (heap_block.c)            (bud_out, before the unlock)  (bud_in, checked)
 *   waiter record futex word    a freer under the lock        its waiter, in FUTEX_WAIT
 *     (heap_wait.c)             (release store, then wake)
 *   waiter record `alive`       its waiter (locked while the  freers, recovery: the holder
 *                               record is in use); the kernel word (load), under hdr->lock
 *                               when that thread dies
 *   registry slot (reg[i])      create/bind/destroy under      heap_of(): lock-free; fields
 *                               rt_heap_reg_lock; `active`     before `active` (acquire)
 *                               published last (release),
 *                               cleared first
 *   slot `users`                alloc_timed callers (atomic)   destroy, which waits for 0
 *   stats heaps[i] (stats.h)    the heap lock's holder, with   rtalloc-stat (seqlock)
 *                               the seqlock pattern of stats.c
 *   hdr->fig (shared heaps)     the heap lock's holder, of     rtalloc-stat, mapping the
 *                               any process (seqlock)          object read-only
 *   rt_heap_reg_lock            PTHREAD_PRIO_INHERIT; taken before any heap's lock
 *   hdr->procs (shared heaps)   create (before the magic);    bind's checks (a copy); a
 *                               bind, unbind under hdr->lock  creator reclaiming a stale
 *                               (heap_shm.c)                  name, under hdr->lock
 *   rt_heap_counts (tests)      its own thread (__thread)     its own thread (heap_debug.c)
 * fork (pthread_atfork, registered by the first heap call): the forking
 * thread takes rt_heap_reg_lock and every private heap's lock; the child
 * makes them anew and drops the waiter records of the threads it does not
 * have.
 * The registry is read without locks and without RCU: a slot is never
 * unmapped memory (a static array), and a heap's memory goes only at
 * rtalloc_heap_destroy, after which using its blocks is the caller's error.
 */
#include <stdlib.h>

#include "fastpath.h"
#include "heap_int.h"

static struct rtalloc_heap reg[RTALLOC_HEAP_MAX];

/* Tests: what this thread's heap calls asked of the kernel on the paths
 * that the documentation bounds, counted where they are made (heap_block.c,
 * heap_wait.c, heap_shm.c) and read by heap_debug.c. */
__thread struct rt_heap_counts rt_heap_counts;

static unsigned reg_hi; /* slots [0, reg_hi) may be active (grows only) */
/* Priority-inheriting (rt_heap_registry_init): a real-time thread that
 * creates, binds or destroys a heap while a lower-priority one does boosts
 * it. */
pthread_mutex_t rt_heap_reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
int rt_heap_pid; /* getpid(), cached (renewed in a forked child) */

/* ---- names, registry ---------------------------------------------------- */

bool rt_heap_name_ok(const char *name)
{
	size_t n = 0;
	for (; name[n]; n++) { /* bound: RTALLOC_HEAP_NAME_MAX + 1 */
		char c = name[n];
		if (n >= RTALLOC_HEAP_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return n > 0;
}

bool rt_heap_valid(const rtalloc_heap_t *h)
{
	uintptr_t off = (uintptr_t)h - (uintptr_t)reg;
	return h && off < sizeof(reg) && off % sizeof(reg[0]) == 0 &&
	       __atomic_load_n(&h->active, __ATOMIC_ACQUIRE);
}

static struct rtalloc_heap *heap_of(const void *p)
{
	uintptr_t a = (uintptr_t)p;
	unsigned n = __atomic_load_n(&reg_hi, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < n; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		if (!__atomic_load_n(&h->active, __ATOMIC_ACQUIRE))
			continue;
		unsigned nr = __atomic_load_n(&h->nregions, __ATOMIC_ACQUIRE); /* grows: see grow() */
		for (unsigned r = 0; r < nr; r++) /* bound: RTALLOC_HEAP_REGIONS */
			if (a - h->rbase[r] < h->rsize[r])
				return h;
	}
	return NULL;
}

/* A free slot, under rt_heap_reg_lock; NULL when RTALLOC_HEAP_MAX are in use. */
struct rtalloc_heap *rt_heap_slot_claim(void)
{
	for (unsigned i = 0; i < RTALLOC_HEAP_MAX; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		if (!h->active && !h->hdr) {
			memset(h, 0, sizeof(*h));
			return h;
		}
	}
	return NULL;
}

void rt_heap_slot_publish(struct rtalloc_heap *h)
{
	unsigned i = (unsigned)(h - reg);
	__atomic_store_n(&h->active, 1, __ATOMIC_RELEASE);
	if (i + 1 > reg_hi)
		__atomic_store_n(&reg_hi, i + 1, __ATOMIC_RELEASE);
}

/* ---- fork, and the registry lock ------------------------------------------ */

/* The registry's lock: priority inheritance (not robust: a thread that dies
 * holding it has left the registry half-updated anyway). */
static void pi_lock_init(pthread_mutex_t *m) { rt_mutex_init(m, RT_MUTEX_PI); }
static uint64_t fork_locked; /* bit i: the forking thread holds reg[i]'s lock */

/* Heaps across fork(2), like the pool's arenas: the forking thread takes
 * the registry lock and the lock of every private heap (lock order: the
 * registry, then heaps, as create/bind/destroy take them; these handlers
 * are registered after the pool's, so they run before its prepare and
 * after its child and parent handlers), so the child finds every private
 * heap between two operations.  A shared heap's lock is not taken: a
 * parent thread that holds it at the fork releases it in the parent, where
 * it still runs, and the child waits for it like any other process. */
static void fork_prepare(void)
{
	rt_mutex_lock(&rt_heap_reg_lock);
	uint64_t locked = 0;
	unsigned n = reg_hi;
	for (unsigned i = 0; i < n; i++) /* bound: RTALLOC_HEAP_MAX */
		if (reg[i].active && !reg[i].shared && rt_heap_lock(&reg[i]) == 0)
			locked |= 1ULL << i;
	fork_locked = locked;
}

static void fork_parent(void)
{
	for (unsigned i = reg_hi; i-- > 0;) /* bound: RTALLOC_HEAP_MAX */
		if (fork_locked & (1ULL << i))
			rt_heap_unlock(&reg[i]);
	rt_mutex_unlock(&rt_heap_reg_lock);
}

/* The child has one thread, this one under another TID: the locks it
 * inherited held are made anew.  The parent's other threads are gone: the
 * waiter records they had in private heaps are dropped (a block already
 * handed to one goes back to its heap) and no thread of this process is
 * inside rtalloc_heap_alloc_timed. */
static void fork_child(void)
{
	rt_heap_pid = rt_os_getpid();
	pi_lock_init(&rt_heap_reg_lock);
	rt_heap_counts.locked = 0; /* the locks fork_prepare took are made anew, not released */
	for (unsigned i = 0; i < reg_hi; i++) { /* bound: RTALLOC_HEAP_MAX */
		struct rtalloc_heap *h = &reg[i];
		h->users = 0;
		if (!(fork_locked & (1ULL << i)))
			continue;
		rt_heap_lock_init(&h->hdr->lock, false);
		h->hdr->dirty = 0;
		rt_heap_waiters_forget(h);
	}
	fork_locked = 0;
}

static void registry_once(void)
{
	pi_lock_init(&rt_heap_reg_lock);
	rt_heap_pid = rt_os_getpid();
	rt_os_atfork(fork_prepare, fork_parent, fork_child);
}

/* Before the registry is used: its lock made priority-inheriting, the fork
 * handlers registered (the first heap call of the process; not on an
 * allocation path). */
void rt_heap_registry_init(void)
{
	rt_os_once(&reg_once, registry_once);
}

/* ---- statistics (the seqlock writer of stats.h) --------------------------- */

static struct rt_stats_heap *stats_rec(const struct rtalloc_heap *h)
{
	unsigned i = (unsigned)(h - reg);
	return rt_stats && i < RT_STATS_HEAPS ? &rt_stats->heaps[i] : NULL;
}

static unsigned count_waiters(const struct rt_heap_hdr *H) { return H->nwaiters; }

static void put_figures(struct rt_stats_heap *s, const struct rtalloc_heap *h)
{
	const struct rt_heap_hdr *H = h->hdr;
	rt_seq_write_begin(&s->seq);
	uint64_t name[RTALLOC_HEAP_NAME_MAX / 8];
	memcpy(name, H->name, sizeof(name));
	for (unsigned i = 0; i < RTALLOC_HEAP_NAME_MAX / 8; i++) /* bound: 8 words */
		RT_SEQ_PUT(((uint64_t *)(void *)s->name)[i], name[i]);
	RT_SEQ_PUT(s->flags, H->flags | RT_STATS_HEAP_USED);
	RT_SEQ_PUT(s->size, (uint64_t)rt_heap_data_bytes(H));
	RT_SEQ_PUT(s->free, (uint64_t)rt_heap_free_bytes(h));
	RT_SEQ_PUT(s->min_free, H->min_free);
	RT_SEQ_PUT(s->largest_free, (uint64_t)rt_heap_largest_free(h));
	RT_SEQ_PUT(s->live_blocks, H->live);
	RT_SEQ_PUT(s->waiters, (uint64_t)count_waiters(H));
	rt_seq_write_end(&s->seq);
}

/* Lock held: this process's record, and a shared heap's own. */
void rt_heap_publish(struct rtalloc_heap *h)
{
	struct rt_stats_heap *s = stats_rec(h);
	if (s)
		put_figures(s, h);
	if (h->shared)
		put_figures(&h->hdr->fig, h);
}

static void unpublish(struct rtalloc_heap *h)
{
	struct rt_stats_heap *s = stats_rec(h);
	if (!s)
		return;
	rt_seq_write_begin(&s->seq);
	RT_SEQ_PUT(s->flags, 0);
	RT_SEQ_PUT(s->size, 0);
	rt_seq_write_end(&s->seq);
}

/* ---- a heap's memory ------------------------------------------------------------ */

/* The guard page of a heap mapped by rtalloc_heap_create or bind: no access
 * between the metadata and the first block.  0 or ENOMEM. */
int rt_heap_guard_page(void *map, size_t data_off)
{
	return rt_os_guard((char *)map + data_off - RT_PAGE_SIZE, RT_PAGE_SIZE) ? ENOMEM : 0;
}

/* Pre-fault and lock memory per the process's mlock policy: 0 or EPERM. */
int rt_heap_prepare_memory(void *p, size_t len)
{
	int e = rt_os_populate(p, len);
	if (e)
		return ENOMEM;
	if (rt_g.opt.mlock != RTALLOC_MLOCK_OFF && rt_os_mlock(p, len) != 0) {
		if (rt_g.opt.mlock == RTALLOC_MLOCK_REQUIRE)
			return EPERM;
		rt_say("cannot lock a heap of %zu bytes (%s): it is pre-faulted but not locked", len,
		       strerrorname_np(errno));
	}
	return 0;
}

/* ---- creating and destroying ------------------------------------------------------ */

RT_EXPORT rtalloc_heap_t *rtalloc_heap_create(const char *name, size_t size, unsigned flags)
{
	bool shared = flags & RTALLOC_HEAP_SHARED;
	bool grows = flags & RTALLOC_HEAP_GROW;
	if (flags & ~KNOWN_FLAGS || size == 0 || size > ((size_t)RT_NIL / 2 / NREG) << RT_PAGE_SHIFT)
		return fail(EINVAL);
	if (grows && shared)
		return fail(ENOTSUP); /* every bound process would have to map the new regions */
	if ((flags & RTALLOC_HEAP_SHARED_GROUP) && !shared)
		return fail(EINVAL);
	if (shared ? !name || !rt_heap_name_ok(name) : name && name[0] && !rt_heap_name_ok(name))
		return fail(EINVAL);
	if (!rt_ready() && rt_init_lazy() != 0)
		return fail(ENOMEM);
	rt_heap_registry_init();
	size_t pages = rt_page_round(size) >> RT_PAGE_SHIFT;
	size_t reserve = grows ? (NREG - 1) * pages : 0; /* descriptors of the regions to come */
	size_t data_off = rt_heap_data_offset(pages, reserve);
	size_t len = data_off + (pages << RT_PAGE_SHIFT);
	size_t align = rt_heap_region_align(pages << RT_PAGE_SHIFT);
	char path[sizeof(SHM_PREFIX) + RTALLOC_HEAP_NAME_MAX];
	int fd = -1, e = 0;
	rt_mutex_lock(&rt_heap_reg_lock);
	struct rtalloc_heap *h = rt_heap_slot_claim();
	if (!h) {
		e = ENOMEM;
		goto out;
	}
	if (shared && (fd = rt_heap_shm_create(path, name, flags, len, &e)) < 0)
		goto out;
	void *map = rt_os_map_aligned(len, align, data_off, fd);
	if (!map) {
		e = ENOMEM;
		goto out_unlink;
	}
	e = rt_heap_prepare_memory(map, len);
	uintptr_t base[1] = {(uintptr_t)map};
	size_t sz[1] = {len};
	if (!e)
		e = rt_heap_format(h, name, flags, base, sz, 1, reserve, true);
	if (!e && (h->data[0] != (uintptr_t)map + data_off || h->dend[0] - h->data[0] != pages << RT_PAGE_SHIFT))
		e = EINVAL; /* cannot happen: format lays the data out as rt_heap_data_offset() says */
	if (!e)
		e = rt_heap_guard_page(map, data_off);
	if (e) {
		rt_os_unmap(map, len);
		goto out_unlink;
	}
	h->hdr->map_bytes = len;
	h->hdr->map_align = align;
	h->hdr->procs[0] = rt_heap_pid;
	h->map = map;
	h->map_len = len;
	h->own_map = true;
	__atomic_store_n(&h->hdr->magic, HEAP_MAGIC, __ATOMIC_RELEASE);
	rt_heap_lock(h);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	rt_heap_slot_publish(h);
	goto out;
out_unlink:
	if (fd >= 0)
		rt_os_shm_unlink(path);
out:
	if (e && h)
		memset(h, 0, sizeof(*h));
	rt_mutex_unlock(&rt_heap_reg_lock);
	if (fd >= 0)
		rt_os_close(fd);
	return e ? fail(e) : h;
}

RT_EXPORT rtalloc_heap_t *rtalloc_heap_create_in(const char *name, const struct rtalloc_region *regions,
						 size_t n, unsigned flags)
{
	if (!regions || n == 0 || n > NREG || flags & ~KNOWN_FLAGS || flags & RTALLOC_HEAP_SHARED ||
	    (name && name[0] && !rt_heap_name_ok(name)))
		return fail(EINVAL);
	if (flags & RTALLOC_HEAP_GROW)
		return fail(EINVAL); /* the caller's memory is all there is */
	uintptr_t base[NREG];
	size_t size[NREG];
	for (size_t r = 0; r < n; r++) { /* bound: RTALLOC_HEAP_REGIONS */
		base[r] = (uintptr_t)regions[r].base;
		size[r] = regions[r].size;
		if (!base[r] || size[r] == 0 || base[r] + size[r] < base[r] || rt_page_of(regions[r].base) ||
		    heap_of(regions[r].base))
			return fail(EINVAL);
		for (size_t q = 0; q < r; q++) /* bound: RTALLOC_HEAP_REGIONS */
			if (base[r] < base[q] + size[q] && base[q] < base[r] + size[r])
				return fail(EINVAL);
	}
	rt_heap_registry_init();
	rt_mutex_lock(&rt_heap_reg_lock);
	struct rtalloc_heap *h = rt_heap_slot_claim();
	int e = h ? rt_heap_format(h, name, flags, base, size, (unsigned)n, 0, false) : ENOMEM;
	if (!e) {
		__atomic_store_n(&h->hdr->magic, HEAP_MAGIC, __ATOMIC_RELEASE);
		rt_heap_lock(h);
		rt_heap_publish(h);
		rt_heap_unlock(h);
		rt_heap_slot_publish(h);
	} else if (h) {
		memset(h, 0, sizeof(*h));
	}
	rt_mutex_unlock(&rt_heap_reg_lock);
	return e ? fail(e) : h;
}

void rt_heap_slot_release(struct rtalloc_heap *h)
{
	__atomic_store_n(&h->active, 0, __ATOMIC_RELEASE);
	unpublish(h);
	if (h->own_map)
		rt_os_unmap(h->map, h->map_len);
	for (unsigned r = 1; r < NREG; r++) /* bound: RTALLOC_HEAP_REGIONS */
		if (h->grown[r])
			rt_os_unmap(h->grown[r], h->grown_len[r]);
	memset(h, 0, sizeof(*h));
}

RT_EXPORT int rtalloc_heap_destroy(rtalloc_heap_t *h)
{
	rt_heap_registry_init();
	rt_mutex_lock(&rt_heap_reg_lock);
	if (!rt_heap_valid(h)) {
		rt_mutex_unlock(&rt_heap_reg_lock);
		return EINVAL;
	}
	struct rt_heap_hdr *H = h->hdr;
	if (rt_heap_lock(h) == 0) {
		H->dead = 1;
		rt_heap_waiters_cancel(h);
		rt_heap_unlock(h);
	}
	/* Wait until this process's waiters have left the heap's memory. */
	for (int i = 0; __atomic_load_n(&h->users, __ATOMIC_ACQUIRE) > 0; i++) { /* bound: 10 s */
		if (i == 10000) {
			rt_mutex_unlock(&rt_heap_reg_lock);
			return EBUSY;
		}
		rt_os_sleep_ns(1000000);
	}
	if (h->shared) {
		rt_heap_shm_unlink(H->name);
	} else if (!h->own_map) {
		__atomic_store_n(&H->magic, 0, __ATOMIC_RELAXED);
		rt_mutex_destroy(&H->lock);
	}
	rt_heap_slot_release(h);
	rt_mutex_unlock(&rt_heap_reg_lock);
	return 0;
}

/* ---- allocation ------------------------------------------------------------------ */

/* RTALLOC_HEAP_GROW: when an allocation finds no room, the heap adds a
 * region of its first region's size (mapped, pre-faulted and locked like the
 * first; descriptors reserved at creation), at most RTALLOC_HEAP_REGIONS - 1
 * times.  A non-real-time event: system calls under the heap's lock.
 * Requests larger than the biggest block a new region holds never grow it.
 * Lock held.  True when a region was added. */
static bool grow(struct rtalloc_heap *h, size_t n)
{
	struct rt_heap_hdr *H = h->hdr;
	unsigned r = h->nregions;
	if (!(H->flags & RTALLOC_HEAP_GROW) || r >= NREG || !h->own_map)
		return false;
	const struct rt_buddy *b0 = &H->reg[0].buddy;
	uint32_t np = b0->limit - b0->skew;
	size_t len = (size_t)np << RT_PAGE_SHIFT;
	size_t align = rt_heap_region_align(len);
	if (n > align)
		return false; /* no region of this heap can hold it */
	void *map = rt_os_map_aligned(len, align, 0, -1);
	if (!map)
		return false;
	if (rt_heap_prepare_memory(map, len) != 0) {
		rt_os_unmap(map, len);
		return false;
	}
	struct rt_heap_region *R = &H->reg[r];
	R->base_off = H->reg[r - 1].base_off + H->reg[r - 1].bytes;
	R->bytes = len;
	R->data_off = 0;
	rt_buddy_init(&R->buddy, h->desc, H->npages, (uintptr_t)map, np, r);
	rt_buddy_add(&R->buddy, np);
	h->grown[r] = map;
	h->grown_len[r] = len;
	h->rbase[r] = (uintptr_t)map;
	h->rsize[r] = len;
	h->data[r] = (uintptr_t)map;
	h->dend[r] = (uintptr_t)map + len;
	h->first[r] = H->npages;
	H->npages += np;
	h->npages = H->npages; /* idx_ok: the new region's pages are valid indices */
	H->nregions = r + 1;
	/* heap_of() reads the regions without the lock: they are complete
	 * before the count that covers them is published */
	__atomic_store_n(&h->nregions, r + 1, __ATOMIC_RELEASE);
	rt_say("heap %s grew by %zu KiB to %zu KiB (region %u of %u): a non-real-time event",
	       H->name[0] ? H->name : "(unnamed)", len >> 10, rt_heap_data_bytes(H) >> 10, r + 1, NREG);
	return true;
}

void *rt_heap_alloc_or_grow(struct rtalloc_heap *h, size_t n)
{
	void *p = rt_heap_block_alloc(h, n);
	if (rt_unlikely(!p) && grow(h, n))
		p = rt_heap_block_alloc(h, n);
	return p;
}

static void *alloc_locked(struct rtalloc_heap *h, size_t n)
{
	if (rt_heap_lock(h) != 0)
		return fail(EIDRM);
	if (h->hdr->dead) {
		rt_heap_unlock(h);
		return fail(EIDRM);
	}
	void *p = rt_heap_alloc_or_grow(h, n);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	if (!p)
		errno = ENOMEM;
	return p;
}

RT_EXPORT void *rtalloc_heap_alloc(rtalloc_heap_t *h, size_t size)
{
	if (!rt_heap_valid(h))
		return fail(EINVAL);
	return alloc_locked(h, size);
}


RT_EXPORT void *rtalloc_heap_aligned_alloc(rtalloc_heap_t *h, size_t align, size_t size)
{
	if (!rt_heap_valid(h) || !rt_pow2(align))
		return fail(EINVAL);
	if (align > RT_MAX_ALIGN)
		return fail(ENOMEM);
	return alloc_locked(h, size > align ? size : align); /* blocks are aligned to their size */
}

RT_EXPORT void rtalloc_heap_free(rtalloc_heap_t *h, void *p)
{
	if (!p)
		return;
	if (!rt_heap_valid(h))
		rt_fatal("rtalloc_heap_free", "not a heap", h);
	if (heap_of(p) != h)
		rt_fatal("rtalloc_heap_free", "pointer not in this heap", p);
	int saved = errno;
	if (rt_heap_lock(h) == 0) {
		rt_heap_block_free(h, p, "rtalloc_heap_free");
		rt_heap_publish(h);
		rt_heap_unlock(h);
	}
	errno = saved;
}

RT_EXPORT int rtalloc_heap_inquire(rtalloc_heap_t *h, struct rtalloc_heap_info *info)
{
	if (!rt_heap_valid(h) || !info)
		return EINVAL;
	if (rt_heap_lock(h) != 0)
		return EIDRM;
	const struct rt_heap_hdr *H = h->hdr;
	memset(info, 0, sizeof(*info));
	memcpy(info->name, H->name, RTALLOC_HEAP_NAME_MAX);
	info->flags = H->flags;
	info->size = rt_heap_data_bytes(H);
	info->free_bytes = rt_heap_free_bytes(h);
	info->min_free_bytes = H->min_free;
	info->largest_free = rt_heap_largest_free(h);
	info->live_blocks = H->live;
	info->waiters = count_waiters(H);
	rt_heap_publish(h);
	rt_heap_unlock(h);
	return 0;
}

RT_EXPORT size_t rtalloc_heap_offset(rtalloc_heap_t *h, const void *p)
{
	size_t off = rt_heap_valid(h) ? rt_heap_offset_of(h, p) : RTALLOC_HEAP_BAD_OFFSET;
	if (off == RTALLOC_HEAP_BAD_OFFSET)
		errno = EINVAL;
	return off;
}

RT_EXPORT void *rtalloc_heap_ptr(rtalloc_heap_t *h, size_t off)
{
	void *p = rt_heap_valid(h) ? rt_heap_ptr_of(h, off) : NULL;
	if (!p)
		errno = EINVAL;
	return p;
}

RT_EXPORT int rtalloc_thread_use_heap(rtalloc_heap_t *h)
{
	if (h && !rt_heap_valid(h))
		return EINVAL;
	struct rt_tcache *tc = &rt_tc;
	if (rt_tcache_setup() != 0)
		return ENOMEM;
	if (h) {
		rt_tcache_flush_all(tc); /* every limit 0: each malloc and free takes the slow path */
		tc->heap = h;
	} else if (tc->heap) {
		tc->heap = NULL;
		rt_tcache_restore_limits(tc);
	}
	return 0;
}

/* ---- the core's hooks --------------------------------------------------------------- */

bool rt_heap_free_foreign(void *ptr, const char *call)
{
	struct rtalloc_heap *h = heap_of(ptr);
	if (!h)
		return false;
	if (rt_heap_lock(h) == 0) {
		rt_heap_block_free(h, ptr, call);
		rt_heap_publish(h);
		rt_heap_unlock(h);
	}
	return true;
}

size_t rt_heap_block_size(const void *ptr, const char *call)
{
	struct rtalloc_heap *h = heap_of(ptr);
	if (!h || rt_heap_lock(h) != 0)
		return 0;
	size_t sz;
	unsigned r;
	rt_heap_block_live(h, ptr, call, &sz, &r);
	rt_heap_unlock(h);
	return sz;
}

void *rt_heap_realloc(void *p, size_t n)
{
	struct rtalloc_heap *h = heap_of(p);
	if (!h)
		rt_fatal("realloc", "pointer not allocated by librtalloc (its size is unknown)", p);
	size_t have = rt_heap_block_size(p, "realloc");
	if (n > PTRDIFF_MAX)
		return fail(ENOMEM);
	bool same = have <= RT_PAGE_SIZE / 2 ? n <= have && rt_class_of(n) == rt_class_of(have)
					     : n > RT_PAGE_SIZE / 2 && n <= have && rt_order_of(n) == rt_order_of(have);
	if (same)
		return p;
	void *q = alloc_locked(h, n);
	if (!q)
		return NULL;
	memcpy(q, p, have < n ? have : n);
	rt_heap_free_foreign(p, "realloc");
	return q;
}

void *rt_heap_thread_alloc(void *heap, size_t n)
{
	struct rtalloc_heap *h = heap;
	if (!rt_heap_valid(h))
		return fail(ENOMEM);
	return alloc_locked(h, n);
}
