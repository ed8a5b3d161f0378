/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the malloc family's semantics, glibc's documented behaviour being
 * the contract: errno values, overflow checks, alignment rules, realloc in
 * place.  Each function exists once, hidden (rt_*); the exported rtalloc_*
 * names are aliases and interpose.c's libc names call the same code.
 *
 * Alignment is a rounding: every block is aligned to its size (power-of-two
 * classes and buddy blocks), so a block of at least `alignment` bytes is
 * aligned to it.  Nothing is wasted beyond that rounding.
 *
 * Also the entry of the slow paths (what fastpath.h's misses call): what is
 * not the thread cache's business is decided here, above the cache and the
 * heaps, so that tcache.c never calls up: the first call initialises the
 * library; a forked child locks its memory again; a thread bound to a heap
 * allocates from it; a pointer outside the pool goes to the heaps or is
 * counted as foreign; the whole slow path runs under the re-entry guard.
 */
#include <errno.h>
#include <string.h>

#include "fastpath.h"
#include "faults.h"
#include "os.h"
#include "heap.h"

#define EXPORT_AS(name, impl) extern __typeof(impl) name __attribute__((alias(#impl), visibility("default")))

/* ---- the slow paths' entry ------------------------------------------------------- */

/* A signal handler that calls malloc or free while its thread was inside a
 * slow path would find the thread's cache, or a lock it holds, half-way:
 * stopped with a message instead of corrupting or hanging.  The flag is set
 * only on slow paths (the fast paths cost nothing for it). */
static RT_NORETURN RT_COLD void reentered(const char *call)
{
	rt_say("%s(): called while this thread was already inside malloc or free (from a signal "
	       "handler? malloc is not async-signal-safe); aborting", call);
	rt_die();
}

static inline void slow_enter(struct rt_tcache *tc, const char *call)
{
	if (rt_unlikely(tc->in_slow))
		reentered(call);
	tc->in_slow = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST); /* set before anything changes */
}

static inline void slow_leave(struct rt_tcache *tc)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	tc->in_slow = 0;
}

/* The child of fork locks its memory at its first slow path (fork.c). */
static RT_COLD void relock_child(struct rt_tcache *tc)
{
	rt_pool_relock_child();
	rt_tcache_relocked(tc);
}

void *rt_malloc_slow(size_t n)
{
	if (rt_unlikely(!rt_ready()) && rt_init_lazy() != 0) {
		errno = ENOMEM;
		return NULL;
	}
	struct rt_tcache *tc = &rt_tc;
	slow_enter(tc, "malloc");
	if (rt_unlikely(rt_g.relock_child))
		relock_child(tc);
	void *p = rt_unlikely(tc->heap != NULL) ? rt_heap_thread_alloc(tc->heap, n) : rt_tcache_malloc(tc, n);
	slow_leave(tc);
	return p;
}

/* A pointer librtalloc did not hand out (ld.so's early allocator, memory from
 * before interposition): never taken into a free list, only counted. */
static uint64_t foreign_frees;

uint64_t rt_foreign_frees(void) { return __atomic_load_n(&foreign_frees, __ATOMIC_RELAXED); }

void rt_free_slow(void *ptr, const char *call)
{
	if (!ptr)
		return;
	int saved = errno; /* free preserves errno */
	struct rt_tcache *tc = &rt_tc;
	slow_enter(tc, call);
	if (rt_unlikely(rt_g.relock_child))
		relock_child(tc);
	struct rt_page *pg = rt_page_of(ptr);
	if (pg)
		rt_tcache_free(tc, ptr, pg, call);
	else if (!rt_heap_free_foreign(ptr, call))
		__atomic_fetch_add(&foreign_frees, 1, __ATOMIC_RELAXED);
	slow_leave(tc);
	errno = saved;
}

size_t rt_block_size(const void *p, const char *call)
{
	const struct rt_page *pg = rt_page_of(p);
	return pg ? rt_tcache_block_size(p, pg, call) : rt_heap_block_size(p, call);
}

/* Real-time sections (tcache.c counts them): the first may initialise. */
RT_EXPORT void rtalloc_rt_begin(void)
{
	if (rt_likely(rt_ready()) || rt_init_lazy() == 0)
		rt_tcache_section_begin();
}

RT_EXPORT void rtalloc_rt_end(void) { rt_tcache_section_end(); }


/* A block of at least size bytes aligned to align (a power of two). */
static void *aligned_block(size_t align, size_t size)
{
	if (align <= 16)
		return rt_malloc_fast(size);
	if (align > RT_MAX_ALIGN) {
		errno = ENOMEM;
		return NULL;
	}
	return rt_malloc_fast(size > align ? size : align);
}

void *rt_calloc(size_t nmemb, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(nmemb, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = rt_malloc_fast(bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

size_t rt_usable_size(void *p)
{
	return p ? rt_block_size(p, "malloc_usable_size") : 0;
}

/* Same class (or, for huge blocks, same buddy order): realloc stays in place. */
static bool same_block_size(size_t have, size_t n)
{
	if (have <= RT_CACHE_MAX)
		return n <= have && rt_class_of(n) == rt_class_of(have);
	return n > RT_CACHE_MAX && n <= have && rt_order_of(n) == rt_order_of(have);
}

void *rt_realloc(void *p, size_t n)
{
	if (!p)
		return rt_malloc_fast(n);
	if (n == 0) { /* glibc: frees and returns NULL */
		rt_free_fast(p, "realloc");
		return NULL;
	}
	if (!rt_page_of(p))
		return rt_realloc_foreign(p, n);
	size_t have = rt_block_size(p, "realloc");
	if (n > PTRDIFF_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	if (same_block_size(have, n))
		return p;
	void *q = rt_malloc_fast(n);
	if (!q)
		return NULL; /* p is left as it was */
	memcpy(q, p, have < n ? have : n);
	rt_free_fast(p, "realloc");
	return q;
}

void *rt_reallocarray(void *p, size_t nmemb, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(nmemb, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return rt_realloc(p, bytes);
}

int rt_posix_memalign(void **memptr, size_t align, size_t size)
{
	if (!rt_pow2(align) || align % sizeof(void *) != 0)
		return EINVAL;
	/* It reports through its result; a failure also leaves errno at ENOMEM
	 * (glibc does, and programs test it), a success leaves errno alone. */
	int saved = errno;
	void *p = aligned_block(align, size);
	if (!p) {
		errno = ENOMEM;
		return ENOMEM;
	}
	errno = saved;
	*memptr = p;
	return 0;
}

void *rt_aligned_alloc(size_t align, size_t size)
{
	if (!rt_pow2(align)) { /* glibc 2.38: any power of two, else EINVAL */
		errno = EINVAL;
		return NULL;
	}
	return aligned_block(align, size);
}

void *rt_memalign(size_t align, size_t size)
{
	if (align > SIZE_MAX / 2 + 1) { /* glibc: EINVAL beyond the largest power of two */
		errno = EINVAL;
		return NULL;
	}
	if (!rt_pow2(align)) /* glibc rounds other alignments up to a power of two */
		align = align <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzll(align - 1));
	return aligned_block(align, size);
}

void *rt_valloc(size_t size) { return aligned_block(RT_PAGE_SIZE, size); }

void *rt_pvalloc(size_t size)
{
	size_t rounded;
	if (__builtin_add_overflow(size, RT_PAGE_SIZE - 1, &rounded)) {
		errno = ENOMEM;
		return NULL;
	}
	rounded &= ~(RT_PAGE_SIZE - 1);
	return aligned_block(RT_PAGE_SIZE, rounded ? rounded : RT_PAGE_SIZE);
}

/* C23: size (and alignment) must be those of the allocation.  A size larger
 * than the block cannot be right and is reported; smaller sizes within the
 * block are accepted, as glibc does. */
void rt_free_sized(void *p, size_t size)
{
	if (p && rt_page_of(p) && size > rt_block_size(p, "free_sized"))
		rt_fatal("free_sized", "size larger than the block", p);
	rt_free_fast(p, "free_sized");
}

void rt_free_aligned_sized(void *p, size_t align, size_t size)
{
	if (p && rt_page_of(p)) {
		size_t have = rt_block_size(p, "free_aligned_sized");
		if (size > have || !rt_pow2(align) || ((uintptr_t)p & (align - 1)))
			rt_fatal("free_aligned_sized", "size or alignment does not match the block", p);
	}
	rt_free_fast(p, "free_aligned_sized");
}

/* A pointer librtalloc did not hand out cannot be resized: its size is
 * unknown and guessing could copy from unmapped memory.  Such pointers come
 * only from ld.so's start-up allocator, which glibc never reallocs.  A
 * heap's block (heap.c, heap_block.c) is resized within its heap. */
void *rt_realloc_foreign(void *p, size_t n)
{
	return rt_heap_realloc(p, n); /* a heap's block, else fatal */
}

/* ---- exported names ----------------------------------------------------- */

RT_EXPORT void *rtalloc_malloc(size_t size) { return rt_malloc_fast(size); }
RT_EXPORT void rtalloc_free(void *ptr) { rt_free_fast(ptr, "free"); }
EXPORT_AS(rtalloc_calloc, rt_calloc);
EXPORT_AS(rtalloc_realloc, rt_realloc);
EXPORT_AS(rtalloc_reallocarray, rt_reallocarray);
EXPORT_AS(rtalloc_posix_memalign, rt_posix_memalign);
EXPORT_AS(rtalloc_aligned_alloc, rt_aligned_alloc);
EXPORT_AS(rtalloc_memalign, rt_memalign);
EXPORT_AS(rtalloc_valloc, rt_valloc);
EXPORT_AS(rtalloc_pvalloc, rt_pvalloc);
EXPORT_AS(rtalloc_malloc_usable_size, rt_usable_size);
EXPORT_AS(rtalloc_free_sized, rt_free_sized);
EXPORT_AS(rtalloc_free_aligned_sized, rt_free_aligned_sized);

RT_EXPORT unsigned rtalloc_version(void) { return RTALLOC_VERSION; }

RT_EXPORT int rtalloc_init(const struct rtalloc_config *config) { return rt_init(config); }

RT_EXPORT int rtalloc_thread_prepare(void)
{
	if (!rt_ready() && rt_init_lazy() != 0)
		return ENOMEM;
	int e = rt_tcache_prepare();
	if (!e) {
		rt_pool_stack_prefault(rt_g.opt.stack_prefault);
		rt_faults_thread_open(); /* RTALLOC_FAULTS=locate (faults.h) */
	}
	return e;
}

RT_EXPORT int rtalloc_check(void)
{
	if (!rt_ready())
		return 0;
	for (unsigned i = 0; i < rt_g.narenas; i++) {
		const char *why = rt_arena_check(&rt_g.arenas[i]);
		if (why) {
			rt_say("rtalloc_check: arena %u: %s", i, why);
			return -1;
		}
	}
	const char *why = rt_tcache_check();
	if (why) {
		rt_say("rtalloc_check: %s", why);
		return -1;
	}
	return 0;
}
