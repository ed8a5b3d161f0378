/* SPDX-License-Identifier: MIT */
/*
 * glue.h - everything librtalloc takes from the operating system and libc.
 *
 * The allocator core (buddy.c, bucket.c) never includes this file: it works
 * on memory it is handed.  The layers that do (pool.c, tcache.c, options.c,
 * interpose.c) call the OS only through these functions, so what librtalloc
 * asks of the kernel can be read in one page.
 *
 * Everything here is safe before libc is fully initialised and while the
 * allocator initialises: thin system-call wrappers, no malloc, no stdio, no
 * getenv, no dlsym.  Messages are formatted on the stack and written with
 * write(2).
 */
#ifndef RT_GLUE_H
#define RT_GLUE_H

#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rt.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* Reserve address space: no access, no memory, not counted as committed. */
static inline void *rt_os_reserve(size_t len)
{
	void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Map fresh read-write memory (descriptors). */
static inline void *rt_os_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static inline int rt_os_unmap(void *p, size_t len) { return munmap(p, len); }

/* Make part of a reservation usable. */
static inline int rt_os_commit(void *p, size_t len)
{
	return mprotect(p, len, PROT_READ | PROT_WRITE);
}

static inline int rt_os_mlockall(void) { return mlockall(MCL_CURRENT | MCL_FUTURE); }
static inline int rt_os_mlock(void *p, size_t len) { return mlock(p, len); }
static inline int rt_os_munlock(void *p, size_t len) { return munlock(p, len); }

/* Bind [p, p+len) to a NUMA node (node >= 0) or interleave it over the
 * nodes of mask (node < 0), before it is first touched.  Returns 0 or -1. */
static inline int rt_os_mbind(void *p, size_t len, int node, unsigned long mask)
{
	enum { MPOL_BIND_ = 2, MPOL_INTERLEAVE_ = 3 };
	unsigned long m = node >= 0 ? 1UL << node : mask;
	int mode = node >= 0 ? MPOL_BIND_ : MPOL_INTERLEAVE_;
	return (int)syscall(SYS_mbind, p, len, mode, &m, sizeof(m) * 8, 0);
}

/* The NUMA node the calling thread runs on (getcpu: the vDSO on x86-64). */
static inline int rt_os_node(void)
{
	unsigned cpu = 0, node = 0;
	if (getcpu(&cpu, &node) != 0)
		return 0;
	return (int)node;
}

static inline uint64_t rt_os_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Read at most len-1 bytes of a file into buf, NUL-terminated.  -1 on error. */
RT_HIDDEN long rt_os_read_file(const char *path, char *buf, size_t len);

/* Pre-fault [p, p+len) for writing: MADV_POPULATE_WRITE, else a touch loop.
 * Returns 0 or an errno value. */
RT_HIDDEN int rt_os_populate(void *p, size_t len);

/* 64 random bits (getrandom, else the clock and the address of a local). */
RT_HIDDEN uint64_t rt_os_random(void);

/* A line on stderr, "rtalloc: " and a printf-like subset: %s %d %u %zu %lu
 * %llu %x %p %%.  Formatted on the stack; never allocates. */
RT_HIDDEN void rt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
RT_HIDDEN size_t rt_vfmt(char *buf, size_t len, const char *fmt, va_list ap);

#endif /* RT_GLUE_H */
