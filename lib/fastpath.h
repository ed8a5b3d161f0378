/* SPDX-License-Identifier: MIT */
/*
 * fastpath.h - the fast paths of malloc and free, inlined into every entry point
 * (rtalloc_malloc, malloc, operator new...).
 *
 * Each is a pop or a push on the calling thread's list for the size class,
 * with one unlikely branch to a noinline slow path (tcache.c) that handles
 * everything else: first use, empty or full lists, huge blocks, size 0,
 * foreign, invalid and already freed pointers.  No loop, no lock, no system
 * call, no test of initialisation (a thread's zeroed cache sends its first
 * calls to the slow path).
 */
#ifndef RT_FASTPATH_H
#define RT_FASTPATH_H

#include "rt.h"

/* Pop a block of class c from the calling thread's list bin, which holds
 * count > 0 blocks, validated before it is handed out.  Also the last step
 * of a refill (tcache.c). */
static inline void *rt_cache_pop(struct rt_bin *bin, unsigned c, uint32_t count)
{
	void **p = bin->head;
	/* Validate the block before it is handed out (rt.h, "links and
	 * stamps"); the head came from a decoded link, so until here it is
	 * untrusted.  In order: inside the space and aligned to the class; of a
	 * page of this class (the descriptor: never-committed parts read as
	 * zero, so p itself is not touched before this holds); stamped as on a
	 * thread list.  count says where a list ends (in NULL, which fails the
	 * first test). */
	uintptr_t off = (uintptr_t)p - rt_g.base;
	if (rt_unlikely((off >= rt_g.span) | ((off & bin->mask) != 0)))
		return rt_list_corrupt(p);
	if (rt_unlikely(rt_load(&rt_g.pages[off >> RT_PAGE_SHIFT].cls) != c))
		return rt_list_corrupt(p);
	if (rt_unlikely(!rt_stamped_by(p, RT_STAMP_CACHED)))
		return rt_list_corrupt(p);
	bin->head = rt_link_get(p);
	bin->count = count - 1;
	p[1] = NULL; /* a live block never carries its free stamp */
	bin->allocs++;
	return p;
}

static inline void *rt_malloc_fast(size_t n)
{
	unsigned c = rt_class_of(n); /* > RT_NCLASS for 0 and huge sizes */
	if (rt_likely(c <= RT_NCLASS)) {
		struct rt_bin *bin = &rt_tc.bin[c];
		uint32_t count = bin->count;
		if (rt_likely(count != 0))
			return rt_cache_pop(bin, c, count);
	}
	return rt_malloc_slow(n);
}

static inline void rt_free_fast(void *ptr, const char *call)
{
	uintptr_t off = (uintptr_t)ptr - rt_g.base;
	if (rt_likely(off < rt_g.span)) {
		const struct rt_page *pg = &rt_g.pages[off >> RT_PAGE_SHIFT];
		unsigned c = rt_load(&pg->cls);
		struct rt_bin *bin = &rt_tc.bin[c];
		uintptr_t *p = ptr;
		uintptr_t stamp = rt_stamp(p, RT_STAMP_CACHED);
		/* Room in this thread's list (the limit is 0 for "no class", huge
		 * blocks and threads not set up yet), a block start of its class
		 * (blocks are aligned to their size), and no free stamp of either
		 * holder (a block freed already, or never handed out). */
		if (rt_likely(bin->count < bin->limit && (off & bin->mask) == 0 && (p[1] ^ stamp) > 1)) {
			rt_link_set(p, bin->head);
			p[1] = stamp;
			bin->head = p;
			bin->count++;
			bin->frees++;
			return;
		}
	}
	rt_free_slow(ptr, call);
}

#endif /* RT_FASTPATH_H */
