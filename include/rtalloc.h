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

#ifdef __cplusplus
}
#endif

#endif /* RTALLOC_H */
