/* SPDX-License-Identifier: MIT */
/*
 * rtalloc.h - the public interface of librtalloc, a memory allocator for
 * real-time Linux programs.
 *
 * librtalloc replaces the malloc family (and C++ operator new/delete) with an
 * allocator that reserves its pool at start-up, pre-faults and locks it, and
 * afterwards serves every request without a system call or a page fault, in
 * bounded time.  Two ways to use it:
 *
 *   LD_PRELOAD=librtalloc.so prog        configured by RTALLOC_* variables
 *   cc prog.c -lrtalloc                  plus rtalloc_init() for explicit control
 *
 * This is the only public header.  Everything here is prefixed rtalloc_ /
 * RTALLOC_.  See rtalloc(3) and README.md for the configuration table.
 */
#ifndef RTALLOC_H
#define RTALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RTALLOC_VERSION_MAJOR 0
#define RTALLOC_VERSION_MINOR 1
#define RTALLOC_VERSION_PATCH 0
#define RTALLOC_VERSION_STRING "0.1.0"
/* One number that compares: 0x00MMmmpp. */
#define RTALLOC_VERSION                                                   \
	((RTALLOC_VERSION_MAJOR << 16) | (RTALLOC_VERSION_MINOR << 8) |       \
	 RTALLOC_VERSION_PATCH)

/* The version of the library actually loaded (RTALLOC_VERSION's encoding). */
unsigned rtalloc_version(void);

/* ------------------------------------------------------------------------
 * Configuration
 *
 * A zero field means "not set": the environment variable of the same name is
 * used, and if that is unset (or does not parse) the default.  Explicit
 * fields win over the environment.
 * ------------------------------------------------------------------------ */

enum rtalloc_mlock {
	RTALLOC_MLOCK_UNSET = 0,
	RTALLOC_MLOCK_OFF,     /* RTALLOC_MLOCK=0: never lock memory */
	RTALLOC_MLOCK_TRY,     /* RTALLOC_MLOCK=1 (default): lock, warn once on failure */
	RTALLOC_MLOCK_REQUIRE, /* RTALLOC_MLOCK=require: failure is fatal */
	RTALLOC_MLOCK_ONFAULT, /* RTALLOC_MLOCK=onfault: the pool locked, the rest when touched */
	RTALLOC_MLOCK_POOL,    /* RTALLOC_MLOCK=pool: the pool only, no other mapping */
};

enum rtalloc_exhaust {
	RTALLOC_EXHAUST_UNSET = 0,
	RTALLOC_EXHAUST_GROW,  /* default: add a pre-faulted, locked region */
	RTALLOC_EXHAUST_FAIL,  /* return NULL with errno ENOMEM */
	RTALLOC_EXHAUST_ABORT, /* print a message and abort() */
};

enum rtalloc_numa {
	RTALLOC_NUMA_UNSET = 0,
	RTALLOC_NUMA_LOCAL,      /* default: one arena per node, threads use their node's */
	RTALLOC_NUMA_INTERLEAVE, /* one arena, pages interleaved over all nodes */
	RTALLOC_NUMA_OFF,        /* one arena, no memory policy applied */
};

/* Stack pre-fault of 0 bytes, explicitly (0 in the field means "not set"). */
#define RTALLOC_STACK_PREFAULT_NONE ((size_t)-1)

struct rtalloc_config {
	size_t size;           /* sizeof(struct rtalloc_config); 0 is taken as this version's */
	size_t pool_size;      /* RTALLOC_POOL_SIZE: bytes pre-faulted at start-up (64M) */
	size_t pool_max;       /* RTALLOC_POOL_MAX: limit of growth, address space reserved */
	size_t stack_prefault; /* RTALLOC_STACK_PREFAULT: stack bytes pre-faulted (128K) */
	int mlock;             /* enum rtalloc_mlock */
	int on_exhaust;        /* enum rtalloc_exhaust */
	int numa;              /* enum rtalloc_numa */
	int reserved0;
	/* Serve the pool from memory the caller owns (a static array, a huge page
	 * mapping...): librtalloc makes no system call on it and never grows it.
	 * Only honoured by the first initialisation. */
	void *memory;
	size_t memory_size;
};

/*
 * Initialise (or re-configure) the allocator.  NULL means environment and
 * defaults.  The pool is normally set up before main() already (the library's
 * constructor, or the first allocation); a later call applies what can change
 * on a live pool: a larger pool_size grows the pool to that size, mlock and
 * on_exhaust take effect, and the calling thread's stack is pre-faulted.  A
 * smaller pool_size, pool_max, numa and memory cannot change after the first
 * initialisation and are ignored.
 * Returns 0, or an errno value: ENOMEM (pool could not be set up), EPERM
 * (mlock required and failed), EINVAL (bad config).
 */
int rtalloc_init(const struct rtalloc_config *config);

/*
 * Prepare the calling thread for its real-time loop: fill its caches so that
 * its first allocations take no slow path, and pre-fault stack_prefault bytes
 * of its stack (and, with RTALLOC_FAULTS=locate, open the thread's perf
 * event).  Call it from the thread, before the loop.  Returns 0 or ENOMEM.
 */
int rtalloc_thread_prepare(void);

/*
 * Walk every arena and verify every invariant of the buddy allocator and the
 * size classes.  Returns 0 when the heap is sound; otherwise prints one line
 * naming the first broken invariant on stderr and returns -1.
 * Takes each arena's lock in turn: not for a real-time loop.
 */
int rtalloc_check(void);

/* ------------------------------------------------------------------------
 * The malloc family under its own names, for code that wants librtalloc by
 * name whatever else is interposed.  Semantics are glibc's (see README).
 * ------------------------------------------------------------------------ */
void *rtalloc_malloc(size_t size);
void rtalloc_free(void *ptr);
void *rtalloc_calloc(size_t nmemb, size_t size);
void *rtalloc_realloc(void *ptr, size_t size);
void *rtalloc_reallocarray(void *ptr, size_t nmemb, size_t size);
int rtalloc_posix_memalign(void **memptr, size_t alignment, size_t size);
void *rtalloc_aligned_alloc(size_t alignment, size_t size);
void *rtalloc_memalign(size_t alignment, size_t size);
void *rtalloc_valloc(size_t size);
void *rtalloc_pvalloc(size_t size);
size_t rtalloc_malloc_usable_size(void *ptr);
void rtalloc_free_sized(void *ptr, size_t size);
void rtalloc_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* ------------------------------------------------------------------------
 * Statistics (see rtalloc-stat(1) for the same figures from outside)
 * ------------------------------------------------------------------------ */

#define RTALLOC_STATS_VERSION 3 /* 2: bytes_allocated, bytes_freed; 3: lock waits */
#define RTALLOC_STATS_CLASSES 14 /* [0] unused, [1..12] 16 B .. 32 KiB, [13] above 32 KiB */
#define RTALLOC_STATS_ARENAS 8

struct rtalloc_stats {
	uint32_t size;    /* in: sizeof(struct rtalloc_stats) as the caller knows it;
			     out: the bytes filled in */
	uint32_t version; /* out: RTALLOC_STATS_VERSION */
	/* the pool */
	uint64_t pool_bytes;       /* pre-faulted (and locked) now, over all arenas */
	uint64_t pool_max_bytes;   /* what it may grow to */
	uint64_t free_bytes;       /* in the page allocator */
	uint64_t in_use_bytes;     /* pool_bytes - free_bytes: blocks, caches, partial pages */
	uint64_t min_free_bytes;   /* lowest free_bytes ever (FreeRTOS's "minimum ever free") */
	uint64_t high_water_bytes; /* pool_bytes - min_free_bytes */
	/* non-real-time events; times are CLOCK_MONOTONIC nanoseconds */
	uint64_t grows, last_grow_ns;
	uint64_t failed_allocs, last_failure_ns;
	uint64_t foreign_frees; /* frees of pointers librtalloc did not hand out (ignored) */
	/* thread counters, summed over live threads (read live) and exited ones */
	uint64_t mallocs, frees, slow_mallocs, slow_frees, refills, flushes;
	uint64_t rt_sections, rt_minflt, rt_majflt, rt_slow;
	/* the process's page faults since initialisation ended */
	uint64_t minflt_since_init, majflt_since_init;
	uint64_t init_ns, init_duration_ns;
	uint32_t threads; /* live threads that have allocated */
	uint32_t narenas;
	uint32_t locked;   /* mlockall succeeded */
	uint32_t exported; /* rtalloc-stat can read this process */
	/* per class: small classes (16 B .. 2 KiB) count pages, larger ones blocks */
	uint64_t class_units[RTALLOC_STATS_CLASSES];
	uint64_t arena_pool_bytes[RTALLOC_STATS_ARENAS], arena_free_bytes[RTALLOC_STATS_ARENAS];
	int32_t arena_node[RTALLOC_STATS_ARENAS]; /* NUMA node, -1 when not bound */
	/* version 2: bytes of the blocks allocated and freed (their usable
	 * sizes, so in use by the program = bytes_allocated - bytes_freed) */
	uint64_t bytes_allocated, bytes_freed;
	/* version 3: waits for an arena's or a heap's lock (taken only after
	 * waiting for its holder) and the longest, in nanoseconds: every
	 * thread's, live and exited; inside real-time sections (those ended);
	 * and the calling thread's (rtalloc-stat shows every thread's) */
	uint64_t lock_waits, lock_wait_max_ns, rt_lock_waits, rt_lock_wait_max_ns;
	uint64_t thread_lock_waits, thread_lock_wait_max_ns, thread_rt_lock_waits, thread_rt_lock_wait_max_ns;
};

/* Fill *stats (set stats->size first).  Never blocks an allocating thread.
 * Returns 0, or EINVAL when stats is NULL or its size too small. */
int rtalloc_stats(struct rtalloc_stats *stats);

/* The same, for humans (stderr when f is NULL). */
void rtalloc_stats_print(FILE *f);

/*
 * Mark the calling thread's real-time section (a cycle of its loop, or the
 * whole loop): page faults and slow-path entries between begin and end are
 * counted apart, in this process's statistics and in rtalloc-stat.  Each
 * call reads the thread's fault counters (one getrusage system call).  With
 * RTALLOC_FAULTS=locate, end also reads where the section's faults were (no
 * system call), and a thread's first begin opens its perf event unless
 * rtalloc_thread_prepare() did.
 */
void rtalloc_rt_begin(void);
void rtalloc_rt_end(void);

/* ------------------------------------------------------------------------
 * Heaps: pools of their own, apart from the process's pool.
 *
 * A heap is a fixed pool with the allocator's semantics (power-of-two size
 * classes, buddy blocks, every block aligned to its size), set up once:
 * pre-faulted and locked (rtalloc_heap_create) or laid over memory the
 * caller owns (rtalloc_heap_create_in, no system call on it).  Afterwards
 * allocating and freeing make no system call and take no page fault, in
 * bounded time, under the heap's own lock (priority inheritance).  A full
 * heap fails with ENOMEM: it never grows, unless created with
 * RTALLOC_HEAP_GROW.  A block of any heap may also be
 * released with free(), resized with realloc() (the new block comes from the
 * same heap) and measured with malloc_usable_size().
 *
 * Errors: NULL (or -1) with errno, or an errno value as the result:
 * EINVAL bad argument, ENOMEM heap full or no memory for a new heap,
 * ETIMEDOUT nothing freed in time, EIDRM the heap was destroyed while the
 * caller waited (or its lock holder's death left it unrecoverable),
 * EEXIST a shared heap of that name exists, ENOENT no such shared heap,
 * EAGAIN every waiter record of the heap is in use, ENOTSUP
 * RTALLOC_HEAP_GROW with RTALLOC_HEAP_SHARED, EBUSY destroy could not wait
 * out the heap's waiters.
 * ------------------------------------------------------------------------ */

typedef struct rtalloc_heap rtalloc_heap_t;
struct timespec;

#define RTALLOC_HEAP_SHARED 0x1u /* a named POSIX shared memory object, bindable by other processes */
#define RTALLOC_HEAP_PRIO 0x2u   /* waiters are served by priority (else first come, first served) */
/* rtalloc_heap_create only, not with RTALLOC_HEAP_SHARED: when an allocation
 * finds no room, the heap maps, pre-faults and locks one more region of its
 * first size (a non-real-time event, with one line on stderr), up to
 * RTALLOC_HEAP_REGIONS regions in all; blocks larger than the largest power
 * of two in that size are never served by growth. */
#define RTALLOC_HEAP_GROW 0x4u
/* With RTALLOC_HEAP_SHARED: the object is created 0660 (instead of 0600)
 * and processes of its group may bind it (bind otherwise refuses, EACCES,
 * an object whose owner is not the caller's effective uid). */
#define RTALLOC_HEAP_SHARED_GROUP 0x8u

#define RTALLOC_HEAP_NAME_MAX 64 /* names: 1..64 of [A-Za-z0-9_.-] */
#define RTALLOC_HEAP_MAX 64      /* heaps one process may have at once (created or bound) */
#define RTALLOC_HEAP_REGIONS 8   /* regions of rtalloc_heap_create_in, or of a heap that grows */
#define RTALLOC_HEAP_WAITERS 32  /* threads (of all processes) waiting on one heap at once */
#define RTALLOC_HEAP_PROCS 64    /* processes bound to one shared heap at once (its creator included) */
#define RTALLOC_HEAP_BAD_OFFSET ((size_t)-1)

struct rtalloc_region {
	void *base;
	size_t size;
};

struct rtalloc_heap_info {
	char name[RTALLOC_HEAP_NAME_MAX + 1]; /* "" for an unnamed heap */
	unsigned flags;
	size_t size;           /* bytes of blocks the heap holds (without its metadata) */
	size_t free_bytes;     /* free now (free pages and free small blocks) */
	size_t min_free_bytes; /* lowest free_bytes ever */
	size_t largest_free;   /* largest block one allocation can get now */
	size_t live_blocks;    /* blocks handed out and not freed */
	unsigned waiters;      /* threads waiting in rtalloc_heap_alloc_timed */
};

/* A heap of size bytes of blocks (rounded up to pages; metadata comes on
 * top), in memory of its own.  name: NULL or "" for an unnamed heap, unless
 * RTALLOC_HEAP_SHARED, which needs a name and creates the shared memory
 * object /rtalloc-heap-<name> (mode 0600, or 0660 with
 * RTALLOC_HEAP_SHARED_GROUP, whatever the umask).
 * Not for a real-time loop (system calls).  NULL with errno on failure. */
rtalloc_heap_t *rtalloc_heap_create(const char *name, size_t size, unsigned flags);

/* A heap over n (1..RTALLOC_HEAP_REGIONS) regions of caller memory, which
 * need not be contiguous; the first holds the heap's metadata (about 0.6 %
 * of the total, plus two pages).  No system call on the regions;
 * they must stay valid until rtalloc_heap_destroy.  RTALLOC_HEAP_SHARED is
 * refused (EINVAL). */
rtalloc_heap_t *rtalloc_heap_create_in(const char *name, const struct rtalloc_region *regions,
				       size_t n, unsigned flags);

/* Destroy a heap (any process bound to a shared heap may): its waiters
 * return NULL with errno EIDRM, a shared heap's name is removed (processes
 * still bound keep their mapping until they unbind), and the memory of a
 * heap from rtalloc_heap_create is unmapped.  Blocks of the heap must not
 * be used afterwards.  Returns 0, EINVAL or EBUSY. */
int rtalloc_heap_destroy(rtalloc_heap_t *heap);

void *rtalloc_heap_alloc(rtalloc_heap_t *heap, size_t size);
void *rtalloc_heap_aligned_alloc(rtalloc_heap_t *heap, size_t alignment, size_t size);
void rtalloc_heap_free(rtalloc_heap_t *heap, void *ptr);

/* Like rtalloc_heap_alloc, but when the heap is full, wait (without
 * polling) until frees make room or the CLOCK_MONOTONIC time abs_timeout
 * passes (then NULL, errno ETIMEDOUT).  A timeout already past never
 * waits; NULL waits for ever.  Waiters are served in arrival order, or by
 * scheduling priority (read when the wait starts) with RTALLOC_HEAP_PRIO;
 * the block is handed to the first waiter by the free that makes room (one
 * futex wake per free: that waiter then serves the next in line). */
void *rtalloc_heap_alloc_timed(rtalloc_heap_t *heap, size_t size, const struct timespec *abs_timeout);

/* The heap's figures.  Returns 0 or EINVAL. */
int rtalloc_heap_inquire(rtalloc_heap_t *heap, struct rtalloc_heap_info *info);

/* Attach to the shared heap called name, created by any process.  If it
 * does not exist yet, wait for its creation until the CLOCK_MONOTONIC time
 * abs_timeout (NULL: do not wait), polling every millisecond (binding is
 * not a real-time operation).  NULL with errno ENOENT (not there in time),
 * EINVAL (also: its header is not one rtalloc_heap_create could have
 * written), EACCES (its owner is not the caller's effective uid, unless it
 * was created with RTALLOC_HEAP_SHARED_GROUP for one of the caller's
 * groups; or others may write it), ENOMEM or EAGAIN (RTALLOC_HEAP_PROCS
 * processes are bound).
 * A shared heap's name outlives its processes until rtalloc_heap_destroy;
 * when every process that created or bound it has died, the next
 * rtalloc_heap_create of that name removes the stale heap and creates a new
 * one (a forked child is not counted unless it binds the heap itself). */
rtalloc_heap_t *rtalloc_heap_bind(const char *name, const struct timespec *abs_timeout);
/* Detach: the mapping goes, the heap stays.  Returns 0 or EINVAL. */
int rtalloc_heap_unbind(rtalloc_heap_t *heap);

/* Blocks of a shared heap are at different addresses in each process:
 * exchange offsets.  rtalloc_heap_offset returns RTALLOC_HEAP_BAD_OFFSET
 * and rtalloc_heap_ptr NULL (errno EINVAL) for what is not in the heap. */
size_t rtalloc_heap_offset(rtalloc_heap_t *heap, const void *ptr);
void *rtalloc_heap_ptr(rtalloc_heap_t *heap, size_t offset);

/* From now on the calling thread's malloc, calloc, realloc(NULL, n),
 * aligned allocations and C++ new draw from heap (free works as always);
 * NULL goes back to the process's pool.  Returns 0, or ENOMEM when the
 * allocator cannot start. */
int rtalloc_thread_use_heap(rtalloc_heap_t *heap);

#ifdef __cplusplus
}
#endif

#endif /* RTALLOC_H */
