/* SPDX-License-Identifier: MIT */
/*
 * heap_int.h - what the heap files share: the layout of a heap's header
 * and of a process's handle, and the functions each file offers the
 * others.  Which file does what, the bounds and the synchronization table
 * are at the top of heap.c; the layout of a heap's memory at the top of
 * heap_block.c.
 */
#ifndef RT_HEAP_INT_H
#define RT_HEAP_INT_H

#include <errno.h>
#include <string.h>

#include "os.h"
#include "heap.h"
#include "stats.h"

#define HEAP_MAGIC 0x3150414548545228ULL /* "(RTHEAP1" */
#define HEAP_VERSION 4 /* 2: fig; 3: waiter records' alive locks, guard page; 4: RT_CLS_HUGE is 18 (classes to 1 MiB) */
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

static inline size_t rt_heap_data_bytes(const struct rt_heap_hdr *H)
{
	return (size_t)H->npages << RT_PAGE_SHIFT;
}

/* Tests: what this thread's heap calls asked of the kernel (heap_debug.c
 * reads them): FUTEX_WAKEs, kill(pid, 0) probes, heap locks held now,
 * priority reads and those made holding a heap lock. */
struct rt_heap_counts {
	unsigned wakes, probes, locked, prio_reads, prio_locked;
};
extern __thread struct rt_heap_counts rt_heap_counts __attribute__((tls_model("initial-exec"))) RT_HIDDEN;

/* ---- heap.c: the API, the registry, fork, figures, growth ----------------- */

extern pthread_mutex_t rt_heap_reg_lock RT_HIDDEN; /* the registry's (PTHREAD_PRIO_INHERIT) */
extern int rt_heap_pid RT_HIDDEN;                  /* getpid(), cached */
RT_HIDDEN void rt_heap_registry_init(void);        /* before rt_heap_reg_lock is used */
RT_HIDDEN bool rt_heap_name_ok(const char *name);
RT_HIDDEN bool rt_heap_valid(const rtalloc_heap_t *h); /* a published slot of the registry */
/* Registry slots, under rt_heap_reg_lock. */
RT_HIDDEN struct rtalloc_heap *rt_heap_slot_claim(void);
RT_HIDDEN void rt_heap_slot_publish(struct rtalloc_heap *h);
RT_HIDDEN void rt_heap_slot_release(struct rtalloc_heap *h);
RT_HIDDEN void rt_heap_publish(struct rtalloc_heap *h); /* lock held: figures for rtalloc-stat */
/* Lock held: a block of n bytes, growing the heap (RTALLOC_HEAP_GROW) when
 * it is full; NULL when there is no room. */
RT_HIDDEN void *rt_heap_alloc_or_grow(struct rtalloc_heap *h, size_t n);
RT_HIDDEN int rt_heap_guard_page(void *map, size_t data_off);
RT_HIDDEN int rt_heap_prepare_memory(void *p, size_t len);

/* ---- heap_block.c: the blocks, the lock, recovery ------------------------- */

RT_HIDDEN int rt_heap_lock(struct rtalloc_heap *h); /* 0 or EIDRM */
RT_HIDDEN void rt_heap_unlock(struct rtalloc_heap *h);
RT_HIDDEN int rt_heap_lock_init(pthread_mutex_t *m, bool shared);
RT_HIDDEN bool rt_heap_bud_lists_ok(const struct rt_buddy *S, uint32_t npages, unsigned top);
/* Shared memory said something impossible: a peer corrupted the heap. */
RT_HIDDEN RT_NORETURN RT_COLD void rt_heap_corrupt(const char *what, const void *where);
/* Lock held. */
RT_HIDDEN void *rt_heap_block_alloc(struct rtalloc_heap *h, size_t n); /* NULL when full */
RT_HIDDEN void rt_heap_block_free(struct rtalloc_heap *h, void *p, const char *call);
/* The descriptor of live block p, its size and region; fatal naming call. */
RT_HIDDEN struct rt_page *rt_heap_block_live(struct rtalloc_heap *h, const void *p, const char *call, size_t *size,
					     unsigned *region);
RT_HIDDEN uint32_t rt_heap_pages_alloc(struct rtalloc_heap *h, unsigned order); /* a page index or RT_NIL */
RT_HIDDEN size_t rt_heap_free_bytes(const struct rtalloc_heap *h);
RT_HIDDEN size_t rt_heap_largest_free(const struct rtalloc_heap *h);
RT_HIDDEN const char *rt_heap_blocks_check(struct rtalloc_heap *h); /* NULL when sound */
/* Heap offsets: RTALLOC_HEAP_BAD_OFFSET, NULL when outside the heap. */
RT_HIDDEN size_t rt_heap_offset_of(const struct rtalloc_heap *h, const void *p);
RT_HIDDEN void *rt_heap_ptr_of(const struct rtalloc_heap *h, size_t off);
/* Setting a heap up: format n regions (0 or EINVAL), the handle of header
 * H with geometry from G (H itself, or bind's checked copy). */
RT_HIDDEN int rt_heap_format(struct rtalloc_heap *h, const char *name, unsigned flags, uintptr_t const base[],
			     size_t const size[], unsigned n, size_t reserve, bool guard);
RT_HIDDEN void rt_heap_handle_fill(struct rtalloc_heap *h, const struct rt_heap_hdr *G, struct rt_heap_hdr *H,
				   uintptr_t const rbase[]);
/* Layout of a heap rtalloc_heap_create maps. */
RT_HIDDEN size_t rt_heap_data_offset(size_t pages, size_t reserve);
RT_HIDDEN size_t rt_heap_region_align(size_t len);

/* ---- heap_wait.c: waiters ------------------------------------------------- */

/* Lock held. */
RT_HIDDEN void rt_heap_serve_waiters(struct rtalloc_heap *h); /* a free: the first in line */
RT_HIDDEN void rt_heap_waiters_recover(struct rt_heap_hdr *H); /* recovery: drop the dead */
RT_HIDDEN void rt_heap_waiters_cancel(struct rtalloc_heap *h); /* destroy: all leave, EIDRM */
/* A forked child, lock made anew (not held): drop the parent's waiters. */
RT_HIDDEN void rt_heap_waiters_forget(struct rtalloc_heap *h);

/* ---- heap_shm.c: named shared heaps --------------------------------------- */

/* Registry lock held: a new shared heap's object (fd, or -1 and *e). */
RT_HIDDEN int rt_heap_shm_create(char *path, const char *name, unsigned flags, size_t len, int *e);
RT_HIDDEN void rt_heap_shm_unlink(const char *name);

#endif /* RT_HEAP_INT_H */
