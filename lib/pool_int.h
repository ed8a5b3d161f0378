/* SPDX-License-Identifier: MIT */
/*
 * pool_int.h - what the pool's files share, and only they include: the
 * arithmetic of the layout, the reserved tails, and the functions each file
 * offers the others (init.c among them).  The layout of an OS pool is at
 * the top of pool.c, the order of initialisation at the top of init.c; what
 * the rest of the library calls is in rt.h's pool.c section (and its
 * privilege-change hooks).
 */
#ifndef RT_POOL_INT_H
#define RT_POOL_INT_H

#include <errno.h>
#include <sys/mman.h> /* PROT_*, MCL_* */

#include "glue.h"
#include "os.h"
#include "stats.h" /* pool.c sets the region's pool_max */


/* The slot of an arena (pages, a power of two) for a maximum of max bytes
 * over n arenas.  pool.c (setting the pool up), limits.c (what fits). */
static inline size_t rt_pool_slot_pages(size_t max, unsigned n)
{
	size_t pages = rt_page_round(max / n) >> RT_PAGE_SHIFT;
	return pages <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(pages - 1));
}

/* Descriptor bytes for a space of span bytes (the descriptors' mapping).
 * pool.c, limits.c. */
static inline size_t rt_pool_desc_bytes(size_t span)
{
	return rt_page_round((span >> RT_PAGE_SHIFT) * sizeof(struct rt_page));
}

/* ---- pool.c: the layout, for mlock.c and fork.c --------------------------- */

/* A part of the reservation: reserved but not committed (rt_pool_tails), or
 * committed (rt_pool_parts), with the protection it is mapped with. */
struct rt_pool_tail {
	char *p;
	size_t len;
	int prot;
};
#define RT_POOL_TAILS (2 * RT_MAX_ARENAS + 1)

/* The tails (at most RT_POOL_TAILS) of an OS pool, in t; their number.
 * mlock.c leaves them out of the locking. */
RT_HIDDEN unsigned rt_pool_tails(struct rt_pool_tail *t);
/* The committed parts (pages and descriptors, at most RT_POOL_TAILS) of an
 * OS pool, in t; their number.  mlock.c locks them (RTALLOC_MLOCK=pool). */
RT_HIDDEN unsigned rt_pool_parts(struct rt_pool_tail *t);
/* Another mapping took part of the tails while they were unmapped (mlock.c):
 * no arena grows beyond what it has committed, no later rtalloc_init beyond
 * the reservation. */
RT_HIDDEN void rt_pool_stop_growth(void);
/* Make the growth lock anew: fork.c, in the child of fork. */
RT_HIDDEN void rt_pool_grow_lock_init(void);

/* ---- limits.c: what the machine can give, for pool.c and mlock.c ---------- */

/* Fit the pool's options to the memory and limits there are, before anything
 * is reserved: 0 or ENOMEM (pool.c, rt_init). */
RT_HIDDEN int rt_pool_fit(const struct rtalloc_config *cfg, unsigned n);
/* Address space to reserve after a space of span bytes over n arenas, for a
 * later rtalloc_init (pool.c, setting the pool up). */
RT_HIDDEN size_t rt_pool_growth_room(size_t span, unsigned n);
/* Can a later rtalloc_init grow the pool to size bytes (pool.c)? */
RT_HIDDEN bool rt_pool_growth_fits(size_t size);
/* KiB of a "Key:   123 kB" field of /proc/self/status; 0 if unknown (mlock.c). */
RT_HIDDEN size_t rt_pool_status_kib(const char *key);

/* ---- mlock.c: locking the process, for pool.c and fork.c ------------------ */

/* mlockall per policy (RTALLOC_MLOCK_*): 0, or EPERM when it is required and
 * failed.  init.c (rt_init, reconfigure), fork.c (the child's relock). */
RT_HIDDEN int rt_pool_lock_memory(int mode);

/* pool.c, for init.c: the pool's part of initialisation and of a later
 * rtalloc_init(). */
RT_HIDDEN int rt_pool_setup(const struct rtalloc_config *cfg, bool *retry);
RT_HIDDEN void rt_pool_setup_done(void);
RT_HIDDEN int rt_pool_grow_to(size_t size);

#endif
