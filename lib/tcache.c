/* SPDX-License-Identifier: MIT */
/*
 * tcache.c - per-thread caches and the slow paths of malloc and free.
 *
 * Each thread has one bounded list per class (struct rt_tcache, initial-exec
 * TLS).  The fast paths (fastpath.h) pop and push; everything else lands here:
 *   malloc: the thread's first call, an empty list (refill a batch from its
 *           arena), size 0, huge sizes (a buddy block of their own);
 *   free:   NULL, foreign pointers, huge blocks, invalid or double frees
 *           (abort with the call's name), a full list (flush a batch), a
 *           thread not set up yet or already exited.
 *
 * Bounds: a refill or flush moves at most RT_BATCH_MAX blocks (arena.c
 * bounds each); a flush here first walks at most RT_BATCH_MAX links to cut
 * the batch; thread exit flushes at most RT_NCLASS lists of at most
 * rt_tcache_limit(c) blocks.
 *
 * Transfer rings: a thread whose list of a class is full and one whose list
 * is empty often meet in the arena (a pipeline: one thread allocates, another
 * frees), and with more threads than cores its lock becomes a convoy.  So a
 * whole batch (a chain of exactly tc_limit/2 blocks, as on a thread's list:
 * encoded links, RT_STAMP_CACHED, ending in NULL) is first offered to its
 * class's ring, a bounded lock-free queue of batches, and a refill first
 * takes one from it: no lock, no ABA (each cell's sequence number says whose
 * turn it is).  Bound: at most RT_XFER_TRIES compare-and-swaps either way,
 * and the atomic adds of the bytes parked.  Only threads with their full
 * limits use the rings (their batches are the rings' size), and only with
 * one arena (a chain may hold blocks of several arenas otherwise).  The
 * rings' memory (at most xfer_limit bytes over all classes, a sixteenth of
 * the budget) comes out of the cache budget, and goes back to the arena
 * before any request fails.
 *
 * Memory held in caches is bounded twice: per thread (tc_limit: 383 KiB of
 * the classes up to 32 KiB, 2.25 MiB of the large classes, 64 KiB .. 1 MiB)
 * and over all threads, by the cache budget, an eighth of the pool.  A
 * thread takes its share of the classes up to 32 KiB at set-up (the whole
 * 383 KiB while the budget has it, else its limits halved until they fit
 * what is left, down to caching nothing), and its share of the large
 * classes (2.25 MiB, or halved likewise; all large shares together at most
 * half the budget) at its first malloc or free of one of them (or in
 * rtalloc_thread_prepare): threads that never use large blocks leave that
 * part of the budget to the others.  It gives both back
 * at exit.  So threads that freed everything and never call again hold at
 * most an eighth of the pool, however many they are.
 *
 * A recorded profile (RTALLOC_PROFILE, profile.c): rtalloc_thread_prepare in
 * a thread named in it raises the thread's limits to its recorded peaks (at
 * most RT_PROFILE_BLOCKS_MAX blocks a class), the bytes beyond its share
 * taken from the profile's reserve (rt_profile_cache_extra: its peaks'
 * bytes) or else the budget, and fills its lists to them; batches stay at
 * most RT_BATCH_MAX.  The peaks themselves are noted at refills
 * (peak_note), off the fast paths.
 *
 * Counters: the thread's statistics are counted here only (the fast paths'
 * in the bins, the slow paths' and real-time sections' in st), folded here
 * (rt_tcache_publish) and handed to stats.c, which writes the slot: one
 * direction (the flow: statread.c).
 *
 * Synchronization: a tcache is touched only by its own thread (the counters
 * in st are read by other threads for statistics, see stats.c).  A thread
 * exit destructor returns the cache and marks it dead: afterwards (other TLS
 * destructors may still allocate) every call goes straight to the arenas.
 */
#include <errno.h>
#include <stdlib.h>

#include "fastpath.h"
#include "faults.h"
#include "os.h"
#include "heap.h"
#include "probes.h"

__thread struct rt_tcache rt_tc __attribute__((tls_model("initial-exec")));

/* Blocks kept per class: 16 KiB or less of each small class, 64 or 128 KiB
 * of each medium class, 256 KiB .. 1 MiB of each large class; a thread holds
 * at most 383 KiB of the classes up to 32 KiB (RT_TC_FULL) and 2.25 MiB of
 * the large ones (RT_TC_BIG).  A refill or flush moves half the limit (one
 * block for a limit of 1 or 2). */
static const uint16_t tc_limit[RT_CLS_HUGE + 1] = {
	0,                              /* no class */
	64, 64, 64, 64, 32, 16, 16, 8,  /* 16 B .. 2 KiB */
	16, 8, 4, 4,                    /* 4 KiB .. 32 KiB */
	4, 2, 1, 1, 1,                  /* 64 KiB .. 1 MiB: their own share */
	0,                              /* huge: never cached */
};
#define RT_BATCH_MAX 32
_Static_assert(RT_NCLASS == 17 && RT_NMED == 12, "tc_limit has one entry per class");

#define RT_TC_FULL ((size_t)392192) /* sum of tc_limit[c] * class size, c <= RT_NMED: 383 KiB */
#define RT_TC_SHIFT_MAX 7            /* limits >> 7 are all 0: nothing cached */
#define RT_TC_BIG ((size_t)2359296)  /* the same for c > RT_NMED: 2.25 MiB */
#define RT_BIG_SHIFT_MAX 3           /* large limits >> 3 are all 0 */

unsigned rt_tcache_limit(unsigned c) { return c <= RT_CLS_HUGE ? tc_limit[c] : 0; }

/* The thread's limit of class c: its share of the budget's. */
static inline uint32_t limit_of(const struct rt_tcache *tc, unsigned c)
{
	if (c <= RT_NMED)
		return (uint32_t)tc_limit[c] >> tc->shift;
	return tc->big_taken && c <= RT_NCLASS ? (uint32_t)tc_limit[c] >> tc->big_shift : 0;
}
/* Blocks a refill or flush moves: half the thread's limit of the class, at
 * most RT_BATCH_MAX (a profile raises limits beyond tc_limit: profile_fill). */
static inline unsigned batch_of(const struct rt_bin *bin)
{
	return bin->limit > 2 * RT_BATCH_MAX ? RT_BATCH_MAX : bin->limit > 1 ? bin->limit / 2u : 1u;
}

/* Bytes of the cache budget the live threads hold (their RT_TC_FULL >> shift),
 * and the transfer rings (xfer_limit, when they are on). */
static size_t cache_used;

static size_t cache_budget(void) { return __atomic_load_n(&rt_g.pool_bytes, __ATOMIC_RELAXED) / 8; }
/* Bytes of the loaded profile's reserve (rt_profile_cache_extra) the
 * threads' raised limits hold (profile_fill). */
static size_t profile_used;

/* The transfer rings: one per class, a bounded queue of whole batches
 * (Vyukov's bounded MPMC queue: each cell has a sequence number that says
 * whose turn it is; a put or take claims a position with one
 * compare-and-swap, then publishes the cell with one release store).  A
 * pipeline's freer often lets go of many batches before the allocating
 * thread runs again (more threads than cores): 4 slots overflowed, and most
 * batches took the arena lock (bench/rtbench classic xmalloc: 4 producers,
 * 4 consumers on 2 CPUs, 5x glibc's time).  A ring holds up to xfer_cap(c)
 * batches, and all rings together at most xfer_limit bytes (a sixteenth of
 * the cache budget, taken from it when the rings are turned on: with the
 * large shares' half, 9 threads keep their full small-class shares in a
 * 64 MiB pool), counted in xfer_parked.  A put or take tries at most
 * RT_XFER_TRIES positions, then goes to the arena; a thread preempted
 * between its claim and its publication only makes the others go to the
 * arena (for that cell), never wait. */
#define RT_XFER_CAP 128     /* batches in a ring of a small class (a power of 2) */
#define RT_XFER_MED_CAP 16  /* of a medium class: 16 batches of 32 or 64 KiB */
#define RT_XFER_BIG_CAP 2   /* of a large class (2: the least the queue works with) */
#define RT_XFER_TRIES 4     /* positions a put or a take tries before the arena */
#define RT_XFER_CELLS (RT_NSMALL * RT_XFER_CAP + (RT_NMED - RT_NSMALL) * RT_XFER_MED_CAP + \
		       (RT_NCLASS - RT_NMED) * RT_XFER_BIG_CAP)
static inline size_t xfer_cap(unsigned c)
{
	return c <= RT_NSMALL ? RT_XFER_CAP : c <= RT_NMED ? RT_XFER_MED_CAP : RT_XFER_BIG_CAP;
}
/* Where class c's cells begin in xfer_cell. */
static inline size_t xfer_first(unsigned c)
{
	if (c <= RT_NSMALL)
		return (c - 1) * RT_XFER_CAP;
	if (c <= RT_NMED)
		return RT_NSMALL * RT_XFER_CAP + (c - RT_NSMALL - 1) * RT_XFER_MED_CAP;
	return RT_NSMALL * RT_XFER_CAP + (RT_NMED - RT_NSMALL) * RT_XFER_MED_CAP +
	       (c - RT_NMED - 1) * RT_XFER_BIG_CAP;
}
/* Blocks of a full batch of class c (a thread with its full limits). */
static inline unsigned xfer_batch(unsigned c) { return tc_limit[c] > 1 ? tc_limit[c] / 2u : 1u; }
static inline size_t xfer_batch_bytes(unsigned c) { return (size_t)xfer_batch(c) * rt_class_size(c); }

/* A cell is one word: the chain's offset from rt_g.base / 16 above bit 16
 * (spaces up to 2^43 bytes: 39 bits), and below it the cell's sequence
 * number, minus its index, mod 2^16, so that the zeroed ring is the empty
 * one (cell i's first turn is position i).  A put at position pos finds the
 * number pos, a take pos + 1 (both mod 2^16: positions in flight differ by
 * at most a ring; a stale match fails its compare-and-swap on the full
 * 64-bit position).  A take reads the chain from the word it matched: once
 * its position is claimed, no put writes that cell until it is handed back. */
#define RT_XFER_SEQ 0xffffu
_Static_assert(RT_XFER_CAP * 4 <= RT_XFER_SEQ, "sequence numbers tell a ring's turns apart");
static uint64_t xfer_cell[RT_XFER_CELLS] __attribute__((aligned(64)));
static struct {
	size_t put __attribute__((aligned(64)));  /* next position to put at; own cache line */
	size_t take __attribute__((aligned(64))); /* next position to take from */
} xfer_pos[RT_NCLASS + 1];
static size_t xfer_parked __attribute__((aligned(64))); /* bytes in the rings */
static size_t xfer_limit; /* bytes the rings may hold; set once, before xfer_state */
/* 0: not decided yet; 1: on; 2: off (small pool, or several arenas). */
static int xfer_state;

static inline uint64_t cell_make(const void *chain, size_t seq, size_t i)
{
	uint64_t off = chain ? ((uintptr_t)chain - rt_g.base) >> 4 : 0;
	return off << 16 | ((seq - i) & RT_XFER_SEQ);
}
static inline size_t cell_seq(uint64_t cell, size_t i) { return (size_t)(cell + i) & RT_XFER_SEQ; }
static inline void *cell_chain(uint64_t cell) { return (void *)(rt_g.base + ((cell >> 16) << 4)); }

static size_t xfer_bytes(int state) { return state == 1 ? xfer_limit : 0; }

/* Decided once, at the first thread's set-up: on in pools of 16 MiB and
 * more (a budget of 2 MiB: the rings may hold 128 KiB). */
static void xfer_decide(void)
{
	if (__atomic_load_n(&xfer_state, __ATOMIC_ACQUIRE))
		return;
	size_t limit = cache_budget() / 16;
	int want = rt_g.narenas == 1 && cache_budget() >= ((size_t)2 << 20) ? 1 : 2;
	int expected = 0;
	if (want == 1)
		__atomic_store_n(&xfer_limit, limit, __ATOMIC_RELAXED); /* the winner's value: the same */
	if (__atomic_compare_exchange_n(&xfer_state, &expected, want, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		__atomic_fetch_add(&cache_used, xfer_bytes(want), __ATOMIC_RELAXED);
}

static inline bool xfer_ok(const struct rt_bin *bin, unsigned c)
{
	return bin->limit == tc_limit[c] && __atomic_load_n(&xfer_state, __ATOMIC_ACQUIRE) == 1;
}

/* Offer the chain first .. last (a full batch) to class c's ring: true if
 * taken.  Bound: RT_XFER_TRIES compare-and-swaps, two atomic adds. */
static bool xfer_put(unsigned c, void *first, void *last)
{
	size_t bytes = xfer_batch_bytes(c);
	if (__atomic_fetch_add(&xfer_parked, bytes, __ATOMIC_RELAXED) + bytes >
	    __atomic_load_n(&xfer_limit, __ATOMIC_RELAXED)) {
		__atomic_fetch_sub(&xfer_parked, bytes, __ATOMIC_RELAXED);
		return false;
	}
	rt_link_set(last, NULL); /* a chain of its own from now on */
	uint64_t *cells = &xfer_cell[xfer_first(c)];
	size_t *put = &xfer_pos[c].put;
	size_t mask = xfer_cap(c) - 1, pos = __atomic_load_n(put, __ATOMIC_RELAXED);
	for (unsigned t = 0; t < RT_XFER_TRIES; t++) { /* bound: RT_XFER_TRIES */
		size_t i = pos & mask;
		size_t seq = cell_seq(__atomic_load_n(&cells[i], __ATOMIC_ACQUIRE), i);
		int16_t ahead = (int16_t)(seq - pos);
		if (ahead == 0) {
			if (__atomic_compare_exchange_n(put, &pos, pos + 1, false, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED)) {
				__atomic_store_n(&cells[i], cell_make(first, pos + 1, i), __ATOMIC_RELEASE);
				return true;
			} /* else pos is the position another put took meanwhile */
		} else if (ahead < 0) {
			break; /* full: the cell's last batch is not taken yet */
		} else {
			pos = __atomic_load_n(put, __ATOMIC_RELAXED);
		}
	}
	__atomic_fetch_sub(&xfer_parked, bytes, __ATOMIC_RELAXED);
	return false;
}

/* A full batch of class c from its ring, or NULL.  Bound: RT_XFER_TRIES
 * compare-and-swaps, one atomic add. */
static void *xfer_take(unsigned c)
{
	uint64_t *cells = &xfer_cell[xfer_first(c)];
	size_t *take = &xfer_pos[c].take;
	size_t mask = xfer_cap(c) - 1, pos = __atomic_load_n(take, __ATOMIC_RELAXED);
	for (unsigned t = 0; t < RT_XFER_TRIES; t++) { /* bound: RT_XFER_TRIES */
		size_t i = pos & mask;
		uint64_t cell = __atomic_load_n(&cells[i], __ATOMIC_ACQUIRE);
		int16_t ahead = (int16_t)(cell_seq(cell, i) - (pos + 1));
		if (ahead == 0) {
			if (__atomic_compare_exchange_n(take, &pos, pos + 1, false, __ATOMIC_RELAXED,
							__ATOMIC_RELAXED)) {
				__atomic_store_n(&cells[i], cell_make(NULL, pos + mask + 1, i), __ATOMIC_RELEASE);
				__atomic_fetch_sub(&xfer_parked, xfer_batch_bytes(c), __ATOMIC_RELAXED);
				return cell_chain(cell);
			}
		} else if (ahead < 0) {
			return NULL; /* empty (or its next batch not published yet) */
		} else {
			pos = __atomic_load_n(take, __ATOMIC_RELAXED);
		}
	}
	return NULL;
}

/* Every parked batch back to the arena (the pool ran out).  Bound:
 * RT_NCLASS * RT_XFER_CAP flushes. */
void rt_tcache_xfer_drain(void)
{
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		void *chain;
		for (size_t k = 0; k < xfer_cap(c) && (chain = xfer_take(c)) != NULL; k++) /* bound: RT_XFER_CAP */
			rt_arena_flush(c, chain, xfer_batch(c));
	}
}

size_t rt_tcache_xfer_blocks(void)
{
	size_t n = 0;
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		size_t put = __atomic_load_n(&xfer_pos[c].put, __ATOMIC_RELAXED);
		size_t take = __atomic_load_n(&xfer_pos[c].take, __ATOMIC_RELAXED);
		size_t k = put - take;
		n += (k > xfer_cap(c) ? xfer_cap(c) : k) * xfer_batch(c);
	}
	return n;
}

/* In the child of fork: a thread that is gone may have claimed a position
 * and not published it, which would stop the ring there for good.  Keep the
 * published batches (those of the claims are lost, as the other threads'
 * caches are), and make each ring anew with them.  Not when this thread
 * forked from a signal handler inside a slow path: it may be in a put or a
 * take itself, which it finishes when the handler returns.  Bound:
 * RT_NCLASS * RT_XFER_CAP cells. */
static void xfer_fork_child(void)
{
	size_t parked = 0;
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		uint64_t *cells = &xfer_cell[xfer_first(c)];
		size_t put = xfer_pos[c].put, take = xfer_pos[c].take;
		size_t mask = xfer_cap(c) - 1, kept = 0;
		uint64_t found[RT_XFER_CAP];
		for (size_t pos = take; pos != put && kept <= mask; pos++) { /* bound: RT_XFER_CAP */
			size_t i = pos & mask;
			if (cell_seq(cells[i], i) == ((pos + 1) & RT_XFER_SEQ))
				found[kept++] = cells[i];
		}
		for (size_t i = 0; i <= mask; i++) /* bound: RT_XFER_CAP */
			cells[i] = i < kept ? cell_make(cell_chain(found[i]), i + 1, i) : 0;
		xfer_pos[c].take = 0;
		xfer_pos[c].put = kept;
		parked += kept * xfer_batch_bytes(c);
	}
	xfer_parked = parked;
}

/* Bytes of the budget the live threads' large-class shares hold: at most
 * half the budget (checked before each share is taken; two threads taking
 * theirs at once may pass it by one share, never the budget itself, which
 * cache_used bounds exactly).  rtalloc_thread_prepare takes the large share
 * at once, and every real-time thread calls it: without this cap the first
 * threads' 2.25 MiB each left the later ones a fraction of their small-class
 * limits (and batches too small for the transfer rings). */
static size_t big_used;

/* Take a share of the budget for limits of full bytes: the smallest shift
 * (at most shift_max: nothing cached) whose full >> shift still fits, in the
 * budget and, with part, in part_max - *part (added to *part); the bytes
 * taken.  The limits >> shift hold at most full >> shift bytes. */
static size_t share_take(size_t full, unsigned shift_max, uint8_t *shift_out, size_t *part,
			 size_t part_max)
{
	size_t used = __atomic_load_n(&cache_used, __ATOMIC_RELAXED);
	for (int tries = 0; tries < 64; tries++) { /* bound: 64 attempts, then nothing cached */
		size_t budget = cache_budget(), left = budget > used ? budget - used : 0;
		if (part) {
			size_t p = __atomic_load_n(part, __ATOMIC_RELAXED);
			size_t part_left = part_max > p ? part_max - p : 0;
			left = left < part_left ? left : part_left;
		}
		unsigned shift = 0;
		while (shift < shift_max && (full >> shift) > left) /* bound: shift_max, at most 7 */
			shift++;
		size_t take = shift < shift_max ? full >> shift : 0;
		if (__atomic_compare_exchange_n(&cache_used, &used, used + take, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			if (part)
				__atomic_fetch_add(part, take, __ATOMIC_RELAXED);
			*shift_out = (uint8_t)shift;
			return take;
		}
	}
	*shift_out = (uint8_t)shift_max;
	return 0;
}

/* This thread's share of the classes up to 32 KiB: its limits are
 * tc_limit >> shift. */
static void quota_take(struct rt_tcache *tc) { tc->quota = share_take(RT_TC_FULL, RT_TC_SHIFT_MAX, &tc->shift, NULL, 0); }

/* Its share of the large classes, at their first use: a live thread not
 * bound to a heap, once.  Bound: RT_NCLASS - RT_NMED limits set. */
static void big_take(struct rt_tcache *tc)
{
	if (tc->big_taken || tc->state != RT_TC_LIVE || tc->heap)
		return;
	tc->big_quota = share_take(RT_TC_BIG, RT_BIG_SHIFT_MAX, &tc->big_shift, &big_used,
				    cache_budget() / 2);
	tc->big_taken = 1;
	if (!rt_g.relock_child) /* else rt_tcache_relocked sets them */
		for (unsigned c = RT_NMED + 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS - RT_NMED */
			tc->bin[c].limit = limit_of(tc, c);
}

static void quota_give_back(struct rt_tcache *tc)
{
	__atomic_fetch_sub(&cache_used, tc->quota + tc->big_quota, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&big_used, tc->big_quota, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&profile_used, tc->profile_quota, __ATOMIC_RELAXED);
	tc->profile_quota = 0;
	tc->quota = 0;
	tc->big_quota = 0;
	tc->big_taken = 0;
}

void *rt_list_corrupt(const void *p)
{
	rt_fatal("malloc", "heap corruption (use after free, overflow or double free?): a thread's "
			   "free list leads to a block that is not free or not of its class:", p);
}

void rt_tcache_thread_exit(void *arg)
{
	struct rt_tcache *tc = arg;
	if (tc->peak_dirty)
		rt_profile_publish(tc); /* while the thread still has its name */
	rt_tcache_flush_all(tc);
	quota_give_back(tc);
	tc->state = RT_TC_DEAD;
	struct rt_tcounters last;
	rt_tcache_counters(tc, &last);
	rt_stats_thread_exit(tc, &last);
}

void rt_tcache_flush_all(struct rt_tcache *tc)
{
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS lists */
		struct rt_bin *bin = &tc->bin[c];
		if (bin->count)
			rt_arena_flush(c, bin->head, bin->count);
		bin->head = NULL;
		bin->count = 0;
		bin->limit = 0;
	}
}

/* Empty lists ready for the fast paths: NULL heads, limits, masks. */
void rt_tcache_restore_limits(struct rt_tcache *tc)
{
	if (tc->state == RT_TC_DEAD)
		return; /* a dead thread caches nothing */
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		size_t align = rt_class_size(c) < RT_BASE_ALIGN ? rt_class_size(c) : RT_BASE_ALIGN;
		tc->bin[c].head = NULL;
		tc->bin[c].limit = limit_of(tc, c);
		tc->bin[c].mask = align - 1;
	}
}

/* fork, in the child: its memory must be locked again (mlockall is not
 * inherited), at its first slow path rather than at fork, so a child that
 * only execs never pays for locking a copy of the pool.  The forking
 * thread's limits go to 0, so its next free takes the slow path, which locks
 * and gives the limits back (a malloc from a list that still holds blocks
 * stays on the fast path until the list is empty).  Only the limits: fork
 * may come from a signal handler that interrupted this thread's fast or slow
 * path between two writes of a list's head and count, which it finishes when
 * the handler returns.  Threads the child creates lock in thread_setup. */
void rt_tcache_fork_child(void)
{
	struct rt_tcache *tc = &rt_tc;
	/* the other threads are gone, and their shares of the budget with them */
	__atomic_store_n(&cache_used,
			 (tc->state == RT_TC_LIVE ? tc->quota + tc->big_quota : 0) +
				 xfer_bytes(__atomic_load_n(&xfer_state, __ATOMIC_RELAXED)),
			 __ATOMIC_RELAXED);
	__atomic_store_n(&big_used, tc->state == RT_TC_LIVE ? tc->big_quota : 0, __ATOMIC_RELAXED);
	if (!tc->in_slow)
		xfer_fork_child();
	__atomic_store_n(&profile_used, tc->state == RT_TC_LIVE ? tc->profile_quota : 0, __ATOMIC_RELAXED);
	if (tc->state == RT_TC_LIVE && !tc->heap)
		for (unsigned c = 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS */
			tc->bin[c].limit = 0;
}

void rt_tcache_relocked(struct rt_tcache *tc)
{
	if (tc->state == RT_TC_LIVE && !tc->heap)
		for (unsigned c = 1; c <= RT_NCLASS; c++) /* bound: RT_NCLASS */
			tc->bin[c].limit = limit_of(tc, c); /* its share of the budget */
}

/* The arena a thread refills from: its node's, chosen once. */
static inline struct rt_arena *home(const struct rt_tcache *tc) { return &rt_g.arenas[tc->arena]; }

/* Set the calling thread up: 0, or ENOMEM before the allocator is
 * initialised (alloc.c's entries initialise it first). */
static int thread_setup(struct rt_tcache *tc)
{
	if (rt_unlikely(!rt_ready()))
		return ENOMEM;
	if (tc->state != RT_TC_NEW)
		return 0;
	struct rt_arena *a = rt_pool_arena_for_thread();
	tc->arena = (uint8_t)a->index;
	xfer_decide();
	quota_take(tc);
	rt_tcache_restore_limits(tc);
	tc->state = RT_TC_LIVE;
	rt_os_key_set(rt_g.thread_key, tc); /* no allocation: a static slot */
	rt_stats_thread_start(tc);
	return 0;
}

int rt_tcache_setup(void)
{
	struct rt_tcache *tc = &rt_tc;
	return tc->state == RT_TC_LIVE ? 0 : thread_setup(tc);
}

/* Refill n blocks of class c: the home arena, then the others, then growth. */
static unsigned refill(struct rt_tcache *tc, unsigned c, unsigned want, void **head)
{
	struct rt_arena *a = home(tc);
	if (rt_g.narenas == 1)
		return rt_arena_refill(a, c, want, head, true);
	unsigned n = rt_arena_refill(a, c, want, head, false);
	for (unsigned i = 0; !n && i < rt_g.narenas; i++) /* bound: RT_MAX_ARENAS */
		if (&rt_g.arenas[i] != a)
			n = rt_arena_refill(&rt_g.arenas[i], c, want, head, false);
	return n ? n : rt_arena_refill(a, c, want, head, true);
}

static void *huge_alloc(struct rt_tcache *tc, uint32_t pages)
{
	struct rt_arena *a = home(tc);
	if (rt_g.narenas == 1)
		return rt_arena_huge_alloc(a, pages, true);
	void *p = rt_arena_huge_alloc(a, pages, false);
	for (unsigned i = 0; !p && i < rt_g.narenas; i++) /* bound: RT_MAX_ARENAS */
		if (&rt_g.arenas[i] != a)
			p = rt_arena_huge_alloc(&rt_g.arenas[i], pages, false);
	return p ? p : rt_arena_huge_alloc(a, pages, true);
}

/* Before an allocation fails: the memory this thread's own lists hold and
 * the batches parked in the transfer rings go back to the arenas.  Bound:
 * RT_NCLASS flushes and RT_NCLASS * RT_XFER_CAP flushes.  True if the
 * thread may try again. */
static bool reclaim(struct rt_tcache *tc)
{
	if (tc->state != RT_TC_LIVE)
		return false;
	rt_tcache_flush_all(tc);
	rt_tcache_restore_limits(tc);
	rt_tcache_xfer_drain();
	return true;
}

static void *out_of_memory(struct rt_tcache *tc, size_t n)
{
	tc->st.failed++;
	rt_probe1(exhausted, n);
	rt_stats_failure();
	rt_tcache_publish(tc, 0);
	if (rt_g.opt.on_exhaust == RTALLOC_EXHAUST_ABORT) {
		rt_say("out of memory: a request of %zu bytes cannot be met (RTALLOC_ON_EXHAUST=abort)", n);
		rt_die();
	}
	errno = ENOMEM;
	return NULL;
}

/* The profile's measure (profile.c): at a refill the list of class c is
 * empty, so the blocks of c this thread has taken and not given back itself,
 * plus the batch it now holds, bound what it has needed cached at once since
 * its previous refill.  The slow path only: the fast paths count as ever. */
static inline void peak_note(struct rt_tcache *tc, const struct rt_bin *bin, unsigned c, unsigned got)
{
	int64_t live = (int64_t)(bin->allocs - bin->frees) - bin->slow_back;
	uint64_t need = (live > 0 ? (uint64_t)live : 0) + got;
	if (need > RT_PROFILE_BLOCKS_MAX)
		need = RT_PROFILE_BLOCKS_MAX;
	if (need > tc->peak[c]) {
		tc->peak[c] = (uint32_t)need;
		tc->peak_dirty = 1;
	}
}

/* malloc's slow path in a set-up library: refills, large and huge blocks,
 * out of memory (alloc.c's rt_malloc_slow calls it under the re-entry guard). */
void *rt_tcache_malloc(struct rt_tcache *tc, size_t n)
{
	if (rt_unlikely(tc->state != RT_TC_LIVE) && thread_setup(tc) != 0) {
		errno = ENOMEM;
		return NULL;
	}
	tc->st.slow_mallocs++;
	tc->st.sect_slow += tc->in_section;
	if (n == 0)
		n = 1; /* malloc(0) returns a unique pointer */
	if (rt_unlikely(n > PTRDIFF_MAX))
		return out_of_memory(tc, n);
	unsigned c = rt_class_of(n);
	if (c > RT_NMED && c <= RT_NCLASS && !tc->big_taken)
		big_take(tc); /* the thread's first large block */
	if (c > RT_NCLASS || (c > RT_NMED && tc->bin[c].limit == 0)) {
		/* huge, or a large class this thread does not cache (its share of
		 * the budget, a dead thread): a buddy block of its own */
		unsigned order = rt_order_of(n);
		uint32_t pages = order <= RT_ORDER_MAX ? rt_huge_pages(n) : 0;
		void **p = order <= RT_ORDER_MAX ? huge_alloc(tc, pages) : NULL;
		if (!p && order <= RT_ORDER_MAX && reclaim(tc))
			p = huge_alloc(tc, pages);
		if (!p)
			return out_of_memory(tc, n);
		p[1] = NULL; /* its pages may have held free blocks: no stale stamp */
		rt_probe2(large_alloc, (uint64_t)RT_PAGE_SIZE << order, 1ULL << order);
		if (c <= RT_NCLASS) { /* a large class not cached: counted out for the profile */
			tc->bin[c].slow_back--;
			peak_note(tc, &tc->bin[c], c, 0);
		}
		rt_profile_large(1);
		tc->st.mallocs++;
		tc->st.bytes_allocated += (uint64_t)pages << RT_PAGE_SHIFT;
		return p;
	}
	struct rt_bin *bin = &tc->bin[c];
	if (bin->count == 0) {
		/* A dead thread, or one whose share of the budget leaves this
		 * class uncached, takes single blocks. */
		bool single = tc->state == RT_TC_DEAD || bin->limit == 0;
		unsigned want = single ? 1 : batch_of(bin);
		void *head = NULL;
		unsigned got = 0;
		if (!single && xfer_ok(bin, c) && (head = xfer_take(c)) != NULL)
			got = want; /* a whole batch another thread let go: no lock */
		else
			got = refill(tc, c, want, &head);
		if (!got && reclaim(tc))
			got = refill(tc, c, want, &head);
		if (!got)
			return out_of_memory(tc, n);
		tc->st.refills++;
		rt_probe2(refill, c, got);
		rt_tcache_publish(tc, c);
		if (!single)
			peak_note(tc, bin, c, got);
		if (single) {
			((void **)head)[1] = NULL;
			tc->st.mallocs++;
			tc->st.bytes_allocated += rt_class_size(c);
			return head;
		}
		bin->head = head;
		bin->count = got;
	}
	return rt_cache_pop(bin, c, bin->count); /* not empty now */
}

/* Validate p, inside the space on page pg, as a live block and return its
 * size; abort naming call if it is not one. */
size_t rt_tcache_block_size(const void *p, const struct rt_page *pg, const char *call)
{
	const char *why = rt_block_why(pg, p, 0, RT_BLOCK_LIVE);
	if (rt_unlikely(why != NULL))
		rt_fatal(call, why, p);
	unsigned c = rt_load(&pg->cls);
	/* a huge block: its pages (rt_buddy_alloc_pages), in its head */
	return c == RT_CLS_HUGE ? (size_t)pg->next << RT_PAGE_SHIFT : rt_class_size(c);
}

void rt_tcache_free(struct rt_tcache *tc, void *ptr, struct rt_page *pg, const char *call)
{
	size_t size = rt_tcache_block_size(ptr, pg, call);
	tc->st.slow_frees++;
	tc->st.frees++;
	tc->st.bytes_freed += size;
	tc->st.sect_slow += tc->in_section;
	if (size <= RT_CACHE_MAX)
		tc->bin[rt_class_of(size)].slow_back++; /* the profile's count of what came back */
	if (rt_load(&pg->cls) == RT_CLS_HUGE) {
		rt_probe1(large_free, size);
		rt_arena_huge_free(ptr, pg);
		rt_profile_large(-1);
		return;
	}
	unsigned c = rt_class_of(size);
	void **p = ptr;
	bool direct = rt_unlikely(tc->heap) ||
		      (tc->state != RT_TC_LIVE && thread_setup(tc) == 0 && tc->state == RT_TC_DEAD);
	if (!direct && c > RT_NMED && !tc->big_taken)
		big_take(tc); /* the thread's first large block */
	if (direct || tc->bin[c].limit == 0) {
		/* a thread bound to a heap, dead, or not caching this class */
		rt_link_set(p, NULL);
		rt_stamp_set(p, RT_STAMP_CACHED);
		rt_arena_flush(c, p, 1);
		return;
	}
	struct rt_bin *bin = &tc->bin[c];
	if (bin->count >= bin->limit) {
		/* Flush the newest batch; the list keeps count - batch blocks.
		 * The walk only decodes links (arena.c validates each block it
		 * takes back); a link out of the space is never followed. */
		unsigned n = batch_of(bin);
		void **cut = bin->head;
		for (unsigned i = 1; i < n; i++) { /* bound: RT_BATCH_MAX links */
			cut = rt_link_get(cut);
			if (rt_unlikely(!rt_page_of(cut)))
				rt_fatal(call, "heap corruption (use after free or overflow?): a thread's "
					       "free list leads out of the pool:", cut);
		}
		void *flushed = bin->head;
		bin->head = rt_link_get(cut);
		if (!xfer_ok(bin, c) || !xfer_put(c, flushed, cut))
			rt_arena_flush(c, flushed, n);
		bin->count -= n;
		tc->st.flushes++;
		rt_probe2(flush, c, n);
		rt_tcache_publish(tc, c);
	}
	rt_link_set(p, bin->head);
	rt_stamp_set(p, RT_STAMP_CACHED);
	bin->head = p;
	bin->count++;
}

/* Another thread's fast paths increment these counters with plain adds while
 * a reader (rtalloc_stats) may read them: each is read once, as a whole
 * aligned word (never torn), so a reader sees every counter as of some
 * moment, and counters only grow.  Not atomics (the fast paths would pay for
 * them): hence uninstrumented under TSan, which instruments even relaxed
 * atomic loads.  About 250 instructions: readers only, never on an
 * allocation path (those fold, below). */
#define RT_READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))

RT_NO_TSAN void rt_tcache_counters(const struct rt_tcache *tc, struct rt_tcounters *out)
{
#define RT_X_LOAD(name, key, text) out->name = RT_READ_ONCE(tc->st.name);
	RT_TCOUNTERS(RT_X_LOAD)
	RT_TMAXIMA(RT_X_LOAD)
#undef RT_X_LOAD
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS bins */
		uint64_t allocs = RT_READ_ONCE(tc->bin[c].allocs);
		uint64_t frees = RT_READ_ONCE(tc->bin[c].frees);
		out->mallocs += allocs;
		out->frees += frees;
		out->bytes_allocated += allocs * rt_class_size(c);
		out->bytes_freed += frees * rt_class_size(c);
	}
}

static inline void fold_class(struct rt_tcache *tc, unsigned c)
{
	struct rt_bin *b = &tc->bin[c];
	uint64_t da = b->allocs - b->folded_allocs, df = b->frees - b->folded_frees;
	b->folded_allocs = b->allocs;
	b->folded_frees = b->frees;
	tc->fold.mallocs += da;
	tc->fold.frees += df;
	tc->fold.bytes_allocated += da * rt_class_size(c);
	tc->fold.bytes_freed += df * rt_class_size(c);
}

/* Invariant (per class c): tc->fold holds bin[c].folded_* counts, and
 * folded_* <= the bin's counts.  A slow path folds its own class (the one
 * that moved most) and the next in turn: every class is at most RT_NCLASS
 * slow paths behind in the slot; rtalloc_stats() reads them exactly anyway.
 * The one place the bins are folded (c = 0: every class). */
static void fold(struct rt_tcache *tc, unsigned c)
{
	if (c == 0 || c > RT_NCLASS) {
		for (unsigned k = 1; k <= RT_NCLASS; k++) /* bound: RT_NCLASS */
			fold_class(tc, k);
		return;
	}
	fold_class(tc, c);
	unsigned next = tc->fold_next >= 1 && tc->fold_next <= RT_NCLASS ? tc->fold_next : 1;
	if (next != c)
		fold_class(tc, next);
	tc->fold_next = (uint8_t)(next % RT_NCLASS + 1);
}

/* The thread's counters to its statistics slot, in one direction: fold the
 * bins (class c and one more, or all), then hand st + fold to stats.c, which
 * only writes the slot.  Called by the owner thread only. */
void rt_tcache_publish(struct rt_tcache *tc, unsigned c)
{
	if (!tc->slot)
		return;
	fold(tc, c);
	rt_stats_publish_thread(tc);
}

/* ---- real-time sections: counted here, with the thread's other counters;
 * the fault counts come from stats.c (tcache.c makes no system call). ---- */

void rt_tcache_section_begin(void)
{
	struct rt_tcache *tc = &rt_tc;
	if (rt_tcache_setup() != 0 || tc->in_section)
		return;
	rt_faults_thread_open(); /* RTALLOC_FAULTS=locate, once per thread */
	rt_stats_thread_faults(&tc->sect_minflt_at, &tc->sect_majflt_at);
	tc->sect_lock_waits_at = rt_lock_waits.waits; /* lock.c's count now, */
	rt_lock_waits.recent_max_ns = 0;          /* and its longest from now on */
	tc->in_section = 1;
	rt_probe1(rt_begin, tc->st.sections + 1);
	rt_tcache_publish(tc, 0);
	rt_faults_section_begin();
}

void rt_tcache_section_end(void)
{
	struct rt_tcache *tc = &rt_tc;
	if (!tc->in_section)
		return;
	uint64_t minflt, majflt;
	rt_stats_thread_faults(&minflt, &majflt);
	rt_faults_section_end(minflt - tc->sect_minflt_at + majflt - tc->sect_majflt_at);
	tc->st.sect_minflt += minflt - tc->sect_minflt_at;
	tc->st.sect_majflt += majflt - tc->sect_majflt_at;
	tc->st.sections++;
	tc->st.sect_lock_waits += rt_lock_waits.waits - tc->sect_lock_waits_at;
	if (rt_lock_waits.recent_max_ns > tc->st.sect_lock_wait_max_ns)
		tc->st.sect_lock_wait_max_ns = rt_lock_waits.recent_max_ns;
	rt_probe2(rt_end, tc->st.sections, minflt - tc->sect_minflt_at);
	tc->in_section = 0;
	rt_tcache_publish(tc, 0);
	if (tc->peak_dirty)
		rt_profile_publish(tc); /* a refill in the section raised a peak */
}

const char *rt_tcache_check(void)
{
	const struct rt_tcache *tc = &rt_tc;
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS lists */
		const struct rt_bin *bin = &tc->bin[c];
		void **b = bin->head;
		for (uint32_t i = 0; i < bin->count; i++) { /* bound: the list's limit */
			const struct rt_page *pg = rt_page_of(b);
			if (!pg)
				return "thread cache: a list leads out of the pool (T1)";
			if (rt_block_why(pg, b, c, RT_STAMP_CACHED))
				return "thread cache: a listed block is no free block of its class, or lost "
				       "its free stamp (use after free?) (T1)";
			b = rt_link_get(b);
		}
		if (b != NULL)
			return "thread cache: a list does not end where its count says (T1)";
	}
	return NULL;
}


/* Raise class c's limit to want blocks: the bytes beyond the thread's
 * share come from the cache budget (all or nothing), given back with its
 * quota at exit.  rt_tcache_restore_limits (after a reclaim, or fork) sets
 * the budget's limits again. */
static void limit_raise(struct rt_tcache *tc, unsigned c, uint32_t want)
{
	struct rt_bin *bin = &tc->bin[c];
	if (want <= bin->limit)
		return;
	size_t extra = (size_t)(want - bin->limit) * rt_class_size(c);
	/* the profile's reserve first, then the budget */
	size_t used = __atomic_load_n(&profile_used, __ATOMIC_RELAXED);
	for (int tries = 0; tries < 64; tries++) /* bound: 64 attempts */
		if (used + extra <= rt_profile_cache_extra &&
		    __atomic_compare_exchange_n(&profile_used, &used, used + extra, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			tc->profile_quota += extra;
			bin->limit = want;
			return;
		}
	used = __atomic_load_n(&cache_used, __ATOMIC_RELAXED);
	for (int tries = 0; tries < 64; tries++) { /* bound: 64 attempts, then not raised */
		if (used + extra > cache_budget())
			return;
		if (__atomic_compare_exchange_n(&cache_used, &used, used + extra, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			if (c <= RT_NMED)
				tc->quota += extra;
			else
				tc->big_quota += extra;
			bin->limit = want;
			return;
		}
	}
}

/* Fill the lists to the thread's recorded peaks (RTALLOC_PROFILE): its
 * limits raised, then refills of at most RT_BATCH_MAX blocks each.  What it
 * filled counts as its peaks, so a run with the profile records them again. */
static void profile_fill(struct rt_tcache *tc, const uint32_t want[RT_NCLASS + 1])
{
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		struct rt_bin *bin = &tc->bin[c];
		limit_raise(tc, c, want[c]);
		uint32_t target = want[c] < bin->limit ? want[c] : bin->limit;
		/* bound: RT_PROFILE_BLOCKS_MAX refills (each at least one block) */
		for (unsigned i = 0; bin->count < target && i < RT_PROFILE_BLOCKS_MAX; i++) {
			unsigned ask = target - bin->count < RT_BATCH_MAX ? target - bin->count : RT_BATCH_MAX;
			void *head;
			unsigned got = refill(tc, c, ask, &head);
			if (!got)
				break;
			void **last = head;
			for (unsigned k = 1; k < got; k++) /* bound: RT_BATCH_MAX */
				last = rt_link_get(last);
			rt_link_set(last, bin->head);
			bin->head = head;
			bin->count += got;
		}
		if (want[c] && bin->count > tc->peak[c]) {
			tc->peak[c] = bin->count;
			tc->peak_dirty = 1;
		}
	}
}

int rt_tcache_prepare(void)
{
	struct rt_tcache *tc = &rt_tc;
	if (thread_setup(tc) != 0)
		return ENOMEM;
	if (tc->state != RT_TC_LIVE || tc->heap) /* a heap's thread caches nothing */
		return 0;
	big_take(tc); /* a real-time thread takes its share before its loop */
	/* Half-fill every list (a large class: at least one block): the loop's
	 * first mallocs and frees of any class then stay on the fast path. */
	for (unsigned c = 1; c <= RT_NCLASS; c++) { /* bound: RT_NCLASS */
		struct rt_bin *bin = &tc->bin[c];
		unsigned want = c > RT_NMED ? (bin->limit + 1) / 2 : bin->limit / 2;
		if (bin->count >= want)
			continue;
		void *head;
		unsigned got = refill(tc, c, want - bin->count, &head);
		if (!got)
			return ENOMEM;
		void **last = head;
		for (unsigned i = 1; i < got; i++) /* bound: RT_BATCH_MAX */
			last = rt_link_get(last);
		rt_link_set(last, bin->head);
		bin->head = head;
		bin->count += got;
	}
	uint32_t want[RT_NCLASS + 1];
	if (rt_profile_wanted(want)) /* the thread's name is in RTALLOC_PROFILE */
		profile_fill(tc, want);
	if (tc->peak_dirty)
		rt_profile_publish(tc);
	return 0;
}
