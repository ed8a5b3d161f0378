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
 * of its stack.  Call it from the thread, before the loop.  Returns 0 or ENOMEM.
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

#define RTALLOC_STATS_VERSION 1
#define RTALLOC_STATS_CLASSES 14 /* [0] unused, [1..12] 16 B .. 32 KiB, [13] huge */
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
	/* thread counters, summed over live and exited threads (as of each
	 * thread's last slow path or real-time section end) */
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
 * call reads the thread's fault counters (one getrusage system call).
 */
void rtalloc_rt_begin(void);
void rtalloc_rt_end(void);

#ifdef __cplusplus
}
#endif

#endif /* RTALLOC_H */
