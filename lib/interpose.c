/* SPDX-License-Identifier: MIT */
/*
 * interpose.c - the libc names: what LD_PRELOAD=librtalloc.so replaces.
 *
 * These symbols are exported unversioned, on purpose: a version node would
 * make ld.so bind programs' malloc@GLIBC_2.2.5 to glibc and interposition
 * would silently stop (tests/system/check_exports.sh checks the list).  Every function
 * is a thin call into fastpath.h's inline fast paths or alloc.c.
 *
 * The library's constructor initialises the pool at load if no allocation
 * did so first.
 */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>

#include "fastpath.h"
#include "glue.h"

#define PUBLIC RT_EXPORT

PUBLIC void *malloc(size_t size) { return rt_malloc_fast(size); }
PUBLIC void free(void *ptr) { rt_free_fast(ptr, "free"); }
PUBLIC void *calloc(size_t nmemb, size_t size) { return rt_calloc(nmemb, size); }
PUBLIC void *realloc(void *ptr, size_t size) { return rt_realloc(ptr, size); }
PUBLIC void *reallocarray(void *ptr, size_t nmemb, size_t size) { return rt_reallocarray(ptr, nmemb, size); }
PUBLIC int posix_memalign(void **memptr, size_t alignment, size_t size)
{
	return rt_posix_memalign(memptr, alignment, size);
}
PUBLIC void *aligned_alloc(size_t alignment, size_t size) { return rt_aligned_alloc(alignment, size); }
PUBLIC void *memalign(size_t alignment, size_t size) { return rt_memalign(alignment, size); }
PUBLIC void *valloc(size_t size) { return rt_valloc(size); }
PUBLIC void *pvalloc(size_t size) { return rt_pvalloc(size); }
PUBLIC size_t malloc_usable_size(void *ptr) { return rt_usable_size(ptr); }
PUBLIC void free_sized(void *ptr, size_t size) { rt_free_sized(ptr, size); }
PUBLIC void free_aligned_sized(void *ptr, size_t alignment, size_t size)
{
	rt_free_aligned_sized(ptr, alignment, size);
}

/* glibc's internal names, for programs that call them directly.  Not
 * __libc_mallopt: pool.c calls glibc's own to stop its trimming. */
PUBLIC void *__libc_malloc(size_t size) { return rt_malloc_fast(size); }
PUBLIC void __libc_free(void *ptr) { rt_free_fast(ptr, "free"); }
PUBLIC void *__libc_calloc(size_t nmemb, size_t size) { return rt_calloc(nmemb, size); }
PUBLIC void *__libc_realloc(void *ptr, size_t size) { return rt_realloc(ptr, size); }
PUBLIC void *__libc_memalign(size_t alignment, size_t size) { return rt_memalign(alignment, size); }
PUBLIC void *__libc_valloc(size_t size) { return rt_valloc(size); }
PUBLIC void *__libc_pvalloc(size_t size) { return rt_pvalloc(size); }

/* Tuning knobs of glibc's allocator mean nothing here: accepted, ignored. */
PUBLIC int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

PUBLIC int malloc_trim(size_t pad)
{
	(void)pad;
	return 0; /* librtalloc never gives memory back */
}

PUBLIC struct mallinfo2 mallinfo2(void)
{
	struct rt_totals t;
	rt_stats_totals(&t);
	struct mallinfo2 mi = {0};
	mi.arena = t.pool_bytes;
	mi.fordblks = t.free_bytes;
	mi.uordblks = t.pool_bytes - t.free_bytes;
	mi.usmblks = t.pool_bytes - t.min_free_bytes; /* the high-water mark of use */
	mi.keepcost = 0;
	return mi;
}

static int clamp_int(size_t v) { return v > 0x7fffffff ? 0x7fffffff : (int)v; }

PUBLIC struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi = {0};
	mi.arena = clamp_int(m2.arena);
	mi.fordblks = clamp_int(m2.fordblks);
	mi.uordblks = clamp_int(m2.uordblks);
	mi.usmblks = clamp_int(m2.usmblks);
	return mi;
}

__attribute__((constructor)) static void rt_constructor(void)
{
	if (!rt_ready())
		rt_init_lazy();
}
