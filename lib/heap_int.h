/* SPDX-License-Identifier: MIT */
/*
 * heap_int.h - what the files of heaps share: heap.c (heaps, their blocks,
 * waiters, the registry, fork) and heap_shm.c (named shared heaps: bind,
 * the checks of an object another process made, its processes).  The
 * layout of a heap and the synchronization rules are described in heap.c.
 */
#ifndef RT_HEAP_INT_H
#define RT_HEAP_INT_H

#include <errno.h>
#include <string.h>

#include "glue.h"
#include "heap.h"

#define HEAP_MAGIC 0x3150414548545228ULL /* "(RTHEAP1" */
#define HEAP_VERSION 3 /* 2: fig; 3: waiter records' alive locks, guard page */
#define NREG RTALLOC_HEAP_REGIONS
#define NWAIT RTALLOC_HEAP_WAITERS
#define NPROC RTALLOC_HEAP_PROCS
#define SHM_PREFIX RT_HEAP_SHM_PREFIX
#define KNOWN_FLAGS (RTALLOC_HEAP_SHARED | RTALLOC_HEAP_PRIO | RTALLOC_HEAP_GROW | RTALLOC_HEAP_SHARED_GROUP)

enum { W_FREE = 0, W_WAITING, W_GRANTED, W_CANCELLED };

struct rt_heap_waiter {
	uint32_t futex;  /* 0 while waiting, 1 once served or cancelled */
	uint32_t state;  /* W_* */
	int32_t prio;    /* scheduling priority when the wait began */
	int32_t pid;     /* its process */
	uint64_t ticket; /* arrival order */
	uint64_t size;   /* bytes wanted */
	uint64_t result; /* W_GRANTED: the block, as a heap offset */
	/* Held by the waiting thread while the record is not W_FREE: robust,
	 * so when the thread dies the kernel clears the holder in its word
	 * (FUTEX_OWNER_DIED).  Whether a waiter lives is one load, no system
	 * call (waiter_dead). */
	pthread_mutex_t alive;
};

struct rt_heap_region {
	uint64_t base_off; /* this region's base: heap offset (offset/ptr) */
	uint64_t bytes;    /* its size as given */
	uint64_t data_off; /* its first data page, from its base */
	struct rt_buddy buddy;
};

struct rt_heap_hdr {
	uint64_t magic; /* HEAP_MAGIC once complete */
	uint32_t version, flags;
	struct rt_stats_heap fig; /* shared: the figures for rtalloc-stat (RT_HEAP_FIG_OFFSET) */
	char name[RTALLOC_HEAP_NAME_MAX + 8];
	uint64_t key;       /* stamp in word 1 of a free small block */
	uint64_t desc_off;  /* descriptors: offset from region 0's base */
	uint64_t map_bytes; /* shared: bytes of the object */
	uint64_t map_align; /* shared: data start aligned to this in every process */
	uint32_t nregions, npages;
	uint32_t dead;  /* destroyed */
	uint32_t dirty; /* a lock holder is working */
	pthread_mutex_t lock;
	uint64_t small_free; /* bytes of free small blocks in small pages */
	uint64_t min_free;   /* lowest free ever */
	uint64_t live;       /* blocks handed out */
	uint64_t ticket;
	uint32_t nwaiters, recoveries;
	uint32_t partial[RT_NSMALL + 1];
	struct rt_heap_region reg[NREG];
	struct rt_heap_waiter w[NWAIT];
	int32_t procs[NPROC]; /* shared: pids of the creator and bound processes, 0 free */
};

_Static_assert(offsetof(struct rt_heap_hdr, fig) == RT_HEAP_FIG_OFFSET, "rtalloc-stat finds fig there");
_Static_assert(RT_STATS_HEAP_SHARED == RTALLOC_HEAP_SHARED && RT_STATS_HEAP_PRIO == RTALLOC_HEAP_PRIO &&
		       RT_STATS_HEAP_GROW == RTALLOC_HEAP_GROW,
	       "rtalloc-stat reads the heap flags");

/* A process's handle: a slot of the registry. */
struct rtalloc_heap {
	uint32_t active;  /* published: lookups may match it */
	int32_t users;    /* threads inside alloc_timed */
	struct rt_heap_hdr *hdr;
	struct rt_page *desc;
	unsigned nregions;
	bool shared, own_map;
	uintptr_t rbase[NREG], rsize[NREG]; /* regions as given (lookup, offsets) */
	uintptr_t data[NREG], dend[NREG];   /* their data pages */
	uint32_t first[NREG];
	void *map;
	size_t map_len;
	void *grown[NREG]; /* RTALLOC_HEAP_GROW: regions 1.. mapped at growth */
	size_t grown_len[NREG];
	/* A shared heap: the buddy of its one region as this process uses it.
	 * Its geometry (pages, first, skew, committed, limit, top_order) was
	 * checked at bind and never comes from shared memory again; its lists
	 * (head, nonempty, free_pages, min_free_pages) are copied in from the
	 * header, checked, when the lock is taken and back when it is
	 * released (bud_in, bud_out).  A peer that rewrites the header cannot
	 * make this process index outside the mapping. */
	struct rt_buddy bud;
	uint32_t npages; /* all regions' pages (shared: checked at bind) */
};

/* ---- small helpers ---------------------------------------------------------- */

#define HDR_BYTES rt_page_round(sizeof(struct rt_heap_hdr))

static inline rtalloc_heap_t *fail(int e)
{
	errno = e;
	return NULL;
}

static inline uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

static inline bool ts_ok(const struct timespec *ts)
{
	return !ts || (ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L);
}

/* ---- heap.c ----------------------------------------------------------------- */

extern pthread_mutex_t rt_heap_reg_lock RT_HIDDEN; /* the registry's (PTHREAD_PRIO_INHERIT) */
extern int rt_heap_pid RT_HIDDEN;                  /* getpid(), cached */
RT_HIDDEN void rt_heap_registry_init(void);        /* before rt_heap_reg_lock is used */
RT_HIDDEN bool rt_heap_name_ok(const char *name);
/* Registry slots, under rt_heap_reg_lock. */
RT_HIDDEN struct rtalloc_heap *rt_heap_slot_claim(void);
RT_HIDDEN void rt_heap_slot_publish(struct rtalloc_heap *h);
RT_HIDDEN void rt_heap_slot_release(struct rtalloc_heap *h);
/* The handle of header H, geometry from G (see heap.c). */
RT_HIDDEN void rt_heap_handle_fill(struct rtalloc_heap *h, const struct rt_heap_hdr *G, struct rt_heap_hdr *H,
				   uintptr_t const rbase[]);
RT_HIDDEN int rt_heap_lock(struct rtalloc_heap *h); /* 0 or EIDRM */
RT_HIDDEN void rt_heap_unlock(struct rtalloc_heap *h);
RT_HIDDEN void rt_heap_publish(struct rtalloc_heap *h); /* lock held: figures for rtalloc-stat */
RT_HIDDEN int rt_heap_lock_init(pthread_mutex_t *m, bool shared);
RT_HIDDEN bool rt_heap_bud_lists_ok(const struct rt_buddy *S, uint32_t npages, unsigned top);
/* Layout of a heap rtalloc_heap_create maps. */
RT_HIDDEN size_t rt_heap_data_offset(size_t pages, size_t reserve);
RT_HIDDEN size_t rt_heap_region_align(size_t len);
RT_HIDDEN int rt_heap_guard_page(void *map, size_t data_off);
RT_HIDDEN int rt_heap_prepare_memory(void *p, size_t len);
RT_HIDDEN bool rt_heap_pid_alive(int pid); /* kill(pid, 0), counted for the tests */

/* ---- heap_shm.c ------------------------------------------------------------- */

RT_HIDDEN void rt_heap_shm_path(char *buf, const char *name); /* "/rtalloc-heap-<name>" */
/* Lock held: record (pid > 0) or forget (-pid) a process; 0 or EAGAIN. */
RT_HIDDEN int rt_heap_procs_update(struct rt_heap_hdr *H, int pid);
/* The name exists: true when it was a stale heap's and is free now. */
RT_HIDDEN bool rt_heap_reclaim_stale(const char *path, const char *name);

#endif /* RT_HEAP_INT_H */
